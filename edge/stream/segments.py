"""A video sink cut into segments (``--segment 5m``), as a dash camera records.

``drive.mkv`` becomes one file a segment, numbered on from the highest number of that name
in the folder and stamped with the local time it started: ``drive-00042-20261202-214630.mkv``.
The number, not the time, orders them: a Jetson without a clock battery starts each boot
at a stale time until it syncs, and segments named by time alone would then sort, and be
deleted (--delete-oldest), out of the order they were recorded in. Each is finished,
renamed into place and playable as the next begins (on a thread of its own: its last flush
waits for the disk, and the recording does not), so a run that dies (the power cut when the
car is switched off) leaves every segment before finished, whatever the container, and
the next run keeps the one it was writing as a segment; a service that records to one
name after every boot never writes over the last drive. Each segment is a VideoSink of
its own: its partial file, its lock, its room on the disk, its capture times beside it.
"""

from __future__ import annotations

import contextlib
import re
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import ConfigError, SinkError, SinkStopped
from edge.stream.disk import DEFAULT_KEEP_FREE, checked_output
from edge.stream.object_sinks import ObjectsSink, _needs_results
from edge.stream.partial import rescue_leftover
from edge.stream.video import VideoSink


def check_delete_oldest(delete_oldest: bool, segment_s: float | None) -> None:
    """ConfigError for --delete-oldest without --segment: it deletes whole segments."""
    if delete_oldest and segment_s is None:
        raise ConfigError(
            "--delete-oldest deletes the oldest segments of a recording, so it needs --segment "
            "(e.g. --segment 5m --delete-oldest)"
        )


