"""URI-selected frame sources.

synthetic://?fps=17&seed=0&size=256x512&frames=N   procedural driving scene (cut_ins=N:
                                                      that many road users enter its path;
                                                      lane=right: driving in the right lane;
                                                      lead_brakes=1: the car ahead brakes)
cityscapes://DIR?split=val&fps=17                     Cityscapes-layout sequences, in order
path/to/video.mp4, file:///abs/video.mp4              video file
path/to/images/                                       image directory (natural order)
/dev/video0, csi://0, rtsp://..., http://..., gst://  cameras and streams (edge.stream.cameras),
                                                      read on a capture thread (edge.stream.capture)
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import SplitResult, parse_qs, urlsplit

from edge.errors import ConfigError, SourceError
from edge.stream.frame import Frame
from edge.stream.images import ImageDirSource, holds_images
from edge.stream.timestamps import mean_rate, read_timestamps_if_any, timestamps_path


class Source(Protocol):
    uri: str
    fps: float | None
    live: bool  # live sources drop frames when the consumer is slow; files never do

    def read(self) -> Frame | None:
        """The next frame, or None at the end."""
        ...

    def close(self) -> None: ...

    # optional, for live sources: interrupt() ends a read that is waiting for a frame;
    # optional: undecodable_at_end, input skipped after the last frame (no frame can carry it);
    # optional, for finite sources: __len__ (frames held) or declared_frames (what its files say),
    # and skip() -> bool, passing a frame undecoded where it can (calibration samples a source);
    # optional, for generators: endless (True: read() never returns None);
    # optional, for sources that can keep their rate: keeps_rate (True: read() itself waits
    # for each frame's time, as cityscapes://DIR?fps=17 does; a reader that holds the frames,
    # as edge bench, sets it False) and pace_hint (what paces it, said where it is read as fast
    # as the engines take its frames; else --realtime);
    # optional, for recordings: timestamps (ms per frame) and timestamps_file, and each
    # frame's meta["media_ms"] (edge.stream.timestamps);
    # optional, for files read at another rate than recorded: media_fps (cityscapes://DIR)
    # optional, for sources that know their camera: hfov_deg, its horizontal field of view
    # (synthetic://, cityscapes://DIR with camera files), which places the objects where
    # none is given (Pipeline), and ground, its height over the road, horizon and focal
    # length (edge.postprocess.ground.GroundPlane), which the objects' distances are read
    # from where their feet are seen


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
        from edge.build import parse_frame_size
        from edge.data.synthetic import LANES, SyntheticScene
        from edge.errors import ConfigError

        q = _query(uri)
        unknown = set(q) - {"fps", "seed", "size", "frames", "cut_ins", "lane", "lead_brakes"}
        if unknown:
            raise SourceError(
                f"source {uri!r}: unknown options {sorted(unknown)}; known: fps, seed, size, frames, "
                "cut_ins, lane, lead_brakes"
            )
        lead_brakes = _int_param(q, "lead_brakes", 0, uri)
        if lead_brakes > 1:
            raise SourceError(f"source {uri!r}: lead_brakes={lead_brakes} must be 0 or 1")
        lane = q.get("lane", "centre")
        if lane not in LANES:
            raise SourceError(f"source {uri!r}: lane={lane!r} is not one of {', '.join(LANES)}")
        try:
            self.fps: float | None = float(q.get("fps", 17.0))
        except ValueError:
            raise SourceError(f"source {uri!r}: fps={q['fps']!r} is not a number") from None
        try:
            h, w = parse_frame_size(q.get("size", "256x512"))
        except ConfigError as exc:
            raise SourceError(f"source {uri!r}: {exc}") from None
        if not (math.isfinite(self.fps) and self.fps > 0):
            raise SourceError(f"source {uri!r}: fps={q.get('fps')!r} must be a positive finite number")
        self.uri = uri
        self.live = False
        self.frames = _int_param(q, "frames", 0, uri) or None
        self._scene = SyntheticScene(
            height=h,
            width=w,
            seed=_int_param(q, "seed", 0, uri),
            cut_ins=_int_param(q, "cut_ins", 0, uri),
            lane=lane,
            lead_brakes=bool(lead_brakes),
        )
        self.hfov_deg: float | None = self._scene.camera.hfov_deg
        self.ground = self._scene.camera.ground
        self._seq = 0

    @property
    def endless(self) -> bool:
        """Without ``frames`` the generator never ends (calibration relies on it to skip)."""
        return self.frames is None

    def skip(self) -> bool:
        """Pass over the next frame without rendering it; False at the end."""
        if self.frames is not None and self._seq >= self.frames:
            return False
        self._seq += 1
        return True

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
        from edge.data.cityscapes import camera_ground, camera_hfov, list_frames
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
        self.media_fps = 17.0  # recorded at, whatever it is read at: the objects' speeds
        self.live = False
        self.keeps_rate = self.fps is not None
        self.pace_hint = "fps=17 in its URI replays it at the recorded rate"
        self._refs = [ref for seq in sequences for ref in seq]
        self.hfov_deg = camera_hfov(self._refs)
        self.ground = camera_ground(self._refs)
        self._pos = 0
        self._next_t: float | None = None

    def __len__(self) -> int:
        return len(self._refs)

    def skip(self) -> bool:
        """Pass over the next frame without reading its image; False at the end."""
        if self._pos >= len(self._refs):
            return False
        self._pos += 1
        return True

    def read(self) -> Frame | None:
        from edge.data.cityscapes import read_rgb
        from edge.errors import DatasetError

        if self._pos >= len(self._refs):
            return None
        ref = self._refs[self._pos]
        if self.keeps_rate and self.fps:
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


def declared_count(cap: Any) -> int | None:
    """The frames an opened cv2.VideoCapture's header declares; None where it gives none."""
    import cv2

    declared = cap.get(cv2.CAP_PROP_FRAME_COUNT)
    return int(declared) if declared and declared > 0 else None


