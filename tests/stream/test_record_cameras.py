"""edge record --camera / --rig: several cameras recorded at once (real MJPEG cameras over
HTTP, real videos, a real SIGINT)."""

from __future__ import annotations

import contextlib
import itertools
import json
import re
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.cli import main
from edge.errors import ConfigError, RecordingStopped, SinkError
from edge.stream.record_cameras import format_cameras_summary, record_cameras
from edge.stream.sinks import NullSink
from edge.stream.timestamps import folder_timestamps_path, read_timestamps
from tests.conftest import signal_when
from tests.stream.test_capture import Camera, read_barcode
from tests.stream.test_record import record_schema_refuses
from tests.util.test_systemd import Listener, systemd_socket  # noqa: F401  (a fixture)


def barcodes(folder: Path) -> list[int]:
    return [read_barcode(cv2.imread(str(p))) for p in sorted(folder.glob("*.png"))]


def test_two_cameras_are_recorded_at_once_each_without_holes(tmp_path: Path) -> None:
    """Each camera's frames in its own folder, numbered on without holes but those its summary
    counts as dropped, each with its capture times; the two recordings overlap in time (one
    did not wait for the other)."""
    front, rear = Camera(fps=30.0), Camera(fps=30.0, start_seq=500)
    try:
        summary = record_cameras(
            {"front": front.url, "rear": rear.url}, [f"dir://{tmp_path}/{{camera}}"], max_frames=12
        )
    finally:
        front.unplug()
        rear.unplug()
    assert record_schema_refuses(json.dumps(summary)) is None
    times = {}
    for name, first in (("front", 0), ("rear", 500)):
        seqs = barcodes(tmp_path / name)
        each = summary["cameras"][name]
        assert len(seqs) == each["frames"] == 12 and not each["interrupted"]
        assert all(b > a for a, b in itertools.pairwise(seqs)) and seqs[0] >= first
        gaps = sum(b - a - 1 for a, b in itertools.pairwise(seqs))
        assert gaps <= each["dropped"] <= gaps + seqs[0] - first
        times[name] = read_timestamps(folder_timestamps_path(tmp_path / name), frames=12)
    overlap = min(times["front"][-1], times["rear"][-1]) - max(times["front"][0], times["rear"][0])
    assert overlap > 0, "recorded at once"
    lines = format_cameras_summary(summary).splitlines()
    assert [line.split(":")[0] for line in lines] == ["camera front", "camera rear"]
    assert lines[0].startswith("camera front: recorded 12 frames in ")


def test_each_camera_turned_its_own_way(tmp_path: Path) -> None:
    """--flip NAME=FLIP: one camera's frames turned, the other's as they came."""
    source = "synthetic://?size=64x128&frames=3&seed=4"
    record_cameras({"a": source, "b": source}, [f"dir://{tmp_path}/{{camera}}"], flip={"b": "rotate-180"})
    plain = [cv2.imread(str(p)) for p in sorted((tmp_path / "a").glob("*.png"))]
    turned = [cv2.imread(str(p)) for p in sorted((tmp_path / "b").glob("*.png"))]
    assert len(plain) == len(turned) == 3
    assert all(np.array_equal(t, p[::-1, ::-1]) for p, t in zip(plain, turned, strict=True))


@pytest.mark.parametrize(
    ("sinks", "error", "said"),
    [
        (
            ["rec.mkv"],
            ConfigError,
            "would get the frames of 2 cameras (a, b); put {camera} in its name for one a camera",
        ),
        (["x-{camera}.mkv", "objects.jsonl"], SinkError, "needs what the engines found (use edge run)"),
        (
            ["x-{camera}.mkv", "http://127.0.0.1:9464/metrics"],
            ConfigError,
            "would serve one recording's statistics",
        ),
        (["display://"], ConfigError, "is a window, which shows one camera"),
        ([], ConfigError, "needs a sink to write each camera's frames to"),
    ],
)
def test_sinks_the_cameras_cannot_share_are_refused(
    tmp_path: Path, sinks: list[str], error: type[Exception], said: str
) -> None:
    cameras = {"a": "synthetic://?frames=2", "b": "synthetic://?frames=2"}
    with pytest.raises(error, match=re_escape(said)):
        record_cameras(cameras, [str(tmp_path / s) if "://" not in s and "." in s else s for s in sinks])
    assert not any(tmp_path.iterdir()), "refused before anything is written"


