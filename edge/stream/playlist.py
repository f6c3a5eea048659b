"""Several videos played as one source, one after another: a folder of videos, or a glob
(``'drives/drive-*.mkv'``), in natural order. A drive recorded with ``--segment`` is
replayed whole this way (its names sort in the order it was recorded).

Frames are numbered on across the files and each says which file it came from
(``meta["file"]``). When every video has capture times beside it (edge record), they are
laid end to end, one frame's time apart, so ``--realtime`` replays each segment as it was
captured; a file that fails to open mid-way is skipped, said, and counted as undecodable.
"""

from __future__ import annotations

import dataclasses
import glob
import sys
from pathlib import Path
from typing import Any

from edge.errors import SourceError
from edge.stream.frame import Frame
from edge.stream.timestamps import mean_rate, read_timestamps_if_any, timestamps_path

PLAYED_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov")


def videos_in(folder: Path) -> list[Path]:
    """The videos directly in ``folder``, in natural order (hidden partial files left out)."""
    from edge.util.fs import natural_key

    found = [
        p
        for p in folder.iterdir()
        if p.suffix.lower() in PLAYED_SUFFIXES and not p.name.startswith(".") and p.is_file()
    ]
    return sorted(found, key=natural_key)


def videos_matching(pattern: str) -> list[Path]:
    """The videos a glob ``pattern`` names, in natural order."""
    from edge.util.fs import natural_key

    found = [Path(p) for p in glob.glob(pattern) if Path(p).suffix.lower() in PLAYED_SUFFIXES]
    return sorted((p for p in found if p.is_file()), key=natural_key)


class PlaylistSource:
    """``files`` (videos), played in order as one source named ``uri``."""

    def __init__(self, uri: str, files: list[Path]) -> None:
        if not files:
            raise SourceError(f"source {uri!r} holds no videos ({', '.join(PLAYED_SUFFIXES)})")
        self.uri, self.files, self.live = uri, files, False
        self.undecodable = 0
        self.undecodable_at_end = 0
        self._next = 0
        self._seq = 0
        self._carried = 0  # undecodable frames (and files) told with the next frame
        self._current: Any = None
        self._open_next()
        if self._current is None:
            raise SourceError(f"source {uri!r}: none of its {len(files)} video(s) opens")
        self.fps: float | None = self._current.fps
        self.timestamps: list[float] | None
        self._offsets: list[float]
        self.timestamps, self._offsets = self._joined_times()
        self.timestamps_file = None

    def _joined_times(self) -> tuple[list[float] | None, list[float]]:
        """Every file's capture times end to end, and where each file's start (ms)."""
        every = [read_timestamps_if_any(timestamps_path(p), frames=None) or [] for p in self.files]
        if not all(every):
            return None, [0.0] * len(self.files)
        joined: list[float] = []
        offsets = []
        for times in every:
            step = 1e3 / (mean_rate(joined) or self.fps or 30.0) if joined else 0.0
            start = joined[-1] + step - times[0] if joined else 0.0
            offsets.append(start)
            joined.extend(t + start for t in times)
        return joined, offsets

    def _open_next(self) -> None:
        """The next file that opens; one that does not is said and skipped."""
        from edge.stream.sources import OpenCVSource

        self._current = None
        while self._next < len(self.files):
            path = self.files[self._next]
            self._next += 1
            try:
                self._current = OpenCVSource(str(path), str(path))
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
            self._carried += int(getattr(self._current, "undecodable_at_end", 0))
            self.undecodable += int(getattr(self._current, "undecodable", 0))
            self._current.close()
            self._open_next()
        self.undecodable_at_end = self._carried
        return None

    def _renumbered(self, frame: Frame) -> Frame:
        index = self._next - 1
        meta: dict[str, Any] = {**frame.meta, "file": self.files[index].name}
        if self._carried:
            meta["undecodable_before"] = self._carried + int(frame.meta.get("undecodable_before", 0))
            self._carried = 0
        if self.timestamps is not None and "media_ms" in meta:
            meta["media_ms"] = meta["media_ms"] + self._offsets[index]
        out = dataclasses.replace(frame, seq=self._seq, source=self.uri, meta=meta)
        self._seq += 1
        return out

    def close(self) -> None:
        if self._current is not None:
            self._current.close()
            self._current = None
