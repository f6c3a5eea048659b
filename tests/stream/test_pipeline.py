"""The pipeline with real tiny ONNX Runtime engines and real video files."""

from __future__ import annotations

import itertools
import json
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from edge.errors import ConfigError, ManifestError, SinkError, SourceError
from edge.latency import LatencyTracker
from edge.stream import run_stream
from edge.stream.engines import EngineSet
from edge.stream.frame import Frame, Result
from edge.stream.pipeline import Pipeline
from edge.stream.sinks import NullSink, open_sinks
from edge.stream.sources import open_source
from edge.stream.timestamps import read_timestamps
from tests.conftest import TEST_SIZE, stop_process, wait_for
from tests.stream.test_capture import Camera
from tests.stream.test_sources_sinks import write_video

ROOT = Path(__file__).resolve().parents[2]
STAGES = {"preprocess", "panoptic", "depth", "postprocess", "tracks", "sink"}

# the note of a summary whose end_to_end includes waiting in the queues (a file read flat out)
QUEUES = "end_to_end counts each frame's wait in the queues"


def test_video_file_every_frame_in_order(tiny_engines: Path, tmp_path: Path) -> None:
    write_video(tmp_path / "in.mp4", 12, size=(96, 200))
    seen: list[Result] = []
    engines = EngineSet.from_manifest(tiny_engines)
    tracker = LatencyTracker(deadline_ms=10_000)
    sink = NullSink()
    pipe = Pipeline(
        source=open_source(str(tmp_path / "in.mp4")),
        engines=engines,
        sinks=[sink],
        tracker=tracker,
        on_result=seen.append,
    )
    summary = pipe.run()
    engines.close()
    assert summary["frames_in"] == 12 == summary["frames_out"] + summary["drops"]
    assert summary["drops"] == 0 and sink.frames == 12
    assert [r.frame.seq for r in seen] == list(range(12))
    stamps = [r.frame.t_capture_ns for r in seen]
    assert stamps == sorted(stamps) and len(set(stamps)) == 12
    assert set(summary["stages_ms"]) == STAGES
    assert all(summary["stages_ms"][s]["count"] == 12 for s in STAGES)
    assert summary["deadline_misses"] == 0
    r = seen[0]
    assert r.rendered is None and r.extras["views"] == {}  # null:// shows nothing: nothing drawn
    assert r.panoptic["sem_labels"].shape == (1, 128, 256) and r.depth["depth"].shape == (1, 1, 128, 256)


class FastLiveSource:
    """A live source that hands over frames as fast as it is asked, and says when it ran out."""

    def __init__(self, frames: int) -> None:
        self.uri, self.fps, self.live = "test://live", None, True
        self._synthetic = open_source("synthetic://?size=128x256")
        self._left = frames
        self.exhausted = threading.Event()

    def read(self) -> Frame | None:
        if self._left == 0:
            self.exhausted.set()
            return None
        self._left -= 1
        return self._synthetic.read()

    def close(self) -> None:
        return None


class StalledSink(NullSink):
    """Holds up the first result until the source is exhausted: downstream is then slower
    than capture by construction, not by how fast this machine happens to be."""

    def __init__(self, until: threading.Event) -> None:
        super().__init__()
        self._until = until

    def write(self, image: np.ndarray, seq: int, t_capture_ns: int | None = None) -> None:
        if self.frames == 0 and not self._until.wait(timeout=60):
            raise AssertionError("the source was never read to its end")
        super().write(image, seq)


def test_live_source_drops_oldest_and_counts(tiny_engines: Path) -> None:
    engines = EngineSet.from_manifest(tiny_engines)
    seen: list[int] = []
    source = FastLiveSource(40)
    pipe = Pipeline(
        source=source,
        engines=engines,
        sinks=[StalledSink(source.exhausted)],
        on_result=lambda r: seen.append(r.frame.seq),
    )
    s = pipe.run()
    engines.close()
    assert s["frames_in"] == 40
    assert s["pacing"] == "live" and QUEUES not in pipe.tracker.format_summary()
    assert s["frames_out"] + s["drops"] == 40 == len(seen) + s["drops"]
    # live, every stage holds one frame and every queue between them one more: the sink's,
    # one waiting for it, one being drawn, one waiting for that, one in inference and one
    # waiting for it; the rest dropped
    assert s["drops"] >= 40 - 6
    assert s["sinks_skipped"] == {}  # a single sink is waited for, as before: the capture drops
    assert seen == sorted(seen) and seen[-1] == 39, "newest frames survive"


def test_run_stream_writes_video_and_trace(tiny_engines: Path, tmp_path: Path) -> None:
    tracker = run_stream(
        "synthetic://?size=128x256",
        engines=tiny_engines,
        sinks=[str(tmp_path / "o.mp4")],
        max_frames=9,
        trace=tmp_path / "trace.json",
        latency_log=tmp_path / "spans.jsonl",
    )
    assert tracker.summary()["frames_out"] == 9
    cap = cv2.VideoCapture(str(tmp_path / "o.mp4"))
    assert cap.get(cv2.CAP_PROP_FRAME_COUNT) == 9
    events = json.loads((tmp_path / "trace.json").read_text())["traceEvents"]
    assert {e["name"] for e in events} == STAGES | {"end_to_end"}
    spans = [json.loads(line) for line in (tmp_path / "spans.jsonl").read_text().splitlines()]
    assert len(spans) == 9 * len(STAGES | {"end_to_end"})  # every stage of each of the 9 frames
    # the rate is the stream's: from the first frame's capture to the last one out, without
    # the seconds run_stream spent loading the engines and opening the sinks before it
    e2e = [span for span in spans if span["stage"] == "end_to_end"]
    seconds = (max(span["end_ns"] for span in e2e) - min(span["start_ns"] for span in e2e)) / 1e9
    assert tracker.summary()["fps"] == pytest.approx(9 / seconds, rel=1e-6)
    # read as fast as the engines took the frames: the summary says their wait is in end_to_end
    assert tracker.summary()["pacing"] == "file" and QUEUES in tracker.format_summary()


