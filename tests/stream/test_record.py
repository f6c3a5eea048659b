"""edge record: a real video file, a real HTTP MJPEG camera, a real SIGINT."""

from __future__ import annotations

import importlib.util
import itertools
import json
import signal
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from edge.errors import ConfigError, Interrupted, RecordingStopped, SinkError
from edge.stream.record import format_summary, record
from edge.stream.sources import open_source
from edge.stream.timestamps import folder_timestamps_path, read_timestamps, timestamps_path
from tests.conftest import signal_when
from tests.stream.test_capture import Camera, EveryFrameCamera, read_barcode
from tests.stream.test_sources_sinks import write_video


def test_a_file_recorded_frame_for_frame(tmp_path: Path) -> None:
    """dir:// keeps the exact decoded pixels; the video keeps size, count and the file's rate."""
    write_video(tmp_path / "in.mp4", 8, size=(96, 200), fps=10.0)
    rec, frames = tmp_path / "rec.mp4", tmp_path / "frames"
    summary = record(str(tmp_path / "in.mp4"), [str(rec), f"dir://{frames}"])
    assert summary["frames"] == 8 and summary["dropped"] == 0 and not summary["interrupted"]
    assert format_summary(summary).startswith("recorded 8 frames in ")
    decoded = open_source(str(tmp_path / "in.mp4"))
    for i in range(8):
        frame = decoded.read()
        assert frame is not None
        png = cv2.imread(str(frames / f"frame_{i:06d}.png"))
        assert np.array_equal(cv2.cvtColor(png, cv2.COLOR_BGR2RGB), frame.image)
    cap = cv2.VideoCapture(str(rec))
    assert cap.get(cv2.CAP_PROP_FRAME_COUNT) == 8 and cap.get(cv2.CAP_PROP_FPS) == 10.0
    assert (cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (200, 96)
    cap.release()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames", "in.mp4", "rec.mp4"]


def test_a_camera_recorded_without_holes_and_drops_counted(tmp_path: Path) -> None:
    """Every frame the camera delivered is in the recording: consecutive frame numbers
    (read back from the barcode each frame carries) except where the summary counts drops.
    The video holds the same frames, and its capture times beside it follow the camera's
    30 fps clock."""
    camera = EveryFrameCamera(fps=30.0)
    try:
        summary = record(
            camera.url, [f"dir://{tmp_path / 'frames'}", str(tmp_path / "rec.avi")], max_frames=12, fps=30.0
        )
    finally:
        camera.unplug()
    seqs = [read_barcode(cv2.imread(str(p))) for p in sorted((tmp_path / "frames").glob("*.png"))]
    assert len(seqs) == summary["frames"] == 12
    video = open_source(str(tmp_path / "rec.avi"))
    in_video = [read_barcode(f.image) for f in iter(video.read, None)]
    assert in_video == seqs
    times = read_timestamps(timestamps_path(tmp_path / "rec.avi"), frames=12)
    assert read_timestamps(folder_timestamps_path(tmp_path / "frames"), frames=12) == times
    assert not list((tmp_path / "frames").glob(".*")), "the times written as they came are in place"
    assert summary["timestamps"] == [
        str(tmp_path / "frames" / "timestamps.txt"),
        f"{tmp_path / 'rec.avi'}.timestamps.txt",
    ]
    assert format_summary(summary).endswith(f"; capture times in {', '.join(summary['timestamps'])}")
    span_ms = (seqs[-1] - seqs[0]) * 1000 / 30.0  # the camera's clock (it sleeps 1/30 s a frame)
    assert 0.7 * span_ms <= times[-1] - times[0] <= 2 * span_ms + 100
    gaps = sum(b - a - 1 for a, b in itertools.pairwise(seqs))
    assert all(b > a for a, b in itertools.pairwise(seqs))
    # every hole is a frame the capture thread replaced and counted; the count may also hold
    # frames replaced before the first one was recorded (at most those numbered before it)
    assert gaps <= summary["dropped"] <= gaps + seqs[0]


def test_a_camera_slower_than_the_video_rate_is_said(tmp_path: Path) -> None:
    """A 10 fps camera recorded into a 30 fps video plays 3x fast in a player: the summary
    gives both rates and the --fps that matches; a file's frames have no capture rate."""
    camera = Camera(fps=10.0)
    try:
        summary = record(camera.url, [str(tmp_path / "rec.avi")], max_frames=6, fps=30.0)
    finally:
        camera.unplug()
    assert summary["video_fps"] == 30.0
    times = read_timestamps(timestamps_path(tmp_path / "rec.avi"), frames=6)
    assert summary["captured_fps"] == pytest.approx(5 / (times[-1] - times[0]) * 1e3, rel=1e-3)
    # the camera's clock, less any frame it dropped; the first may come in a burst on connecting
    assert 5 <= summary["captured_fps"] <= 20
    line, captured = format_summary(summary), summary["captured_fps"]
    assert f"the video plays at 30 fps but its frames were captured at {captured:.1f} fps" in line
    assert f"a player shows it at {30 / captured:.2g}x speed" in line
    assert f"--fps {captured:.0f} writes the video at their rate" in line
    # a time-lapse camera gets an --fps it can be given (not "0")
    assert "--fps 0.25 writes" in format_summary({**summary, "captured_fps": 0.25})
    # at the rate they were captured at, nothing to say
    assert "plays at" not in format_summary({**summary, "video_fps": summary["captured_fps"] * 1.05})
    write_video(tmp_path / "in.mp4", 3, fps=10.0)
    from_file = record(str(tmp_path / "in.mp4"), [str(tmp_path / "copy.avi")], fps=30.0)
    assert from_file["captured_fps"] is None and "plays at" not in format_summary(from_file)


def test_a_recording_recorded_again_keeps_its_capture_times(tmp_path: Path) -> None:
    write_video(tmp_path / "drive.mp4", 4)
    timestamps_path(tmp_path / "drive.mp4").write_text("# timestamp format v2\n0\n40\n400\n440.5\n")
    record(str(tmp_path / "drive.mp4"), [str(tmp_path / "first3.avi")], max_frames=3)
    assert read_timestamps(timestamps_path(tmp_path / "first3.avi"), frames=3) == [0.0, 40.0, 400.0]


def test_duration_ends_an_endless_source(tmp_path: Path) -> None:
    summary = record("synthetic://?size=64x128", [f"{tmp_path / 'o.mp4'}?view=input"], duration_s=0.5)
    assert summary["frames"] > 0 and summary["seconds"] >= 0.5
    assert cv2.VideoCapture(str(tmp_path / "o.mp4")).get(cv2.CAP_PROP_FRAME_COUNT) == summary["frames"]


@pytest.mark.parametrize(
    "sink,match",
    [
        ("objects.jsonl", "needs what the engines found \\(use edge run\\)"),
        ("-", "needs what the engines found"),
        ("o.mp4?view=depth", "no depth engine runs"),
        ("o.txt", "unknown sink"),
    ],
)
def test_sinks_that_need_engines_are_refused_before_recording(tmp_path: Path, sink: str, match: str) -> None:
    out = sink if sink == "-" else str(tmp_path / sink)
    with pytest.raises(SinkError, match=match):
        record("synthetic://?size=64x128&frames=2", [f"dir://{tmp_path / 'frames'}", out])
    assert not any(tmp_path.iterdir()), "nothing was written"
    if sink.endswith(".jsonl"):  # one that exists: the same refusal, not that it exists
        (tmp_path / sink).write_text("{}\n")
        with pytest.raises(SinkError, match=match):
            record("synthetic://?size=64x128&frames=2", [out])
    with pytest.raises(ConfigError, match="needs at least one sink"):
        record("synthetic://?frames=1", [])


def test_ctrl_c_between_a_frames_sinks_keeps_the_sinks_and_counts_equal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real SIGINT at the worst moment: frame 3 handed to the video's thread and not yet to
    the folder's, nor counted. That frame still reaches every sink and is counted, so the
    video, its capture times, the folder and the summary agree (a subprocess test hit this
    window at random under load when the sinks were written in turn: one frame uncounted)."""
    from edge.stream.writers import SinkWriters

    write_video(tmp_path / "drive.mp4", 8)
    timestamps_path(tmp_path / "drive.mp4").write_text(
        "# timestamp format v2\n" + "".join(f"{40 * i}\n" for i in range(8))
    )
    put = SinkWriters._put

    def put_then_ctrl_c(self: SinkWriters, index: int, handed: Any, ends: Any) -> bool:
        handed_over = put(self, index, handed, ends)
        if index == 0 and handed.result.frame.seq == 3:
            signal.raise_signal(signal.SIGINT)  # its handler runs before the next statement
        return handed_over

    monkeypatch.setattr(SinkWriters, "_put", put_then_ctrl_c)
    rec, frames = tmp_path / "rec.avi", tmp_path / "frames"
    with pytest.raises(Interrupted) as caught:
        record(str(tmp_path / "drive.mp4"), [str(rec), f"dir://{frames}"])
    summary = caught.value.data
    assert summary["interrupted"] and summary["frames"] == 4
    assert summary["captured_fps"] == pytest.approx(3 / 0.120)  # from the first and the fourth time
    assert cv2.VideoCapture(str(rec)).get(cv2.CAP_PROP_FRAME_COUNT) == 4
    assert read_timestamps(timestamps_path(rec), frames=4) == [0.0, 40.0, 80.0, 120.0]
    assert len(list(frames.glob("*.png"))) == 4


def record_schema_refuses(text: str) -> str | None:
    """Why edge schema record refuses a --summary file (None: it takes it; also where
    jsonschema, a dev dependency, is missing)."""
    if importlib.util.find_spec("jsonschema") is None:
        return None
    from edge.schemas import check_document

    return check_document("record", text)


def test_ctrl_c_keeps_a_playable_recording(tmp_path: Path) -> None:
    partial = tmp_path / ".rec.partial.mp4"
    code, out, err = signal_when(
        [
            sys.executable,
            "-m",
            "edge.cli",
            "record",
            "synthetic://?size=64x128",
            "rec.mp4",
            "--summary",
            "s.json",
        ],
        lambda: partial.exists() and partial.stat().st_size > 20_000,
        sig=signal.SIGINT,
        cwd=tmp_path,
    )
    assert code == 130, err
    assert "Traceback" not in err and "nothing half-written" in err
    frames = int(cv2.VideoCapture(str(tmp_path / "rec.mp4")).get(cv2.CAP_PROP_FRAME_COUNT))
    assert frames > 0 and f"recorded {frames} frames in" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rec.mp4", "s.json"]
    summary = json.loads((tmp_path / "s.json").read_text())  # --summary, after Ctrl-C too
    assert record_schema_refuses((tmp_path / "s.json").read_text()) is None
    assert summary["interrupted"] is True and summary["frames"] == frames
    assert summary["sinks_frames"] == {"rec.mp4": frames}


def test_an_earlier_recording_is_not_written_over_unless_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from edge.cli import main

    video, frames = tmp_path / "drive.mkv", tmp_path / "frames"
    assert main(["record", "synthetic://?size=64x96&frames=3", str(video)]) == 0
    earlier = video.read_bytes()
    capsys.readouterr()
    again = ["record", "synthetic://?size=64x96&frames=5", f"dir://{frames}", str(video)]
    assert main(again) == 2
    err = capsys.readouterr().err
    assert f"sink {str(video)!r}: {str(video)!r} already exists (" in err and "--overwrite" in err, err
    assert video.read_bytes() == earlier, "the earlier recording is as it was"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["drive.mkv"], "and nothing else was written"
    # said before the source is opened (a network camera can take its connect timeout)
    assert main(["record", str(tmp_path / "no-camera.mkv"), str(video)]) == 2
    err = capsys.readouterr().err
    assert f"sink {str(video)!r}: {str(video)!r} already exists (" in err and "no such file" not in err, err
    # asked, it is replaced, and so are the capture times a camera's recording had beside it:
    # --realtime would replay the new video at them
    times = timestamps_path(video)
    times.write_text("# timestamp format v2\n0\n40\n80\n")
    assert main([*again, "--overwrite"]) == 0
    assert int(cv2.VideoCapture(str(video)).get(cv2.CAP_PROP_FRAME_COUNT)) == 5
    assert not times.exists() and getattr(open_source(str(video)), "timestamps", None) is None
    assert f"removed {str(times)!r}: the capture times of the recording" in capsys.readouterr().err
    # cut in segments, each file has a name of its own and nothing is refused
    assert main(["record", "synthetic://?size=64x96&frames=2", str(video), "--segment", "60"]) == 0
    assert len(list(tmp_path.glob("drive-00000-*.mkv"))) == 1


def test_summary_json_says_what_the_line_says(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from edge.cli import main

    video, frames = tmp_path / "rec.mkv", f"dir://{tmp_path / 'frames'}"
    written = tmp_path / "s.json"
    assert (
        main(["record", "synthetic://?size=64x96&frames=6", str(video), frames, "--summary", str(written)])
        == 0
    )
    summary = json.loads(written.read_text())
    assert record_schema_refuses(written.read_text()) is None  # edge schema record
    assert summary["frames"] == 6 and summary["interrupted"] is False and summary["dropped"] == 0
    assert summary["sinks"] == [str(video), frames] and summary["sinks_frames"] == {str(video): 6, frames: 6}
    assert capsys.readouterr().out == format_summary(summary) + "\n"


def test_a_video_that_cannot_be_finished_ends_the_recording_with_its_summary(
    tmp_path: Path, small_disk: Path
) -> None:
    """The last thing a recording does, finishing its videos, can fail (here the disk fills
    under the writer, with the room check off): the other sinks are still finished, and
    the recording ends with its summary and that error, rather than the error alone."""
    source = tmp_path / "noise"
    source.mkdir()
    for i, picture in enumerate(np.random.default_rng(1).integers(0, 256, (60, 192, 256, 3), np.uint8)):
        cv2.imwrite(str(source / f"{i}.png"), picture)  # MJPG keeps ~38 KiB of each: 2.2 MiB
    video, frames = small_disk / "rec.avi", tmp_path / "frames"
    with pytest.raises(RecordingStopped) as stopped:
        record(str(source), [str(video), f"dir://{frames}"], fps=10.0, keep_free=0)
    assert str(stopped.value).startswith(f"sink {str(video)!r}: the video could not be finished: ")
    summary = stopped.value.data
    assert summary["frames"] == 60 and not summary["interrupted"]
    assert len(list(frames.glob("frame_*.png"))) == 60, "the other sink was finished"
    assert not video.exists() and (small_disk / ".rec.partial.avi").exists()


def test_a_recording_ended_by_its_sink_exits_3_only_when_the_sink_stopped_for_good(
    tmp_path: Path, small_disk: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A full disk ends edge record for good (exit status 3: a service is not started again
    on it); a picture of another size under a single video ends it too, with its summary,
    but as an error a new run may not meet (2: the camera may have changed its mode)."""
    from edge.cli import main
    from tests.conftest import fill_disk

    source = tmp_path / "sizes"
    source.mkdir()
    cv2.imwrite(str(source / "0.png"), np.zeros((64, 96, 3), np.uint8))
    cv2.imwrite(str(source / "1.png"), np.zeros((64, 128, 3), np.uint8))
    assert main(["record", str(source), str(tmp_path / "rec.avi"), "--fps", "10"]) == 2
    out, err = capsys.readouterr()
    assert "recorded 1 frame" in out and "frame size 128x64 differs from the first frame's 96x64" in err
    fill_disk(small_disk, leave=200 << 10)
    video = small_disk / "rec.avi"
    stopped = tmp_path / "stopped.json"
    argv = [
        "record",
        "synthetic://?size=96x128&seed=1",
        str(video),
        "--keep-free",
        "128K",
        "--summary",
        str(stopped),
    ]
    assert main(argv) == 3
    out, err = capsys.readouterr()
    assert "the sink stops, keeping the" in err
    summary = json.loads(stopped.read_text())  # --summary, when the disk ended it too
    assert record_schema_refuses(stopped.read_text()) is None
    assert summary["frames"] > 0 and out == format_summary(summary) + "\n"
