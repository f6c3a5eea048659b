"""URI-selected frame sources.

synthetic://?fps=17&seed=0&size=256x512&frames=N   procedural driving scene
cityscapes://DIR?split=val&fps=17                     Cityscapes-layout sequences, in order
path/to/video.mp4, file:///abs/video.mp4              video file
path/to/images/                                       image directory (sorted)
/dev/video0, csi://0, rtsp://..., gst://PIPELINE     cameras and streams via OpenCV
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import SplitResult, parse_qs, urlsplit

from edge.errors import SourceError
from edge.stream.frame import Frame

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp"}


class Source(Protocol):
    uri: str
    fps: float | None
    live: bool  # live sources drop frames when the consumer is slow; files never do

    def read(self) -> Frame | None:
        """The next frame, or None at the end."""
        ...

    def close(self) -> None: ...


def _split(uri: str) -> SplitResult:
    try:
        return urlsplit(uri)
    except ValueError as exc:  # e.g. an unbalanced '[' reads as a broken IPv6 host
        raise SourceError(f"source {uri!r} is not a valid URI: {exc}") from None


def _query(uri: str) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(_split(uri).query).items()}


def _int_param(q: dict[str, str], key: str, default: int, uri: str) -> int:
    try:
        value = int(q.get(key, default))
    except ValueError:
        raise SourceError(f"source {uri!r}: {key}={q[key]!r} is not an integer") from None
    if value < 0:
        raise SourceError(f"source {uri!r}: {key}={value} must not be negative")
    return value


class SyntheticSource:
    def __init__(self, uri: str) -> None:
        from edge.build import parse_size
        from edge.data.synthetic import SyntheticScene
        from edge.errors import ConfigError

        q = _query(uri)
        unknown = set(q) - {"fps", "seed", "size", "frames"}
        if unknown:
            raise SourceError(
                f"source {uri!r}: unknown options {sorted(unknown)}; known: fps, seed, size, frames"
            )
        try:
            self.fps: float | None = float(q.get("fps", 17.0))
            h, w = parse_size(q.get("size", "256x512"))
        except (ValueError, ConfigError) as exc:
            raise SourceError(f"source {uri!r}: {exc}") from None
        if not (math.isfinite(self.fps) and self.fps > 0):
            raise SourceError(f"source {uri!r}: fps={q.get('fps')!r} must be a positive finite number")
        self.uri = uri
        self.live = False
        self.frames = _int_param(q, "frames", 0, uri) or None
        self._scene = SyntheticScene(height=h, width=w, seed=_int_param(q, "seed", 0, uri))
        self._seq = 0

    def read(self) -> Frame | None:
        if self.frames is not None and self._seq >= self.frames:
            return None
        image = self._scene.render(self._seq, self.fps or 17.0)
        frame = Frame(self._seq, time.perf_counter_ns(), image, self.uri)
        self._seq += 1
        return frame

    def close(self) -> None:
        return None


class CityscapesSource:
    """Each sequence of a split in frame order, at the recorded 17 Hz (fps=0: unpaced).

    Frames carry ``meta`` with the Cityscapes name, sequence, frame and ``has_gt``, so a
    replay can evaluate the frames that have ground truth. Never live: a slow consumer
    slows the replay down instead of losing frames.
    """

    def __init__(self, uri: str) -> None:
        from edge.data.cityscapes import list_frames
        from edge.errors import DatasetError

        parts = _split(uri)
        q = _query(uri)
        unknown = set(q) - {"split", "fps"}
        if unknown:
            raise SourceError(f"source {uri!r}: unknown options {sorted(unknown)}; known: split, fps")
        folder = (parts.netloc + parts.path) or "."
        try:
            fps = float(q.get("fps", 17.0))
        except ValueError:
            raise SourceError(f"source {uri!r}: fps={q['fps']!r} is not a number") from None
        if not (math.isfinite(fps) and fps >= 0):
            raise SourceError(f"source {uri!r}: fps must be a finite number >= 0 (0: as fast as possible)")
        try:
            sequences = list_frames(folder, q.get("split", "val"))
        except DatasetError as exc:
            raise SourceError(f"source {uri!r}: {exc}") from None
        self.uri = uri
        self.root = Path(folder)
        self.split = q.get("split", "val")
        self.fps: float | None = fps or None
        self.live = False
        self._refs = [ref for seq in sequences for ref in seq]
        self._pos = 0
        self._next_t: float | None = None

    def __len__(self) -> int:
        return len(self._refs)

    def read(self) -> Frame | None:
        from edge.data.cityscapes import read_rgb
        from edge.errors import DatasetError

        if self._pos >= len(self._refs):
            return None
        ref = self._refs[self._pos]
        if self.fps:
            now = time.perf_counter()
            if self._next_t is not None and now < self._next_t:
                time.sleep(self._next_t - now)
            self._next_t = max(now, self._next_t or now) + 1.0 / self.fps
        try:
            image = read_rgb(ref.path("image"))
        except DatasetError as exc:
            raise SourceError(f"source {self.uri!r}: {exc}") from None
        meta = {
            "name": ref.name,
            "city": ref.city,
            "sequence": ref.seq,
            "frame": ref.frame,
            "has_gt": ref.has_gt,
        }
        frame = Frame(self._pos, time.perf_counter_ns(), image, self.uri, meta=meta)
        self._pos += 1
        return frame

    def close(self) -> None:
        return None


class OpenCVSource:
    """Video files, cameras and streams through cv2.VideoCapture."""

    def __init__(self, uri: str, target: Any, *, live: bool, api: int | None = None) -> None:
        import cv2

        self.uri = uri
        self.live = live
        cap = cv2.VideoCapture(target) if api is None else cv2.VideoCapture(target, api)
        if not cap.isOpened():
            raise SourceError(f"cannot open source {uri!r} with OpenCV ({_why_not(uri)})")
        self._cap = cap
        fps = cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and fps > 0 else None
        self._seq = 0

    def read(self) -> Frame | None:
        import cv2

        ok, bgr = self._cap.read()
        if not ok or bgr is None:
            return None
        frame = Frame(self._seq, time.perf_counter_ns(), cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), self.uri)
        self._seq += 1
        return frame

    def close(self) -> None:
        self._cap.release()


def _why_not(uri: str) -> str:
    if uri.startswith(("csi://", "gst://")):
        return "needs OpenCV built with GStreamer; the PyPI opencv wheels have none"
    if uri.startswith("/dev/video"):
        return "no such camera, or it is busy"
    if uri.startswith("rtsp://"):
        return "stream unreachable or codec unsupported"
    return "missing, unreadable or not a video"


class ImageDirSource:
    def __init__(self, uri: str, folder: Path, fps: float | None = None) -> None:
        self.uri, self.fps, self.live = uri, fps, False
        self._files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self._files:
            raise SourceError(f"image directory {str(folder)!r} has no {sorted(IMAGE_SUFFIXES)} files")
        self._seq = 0

    def read(self) -> Frame | None:
        import cv2

        while self._seq < len(self._files):
            path = self._files[self._seq]
            self._seq += 1
            bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if bgr is not None:  # undecodable files are skipped
                return Frame(
                    self._seq - 1, time.perf_counter_ns(), cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), str(path)
                )
        return None

    def close(self) -> None:
        return None


def csi_pipeline(sensor: int, width: int = 1280, height: int = 720, fps: int = 30) -> str:
    """Jetson CSI camera through nvarguscamerasrc, converted to BGR for OpenCV's appsink."""
    return (
        f"nvarguscamerasrc sensor-id={sensor} ! video/x-raw(memory:NVMM),width={width},"
        f"height={height},framerate={fps}/1 ! nvvidconv ! video/x-raw,format=BGRx ! "
        "videoconvert ! video/x-raw,format=BGR ! appsink drop=true max-buffers=1"
    )