def test_missing_engines_dir_and_missing_artifact(tiny_engines: Path, tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="does not exist; build engines first"):
        EngineSet.from_manifest(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ManifestError, match="no manifest.json"):
        EngineSet.from_manifest(tmp_path / "empty")
    broken = tmp_path / "broken"
    shutil.copytree(tiny_engines, broken)
    next(broken.glob("depth_tiny*.ort.onnx")).unlink()
    with pytest.raises(ManifestError, match="which is missing; rebuild"):
        EngineSet.from_manifest(broken)


def test_wrong_model_flag_says_what_the_manifest_holds(tiny_engines: Path) -> None:
    h, w = TEST_SIZE
    # a depth model passed as the panoptic one: the error lists what depth_tiny is
    with pytest.raises(ManifestError) as info:
        EngineSet.from_manifest(tiny_engines, panoptic="depth_tiny")
    assert "has no onnxruntime panoptic engine for 'depth_tiny'" in str(info.value)
    assert f"engines it lists for 'depth_tiny': depth onnxruntime fp32 {h}x{w}" in str(info.value)
    with pytest.raises(
        ManifestError,
        match=r"lists no engine for 'depth_r18' \(build one with: edge build --models depth_r18\)",
    ):
        EngineSet.from_manifest(tiny_engines, depth="depth_r18")
    with pytest.raises(
        ManifestError, match=f"has no onnxruntime int8 depth engine.*depth onnxruntime fp32 {h}x{w}"
    ):
        EngineSet.from_manifest(tiny_engines, depth="depth_tiny", precision="int8")


CLI_ENV = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}


def edge_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edge.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env=CLI_ENV,
    )


