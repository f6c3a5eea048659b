"""How each live URI is opened with OpenCV: target string, capture API, properties.

/dev/videoN?width=1280&height=720&fps=30&fourcc=MJPG     V4L2 camera
/dev/v4l/by-id/usb-...-video-index0?width=1280           the same, by udev's stable name
csi://N?width=1280&height=720&fps=30&flip=0              Jetson CSI camera (nvarguscamerasrc)
rtsp://host/path#transport=tcp&backend=ffmpeg&latency=0  network stream (options after '#')
http://host/stream.mjpg                                  MJPEG / HLS over HTTP (FFmpeg)
gst://PIPELINE                                           any GStreamer pipeline ending in appsink

A car's USB cameras come up as /dev/video0, 2, 4 in whatever order the bus finds them, and
again in another after a camera is unplugged: udev's links under /dev/v4l/by-id (the camera's
make and serial) and /dev/v4l/by-path (its port) stay, and are followed at each open, a
reconnection's too.

Options for rtsp:// and http:// travel in the fragment because the query belongs to the
camera's own URL, and a fragment is never sent to the server.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from edge.errors import SourceError
from edge.util.proc import sysfs_text

# OpenCV reads this variable when a capture opens; a lock keeps two opens from mixing values
_FFMPEG_ENV = "OPENCV_FFMPEG_CAPTURE_OPTIONS"
_env_lock = threading.Lock()
OPEN_TIMEOUT_MS = 5000
READ_TIMEOUT_MS = 5000
V4L2_DEVICES = ("/dev/video", "/dev/v4l/")  # a V4L2 camera's node, or udev's stable link to one


def is_v4l2(uri: str) -> bool:
    """Whether ``uri`` names a V4L2 camera: /dev/videoN, or udev's /dev/v4l/by-id/... or
    /dev/v4l/by-path/... link to one."""
    return uri.startswith(V4L2_DEVICES)


def v4l2_node(device: str) -> str:
    """The camera node a V4L2 ``device`` is now (a udev link followed; /dev/videoN itself); a
    SourceError for a link that leads nowhere (a camera unplugged, or another name)."""
    if device.startswith("/dev/video"):
        return device
    node = os.path.realpath(device)
    if not os.path.exists(node):
        folder = os.path.dirname(device)
        raise SourceError(
            f"camera {device!r} is not plugged in, or is named otherwise: ls {folder} lists the "
            "cameras there now"
        )
    return node


@dataclass
class CaptureSpec:
    """What cv2.VideoCapture is given for one URI."""

    target: str
    api: str  # "v4l2" | "gstreamer" | "ffmpeg"
    props: list[tuple[str, float]] = field(default_factory=list)  # cv2.CAP_PROP_* name, value
    ffmpeg_options: str | None = None
    requested: dict[str, float] = field(default_factory=dict)  # to warn when a camera ignores them


@cache
def gstreamer_available() -> bool:
    import cv2

    for line in cv2.getBuildInformation().splitlines():
        if line.strip().startswith("GStreamer:"):
            return "YES" in line
    return False


def hidden_opencv(loaded: str, search_path: list[str]) -> str | None:
    """Another OpenCV on ``search_path`` than the one ``loaded`` from, e.g. JetPack's (with
    GStreamer) behind the PyPI wheel a venv made with --system-site-packages installed."""
    from importlib.machinery import PathFinder

    this = Path(loaded).resolve()
    # a package (cv2/__init__.py, the wheels) or a single extension module (cv2.*.so)
    home = this.parent.parent if this.name == "__init__.py" else this.parent
    for entry in search_path:
        if not entry or Path(entry).resolve() == home:
            continue
        spec = PathFinder.find_spec("cv2", [entry])
        if spec is not None and spec.origin and Path(spec.origin).resolve() != this:
            return spec.origin
    return None


def _options(uri: str, text: str, known: dict[str, type]) -> dict[str, Any]:
    q = {k: v[-1] for k, v in parse_qs(text, keep_blank_values=True).items()}
    unknown = set(q) - set(known)
    if unknown:
        raise SourceError(f"source {uri!r}: unknown options {sorted(unknown)}; known: {', '.join(known)}")
    out: dict[str, Any] = {}
    for key, value in q.items():
        kind = known[key]
        if kind is str:
            out[key] = value
            continue
        try:
            number = kind(value)
        except ValueError:
            what = "an integer" if kind is int else "a number"
            raise SourceError(f"source {uri!r}: {key}={value!r} is not {what}") from None
        if number <= 0 and key not in ("flip", "latency"):
            raise SourceError(f"source {uri!r}: {key}={value!r} must be positive")
        out[key] = number
    return out


def v4l2_cameras(root: str | Path = "/") -> list[dict[str, Any]]:
    """The V4L2 cameras plugged in (``root``: the filesystem's, another for a copy of one):
    each capture node (sysfs index 0: a USB camera's second node carries metadata) with its
    name and udev's stable links to it, by-id first, to name it in a rig."""
    top = Path(root)
    sysfs = top / "sys/class/video4linux"
    links: dict[str, list[str]] = {}
    for kind in ("by-id", "by-path"):
        folder = top / "dev/v4l" / kind
        for link in sorted(folder.iterdir()) if folder.is_dir() else ():
            target = os.path.basename(os.path.realpath(link))
            links.setdefault(target, []).append(f"/dev/v4l/{kind}/{link.name}")
    found = []
    nodes = [n for n in sysfs.iterdir() if n.name.startswith("video")] if sysfs.is_dir() else []
    for node in sorted(nodes, key=lambda n: int(n.name[5:]) if n.name[5:].isdigit() else 1 << 30):
        index = sysfs_text(node / "index")
        if index not in (None, "0"):
            continue
        found.append(
            {
                "node": f"/dev/{node.name}",
                "name": sysfs_text(node / "name"),
                "links": links.get(node.name, []),
            }
        )
    return found


def v4l2_spec(uri: str) -> CaptureSpec:
    import cv2

    device, _, query = uri.partition("?")
    if device.startswith("/dev/v4l/"):
        if device.rstrip("/") in ("/dev/v4l", "/dev/v4l/by-id", "/dev/v4l/by-path"):
            raise SourceError(
                f"source {uri!r} is a folder of cameras; name one of them, e.g. "
                "/dev/v4l/by-id/usb-046d_HD_Pro_Webcam_C920_1234ABCD-video-index0"
            )
    elif not _is_number(device[len("/dev/video") :]):
        raise SourceError(
            f"source {uri!r}: expected /dev/videoN (or udev's /dev/v4l/by-id/... link), e.g. "
            "/dev/video0?width=1280&height=720"
        )
    opts = _options(uri, query, {"width": int, "height": int, "fps": float, "fourcc": str})
    props: list[tuple[str, float]] = []
    if "fourcc" in opts:
        code = str(opts["fourcc"])
        if len(code) != 4:
            raise SourceError(f"source {uri!r}: fourcc={code!r} must be four characters, e.g. MJPG or YUYV")
        # the pixel format goes first: it decides which sizes and rates the camera offers
        props.append(("CAP_PROP_FOURCC", float(cv2.VideoWriter.fourcc(*code))))
    for key, prop in (("width", "CAP_PROP_FRAME_WIDTH"), ("height", "CAP_PROP_FRAME_HEIGHT")):
        if key in opts:
            props.append((prop, float(opts[key])))
    if "fps" in opts:
        props.append(("CAP_PROP_FPS", float(opts["fps"])))
    props.append(("CAP_PROP_BUFFERSIZE", 1.0))  # the driver must not queue stale frames
    requested = {k: float(v) for k, v in opts.items() if k in ("width", "height", "fps")}
    return CaptureSpec(device, "v4l2", props, requested=requested)


def csi_pipeline(sensor: int, width: int = 1280, height: int = 720, fps: float = 30, flip: int = 0) -> str:
    """Jetson CSI camera through nvarguscamerasrc, converted to BGR for OpenCV's appsink."""
    return (
        f"nvarguscamerasrc sensor-id={sensor} ! video/x-raw(memory:NVMM),width={width},"
        f"height={height},framerate={round(fps)}/1 ! nvvidconv flip-method={flip} ! "
        "video/x-raw,format=BGRx ! videoconvert ! video/x-raw,format=BGR ! "
        "appsink drop=true max-buffers=1 sync=false"
    )


def _is_number(text: str) -> bool:
    """ASCII digits only: str.isdigit() also takes "²", which int() refuses."""
    return text.isascii() and text.isdigit()


CSI_DEFAULTS = {"width": 1280, "height": 720, "fps": 30.0}  # what csi:// asks where it names none
# nvvidconv's flip-methods that turn the picture a quarter, or flip it about a diagonal
_CSI_TRANSPOSED = (1, 3, 5, 7)


def _csi_options(uri: str) -> tuple[int, dict[str, Any]]:
    """csi://N's sensor and its options, CSI_DEFAULTS where it names none."""
    try:
        parts = urlsplit(uri)
    except ValueError as exc:  # e.g. an unbalanced '[' reads as a broken IPv6 host
        raise SourceError(f"source {uri!r} is not a valid URI: {exc}") from None
    if not _is_number(parts.netloc) and parts.netloc != "":
        raise SourceError(f"source {uri!r}: expected csi://N with a sensor number")
    opts = _options(uri, parts.query, {"width": int, "height": int, "fps": float, "flip": int})
    if not 0 <= int(opts.get("flip", 0)) <= 7:
        raise SourceError(f"source {uri!r}: flip must be 0..7 (nvvidconv flip-method)")
    return int(parts.netloc or 0), {"flip": 0, **CSI_DEFAULTS, **opts}


def csi_spec(uri: str) -> CaptureSpec:
    sensor, opts = _csi_options(uri)
    pipeline = csi_pipeline(
        sensor, int(opts["width"]), int(opts["height"]), float(opts["fps"]), int(opts["flip"])
    )
    return CaptureSpec(pipeline, "gstreamer")


@dataclass(frozen=True)
class Asked:
    """What a source's URI asks of its camera: its frames' (width, height) and rate, each None
    where it asks nothing."""

    size: tuple[int, int] | None = None
    fps: float | None = None


def asked(uri: str) -> Asked:
    """What source ``uri`` asks of its camera: a V4L2 camera's ``width``, ``height`` and
    ``fps``; a CSI camera's, CSI_DEFAULTS where it names none (a ``flip`` that turns the
    picture a quarter swaps width and height); synthetic://'s ``size=HxW`` and ``fps``. Files
    and streams ask nothing (a stream's query is its server's). A SourceError for options the
    camera would refuse, as opening it would say."""
    if is_v4l2(uri):
        requested = v4l2_spec(uri).requested
        width, height = requested.get("width"), requested.get("height")
        size = None if width is None or height is None else (int(width), int(height))
        return Asked(size, requested.get("fps"))
    if uri.startswith("csi://"):
        _, opts = _csi_options(uri)
        size = (int(opts["width"]), int(opts["height"]))
        return Asked(size[::-1] if opts["flip"] in _CSI_TRANSPOSED else size, float(opts["fps"]))
    if uri.startswith("synthetic://"):
        from edge.build import parse_frame_size
        from edge.errors import ConfigError

        query = {k: v[-1] for k, v in parse_qs(urlsplit(uri).query).items()}
        try:
            hw = parse_frame_size(query["size"]) if "size" in query else None
        except ConfigError as exc:
            raise SourceError(f"source {uri!r}: {exc}") from None
        try:
            fps = float(query["fps"]) if "fps" in query else None
        except ValueError:
            raise SourceError(f"source {uri!r}: fps={query['fps']!r} is not a number") from None
        return Asked(None if hw is None else (hw[1], hw[0]), fps)
    return Asked()


def network_spec(uri: str) -> CaptureSpec:
    """rtsp:// and http(s):// streams, tuned for latency rather than smoothness."""
    url, _, fragment = uri.partition("#")
    opts = _options(uri, fragment, {"transport": str, "backend": str, "latency": int})
    backend = str(opts.get("backend", "ffmpeg"))
    transport = str(opts.get("transport", "tcp"))
    latency = int(opts.get("latency", 0))
    if backend not in ("ffmpeg", "gstreamer"):
        raise SourceError(f"source {uri!r}: backend={backend!r}; expected ffmpeg or gstreamer")
    if transport not in ("tcp", "udp"):
        raise SourceError(f"source {uri!r}: transport={transport!r}; expected tcp or udp")
    is_rtsp = url.startswith(("rtsp://", "rtsps://"))
    if backend == "gstreamer":
        if is_rtsp:
            protocols = "tcp" if transport == "tcp" else "udp"
            head = f'rtspsrc location="{url}" latency={latency} protocols={protocols}'
        else:
            head = f'souphttpsrc location="{url}" is-live=true'
        pipeline = (
            f"{head} ! decodebin ! videoconvert ! video/x-raw,format=BGR ! "
            "appsink drop=true max-buffers=1 sync=false"
        )
        return CaptureSpec(pipeline, "gstreamer")
    # no input buffering, no reordering delay: the newest decoded frame is what we want
    flags = ["fflags;nobuffer", "flags;low_delay", f"max_delay;{latency * 1000}"]
    if is_rtsp:
        flags.insert(0, f"rtsp_transport;{transport}")
    return CaptureSpec(url, "ffmpeg", [("CAP_PROP_BUFFERSIZE", 1.0)], ffmpeg_options="|".join(flags))


def gst_spec(uri: str) -> CaptureSpec:
    pipeline = uri[len("gst://") :].strip()
    if not pipeline:
        raise SourceError(f"source {uri!r}: expected gst://PIPELINE, e.g. gst://videotestsrc ! appsink")
    if "appsink" not in pipeline:
        raise SourceError(f"source {uri!r}: the pipeline must end in an appsink for OpenCV to read it")
    return CaptureSpec(pipeline, "gstreamer")


def spec_for(uri: str) -> CaptureSpec:
    scheme = uri.split("://", 1)[0] if "://" in uri else ""
    if is_v4l2(uri):
        return v4l2_spec(uri)
    if scheme == "csi":
        return csi_spec(uri)
    if scheme == "gst":
        return gst_spec(uri)
    if scheme in ("rtsp", "rtsps", "http", "https"):
        return network_spec(uri)
    raise SourceError(f"source {uri!r} is not a camera or stream URI")


@contextlib.contextmanager
def _ffmpeg_env(options: str | None) -> Iterator[None]:
    if options is None:
        yield
        return
    with _env_lock:
        before = os.environ.get(_FFMPEG_ENV)
        os.environ[_FFMPEG_ENV] = options
        try:
            yield
        finally:
            if before is None:
                os.environ.pop(_FFMPEG_ENV, None)
            else:
                os.environ[_FFMPEG_ENV] = before


_LOG_LEVEL_ERROR, _LOG_LEVEL_WARNING = 2, 3  # cv::utils::logging::LogLevel


def opencv_log(cv2: Any) -> Any:
    """Where ``cv2`` keeps getLogLevel and setLogLevel: OpenCV 4.x (JetPack 6 has 4.8) on
    the module, 5.x in cv2.utils.logging; None if neither (the levels are the same)."""
    log = getattr(getattr(cv2, "utils", None), "logging", None) or cv2
    return log if hasattr(log, "getLogLevel") else None


@contextlib.contextmanager
def quiet_open() -> Iterator[None]:
    """OpenCV warns on stderr when a backend cannot open a target; our SourceError says it
    better. A level the user set (OPENCV_LOG_LEVEL) other than the default is kept."""
    import cv2

    log = opencv_log(cv2)
    if log is None:
        yield
        return
    before = log.getLogLevel()
    if before != _LOG_LEVEL_WARNING:
        yield
        return
    log.setLogLevel(_LOG_LEVEL_ERROR)
    try:
        yield
    finally:
        log.setLogLevel(before)


def open_capture(uri: str, spec: CaptureSpec) -> Any:
    """An opened cv2.VideoCapture, or a SourceError saying why not."""
    import cv2

    if spec.api == "gstreamer" and not gstreamer_available():
        other = hidden_opencv(cv2.__file__ or "", sys.path)
        advice = (
            f"another OpenCV is installed ({other}) but this one, from {Path(cv2.__file__ or '').parent}, "
            "comes first; if that is the system's (JetPack's python3-opencv), remove the wheel that "
            "hides it: pip uninstall opencv-python-headless"
            if other
            else "on a Jetson use the system OpenCV from JetPack (python3-opencv) in a venv made with "
            "--system-site-packages, without pip's opencv-python-headless"
        )
        raise SourceError(
            f"source {uri!r} needs OpenCV built with GStreamer, and this OpenCV ({cv2.__version__}) has "
            f"none (the PyPI opencv wheels never do); {advice}"
        )
    api = {"v4l2": cv2.CAP_V4L2, "gstreamer": cv2.CAP_GSTREAMER, "ffmpeg": cv2.CAP_FFMPEG}[spec.api]
    params: list[int] = []
    if spec.api == "ffmpeg":
        params = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
            OPEN_TIMEOUT_MS,
            cv2.CAP_PROP_READ_TIMEOUT_MSEC,
            READ_TIMEOUT_MS,
        ]
    # a udev link is followed at each open: after a replug it may lead to another node
    target = v4l2_node(spec.target) if spec.api == "v4l2" else spec.target
    with _ffmpeg_env(spec.ffmpeg_options), quiet_open():
        cap = cv2.VideoCapture(target, api, params)
    if not cap.isOpened():
        cap.release()
        raise SourceError(f"cannot open source {uri!r} with OpenCV ({_why_not(spec)})")
    for name, value in spec.props:
        cap.set(getattr(cv2, name), value)
    return cap


def _why_not(spec: CaptureSpec) -> str:
    if spec.api == "v4l2":
        return "no such camera, it is busy, or this user may not open it (video group)"
    if spec.api == "gstreamer":
        return "the GStreamer pipeline did not start; try it with gst-launch-1.0"
    return "stream unreachable, refused, or its codec is unsupported"


def granted(cap: Any, spec: CaptureSpec) -> dict[str, tuple[float, float]]:
    """Requested camera settings the driver did not grant: {name: (asked, got)}."""
    import cv2

    props = {"width": cv2.CAP_PROP_FRAME_WIDTH, "height": cv2.CAP_PROP_FRAME_HEIGHT, "fps": cv2.CAP_PROP_FPS}
    out = {}
    for key, asked in spec.requested.items():
        got = float(cap.get(props[key]))
        if abs(got - asked) > 0.5:
            out[key] = (asked, got)
    return out
