"""A full disk ends a file sink whole: edge.stream.disk, and the sinks and commands that use it.

The disks here are real: a 1 MiB tmpfs (``small_disk``, where mounting is allowed), filled by
the sink itself or by a file written beside it, as another program would.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.cli import main
from edge.errors import SinkError, SinkStopped
from edge.stream.disk import format_bytes, free_bytes, parse_bytes
from edge.stream.sinks import open_sink
from tests.conftest import ROOT, fill_disk

NOISE = np.random.default_rng(0).integers(0, 256, (8, 96, 128, 3), np.uint8)  # mp4v keeps ~25 KiB of each


def _result(seq: int) -> object:
    """A frame with one car 7.5 m away, as the objects sinks get it."""
    from edge.postprocess.panoptic import Instance
    from edge.stream.frame import Frame, Result

    car = Instance(26000, 13, 0.9, (0.0, 0.0, 2.0, 2.0), np.ones((2, 2), bool), (0, 0))
    frame = Frame(seq=seq, t_capture_ns=seq, image=np.zeros((4, 4, 3), np.uint8))
    depth = {"depth": np.full((1, 1, 4, 4), 7.5, np.float32)}
    return Result(frame, None, depth, extras={"resized": frame.image, "instances": [car]})


def _frames_in(video: Path) -> int:
    capture = cv2.VideoCapture(str(video))
    count = 0
    while capture.read()[0]:
        count += 1
    capture.release()
    return count


def test_sizes_are_read_and_shown_in_binary_units() -> None:
    for text, value in (
        ("64M", 64 << 20),
        ("1.5G", 3 << 29),
        ("512k", 512 << 10),
        ("2MiB", 2 << 20),
        ("3KB", 3 << 10),
        ("0", 0),
        ("1000", 1000),
        (" 7b ", 7),
    ):
        assert parse_bytes(text) == value, text
    for bad in ("", "M", "-1M", "ten", "1X", "nan", "inf", "1e30"):
        with pytest.raises(
            ValueError, match=f"expected a size such as 64M, 1.5G or 0, got {re.escape(repr(bad))}"
        ):
            parse_bytes(bad)
    assert [format_bytes(n) for n in (0, 1023, 1536, 64 << 20, 5 << 40)] == [
        "0 bytes",
        "1023 bytes",
        "1.5 KiB",
        "64.0 MiB",
        "5.0 TiB",
    ]


def test_keep_free_is_checked_on_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    for command in (
        ["record", "synthetic://", "x.mp4"],
        ["run", "synthetic://"],
        ["replay", "cityscapes://x"],
    ):
        with pytest.raises(SystemExit) as exit_info:
            main([*command, "--keep-free", "ten"])
        assert exit_info.value.code == 2
        assert "--keep-free: expected a size such as 64M, 1.5G or 0, got 'ten'" in capsys.readouterr().err


def test_a_sink_without_room_for_its_first_frame_writes_nothing(tmp_path: Path) -> None:
    """More kept free than the disk has: each file sink refuses at once, and for good."""
    beyond = free_bytes(tmp_path) + (1 << 40)
    for uri, path in (
        (str(tmp_path / "v.mp4"), tmp_path / "v.mp4"),
        (f"dir://{tmp_path / 'frames'}", tmp_path / "frames"),
        (str(tmp_path / "o.jsonl"), tmp_path / "o.jsonl"),
    ):
        sink = open_sink(uri, keep_free=beyond)
        for seq in range(2):
            with pytest.raises(SinkError) as error:
                if uri.endswith(".jsonl"):
                    sink.write_result(_result(seq))  # type: ignore[attr-defined]
                else:
                    sink.write(NOISE[seq], seq)
            assert re.fullmatch(
                rf"the disk holding {re.escape(repr(str(path)))} has .* free, and the next frame needs .* "
                rf"with {re.escape(format_bytes(beyond))} kept free \(--keep-free\): the sink stops, keeping "
                r"the 0 frame\(s\) written before",
                str(error.value),
            ), str(error.value)
        sink.close()
    assert not any(tmp_path.iterdir()), "nothing was written, so nothing is left"


@pytest.mark.parametrize("suffix", [".mp4", ".avi", ".mkv"])
def test_a_video_stops_whole_when_its_disk_fills(small_disk: Path, suffix: str) -> None:
    filler = fill_disk(small_disk, leave=600 << 10)  # another program's file
    video = small_disk / f"drive{suffix}"
    sink = open_sink(str(video), keep_free=64 << 10)
    with pytest.raises(SinkError, match="the sink stops, keeping the") as error:
        for seq in range(1000):
            sink.write(NOISE[seq % len(NOISE)], seq)
    kept = sink.frames  # type: ignore[attr-defined]
    assert kept > 3 and f"keeping the {kept} frame(s) written before" in str(error.value)
    filler.unlink()  # room again: the video still ends where it stopped, without a hole
    with pytest.raises(SinkError, match=re.escape(str(error.value))):
        sink.write(NOISE[0], kept + 1)
    sink.close()
    assert sorted(p.name for p in small_disk.iterdir()) == [video.name], "no partial file is left"
    assert _frames_in(video) == kept


def test_a_video_whose_disk_another_program_filled_is_not_put_in_place(small_disk: Path) -> None:
    """With the check off, the disk fills under the writer: the video cannot be finished, and
    says so, instead of an unplayable file under the name asked for."""
    video = small_disk / "drive.mp4"
    sink = open_sink(str(video), keep_free=0)
    for seq in range(3):
        sink.write(NOISE[seq], seq)
    fill_disk(small_disk)
    sink.write(NOISE[3], 3)  # --keep-free 0: no check, so the writer alone meets the full disk
    partial = small_disk / ".drive.partial.mp4"
    with pytest.raises(SinkError) as error:
        sink.close()
    assert str(error.value) == (
        f"sink {str(video)!r}: the video could not be finished: OpenCV cannot read it back "
        f"(0 bytes free on its disk); what was written is left in {str(partial)!r}"
    )
    assert not video.exists() and partial.exists()


def test_frames_in_a_folder_stop_whole_when_the_disk_fills(small_disk: Path) -> None:
    folder = small_disk / "frames"
    sink = open_sink(f"dir://{folder}", keep_free=1)
    with pytest.raises(SinkError, match="the sink stops"):
        for seq in range(1000):
            sink.write(NOISE[seq % len(NOISE)], seq)
    kept = sink.frames  # type: ignore[attr-defined]
    sink.close()
    names = sorted(p.name for p in folder.iterdir())
    assert kept > 3 and names == [f"frame_{i:06d}.png" for i in range(kept)], "no partial PNG is left"
    assert all(cv2.imread(str(folder / name)) is not None for name in names)


def test_a_disk_that_became_read_only_stops_the_sink_and_says_why(small_disk: Path) -> None:
    """Linux remounts a disk read-only after write errors (a failing SD card); OpenCV's
    video writer would go on "writing" into nothing. (A folder of frames holds no file open
    between frames, so its disk can be remounted here; a video's cannot, while written.)"""
    folder = small_disk / "frames"
    sink = open_sink(f"dir://{folder}", keep_free=1)
    for seq in range(2):
        sink.write(NOISE[seq], seq)
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    try:
        with pytest.raises(
            SinkStopped,
            match=re.escape(
                f"the disk holding {str(folder)!r} has become read-only (Linux remounts a disk read-only "
                "after write errors, as from a failing SD card: see dmesg): the sink stops, keeping the 2 "
                "frame(s) written before"
            ),
        ):
            sink.write(NOISE[2], 2)
        sink.close()
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)
    assert sorted(p.name for p in folder.iterdir()) == ["frame_000000.png", "frame_000001.png"]