class OpenCVSource:
    """Video files through cv2.VideoCapture (cameras and streams go through LiveCapture).

    A frame FFmpeg cannot decode makes ``read`` fail once and the next one succeed, so a
    failed read is retried: frames that come after it prove the failures were undecodable
    frames (skipped, counted, and reported in the next frame's ``meta``); failures up to
    the end are the end. A file that ends before the frame count its header declares is
    reported as truncated.
    """

    MAX_BAD_IN_A_ROW = 25

    def __init__(self, uri: str, target: str) -> None:
        import cv2

        from edge.stream.cameras import quiet_open
        from edge.stream.unopenable import why_unopenable

        self.uri = uri
        self.live = False
        if reason := why_unopenable(Path(target)):
            raise SourceError(f"cannot open source {uri!r}: {reason}")
        with quiet_open():
            cap = cv2.VideoCapture(target, cv2.CAP_FFMPEG)
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"cannot open source {uri!r} with OpenCV (missing, unreadable or not a video)")
        self._cap = cap
        fps = cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and fps > 0 else None
        self.declared_frames = declared_count(cap)
        self.undecodable = 0
        self._seq = 0
        self._ended = False
        self.skipped_media_ms: float | None = None
        # the capture times edge record wrote beside the video, for --realtime to replay at
        stamps = timestamps_path(Path(target))
        try:
            self.timestamps = read_timestamps_if_any(stamps, frames=self.declared_frames)
        except SourceError:
            cap.release()
            raise
        self.timestamps_file = stamps if self.timestamps is not None else None

    def read(self) -> Frame | None:
        import cv2

        if self._ended:
            return None
        bad = 0
        while True:
            ok, bgr = self._cap.read()
            if ok and bgr is not None:
                break
            bad += 1
            if bad >= self.MAX_BAD_IN_A_ROW:
                self._end()
                return None
        meta: dict[str, Any] = {}
        if bad:
            if not self.undecodable:
                print(
                    f"warning: source {self.uri!r}: {bad} frame(s) before frame {self._seq} could not be "
                    "decoded; skipping them (counted in the summary as undecodable)",
                    file=sys.stderr,
                )
            self.undecodable += bad
            meta["undecodable_before"] = bad
        at = self._seq + self.undecodable  # the frame's place in the file
        if self.timestamps is not None and at < len(self.timestamps):
            meta["media_ms"] = self.timestamps[at]
        frame = Frame(
            self._seq, time.perf_counter_ns(), cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), self.uri, meta=meta
        )
        self._seq += 1
        return frame

    def skip(self) -> bool:
        """Pass over the next frame (decoded, not converted); False at the end. Its capture
        time, where the file has them, is ``skipped_media_ms`` (a playlist joins it)."""
        if self._ended:
            return False
        if self._cap.grab():
            at = self._seq + self.undecodable
            times = self.timestamps
            self.skipped_media_ms = times[at] if times is not None and at < len(times) else None
            self._seq += 1
            return True
        frame = self.read()  # a damaged frame, or the end: as read() tells them apart
        self.skipped_media_ms = frame.meta.get("media_ms") if frame is not None else None
        return frame is not None

    def _end(self) -> None:
        self._ended = True
        seen = self._seq + self.undecodable
        if self.declared_frames is not None and seen < self.declared_frames - 1:
            print(
                f"warning: source {self.uri!r} ended after {seen} of the {self.declared_frames} frames its "
                "header declares (truncated or damaged file)",
                file=sys.stderr,
            )

    def close(self) -> None:
        self._cap.release()


