"""Several cameras through one set of engines (edge.stream.multicam): real tiny ONNX Runtime
engines, real synthetic drives, real files, a real systemd socket."""

from __future__ import annotations

import itertools
import json
import re
import signal
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.cli import main
from edge.errors import ConfigError, SourceError
from edge.latency import LatencyTracker
from edge.postprocess.tracks import ObjectTracker
from edge.stream import StreamOptions
from edge.stream.camera_sinks import SharedSink, split_sinks
from edge.stream.engines import EngineSet
from edge.stream.frame import Frame, Result
from edge.stream.multicam import (
    check_cameras,
    format_cameras_summary,
    parse_camera,
    run_all,
    run_cameras,
)
from edge.stream.object_sinks import ObjectsSink
from edge.stream.pipeline import Pipeline
from edge.stream.sinks import NullSink
from edge.stream.sources import open_source
from edge.stream.watchdog import ServiceWatch
from edge.util.turns import TurnLock
from tests.conftest import fill_disk, stop_process, wait_for
from tests.stream.test_capture import Camera
from tests.stream.test_pipeline import edge_cli, edge_cli_started
from tests.stream.test_watchdog import HeldSink, edge_under_systemd
from tests.util.test_systemd import Listener, systemd_socket  # noqa: F401  (a fixture)
from tests.util.test_unit import _verify
from tests.viewer.helpers import get, get_json, mjpeg_frames

DRIVE = "synthetic://?size=128x256&frames={frames}&seed={seed}"


def test_a_camera_is_a_name_and_a_uri_whose_own_equals_signs_it_keeps() -> None:
    assert parse_camera("front=/dev/video0") == ("front", "/dev/video0")
    assert parse_camera("rear_2=synthetic://?fps=17&seed=1") == ("rear_2", "synthetic://?fps=17&seed=1")
    for bad in (
        "/dev/video0",
        "=/dev/video0",
        "front=",
        "-x=/dev/video0",
        "a b=/dev/video0",
        "x" * 33 + "=u",
    ):
        with pytest.raises(ConfigError, match="expected NAME=URI, e.g. front=/dev/video0"):
            parse_camera(bad)
    assert check_cameras([("b", "u1"), ("a", "u2")]) == {"b": "u1", "a": "u2"}  # in the order given
    with pytest.raises(ConfigError, match=r"camera name 'a' is given twice \('u1' and 'u2'\)"):
        check_cameras([("a", "u1"), ("a", "u2")])
    with pytest.raises(ConfigError, match="no camera given"):
        check_cameras([])
    for one, again in (("/dev/video0", "/dev/video0?width=640"), ("csi://0", "csi://0?flip=2")):
        with pytest.raises(
            ConfigError, match=re.escape(f"cameras 'a' and 'b' both open {one}, which opens once")
        ):
            check_cameras([("a", one), ("b", again)])
    # a file, a stream: read as often as asked
    assert len(check_cameras([("a", "d.mp4"), ("b", "d.mp4"), ("c", "rtsp://h/s"), ("d", "rtsp://h/s")])) == 4


def test_sinks_named_with_camera_are_one_a_camera_and_objects_without_it_shared() -> None:
    own, shared = split_sinks(
        ["out/{camera}.mp4", "dir://frames-{camera}/?view=depth", "objects.jsonl", "-", "null://"],
        ["front", "rear"],
    )
    assert own == {
        "front": ["out/front.mp4", "dir://frames-front/?view=depth", "null://"],
        "rear": ["out/rear.mp4", "dir://frames-rear/?view=depth", "null://"],
    }
    assert shared == ["objects.jsonl", "-"]
    # one camera shares nothing: its sinks are its own, {camera} its name
    assert split_sinks(["o.jsonl", "{camera}.mp4"], ["front"]) == ({"front": ["o.jsonl", "front.mp4"]}, [])
    refused = {
        "out.mp4?view=depth": "put {camera} in its name for one a camera, e.g. 'out-{camera}.mp4?view=depth'",
        "dir://frames/": "e.g. 'dir://frames-{camera}/'",
        "display://{camera}": "is a window, which shows one camera, and 2 run (front, rear)",
        "http://127.0.0.1:65535": "2 cameras need 2 ports from 65535, past 65535",
    }
    for uri, said in refused.items():
        with pytest.raises(ConfigError, match=re.escape(f"sink '{uri}'")) as caught:
            split_sinks([uri], ["front", "rear"])
        assert said in str(caught.value)
    with pytest.raises(ConfigError, match="would get the frames of 2 cameras"):
        split_sinks(["out.mp4"], ["front", "rear"])
    # the web viewer: one a camera, on the ports from the one given (any free one for 0)
    own, _ = split_sinks(["http://127.0.0.1:8080", "http://[::1]:0"], ["front", "rear", "side"])
    assert [uris[0] for uris in own.values()] == [f"http://127.0.0.1:{p}" for p in (8080, 8081, 8082)]
    assert {uris[1] for uris in own.values()} == {"http://[::1]:0"}


