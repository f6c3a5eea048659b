"""Segmented videos (--segment): one finished, playable file every so often; a run that
dies loses the segment it was writing at most (edge.stream.segments)."""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.cli import main
from edge.cli_args import duration
from edge.errors import SinkStopped
from edge.stream.record import record
from edge.stream.segments import SegmentedVideoSink
from edge.stream.sinks import open_sink
from edge.stream.sources import open_source
from edge.stream.timestamps import read_timestamps, recorded_since, timestamps_path
from edge.util.fs import natural_key
from tests.conftest import ROOT, fill_disk, stop_process, wait_for
from tests.stream.test_capture import Camera
from tests.stream.test_disk import NOISE, _frames_in

SEGMENT = r"drive-\d{5}-\d{8}-\d{6}\.(mkv|avi)"


def _segments(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if re.fullmatch(SEGMENT, p.name)), key=natural_key)


def test_durations_are_read_in_seconds_minutes_or_hours() -> None:
    assert [duration(t) for t in ("300", "90s", "5m", "1.5h", " 2M ")] == [300, 90, 300, 5400, 120]
    for bad in ("", "0", "-5m", "5d", "m", "nan", "inf"):
        with pytest.raises(
            argparse.ArgumentTypeError, match=f"expected a duration such as 300, 90s, 5m or 1.5h, got {bad!r}"
        ):
            duration(bad)


