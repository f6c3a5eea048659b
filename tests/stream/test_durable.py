"""Recordings reach the disk as they go and when finished, not 30 s later when the kernel
writes them back: a power cut loses a few seconds at most (edge.stream.durable).

A power cut cannot be made here, so os.fsync is watched (and still called): the test
checks which files the sinks flush, and when. A disk that fails can be made: a real ext4
on a loop device whose image has no room left under it (tests.conftest.failing_disk)."""

from __future__ import annotations

import errno
import json
import os
import re
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from edge.errors import RecordingStopped, SinkError, SinkStopped
from edge.stream import durable
from edge.stream.partial import partial_path
from edge.stream.record import record
from edge.stream.sinks import open_sink
from edge.stream.timestamps import folder_partial_timestamps_path, timestamps_path
from tests.conftest import ROOT, FailingDisk, SlowDisk
from tests.stream.test_capture import Camera
from tests.stream.test_disk import NOISE, _frames_in, _result

# what a sink says once its disk has failed to store what it wrote: EIO from the disk, or
# ENOSPC from the image under it, or EROFS once ext4 has given up on it
FAILED = (
    r"the disk holding '[^']+' failed to store what was written to it \((EIO|ENOSPC|EROFS): [^;]+; [^)]+\)"
)

READ_ONLY = (
    r"the disk holding '[^']+' has become read-only \(Linux remounts a disk read-only after write errors, "
    r"as from a failing SD card: see dmesg\)"
)


ANY_COUNT = r"\d+"


def stopped_for(frames: str) -> str:
    """What a sink says as it stops on a disk that failed, ``frames`` written before: found
    by a flush, or by a write refused once ext4 has given up on the disk (which comes first
    depends on how soon ext4 gives up)."""
    return (
        rf"{FAILED}: the sink stops, and the {frames} frame\(s\) before may not all be on it"
        rf"|{READ_ONLY}: the sink stops, keeping the {frames} frame\(s\) written before"
    )