class LoopingSource:
    """A finite source played again from its start each time it ends (files, image folders,
    synthetic drives): a stand-in camera that never stops, e.g. to watch in the viewer."""

    def __init__(self, source: Source) -> None:
        if source.live:
            raise SourceError(f"source {source.uri!r} is live; only files and folders can loop")
        self._source = source
        self.uri, self.fps, self.live = source.uri, source.fps, False
        self.timestamps = getattr(source, "timestamps", None)
        self.timestamps_file = getattr(source, "timestamps_file", None)
        self.hfov_deg = getattr(source, "hfov_deg", None)
        self.ground = getattr(source, "ground", None)
        self.loops = 0
        self._seq = 0
        self.undecodable_at_end = 0

    def _restart(self) -> None:
        rewind = getattr(self._source, "rewind", None)
        if rewind is not None:
            rewind()
            return
        self._source.close()
        self._source = open_source(self.uri)

    def read(self) -> Frame | None:
        frame = self._source.read()
        meta: dict[str, Any] = {}
        if frame is None:
            at_end = int(getattr(self._source, "undecodable_at_end", 0))
            self._restart()
            self.loops += 1
            frame = self._source.read()
            if frame is None:
                self.undecodable_at_end = at_end
                return None
            # what was skipped at the end of the last pass is told with the first frame of the next
            if at_end:
                meta["undecodable_before"] = at_end + int(frame.meta.get("undecodable_before", 0))
        frame = dataclasses.replace(frame, seq=self._seq, meta={**frame.meta, **meta, "loop": self.loops})
        self._seq += 1
        return frame

    def close(self) -> None:
        self._source.close()


def nominal_rate(source: Source) -> float | None:
    """A source's frames per second: its own, else that of its capture times (a folder
    edge record wrote), else None."""
    times = getattr(source, "timestamps", None)
    return source.fps or (mean_rate(times) if times else None)


def open_live(uri: str, *, reconnect_timeout_s: float | None = None) -> Source:
    """A camera or network stream on its own capture thread (newest frame wins, reconnects)."""
    from edge.stream.cameras import granted, open_capture, spec_for
    from edge.stream.capture import LiveCapture

    spec = spec_for(uri)
    warned: list[bool] = []

    def open_reader() -> Any:
        cap = open_capture(uri, spec)
        differs = granted(cap, spec)
        if differs and not warned:
            warned.append(True)
            told = ", ".join(f"{k} {asked:g} -> {got:g}" for k, (asked, got) in differs.items())
            print(f"warning: camera {uri!r} did not accept the requested settings: {told}", file=sys.stderr)
        return cap

    return LiveCapture(uri=uri, open_reader=open_reader, reconnect_timeout_s=reconnect_timeout_s)


