"""Capture times of a recording, in a file beside a video (``drive.mp4.timestamps.txt``)
or in a folder of frames (``frames/timestamps.txt``).

A video file has one frame rate, and a camera does not keep to one: frames come late,
some never come, and a reconnect leaves seconds without any. ``edge record`` keeps every
frame a camera delivers once, so it writes each one's capture time beside the video, and
``edge run drive.mp4 --realtime`` replays the frames at those times. The format is
mkvmerge's "timestamp format v2" (a header line, then one time per frame in milliseconds
from the first), so ``mkvmerge -o drive.mkv --timestamps 0:drive.mp4.timestamps.txt
drive.mp4`` makes a video that players show at the recorded times too.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

from edge.errors import SinkError, SourceError

HEADER = "# timestamp format v2"
# a segment's second line: where its first frame falls in the recording it is a segment of (a
# comment: mkvmerge skips lines that begin with '#', as read_timestamps does)
SINCE = "# ms after the recording's first frame: "
SUFFIX = ".timestamps.txt"
FOLDER_FILE = "timestamps.txt"


def timestamps_path(video: Path) -> Path:
    """Where the capture times of ``video`` are kept: its name with .timestamps.txt added."""
    return video.with_name(video.name + SUFFIX)


def folder_timestamps_path(folder: Path) -> Path:
    """Where the capture times of a folder of frames are kept: timestamps.txt in it, one
    line per image in the order an image-folder source reads them."""
    return folder / FOLDER_FILE


def folder_partial_timestamps_path(folder: Path) -> Path:
    """Where a dir:// sink writes the capture times as the frames come, until it is
    finished; a recording that did not finish leaves them there (see ImageDirSource)."""
    return folder / f".{Path(FOLDER_FILE).stem}.partial.txt"


def mean_rate(times_ms: Sequence[float]) -> float | None:
    """Frames per second over the recording (None for fewer than two frames or no time)."""
    return span_rate(len(times_ms), times_ms[0], times_ms[-1]) if times_ms else None


def span_rate(count: int, first_ms: float, last_ms: float) -> float | None:
    """Frames per second of ``count`` frames captured from ``first_ms`` to ``last_ms``
    (None for fewer than two frames or no time)."""
    if count < 2 or last_ms <= first_ms:
        return None
    return (count - 1) * 1e3 / (last_ms - first_ms)


class TimesFile:
    """Capture times written as the frames are, one line flushed a frame, into ``path`` (the
    hidden partial file's beside a partial video), and moved into place by ``finish``. A run
    that dies (kill -9, the power cut when a car is switched off) so leaves the times of
    what it wrote: as many as the frames that reached the video, or a few more (FFmpeg
    holds the last frames back), which a video without a declared frame count (a killed
    mkv or avi) is replayed at. The file is created at the first time."""

    def __init__(
        self, path: Path, *, refused: Callable[[OSError, str], SinkError], origin_ns: int | None = None
    ) -> None:
        """``refused(exc, what)``: the error for a write the system refused, as the sink's
        DiskRoom says it (a disk gone read-only stops the sink there, not at its next flush).
        ``origin_ns``: the capture time of the first frame of the recording these times are a
        segment of, said on the second line (SINCE), so that a replay places the segment
        where it fell, whatever segments before it were deleted."""
        self.path = path
        self._refused_as = refused
        self._file: IO[str] | None = None
        self._t0_ns = 0
        self._origin_ns = origin_ns

    def add(self, t_ns: int) -> None:
        """Append one frame's capture time (time.perf_counter_ns); SinkError when the
        system refuses it."""
        try:
            if self._file is None:
                self._file = self.path.open("w", encoding="utf-8")
                self._file.write(HEADER + "\n")
                if self._origin_ns is not None:
                    self._file.write(f"{SINCE}{(t_ns - self._origin_ns) / 1e6:.3f}\n")
                self._t0_ns = t_ns
            self._file.write(f"{(t_ns - self._t0_ns) / 1e6:.3f}\n")
            self._file.flush()  # to the kernel: a killed process loses none of it
        except OSError as exc:
            raise self._refused(exc) from exc

    def _refused(self, exc: OSError) -> SinkError:
        return self._refused_as(exc, f"cannot write the capture times to {str(self.path)!r}")

    def close(self) -> None:
        """Close the file where it is (a video that could not be finished keeps it beside);
        SinkError when what a refused write left unwritten is refused again."""
        file, self._file = self._file, None
        if file is not None:
            try:
                file.close()  # closed even when its last flush fails
            except OSError as exc:
                raise self._refused(exc) from exc

    def finish(self, target: Path) -> None:
        """Close the file and move it to ``target`` (nothing when no time was added)."""
        if self._file is None:
            return
        self.close()
        os.replace(self.path, target)

    def discard(self) -> None:
        """Close and remove the file (a video with no frame)."""
        with contextlib.suppress(SinkError):
            self.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def drop_cut_line(path: Path) -> bool:
    """Cut ``path`` after its last whole line: a power cut can leave the line being written
    half on the disk ("12" of "1234.567"), which would read as a time going back. Whether
    a whole time is left (a line after the header that is not a comment: a segment's SINCE)."""
    try:
        with path.open("rb+") as file:
            data = file.read()
            if data and not data.endswith(b"\n"):
                data = data[: data.rfind(b"\n") + 1]
                file.truncate(len(data))
    except OSError:
        return False
    return any(line.strip() and not line.startswith(b"#") for line in data.splitlines())


def read_timestamps(path: Path, *, frames: int | None, unfinished: bool = False) -> list[float]:
    """The times in ``path`` (milliseconds), checked: the header, one number per line, never
    going back, and, when the video declares how many frames it has, one per frame.
    ``unfinished``: written by a recording that did not finish, whose last line may have
    been cut (drop_cut_line) and is left out."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(f"cannot read the capture times in {str(path)!r}: {exc}") from exc
    if unfinished and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    lines = text.splitlines()
    if not lines or lines[0].strip() != HEADER:
        first = lines[0][:40] if lines else ""
        raise SourceError(
            f"{str(path)!r} does not start with {HEADER!r} (it starts with {first!r}); edge record writes "
            "this file beside a video, and edge run --realtime replays the video at its times"
        )
    times: list[float] = []
    for number, line in enumerate(lines[1:], start=2):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        try:
            value = float(text)
        except ValueError:
            raise SourceError(
                f"{str(path)!r} line {number}: {text[:40]!r} is not a time in milliseconds"
            ) from None
        if not value >= (times[-1] if times else 0.0):  # also refuses nan
            raise SourceError(
                f"{str(path)!r} line {number}: {text!r} goes back in time or is negative; capture "
                "times only go forward"
            )
        times.append(value)
    if frames is not None and len(times) != frames:
        raise SourceError(
            f"{str(path)!r} holds {len(times)} capture times and its recording {frames} frames: it belongs "
            "to another recording; remove or rename it to replay the recording at a steady rate"
        )
    return times


def recorded_since(path: Path) -> float | None:
    """Where the segment whose capture times ``path`` holds began in its recording, ms after
    the recording's first frame (its SINCE line; None where it has none, or cannot be read)."""
    try:
        with path.open(encoding="utf-8") as file:
            lines = [file.readline() for _ in range(2)]
    except (OSError, UnicodeDecodeError):
        return None
    if not lines[1].startswith(SINCE):
        return None
    try:
        since = float(lines[1][len(SINCE) :])
    except ValueError:
        return None
    return since if math.isfinite(since) and since >= 0.0 else None


def read_timestamps_if_any(path: Path, *, frames: int | None) -> list[float] | None:
    """read_timestamps of ``path`` when it exists (a recording with capture times), else None."""
    return read_timestamps(path, frames=frames) if path.is_file() else None