@pytest.fixture
def synced(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths os.fsync is called on, in order; flushed every 50 ms."""
    paths: list[str] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        paths.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(durable, "SYNC_EVERY_S", 0.05)
    return paths


def test_a_recording_is_flushed_to_the_disk_as_it_goes_and_when_finished(
    tmp_path: Path, synced: list[str]
) -> None:
    video, frames, objects = tmp_path / "drive.mkv", tmp_path / "frames", tmp_path / "objects.jsonl"
    sinks = [
        open_sink(str(video), fps=10, timing="stamped"),
        open_sink(f"dir://{frames}", timing="stamped"),
        open_sink(str(objects)),
    ]
    writing = [
        str(partial_path(video)),
        str(timestamps_path(partial_path(video))),
        str(frames / "frame_000000.png"),
        str(folder_partial_timestamps_path(frames)),
        str(partial_path(objects)),
    ]
    for seq in range(4):
        sinks[0].write(NOISE[seq], seq, seq * 100_000_000)
        sinks[1].write(NOISE[seq], seq, seq * 100_000_000)
        sinks[2].write_result(_result(seq))  # type: ignore[attr-defined]
    deadline = time.monotonic() + 30
    while not set(writing) <= set(synced):  # every 50 ms, on the sinks' own threads
        assert time.monotonic() < deadline, f"not flushed while written: {set(writing) - set(synced)}"
        time.sleep(0.01)
    for sink in sinks:
        synced.clear()
        sink.close()
        # the content, then the folder once the finished names are in it
        assert synced[-1] == str(tmp_path if sink is not sinks[1] else frames), synced
    assert _frames_in(video) == 4 and len(objects.read_text().splitlines()) == 4
    names = [*(f"frame_{i:06d}.png" for i in range(4)), "timestamps.txt"]
    assert sorted(p.name for p in frames.iterdir()) == names


def test_a_video_flushes_its_content_before_its_name(tmp_path: Path, synced: list[str]) -> None:
    video = tmp_path / "drive.mkv"
    sink = open_sink(str(video), fps=10, timing="stamped")
    sink.write(NOISE[0], 0, 0)
    synced.clear()
    sink.close()
    partial = partial_path(video)
    tail = [p for p in synced if p in (str(partial), str(timestamps_path(partial)), str(tmp_path))]
    assert tail[-3:] == [str(partial), str(timestamps_path(partial)), str(tmp_path)]


def test_a_folder_that_cannot_be_flushed_after_a_rename_names_the_sink_and_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disk fails between a finished file's flush and its folder's (made so here: the
    folder's fsync fails, as a failing card's would): the file is in place, and the error
    names the sink and the file whose name a power cut may yet lose. (A dir:// sink flushes
    its folder with its frames, before its times are put in place: test_durable's others.)"""
    video, objects = tmp_path / "drive.mkv", tmp_path / "objects.jsonl"
    sinks = [open_sink(str(video), fps=10, timing="stamped"), open_sink(str(objects))]
    sinks[0].write(NOISE[0], 0, 0)
    sinks[1].write_result(_result(0))  # type: ignore[attr-defined]
    real = os.fsync

    def fsync(fd: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    for sink, placed in zip(sinks, (video, objects), strict=True):
        with pytest.raises(SinkStopped) as stopped:
            sink.close()
        assert str(stopped.value) == (
            f"sink {sink.uri!r}: the disk holding {str(tmp_path)!r} failed to store what was written to it "
            "(EIO: Input/output error; a failing disk or SD card? see dmesg); "
            f"{str(placed)!r} is finished, but after a power cut it may be found under its partial name"
        )
        assert placed.exists() and not partial_path(placed).exists()


def test_a_disk_slower_than_the_recording_is_said_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Flushes that take longer than the time between them (made so: each fsync waits, as a
    slow card's does) are said once for the sink, across its segments, with what that
    costs; the recording goes on."""
    monkeypatch.setattr(durable, "SYNC_EVERY_S", 0.05)
    monkeypatch.setattr(durable, "SLOW_FLUSH_S", 0.05)
    real = os.fsync

    def slow(fd: int) -> None:
        time.sleep(0.06)
        real(fd)

    monkeypatch.setattr(os, "fsync", slow)
    video = tmp_path / "drive.mkv"
    sink = open_sink(str(video), fps=10, timing="stamped", segment_s=0.3)
    for seq in range(12):  # four segments, each flushed as it goes
        sink.write(NOISE[seq % 8], seq, seq * 100_000_000)
        time.sleep(0.05)
    sink.close()
    assert len(list(tmp_path.glob("drive-*.mkv"))) == 4
    err = capsys.readouterr().err
    assert err.count("warning:") == 1, err
    assert re.fullmatch(
        rf"warning: sink {re.escape(repr(str(video)))}: its disk took [0-9.]+ s to store the last 0.05 s of "
        r"what was written: it is slower than the recording \(a slow or worn SD card\?\), so a power cut "
        r"may lose more, and frames may be dropped as the writes wait for it \(said once\)\n",
        err,
    ), err


def test_edge_record_on_a_disk_slower_than_the_recording_says_so(slow_disk: SlowDisk) -> None:
    """A real disk that stores 128 KiB/s (a loop device throttled by its cgroup) under a
    recording that writes about twice that: the flushes fall behind and edge record says
    so, once, and still finishes a video that plays."""
    video = slow_disk.path / "drive.mkv"
    argv = [sys.executable, "-m", "edge", "record", "synthetic://?size=256x512&seed=1", str(video)]
    proc = subprocess.run(
        slow_disk.command([*argv, "--duration", "5", "--keep-free", "1M"]),
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "OPENCV_LOG_LEVEL": "ERROR"},
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("warning:") == 1, proc.stderr
    assert re.search(
        rf"warning: sink {re.escape(repr(str(video)))}: its disk took [0-9.]+ s to store the last 2 s of "
        r"what was written: it is slower than the recording \(a slow or worn SD card\?\)",
        proc.stderr,
    ), proc.stderr
    assert video.stat().st_size > 2 * slow_disk.bytes_per_s, "it wrote faster than the disk stores"
    assert _frames_in(video) > 0


def _write_until_stopped(write: Callable[[int], None], first: int) -> tuple[int, SinkStopped]:
    """Call ``write(seq)`` from ``first`` on until it raises SinkStopped (a disk that failed is
    found by the flushing thread, every 50 ms here); the frames it took, and the error."""
    deadline = time.monotonic() + 30
    seq = first
    while time.monotonic() < deadline:
        try:
            write(seq)
        except SinkStopped as exc:
            return seq - first, exc
        except SinkError:  # a write refused outright (ext4 has given up on its disk): go on
            pass
        seq += 1
        time.sleep(0.02)
    pytest.fail("the sink went on writing for 30 s after its disk failed")


@pytest.fixture
def flushed_often(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(durable, "SYNC_EVERY_S", 0.05)


@pytest.mark.usefixtures("flushed_often")
def test_a_video_whose_disk_fails_stops_and_is_not_called_finished(failing_disk: FailingDisk) -> None:
    """A failing SD card: writes go on into the kernel's cache, the disk stores none of them,
    and the filesystem still says it has room. The sink stops at the frame after a flush
    finds out (the room check off, at keep_free 0, does not turn that off), and the video is
    left in its partial file with its times, since it reads back whole from the cache but
    would not after a reboot; the next run keeps it as an interrupted recording."""
    video = failing_disk.path / "drive.avi"  # avi: FFmpeg holds back 256 KiB, not seconds
    sink = open_sink(str(video), fps=10, timing="stamped", keep_free=0)
    for seq in range(20):
        sink.write(NOISE[seq % 8], seq, seq * 100_000_000)
    time.sleep(0.2)  # flushed while the disk still stored it
    failing_disk.fail()
    taken, stopped = _write_until_stopped(lambda seq: sink.write(NOISE[seq % 8], seq, seq * 100_000_000), 20)
    assert re.fullmatch(
        stopped_for(str(20 + taken)),
        str(stopped),
    )
    with pytest.raises(SinkStopped) as unfinished:
        sink.close()
    partial = partial_path(video)
    assert re.fullmatch(
        rf"sink '{re.escape(str(video))}': the video could not be finished: {FAILED}; what was written is "
        rf"left in '{re.escape(str(partial))}'",
        str(unfinished.value),
    )
    assert not video.exists() and partial.exists() and timestamps_path(partial).exists()
    assert not timestamps_path(video).exists()


@pytest.mark.usefixtures("flushed_often")
def test_objects_lines_whose_disk_fails_stop_and_are_not_called_finished(failing_disk: FailingDisk) -> None:
    objects = failing_disk.path / "objects.jsonl"
    sink = open_sink(str(objects), keep_free=1)
    for seq in range(3):
        sink.write_result(_result(seq))  # type: ignore[attr-defined]
    time.sleep(0.2)
    failing_disk.fail()
    taken, stopped = _write_until_stopped(lambda seq: sink.write_result(_result(seq)), 3)  # type: ignore[attr-defined]
    assert re.fullmatch(stopped_for(str(3 + taken)), str(stopped))
    with pytest.raises(
        SinkStopped, match=rf"the lines could not be finished: {FAILED}; what was written is left in"
    ):
        sink.close()
    assert not objects.exists() and partial_path(objects).exists()


@pytest.mark.usefixtures("flushed_often")
def test_a_folder_of_frames_whose_disk_fails_stops_and_keeps_its_times_partial(
    failing_disk: FailingDisk,
) -> None:
    folder = failing_disk.path / "frames"
    sink = open_sink(f"dir://{folder}", timing="stamped", keep_free=1)
    for seq in range(3):
        sink.write(NOISE[seq], seq, seq * 100_000_000)
    time.sleep(0.2)
    failing_disk.fail()
    _write_until_stopped(lambda seq: sink.write(NOISE[seq % 8], seq, seq * 100_000_000), 3)
    with pytest.raises(
        SinkStopped,
        match=rf"sink 'dir://[^']+': {FAILED}; the \d+ frame\(s\) in '{re.escape(str(folder))}' may not "
        "all be on it",
    ):
        sink.close()
    # the times stay where a replay finds them with a warning, not as the finished ones
    assert folder_partial_timestamps_path(folder).exists() and not (folder / "timestamps.txt").exists()


@pytest.mark.usefixtures("flushed_often")
def test_a_segmented_recording_whose_disk_fails_ends_with_its_summary(failing_disk: FailingDisk) -> None:
    """edge record from a real camera into segments: the disk fails mid-drive, and the
    recording ends (not one segment of it), with the summary of what was recorded, the
    reason, and the segment that could not be finished said, not put in place."""
    camera = Camera(fps=30.0, noise=True)
    video = failing_disk.path / "drive.avi"

    def fail_after_a_segment() -> None:
        deadline = time.monotonic() + 60
        while not list(failing_disk.path.glob("drive-*.avi")) and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.3)
        failing_disk.fail()

    failer = threading.Thread(target=fail_after_a_segment)
    failer.start()
    try:
        with pytest.raises(RecordingStopped) as stopped:
            record(camera.url, [str(video)], segment_s=1.0, keep_free=1, max_frames=3000)
    finally:
        failer.join()
        camera.unplug()
    # found by a flush between frames or a write refused, or by the last flush of a segment
    assert re.fullmatch(
        stopped_for(ANY_COUNT)
        + rf"|sink '[^']+': the video could not be finished: {FAILED}; what was written is left in '[^']+'",
        str(stopped.value),
    )
    summary = stopped.value.data
    kept = sorted(failing_disk.path.glob("drive-*.avi"))
    assert summary["segments"] == {str(video): [str(p) for p in kept]} and kept
    assert 0 < summary["frames"] < 3000 and not summary["interrupted"]
    # the segment the disk failed under (and, seldom, the one begun as it was being finished)
    left = sorted(failing_disk.path.glob(".drive-*.partial.avi"))
    assert left and all(p.name[1:].replace(".partial", "") not in [k.name for k in kept] for p in left)


@pytest.mark.usefixtures("flushed_often")
def test_edge_run_on_a_disk_that_fails_stops_its_sinks_and_ends(
    tiny_engines: Path, failing_disk: FailingDisk, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The whole of it through `edge run`: the disk fails mid-run, both sinks on it stop, the
    run ends as it would write nothing more (exit status 3), and its summary names each
    sink, where it stopped and why, and that it was left unfinished."""
    from edge.cli import main

    video, objects = failing_disk.path / "drive.avi", failing_disk.path / "objects.jsonl"
    partial = partial_path(video)

    def fail_once_written() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (partial.exists() and partial.stat().st_size > 300_000):
            time.sleep(0.01)
        failing_disk.fail()

    failer = threading.Thread(target=fail_once_written)
    failer.start()
    summary = tmp_path / "summary.json"
    try:
        code = main(
            [
                "run",
                "synthetic://?size=128x256&frames=3000&seed=1",
                "--engines",
                str(tiny_engines),
                "--sink",
                str(video),
                "--sink",
                str(objects),
                "--keep-free",
                "1",
                "--summary",
                str(summary),
            ]
        )
    finally:
        failer.join()
    assert code == 3
    s = json.loads(summary.read_text())
    assert s["frames_out"] < 3000
    assert sorted(stopped["sink"] for stopped in s["sinks_stopped"]) == [str(video), str(objects)]
    reasons = {stopped["sink"]: stopped["reason"] for stopped in s["sinks_stopped"]}
    assert re.match(FAILED, reasons[str(video)])  # found by a flush: OpenCV's writes raise nothing
    assert sorted(unfinished["sink"] for unfinished in s["sinks_unfinished"]) == [str(video), str(objects)]
    assert not video.exists() and not objects.exists() and partial.exists()
    err = capsys.readouterr().err
    assert "every sink has stopped: the stream ends" in err and "error: every sink stopped for good" in err


def test_sinks_on_a_disk_ext4_gave_up_on_stop_at_the_next_frame(
    failing_disk: FailingDisk, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once ext4 has given up on its disk every write is refused (EROFS) with no read-only
    flag on the mount: each sink stops at the first write refused so, saying why, not at its
    next flush seconds later with an error at every frame between (flushes are off here)."""
    monkeypatch.setattr(durable, "SYNC_EVERY_S", 3600.0)
    video, folder, objects = (failing_disk.path / name for name in ("drive.avi", "frames", "objects.jsonl"))
    sinks = [
        open_sink(str(video), fps=10, timing="stamped", keep_free=1),
        open_sink(f"dir://{folder}", timing="stamped", keep_free=1),
        open_sink(str(objects), keep_free=1),
    ]

    def write(sink: object, seq: int) -> None:
        if sink is sinks[2]:
            sinks[2].write_result(_result(seq))  # type: ignore[attr-defined]
        else:
            sink.write(NOISE[seq], seq, seq * 100_000_000)  # type: ignore[attr-defined]

    for seq in range(3):
        for sink in sinks:
            write(sink, seq)
    failing_disk.abort()
    for sink, path in zip(sinks, (video, folder, objects), strict=True):
        with pytest.raises(SinkStopped) as stopped:
            write(sink, 3)
        assert str(stopped.value) == (
            f"the disk holding {str(path)!r} has become read-only (Linux remounts a disk read-only "
            "after write errors, as from a failing SD card: see dmesg): the sink stops, keeping the "
            "3 frame(s) written before"
        )
        with pytest.raises(SinkStopped, match=FAILED):  # the last flush finds it too: not finished
            sink.close()
    assert partial_path(video).exists() and timestamps_path(partial_path(video)).exists()
    assert sorted(p.name for p in folder.iterdir()) == [
        ".timestamps.partial.txt",
        *(f"frame_{seq:06d}.png" for seq in range(3)),
    ], "the refused frame leaves nothing"
    assert partial_path(objects).exists() and not video.exists() and not objects.exists()
