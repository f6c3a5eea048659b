"""A run that dies leaves its partial file; the next run to the same name keeps it
(edge.stream.partial). The deaths here are real: a recording killed with SIGKILL."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from edge.cli import main
from edge.errors import SinkError
from edge.stream.partial import interrupted_name, partial_path, rescue_leftover
from edge.stream.record import record
from edge.stream.sinks import open_sink
from edge.stream.sources import open_source
from edge.stream.timestamps import (
    folder_partial_timestamps_path,
    read_timestamps,
    timestamps_path,
)
from tests.conftest import ROOT, stop_process, wait_for
from tests.stream.test_capture import Camera
from tests.stream.test_disk import NOISE, _frames_in, _result
from tests.stream.test_sources_sinks import write_video
from tests.stream.test_timestamps import write_times


def _record(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "edge", "record", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OPENCV_LOG_LEVEL": "ERROR"},
    )


def test_a_killed_recording_is_kept_by_the_next_run_and_a_live_one_is_not_touched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    video, partial = tmp_path / "drive.mkv", tmp_path / ".drive.partial.mkv"
    source = "synthetic://?size=96x128&fps=30"
    proc = _record(source, str(video), "--max-frames", "1000000")
    try:
        wait_for(proc, lambda: partial.exists() and partial.stat().st_size > 200_000)
        # while it records, a second run to the same name is refused and touches nothing
        size = partial.stat().st_size
        assert main(["record", source, str(video), "--max-frames", "3"]) == 2
        assert (
            f"error: sink {str(video)!r}: another process is writing {str(partial)!r} (the same output)"
            in capsys.readouterr().err
        )
        assert partial.stat().st_size >= size and not video.exists()
        proc.send_signal(signal.SIGKILL)  # as a power cut would stop it: nothing is finished
        proc.wait(timeout=30)
    finally:
        stop_process(proc)
    kept = interrupted_name(video, partial.stat().st_mtime)  # named by when that run stopped
    assert main(["record", source, str(video), "--max-frames", "5"]) == 0
    err = capsys.readouterr().err
    assert (
        f"warning: sink {str(video)!r}: {str(partial)!r} was left by a run that did not finish (killed, "
        f"or the power lost); it is kept as {str(kept)!r} (it plays up to about where that run stopped)"
    ) in err
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([video.name, kept.name])
    assert _frames_in(kept) > 10, "the killed run's frames play"
    assert _frames_in(video) == 5


def test_lines_a_dead_run_left_are_kept_and_an_empty_partial_is_not(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, partial = tmp_path / "objects.jsonl", tmp_path / ".objects.partial.jsonl"
    partial.write_text('{"frame": 0}\n{"frame": 1}\n')  # no process holds it: its run is gone
    os.utime(partial, (1_700_000_000, 1_700_000_000))
    kept = interrupted_name(path, 1_700_000_000)
    (tmp_path / kept.name).write_text("an earlier one\n")  # its name is taken: the next is used
    sink = open_sink(str(path))
    sink.write_result(_result(0))  # type: ignore[attr-defined]
    sink.close()
    second = kept.with_name(f"{kept.stem}-1{kept.suffix}")
    assert second.read_text() == '{"frame": 0}\n{"frame": 1}\n'
    assert f"it is kept as {str(second)!r} (its lines are whole)" in capsys.readouterr().err
    assert [json.loads(line)["frame"] for line in path.read_text().splitlines()] == [0]
    partial.touch()  # a run that died before its first frame left nothing worth keeping
    open_sink(str(path)).close()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([path.name, kept.name, second.name])
    assert capsys.readouterr().err == ""


def test_the_capture_times_a_dead_run_wrote_are_kept_beside_its_video(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    video, partial = tmp_path / "drive.mkv", partial_path(tmp_path / "drive.mkv")
    stamps = [i * 40_000_000 for i in range(4)]
    write_video(partial, frames=4)  # left by a run that is gone, with the times it wrote as it went
    write_times(timestamps_path(partial), stamps)
    os.utime(partial, (1_700_000_000, 1_700_000_000))
    kept = interrupted_name(video, 1_700_000_000)
    assert rescue_leftover("drive.mkv", video) == kept
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([kept.name, timestamps_path(kept).name])
    src = open_source(str(kept))
    assert [src.read().meta["media_ms"] for _ in range(4)] == [0, 40, 80, 120]  # type: ignore[union-attr]
    src.close()
    # killed as it finished: the times were in place and the video not yet
    write_video(partial, frames=4)
    write_times(timestamps_path(video), stamps)
    second = rescue_leftover("drive.mkv", video)
    assert second is not None and read_timestamps(timestamps_path(second), frames=4) == [0, 40, 80, 120]
    assert not timestamps_path(video).exists() and "was left by a run" in capsys.readouterr().err
    # the power cut half-way through a line: the whole ones are kept
    for cut, kept_times in (("0.000\n40.000\n8", [0, 40]), ("0.0", None), ("# timest", None)):
        write_video(partial, frames=2)
        text = cut if cut.startswith("#") else f"# timestamp format v2\n{cut}"
        timestamps_path(partial).write_text(text)
        third = rescue_leftover("drive.mkv", video)
        assert third is not None and not timestamps_path(partial).exists()
        if kept_times is None:
            assert not timestamps_path(third).exists(), "not one whole time: the video is kept without"
        else:
            assert read_timestamps(timestamps_path(third), frames=2) == kept_times


def test_a_killed_recording_into_a_folder_replays_at_the_times_it_wrote(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """dir:// keeps exact pixels, a PNG a frame; the capture times go beside them as they
    come, so a recording killed as a power cut would stop it replays as it was captured."""
    frames = tmp_path / "frames"
    cam = Camera(fps=30)
    proc = _record(cam.url, f"dir://{frames}")
    try:
        wait_for(proc, lambda: len(list(frames.glob("frame_*.png"))) >= 10)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        stop_process(proc)
        cam.unplug()
    images = sorted(frames.glob("frame_*.png"))
    src = open_source(str(frames))
    assert (
        f"the recording into {str(frames)!r} did not finish (killed, or the power lost); replaying it at the"
        in capsys.readouterr().err
    )
    read = list(iter(src.read, None))
    assert len(read) == len(images), "every whole image, and no half-written one"
    times = [f.meta.get("media_ms") for f in read]
    assert None not in times[:-1] and times[0] == 0 and times[-2] > 200, "30 fps: over 200 ms for 10 frames"
    assert all(b > a for a, b in itertools.pairwise(times[:-1]))


def test_a_folder_whose_recording_was_cut_replays_at_the_whole_times(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"frame_{i:06d}.png"), NOISE[i])
    times = folder_partial_timestamps_path(tmp_path)
    times.write_text("# timestamp format v2\n0.000\n50.000\n1")  # the power cut mid-line
    assert [f.meta.get("media_ms") for f in iter(open_source(str(tmp_path)).read, None)] == [0, 50, None]
    assert "replaying it at the 2 capture time(s) it wrote" in capsys.readouterr().err
    times.write_text("# timest")
    assert [f.meta.get("media_ms") for f in iter(open_source(str(tmp_path)).read, None)] == [None] * 3
    assert "replaying without capture times" in capsys.readouterr().err


def test_a_camera_recorded_to_mp4_or_webm_is_warned_about(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cam = Camera(fps=60)
    try:
        record(
            cam.url,
            [str(tmp_path / "a.mkv"), str(tmp_path / "b.mp4"), str(tmp_path / "c.webm")],
            max_frames=3,
        )
    finally:
        cam.unplug()
    err = capsys.readouterr().err
    assert err.count("warning:") == 2, err
    assert (
        f"warning: {str(tmp_path / 'b.mp4')!r}: its index is written last, so a killed run or a power cut "
        "loses all of it; an mkv keeps what was written (name it .mkv)"
    ) in err
    assert (  # VP8's pace (tests/stream/test_webm.py, benchmarks/video_formats.py)
        f"warning: {str(tmp_path / 'c.webm')!r}: VP8 takes a picture over ten times as long as .mkv's codec "
        "(benchmarks/results/video_formats_cpu.json), so it misses the camera's frames it cannot keep up "
        "with; record c.mkv and make the .webm after: edge record c.mkv c.webm"
    ) in err
    assert (
        _frames_in(tmp_path / "a.mkv")
        == _frames_in(tmp_path / "b.mp4")
        == _frames_in(tmp_path / "c.webm")
        == 3
    )
    assert cv2.VideoCapture(str(tmp_path / "b.mp4")).isOpened()


def test_a_filesystem_without_locks_is_written_unlocked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Some network mounts have no file locks (ENOLCK; none here to mount): the sink writes
    its partial file unlocked rather than failing."""
    import errno
    import fcntl

    def no_locks(fd: int, operation: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    sink = open_sink(str(tmp_path / "o.jsonl"))
    sink.write_result(_result(0))  # type: ignore[attr-defined]
    sink.close()
    assert (tmp_path / "o.jsonl").read_text().count("\n") == 1


def test_a_leftover_on_a_disk_gone_read_only_is_said_and_left_where_it_is(small_disk: Path) -> None:
    """The next boot finds the dead run's file on a disk Linux has made read-only: the sink
    says it cannot keep it, naming the file, instead of an OSError from a rename."""
    video = small_disk / "drive.mkv"
    partial_path(video).write_bytes(b"\x1a\x45\xdf\xa3 a dead run's video")
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    try:
        with pytest.raises(SinkError) as error:
            rescue_leftover(str(video), video)
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)
    assert str(error.value) == (
        f"sink {str(video)!r}: cannot keep {str(partial_path(video))!r}, left by a run that did not finish: "
        "Read-only file system"
    )
    assert [p.name for p in small_disk.iterdir()] == [".drive.partial.mkv"]