def test_each_camera_is_watched_in_a_viewer_of_its_own(tiny_engines: Path, tmp_path: Path) -> None:
    """A real edge run of two cameras into the web viewer, read by a real HTTP client: a
    viewer a camera, each showing that camera's pictures and latency; and one metrics endpoint
    for the rig, each camera's samples labelled with its name."""
    proc = edge_cli_started(
        "run",
        *(
            "--camera",
            "front=synthetic://?size=128x256&fps=17",
            "--camera",
            "rear=synthetic://?size=128x256&fps=17&seed=1",
        ),
        *("--realtime", "--engines", str(tiny_engines), "--sink", "http://127.0.0.1:0"),
        *("--sink", "http://127.0.0.1:0/metrics"),
        cwd=tmp_path,
    )
    try:
        assert proc.stderr is not None
        said = []
        while not (line := proc.stderr.readline()).startswith("viewers: "):
            assert line, "the run ended before its viewers were said:\n" + "".join(said)
            said.append(line)
        urls = dict(pair.split(" ") for pair in line.removeprefix("viewers: ").strip().split(", "))
        assert list(urls) == ["front", "rear"] and urls["front"] != urls["rear"]
        assert sum(line.startswith("viewer: http://127.0.0.1:") for line in said) == 2
        (metrics,) = [
            said_line.split(" ")[1].strip() for said_line in said if said_line.startswith("metrics: ")
        ]
        assert metrics.endswith("/metrics")
        pictures = {name: mjpeg_frames(url + "stream/panoptic.mjpg", 2)[-1][1] for name, url in urls.items()}
        assert pictures["front"].shape == pictures["rear"].shape == (128, 256, 3)
        assert not np.array_equal(pictures["front"], pictures["rear"]), "each shows its own camera"
        for name, url in urls.items():
            stats = get_json(url + "stats")
            assert stats["frames_out"] > 0 and stats["stages_ms"]["panoptic"]["count"] > 0
            assert stats["camera"] == name, "the page names the camera it shows"
            # and every camera's viewer, which its page links to
            ports = {other: int(there.rsplit(":", 1)[1].rstrip("/")) for other, there in urls.items()}
            assert stats["cameras"] == [{"name": other, "port": port} for other, port in ports.items()]
            # one endpoint for the rig, each camera's samples named
            status, _, body = get(metrics)
            assert status == 200 and f'edge_frames_out_total{{camera="{name}"}} ' in body.decode()
        # the rig's watch reached the shared sink
        assert get(metrics.removesuffix("metrics") + "healthz")[:3:2] == (200, b"ok\n")
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        stop_process(proc)
    assert proc.returncode == 130
    assert "camera front (" in out and "camera rear (" in out


def _result(camera: str, seq: int) -> Result:
    """A frame of ``camera`` in which nothing was found, as the post stage leaves it."""
    frame = Frame(seq=seq, t_capture_ns=time.perf_counter_ns(), image=np.zeros((4, 8, 3), np.uint8))
    frame.meta["camera"] = camera
    return Result(frame=frame, extras={"resized": np.zeros((2, 4, 3), np.uint8), "objects": []})


def test_a_shared_objects_file_is_finished_by_the_last_camera_to_close_it(tmp_path: Path) -> None:
    path = tmp_path / "objects.jsonl"
    front, rear = SharedSink.of(ObjectsSink("objects.jsonl", path), 2)
    assert front.uri == rear.uri == "objects.jsonl" and front.shows == frozenset()
    front.write_result(_result("front", 0))
    rear.write_result(_result("rear", 0))
    front.write_result(_result("front", 1))
    front.close()
    front.close()  # a second close of one hold counts once
    assert not path.exists(), "the rear camera still writes it"
    rear.write_result(_result("rear", 1))
    rear.close()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(line["camera"], line["frame"]) for line in lines] == [
        ("front", 0),
        ("rear", 0),
        ("front", 1),
        ("rear", 1),
    ]
    assert list(lines[0])[:2] == ["camera", "frame"]