def edge_cli_started(*args: str, cwd: Path) -> subprocess.Popen[str]:
    """``edge ARGS`` started in the background, its stdout and stderr piped (text)."""
    return subprocess.Popen(
        [sys.executable, "-m", "edge.cli", *args],
        cwd=cwd,
        env=CLI_ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_cli_run_errors_are_clear(tiny_engines: Path, tmp_path: Path) -> None:
    proc = edge_cli("run", "ftp://cam", "--engines", str(tiny_engines), cwd=tmp_path)
    assert proc.returncode == 2 and "error: unknown source scheme 'ftp'" in proc.stderr
    proc = edge_cli("run", "synthetic://", "--engines", "missing_dir", cwd=tmp_path)
    assert proc.returncode == 2 and "error: engines directory 'missing_dir' does not exist" in proc.stderr
    proc = edge_cli(
        "run", "synthetic://", "--engines", str(tiny_engines), "--deadline-ms", "-5", cwd=tmp_path
    )
    assert (
        proc.returncode == 2
        and "--deadline-ms: expected a positive number of milliseconds, got '-5'" in proc.stderr
    )
    assert "Traceback" not in proc.stderr


def built_at(engines: Path) -> dict[str, str]:
    manifest = json.loads((engines / "manifest.json").read_text())
    return {k: e["built_at"] for k, e in manifest["engines"].items()}


def test_cli_demo_end_to_end(tmp_path: Path, demo_full_engines: Path) -> None:
    """The README's main command: its whole drive, as the README describes it. Its engines
    folder is the demo's own with the depth engine taken out: the demo builds what is missing
    (the export is most of a build's time, the panoptic one most of that) and keeps the rest."""
    from edge.engines_remove import remove_engines

    engines = tmp_path / "engines"
    shutil.copytree(demo_full_engines, engines)
    kept = built_at(engines)
    (removed,) = remove_engines(engines, ["depth_tiny_*"])
    proc = edge_cli("demo", "--quiet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    built = built_at(engines)
    assert set(built) == set(kept)
    assert {k for k in built if built[k] != kept[k]} == {removed.id}, "the missing one built, the other kept"
    assert "end_to_end" in proc.stdout and "frames in 68  out 68  dropped 0" in proc.stdout
    cap = cv2.VideoCapture(str(tmp_path / "out" / "demo.mp4"))
    assert cap.get(cv2.CAP_PROP_FRAME_COUNT) == 68
    assert (cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (1024, 256)
    ok, frame = cap.read()
    assert ok and float(np.std(frame)) > 5, "a real picture, not a blank frame"
    # the drive's warnings log, written even where nothing was warned of, and said
    warnings = (tmp_path / "out" / "demo_warnings.jsonl").read_text().splitlines()
    assert all(json.loads(x)["event"] in ("warning", "clear") for x in warnings)
    assert f"warnings: out/demo_warnings.jsonl  ({len(warnings)} lines: " in proc.stdout
    # nothing on the drive truly comes within 3 s of the car, and nothing is warned of (the
    # README's "0 lines": its trucks past and beside the car ahead were, through 2026-12-05's
    # seventeenth run)
    assert warnings == [], warnings
    manifest = json.loads((tmp_path / "engines" / "manifest.json").read_text())
    assert {e["model"] for e in manifest["engines"].values()} == {"panoptic_fpn_tiny", "depth_tiny"}
    summary = json.loads((tmp_path / "out" / "demo_latency.json").read_text())
    assert summary["frames_out"] == 68
    # its frames are given as fast as the engines take them, which the summary says, pointing at
    # the flag that gives them as a camera would: one the demo has
    assert summary["pacing"] == "file" and "(--realtime paces it as a camera would)" in proc.stdout
    proc = edge_cli("demo", "--frames", "4", "--realtime", "--quiet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / "out" / "demo_latency.json").read_text())
    assert summary["pacing"] == "realtime" and summary["frames_in"] == 4 and QUEUES not in proc.stdout


def test_duration_ends_a_run_of_an_endless_source(
    tiny_engines: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from edge.cli import main

    summary = tmp_path / "s.json"
    argv = ["run", "synthetic://?size=128x256", "--realtime", "--fps", "10", "--duration", "1.5"]
    assert main([*argv, "--engines", str(tiny_engines), "--summary", str(summary)]) == 0
    data = json.loads(summary.read_text())
    # paced at 10 fps, 1.5 s of the stream reads 16 frames at most (one at 0 s)
    assert 1 <= data["frames_in"] <= 16 and data["frames_out"] + data["drops"] == data["frames_in"]
    assert "frames in " in capsys.readouterr().out


def test_realtime_paces_a_file_at_its_fps(tiny_engines: Path, tmp_path: Path) -> None:
    """... and its video sink plays in real time: each processed frame is shown until the
    next, so the video lasts as long as the run did, however many frames were dropped."""
    write_video(tmp_path / "in.mp4", 6, fps=20.0)
    stamps: list[int] = []
    engines = EngineSet.from_manifest(tiny_engines)
    pipe = Pipeline(
        source=open_source(str(tmp_path / "in.mp4")),
        engines=engines,
        sinks=open_sinks(
            [str(tmp_path / "out.avi"), f"dir://{tmp_path / 'd'}"],
            fps=20.0,
            kinds=engines.kinds,
            timing="capture",
        ),
        realtime=True,
        on_result=lambda r: stamps.append(r.frame.t_capture_ns),
    )
    s = pipe.run()
    engines.close()
    assert s["frames_in"] == 6 == s["frames_out"] + s["drops"]
    assert s["pacing"] == "realtime" and QUEUES not in pipe.tracker.format_summary()
    # capture follows a 20 fps schedule (a late frame is followed by a shorter gap), so
    # the surviving frames span at least (n - 1) periods, minus scheduler jitter
    assert len(stamps) >= 2
    span_s = (stamps[-1] - stamps[0]) / 1e9
    assert span_s >= (len(stamps) - 1) * 0.05 * 0.9
    last_period = round((stamps[-1] - stamps[0]) * 20 / 1e9)
    written = cv2.VideoCapture(str(tmp_path / "out.avi")).get(cv2.CAP_PROP_FRAME_COUNT)
    assert written == last_period + 1 >= s["frames_out"]
    # a folder keeps each processed frame once, with its capture time
    kept = read_timestamps(tmp_path / "d" / "timestamps.txt", frames=len(stamps))
    assert kept == pytest.approx([(t - stamps[0]) / 1e6 for t in stamps], abs=1e-3)


def test_realtime_replays_a_recording_at_its_capture_times(tiny_engines: Path, tmp_path: Path) -> None:
    """A video with capture times beside it (edge record's) is paced by them, not by its
    frame rate: each frame that is processed arrives no earlier after another than it was
    captured after it. --fps sets a steady rate instead."""
    from edge.stream.timestamps import timestamps_path

    write_video(tmp_path / "rec.mp4", 5, fps=30.0)
    recorded = [0.0, 600.0, 650.0, 1200.0, 1210.0]  # ms: a camera with stalls
    timestamps_path(tmp_path / "rec.mp4").write_text(
        "# timestamp format v2\n" + "".join(f"{t}\n" for t in recorded)
    )
    seen: list[tuple[float, int]] = []
    engines = EngineSet.from_manifest(tiny_engines)
    try:
        pipe = Pipeline(
            source=open_source(str(tmp_path / "rec.mp4")),
            engines=engines,
            sinks=[NullSink()],
            realtime=True,
            on_result=lambda r: seen.append((r.frame.meta["media_ms"], r.frame.t_capture_ns)),
        )
        assert pipe.paced_by_timestamps
        s = pipe.run()
        steady = Pipeline(
            source=open_source(str(tmp_path / "rec.mp4")),
            engines=engines,
            sinks=[NullSink()],
            realtime=True,
            fps=30.0,
        )
        assert not steady.paced_by_timestamps
    finally:
        engines.close()
    assert s["frames_in"] == 5 == s["frames_out"] + s["drops"] and len(seen) >= 2
    assert seen[0][0] == 0.0 and 600.0 in [m for m, _ in seen], "frames after a stall are not dropped"
    for (media_a, t_a), (media_b, t_b) in itertools.pairwise(seen):
        assert (t_b - t_a) / 1e6 >= (media_b - media_a) - 15  # ms, less scheduler jitter


def test_realtime_paces_a_folder_at_the_rate_given(tiny_engines: Path, tmp_path: Path) -> None:
    """An image folder has no rate of its own: --realtime without --fps is refused before
    any output is opened; with --fps it is paced at it, and a video sink is written at it."""
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(6):
        cv2.imwrite(str(frames / f"{i}.png"), np.full((64, 128, 3), 30 * i, np.uint8))
    with pytest.raises(ConfigError, match=f"--realtime: source {str(frames)!r} has no frame rate.*--fps"):
        run_stream(str(frames), engines=tiny_engines, sinks=[str(tmp_path / "a.mp4")], realtime=True)
    assert not list(tmp_path.glob("a*.mp4"))
    stamps: list[int] = []
    engines = EngineSet.from_manifest(tiny_engines)
    try:
        s = Pipeline(
            source=open_source(str(frames)),
            engines=engines,
            sinks=[NullSink()],
            realtime=True,
            fps=20.0,
            on_result=lambda r: stamps.append(r.frame.t_capture_ns),
        ).run()
    finally:
        engines.close()
    assert s["frames_in"] == 6 == s["frames_out"] + s["drops"] and len(stamps) >= 2
    assert (stamps[-1] - stamps[0]) / 1e9 >= (len(stamps) - 1) * 0.05 * 0.9  # a 20 fps schedule
    run_stream(str(frames), engines=tiny_engines, sinks=[str(tmp_path / "b.mp4")], fps=5.0)
    assert cv2.VideoCapture(str(tmp_path / "b.mp4")).get(cv2.CAP_PROP_FPS) == pytest.approx(5.0)


def test_fps_is_refused_for_a_camera(tiny_engines: Path) -> None:
    from tests.stream.test_capture import Camera

    camera = Camera()
    try:
        with pytest.raises(ConfigError, match="--fps sets the rate of files and folders; camera"):
            run_stream(camera.url, engines=tiny_engines, fps=10.0)
    finally:
        camera.unplug()


@pytest.mark.parametrize(
    "sig,code,presses",
    [(signal.SIGINT, 130, 1), (signal.SIGTERM, 143, 1), (signal.SIGINT, 130, 2)],
    ids=["ctrl-c", "sigterm", "ctrl-c-twice"],
)
def test_signal_during_run_finalises_outputs(
    tiny_engines: Path, tmp_path: Path, sig: int, code: int, presses: int
) -> None:
    proc = edge_cli_started(
        "run",
        "synthetic://?size=128x256",
        "--engines",
        str(tiny_engines),
        "--sink",
        "o.mp4",
        "--trace",
        "trace.json",
        cwd=tmp_path,
    )
    name = "terminated" if sig == signal.SIGTERM else "interrupted"
    try:
        wait_for(proc, (tmp_path / ".o.partial.mp4").exists)  # until frames are being written
        time.sleep(1.0)
        proc.send_signal(sig)
        assert proc.stderr is not None
        said = []
        for line in proc.stderr:  # the first press is acknowledged at once, as it unwinds
            said.append(line)
            if line == f"{name}: finishing the outputs first\n":
                break
        if presses == 2:  # a double tap: the second lands while the first unwinds
            proc.send_signal(sig)
        _out, rest = proc.communicate(timeout=60)
    finally:
        stop_process(proc)
    err = "".join(said) + rest
    assert proc.returncode == code, err
    assert "Traceback" not in err and f"{name}: outputs are finalised, nothing half-written" in err
    assert "did not stop" not in err, err  # the stages were waited for, the source closed
    assert ("still finishing the outputs" in rest) == (presses == 2), err
    frames = int(cv2.VideoCapture(str(tmp_path / "o.mp4")).get(cv2.CAP_PROP_FRAME_COUNT))
    assert frames > 0, "the video was finalised and is playable"
    events = json.loads((tmp_path / "trace.json").read_text())["traceEvents"]
    assert sum(e["name"] == "end_to_end" for e in events) == frames
    assert not list(tmp_path.glob(".*partial*"))


def _ctrl_c_after_a_result(engines_dir: Path, source: Any, sink: Any, delay_s: float = 0.0) -> None:
    """Run ``source`` through the tiny engines into ``sink`` (or a list of sinks) and press
    Ctrl-C (SIGINT to this, the main thread, while it waits for the stages) once a result
    is out."""
    engines = EngineSet.from_manifest(engines_dir)
    first = threading.Event()
    sinks = sink if isinstance(sink, list) else [sink]
    pipe = Pipeline(source=source, engines=engines, sinks=sinks, on_result=lambda r: first.set())
    main = threading.main_thread().ident
    assert main == threading.get_ident()

    def interrupt() -> None:
        first.wait(timeout=60)
        time.sleep(delay_s)
        signal.pthread_kill(main, signal.SIGINT)

    killer = threading.Thread(target=interrupt)
    killer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            pipe.run()
    finally:
        killer.join()
        engines.close()
    assert first.is_set()


class _SlowSource:
    """A synthetic drive whose reads take a while, like a decoder, and which records
    whether it was closed while a read was still in progress."""

    def __init__(self) -> None:
        self._inner = open_source("synthetic://?size=128x256")
        self.uri, self.fps, self.live = "slow://", None, False
        self.reading = False
        self.closed_during_read: bool | None = None

    def read(self) -> Frame | None:
        self.reading = True
        try:
            time.sleep(0.3)
            return self._inner.read()
        finally:
            self.reading = False

    def close(self) -> None:
        self.closed_during_read = self.reading
        self._inner.close()


def test_ctrl_c_waits_for_the_stages_before_closing_the_source(tiny_engines: Path) -> None:
    """Ctrl-C while the main thread waits for the stages: the source is closed only after
    its capture stage stopped, and no stage thread outlives run() (one left inside OpenCV
    made the interpreter abort at exit)."""
    source = _SlowSource()
    _ctrl_c_after_a_result(tiny_engines, source, NullSink(), delay_s=0.1)  # the capture is inside a read
    assert source.closed_during_read is False
    time.sleep(0.2)  # a stage thread returns right after it reports that it is done
    stages = {"edge-capture", "edge-infer", "edge-post", "edge-sink"}
    assert not [t.name for t in threading.enumerate() if t.name in stages]


class _StuckSource(_SlowSource):
    """Its second read hangs until ``release`` (a camera driver that stopped answering)."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.reads = 0

    def read(self) -> Frame | None:
        self.reads += 1
        if self.reads == 2:
            self.reading = True
            self.release.wait(timeout=30)
        return super().read()


class _ClosedSink(NullSink):
    closed = False

    def close(self) -> None:
        self.closed = True


class _HungSink(_ClosedSink):
    """Its second write does not return until ``release``: a disk that stopped answering."""

    def __init__(self) -> None:
        super().__init__("null://hung")
        self.release = threading.Event()

    def write(self, image: np.ndarray, seq: int, t_capture_ns: int | None = None) -> None:
        if self.frames == 1:
            self.release.wait(timeout=30)
        super().write(image, seq)


def test_a_sink_inside_a_write_at_the_stop_is_left_open_and_the_others_closed(
    tiny_engines: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import edge.stream.pipeline as pipeline_module

    monkeypatch.setattr(pipeline_module, "_STOP_TIMEOUT_S", 0.5)
    hung, other = _HungSink(), _ClosedSink("null://other")
    try:
        _ctrl_c_after_a_result(tiny_engines, _SlowSource(), [hung, other], delay_s=1.5)  # frame 1 in
        err = capsys.readouterr().err
        assert "warning: sink 'null://hung' has been inside the write of frame 1 for" in err
        assert other.closed and not hung.closed, "a sink is not closed under the write it is inside"
    finally:
        hung.release.set()


def test_a_stage_that_does_not_stop_keeps_what_it_holds(
    tiny_engines: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A capture stuck in a read past the stop timeout: the sinks are finalised, the source
    it is reading is left open, and the warning says which stage."""
    import edge.stream.pipeline as pipeline_module

    monkeypatch.setattr(pipeline_module, "_STOP_TIMEOUT_S", 0.5)
    source, sink = _StuckSource(), _ClosedSink()
    try:
        _ctrl_c_after_a_result(tiny_engines, source, sink)
        assert "pipeline stage(s) capture did not stop within 0.5 s" in capsys.readouterr().err
        assert source.closed_during_read is None, "the source is left to the stage reading it"
        assert sink.closed
    finally:
        source.release.set()
        for t in threading.enumerate():
            if t.name == "edge-capture":
                t.join(timeout=10)
    source.close()


def _run_removing(
    engines_dir: Path, folder: Path, *, sinks: list[Any], frames: int
) -> tuple[Pipeline, dict[str, Any]]:
    """Run ``frames`` synthetic frames into ``sinks``, removing ``folder`` once frame 2 is
    written; the pipeline and its summary."""

    def remove_output(result: Result) -> None:
        if result.frame.seq == 2:
            shutil.rmtree(folder)

    engines = EngineSet.from_manifest(engines_dir)
    pipe = Pipeline(
        source=open_source(f"synthetic://?size=128x256&frames={frames}"),
        engines=engines,
        sinks=sinks,
        on_result=remove_output,
    )
    try:
        return pipe, pipe.run()
    finally:
        engines.close()


def test_failing_sink_does_not_stop_the_stream(
    tiny_engines: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frames_dir = tmp_path / "frames"
    video = NullSink()
    from edge.stream.sinks import open_sink

    dir_sink = open_sink(f"dir://{frames_dir}")

    # the output folder disappears mid-run, like an unplugged disk
    pipe, s = _run_removing(tiny_engines, frames_dir, sinks=[dir_sink, video], frames=8)
    assert s["frames_out"] == 8 and video.frames == 8, "the stream and the other sink went on"
    assert s["sink_errors"] == 5  # frames 3..7
    err = capsys.readouterr().err
    assert err.count("warning: sink") == 1, "one message per sink and kind of error"
    assert "sink errors 5" in pipe.tracker.format_summary()


def test_a_video_that_cannot_be_finished_is_said_and_counted(
    tiny_engines: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from edge.stream.sinks import open_sink

    folder = tmp_path / "videos"
    video = open_sink(str(folder / "drive.mp4"))
    frames = open_sink(f"dir://{tmp_path / 'frames'}")

    # the video's folder goes, like an unplugged disk: its writes go on into the open file
    pipe, s = _run_removing(tiny_engines, folder, sinks=[video, frames], frames=4)
    assert s["frames_out"] == 4 and s["sink_errors"] == 1
    partial = folder / ".drive.partial.mp4"
    said = f"warning: sink {str(folder / 'drive.mp4')!r}: the video could not be finished: OpenCV cannot"
    assert said in capsys.readouterr().err
    (unfinished,) = s["sinks_unfinished"]
    assert unfinished["sink"] == str(folder / "drive.mp4")
    assert unfinished["reason"].startswith("the video could not be finished: OpenCV cannot read it back")
    said = f"sink {unfinished['sink']!r} not finished: the video could not be finished: OpenCV cannot"
    assert said in pipe.tracker.format_summary()
    assert not folder.exists() and not partial.exists()
    assert len(list((tmp_path / "frames").glob("*.png"))) == 4, "the other sink was still finished"


def _entry(kind: str, model: str, hw: tuple[int, int], built: str, precision: str = "fp32") -> dict:
    return {
        "kind": kind,
        "model": model,
        "backend": "onnxruntime",
        "precision": precision,
        "built_at": built,
        "inputs": [{"shape": [1, 3, *hw]}],
    }


def test_choose_entries_keeps_one_input_size() -> None:
    from edge.stream.engines import choose_entries

    entries = [
        _entry("panoptic", "p", (128, 256), "2026-01-01"),
        _entry("depth", "d", (128, 256), "2026-01-02"),
        _entry("panoptic", "p", (256, 512), "2026-01-03"),
        _entry("depth", "d", (256, 512), "2026-01-04"),
        _entry("depth", "d", (64, 128), "2026-01-05"),
        _entry("depth", "d", (256, 512), "2026-01-06", precision="int8"),
    ]
    hw = lambda e: tuple(e["inputs"][0]["shape"][2:])  # noqa: E731
    got = choose_entries(entries, backend="onnxruntime")
    # the newest depth (64x128) has no panoptic partner: the newest size with both wins
    assert hw(got["panoptic"]) == hw(got["depth"]) == (256, 512)
    assert got["depth"]["precision"] == "int8"  # the newest at that size, of any precision
    got = choose_entries(entries, backend="onnxruntime", precision="fp32", size=(128, 256))
    assert [got[k]["built_at"] for k in ("panoptic", "depth")] == ["2026-01-01", "2026-01-02"]
    got = choose_entries(entries, backend="onnxruntime", size=(64, 128))
    assert got["panoptic"] is None and got["depth"]["built_at"] == "2026-01-05"
    with pytest.raises(ManifestError, match=r"no size at which both .*\(panoptic 256x512, depth 64x128\)"):
        choose_entries(entries[2:3] + entries[4:5], backend="onnxruntime")
    with pytest.raises(ManifestError, match="lists no tensorrt panoptic or depth engine; it lists: depth d"):
        choose_entries(entries, backend="tensorrt")
    # each error names the one flag that selects what the folder holds
    with pytest.raises(ManifestError, match=r"\(run those with --backend onnxruntime\)$"):
        choose_entries(entries, backend="tensorrt")
    with pytest.raises(ManifestError, match=r"\(its onnxruntime engines are fp32, int8: --precision fp32\)$"):
        choose_entries(entries, backend="onnxruntime", precision="fp16")
    with pytest.raises(ManifestError, match=r"\(its onnxruntime engines are at 256x512: --size 256x512\)$"):
        choose_entries(entries, backend="onnxruntime", precision="int8", size=(64, 128))
    with pytest.raises(ManifestError, match=r"at 64x128, 128x256, 256x512: one of them with --size\)$"):
        choose_entries(entries, backend="onnxruntime", size=(512, 1024))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def test_a_sink_that_cannot_open_releases_what_opened_before(tiny_engines: Path) -> None:
    """The viewer listening before the bad sink lets go of its port: run again at once."""
    port = _free_port()
    for _ in range(2):
        with pytest.raises(SinkError, match="unknown sink 'out.txt'"):
            sinks = [f"http://127.0.0.1:{port}", "out.txt"]
            run_stream("synthetic://?frames=2", engines=tiny_engines, sinks=sinks)
        assert _port_is_free(port)


def test_a_live_source_cannot_loop_and_is_closed(tiny_engines: Path) -> None:
    camera = Camera(fps=30)  # a real MJPEG stream on 127.0.0.1
    try:
        with pytest.raises(SourceError, match="is live; only files and folders can loop"):
            run_stream(camera.url, engines=tiny_engines, loop=True)
        capturing = [t for t in threading.enumerate() if t.name == "edge-live-capture"]
        assert not capturing, "the stream opened before the error is closed"
    finally:
        camera.unplug()


def test_run_stream_checks_its_log_paths_before_running(tiny_engines: Path, tmp_path: Path) -> None:
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(
        ConfigError, match="summary '.*' cannot be written: '.*a_file' is a file, not a folder"
    ):
        run_stream("synthetic://?frames=2", engines=tiny_engines, summary_json=tmp_path / "a_file" / "s.json")


def test_sinks_show_the_view_their_uri_asks_for(tiny_engines: Path, tmp_path: Path) -> None:
    """view=input records the source's frames at their own size (losslessly into dir://, so
    they equal the decoded file, and as a video edge run reads back); view=depth and
    view=panoptic write one half of the composite."""
    write_video(tmp_path / "in.mp4", 6, size=(96, 200))
    rec = tmp_path / "rec.mp4"
    sinks = [
        f"{rec}?view=input",
        f"dir://{tmp_path / 'raw'}?view=input",
        f"dir://{tmp_path / 'depth'}?view=depth",
        f"{tmp_path / 'pan.avi'}?view=panoptic",
        str(tmp_path / "both.mp4"),
    ]
    seen: list[Result] = []
    engines = EngineSet.from_manifest(tiny_engines)
    source = open_source(str(tmp_path / "in.mp4"))
    opened = open_sinks(sinks, fps=10, kinds=engines.kinds)
    Pipeline(source=source, engines=engines, sinks=opened, on_result=seen.append).run()
    engines.close()
    decoded = open_source(str(tmp_path / "in.mp4"))
    raw = sorted((tmp_path / "raw").iterdir())
    assert [p.name for p in raw] == [f"frame_{i:06d}.png" for i in range(6)]
    for png in raw:
        frame = decoded.read()
        assert frame is not None
        assert np.array_equal(cv2.cvtColor(cv2.imread(str(png)), cv2.COLOR_BGR2RGB), frame.image)
    replayed = open_source(str(rec))
    frames = [f for f in iter(replayed.read, None)]
    assert len(frames) == 6 and frames[0].image.shape == (96, 200, 3)
    # the halves: each sink has the pixels of its own view
    depth_png = cv2.cvtColor(cv2.imread(str(tmp_path / "depth" / "frame_000005.png")), cv2.COLOR_BGR2RGB)
    assert np.array_equal(depth_png, seen[5].extras["views"]["depth"])
    assert depth_png.shape == (*TEST_SIZE, 3)
    for name, width in (("pan.avi", TEST_SIZE[1]), ("both.mp4", 2 * TEST_SIZE[1])):
        cap = cv2.VideoCapture(str(tmp_path / name))
        assert cap.get(cv2.CAP_PROP_FRAME_COUNT) == 6 and cap.get(cv2.CAP_PROP_FRAME_WIDTH) == width
        cap.release()


def test_a_view_of_an_engine_that_does_not_run_is_refused_before_the_run(
    tiny_engines: Path, tmp_path: Path
) -> None:
    depth_only = tmp_path / "engines"
    shutil.copytree(tiny_engines, depth_only)
    manifest = json.loads((depth_only / "manifest.json").read_text())
    manifest["engines"] = {k: e for k, e in manifest["engines"].items() if e["kind"] == "depth"}
    (depth_only / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(
        SinkError,
        match=r"shows the panoptic view, and no panoptic engine runs \(engines: depth\); "
        r"views here: composite, depth, input",
    ):
        run_stream(
            "synthetic://?size=128x256&frames=2",
            engines=depth_only,
            sinks=[f"dir://{tmp_path / 'first'}", f"{tmp_path / 'pan.mp4'}?view=panoptic"],
        )
    assert not (tmp_path / "pan.mp4").exists() and not (tmp_path / "first").exists()
    # the depth view alone is what a depth-only run makes: the composite is that view
    seen: list[Result] = []
    engines = EngineSet.from_manifest(depth_only)
    uris = [f"dir://{tmp_path / 'd'}?view=depth", f"dir://{tmp_path / 'c'}"]
    sinks = open_sinks(uris, fps=10, kinds=engines.kinds)
    source = open_source("synthetic://?size=128x256&frames=2")
    Pipeline(source=source, engines=engines, sinks=sinks, on_result=seen.append).run()
    engines.close()
    for folder in ("d", "c"):
        png = cv2.cvtColor(cv2.imread(str(tmp_path / folder / "frame_000001.png")), cv2.COLOR_BGR2RGB)
        assert np.array_equal(png, seen[1].rendered)


def test_a_run_draws_only_the_views_its_sinks_show(tiny_engines: Path, tmp_path: Path) -> None:
    """The overlay and the depth colours are most of the post stage's time: a run whose
    sinks write what was found, the source's frames or nothing draws none of them."""
    from edge.stream.sinks import RENDERED_VIEWS, views_shown

    cases = {
        ("null://",): set(),
        (str(tmp_path / "o.jsonl"), "-", f"{tmp_path / 'rec.mp4'}?view=input"): set(),
        (f"dir://{tmp_path / 'd'}?view=depth",): {"depth"},
        (f"{tmp_path / 'p.mp4'}?view=panoptic", str(tmp_path / "o.jsonl")): {"panoptic"},
        (str(tmp_path / "both.mp4"),): {"composite"},
        ("http://127.0.0.1:0",): set(),  # nobody watches it (tests/viewer: while someone does)
    }
    for uris, drawn in cases.items():
        sinks = open_sinks(list(uris), fps=10)
        try:
            assert views_shown(sinks) == drawn, uris
        finally:
            for sink in sinks:
                sink.close()
    seen: list[Result] = []
    engines = EngineSet.from_manifest(tiny_engines)
    uris = [str(tmp_path / "objects.jsonl"), f"dir://{tmp_path / 'depth'}?view=depth"]
    source = open_source("synthetic://?size=128x256&frames=3")
    sinks = open_sinks(uris, fps=10, kinds=engines.kinds)
    Pipeline(source=source, engines=engines, sinks=sinks, on_result=seen.append).run()
    assert len((tmp_path / "objects.jsonl").read_text().splitlines()) == 3
    for r in seen:  # fused for the objects, the depth view drawn for its folder, and no more
        assert "panoptic_ids" in r.extras and set(r.extras["views"]) == {"depth"} and r.rendered is None
    # asked for, everything is drawn whatever the sinks
    seen.clear()
    source = open_source("synthetic://?size=128x256&frames=1")
    sinks = open_sinks(["null://"], fps=10)
    Pipeline(source=source, engines=engines, sinks=sinks, on_result=seen.append, views=RENDERED_VIEWS).run()
    assert seen[0].rendered.shape == (128, 512, 3) and set(seen[0].extras["views"]) == {"panoptic", "depth"}
    with pytest.raises(ConfigError, match=r"views \['input'\] are not among"):
        Pipeline(source=source, engines=engines, sinks=sinks, views=["input"])
    engines.close()


def test_objects_on_standard_output_for_a_reading_program(tiny_engines: Path, tmp_path: Path) -> None:
    """--sink - writes one JSON line per frame to stdout and the summary to stderr; when the
    reader closes the pipe (| head -n 2), the stream ends cleanly and the other sinks are
    finalised."""
    proc = edge_cli(
        "run",
        "synthetic://?size=128x256&frames=3",
        "--engines",
        str(tiny_engines),
        "--sink",
        "-",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["frame"] for r in lines] == [0, 1, 2] and all("objects" in r for r in lines)
    assert "end_to_end" in proc.stderr and "frames in 3  out 3" in proc.stderr

    proc2 = edge_cli_started(
        "run",
        "synthetic://?size=128x256",
        "--engines",
        str(tiny_engines),
        "--sink",
        "-",
        "--sink",
        str(tmp_path / "o.mp4"),
        "--max-frames",
        "400",
        cwd=tmp_path,
    )
    try:
        assert proc2.stdout is not None and proc2.stderr is not None
        first = [json.loads(proc2.stdout.readline()) for _ in range(2)]
        proc2.stdout.close()  # the reader goes away, as head does
        err = proc2.stderr.read()
        assert proc2.wait(timeout=120) == 0, err
    finally:
        stop_process(proc2)
    assert [r["frame"] for r in first] == [0, 1]
    assert "the program reading standard output closed it after" in err and "the stream ends" in err
    assert "BrokenPipeError" not in err and "Traceback" not in err
    frames = int(cv2.VideoCapture(str(tmp_path / "o.mp4")).get(cv2.CAP_PROP_FRAME_COUNT))
    assert 2 <= frames < 400, "the video was finalised when the stream ended"


def test_distances_are_computed_once_for_the_overlay_and_every_objects_sink(
    demo_engines: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A video of the overlay and two objects files: each instance's distance is worked out
    once a frame, and the records carry those numbers."""
    import edge.postprocess.objects as objects_module

    calls: list[int] = []
    real = objects_module.object_distance

    def counted(inst: Any, depth: np.ndarray) -> Any:
        calls.append(inst.panoptic_id)
        return real(inst, depth)

    monkeypatch.setattr(objects_module, "object_distance", counted)
    seen: list[Result] = []
    engines = EngineSet.from_manifest(demo_engines)
    uris = [str(tmp_path / "o.mp4"), str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl")]
    sinks = open_sinks(uris, fps=10, kinds=engines.kinds)
    try:
        source = open_source("synthetic://?size=128x256&frames=4&seed=2")
        Pipeline(source=source, engines=engines, sinks=sinks, on_result=seen.append).run()
    finally:
        engines.close()
    instances = [len(r.extras["instances"]) for r in seen]
    assert sum(instances) > 0 and len(calls) == sum(instances)
    a, b = (
        [json.loads(line) for line in (tmp_path / n).read_text().splitlines()] for n in ("a.jsonl", "b.jsonl")
    )
    assert [r["objects"] for r in a] == [r["objects"] for r in b]
    for record, result in zip(a, seen, strict=True):
        got = [(o["distance_m"], o["nearest_m"]) for o in record["objects"]]
        want = [(round(d[0], 3), round(d[1], 3)) for d in result.extras["distances"] if d is not None]
        assert got == want


def test_post_workers_draw_frames_at_once_and_the_sinks_get_them_in_order(
    tiny_engines: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Several post workers: each frame fused and drawn on a worker, several at a time, and
    written in frame order with the same pixels as one post thread draws."""
    from edge.stream import pipeline as pipeline_module
    from edge.stream.sinks import RENDERED_VIEWS

    engines = EngineSet.from_manifest(tiny_engines)
    one: list[Result] = []
    Pipeline(
        source=open_source("synthetic://?size=128x256&frames=8&seed=4"),
        engines=engines,
        sinks=[NullSink()],
        on_result=one.append,
        views=RENDERED_VIEWS,
    ).run()

    real, at_once, peak, lock = pipeline_module.render_result, [0], [0], threading.Lock()
    second_drawn = threading.Event()

    def slow_in_reverse(result: Result, *args: Any, track: Any = None, **kwargs: Any) -> Any:
        with lock:
            at_once[0] += 1
            peak[0] = max(peak[0], at_once[0])
        try:
            if result.frame.seq == 0:
                # the first frame is drawn last of the first two: order must come from the
                # pipeline, not from timing (and it can only wait if frames are drawn at once);
                # its tracks come first, which the frame after waits for

                def track_then_wait(r: Result) -> None:
                    track(r)
                    second_drawn.wait(timeout=20)

                drawn = real(result, *args, track=track_then_wait, **kwargs)
            else:
                drawn = real(result, *args, track=track, **kwargs)
            if result.frame.seq == 1:
                second_drawn.set()
            return drawn
        finally:
            with lock:
                at_once[0] -= 1

    monkeypatch.setattr(pipeline_module, "render_result", slow_in_reverse)
    frames = tmp_path / "frames"
    several: list[Result] = []
    summary = Pipeline(
        source=open_source("synthetic://?size=128x256&frames=8&seed=4"),
        engines=engines,
        sinks=open_sinks([f"dir://{frames}"], fps=10, kinds=engines.kinds),
        on_result=several.append,
        views=RENDERED_VIEWS,
        post_workers=3,
    ).run()
    engines.close()
    assert peak[0] > 1 and second_drawn.is_set()  # frames were drawn at the same time
    assert [r.frame.seq for r in several] == list(range(8))
    assert summary["frames_out"] == 8 and summary["stages_ms"]["postprocess"]["count"] == 8
    for a, b in zip(one, several, strict=True):
        assert np.array_equal(a.rendered, b.rendered)
    png = cv2.cvtColor(cv2.imread(str(frames / "frame_000007.png")), cv2.COLOR_BGR2RGB)
    assert np.array_equal(png, one[7].rendered)


def test_a_post_workers_error_ends_the_run_with_it(
    tiny_engines: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from edge.stream import pipeline as pipeline_module

    real = pipeline_module.render_result

    def fails_on_frame_2(result: Result, *args: Any, **kwargs: Any) -> Any:
        if result.frame.seq == 2:
            raise ValueError("drawing failed on frame 2")
        return real(result, *args, **kwargs)

    monkeypatch.setattr(pipeline_module, "render_result", fails_on_frame_2)
    engines = EngineSet.from_manifest(tiny_engines)
    video = tmp_path / "out.mp4"
    pipe = Pipeline(
        source=open_source("synthetic://?size=128x256&frames=30"),
        engines=engines,
        sinks=open_sinks([str(video)], fps=10, kinds=engines.kinds),
        post_workers=2,
    )
    with pytest.raises(ValueError, match="frame 2"):
        pipe.run()
    engines.close()
    cap = cv2.VideoCapture(str(video))  # what came before it is finalised
    assert cap.get(cv2.CAP_PROP_FRAME_COUNT) == 2
    cap.release()
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ConfigError, match="post_workers must be a whole number >= 1"):
            Pipeline(source=open_source("synthetic://?frames=1"), engines=engines, sinks=[], post_workers=bad)


def test_the_first_frame_loads_no_module(tiny_engines: Path) -> None:
    """What the frame steps import on first use is loaded before the source starts, so the
    first frame's latency is not a module's loading (in a fresh install, 0.4-0.8 s)."""
    script = f"""
import sys
from edge.stream.engines import EngineSet
from edge.stream.pipeline import Pipeline
from edge.stream.sinks import NullSink
from edge.stream.sources import SyntheticSource

class Watched(SyntheticSource):
    def read(self):
        if not hasattr(self, "before"):
            self.before = set(sys.modules)
        return super().read()

loaded = []
source = Watched("synthetic://?size=128x256&frames=2")
engines = EngineSet.from_manifest({str(tiny_engines)!r})
def on_result(result):
    if result.frame.seq == 0:
        loaded.extend(sorted(set(sys.modules) - source.before))
Pipeline(source=source, engines=engines, sinks=[NullSink()], on_result=on_result).run()
print(" ".join(name for name in loaded if name.split(".")[0] in ("cv2", "edge")))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"modules loaded by the first frame: {out.stdout}"


def test_tracks_are_given_in_frame_order_whatever_the_post_workers(
    demo_engines: Path, tmp_path: Path
) -> None:
    """An objects-only run (nothing drawn: the distances are worked out for the tracks) on
    one post thread and on three: the same lines, tracks and closing speeds included."""
    lines = []
    for workers in (1, 3):
        out = tmp_path / f"objects_{workers}.jsonl"
        engines = EngineSet.from_manifest(demo_engines)
        sinks = open_sinks([str(out)], fps=17, kinds=engines.kinds)
        try:
            source = open_source("synthetic://?size=128x256&frames=12&seed=4")
            Pipeline(source=source, engines=engines, sinks=sinks, post_workers=workers).run()
        finally:
            engines.close()
        lines.append([json.loads(line)["objects"] for line in out.read_text().splitlines()])
    assert lines[0] == lines[1]
    followed = [o for frame in lines[0] for o in frame if o["track_frames"] >= 6]
    assert followed, "objects followed for more than a quarter second"
    assert any(o["closing_mps"] is not None for o in followed)
