"""URI-selected output sinks: ``out.mp4``, ``objects.jsonl`` (what was found, as JSON
lines; ``-``: those lines on standard output), ``dir://frames/``,
``drive.mcap`` (pictures, boxes, objects and warnings in one MCAP file for Foxglove,
edge.stream.mcap_sink), ``foxglove://HOST:PORT`` (the same messages live to Foxglove,
edge.viewer.foxglove), ``http://127.0.0.1:8080`` (the live web viewer, edge.viewer),
``http://HOST:PORT/metrics``
(the run's statistics for Prometheus, edge.viewer.metrics), ``display://`` (an OpenCV
window), ``null://``.

Video, folder and window sinks show the composite (overlay | depth) unless their URI asks
for another view: ``?view=panoptic``, ``depth``, or ``input`` (the frames as they came from
the source, at its own size: a recording that ``edge run`` can replay). In a live run a
video sink shows each frame from its capture time to the next, so the video plays in real
time even when the engines dropped frames; ``edge record`` keeps every frame once and writes
the capture times beside the video (VideoSink's timings).

The video and JSON-lines sinks write to a hidden partial file and rename it on close, so
an interrupted run never leaves a truncated file under the final name, and a run that died
leaves one the next run keeps (edge.stream.partial); the file sinks stop whole before
their disk is full (edge.stream.disk). The sinks of what was found are in
edge.stream.object_sinks, the dir:// sink in edge.stream.dir_sink.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Collection, Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import SplitResult, urlsplit

import numpy as np

from edge.errors import SinkError
from edge.stream.dir_sink import DirSink, refuse_earlier_frames
from edge.stream.disk import DEFAULT_KEEP_FREE
from edge.stream.object_sinks import LINES_OPTIONS, ObjectsSink, StdoutObjectsSink, lines_of
from edge.stream.sink_refusals import (
    check_written_file,
    dir_sink_folder,
    refuse_an_earlier_file,
    refuse_the_source,
    sink_options,
)
from edge.stream.video import VIDEO_SUFFIXES, VIDEO_TIMINGS, VideoSink

__all__ = [  # with the sinks, where callers look
    "VIDEO_SUFFIXES",
    "VIDEO_TIMINGS",
    "DirSink",
    "VideoSink",
    "check_written_file",
    "refuse_the_source",
]

# what a picture sink can show of a frame; "input" is the source's frame before resizing
VIEWS = ("composite", "panoptic", "depth", "input")
RENDERED_VIEWS = ("composite", "panoptic", "depth")  # the views drawn from the engines' outputs
MCAP_SUFFIX = ".mcap"  # edge.stream.mcap_sink, imported only for such a sink (it needs mcap)


class Sink(Protocol):
    uri: str

    # t_capture_ns: the frame's capture time (time.perf_counter_ns), for sinks that place
    # frames in time (VideoSink's capture and stamped timings); the others ignore it
    def write(self, image: np.ndarray, seq: int, t_capture_ns: int | None = None) -> None: ...

    def close(self) -> None: ...


class NullSink:
    view = "input"  # nothing is drawn for it
    for_watching = True  # keeps nothing: in edge record it may skip frames (edge.stream.writers)

    def __init__(self, uri: str = "null://") -> None:
        self.uri = uri
        self.frames = 0

    def write(self, image: np.ndarray, seq: int, t_capture_ns: int | None = None) -> None:
        self.frames += 1

    def close(self) -> None:
        return None


class DisplaySink:
    """An OpenCV window; q or Esc in it ends the run like Ctrl-C."""

    for_watching = True  # a window behind a camera skips frames rather than hold a recording

    def __init__(self, uri: str, title: str = "edge", *, view: str = "composite") -> None:
        import cv2

        self.uri, self.title, self.frames, self.view = uri, title, 0, view
        if not has_gui():
            raise SinkError(
                f"sink {uri!r} needs OpenCV with a GUI backend, and this one ({cv2.__version__}) has none: "
                "the opencv-python-headless wheel never does (install opencv-python instead, or use the "
                "web viewer, --sink http://127.0.0.1:8080)"
            )
        if sys.platform.startswith("linux") and not (
            os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
        ):
            # GTK exits the whole process when it cannot open a display; say so instead
            raise SinkError(f"sink {uri!r} needs a display, and neither DISPLAY nor WAYLAND_DISPLAY is set")
        try:
            cv2.namedWindow(title, cv2.WINDOW_NORMAL)
        except cv2.error as exc:
            raise SinkError(f"sink {uri!r}: OpenCV cannot open a window: {exc}") from exc

    def write(self, image: np.ndarray, seq: int, t_capture_ns: int | None = None) -> None:
        import cv2

        cv2.imshow(self.title, cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        self.frames += 1
        if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
            raise KeyboardInterrupt

    def close(self) -> None:
        import cv2

        with contextlib.suppress(cv2.error):
            cv2.destroyWindow(self.title)


def has_gui() -> bool:
    """Whether the installed OpenCV was built with a window backend (GTK, Qt, Cocoa, Win32)."""
    import cv2

    for line in cv2.getBuildInformation().splitlines():
        key, _, value = line.strip().partition(":")
        if key == "GUI":
            return value.strip().upper() not in ("", "NONE", "NO")
    return False


def open_sink(
    uri: str,
    *,
    fps: float = 17.0,
    timing: str = "frames",
    keep_free: int = DEFAULT_KEEP_FREE,
    segment_s: float | None = None,
    delete_oldest: bool = False,
    source: Path | None = None,
    replace: bool = True,
    exact_size: bool = False,
) -> Sink:
    """The sink ``uri`` names; a video sink places frames by ``timing`` (VideoSink): live
    runs give "capture", so their videos play in real time. A dir:// sink keeps capture
    times for any timing but "frames". File sinks (video, dir://, objects.jsonl) stop, with
    what they wrote kept whole, before their disk has less than ``keep_free`` bytes free.
    With ``segment_s`` a video or .jsonl is a new file every that many seconds, a dir://
    sink a new folder (edge.stream.segments), and ``delete_oldest`` makes room by deleting
    the oldest of them.
    ``source``: the file or folder the run reads (sources.source_file), which no sink may
    write over: refused before the sink touches anything. Without ``replace`` a video or
    .jsonl file that exists is refused too (edge record, and a camera's run: its frames
    cannot be had again); a segmented sink's names are new for each run, and nothing is refused there.
    ``exact_size``: a video refuses pictures of another size than its first (VideoSink)."""
    if "\x00" in uri:
        raise SinkError(f"sink {uri!r} contains a NUL character")
    try:
        parts = urlsplit(uri)
    except ValueError as exc:
        raise SinkError(f"sink {uri!r} is not a valid URI: {exc}") from None
    if is_stdout(uri):
        return StdoutObjectsSink(uri, lines=lines_of(uri, uri[2:]))
    if parts.scheme == "null":
        return NullSink(uri)
    if parts.scheme == "display":
        title = (parts.netloc + parts.path) or "edge"
        return DisplaySink(uri, title=title, view=_view_option(uri, parts.query))
    if parts.scheme == "foxglove":
        from edge.viewer.foxglove import FoxgloveSink, parse_foxglove_uri

        host, port, asked = parse_foxglove_uri(uri)
        return FoxgloveSink(
            uri,
            host=host,
            port=port,
            views=asked.views,
            quality=asked.quality,
            cloud=asked.cloud,
            fused=asked.fusion.lines(),
        )
    if parts.scheme == "http":
        from edge.viewer import ViewerSink, parse_viewer_uri
        from edge.viewer.sink import metrics_path

        host, port = parse_viewer_uri(uri)
        if metrics_path(uri):
            from edge.viewer.metrics import MetricsSink

            return MetricsSink(uri, host=host, port=port)
        return ViewerSink(uri, host=host, port=port)
    if parts.scheme == "dir":
        folder = dir_sink_folder(uri, parts)
        refuse_the_source(f"sink {uri!r}", folder, source)
        view, stamped = _view_option(uri, parts.query), timing != "frames"
        if segment_s is not None:
            from edge.stream.segments import SegmentedDirSink

            return SegmentedDirSink(
                uri,
                folder,
                fps,
                segment_s=segment_s,
                view=view,
                stamped=stamped,
                keep_free=keep_free,
                delete_oldest=delete_oldest,
            )
        return DirSink(uri, folder, view=view, stamped=stamped, keep_free=keep_free)
    name, query = _name_and_query(uri, parts)
    path = Path(name)
    refuse_the_source(f"sink {uri!r}", path, source)
    if writes_objects(uri):
        if "view=" in query:
            raise SinkError(
                f"sink {uri!r}: {path.name} records what was found in each frame, not a picture, so it "
                "has no view= (that is for video, dir:// and display:// sinks); its options are "
                f"{LINES_OPTIONS}"
            )
        lines = lines_of(uri, query)
        if segment_s is not None:
            from edge.stream.segments import SegmentedObjectsSink

            return SegmentedObjectsSink(
                uri, path, segment_s=segment_s, keep_free=keep_free, delete_oldest=delete_oldest, lines=lines
            )
        if not replace:
            refuse_an_earlier_file(uri, path)
        return ObjectsSink(uri, path, keep_free=keep_free, lines=lines)
    if parts.scheme in ("", "file") and path.suffix.lower() == MCAP_SUFFIX:
        from edge.stream.foxglove_messages import picture_options
        from edge.stream.mcap_sink import McapSink, segmented_mcap_sink

        views, quality, cloud, fusion = picture_options(uri, query)
        if segment_s is not None:
            return segmented_mcap_sink(
                uri,
                path,
                segment_s=segment_s,
                views=views,
                quality=quality,
                cloud=cloud,
                keep_free=keep_free,
                delete_oldest=delete_oldest,
                fusion=fusion,
            )
        if not replace:
            refuse_an_earlier_file(uri, path)
        return McapSink(
            uri, path, views=views, quality=quality, cloud=cloud, keep_free=keep_free, fused=fusion.lines()
        )
    if parts.scheme not in ("", "file") or path.suffix.lower() not in VIDEO_SUFFIXES:
        raise SinkError(
            f"unknown sink {uri!r}; {_folder_hint(parts.scheme, name, query)}supported: a video path "
            f"ending in {sorted(VIDEO_SUFFIXES)}, objects.jsonl (objects and distances per frame; - for "
            "standard output), drive.mcap (pictures, boxes, objects and warnings for Foxglove), "
            "dir://FOLDER, http://127.0.0.1:8080 (live viewer), foxglove://127.0.0.1:8765 (live in "
            "Foxglove), http://127.0.0.1:9464/metrics "
            "(statistics for Prometheus), display:// (window), null://; "
            f"video, dir:// and display:// take ?view={'|'.join(VIEWS)}"
        )
    if segment_s is not None:
        from edge.stream.segments import SegmentedVideoSink

        return SegmentedVideoSink(
            uri,
            path,
            fps,
            segment_s=segment_s,
            view=_view_option(uri, query),
            timing=timing,
            keep_free=keep_free,
            delete_oldest=delete_oldest,
        )
    if not replace:
        refuse_an_earlier_file(uri, path)
    view = _view_option(uri, query)
    return VideoSink(uri, path, fps, view=view, timing=timing, keep_free=keep_free, exact_size=exact_size)


def _name_and_query(uri: str, parts: SplitResult) -> tuple[str, str]:
    """The file name and options of a sink that is no scheme of its own (a path, file:)."""
    if parts.scheme == "file":
        return parts.path, parts.query
    name, _, query = uri.partition("?")  # a plain path: only a "?" starts options (a "#" is part of the name)
    return name, query


def sink_file(uri: str) -> Path | None:
    """The file a video, .jsonl or .mcap sink ``uri`` writes (a path or file: URI), as
    open_sink reads it; None for any other sink (dir://, -, http://, …)."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return None
    if parts.scheme not in ("", "file"):
        return None
    path = Path(_name_and_query(uri, parts)[0])
    return path if path.suffix.lower() in (*VIDEO_SUFFIXES, ".jsonl", MCAP_SUFFIX) else None


def writes_mcap(uri: str) -> bool:
    """Whether sink ``uri`` is an MCAP file (edge.stream.mcap_sink)."""
    return (path := sink_file(uri)) is not None and path.suffix.lower() == MCAP_SUFFIX


def writes_objects(uri: str) -> bool:
    """Whether sink ``uri`` writes what was found (objects.jsonl, ``-``), not pictures."""
    return is_stdout(uri) or ((path := sink_file(uri)) is not None and path.suffix.lower() == ".jsonl")


def is_stdout(uri: str) -> bool:
    """Whether sink ``uri`` is standard output: ``-``, or ``-?lines=…``."""
    return uri == "-" or uri.startswith("-?")


def refuse_earlier_outputs(uris: Iterable[str], *, replace: bool, source: Path | None) -> None:
    """SinkError for the first of ``uris`` that open_sink would refuse for what is there: the
    run's ``source``, a dir:// folder's frames of an earlier run, and without ``replace`` a
    video or .jsonl file (not segmented). For a run to say before it loads its engines;
    open_sink checks again."""
    for uri in uris:
        try:
            parts = urlsplit(uri)
        except ValueError:
            continue  # open_sink says why, as for a NUL below
        if "\x00" in uri:
            continue
        if parts.scheme == "dir":
            folder = dir_sink_folder(uri, parts)
            refuse_the_source(f"sink {uri!r}", folder, source)
            refuse_earlier_frames(uri, folder)
        elif (path := sink_file(uri)) is not None:
            refuse_the_source(f"sink {uri!r}", path, source)
            if not replace:
                refuse_an_earlier_file(uri, path)


def _view_option(uri: str, query: str) -> str:
    """The ``view=`` of a picture sink's URI (composite when absent); anything else is refused."""
    return _one_option(uri, query, "view", VIEWS, "composite")


def _one_option(uri: str, query: str, name: str, choices: Sequence[str], default: str) -> str:
    """The value of a sink's one option ``name`` (one of ``choices``; ``default`` when absent)."""
    chosen = sink_options(uri, query, (name,), f"{name}={'|'.join(choices)}").get(name, default)
    if chosen not in choices:
        raise SinkError(f"sink {uri!r}: {name}={chosen!r}; expected one of {', '.join(choices)}")
    return chosen


def _folder_hint(scheme: str, name: str, query: str) -> str:
    """What to write for a folder of frames, when ``name`` looks like one was meant."""
    if scheme not in ("", "file"):
        return ""
    path, options = Path(name), f"?{query}" if query else ""
    if name.endswith(("/", os.sep)) or path.is_dir():
        return f"frames as PNG files into that folder are dir://{path}{options}; "
    if path.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp"):
        return f"one PNG per frame goes into a folder: dir://{path.with_suffix('')}{options}; "
    return ""


def open_sinks(
    uris: Sequence[str],
    *,
    fps: float,
    kinds: Collection[str] = ("panoptic", "depth"),
    timing: str = "frames",
    keep_free: int = DEFAULT_KEEP_FREE,
    source: Path | None = None,
    segment_s: float | None = None,
    delete_oldest: bool = False,
    replace: bool = True,
    exact_size: bool = False,
) -> list[Sink]:
    """Open every sink in ``uris``; if one cannot be opened, those already open (a viewer
    listening on its port) are closed before the error propagates. ``kinds``: the engines
    that run, so a sink asking for the view of a missing one fails now, not at every frame.
    ``timing``, ``keep_free``, ``segment_s``, ``delete_oldest``, ``replace``, ``exact_size``: as
    open_sink's. ``source``:
    the file or folder the run reads (sources.source_file), which no sink may write over."""
    opened: list[Sink] = []
    targets: dict[str, str] = {}
    try:
        for uri in uris:
            sink = open_sink(
                uri,
                fps=fps,
                timing=timing,
                keep_free=keep_free,
                segment_s=segment_s,
                delete_oldest=delete_oldest,
                source=source,
                replace=replace,
                exact_size=exact_size,
            )
            opened.append(sink)
            target = getattr(sink, "path", None) or getattr(sink, "folder", None)
            if isinstance(sink, StdoutObjectsSink):
                target = "standard output"
            if target is not None:  # two sinks writing one file (or folder) would garble it
                key = target if isinstance(target, str) else os.path.abspath(target)
                if key in targets:
                    raise SinkError(
                        f"sinks {targets[key]!r} and {uri!r} both write {str(target)!r}; give each its own"
                    )
                targets[key] = uri
            match_engines = getattr(sink, "match_engines", None)
            if match_engines is not None:  # a sink of several pictures (.mcap)
                match_engines(kinds)
            view = getattr(sink, "view", "composite")
            if view in ("panoptic", "depth") and view not in kinds:
                raise SinkError(
                    f"sink {uri!r} shows the {view} view, and no {view} engine runs (engines: "
                    f"{', '.join(kinds) or 'none'}); views here: "
                    f"{', '.join(v for v in VIEWS if v in kinds or v in ('composite', 'input'))}"
                )
    except BaseException:
        for sink in opened:
            with contextlib.suppress(Exception):
                sink.close()
        raise
    if segment_s is not None and not any(hasattr(sink, "segments") for sink in opened):
        print(
            "warning: --segment cuts video, .jsonl and .mcap files and dir:// folders, and none of the "
            f"sinks ({', '.join(uris) or 'none'}) is one",
            file=sys.stderr,
        )
    return opened


def views_shown(sinks: Iterable[Any]) -> frozenset[str]:
    """The RENDERED_VIEWS some sink shows: what the pipeline draws for each frame. A sink
    shows its ``view`` (composite unless it says otherwise), or the views in its ``shows``;
    sinks of what was found (objects.jsonl, -), of the source's frames (?view=input) and
    null:// need nothing drawn."""
    shown: set[str] = set()
    for sink in sinks:
        shown |= set(getattr(sink, "shows", {getattr(sink, "view", "composite")}))
    return frozenset(shown & set(RENDERED_VIEWS))


def sink_image(result: Any, view: str) -> np.ndarray:
    """The picture a sink showing ``view`` gets of a rendered result (edge.stream.pipeline)."""
    if view == "composite":
        if result.rendered is None:
            raise SinkError("the frame was not rendered")
        image: np.ndarray = result.rendered
        return image
    if view == "input":
        from edge.stream.steps import frame_rgb

        return frame_rgb(result.frame)
    views = result.extras.get("views", {})
    if view not in views:
        raise SinkError(f"the frame has no {view} view (views: {', '.join(views) or 'none'})")
    image = views[view]
    return image


def attach_sinks(sinks: Sequence[Sink], tracker: Any, camera: str | None = None) -> None:
    """Live sinks (the viewer) show ``tracker``'s statistics and, of several cameras, the
    ``camera``'s name."""
    for sink in sinks:
        attach = getattr(sink, "attach", None)
        if attach is not None:
            attach(tracker)
        show_camera = getattr(sink, "show_camera", None)
        if camera is not None and show_camera is not None:
            show_camera(camera)