def segment_name(path: Path, number: int, when: float) -> Path:
    """Segment ``number`` of ``path``, started at ``when`` (a timestamp)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(when))
    return path.with_name(f"{path.stem}-{number:05d}-{stamp}{path.suffix}")


def _numbered(path: Path) -> re.Pattern[str]:
    """Any file of ``path``'s segments (kept, partial, interrupted; a folder of frames);
    group 1 its number."""
    return re.compile(rf"\.?{re.escape(path.stem)}-(\d+)-\d{{8}}-\d{{6}}(?:[.]|$)")


def next_number(path: Path) -> int:
    """One more than the highest segment number of ``path`` in its folder (0 for none)."""
    pattern = _numbered(path)
    numbers = [int(m.group(1)) for p in _listing(path.parent) if (m := pattern.match(p.name))]
    return max(numbers, default=-1) + 1


def segments_of(path: Path) -> list[Path]:
    """The segments of ``path`` in its folder that a run finished or kept (not hidden, of
    its suffix: not their capture times), in the order they were recorded."""
    pattern = _numbered(path)
    found = [
        (int(m.group(1)), p)
        for p in _listing(path.parent)
        if not p.name.startswith(".") and p.suffix == path.suffix and (m := pattern.match(p.name))
    ]
    return [p for _, p in sorted(found)]


def _listing(folder: Path) -> list[Path]:
    return list(folder.iterdir()) if folder.is_dir() else []


class SegmentedSink:
    """What segmented sinks share: numbered names, a dead run's segment kept, the oldest
    deleted for room (``delete_oldest``), and one stop for all of them."""

    folders = False  # whether each segment is a folder (of frames) rather than a file

    def __init__(
        self, uri: str, path: Path, *, segment_s: float, keep_free: int, delete_oldest: bool
    ) -> None:
        if not segment_s > 0:
            raise ValueError(f"segment_s is {segment_s}; expected > 0")
        checked_output(uri, path, folder=self.folders)
        self.segment_s = segment_s
        self.segment_ns = round(segment_s * 1e9)
        self._t0_ns: int | None = None  # the current segment's first capture time
        self._origin_ns: int | None = None  # the first segment's: each segment's times say theirs after it
        self.uri, self.path = uri, path
        self.keep_free, self.delete_oldest = keep_free, delete_oldest
        self.segments: list[Path] = []
        self.deleted: list[Path] = []  # segments deleted for room, oldest first
        self.frames = 0  # over every segment
        self._current: Any = None
        self._stopped: str | None = None
        # a segment is finished on a thread of its own while the next is written: its last
        # flush waits for the disk to store it, seconds on a slow SD card, and a camera's
        # frames would be dropped meanwhile (a hole in the drive at every segment)
        self._finisher: ThreadPoolExecutor | None = None
        self._finishing: list[Future[None]] = []
        self._counts = threading.Lock()  # frames, segments: the finisher updates them too
        self._deleting = threading.Lock()  # a segment being finished may make room too
        # the segment a dead run was writing (the power cut when the car was switched off) is
        # kept under its own numbered name, its capture times beside it: one of the drive's
        # segments, replayed and deleted (--delete-oldest) in its turn like the others
        stem, suffix = re.escape(path.stem), re.escape(path.suffix)
        self._pattern = re.compile(rf"{stem}-\d+-\d{{8}}-\d{{6}}{suffix}")  # finished segments
        pattern = re.compile(rf"\.{stem}-\d+-\d{{8}}-\d{{6}}\.partial{suffix}")
        for leftover in sorted(_listing(path.parent)):
            if pattern.fullmatch(leftover.name):
                final = leftover.name[1 : -len(f".partial{path.suffix}")] + path.suffix
                rescue_leftover(uri, path.with_name(final), as_itself=True)
        self._number = next_number(path)

    @property
    def files(self) -> list[Path]:
        """Every segment with a frame, the one being written too (it is finished at close),
        once those being finished are (after close, all of them)."""
        current = [self._current.path] if self._current is not None and self._current.frames else []
        with self._counts:
            return [*self.segments, *current]

    def _open_segment(self, path: Path) -> Any:
        raise NotImplementedError

    def _time_due(self, t_ns: int) -> bool:
        """Whether a frame captured at ``t_ns`` is ``segment_s`` or more after the current
        segment's first: cut by capture time, a segment lasts its length of the drive
        whatever rate the camera kept."""
        return self._t0_ns is not None and t_ns - self._t0_ns >= self.segment_ns

    def _picture_due(self, *, stamped: bool, t_ns: int | None, frames: int) -> bool:
        """Whether a picture sink's next picture begins a new segment: by capture time when
        the sink keeps every frame with its capture time (``stamped``), as a camera that
        keeps no rate fills ``frames`` pictures in more or less than segment_s; else (one
        picture a period, a live run's video, or a file's frames) by ``frames`` pictures."""
        current = self._current
        if current is None:
            return False
        if stamped and t_ns is not None:
            return self._time_due(t_ns)
        return bool(current.frames >= frames)

    def _write(self, due: bool, write: Any, t_ns: int | None) -> None:
        """``write(current)`` into the current segment, a new one first when ``due``;
        ``t_ns``: the frame's capture time. A segment finished meanwhile that could not be
        is said after this frame is written, or instead of it when its disk failed."""
        begin = self._current is not None and due
        failure = self._finished_failure(block=begin)  # one segment being finished at a time
        if self._stopped is not None:  # a full disk ends the recording, not one segment of it
            raise failure if isinstance(failure, SinkStopped) else SinkStopped(self._stopped)
        if begin:
            self._hand_over()
        if self._current is None:
            if self._origin_ns is None:
                self._origin_ns = t_ns
            self._current = self._open_segment(segment_name(self.path, self._number, time.time()))
            self._number += 1
            self._t0_ns = t_ns
        current = self._current
        before = current.frames
        try:
            write(current)
        except SinkError as exc:
            if isinstance(exc, SinkStopped):
                self._stopped = str(exc)
            if failure is not None:  # said, not lost under this frame's error
                print(f"warning: {failure}", file=sys.stderr)
            raise
        finally:
            with self._counts:
                self.frames += current.frames - before
        if failure is not None:
            raise failure

    def _make_room(self) -> Any:
        return self._delete_oldest if self.delete_oldest else None

    def _delete_oldest(self, short: int) -> int:
        """Delete the oldest finished segments of this name until ``short`` bytes are freed;
        the bytes freed (0: none is left but the one being written, or all of them would not
        free ``short``, and are kept). One thread at a time: the segment being finished may
        make room for its last frame as the next is written."""
        with self._deleting:
            return self._delete_oldest_now(short)

    def _delete_oldest_now(self, short: int) -> int:
        from edge.stream.disk import format_bytes
        from edge.util.fs import natural_key

        writing = self._current.path if self._current is not None else None
        # in the order recorded: by number (natural order), whatever the clock said
        oldest = sorted(
            (
                p
                for p in _listing(self.path.parent)
                if self._pattern.fullmatch(p.name) and p != writing and p.is_dir() == self.folders
            ),
            key=natural_key,
        )
        total = sum(self._size(segment) for segment in oldest)
        if total < short:
            # the room is taken by other files: deleting the whole drive would not make room
            # for one more frame, and the recording would stop all the same, with nothing kept
            if oldest:
                print(
                    f"warning: sink {self.uri!r}: the disk is {format_bytes(short)} short of keeping "
                    f"{format_bytes(self.keep_free)} free, more than all {len(oldest)} older "
                    f"segment(s) of the recording hold ({format_bytes(total)}): other files fill "
                    "it, so the segments are kept, not deleted (--delete-oldest)",
                    file=sys.stderr,
                )
            return 0
        freed = 0
        for segment in oldest:
            if freed >= short:
                break
            size, refused = self._delete(segment)
            if refused is None or not segment.exists():
                freed += size
                self.deleted.append(segment)
                with self._counts:
                    if segment in self.segments:
                        self.segments.remove(segment)
                print(
                    f"{self.uri}: deleted the oldest segment, {segment.name} ({format_bytes(size)}), to keep "
                    f"{format_bytes(self.keep_free)} free (--delete-oldest)",
                    file=sys.stderr,
                )
            if refused is not None:  # a disk gone read-only: the recording stops for room
                print(f"{self.uri}: {refused}", file=sys.stderr)
                break
        return freed

    @staticmethod
    def _parts(segment: Path) -> list[Path]:
        """What ``segment`` is on the disk: a file and its capture times, or a folder's files."""
        from edge.stream.timestamps import timestamps_path

        return sorted(segment.iterdir()) if segment.is_dir() else [segment, timestamps_path(segment)]

    def _size(self, segment: Path) -> int:
        """The bytes deleting ``segment`` frees (0 for what is gone meanwhile)."""
        size = 0
        for path in self._parts(segment):
            with contextlib.suppress(OSError):
                size += path.stat().st_size
        return size

    def _delete(self, segment: Path) -> tuple[int, str | None]:
        """Delete ``segment`` (a file and its capture times, or a folder of frames); the
        bytes freed, and what could not be deleted, if anything."""
        size = 0
        for path in self._parts(segment):
            try:
                length = path.stat().st_size
                path.unlink()
                size += length
            except FileNotFoundError:
                pass
            except OSError as exc:
                return size, f"cannot delete {path.name}: {exc.strerror or exc}"
        if segment.is_dir():
            try:
                segment.rmdir()
            except OSError as exc:  # a file another program put there meanwhile
                return size, f"cannot delete {segment.name}: {exc.strerror or exc}"
        return size, None

    def _hand_over(self) -> None:
        """The current segment to the finisher."""
        current, self._current = self._current, None
        if self._finisher is None:
            self._finisher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="edge-segment")
        self._finishing.append(self._finisher.submit(self._finish, current))

    def _finish(self, current: Any) -> None:
        before = current.frames
        try:
            current.close()  # a video's held frame is written now
        finally:
            with self._counts:
                self.frames += current.frames - before
                if current.frames and current.path.exists():
                    self.segments.append(current.path)

    def _finished_failure(self, *, block: bool) -> BaseException | None:
        """What finishing the segments before failed with, once (``block``: after waiting for
        them to be finished). A disk that failed to store one fails the next one too: the
        recording stops. One at a time, so a disk slower than the recording (which its
        flushes say) makes the writing wait, not the segments held open pile up."""
        if block:
            wait(self._finishing)
        first: BaseException | None = None
        while self._finishing and self._finishing[0].done():
            failed = self._finishing.pop(0).exception()
            if isinstance(failed, SinkStopped):
                self._stopped = self._stopped or str(failed)
            first = first or failed
        return first

    def close(self) -> None:
        """Finish the segment being written, and wait for those being finished; the first
        failure, if any, after all of them are finished."""
        if self._current is not None:
            self._hand_over()
        if self._finisher is not None:
            self._finisher.shutdown(wait=True)
            self._finisher = None
        failure = self._finished_failure(block=False)  # every one is finished by now
        if failure is not None:
            raise failure


