"""Room on the disk a file sink writes to, so that a full disk ends a recording whole.

OpenCV's video writer says nothing when the disk fills: its writes fail inside FFmpeg,
and a video's index (mp4's moov atom, avi's idx1, mkv's header sizes) is written when
the file is finished, so the whole recording becomes unplayable, not just its end. A
Jetson recording drives to its eMMC or SD card is where this happens. So the file sinks
(video, ``dir://``, objects.jsonl) ask :class:`DiskRoom`, before each frame, whether the
frame and the file's finish still leave ``keep_free`` bytes free; when not, the sink stops
at the last frame that fit, for good, and what it wrote is finished and kept. A disk that
fails to store what was written (edge.stream.durable's flushes find out) stops it too.
"""

from __future__ import annotations

import errno
import os
import re
import resource
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

from edge.errors import SinkError, SinkStopped
from edge.stream.durable import Syncer
from edge.util.fs import nearest_existing, output_path_problem

DEFAULT_KEEP_FREE = 64 << 20  # bytes a file sink leaves free: room for the OS and other writers
# what finishing a video takes per frame it holds, over its encoded frames: mp4's index is
# 12-20 bytes a frame, avi's 16; rounded up
INDEX_BYTES_PER_FRAME = 64
# what a writer may hold unwritten (FFmpeg's I/O buffer is 32 KiB) when a file's size is checked
FILE_MARGIN = 1 << 20
_UNITS = {"": 1, "B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def format_bytes(count: float) -> str:
    """``count`` bytes for people, in binary units: 1.5 MiB."""
    value, unit = float(count), "bytes"
    for name in ("KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024:
            break
        value, unit = value / 1024, name
    if unit == "bytes":
        return "1 byte" if count == 1 else f"{count} bytes"
    return f"{value:.1f} {unit}"


def parse_bytes(text: str) -> int:
    """``64M``, ``1.5G``, ``512K``, ``0`` or a plain byte count (K, M, G, T are powers of
    1024; a trailing ``iB`` or ``B`` is allowed); ValueError naming what was given."""
    body = text.strip().upper().removesuffix("IB").removesuffix("B") if text.strip() else ""
    unit = body[-1:] if body[-1:] in _UNITS else ""
    number = body[: len(body) - len(unit)] if unit else body
    try:
        value = float(number) * _UNITS[unit]
    except ValueError:
        value = -1.0
    if not 0 <= value < float(1 << 62):
        raise ValueError(f"expected a size such as 64M, 1.5G or 0, got {text!r}")
    return int(value)


def free_bytes(path: Path) -> int:
    """Bytes free to this user on the filesystem that holds (or will hold) ``path``."""
    return shutil.disk_usage(nearest_existing(path)).free


def filesystem_type(path: Path, mountinfo: str | None = None) -> str | None:
    """The type of the filesystem that holds ``path`` (``ext4``, ``vfat``, ``tmpfs``), from
    ``mountinfo`` (default: /proc/self/mountinfo); None where that cannot be read."""
    if mountinfo is None:
        try:
            mountinfo = Path("/proc/self/mountinfo").read_text()
        except OSError:
            return None
    real = os.path.realpath(path)  # links resolved as far as the path exists
    best: tuple[int, str] | None = None
    for line in mountinfo.splitlines():
        fields = line.split()
        if "-" not in fields[6:]:
            continue
        # mount points escape blanks and backslashes in octal: "/media/My\040Disk"
        point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4])
        if real == point or real.startswith(point.rstrip("/") + "/"):
            fstype = fields[fields.index("-", 6) + 1]
            if best is None or len(point) >= best[0]:  # the innermost mount, the latest of equals
                best = (len(point), fstype)
    return best[1] if best else None


def largest_file(path: Path, mountinfo: str | None = None) -> tuple[int, str] | None:
    """The largest file this process may write at ``path``, and what sets it: FAT32 (a USB
    stick or SD card formatted for cameras) holds files up to 4 GiB - 1, and ``ulimit -f``
    limits a process; None when neither applies. ``mountinfo``: as filesystem_type's."""
    limits = []
    soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    if soft != resource.RLIM_INFINITY:
        limits.append((soft, "file this process may write (ulimit -f)"))
    fstype = filesystem_type(path, mountinfo)
    if fstype in ("vfat", "msdos"):
        limits.append(((4 << 30) - 1, f"file a {fstype} (FAT) filesystem holds"))
    return min(limits) if limits else None