def test_a_shared_sink_that_stops_tells_each_camera_once(small_disk: Path, tiny_engines: Path) -> None:
    """A shared objects file whose disk fills stops for good: the camera that wrote the line
    that did not fit is told, the other at its next frame, each once; the lines before
    are kept whole."""
    path = small_disk / "objects.jsonl"
    holds = SharedSink.of(ObjectsSink("objects.jsonl", path, keep_free=512 * 1024), 2)
    engines = EngineSet.from_manifest(tiny_engines)
    pipelines = {
        name: Pipeline(
            source=open_source(DRIVE.format(frames=6, seed=seed)),
            engines=engines,
            sinks=[hold],
            camera=name,
            engine_turn=TurnLock(),
        )
        for seed, (name, hold) in enumerate(zip(("front", "rear"), holds, strict=True))
    }
    stop_at = threading.Event()
    first_line = threading.Event()

    def filled(result: object) -> None:
        if not first_line.is_set():
            first_line.set()
            fill_disk(small_disk)  # the next line has no room
            stop_at.set()

    pipelines["front"].on_result = filled
    try:
        run_all(pipelines)
    finally:
        engines.close()
    assert stop_at.is_set()
    for name, pipeline in pipelines.items():
        stopped = pipeline.tracker.sinks_stopped
        assert len(stopped) == 1 and stopped[0]["sink"] == "objects.jsonl", (name, stopped)
        # in bytes, or KiB where the filesystem gave back its write-back reservations after the fill
        said = r"has [\d.]+ (bytes|KiB) free, and the next frame needs"
        assert re.search(said, stopped[0]["reason"]), stopped
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines and {line["camera"] for line in lines} <= {"front", "rear"}


def test_two_cameras_share_the_engines_and_are_each_their_own_stream(
    demo_engines: Path, tmp_path: Path
) -> None:
    """The same drive on two cameras gives each the same objects, tracks and all (their
    trackers are apart), in one shared objects file whose lines name their camera; a camera
    whose source ends first ends alone; each has its summary and its video; the trace and
    latency log hold both."""
    cameras = {"front": DRIVE.format(frames=6, seed=0), "rear": DRIVE.format(frames=4, seed=0)}
    trackers = run_cameras(
        cameras,
        engines=demo_engines,
        sinks=[str(tmp_path / "{camera}.mp4"), str(tmp_path / "objects.jsonl")],
        trace=tmp_path / "trace.json",
        latency_log=tmp_path / "spans.jsonl",
        summary_json=tmp_path / "summary.json",
        object_tracker=ObjectTracker(hfov_deg=60.0),
    )
    assert {n: t.frames_out for n, t in trackers.items()} == {"front": 6, "rear": 4}
    for name, frames in (("front", 6), ("rear", 4)):
        video = cv2.VideoCapture(str(tmp_path / f"{name}.mp4"))
        assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == frames
        video.release()
    lines = [json.loads(line) for line in (tmp_path / "objects.jsonl").read_text().splitlines()]
    by = {name: [line for line in lines if line["camera"] == name] for name in cameras}
    assert [line["frame"] for line in by["front"]] == list(range(6))
    assert [line["frame"] for line in by["rear"]] == list(range(4))
    assert any(line["objects"] for line in by["rear"]), "the demo weights find objects"
    # one tracker would have followed one drive's objects through the other's frames
    assert [line["objects"] for line in by["rear"]] == [line["objects"] for line in by["front"][:4]]
    assert {"lateral_m"} <= set(by["rear"][-1]["objects"][0]), "each camera's tracker has the settings"
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert {n: s["frames_out"] for n, s in summary["cameras"].items()} == {"front": 6, "rear": 4}
    events = json.loads((tmp_path / "trace.json").read_text())["traceEvents"]
    names = {e["pid"]: e["args"]["name"] for e in events if e["ph"] == "M"}
    assert names == {1: "camera front", 2: "camera rear"}
    assert sum(e["name"] == "end_to_end" and e["pid"] == 2 for e in events) == 4
    spans = [json.loads(line) for line in (tmp_path / "spans.jsonl").read_text().splitlines()]
    ends = [s for s in spans if s["stage"] == "end_to_end"]
    assert sorted((s["camera"], s["frame"]) for s in ends) == sorted(
        [("front", i) for i in range(6)] + [("rear", i) for i in range(4)]
    )
    # the engines took turns: no two frames' panoptic spans overlap, whichever camera's
    runs = sorted((s["start_ns"], s["end_ns"]) for s in spans if s["stage"] == "panoptic")
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in itertools.pairwise(runs))
    # each frame's wait for its turn is a stage of its own, after its preprocessing (which
    # needs no engine) and before its engines; a wait of any length is the other camera's
    # frame in the engines
    turns = {(s["camera"], s["frame"]): s for s in spans if s["stage"] == "turn"}
    assert set(turns) == {(s["camera"], s["frame"]) for s in ends}
    assert {n: s["stages_ms"]["turn"]["count"] for n, s in summary["cameras"].items()} == {
        "front": 6,
        "rear": 4,
    }
    for s in spans:
        if s["stage"] == "preprocess":
            assert s["end_ns"] <= turns[s["camera"], s["frame"]]["start_ns"]
        if s["stage"] in ("panoptic", "depth"):
            assert turns[s["camera"], s["frame"]]["end_ns"] <= s["start_ns"]
    # the engines run side by side, so a turn is held until the later of the two ends; and
    # the holder's work after its engines (their outputs checked, the turn handed over) and
    # the waiter's wake-up on two busy cores can make a wait that starts up to tens of
    # milliseconds after the other camera's engines end: a wait with no other camera's
    # engines in it or just before it would be a turn held by nothing
    held = {(s["camera"], s["start_ns"], s["end_ns"]) for s in spans if s["stage"] in ("panoptic", "depth")}
    long_waits = [t for t in turns.values() if t["end_ns"] - t["start_ns"] > 5e6]
    assert long_waits, "two drives read flat out wait for each other"
    for t in long_waits:
        assert any(c != t["camera"] and a < t["end_ns"] and b > t["start_ns"] - 50e6 for c, a, b in held), t