def source_file(uri: str) -> Path | None:
    """The video file or image folder that source ``uri`` reads (a path or file://); None
    for the other schemes: cameras, streams, synthetic://, cityscapes://, and for a URI
    that names nothing (open_source says why)."""
    if uri.startswith(("/dev/video", "/dev/v4l/")) or not uri or "\x00" in uri:
        return None
    scheme = _split(uri).scheme
    if scheme == "file":
        return Path(_split(uri).path)
    if scheme == "" or len(scheme) == 1:  # plain path (or a Windows drive letter)
        return Path(uri)
    return None


_LIVE_SCHEMES = ("csi", "gst", "rtsp", "rtsps", "http", "https")


def is_live(uri: str) -> bool:
    """Whether ``uri`` names a camera or a stream (open_source opens it with open_live):
    what it shows cannot be had again."""
    try:
        scheme = _split(uri).scheme
    except SourceError:
        return False
    return scheme in _LIVE_SCHEMES or uri.startswith(("/dev/video", "/dev/v4l/"))


def open_source(uri: str, *, reconnect_timeout_s: float | None = None) -> Source:
    """The source a URI names; a clear SourceError for anything else.

    ``reconnect_timeout_s`` applies to cameras and streams: how long a lost one may stay
    away before the run fails (None: for ever).
    """
    if not uri:
        raise SourceError("empty source URI; expected e.g. synthetic://, video.mp4, /dev/video0")
    if "\x00" in uri:
        raise SourceError(f"source {uri!r} contains a NUL character")
    scheme = _split(uri).scheme
    if scheme == "synthetic":
        return SyntheticSource(uri)
    if scheme == "cityscapes":
        return CityscapesSource(uri)
    if scheme in ("rtsp", "rtsps", "http", "https") and not _split(uri).hostname:
        raise SourceError(f"source {uri!r} names no host; expected e.g. {scheme}://192.168.1.10:554/stream")
    if is_live(uri):
        return open_live(uri, reconnect_timeout_s=reconnect_timeout_s)
    path = source_file(uri)
    if path is None:
        raise SourceError(
            f"unknown source scheme {scheme!r} in {uri!r}; supported: synthetic://, cityscapes://DIR, "
            "file paths, file://, image directories, /dev/videoN, csi://N, rtsp://, gst://"
        )
    if path.is_dir():
        if holds_images(path):
            return ImageDirSource(uri, path)
        from edge.stream.playlist import PlaylistSource, played_in

        played = played_in(uri, path)  # a drive in segments
        return PlaylistSource(uri, played) if played else ImageDirSource(uri, path)
    if not path.exists():
        from edge.stream.playlist import PlaylistSource, played_matching, played_segments

        if segments := played_segments(uri, path):  # a recording's name, its segments there (--segment)
            return PlaylistSource(uri, segments)
        if any(c in str(path) for c in "*?["):  # a glob: 'drive-*.mkv'
            return PlaylistSource(uri, played_matching(uri, str(path)))
    if not path.is_file():
        raise SourceError(f"source {uri!r}: no such file or directory")
    return OpenCVSource(uri, str(path))


def unpace(source: Source) -> None:
    """Read ``source`` as fast as it gives frames, for work that is not a replay (calibration,
    a lens's chessboard): a Cityscapes tree's recorded 17 Hz would only add sleeps."""
    if isinstance(source, CityscapesSource):
        source.fps = None


def pace_period(source: Source, *, realtime: bool, fps: float | None) -> float:
    """Seconds between reads when ``realtime`` paces a file or folder (0: unpaced), at
    ``fps``, the source's own rate or that of its capture times; a ConfigError for a source
    that has none of them."""
    if not realtime or source.live:  # a camera paces itself
        return 0.0
    rate = fps or nominal_rate(source)
    if not rate:
        raise ConfigError(
            f"--realtime: source {source.uri!r} has no frame rate of its own to pace it at (an image "
            "folder); give one, e.g. --fps 10"
        )
    return 1.0 / rate
