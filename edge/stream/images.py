"""A folder of images played as a source, in natural order (frame_2.png before
frame_10.png), at the capture times beside them when a recording wrote them."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from edge.errors import SourceError
from edge.stream.frame import Frame
from edge.stream.timestamps import (
    folder_partial_timestamps_path,
    folder_timestamps_path,
    read_timestamps,
    read_timestamps_if_any,
)
from edge.util.fs import natural_key

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp"}


def holds_images(folder: Path) -> bool:
    """Whether ``folder`` holds image files (of IMAGE_SUFFIXES) directly."""
    return any(p.suffix.lower() in IMAGE_SUFFIXES for p in folder.iterdir())


def _folder_hint(folder: Path) -> str:
    """What a folder without images may be instead, as the rest of an error message."""
    if (folder / "leftImg8bit_sequence").is_dir() or (folder / "leftImg8bit").is_dir():
        return f"; it is laid out like Cityscapes: cityscapes://{folder}"
    return ""


def _unfinished_times(uri: str, folder: Path, images: int) -> list[float] | None:
    """The capture times a dir:// recording that did not finish (killed, the power cut)
    wrote as it went: one an image, the last image's missing when it died between the two
    (that image is then paced one period after the one before). None when there are none,
    or more than images (some were removed: the times no longer say which is which)."""
    path = folder_partial_timestamps_path(folder)
    if not path.is_file():
        return None
    try:
        times = read_timestamps(path, frames=None, unfinished=True)
    except SourceError as exc:
        print(f"warning: source {uri!r}: replaying without capture times: {exc}", file=sys.stderr)
        return None
    if not times or len(times) > images:
        print(
            f"warning: source {uri!r}: {str(path)!r}, the capture times of a recording that did not "
            f"finish, holds {len(times)} for {images} image(s); replaying without them",
            file=sys.stderr,
        )
        return None
    print(
        f"warning: source {uri!r}: the recording into {str(folder)!r} did not finish (killed, or the power "
        f"lost); replaying it at the {len(times)} capture time(s) it wrote, in {str(path)!r}",
        file=sys.stderr,
    )
    return times


def image_files(folder: Path) -> list[Path]:
    """The images a folder source plays, in natural order; hidden ones left out: a frame a
    dir:// sink was writing."""
    return sorted(
        (p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")),
        key=natural_key,
    )


class ImageDirSource:
    """The images of a folder in natural order (frame_2.png before frame_10.png).

    A file that does not decode is skipped, said once (naming it) and counted: in the next
    frame's ``meta`` like a video's undecodable frames, or in ``undecodable_at_end`` when no
    frame follows it.
    """

    def __init__(self, uri: str, folder: Path, fps: float | None = None) -> None:
        self.uri, self.fps, self.live = uri, fps, False
        self._files = image_files(folder)
        if not self._files:
            raise SourceError(
                f"image directory {str(folder)!r} has no {sorted(IMAGE_SUFFIXES)} files{_folder_hint(folder)}"
            )
        self._next = 0
        self._seq = 0
        self.undecodable = 0
        self.undecodable_at_end = 0
        self.skipped_media_ms: float | None = None
        # the capture times edge record (or a live run's dir:// sink) kept, one per image
        stamps = folder_timestamps_path(folder)
        self.timestamps = read_timestamps_if_any(stamps, frames=len(self._files))
        if self.timestamps is None:
            self.timestamps = _unfinished_times(uri, folder, len(self._files))
            stamps = folder_partial_timestamps_path(folder)
        self.timestamps_file = stamps if self.timestamps is not None else None

    def read(self) -> Frame | None:
        import cv2

        bad = 0
        while self._next < len(self._files):
            path = self._files[self._next]
            self._next += 1
            bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if bgr is None:
                self._undecodable(path)
                bad += 1
                continue
            meta: dict[str, Any] = {"undecodable_before": bad} if bad else {}
            if self.timestamps is not None and self._next <= len(self.timestamps):
                meta["media_ms"] = self.timestamps[self._next - 1]
            frame = Frame(
                self._seq, time.perf_counter_ns(), cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), str(path), meta=meta
            )
            self._seq += 1
            return frame
        self.undecodable_at_end = bad
        return None

    def __len__(self) -> int:
        return len(self._files)

    def skip(self) -> bool:
        """Pass over the next file without decoding it; False at the end. Its capture time,
        where the folder has them, is ``skipped_media_ms`` (a playlist joins it)."""
        if self._next >= len(self._files):
            return False
        at, times = self._next, self.timestamps
        self._next += 1
        self.skipped_media_ms = times[at] if times is not None and at < len(times) else None
        return True

    def rewind(self) -> None:
        """Start again from the first file (looping), still saying only once what is skipped."""
        self._next = 0

    def _undecodable(self, path: Path) -> None:
        if not self.undecodable:
            print(
                f"warning: source {self.uri!r}: {path.name!r} is not an image OpenCV can decode; skipping it "
                "and any others (counted in the summary as undecodable)",
                file=sys.stderr,
            )
        self.undecodable += 1

    def close(self) -> None:
        return None