def test_each_camera_says_the_road_plane_it_fitted_by_name(
    demo_engines: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two cameras whose frames carry no camera height (a folder each) fit their roads apart,
    and the run's end says each one's under its name (on these frames at 128x256 the tiny
    depth engine's road bends 0.06-0.07, over the 0.03 a plane is taken at, so each says
    none was fitted; a plane's own words: tests/stream/test_steps.py)."""
    from edge.stream.record import record

    for name in ("front", "rear"):
        record(DRIVE.format(frames=3, seed=0), [f"dir://{tmp_path / name}"])
    capsys.readouterr()
    run_cameras(
        {name: str(tmp_path / name) for name in ("front", "rear")},
        engines=demo_engines,
        sinks=[str(tmp_path / "objects.jsonl")],
        object_tracker=ObjectTracker(hfov_deg=48.9),
    )
    said = [line for line in capsys.readouterr().err.splitlines() if line.startswith("note: (")]
    assert said == [
        f"note: ({name}) no road's plane was fitted to the depth map: its road bent, or too "
        "little of it showed"
        for name in ("front", "rear")
    ]


def test_segments_of_each_camera_and_of_the_shared_objects(tiny_engines: Path, tmp_path: Path) -> None:
    """--segment with cameras: each camera's video in its own numbered segments, the shared
    objects file in segments of both cameras' lines, named in the summary of the camera
    that finished it."""
    cameras = {"front": DRIVE.format(frames=8, seed=0), "rear": DRIVE.format(frames=8, seed=1)}
    trackers = run_cameras(
        cameras,
        engines=tiny_engines,
        sinks=[str(tmp_path / "{camera}.mkv"), str(tmp_path / "objects.jsonl")],
        options=StreamOptions(segment_s=0.25),  # 4 frames of the drives' 17 fps
    )
    names = sorted(p.name for p in tmp_path.iterdir())
    front = [n for n in names if n.startswith("front-") and n.endswith(".mkv")]
    rear = [n for n in names if n.startswith("rear-") and n.endswith(".mkv")]
    objects = [n for n in names if n.startswith("objects-") and n.endswith(".jsonl")]
    assert len(front) >= 2 and len(rear) >= 2 and objects, names
    lines = [json.loads(line) for n in objects for line in (tmp_path / n).read_text().splitlines()]
    assert sorted((r["camera"], r["frame"]) for r in lines) == sorted(
        [("front", i) for i in range(8)] + [("rear", i) for i in range(8)]
    )
    listed = [t.summary().get("segments", {}) for t in trackers.values()]
    shared = [
        seg[str(tmp_path / "objects.jsonl")] for seg in listed if str(tmp_path / "objects.jsonl") in seg
    ]
    assert len(shared) == 1 and sorted(Path(f).name for f in shared[0]["files"]) == objects
    assert sorted(Path(f).name for f in listed[0][str(tmp_path / "front.mkv")]["files"]) == front


def test_the_summary_names_a_camera_that_put_no_frame_out() -> None:
    front, rear = LatencyTracker(), LatencyTracker()
    sources = {"front": "/dev/video0", "rear": "rtsp://cam/rear"}
    assert format_cameras_summary({"front": front, "rear": rear}, sources) == "", "nothing to sum up yet"
    front.frame_captured()
    front.frame_done(0, time.perf_counter_ns())
    rear.frame_captured(3)
    said = format_cameras_summary({"front": front, "rear": rear}, sources)
    assert said.startswith("camera front (/dev/video0):\n")
    assert "frames in 1  out 1" in said
    assert said.endswith("\n\ncamera rear (rtsp://cam/rear):\nno frame came out (3 taken in)")


def test_a_camera_that_stalls_holds_up_no_other(tiny_engines: Path) -> None:
    """Two real network cameras (MJPEG over HTTP): while the rear one stops sending, the
    front one's frames go on coming out; the rear's resume when it sends again."""
    cams = {"front": Camera(fps=15), "rear": Camera(fps=15)}
    trackers = {name: LatencyTracker() for name in cams}
    done = threading.Event()

    def run() -> None:
        try:
            run_cameras(
                {name: cam.url for name, cam in cams.items()},
                engines=tiny_engines,
                trackers=trackers,
                options=StreamOptions(duration_s=9.0),
            )
        finally:
            done.set()

    runner = threading.Thread(target=run)
    runner.start()
    try:
        deadline = time.monotonic() + 60
        while min(t.frames_out for t in trackers.values()) < 5:
            assert time.monotonic() < deadline and not done.is_set(), "both cameras' frames come out"
            time.sleep(0.05)
        cams["rear"].stalled.set()
        time.sleep(0.5)  # what the rear camera had sent is through
        front, rear = trackers["front"].frames_out, trackers["rear"].frames_out
        time.sleep(2.0)
        during = trackers["front"].frames_out - front, trackers["rear"].frames_out - rear
        cams["rear"].stalled.clear()
        runner.join(timeout=60)
    finally:
        for cam in cams.values():
            cam.stalled.clear()
        runner.join(timeout=60)
        for cam in cams.values():
            cam.unplug()
    assert during[0] >= 10 and during[1] == 0, during
    assert trackers["rear"].frames_out > rear, "the rear camera's frames came out again"


def test_a_camera_that_cannot_be_opened_closes_what_the_others_opened(
    tiny_engines: Path, tmp_path: Path
) -> None:
    cameras = {"front": DRIVE.format(frames=3, seed=0), "rear": str(tmp_path / "missing.mp4")}
    with pytest.raises(SourceError, match="missing.mp4"):
        run_cameras(
            cameras,
            engines=tiny_engines,
            sinks=[str(tmp_path / "{camera}.mp4"), str(tmp_path / "objects.jsonl")],
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == [], "no file, partial or finished, is left"


def test_an_error_in_one_camera_ends_the_others_and_is_raised(tiny_engines: Path) -> None:
    def broken(result: object) -> None:
        raise RuntimeError("the caller's callback broke")

    engines = EngineSet.from_manifest(tiny_engines)
    turn = TurnLock()
    pipelines = {
        name: Pipeline(
            source=open_source(f"synthetic://?size=128x256&seed={seed}"),  # endless
            engines=engines,
            sinks=[NullSink()],
            engine_turn=turn,
            on_result=broken if name == "rear" else None,
        )
        for seed, name in enumerate(("front", "rear"))
    }
    try:
        with pytest.raises(RuntimeError, match="the caller's callback broke"):
            run_all(pipelines)
    finally:
        engines.close()
    assert pipelines["front"].tracker.frames_in >= 1, "the endless front camera ran, and was stopped"


def test_edge_run_with_cameras_and_its_refusals(demo_engines: Path, tmp_path: Path) -> None:
    proc = edge_cli(
        "run",
        *("--camera", f"front={DRIVE.format(frames=3, seed=0)}"),
        *("--camera", f"rear={DRIVE.format(frames=2, seed=1)}"),
        *("--engines", str(demo_engines), "--sink", "{camera}.mkv", "--sink", "-", "--hfov", "front=60"),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert sorted((r["camera"], r["frame"]) for r in lines) == [
        ("front", 0),
        ("front", 1),
        ("front", 2),
        ("rear", 0),
        ("rear", 1),
    ]
    # the front camera's field of view, given, places its objects; the rear's, not given, is
    # the synthetic camera's own, said once
    objects = {
        name: [o for r in lines if r["camera"] == name for o in r["objects"]] for name in ("front", "rear")
    }
    assert objects["front"] and all("lateral_m" in o for o in objects["front"])
    assert objects["rear"] and all("lateral_m" in o for o in objects["rear"])
    assert proc.stderr.count("note: objects are placed with the field of view of the camera of") == 1
    assert f"of the camera of '{DRIVE.format(frames=2, seed=1)}', 48.9 degrees (--hfov gives" in proc.stderr
    assert f"camera front ({DRIVE.format(frames=3, seed=0)}):\npanoptic" in proc.stderr
    assert "camera rear (" in proc.stderr and "frames in 2  out 2" in proc.stderr
    assert (tmp_path / "front.mkv").exists() and (tmp_path / "rear.mkv").exists()

    refusals = {
        ("synthetic://", "--camera", "a=synthetic://"): "give the source 'synthetic://' or --camera",
        (): "no source: give one",
        ("--camera", "a=synthetic://", "--camera", "a=x.mp4"): "camera name 'a' is given twice",
        (
            "--camera",
            "a=synthetic://",
            "--camera",
            "b=synthetic://",
            "--sink",
            "o.mp4",
        ): "would get the frames",
    }
    for args, said in refusals.items():
        done = edge_cli("run", *args, "--engines", str(demo_engines), cwd=tmp_path)
        assert done.returncode == 2 and said in done.stderr, (args, done.stderr)
    done = edge_cli("run", "--camera", "/dev/video0", cwd=tmp_path)
    assert (
        done.returncode == 2 and "argument --camera: camera '/dev/video0': expected NAME=URI" in done.stderr
    )


def test_ctrl_c_finishes_every_cameras_outputs(tiny_engines: Path, tmp_path: Path) -> None:
    proc = edge_cli_started(
        "run",
        *("--camera", "front=synthetic://?size=128x256", "--camera", "rear=synthetic://?size=128x256&seed=1"),
        *("--engines", str(tiny_engines), "--sink", "{camera}.mp4", "--summary", "s.json"),
        cwd=tmp_path,
    )
    try:
        wait_for(
            proc,
            lambda: (tmp_path / ".rear.partial.mp4").exists() and (tmp_path / ".front.partial.mp4").exists(),
        )
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        stop_process(proc)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "outputs are finalised, nothing half-written" in err
    assert "camera front (" in out and "camera rear (" in out
    summary = json.loads((tmp_path / "s.json").read_text())["cameras"]
    for name in ("front", "rear"):
        video = cv2.VideoCapture(str(tmp_path / f"{name}.mp4"))
        frames = int(video.get(cv2.CAP_PROP_FRAME_COUNT))
        video.release()
        assert frames > 0 and frames == summary[name]["frames_out"], (name, frames)
    assert not list(tmp_path.glob(".*partial*"))


def test_edge_run_with_cameras_under_systemd(
    tiny_engines: Path,
    systemd_socket: Listener,  # noqa: F811
    tmp_path: Path,
) -> None:
    """One status line of both cameras, the watchdog fed while both make progress."""
    _, got = edge_under_systemd(
        systemd_socket,
        "run",
        *(
            "--camera",
            "front=synthetic://?size=128x256&frames=30",
            "--camera",
            "rear=synthetic://?size=128x256&frames=30&seed=1",
        ),
        *("--realtime", "--fps", "15", "--engines", str(tiny_engines)),
        *("--sink", str(tmp_path / "objects.jsonl")),
    )
    assert got[0].startswith("READY=1\nSTATUS=front: frame 0 ") and "  |  rear: frame 0 " in got[0]
    assert sum(m.startswith("WATCHDOG=1\nSTATUS=front: frame ") for m in got) >= 2, got
    assert not any("stuck" in m for m in got)


def test_a_held_camera_is_named_by_the_watch(
    tiny_engines: Path,
    systemd_socket: Listener,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A sink of the rear camera held (a disk that stopped answering) holds the run, said
    with the camera's name, while the front camera goes on."""
    monkeypatch.setenv("WATCHDOG_USEC", "1000000")  # a look every 0.5 s, stuck after 0.5 s
    release = threading.Event()
    engines = EngineSet.from_manifest(tiny_engines)
    turn = TurnLock()
    pipelines = {
        name: Pipeline(
            source=open_source(f"synthetic://?size=128x256&frames=30&seed={seed}"),
            engines=engines,
            sinks=[sink],
            realtime=True,
            fps=15.0,
            camera=name,
            engine_turn=turn,
        )
        for seed, (name, sink) in enumerate((("front", NullSink()), ("rear", HeldSink(release))))
    }
    trackers = {name: p.tracker for name, p in pipelines.items()}
    front_out: list[float] = []  # when each of the front camera's frames came out
    pipelines["front"].on_result = lambda result: front_out.append(time.monotonic())
    timer = threading.Timer(2.0, release.set)
    timer.start()
    try:
        from edge.stream.multicam import CamerasStatus

        watch = ServiceWatch.for_pipelines(pipelines, status=CamerasStatus(trackers, sep="  |  ").status_line)
        with watch:
            run_all(pipelines)
    finally:
        timer.cancel()
        engines.close()
    got = systemd_socket.messages()
    assert any(m.startswith("STATUS=stuck: camera rear: ") for m in got), got
    held = pipelines["rear"].sinks[0].held  # type: ignore[attr-defined]
    during = [t for t in front_out if held[0] < t < held[1]]
    assert len(during) >= 5, (held, front_out)  # the front camera went on meanwhile


def test_edge_service_of_cameras(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    argv = ["run", "--camera", "front=/dev/video0", "--camera", "rear=/dev/video2", "--engines", "engines/"]
    assert (
        main(
            [
                "service",
                "--name",
                "cams",
                "--user",
                "nobody",
                *argv,
                "--sink",
                "drives/{camera}.mkv",
                "--segment",
                "5m",
            ]
        )
        == 0
    )
    unit = capsys.readouterr().out
    assert "Description=edge run front=/dev/video0 rear=/dev/video2\n" in unit
    assert '--sink "drives/{camera}.mkv" --segment 5m\n' in unit
    # systemd reads it back (without the test's User=nobody, which it calls unsafe)
    _verify(unit.replace("User=nobody\n", ""), tmp_path)
    # a camera among them: a fixed file name would be refused at the service's next start
    assert main(["service", "--user", "nobody", *argv, "--sink", "{camera}.mkv"]) == 2
    assert "edge run from a camera or stream refuses to write over" in capsys.readouterr().err
    assert main(["service", "run", "/dev/video0", "--camera", "a=/dev/video1"]) == 2
    assert "or --camera NAME=URI (several cameras at once), not both" in capsys.readouterr().err


def test_cameras_leave_no_thread_or_descriptor_behind(tiny_engines: Path, tmp_path: Path) -> None:
    from benchmarks.soak import open_fds

    def run() -> None:
        run_cameras(
            {"front": DRIVE.format(frames=12, seed=0), "rear": DRIVE.format(frames=9, seed=1)},
            engines=tiny_engines,
            sinks=[str(tmp_path / "{camera}.mkv"), str(tmp_path / "objects.jsonl")],
        )

    run()  # warm: lazy imports and first allocations
    threads, fds = threading.active_count(), open_fds()
    run()
    deadline = time.monotonic() + 5  # a runner thread says it is done a moment before it ends
    while threading.active_count() > threads and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (threading.active_count(), open_fds()) == (threads, fds)


def test_options_are_each_cameras_own(tiny_engines: Path) -> None:
    trackers = run_cameras(
        {"a": "synthetic://?size=128x256", "b": "synthetic://?size=128x256&seed=3"},
        engines=tiny_engines,
        options=StreamOptions(max_frames=3),
        trackers={"a": LatencyTracker(deadline_ms=1e6), "b": LatencyTracker()},
    )
    assert {n: t.frames_out for n, t in trackers.items()} == {"a": 3, "b": 3}
    assert trackers["a"].summary()["deadline_ms"] == 1e6
    cams = {"a": "synthetic://", "b": "synthetic://"}
    with pytest.raises(ConfigError, match=r"trackers has none for camera\(s\) b \(it has: a\)"):
        run_cameras(cams, engines=tiny_engines, trackers={"a": LatencyTracker()})
    with pytest.raises(ConfigError, match=r"object_tracker has none for camera\(s\) a \(it has: b\)"):
        run_cameras(cams, engines=tiny_engines, object_tracker={"b": ObjectTracker()})


def test_a_camera_ranked_higher_keeps_the_engines_when_they_cannot_keep_up(tiny_engines: Path) -> None:
    """Two cameras at 60 fps each, more than the engines take (paced, dropping as cameras do):
    ranked first, the front camera's next frame is waiting as each of its turns ends and it
    keeps the engines, the rear one getting what it leaves; unranked, they take turns."""
    cams = {
        "front": "synthetic://?size=128x256&fps=60",
        "rear": "synthetic://?size=128x256&fps=60&seed=1",
    }
    options = StreamOptions(duration_s=2.0, realtime=True)
    ranked = run_cameras(cams, engines=tiny_engines, options=options, priorities={"front": 1})
    even = run_cameras(cams, engines=tiny_engines, options=options)
    assert ranked["front"].frames_out >= 4 * max(1, ranked["rear"].frames_out), {
        n: t.frames_out for n, t in ranked.items()
    }
    assert ranked["front"].drops < ranked["rear"].drops
    taken = sorted(t.frames_out for t in even.values())
    assert taken[0] >= 0.5 * taken[1], taken
    with pytest.raises(ConfigError, match=re.escape("--priority top: no camera is named 'top'")):
        run_cameras(cams, engines=tiny_engines, priorities={"top": 1})


def test_cameras_that_cannot_all_keep_up_get_turns_by_their_shares(tiny_engines: Path) -> None:
    """The same two cameras, the front one of share 3: about three of its frames to each of
    the rear one's (3:1 where both always wait), and the rear one is not starved."""
    cams = {
        "front": "synthetic://?size=128x256&fps=60",
        "rear": "synthetic://?size=128x256&fps=60&seed=1",
    }
    shared = run_cameras(
        cams,
        engines=tiny_engines,
        options=StreamOptions(duration_s=2.0, realtime=True),
        shares={"front": 3.0},
    )
    frames = {n: t.frames_out for n, t in shared.items()}
    assert frames["front"] >= 1.5 * frames["rear"] and frames["rear"] >= 3, frames
    with pytest.raises(ConfigError, match=re.escape("--share rear=-1: expected a number > 0")):
        run_cameras(cams, engines=tiny_engines, shares={"rear": -1})


def test_a_ranked_camera_keeps_the_engines_only_for_a_turn_it_can_start_at_once(tiny_engines: Path) -> None:
    """As its turn ends, a camera keeps the shared engines only where its next frame waits
    and its post stage has room for the result in hand: with that stage behind, the engines
    would sit idle, kept, while it waits for its own post stage."""
    engines = EngineSet.from_manifest(tiny_engines, engine_options={"intra_op_threads": 1})
    seat = TurnLock().seat(1)
    pipeline = Pipeline(
        source=open_source("synthetic://?size=128x256"),
        engines=engines,
        sinks=[NullSink()],
        realtime=True,
        engine_turn=seat,
    )
    try:
        ready = seat._ready
        assert ready is not None and not ready(), "no frame waits"
        pipeline._frames.put(pipeline.source.read())
        assert ready()
        while not pipeline._results.full():
            pipeline._results.put(None)
        assert not ready(), "the post stage has no room"
        pipeline._results.get()
        assert ready()
        pipeline.stop()
        assert not ready(), "stopping"
    finally:
        pipeline.abandon()
        engines.close()


def test_ranks_among_files_read_flat_out_are_said_to_starve_the_lower_cameras(
    tiny_engines: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Read as fast as the engines take them, looping (so not in drive order: edge.stream.pacing),
    a ranked camera's next frame is always ready: the lower one gets the engines once it has
    ended, which is said; paced, or read in drive order, it is not."""
    cams = {"front": DRIVE.format(frames=4, seed=0), "rear": DRIVE.format(frames=4, seed=1)}
    looping = StreamOptions(loop=True, max_frames=4)
    trackers = run_cameras(cams, engines=tiny_engines, priorities={"front": 1}, options=looping)
    assert {n: t.frames_out for n, t in trackers.items()} == {"front": 4, "rear": 4}
    err = capsys.readouterr().err
    assert "warning: --priority ranks cameras of which front, rear read frames as fast as" in err
    assert "--realtime paces files as cameras" in err
    run_cameras(cams, engines=tiny_engines, priorities={"front": 1}, options=StreamOptions(realtime=True))
    run_cameras(cams, engines=tiny_engines)  # no ranks
    trackers = run_cameras(cams, engines=tiny_engines, priorities={"front": 1})  # in drive order
    assert {n: t.frames_out for n, t in trackers.items()} == {"front": 4, "rear": 4}
    assert "--priority" not in capsys.readouterr().err