def test_a_recording_is_cut_into_playable_segments_in_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    video = tmp_path / "drive.mkv"
    # 10 fps, 2 s: 20 frames a segment
    assert main(["record", "synthetic://?size=96x128&fps=10&frames=45", str(video), "--segment", "2s"]) == 0
    files = _segments(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [p.name for p in files], (
        "no partial file, no drive.mkv"
    )
    assert [_frames_in(p) for p in files] == [20, 20, 5]
    out = capsys.readouterr().out
    assert f"{video} in 3 segment(s): {files[0]}, …, {files[2]}" in out
    # in the order recorded: the frames of the synthetic drive follow on from file to file
    from edge.stream.sources import open_source

    first_of_second = open_source(str(files[1])).read()
    expected = open_source("synthetic://?size=96x128&fps=10&frames=45")
    for _ in range(20):
        expected.read()
    assert (
        np.abs(first_of_second.image.astype(int) - expected.read().image.astype(int)).mean() < 8
    )  # lossy codec


def test_a_camera_is_cut_by_capture_time_and_each_segment_carries_its_times(tmp_path: Path) -> None:
    """A camera delivering about 30 frames a second, recorded at a nominal 5: by pictures,
    a 0.4 s segment would hold 2 frames and last however long the camera took for them."""
    cam = Camera(fps=30)
    try:
        summary = record(cam.url, [str(tmp_path / "drive.mkv")], max_frames=24, segment_s=0.4, fps=5)
    finally:
        cam.unplug()
    files = _segments(tmp_path)
    frames = [_frames_in(p) for p in files]
    times = [read_timestamps(timestamps_path(p), frames=None) for p in files]
    assert sum(frames) == 24 and [len(t) for t in times] == frames
    assert summary["timestamps"] == [str(timestamps_path(p)) for p in files]
    assert all(t[-1] < 400 for t in times), f"a segment spans 0.4 s of capture time at most: {times}"
    assert max(frames) > 2, f"cut by capture time, not by 2 pictures at the nominal 5 fps: {frames}"


def _writing(folder: Path) -> Path | None:
    """The segment being written, when it has bytes in it."""
    for p in folder.glob(".*.partial.avi"):
        try:
            if p.stat().st_size > 0:
                return p
        except FileNotFoundError:  # finished and renamed meanwhile
            pass
    return None


def test_a_killed_segmented_recording_loses_only_the_segment_it_was_writing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A camera recorded in two-second segments, killed as a power cut would stop it. (An
    avi: FFmpeg holds 256 KiB of it before writing, where an mkv's muxer holds up to 5 s of
    video, so a short mkv segment reaches the disk only as it is finished.)"""
    video = tmp_path / "drive.avi"
    cam = Camera(fps=30, noise=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge", "record", cam.url, str(video), "--segment", "2"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OPENCV_LOG_LEVEL": "ERROR"},
    )
    try:

        def inside_a_segment() -> bool:
            """Two segments finished, and the third has bytes on the disk and holds still:
            the camera holds its frames, so the kill falls inside it, not as it is finished."""
            writing = _writing(tmp_path)
            if writing is None or len(_segments(tmp_path)) < 2:
                return False
            cam.stalled.set()
            time.sleep(0.3)
            if writing.exists():
                return True
            cam.stalled.clear()
            return False

        wait_for(proc, inside_a_segment)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        stop_process(proc)
        cam.unplug()
    finished = _segments(tmp_path)
    assert len(finished) >= 2
    for p in finished:  # every finished one plays whole, with a capture time a frame
        times = read_timestamps(timestamps_path(p), frames=None)
        assert len(times) == _frames_in(p) > 0 and times[-1] < 2000
    (partial,) = [p for p in tmp_path.iterdir() if p.name.endswith(".partial.avi")]
    # the next run to the same name keeps what the dead one was writing, as a segment of
    # its own name, with the capture times it wrote as it went
    assert main(["record", "synthetic://?size=96x128&frames=3", str(video), "--segment", "1"]) == 0
    kept = tmp_path / partial.name[1:].replace(".partial.avi", ".avi")
    err = capsys.readouterr().err
    assert f"it is kept as {str(kept)!r} (it plays up to about where that run stopped)" in err
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".") or "interrupted" in p.name]
    segments = _segments(tmp_path)
    assert segments == [*finished, kept, segments[-1]], "the next run's segment is numbered after it"
    times = read_timestamps(timestamps_path(kept), frames=None)
    assert 0 < _frames_in(kept) <= len(times), "a time for every frame that plays (FFmpeg held some back)"
    # the whole drive replays at its capture times, the killed segment's included
    from edge.stream.sources import open_source

    drive = open_source(str(tmp_path))
    try:
        assert drive.timestamps is not None
    finally:
        drive.close()


def test_a_full_disk_ends_every_segment_to_come(small_disk: Path) -> None:
    fill_disk(small_disk, leave=600 << 10)
    sink = open_sink(str(small_disk / "drive.mkv"), fps=4, segment_s=1, keep_free=64 << 10)
    with pytest.raises(SinkStopped) as stopped:
        for seq in range(1000):
            sink.write(NOISE[seq % len(NOISE)], seq)
    written = sink.frames  # type: ignore[attr-defined]
    with pytest.raises(SinkStopped, match=re.escape(str(stopped.value))):
        sink.write(NOISE[0], written + 1)  # no new segment starts on a full disk
    sink.close()
    files = _segments(small_disk)
    assert written > 4 and sorted(p.name for p in small_disk.iterdir()) == sorted(
        ["filler.bin", *(p.name for p in files)]
    )
    assert sum(_frames_in(p) for p in files) == written


def test_a_live_run_writes_its_video_in_segments(tiny_engines: Path, tmp_path: Path) -> None:
    """edge run --realtime places pictures at their capture times; each segment is a half
    second of that video (10 pictures at 20 fps)."""
    from edge.stream import run_stream

    tracker = run_stream(
        "synthetic://?size=128x256&fps=20&frames=40",
        engines=tiny_engines,
        sinks=[str(tmp_path / "drive.mkv"), str(tmp_path / "objects.jsonl")],
        realtime=True,
        segment_s=0.5,
    )
    files = _segments(tmp_path)
    lines = sorted(
        (p for p in tmp_path.iterdir() if re.fullmatch(r"objects-\d{5}-\d{8}-\d{6}\.jsonl", p.name)),
        key=natural_key,
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in [*files, *lines])
    # the objects too: every frame that came out once, in order (a live run drops the frames
    # the engines fall behind on, seldom here, and counts them), each file half a second of
    # capture time
    summary = tracker.summary()
    records = [[json.loads(line) for line in p.read_text().splitlines()] for p in lines]
    frames = [r["frame"] for rs in records for r in rs]
    assert len(lines) >= 3 and frames == sorted(set(frames)) and len(frames) == summary["frames_out"]
    assert summary["frames_out"] + summary["drops"] == 40
    assert all(rs[-1]["t_capture_ns"] - rs[0]["t_capture_ns"] < 0.5e9 for rs in records)
    counts = [_frames_in(p) for p in files]
    # a segment ends at the first frame out after its 10th picture; that frame's picture
    # is repeated over the periods since the one before it (a dropped frame, or a capture
    # late on a loaded machine), so a gap there lengthens the segment by as much
    times = [r["t_capture_ns"] for rs in records for r in rs]
    longest_gap = max(round((b - a) * 20 / 1e9) for a, b in itertools.pairwise(times))
    assert len(files) >= 3 and counts[-1] >= 1, counts
    assert all(10 <= n <= 10 + max(2, longest_gap) for n in counts[:-1]), (counts, longest_gap)
    assert summary["sink_errors"] == 0
    # the summary names the files each sink became
    uri = str(tmp_path / "drive.mkv")
    assert summary["segments"][uri] == {"files": [str(p) for p in files], "deleted": 0}
    assert summary["segments"][str(tmp_path / "objects.jsonl")]["files"] == [str(p) for p in lines]
    assert f"sink {uri!r} in {len(files)} segment(s): {files[0]}, …, {files[-1]}" in tracker.format_summary()


def test_delete_oldest_keeps_recording_by_deleting_the_oldest_segments(
    small_disk: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Loop recording on a real 1 MiB disk: the oldest segments of the name go, an earlier
    run's first; other files stay; the newest segments play, up to the last frame."""
    # the segment an earlier run was writing when the power went, from when the clock was
    # wrong: it is kept as a segment, and its number says it is older
    earlier = small_disk / "drive-00007-20991231-235959.mkv"
    (small_disk / f".{earlier.stem}.partial.mkv").write_bytes(b"\0" * (64 << 10))
    (small_disk / f".{earlier.stem}.partial.mkv.timestamps.txt").write_text("# timestamp format v2\n0\n")
    others = [
        small_disk / "other-00001-20200101-000000.mkv",
        small_disk / "drive-00003-20200101-000000.interrupted-20200101-000100.mkv",
        small_disk / "drive-00002-20200101-000000-accident.mkv",  # renamed to keep it
    ]
    for other in others:
        other.write_bytes(b"\0" * (32 << 10))
    sink = open_sink(
        str(small_disk / "drive.mkv"), fps=4, segment_s=1, keep_free=128 << 10, delete_oldest=True
    )
    for seq in range(120):  # 3 MiB of pictures through a 1 MiB disk
        sink.write(NOISE[seq % len(NOISE)], seq)
    sink.close()
    deleted = sink.deleted  # type: ignore[attr-defined]
    assert deleted[0] == earlier and len(deleted) > 5
    err = capsys.readouterr().err
    assert f"it is kept as {str(earlier)!r}" in err
    assert not earlier.exists() and not (small_disk / f"{earlier.name}.timestamps.txt").exists()
    assert not [p for p in small_disk.iterdir() if p.name.startswith(".")]
    assert all(other.exists() for other in others), "no other name, no kept interrupted one, none renamed"
    kept = _segments(small_disk)
    assert kept[0].name.startswith("drive-0") and int(kept[-1].name.split("-")[1]) == 8 + 120 // 4 - 1
    assert kept and kept[0] not in deleted and [_frames_in(p) for p in kept[:-1]] == [4] * (len(kept) - 1)
    assert sum(_frames_in(p) for p in kept) + 4 * (len(deleted) - 1) == 120, "every frame went into a segment"
    assert err.count("deleted the oldest segment") == len(deleted)
    assert (
        f"deleted the oldest segment, {earlier.name} (64.0 KiB), to keep 128.0 KiB free (--delete-oldest)"
        in err
    )


def test_segments_without_a_video_sink_are_warned_about(capsys: pytest.CaptureFixture[str]) -> None:
    from edge.stream.sinks import open_sinks

    sinks = open_sinks(["null://"], fps=10, kinds=(), segment_s=60)
    said = (
        "warning: --segment cuts video, .jsonl and .mcap files and dir:// folders, and none of the sinks "
        "(null://) is one"
    )
    assert said in capsys.readouterr().err
    for sink in sinks:
        sink.close()


def test_delete_oldest_needs_segments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["record", "synthetic://?frames=2", str(tmp_path / "d.mkv"), "--delete-oldest"]) == 2
    assert "error: --delete-oldest deletes the oldest segments of a recording, so it needs --segment" in (
        capsys.readouterr().err
    )
    assert not list(tmp_path.iterdir())


