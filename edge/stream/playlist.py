"""Several videos played as one source, one after another: a folder of videos, or a glob
(``'drives/drive-*.mkv'``), in natural order. A drive recorded with ``--segment`` is
replayed whole this way (its names sort in the order it was recorded), or by the name it
was recorded to (``drives/drive.mkv``: its segments alone, not another name's that begins
alike). Folders of frames (a dir:// sink's segments, ``'drives/frames-*'``, or a folder
holding such folders and no videos) are played the same way, each as an image-folder source.

Frames are numbered on across the files and each says which file it came from
(``meta["file"]``). When videos have capture times beside them (edge record), each is placed
where it began in its recording (a segment's times say it: the segments deleted for room
before it leave its place), else laid after the one before, one frame's time apart, so
``--realtime`` replays each segment as it was captured; a video without them among them (a
recording by an earlier version, or not by edge record) plays at its own rate in its turn. A
file that fails to open mid-way is skipped, said, and counted as undecodable.
"""

from __future__ import annotations

import dataclasses
import functools
import glob
import re
import sys
from pathlib import Path
from typing import Any

from edge.errors import SourceError
from edge.stream.frame import Frame
from edge.stream.timestamps import (
    folder_partial_timestamps_path,
    folder_timestamps_path,
    recorded_since,
    span_rate,
    timestamps_path,
)

PLAYED_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm")


def played_in(uri: str, folder: Path) -> list[Path]:
    """What source ``uri``, a folder that is not itself of frames, plays: the videos
    directly in it, else its folders of frames; in natural order."""
    from edge.util.fs import natural_key

    entries = sorted(folder.iterdir(), key=natural_key)
    return _videos_else_frames(uri, entries)


def played_matching(uri: str, pattern: str) -> list[Path]:
    """What source ``uri``, a glob ``pattern``, plays: the videos it names, else the folders
    of frames it names (a dir:// sink's segments); in natural order."""
    from edge.util.fs import natural_key

    return _videos_else_frames(uri, sorted(map(Path, glob.glob(pattern)), key=natural_key))


def played_segments(uri: str, path: Path) -> list[Path]:
    """What source ``uri`` plays where ``path``, a recording's name, is not there but its
    segments are (recorded with --segment): those of its name alone, in their order."""
    from edge.stream.segments import segments_of

    return _videos_else_frames(uri, segments_of(path))


def _videos_else_frames(uri: str, entries: list[Path]) -> list[Path]:
    """The videos among ``entries`` (hidden partial files left out), else their folders of
    frames. Both are there when a drive was recorded by a video sink and a dir:// sink at
    once, and played both would play it twice: the videos are, and the folders are said."""
    videos = [
        p
        for p in entries
        if p.suffix.lower() in PLAYED_SUFFIXES and not p.name.startswith(".") and p.is_file()
    ]
    folders = [p for p in entries if _has_frames(p)]
    if videos and folders:
        # the names before their numbers: 'frames-' of frames-00042-20261203-214630
        stems = {re.sub(r"[0-9].*", "", p.name) for p in folders}
        stem = stems.pop() if len(stems) == 1 else ""
        glob_hint = f" (e.g. {str(folders[0].parent / (stem + '*'))!r})" if stem else ""
        print(
            f"warning: source {uri!r}: playing its {len(videos)} video(s), not its {len(folders)} "
            f"folder(s) of frames ({folders[0].name!r} …): play those with a glob that names only "
            f"them{glob_hint}",
            file=sys.stderr,
        )
    return videos or folders


def _has_frames(path: Path) -> bool:
    """Whether ``path`` is a folder (not hidden) that holds images."""
    from edge.stream.images import holds_images

    if path.name.startswith(".") or not path.is_dir():
        return False
    try:
        return holds_images(path)
    except OSError:
        return False


def _times_beside(path: Path) -> bool:
    """Whether a video or folder of frames has capture times (a dead run's folder too)."""
    if path.is_dir():
        return folder_timestamps_path(path).is_file() or folder_partial_timestamps_path(path).is_file()
    return timestamps_path(path).is_file()


def _since(path: Path) -> float | None:
    """Where a segment (a video or folder of frames) began in its recording, ms after its
    first frame, as its capture times say (timestamps.recorded_since); None if they do not."""
    if not path.is_dir():
        return recorded_since(timestamps_path(path))
    since = recorded_since(folder_timestamps_path(path))
    return since if since is not None else recorded_since(folder_partial_timestamps_path(path))


@dataclasses.dataclass
class _Joined:
    """The capture times joined so far, as what the next one needs of them: how many, the
    first and the last (a day of segments replayed in one run is millions of them)."""

    count: int = 0
    first: float = 0.0
    last: float = 0.0

    def add(self, ms: float) -> None:
        if not self.count:
            self.first = ms
        self.last = ms
        self.count += 1

    def rate(self) -> float | None:
        """Frames per second over them (None for under two)."""
        return span_rate(self.count, self.first, self.last)