class SegmentedVideoSink(SegmentedSink):
    """VideoSink's pictures, a new file every ``segment_s`` seconds (``segments``: the
    finished ones, in order): of capture time when the video keeps every frame with its
    capture time (``stamped``, edge record), else of video, ``segment_s * fps`` pictures.
    ``view``, ``timing``, ``keep_free``: as VideoSink's.

    ``delete_oldest`` (a dash camera's loop recording): when the next frame would leave
    less than ``keep_free`` free, the oldest finished segments of this name in the folder
    (this run's and earlier runs', a dead run's last one included, with their capture
    times; never another name) are deleted until it fits; the recording stops only when
    none is left to delete. A frame of another size than the segment's (a camera that
    changed its resolution) begins a new segment, where a single video would refuse it."""

    def __init__(
        self,
        uri: str,
        path: Path,
        fps: float,
        *,
        segment_s: float,
        view: str = "composite",
        timing: str = "frames",
        keep_free: int = DEFAULT_KEEP_FREE,
        delete_oldest: bool = False,
    ) -> None:
        super().__init__(uri, path, segment_s=segment_s, keep_free=keep_free, delete_oldest=delete_oldest)
        self.fps, self.view, self.timing = fps, view, timing
        self.segment_frames = max(1, round(segment_s * fps))

    @property
    def timestamps_paths(self) -> list[Path]:
        """The capture times beside each segment (stamped timing)."""
        from edge.stream.timestamps import timestamps_path

        return [timestamps_path(s) for s in self.files] if self.timing == "stamped" else []

    def _open_segment(self, path: Path) -> VideoSink:
        return VideoSink(
            self.uri,
            path,
            self.fps,
            view=self.view,
            timing=self.timing,
            keep_free=self.keep_free,
            make_room=self._make_room(),
            times_origin_ns=self._origin_ns,
        )

    def write(self, image: np.ndarray, seq: int, t_capture_ns: int | None = None) -> None:
        current = self._current
        resized = current is not None and current.size not in (None, image.shape[1::-1])  # one size a video
        stamped = self.timing == "stamped"
        due = resized or self._picture_due(stamped=stamped, t_ns=t_capture_ns, frames=self.segment_frames)
        self._write(due, lambda sink: sink.write(image, seq, t_capture_ns), t_capture_ns)