def test_segments_are_numbered_on_from_the_highest_of_their_name(tmp_path: Path) -> None:
    """The number orders them, whatever the clock said: a board without a clock battery
    boots at a stale time."""
    from edge.stream.segments import next_number, segment_name

    path = tmp_path / "my_drive.mkv"  # a "_" in the name itself
    when = time.mktime((2026, 12, 2, 21, 46, 30, 0, 0, -1))
    assert next_number(path) == 0
    assert segment_name(path, 0, when).name == "my_drive-00000-20261202-214630.mkv"
    for name in (
        "my_drive-00007-19700101-000012.mkv",  # recorded later, before the clock was set
        ".my_drive-00009-20261202-214630.partial.mkv",  # being written
        "my_drive-00011-20261202-214630.interrupted-20261202-214700.mkv",  # kept from a dead run
        "my_drive-00012.mkv",  # not a segment: no time
        "other-00099-20261202-214630.mkv",  # another name
    ):
        (tmp_path / name).write_bytes(b"")
    assert next_number(path) == 12
    assert segment_name(path, 123456, when).name == "my_drive-123456-20261202-214630.mkv"


def test_a_new_resolution_begins_a_new_segment(tmp_path: Path) -> None:
    sink = open_sink(str(tmp_path / "drive.mkv"), fps=10, segment_s=60, timing="frames")
    small, large = NOISE[0][:64, :96], NOISE[1]
    for seq, image in enumerate([small, small, large, large, large, small]):
        sink.write(np.ascontiguousarray(image), seq)
    sink.close()
    files = _segments(tmp_path)
    assert [_frames_in(p) for p in files] == [2, 3, 1]
    sizes = []
    for p in files:
        capture = cv2.VideoCapture(str(p))
        sizes.append(
            (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        )
        capture.release()
    assert sizes == [(96, 64), (128, 96), (96, 64)]


def test_objects_segments_are_deleted_oldest_first_too(small_disk: Path) -> None:
    """Each line a second after the last, one segment a second: a tmpfs file takes a 4 KiB
    page, so the disk fills after a few and the oldest go."""
    from tests.stream.test_disk import _result

    fill_disk(small_disk, leave=160 << 10)
    sink = open_sink(str(small_disk / "objects.jsonl"), segment_s=1, keep_free=128 << 10, delete_oldest=True)
    for seq in range(50):
        result = _result(seq)
        result.frame.t_capture_ns = seq * 1_000_000_000  # type: ignore[attr-defined]
        sink.write_result(result)  # type: ignore[attr-defined]
    sink.close()
    kept = sorted((p for p in small_disk.iterdir() if p.name.startswith("objects-")), key=natural_key)
    frames = [json.loads(line)["frame"] for p in kept for line in p.read_text().splitlines()]
    deleted = sink.deleted  # type: ignore[attr-defined]
    assert len(deleted) > 10 and len(kept) + len(deleted) == 50
    assert frames == list(range(50 - len(frames), 50)), "the newest lines are kept, in order"


def test_delete_oldest_keeps_the_drive_when_other_files_fill_the_disk(
    small_disk: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Another program fills the disk past what all of the recording's segments hold:
    deleting them would not make room for one frame, so edge record keeps them, says why,
    and stops for room (status 3), where it used to delete the whole drive first."""
    old = [small_disk / f"drive-0000{i}-20261203-010000.mkv" for i in range(3)]
    for segment in old:
        segment.write_bytes(b"\0" * (16 << 10))
    fill_disk(small_disk, leave=64 << 10)
    argv = ["record", "synthetic://?frames=8&size=64x64", str(small_disk / "drive.mkv")]
    assert main([*argv, "--segment", "1s", "--keep-free", "128K", "--delete-oldest"]) == 3
    err = capsys.readouterr().err
    assert all(segment.stat().st_size == 16 << 10 for segment in old), "the drive is kept"
    assert "deleted the oldest segment" not in err
    assert f"warning: sink {str(small_disk / 'drive.mkv')!r}: the disk is " in err
    assert (
        "free, more than all 3 older segment(s) of the recording hold (48.0 KiB): other files fill it, "
        "so the segments are kept, not deleted (--delete-oldest)"
    ) in err


def test_delete_oldest_on_a_disk_gone_read_only_deletes_nothing_and_says_so(
    small_disk: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The room it would free cannot be had: the recording stops for room (as without
    --delete-oldest) rather than on an OSError from deleting."""
    old = [small_disk / f"drive-0000{i}-20261203-010000.mkv" for i in range(2)]
    for segment in old:
        segment.write_bytes(b"a finished segment")
    video = small_disk / "drive.mkv"
    sink = SegmentedVideoSink(str(video), video, 4, segment_s=1, keep_free=1, delete_oldest=True)
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    try:
        assert sink._delete_oldest(1) == 0
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)
    assert sink.deleted == [] and all(segment.exists() for segment in old)
    assert f"cannot delete {old[0].name}: Read-only file system" in capsys.readouterr().err


def _folders(parent: Path, stem: str = "frames") -> list[Path]:
    folders = (p for p in parent.iterdir() if p.is_dir() and p.name.startswith(f"{stem}-"))
    return sorted(folders, key=natural_key)


def test_a_folder_of_frames_in_segments_by_capture_time_and_again_after_a_restart(tmp_path: Path) -> None:
    """dir:// with --segment: a folder every half second of capture time, each with its
    frames and their times, replayable alone with the exact pixels. A second run to the
    same name (a service after a reboot) begins the next folder, where one folder would be
    refused for the frames of the run before."""
    uri = f"dir://{tmp_path / 'frames'}"
    for run in range(2):
        sink = open_sink(uri, fps=10, timing="stamped", segment_s=0.5)
        for seq in range(12):
            sink.write(NOISE[seq % len(NOISE)], seq, (run * 100 + seq) * 100_000_000)
        sink.close()
        folders = _folders(tmp_path)
        assert sink.files == folders[3 * run :]  # type: ignore[attr-defined]
    assert [int(f.name.split("-")[1]) for f in folders] == list(range(6))
    assert all(re.fullmatch(r"frames-\d{5}-\d{8}-\d{6}", f.name) for f in folders)
    assert not (tmp_path / "frames").exists(), "no folder under the name itself"
    for folder, seqs in zip(folders[:3], [range(5), range(5, 10), range(10, 12)], strict=True):
        assert sorted(p.name for p in folder.iterdir()) == [
            *(f"frame_{i:06d}.png" for i in seqs),
            "timestamps.txt",
        ]
        times = read_timestamps(folder / "timestamps.txt", frames=len(seqs))
        assert times == [100.0 * k for k in range(len(seqs))]
        replayed = open_source(str(folder))
        for i in seqs:
            frame = replayed.read()
            assert frame is not None and np.array_equal(frame.image, NOISE[i % len(NOISE)])


def test_delete_oldest_deletes_the_oldest_folders_of_frames_whole(
    small_disk: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Loop recording of exact pixels on a real 1 MiB disk: a folder at a time, oldest first."""
    sink = open_sink(
        f"dir://{small_disk / 'frames'}", fps=4, segment_s=0.5, keep_free=128 << 10, delete_oldest=True
    )
    for seq in range(60):  # 2 frames a folder; 2 MiB of PNGs through a 1 MiB disk
        sink.write(NOISE[seq % len(NOISE)], seq)
    sink.close()
    deleted = sink.deleted  # type: ignore[attr-defined]
    kept = _folders(small_disk)
    assert len(deleted) > 5 and not any(folder.exists() for folder in deleted)
    assert [int(f.name.split("-")[1]) for f in deleted + kept] == list(range(30)), "oldest first, whole"
    names = [p.name for f in kept for p in sorted(f.iterdir())]
    assert names == [f"frame_{i:06d}.png" for i in range(60 - len(names), 60)], "the newest frames are kept"
    assert capsys.readouterr().err.count("deleted the oldest segment, frames-") == len(deleted)


def test_a_segment_is_finished_while_the_next_is_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A segment's last flush waits for the disk to store it (made to wait here until the
    test says, as a slow card's does for seconds): the next segment takes the frames
    meanwhile, where the recording used to wait, and a camera's frames were dropped."""
    import threading

    gate = threading.Event()
    real = os.fsync

    def fsync(fd: int) -> None:
        if threading.current_thread().name.startswith("edge-segment"):  # the finisher's
            assert gate.wait(60), "the test never let the finishing segment's flush through"
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    video = tmp_path / "drive.mkv"
    sink = open_sink(str(video), fps=10, timing="stamped", segment_s=0.5)
    for seq in range(10):  # the second segment from frame 5, while the first is held
        sink.write(NOISE[seq % 8], seq, seq * 100_000_000)
    first, second = sorted(tmp_path.glob(".drive-*.partial.mkv"), key=natural_key)
    assert not _segments(tmp_path), "the first is still being finished"
    # the second's capture times, written a line a frame (FFmpeg holds its pictures back),
    # after the header and where it began in the recording
    assert len(timestamps_path(second).read_text().splitlines()) == 2 + 5
    assert recorded_since(timestamps_path(second)) == 500.0
    gate.set()
    sink.close()
    finished = _segments(tmp_path)
    assert [f.name for f in finished] == [
        first.name[1:].replace(".partial", ""),
        second.name[1:].replace(".partial", ""),
    ]
    assert [_frames_in(f) for f in finished] == [5, 5]
    assert [len(read_timestamps(timestamps_path(f), frames=5)) for f in finished] == [5, 5]


def test_a_segment_its_disk_failed_to_store_stops_the_recording_at_a_next_frame(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finished on its own thread, a segment whose last flush fails (EIO, made so there) is
    said at a frame after, as the recording stops: the next segment is on that disk too."""
    import errno
    import threading

    real = os.fsync

    def fsync(fd: int) -> None:
        if threading.current_thread().name.startswith("edge-segment"):
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    video = tmp_path / "drive.mkv"
    sink = open_sink(str(video), fps=10, timing="stamped", segment_s=0.5)
    deadline = time.monotonic() + 30
    with pytest.raises(SinkStopped) as stopped:
        for seq in range(1000):
            assert time.monotonic() < deadline, "the failed segment was never said"
            sink.write(NOISE[seq % 8], seq, seq * 100_000_000)
            time.sleep(0.01)
    first = sorted(tmp_path.glob(".drive-00000-*.partial.mkv"))
    assert re.fullmatch(
        rf"sink '{re.escape(str(video))}': the video could not be finished: the disk holding '[^']+' "
        r"failed to store what was written to it \(EIO: Input/output error; a failing disk or SD card\? see "
        r"dmesg\); "
        rf"what was written is left in '{re.escape(str(first[0]))}'",
        str(stopped.value),
    ), stopped.value
    with pytest.raises(SinkStopped, match="the video could not be finished"):
        sink.write(NOISE[0], 1000, 100_000_000_000)  # stopped for good
    with pytest.raises(SinkStopped, match=r"could not be finished: .* left in '.*/\.drive-00001-"):
        sink.close()  # the segment begun meanwhile: on the same disk
    assert not _segments(tmp_path)


def test_a_segment_that_could_not_be_finished_is_said_after_the_next_frame_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another program damaged a segment as it was being finished (truncated here while its
    last flush was held): the error is said at a frame after, once, and that frame is
    written all the same, as the recording goes on in the next segment."""
    import threading

    from edge.errors import SinkError

    gate = threading.Event()
    real = os.fsync

    def fsync(fd: int) -> None:
        if threading.current_thread().name.startswith("edge-segment"):
            assert gate.wait(60)
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    video = tmp_path / "drive.avi"
    sink = open_sink(str(video), fps=10, timing="stamped", segment_s=0.5)
    for seq in range(6):  # frame 5 begins the second segment, the first held in its flush
        sink.write(NOISE[seq % 8], seq, seq * 100_000_000)
    first = sorted(tmp_path.glob(".drive-00000-*.partial.avi"))[0]
    os.truncate(first, 1000)
    gate.set()
    deadline = time.monotonic() + 30
    seq = 6
    with pytest.raises(SinkError) as said:
        while time.monotonic() < deadline:  # 1 ms of capture time apart: all in the second segment
            sink.write(NOISE[seq % 8], seq, 500_000_000 + seq * 1_000_000)
            seq += 1
            time.sleep(0.01)
    assert not isinstance(said.value, SinkStopped)
    assert re.match(rf"sink '{re.escape(str(video))}': the video could not be finished: ", str(said.value))
    assert sink.frames == seq + 1, "the frame it was said at was written"
    sink.write(NOISE[0], seq + 1, 500_000_000 + (seq + 1) * 1_000_000)  # said once: it goes on
    sink.close()
    assert first.exists(), "left under its partial name"
    assert [_frames_in(f) for f in _segments(tmp_path)] == [seq + 2 - 5]