class PlaylistSource:
    """``files`` (videos, or folders of frames), played in order as one source named ``uri``."""

    def __init__(self, uri: str, files: list[Path]) -> None:
        if not files:
            raise SourceError(
                f"source {uri!r} holds no videos ({', '.join(PLAYED_SUFFIXES)}) and no folders of frames"
            )
        self.uri, self.files, self.live = uri, files, False
        self.undecodable = 0
        self.undecodable_at_end = 0
        self._next = 0
        self._seq = 0
        self._carried = 0  # undecodable frames (and files) told with the next frame
        self._current: Any = None
        self._offset = 0.0  # added to the current file's own capture times
        self._file_started = True  # no frame of the current file read yet
        self._since: float | None = None  # where the current file began in its recording
        self._open_next()
        if self._current is None:
            what = "folder(s) of frames" if files[0].is_dir() else "video(s)"
            raise SourceError(f"source {uri!r}: none of its {len(files)} {what} opens")
        from edge.stream.sources import nominal_rate

        # a folder of frames has no rate but that of its capture times
        self.fps: float | None = nominal_rate(self._current)
        # whether frames get capture times (None: no file has any); they are joined as the
        # frames are read (meta["media_ms"]), so none is kept here
        self.timestamps: list[float] | None = [] if any(_times_beside(p) for p in files) else None
        self._joined: _Joined = _Joined()
        self.timestamps_file = None

    @functools.cached_property
    def declared_frames(self) -> int | None:
        """The frames its files hold, as each says (a video's header, a folder's images);
        None where one does not. Asked once, by what samples the whole source (calibration
        spreads its frames over every drive of a folder, not the first one's seconds); a run
        never asks, so a day of segments does not open each file twice before it starts."""
        return _declared_total(self.files)

    def _open_next(self) -> None:
        """The next file that opens; one that does not is said and skipped."""
        from edge.stream.images import ImageDirSource
        from edge.stream.sources import OpenCVSource

        self._current = None
        while self._next < len(self.files):
            path = self.files[self._next]
            self._next += 1
            try:
                self._current = (
                    ImageDirSource(str(path), path) if path.is_dir() else OpenCVSource(str(path), str(path))
                )
                self._file_started = True
                self._since = _since(path)
                return
            except SourceError as exc:
                print(f"warning: source {self.uri!r}: skipping {path.name!r}: {exc}", file=sys.stderr)
                self.undecodable += 1
                self._carried += 1

    def read(self) -> Frame | None:
        while self._current is not None:
            frame = self._current.read()
            if frame is not None:
                return self._renumbered(frame)
            self._file_ended()
        self.undecodable_at_end = self._carried
        return None

    def skip(self) -> bool:
        """Pass over the next frame as its file can (a video's decoded, not converted; a
        folder's not read); False at the end. Where frames get capture times, the skipped
        frame's is joined as a read one's is: the times are joined frame by frame."""
        while self._current is not None:
            if self._current.skip():
                if self.timestamps is not None:
                    self._media_ms(self._joined, self._current.skipped_media_ms)
                self._seq += 1
                return True
            self._file_ended()
        self.undecodable_at_end = self._carried
        return False

    def _file_ended(self) -> None:
        """Count what the file that ended could not decode, and open the next one."""
        self._carried += int(getattr(self._current, "undecodable_at_end", 0))
        self.undecodable += int(getattr(self._current, "undecodable", 0))
        self._current.close()
        self._open_next()

    def _renumbered(self, frame: Frame) -> Frame:
        index = self._next - 1
        meta: dict[str, Any] = {**frame.meta, "file": self.files[index].name}
        if self._carried:
            meta["undecodable_before"] = self._carried + int(frame.meta.get("undecodable_before", 0))
            self._carried = 0
        if self.timestamps is not None:
            meta["media_ms"] = self._media_ms(self._joined, meta.get("media_ms"))
        out = dataclasses.replace(frame, seq=self._seq, source=self.uri, meta=meta)
        self._seq += 1
        return out

    def _media_ms(self, times: _Joined, own: float | None) -> float:
        """Where a frame falls in the joined ``times`` (added to them): its file's own
        time (``own``) after where the file began in its recording (a segment's times say
        it), else laid after the last file's end, one frame's time apart (the mean interval
        so far); a frame without a time of its own (a video without capture times beside it)
        one period of its file's rate after the frame before."""
        step = 1e3 / (times.rate() or self._current.fps or self.fps or 30.0)
        if own is None:
            media = times.last + 1e3 / (self._current.fps or self.fps or 30.0) if times.count else 0.0
        else:
            if self._file_started:
                start = times.last + step if times.count else 0.0
                # a segment that says where it began in its recording is placed there (after
                # segments deleted for room, or a gap): unless that goes back (another recording's)
                if self._since is not None and (not times.count or self._since > times.last):
                    start = self._since
                self._offset = start - own
            media = own + self._offset
        self._file_started = False
        times.add(media)
        return media

    def close(self) -> None:
        if self._current is not None:
            self._current.close()
            self._current = None


def _declared_total(files: list[Path]) -> int | None:
    """The frames ``files`` hold as each says: a folder its images, a video its header's
    count; one that does not open adds none (the playlist skips it, and says so when it
    gets there); None if a video's header gives no count. Nothing is said here."""
    import cv2

    from edge.stream.cameras import quiet_open
    from edge.stream.images import image_files
    from edge.stream.sources import declared_count

    total = 0
    for path in files:
        if path.is_dir():
            total += len(image_files(path))
            continue
        with quiet_open():
            cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)  # as OpenCVSource opens it
        try:
            if not cap.isOpened():
                continue
            count = declared_count(cap)
        finally:
            cap.release()
        if count is None:
            return None
        total += count
    return total