def re_escape(text: str) -> str:
    import re

    return re.escape(text)


def test_one_cameras_earlier_recording_is_refused_before_any_camera_opens(tmp_path: Path) -> None:
    (tmp_path / "rec-b.mkv").write_bytes(b"an earlier drive")
    cameras = {"a": "synthetic://?frames=2", "b": "synthetic://?frames=2"}
    with pytest.raises(SinkError, match="rec-b.mkv"):
        record_cameras(cameras, [str(tmp_path / "rec-{camera}.mkv")])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rec-b.mkv"]
    assert (tmp_path / "rec-b.mkv").read_bytes() == b"an earlier drive"


def test_a_failed_camera_ends_the_others_each_finished(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A picture of another size under camera a's single video ends its recording; camera b,
    endless, is interrupted then, its video finished and playable; the error names camera a
    and holds both summaries; edge record exits 2 after printing them."""
    changing = tmp_path / "sizes"
    changing.mkdir()
    cv2.imwrite(str(changing / "0.png"), np.zeros((64, 96, 3), np.uint8))
    cv2.imwrite(str(changing / "1.png"), np.zeros((64, 128, 3), np.uint8))
    cameras = {"a": str(changing), "b": "synthetic://?size=64x128&fps=30"}
    with pytest.raises(RecordingStopped) as stopped:
        record_cameras(cameras, [str(tmp_path / "rec-{camera}.avi")], fps=10.0)
    assert str(stopped.value).startswith("camera a: ") and "differs from the first frame's" in str(
        stopped.value
    )
    summaries = stopped.value.data["cameras"]
    assert summaries["a"]["frames"] == 1 and not summaries["a"]["interrupted"]
    assert summaries["b"]["interrupted"] is True
    kept = int(cv2.VideoCapture(str(tmp_path / "rec-b.avi")).get(cv2.CAP_PROP_FRAME_COUNT))
    assert kept == summaries["b"]["frames"]
    argv = ["record", "--camera", f"a={changing}", "--camera", "b=synthetic://?size=64x128&fps=30"]
    assert main([*argv, str(tmp_path / "again-{camera}.avi"), "--fps", "10"]) == 2
    out, err = capsys.readouterr()
    assert "camera a: recorded 1 frame" in out and "camera b: recorded" in out
    assert "error: camera a: " in err


def test_ctrl_c_keeps_every_cameras_playable_recording(tmp_path: Path) -> None:
    partials = [tmp_path / ".rec-front.partial.mp4", tmp_path / ".rec-rear.partial.mp4"]
    cmd = [sys.executable, "-m", "edge.cli", "record", "--camera", "front=synthetic://?size=64x128"]
    cmd += ["--camera", "rear=synthetic://?size=64x128&seed=3", "rec-{camera}.mp4", "--summary", "s.json"]
    code, out, err = signal_when(
        cmd, lambda: all(p.exists() and p.stat().st_size > 20_000 for p in partials), cwd=tmp_path
    )
    assert code == 130, err
    assert "Traceback" not in err
    summary = json.loads((tmp_path / "s.json").read_text())
    assert record_schema_refuses((tmp_path / "s.json").read_text()) is None
    for name in ("front", "rear"):
        frames = int(cv2.VideoCapture(str(tmp_path / f"rec-{name}.mp4")).get(cv2.CAP_PROP_FRAME_COUNT))
        each = summary["cameras"][name]
        assert frames > 0 and each["frames"] == frames and each["interrupted"] is True
        assert f"camera {name}: recorded {frames} frames in" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rec-front.mp4", "rec-rear.mp4", "s.json"]


def test_the_heartbeat_says_each_cameras_progress(tmp_path: Path) -> None:
    """One heartbeat for the rig, its status naming each camera's frames while they record."""
    heartbeat = tmp_path / "beat.json"
    seen: list[str] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            if heartbeat.exists():
                with contextlib.suppress(ValueError, KeyError):  # caught mid-rewrite
                    seen.append(json.loads(heartbeat.read_text())["status"])
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        record_cameras(
            {"front": "synthetic://?size=64x128&fps=20", "rear": "synthetic://?size=64x128&fps=20"},
            ["null://"],
            duration_s=1.5,
            heartbeat=heartbeat,
        )
    finally:
        stop.set()
        watcher.join()
    assert any("front: recording: " in s and " · rear: recording: " in s for s in seen), seen
    assert not heartbeat.exists(), "no run, no file"


RIG = """\
[cameras.front]
source = "synthetic://?size=128x256&frames=3&seed=0"
hfov = 48.9
camera-height = 1.2
horizon = 0.45

[cameras.rear]
source = "synthetic://?size=128x256&frames=3&seed=2"
facing = "rear"
hfov = 48.9
flip = "horizontal"
camera-height = 1.2
horizon = 0.45
"""


def test_each_cameras_first_frame_is_said_once_with_its_capture_time(tmp_path: Path) -> None:
    """on_first_frames is called once, as the last camera gives its first frame, with each
    camera's first recorded frame's capture time: after its camera sent it (the frame's number
    read back from the recording), on the one clock of every camera."""
    front, rear = Camera(fps=30.0), Camera(fps=7.0, start_seq=500)
    calls: list[tuple[dict[str, int | None], int]] = []
    try:
        record_cameras(
            {"front": front.url, "rear": rear.url},
            [f"dir://{tmp_path}/{{camera}}"],
            max_frames=6,
            on_first_frames=lambda firsts: calls.append((firsts, time.perf_counter_ns())),
        )
    finally:
        front.unplug()
        rear.unplug()
    assert len(calls) == 1
    firsts, called_ns = calls[0]
    assert list(firsts) == ["front", "rear"]
    for name, camera in (("front", front), ("rear", rear)):
        sent_ns = camera.published[barcodes(tmp_path / name)[0]]
        first_ns = firsts[name]
        assert first_ns is not None and sent_ns <= first_ns <= called_ns, name
        assert first_ns - sent_ns < 2e9, f"{name}'s first frame is the one it sent then"


def test_recordings_replayed_have_no_first_frame_times_to_compare(tmp_path: Path) -> None:
    """Sources timed by their own media clocks (recordings, synthetic drives) give None: their
    first frames' times are not on one clock."""
    calls: list[dict[str, int | None]] = []
    record_cameras(
        {"a": "synthetic://?size=64x128&frames=2", "b": "synthetic://?size=64x128&frames=2&seed=1"},
        [f"dir://{tmp_path}/{{camera}}"],
        on_first_frames=calls.append,
    )
    assert calls == [{"a": None, "b": None}]


def test_a_rigs_drive_is_recorded_then_run_through_the_rig(
    demo_engines: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """edge record --rig records each camera's frames as it gives them (the rear one's not
    flipped); run back through the same rig with --camera NAME=RECORDING, which flips them as
    the live camera's, they give the objects the rig gives live."""
    rig = tmp_path / "car.toml"
    rig.write_text(RIG)
    drives = tmp_path / "drives"
    assert main(["record", "--rig", str(rig), f"dir://{drives}/{{camera}}"]) == 0
    assert "camera front: recorded 3 frames" in capsys.readouterr().out
    raw = tmp_path / "raw"
    record_cameras({"rear": "synthetic://?size=128x256&frames=3&seed=2"}, [f"dir://{raw}"])
    recorded = sorted((drives / "rear").glob("*.png"))
    assert len(recorded) == 3
    assert all(
        np.array_equal(cv2.imread(str(a)), cv2.imread(str(b)))
        for a, b in zip(recorded, sorted(raw.glob("*.png")), strict=True)
    )
    live, replayed = tmp_path / "live.jsonl", tmp_path / "replayed.jsonl"
    run = ["run", "--rig", str(rig), "--engines", str(demo_engines)]
    assert main([*run, "--sink", str(live)]) == 0
    # folders of frames: synthetic:// has no capture times to keep, so its 17 fps is given
    from_disk = [f"--camera=front={drives}/front", f"--camera=rear={drives}/rear", "--fps", "17"]
    assert main([*run, *from_disk, "--sink", str(replayed)]) == 0

    def objects(path: Path) -> list[tuple[str, object]]:
        lines = [json.loads(line) for line in path.read_text().splitlines()]
        return sorted(((line["camera"], line["objects"]) for line in lines), key=lambda each: each[0])

    assert objects(replayed) == objects(live)


def test_a_rigs_recording_as_a_service(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rig = tmp_path / "car.toml"
    rig.write_text(RIG)
    assert main(["service", "record", "--rig", str(rig), "drives/{camera}.mkv", "--segment", "5m"]) == 0
    unit = capsys.readouterr().out
    assert f'record --rig {rig} "drives/{{camera}}.mkv" --segment 5m' in unit
    assert "Description=edge record front=synthetic://" in unit
    assert main(["service", "record", "--rig", str(rig), "drive.mkv", "--segment", "5m"]) == 2
    assert "put {camera} in its name for one a camera, e.g. 'drive-{camera}.mkv'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        ([], "no source: give one (edge record /dev/video0 drive.mkv), or --camera NAME=URI"),
        (["--camera", "a=synthetic://?frames=2"], "needs a sink to write each camera's frames to"),
        (
            ["--camera", "a=synthetic://?frames=2", "synthetic://?frames=2", "x-{camera}.mkv"],
            "'synthetic://?frames=2' is a source, and this recording's are --camera's cameras",
        ),
        (
            ["--camera", "a=synthetic://", "--camera", "a=synthetic://", "x-{camera}.mkv"],
            "camera name 'a' is given twice",
        ),
        (
            ["--camera", "a=synthetic://", "x-{camera}.mkv", "--flip", "b=rotate-180"],
            "--flip b=rotate-180: no camera is named 'b'",
        ),
    ],
)
def test_a_recording_of_cameras_it_cannot_make_is_refused_before_anything_opens(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    said: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["record", *argv]) == 2
    assert said in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_each_cameras_viewer_names_it_and_links_to_the_others(capsys: pytest.CaptureFixture[str]) -> None:
    """A viewer a camera (port 0: each a free one), each page's /stats naming its camera and
    every camera's viewer, as edge run's do."""
    import re
    import urllib.request

    done = threading.Event()

    def run() -> None:
        try:
            record_cameras(
                {"front": "synthetic://?size=64x128&fps=20", "rear": "synthetic://?size=64x128&fps=20"},
                ["http://127.0.0.1:0"],
                duration_s=4.0,
            )
        finally:
            done.set()

    threading.Thread(target=run, daemon=True).start()
    said = ""
    deadline = time.monotonic() + 20
    while "viewers: " not in said and time.monotonic() < deadline and not done.is_set():
        time.sleep(0.05)
        said += capsys.readouterr().err
    found = dict(re.findall(r"(front|rear) (http://127\.0\.0\.1:\d+)", said.split("viewers: ")[-1]))
    assert set(found) == {"front", "rear"}, said
    ports = {name: int(url.rsplit(":", 1)[1]) for name, url in found.items()}
    for name, url in found.items():
        with urllib.request.urlopen(f"{url}/stats", timeout=5) as answer:
            stats = json.loads(answer.read())
        assert stats["camera"] == name and stats["pictures_only"] is True
        assert {c["name"]: c["port"] for c in stats["cameras"]} == ports
    assert done.wait(30)


def test_one_cameras_stuck_sink_is_said_with_its_camera_and_stops_the_watchdog(
    tmp_path: Path,
    systemd_socket: Listener,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Under systemd with a 1 s watchdog: the front camera's sink that keeps frames, held in a
    write for 2.5 s, holds the run, said with its camera's name, and the one watch stops
    feeding the watchdog meanwhile, though the rear camera records on; the status line holds
    both cameras'."""
    from tests.stream.test_record_writers import HeldSink

    monkeypatch.setenv("WATCHDOG_USEC", "1000000")  # a look every 0.5 s, stuck after 0.5 s
    held = HeldSink("held://", for_watching=False, held_s=2.5)
    front, rear = Camera(fps=30.0), Camera(fps=30.0, start_seq=500)
    try:
        summary = record_cameras(
            {"front": front.url, "rear": rear.url},
            [],
            sinks_of={"front": [held], "rear": [NullSink()]},
            duration_s=4.0,
        )
    finally:
        front.unplug()
        rear.unplug()
    got = systemd_socket.messages()
    stuck = [
        m
        for m in got
        if re.match(r"STATUS=stuck: camera front: sink 'held://' has been writing frame \d+ for", m)
    ]
    assert stuck, got
    assert any(m.startswith("READY=1") for m in got) and any(
        "front: recording: " in m and "rear: recording: " in m for m in got
    )
    err = capsys.readouterr().err
    assert re.search(
        r"warning: the run is stuck: camera front: sink 'held://' has been writing frame \d+", err
    ), err
    assert summary["cameras"]["rear"]["frames"] > summary["cameras"]["front"]["frames"]