class SegmentedObjectsSink(SegmentedSink):
    """ObjectsSink's lines, a new file every ``segment_s`` seconds of capture time, numbered
    and deleted (``delete_oldest``) as the video segments are."""

    shows: frozenset[str] = frozenset()

    def __init__(
        self,
        uri: str,
        path: Path,
        *,
        segment_s: float,
        keep_free: int = DEFAULT_KEEP_FREE,
        delete_oldest: bool = False,
        lines: Callable[[Any], str] | None = None,
    ) -> None:
        """``lines``: as ObjectsSink's, one for every segment (a warning cleared in the next
        segment is the one begun in this)."""
        super().__init__(uri, path, segment_s=segment_s, keep_free=keep_free, delete_oldest=delete_oldest)
        self._lines = lines

    def _open_segment(self, path: Path) -> ObjectsSink:
        # the warnings still on at the end are cleared once, in the last segment (close)
        return ObjectsSink(
            self.uri,
            path,
            keep_free=self.keep_free,
            make_room=self._make_room(),
            lines=self._lines,
            last=False,
        )

    def close(self) -> None:
        finish = getattr(self._lines, "finish", None)
        if finish is not None and self._current is not None and self._stopped is None:
            with contextlib.suppress(SinkError):  # a full disk: the sink has said so
                self._current.write_lines(finish())
        super().close()

    def write(self, image: np.ndarray, seq: int, t_capture_ns: int | None = None) -> None:
        raise _needs_results(self.uri)

    def write_result(self, result: Any) -> None:
        t_ns = int(result.frame.t_capture_ns)
        self._write(self._time_due(t_ns), lambda sink: sink.write_result(result), t_ns)


class SegmentedDirSink(SegmentedSink):
    """DirSink's PNGs, a new folder every ``segment_s`` seconds: ``frames`` becomes
    ``frames-00042-20261203-214630/`` beside it, and so on, each with its capture times
    (``stamped``) and replayable alone. Cut by capture time when stamped, else every
    ``segment_s * fps`` frames. Numbered and deleted (``delete_oldest``, a whole folder at a
    time) as the video segments are: a service that records exact pixels into one name
    after every boot begins a new folder each time, where a single folder would be refused
    for the frames of the run before. ``view``, ``keep_free``: as DirSink's."""

    folders = True

    def __init__(
        self,
        uri: str,
        path: Path,
        fps: float,
        *,
        segment_s: float,
        view: str = "composite",
        stamped: bool = False,
        keep_free: int = DEFAULT_KEEP_FREE,
        delete_oldest: bool = False,
    ) -> None:
        super().__init__(uri, path, segment_s=segment_s, keep_free=keep_free, delete_oldest=delete_oldest)
        self.view, self.stamped = view, stamped
        self.segment_frames = max(1, round(segment_s * fps))

    @property
    def timestamps_paths(self) -> list[Path]:
        """The capture times in each segment's folder (stamped)."""
        from edge.stream.timestamps import folder_timestamps_path

        return [folder_timestamps_path(f) for f in self.files] if self.stamped else []

    def _open_segment(self, path: Path) -> Any:
        from edge.stream.dir_sink import DirSink

        return DirSink(
            self.uri,
            path,
            view=self.view,
            stamped=self.stamped,
            keep_free=self.keep_free,
            make_room=self._make_room(),
            times_origin_ns=self._origin_ns,
        )

    def write(self, image: np.ndarray, seq: int, t_capture_ns: int | None = None) -> None:
        due = self._picture_due(stamped=self.stamped, t_ns=t_capture_ns, frames=self.segment_frames)
        self._write(due, lambda sink: sink.write(image, seq, t_capture_ns), t_capture_ns)
