"""The video file sink: OpenCV's writer into a hidden partial file, renamed into place when
it is finished and read back; it stops whole before its disk is full (edge.stream.disk),
and a dead run's partial file is kept (edge.stream.partial)."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import SinkError, SinkStopped
from edge.stream.disk import (
    DEFAULT_KEEP_FREE,
    INDEX_BYTES_PER_FRAME,
    DiskRoom,
    checked_output,
    format_bytes,
    free_bytes,
)
from edge.stream.durable import sync_folder
from edge.stream.fit import letterbox
from edge.stream.partial import MP4_RISK, PartialLock, partial_path, rescue_leftover
from edge.stream.timestamps import TimesFile, timestamps_path
from edge.util.stderr_fd import dropping_stderr_lines

# .webm (VP8): what browsers play (Chromium refuses MPEG-4 part 2), at a tenth of mp4v's pace or less
# (benchmarks/results/video_formats_cpu.json); `edge record drive.mkv clip.webm` makes one after
VIDEO_SUFFIXES = {".mp4": "mp4v", ".avi": "MJPG", ".mkv": "mp4v", ".webm": "VP80"}
VIDEO_TIMINGS = ("frames", "capture", "stamped")  # how a video sink places frames (VideoSink)


class VideoSink:
    """A video file at ``fps``; ``timing`` says how frames are placed in it:

    - ``frames``: every frame once, in order (a file replayed frame by frame).
    - ``capture`` (live runs: a camera, or a file paced with --realtime): each frame at its
      capture time. The picture at video time i/fps is the newest frame captured by then: a
      frame is repeated until the next one arrives, and of two frames in one period the
      newer wins, so the video plays in real time however many frames the engines dropped.
      A gap longer than a second (a camera reconnecting) is shortened to one second.
    - ``stamped`` (edge record): every frame once, and the capture times beside the video
      (edge.stream.timestamps), so that --realtime can replay it as it was captured.
    """

    def __init__(
        self,
        uri: str,
        path: Path,
        fps: float,
        *,
        view: str = "composite",
        timing: str = "frames",
        keep_free: int = DEFAULT_KEEP_FREE,
        make_room: Callable[[int], int] | None = None,
        exact_size: bool = False,
        times_origin_ns: int | None = None,
    ) -> None:
        """``keep_free``: bytes left free on the video's disk; the video stops, whole, at the
        last frame that leaves them (edge.stream.disk), unless ``make_room`` (DiskRoom's)
        frees enough first. A picture of another size than the first is scaled into the
        video's (_fitted), or with ``exact_size`` (edge record's exact frames) refused.
        ``times_origin_ns``: a segment's recording's first capture time (TimesFile's origin)."""
        if timing not in VIDEO_TIMINGS:
            raise ValueError(f"timing {timing!r} is not one of {VIDEO_TIMINGS}")
        checked_output(uri, path, folder=False)
        rescue_leftover(uri, path)  # a dead run's recording is kept, not truncated
        self.uri, self.path, self.fps, self.view, self.timing = uri, path, fps, view, timing
        self.exact_size = exact_size
        self.partial = partial_path(path)
        # a disk gone read-only at the first frame stops the sink, saying so
        self._lock = PartialLock(
            uri=uri, partial=self.partial, refused=lambda exc, what: self._room.refused(exc, what, kept=0)
        )
        self.frames = 0  # pictures in the file, repeats included
        self.repeated = 0  # capture timing: pictures that repeat the previous frame
        self.replaced = 0  # capture timing: frames a newer one of the same period replaced
        self._writer: Any = None
        self._size: tuple[int, int] | None = None
        self._letterboxed: set[tuple[int, int]] = set()  # picture sizes said to be scaled in
        self._t0_ns: int | None = None
        self._pending: tuple[np.ndarray, int] | None = None  # capture timing: (BGR picture, its period)
        # stamped: each frame's capture time, written as it comes beside the partial file
        self._room = DiskRoom(uri=uri, path=path, keep_free=keep_free, make_room=make_room)
        self._times = (
            TimesFile(timestamps_path(self.partial), refused=self._times_refused, origin_ns=times_origin_ns)
            if timing == "stamped"
            else None
        )

    @property
    def size(self) -> tuple[int, int] | None:
        """(width, height) of the video, once its first frame is written."""
        return self._size

    @property
    def timestamps_path(self) -> Path | None:
        """Where a stamped video's capture times are written (None for other timings)."""
        return timestamps_path(self.path) if self.timing == "stamped" else None

    def write(self, image: np.ndarray, seq: int, t_capture_ns: int | None = None) -> None:
        import cv2

        if self.timing != "frames" and t_capture_ns is None:
            raise SinkError(f"sink {self.uri!r} places frames at their capture time and frame {seq} has none")
        self._open(image)
        bgr = cv2.cvtColor(self._fitted(image), cv2.COLOR_RGB2BGR)
        if t_capture_ns is None or self.timing != "capture":
            self._append(bgr)
            if t_capture_ns is not None and self._times is not None:
                self._times.add(t_capture_ns)
            return
        if self._t0_ns is None:
            self._t0_ns = t_capture_ns
        period = round((t_capture_ns - self._t0_ns) * self.fps / 1e9)
        if self._pending is not None:
            previous, previous_period = self._pending
            if period <= previous_period:  # two frames in one period: the newer is shown
                self._pending = (bgr, previous_period)
                self.replaced += 1
                return
            shown = min(period - previous_period, max(1, round(self.fps)))
            for _ in range(shown):
                self._append(previous)
            self.repeated += shown - 1
        self._pending = (bgr, period)

    def _open(self, image: np.ndarray) -> None:
        import cv2

        h, w = image.shape[:2]
        if self._writer is None:
            self._lock.take()
            fourcc = cv2.VideoWriter.fourcc(*VIDEO_SUFFIXES[self.path.suffix.lower()])
            webm = self.path.suffix.lower() == ".webm"  # the container OpenCV prints a note for
            with dropping_stderr_lines(_opencv_tag_note) if webm else contextlib.nullcontext():
                self._writer = cv2.VideoWriter(str(self.partial), fourcc, self.fps, (w, h))
            if not self._writer.isOpened():
                self._writer = None
                self._discard()
                raise SinkError(f"cannot write video {str(self.path)!r} with OpenCV")
            self._size = (w, h)
            self._room.flush_as_written(self._written)  # to the disk as it goes, for a power cut

    def _fitted(self, image: np.ndarray) -> np.ndarray:
        """The picture at the video's size: one of another size (a playlist's next video, a
        frame padded into the engines, --fit pad) is scaled whole into it, centred on black,
        and said once a size; with ``exact_size`` (edge record, whose videos keep the frames
        they are given) it is refused, which ends the recording."""
        h, w = image.shape[:2]
        assert self._size is not None  # _open set it
        if (w, h) == self._size:
            return image
        first = f"{self._size[0]}x{self._size[1]}"
        if self.exact_size:
            raise SinkError(f"sink {self.uri!r}: frame size {w}x{h} differs from the first frame's {first}")
        if (w, h) not in self._letterboxed:
            self._letterboxed.add((w, h))
            print(
                f"warning: sink {self.uri!r}: pictures of {w}x{h} are scaled into the video's {first} (the "
                "first picture's), centred on black: a video has one size",
                file=sys.stderr,
            )
        return letterbox(image, (self._size[1], self._size[0]))

    def _times_refused(self, exc: OSError, what: str) -> SinkError:
        # the times are added after the frame they are of: that frame is not kept whole
        return self._room.refused(exc, what, kept=self.frames - 1)

    def _append(self, bgr: np.ndarray) -> None:
        # the picture at most its raw size, and the index that finishing the video writes
        need = bgr.nbytes + INDEX_BYTES_PER_FRAME * (self.frames + 1)
        self._room.check(need, kept=self.frames, size=_size(self.partial))
        self._writer.write(bgr)
        self.frames += 1

    def _discard(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.partial.unlink()
        if self._times is not None:
            self._times.discard()
        self._lock.release()

    def _written(self) -> list[Path]:
        """The files this sink is writing: the partial video and its capture times."""
        return [self.partial, *([self._times.path] if self._times is not None else [])]

    def close(self) -> None:
        try:
            self._finish()
        finally:
            self._room.stop_flushing()
            self._lock.release()

    def _finish(self) -> None:
        if self._writer is None:
            return
        if self._pending is not None and self._room.full is None:  # the last frame, for one period
            with contextlib.suppress(SinkError):  # no room for it: the video ends before it
                self._append(self._pending[0])
        self._pending = None
        self._writer.release()
        self._writer = None
        if not self.frames:  # not one frame had room: nothing is left, as after a run of none
            self._discard()
            return
        # on the disk before the names say they are finished; a video the disk failed to
        # store may read back whole, from the kernel's cache, and not after a reboot
        failed = self._room.flush_last()
        if failed:
            raise self._left(SinkStopped, failed)
        problem = video_problem(self.partial, self.frames)
        if problem:  # the disk filled under the writer after all (another program wrote to it)
            free = format_bytes(free_bytes(self.partial))
            raise self._left(SinkError, f"{problem} ({free} free on its disk)")
        if self._times is not None:  # before the video: a video in place always has its times
            self._times.finish(timestamps_path(self.path))
        os.replace(self.partial, self.path)
        if self._times is None:
            self._drop_earlier_times()
        sync_folder(self.path, uri=self.uri)

    def _drop_earlier_times(self) -> None:
        """Remove the capture times of the recording this video replaced: left beside it,
        --realtime would replay this video at them."""
        earlier = timestamps_path(self.path)
        try:
            earlier.unlink()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise SinkError(
                f"sink {self.uri!r}: {str(earlier)!r} holds the capture times of the recording this "
                f"video replaced, and cannot be removed ({exc}): remove it, or --realtime replays the "
                "video at them"
            ) from exc
        print(
            f"removed {str(earlier)!r}: the capture times of the recording {str(self.path)!r} replaced",
            file=sys.stderr,
        )

    def _left(self, error: type[SinkError], why: str) -> SinkError:
        """The error for a video that could not be finished: it is left in its partial file,
        its capture times beside it, as the next run keeps both."""
        if self._times is not None:
            with contextlib.suppress(SinkError):  # the error said is why the video is unfinished
                self._times.close()
        return error(
            f"sink {self.uri!r}: the video could not be finished: {why}; what was written is left in "
            f"{str(self.partial)!r}"
        )


def _opencv_tag_note(line: str) -> bool:
    """OpenCV's line for a four-character code the container has no entry for (WebM has none),
    printed as the writer goes on with the codec the code names."""
    return line.startswith("OpenCV: FFMPEG: tag 0x") and " is not supported with codec id " in line


def _size(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0


def video_problem(path: Path, frames: int) -> str | None:
    """Why the finished video ``path`` does not play back its ``frames`` frames, or None.
    OpenCV's writer reports no failed write, so the file is read back: a video whose disk
    filled has no index (mp4, mkv) or a short one (avi)."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            return "OpenCV cannot read it back"
        held = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    finally:
        capture.release()
    return None if held == frames else f"it holds {max(held, 0)} of the {frames} frames written"


def warn_of_live_videos(sinks: Iterable[Any]) -> None:
    """For a run from a camera: say of each mp4 video sink that it is lost if the run dies (a
    segmented one loses a segment at most, and is not warned about), and of each .webm one,
    segmented or not, that it cannot keep up with a camera's frames."""
    from edge.stream.segments import SegmentedVideoSink

    for sink in sinks:
        if not isinstance(sink, (VideoSink, SegmentedVideoSink)):
            continue
        path = sink.path
        if isinstance(sink, VideoSink) and path.suffix.lower() == ".mp4":
            print(f"warning: {str(path)!r}: {MP4_RISK} (name it .mkv)", file=sys.stderr)
        elif path.suffix.lower() == ".webm":
            print(
                f"warning: {str(path)!r}: VP8 takes a picture over ten times as long as .mkv's codec "
                "(benchmarks/results/video_formats_cpu.json), so it misses the camera's frames it "
                f"cannot keep up with; record {path.with_suffix('.mkv').name} and make the .webm after: "
                f"edge record {path.with_suffix('.mkv').name} {path.name}",
                file=sys.stderr,
            )