@pytest.mark.parametrize("name", ["drive.mkv", "objects.jsonl"])
def test_a_file_sink_whose_disk_is_read_only_before_its_first_frame_stops_and_says_why(
    small_disk: Path, name: str
) -> None:
    """Its partial file cannot be created: the same stop and reason as mid-recording, not an
    OSError (the disk went read-only between the check before the run and the first frame)."""
    sink = open_sink(str(small_disk / name), keep_free=1)
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    try:
        with pytest.raises(SinkStopped, match=r"has become read-only .*: the sink stops, keeping the 0 "):
            if name.endswith(".jsonl"):
                sink.write_result(_result(0))  # type: ignore[attr-defined]
            else:
                sink.write(NOISE[0], 0)
        sink.close()
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)
    assert list(small_disk.iterdir()) == []


def _with_file_size_limit(body: str, limit: int) -> list[str]:
    """Run ``body`` in a Python process whose files may not grow past ``limit`` bytes: its
    writes are refused part-way, as on a disk that fills mid-write. Its printed lines."""
    script = textwrap.dedent(
        f"""
        import resource, signal, sys
        sys.path.insert(0, {str(ROOT)!r})
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails instead of the process
        resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
        """
    ) + textwrap.dedent(body)
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()


def test_objects_lines_stay_whole_when_a_write_is_refused(tmp_path: Path) -> None:
    """A line the system refuses half-way is taken back to the last whole line, and the
    sink stops."""
    message, frames = _with_file_size_limit(
        f"""
        from edge.errors import SinkError
        from edge.stream.sinks import open_sink
        from tests.stream.test_disk import _result

        sink = open_sink({str(tmp_path / "o.jsonl")!r}, keep_free=0)
        try:
            for seq in range(100):
                sink.write_result(_result(seq))
        except SinkError as exc:
            print(exc)
        sink.close()
        print(sink.frames)
        """,
        limit=1000,
    )
    lines = (tmp_path / "o.jsonl").read_text().splitlines()
    assert int(frames) == len(lines) > 0 and (tmp_path / "o.jsonl").stat().st_size < 1000
    assert [json.loads(line)["frame"] for line in lines] == list(range(len(lines)))
    assert message == (
        f"writing {str(tmp_path / '.o.partial.jsonl')!r} failed (File too large): the sink stops, keeping "
        f"the {len(lines)} frame(s) written before"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.jsonl"]


def test_a_png_the_system_refuses_is_taken_away_and_named(tmp_path: Path) -> None:
    folder = tmp_path / "frames"
    (message,) = _with_file_size_limit(
        f"""
        import numpy as np
        from edge.errors import SinkError
        from edge.stream.sinks import open_sink

        sink = open_sink("dir://{folder}", keep_free=0)
        sink.write(np.zeros((96, 128, 3), np.uint8), 0)  # a flat picture compresses to little
        try:
            sink.write(np.random.default_rng(0).integers(0, 256, (96, 128, 3), np.uint8), 1)
        except SinkError as exc:
            print(exc)
        """,
        limit=8000,
    )
    png = repr(str(folder / "frame_000001.png"))
    assert re.fullmatch(
        rf"sink 'dir://{re.escape(str(folder))}': cannot write {re.escape(png)}: File too large",
        message,
    ), message
    assert sorted(p.name for p in folder.iterdir()) == ["frame_000000.png"], "no partial PNG is left"


def test_a_png_a_full_disk_refuses_says_so_and_leaves_nothing(small_disk: Path) -> None:
    """Another program filled the disk under a dir:// sink whose room check is off: the PNG
    the disk refuses is said with why and the room left, and nothing of it is left."""
    folder = small_disk / "frames"
    sink = open_sink(f"dir://{folder}", keep_free=0)
    sink.write(NOISE[0], 0)
    fill_disk(small_disk, leave=4096)
    with pytest.raises(SinkError) as refused:
        sink.write(NOISE[1], 1)
    assert not isinstance(refused.value, SinkStopped), "a disk that fills may free again"
    png = repr(str(folder / "frame_000001.png"))
    assert re.fullmatch(
        rf"sink 'dir://{re.escape(str(folder))}': cannot write {re.escape(png)}: No space left on device "
        r"\([0-9.]+ (bytes|KiB) free on its disk\)",
        str(refused.value),
    ), refused.value
    assert sorted(p.name for p in folder.iterdir()) == ["frame_000000.png"]
    sink.close()


def test_a_written_file_names_itself_when_the_disk_is_full(small_disk: Path) -> None:
    from edge.util.fs import atomic_write_bytes

    fill_disk(small_disk, leave=4096)
    target = small_disk / "report.json"
    with pytest.raises(OSError) as error:
        atomic_write_bytes(target, b"x" * 100_000)
    assert error.value.filename == str(target) and "No space left on device" in str(error.value)
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler.bin"], "no temporary file is left"


def test_record_stops_whole_at_a_full_disk(small_disk: Path) -> None:
    video = small_disk / "drive.mp4"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "edge",
            "record",
            "synthetic://?size=96x128&seed=1",
            str(video),
            "--keep-free",
            "256K",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "OPENCV_LOG_LEVEL": "ERROR"},
        timeout=300,
    )
    assert proc.returncode == 3, proc.stderr
    found = re.search(
        rf"error: the disk holding {re.escape(repr(str(video)))} has .* free, and the next frame needs .* "
        r"with 256.0 KiB kept free \(--keep-free\): the sink stops, keeping the (\d+) frame\(s\) "
        "written before",
        proc.stderr,
    )
    assert found, proc.stderr
    assert _frames_in(video) == int(found.group(1)) > 3
    # what was kept is summed up first, as after Ctrl-C
    assert proc.stdout.startswith(f"recorded {found.group(1)} frames in "), proc.stdout
    assert sorted(p.name for p in small_disk.iterdir()) == [video.name]


