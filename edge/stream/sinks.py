"""URI-selected output sinks: ``out.mp4``, ``dir://frames/``, ``null://``.

The video sink writes to a hidden partial file and renames it on close, so an
interrupted run never leaves a truncated file under the final name.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import numpy as np

from edge.errors import SinkError

VIDEO_SUFFIXES = {".mp4": "mp4v", ".avi": "MJPG", ".mkv": "mp4v"}


class Sink(Protocol):
    uri: str

    def write(self, image: np.ndarray, seq: int) -> None: ...

    def close(self) -> None: ...


class NullSink:
    def __init__(self, uri: str = "null://") -> None:
        self.uri = uri
        self.frames = 0

    def write(self, image: np.ndarray, seq: int) -> None:
        self.frames += 1

    def close(self) -> None:
        return None


class VideoSink:
    def __init__(self, uri: str, path: Path, fps: float) -> None:
        self.uri, self.path, self.fps = uri, path, fps
        self.partial = path.with_name(f".{path.stem}.partial{path.suffix}")
        self.frames = 0
        self._writer: Any = None
        self._size: tuple[int, int] | None = None

    def write(self, image: np.ndarray, seq: int) -> None:
        import cv2

        h, w = image.shape[:2]
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fourcc = cv2.VideoWriter.fourcc(*VIDEO_SUFFIXES[self.path.suffix.lower()])
            self._writer = cv2.VideoWriter(str(self.partial), fourcc, self.fps, (w, h))
            if not self._writer.isOpened():
                raise SinkError(f"cannot write video {str(self.path)!r} with OpenCV")
            self._size = (w, h)
        elif (w, h) != self._size:
            raise SinkError(
                f"sink {self.uri!r}: frame size {w}x{h} differs from the first frame's {self._size}"
            )
        self._writer.write(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        self.frames += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None
            os.replace(self.partial, self.path)


class DirSink:
    def __init__(self, uri: str, folder: Path) -> None:
        self.uri, self.folder = uri, folder
        folder.mkdir(parents=True, exist_ok=True)
        self.frames = 0

    def write(self, image: np.ndarray, seq: int) -> None:
        import cv2

        target = self.folder / f"frame_{seq:06d}.png"
        tmp = self.folder / f".frame_{seq:06d}.partial.png"
        if not cv2.imwrite(str(tmp), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
            raise SinkError(f"cannot write {str(target)!r}")
        os.replace(tmp, target)
        self.frames += 1

    def close(self) -> None:
        return None


def open_sink(uri: str, *, fps: float = 17.0) -> Sink:
    if "\x00" in uri:
        raise SinkError(f"sink {uri!r} contains a NUL character")
    try:
        parts = urlsplit(uri)
    except ValueError as exc:
        raise SinkError(f"sink {uri!r} is not a valid URI: {exc}") from None
    if parts.scheme == "null":
        return NullSink(uri)
    if parts.scheme == "dir":
        return DirSink(uri, Path(parts.netloc + parts.path))
    path = Path(parts.path if parts.scheme == "file" else uri)
    if parts.scheme not in ("", "file") or path.suffix.lower() not in VIDEO_SUFFIXES:
        raise SinkError(
            f"unknown sink {uri!r}; supported: a video path ending in {sorted(VIDEO_SUFFIXES)}, "
            "dir://FOLDER, null://"
        )
    return VideoSink(uri, path, fps)