def open_source(uri: str) -> Source:
    """The source a URI names; a clear SourceError for anything else."""
    import cv2

    if not uri:
        raise SourceError("empty source URI; expected e.g. synthetic://, video.mp4, /dev/video0")
    if "\x00" in uri:
        raise SourceError(f"source {uri!r} contains a NUL character")
    scheme = _split(uri).scheme
    if scheme == "synthetic":
        return SyntheticSource(uri)
    if scheme == "cityscapes":
        return CityscapesSource(uri)
    if scheme == "csi":
        sensor = _split(uri).netloc or "0"
        if not sensor.isdigit():
            raise SourceError(f"source {uri!r}: expected csi://N with a sensor number")
        return OpenCVSource(uri, csi_pipeline(int(sensor)), live=True, api=cv2.CAP_GSTREAMER)
    if scheme == "gst":
        return OpenCVSource(uri, uri[len("gst://") :], live=True, api=cv2.CAP_GSTREAMER)
    if scheme in ("rtsp", "rtsps", "http", "https"):
        return OpenCVSource(uri, uri, live=True, api=cv2.CAP_FFMPEG)
    if uri.startswith("/dev/video"):
        return OpenCVSource(uri, uri, live=True, api=cv2.CAP_V4L2)
    if scheme == "file":
        path = Path(_split(uri).path)
    elif scheme in ("",) or len(scheme) == 1:  # plain path (or a Windows drive letter)
        path = Path(uri)
    else:
        raise SourceError(
            f"unknown source scheme {scheme!r} in {uri!r}; supported: synthetic://, cityscapes://DIR, "
            "file paths, file://, image directories, /dev/videoN, csi://N, rtsp://, gst://"
        )
    if path.is_dir():
        return ImageDirSource(uri, path)
    if not path.is_file():
        raise SourceError(f"source {uri!r}: no such file or directory")
    return OpenCVSource(uri, str(path), live=False)