def test_a_log_the_disk_refuses_keeps_out_neither_the_others_nor_its_name(
    tiny_engines: Path, small_disk: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from edge.stream import run_stream

    fill_disk(small_disk, leave=1024)
    trace, log, summary = small_disk / "trace.json", small_disk / "spans.jsonl", tmp_path / "summary.json"
    with pytest.raises(OSError) as error:
        run_stream(
            "synthetic://?size=128x256&frames=6",
            engines=tiny_engines,
            trace=trace,
            latency_log=log,
            summary_json=summary,
        )
    assert error.value.filename == str(trace) and "No space left on device" in str(error.value)
    assert f"warning: [Errno 28] No space left on device: {str(log)!r}" in capsys.readouterr().err
    assert json.loads(summary.read_text())["frames_out"] == 6, "the summary still went where it had room"
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler.bin"], "no half-written log"


MOUNTINFO = """\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p1 rw
61 27 179:97 / /media/SD\\040card rw,nosuid,nodev,relatime shared:40 - vfat /dev/mmcblk1p1 rw,fmask=0022
62 61 0:50 / /media/SD\\040card/scratch rw,relatime - tmpfs tmpfs rw,size=1024k
63 27 8:1 / /mnt/usb rw,relatime - ext4 /dev/sda1 rw
64 27 8:2 / /mnt/usb rw,relatime - exfat /dev/sda2 rw
"""


def test_the_filesystem_of_a_path_is_its_innermost_mount() -> None:
    from edge.stream.disk import filesystem_type, largest_file

    for path, fstype in (
        ("/media/SD card/drive.mp4", "vfat"),  # "\040" is a blank in a mount point
        ("/media/SD card/scratch/frames", "tmpfs"),  # a mount inside another
        ("/media/SD cards/x", "ext4"),  # not inside "/media/SD card"
        ("/mnt/usb/drive.mp4", "exfat"),  # mounted over: the later mount is the one seen
        ("/home/user/drive.mp4", "ext4"),
    ):
        assert filesystem_type(Path(path), MOUNTINFO) == fstype, path
    assert largest_file(Path("/media/SD card/drive.mp4"), MOUNTINFO) == (
        (4 << 30) - 1,
        "file a vfat (FAT) filesystem holds",
    )
    assert largest_file(Path("/mnt/usb/drive.mp4"), MOUNTINFO) is None  # exFAT has no 4 GiB limit
    assert filesystem_type(ROOT / "tests") is not None  # this machine's own table is read


def test_a_small_disk_is_found_as_its_filesystem(small_disk: Path) -> None:
    from edge.stream.disk import filesystem_type

    assert filesystem_type(small_disk / "not" / "made" / "yet.mp4") == "tmpfs"


def test_a_video_stops_whole_before_the_largest_file_allowed(tmp_path: Path) -> None:
    """A file-size limit (ulimit -f here; FAT32's 4 GiB on a camera's SD card) would cut the
    video mid-frame, and its index with it: the sink stops before it, keeping a video that plays."""
    video = tmp_path / "drive.mp4"
    message, kept = _with_file_size_limit(
        f"""
        import numpy as np
        from edge.errors import SinkError
        from edge.stream.sinks import open_sink

        noise = np.random.default_rng(0).integers(0, 256, (8, 96, 128, 3), np.uint8)
        sink = open_sink({str(video)!r})
        try:
            for seq in range(10_000):
                sink.write(noise[seq % 8], seq)
        except SinkError as exc:
            print(exc)
        sink.close()
        print(sink.frames)
        """,
        limit=3 << 20,
    )
    assert re.fullmatch(
        rf"{re.escape(repr(str(video)))} would grow past 3.0 MiB, the largest file this process may write "
        rf"\(ulimit -f\), with the next frame \(.* now\): the sink stops, keeping the {kept} frame\(s\) "
        "written before",
        message,
    ), message
    assert _frames_in(video) == int(kept) > 10
    assert sorted(p.name for p in tmp_path.iterdir()) == [video.name]


def _run_on_a_full_disk(engines: Path, frames: int, sinks: list[Path], summary: Path) -> tuple[int, dict]:
    """`edge run` of ``frames`` synthetic frames into ``sinks``, keeping 128 KiB free; its exit
    status and --summary."""
    argv = ["run", f"synthetic://?size=128x256&frames={frames}&seed=3", "--engines", str(engines)]
    argv += [arg for sink in sinks for arg in ("--sink", str(sink))]
    code = main([*argv, "--keep-free", "128K", "--summary", str(summary)])
    return code, json.loads(summary.read_text())


def test_a_run_goes_on_without_a_sink_that_stopped_and_says_so_once(
    tiny_engines: Path, small_disk: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A video stopped by its full disk is said once and named in the summary with the frame
    it stopped at; the frames after are not counted as sink errors, one per frame."""
    video, summary = small_disk / "drive.mp4", tmp_path / "summary.json"
    fill_disk(small_disk, leave=512 << 10)  # another program's file: room for a few frames
    code, s = _run_on_a_full_disk(tiny_engines, 40, [video, tmp_path / "objects.jsonl"], summary)
    assert code == 0
    assert s["frames_out"] == 40 and s["sink_errors"] == 0
    (stopped,) = s["sinks_stopped"]
    kept = _frames_in(video)
    assert stopped["sink"] == str(video) and stopped["frame"] == kept and 0 < kept < 40
    assert stopped["reason"].endswith(
        f"kept free (--keep-free): the sink stops, keeping the {kept} frame(s) written before"
    )
    out, err = capsys.readouterr()
    assert err.count("warning: sink") == 1 and f"stopped at frame {kept}: the disk holding" in err
    assert f"sink {str(video)!r} stopped at frame {kept}: {stopped['reason']}" in out
    assert "sink errors" not in out
    assert len((tmp_path / "objects.jsonl").read_text().splitlines()) == 40, "the other sink went on"


def test_a_run_whose_every_sink_stopped_ends_instead_of_writing_nothing(
    tiny_engines: Path, small_disk: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A dash camera's only outputs stopped (a full disk without --delete-oldest, a failed
    card): the run ends, exit status 3, its summary and logs written, so that a service
    shows the failure (and is not restarted on it, RestartPreventExitStatus=3, where told so)."""
    video, summary = small_disk / "drive.mp4", tmp_path / "summary.json"
    fill_disk(small_disk, leave=512 << 10)
    code, s = _run_on_a_full_disk(tiny_engines, 400, [video], summary)
    assert code == 3
    (stopped,) = s["sinks_stopped"]
    kept = _frames_in(video)
    assert stopped["frame"] == kept and 0 < kept < s["frames_out"] < 400, "it ended soon after"
    out, err = capsys.readouterr()
    assert f"stopped at frame {kept}: the disk holding" in err
    assert "every sink has stopped: the stream ends" in err
    assert f"error: every sink stopped for good (the last at frame {kept}), so the run ended" in err
    assert f"sink {str(video)!r} stopped at frame {kept}:" in out, "the summary is printed"