class DiskRoom:
    """Whether a file sink may write its next frame to ``path``'s disk and still leave
    ``keep_free`` bytes free, and whether that disk still stores what the sink writes. Once
    it says no it keeps saying so: a recording that stopped for a full disk is the frames
    before, not frames with a hole where the disk was full. ``keep_free`` 0 turns the room
    check off, for a filesystem that reports no free space (some network and FUSE mounts
    do); a write the system refuses is still caught by the sink, and a failed disk by the
    flushes."""

    def __init__(
        self,
        *,
        uri: str,
        path: Path,
        keep_free: int,
        stops: str = "the sink stops",
        make_room: Callable[[int], int] | None = None,
    ) -> None:
        """``stops``: what stops, as the error says it (``the predictions stop``).
        ``make_room(short)``: asked, when the disk is ``short`` bytes short, to free them
        (deleting the oldest segments of a recording); the bytes it freed, 0 when it can
        free no more, and then the sink stops."""
        if keep_free < 0:
            raise ValueError(f"keep_free is {keep_free} bytes; expected >= 0")
        self.uri, self.path, self.keep_free, self.stops = uri, path, keep_free, stops
        self._make_room = make_room
        self.full: str | None = None  # why the sink stopped, once it has
        self._largest = largest_file(path) if keep_free else None  # the check is off at 0
        self._syncer: Syncer | None = None

    def flush_as_written(self, paths: Callable[[], Iterable[Path]]) -> None:
        """Flush the files ``paths()`` names to the disk as they are written, for a power cut
        (edge.stream.durable), and stop the sink at the frame after their disk fails to
        store them: OpenCV's writer, and any write into the kernel's cache, goes on as if
        nothing happened."""
        if self._syncer is None:
            self._syncer = Syncer(paths, uri=self.uri)

    def flush_last(self) -> str | None:
        """Flush the files once more and stop flushing them; why their disk failed to store
        them, or None when it stored them all (also when they were never flushed)."""
        if self._syncer is None:
            return None
        syncer, self._syncer = self._syncer, None
        return syncer.finish()

    def stop_flushing(self) -> None:
        """Stop flushing without a last flush (the sink closes after a failure)."""
        if self._syncer is not None:
            self._syncer.stop()
            self._syncer = None

    def check(self, need: int, *, kept: int, size: int = 0) -> None:
        """SinkStopped unless ``need`` more bytes leave ``keep_free`` free and keep the file,
        ``size`` bytes now, within the largest file the system allows, and unless the disk
        has failed to store what was written; ``kept``: the frames the sink holds, which the
        error says are kept."""
        if self.full is None:
            failed = self._syncer.failed if self._syncer is not None else None
            if failed is not None:  # the frames before reached the kernel, not all the disk
                self.full = f"{failed}: {self.stops}, and the {kept} frame(s) before may not all be on it"
                raise SinkStopped(self.full)
            if not self.keep_free:
                return
            self.full = self._problem(need, size)
            if self.full is None:
                return
            self.full += f": {self._keeping(kept)}"
        raise SinkStopped(self.full)

    def _problem(self, need: int, size: int) -> str | None:
        disk = os.statvfs(nearest_existing(self.path))  # free_bytes's numbers, and the mount's flags
        if disk.f_flag & os.ST_RDONLY:
            # OpenCV's writer would go on "writing" into nothing, and be found out only at the end
            return self._read_only()
        free = disk.f_bavail * disk.f_frsize
        while free - need < self.keep_free and self._make_room is not None:
            if not self._make_room(self.keep_free + need - free):
                break
            free = free_bytes(self.path)
        if free - need < self.keep_free:
            return (
                f"the disk holding {str(self.path)!r} has {format_bytes(free)} free, and the next frame "
                f"needs {format_bytes(need)} with {format_bytes(self.keep_free)} kept free (--keep-free)"
            )
        if self._largest is not None and size + need + FILE_MARGIN > self._largest[0]:
            largest, what = self._largest
            return (
                f"{str(self.path)!r} would grow past {format_bytes(largest)}, the largest {what}, with "
                f"the next frame ({format_bytes(size)} now)"
            )
        return None

    def _keeping(self, kept: int) -> str:
        return f"{self.stops}, keeping the {kept} frame(s) written before"

    def _read_only(self) -> str:
        return (
            f"the disk holding {str(self.path)!r} has become read-only (Linux remounts a disk "
            "read-only after write errors, as from a failing SD card: see dmesg)"
        )

    def refused(self, exc: OSError, what: str, *, kept: int, stop: bool = False) -> SinkError:
        """The error for a write the system refused (``what``: what the sink was doing). A
        read-only disk stops the sink for good: ext4 gives up on a failing disk without the
        mount saying so (no read-only flag), and refuses every write after. Another refusal
        stops it with ``stop``, else fails this frame only; ``kept``: as check's."""
        if exc.errno == errno.EROFS:
            return self.stop(f"{self._read_only()}: {self._keeping(kept)}")
        if stop:
            return self.stop(f"{what} failed ({exc.strerror or exc}): {self._keeping(kept)}")
        said = f"sink {self.uri!r}: {what}: {exc.strerror or exc}"
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):  # another program filled it since the check
            said += f" ({format_bytes(free_bytes(self.path))} free on its disk)"
        return SinkError(said)

    def stop(self, reason: str) -> SinkStopped:
        """Stop for good for ``reason`` (a write the system refused); the error to raise."""
        self.full = self.full or reason
        return SinkStopped(self.full)


def checked_output(uri: str, path: Path, *, folder: bool) -> None:
    """Fail before the run starts, not at its first frame, when sink ``uri`` cannot write
    ``path``."""
    problem = output_path_problem(path, folder=folder)
    if problem:
        raise SinkError(f"sink {uri!r}: cannot write {str(path)!r}: {problem}")
