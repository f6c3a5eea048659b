"""The sinks of several cameras (edge run --camera): which are each camera's own and which
they share (split_sinks), the shared ones written a line at a time (SharedSink), and the
web viewers, one a camera on ports counted on (viewer_ports), told of each other (say_viewers)."""

from __future__ import annotations

import sys
import threading
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from edge.errors import ConfigError, SinkStopped, StreamEnded

CAMERA = "{camera}"


def split_sinks(uris: Sequence[str], names: Sequence[str]) -> tuple[dict[str, list[str]], list[str]]:
    """Each camera's sinks (``{camera}`` replaced by its name) and the sinks they share: a
    sink of what was found without ``{camera}``, and the metrics sink. The web viewer is one a
    camera, on ports counted on from the one given (viewer_ports). A picture sink without ``{camera}`` would
    mix the cameras' frames, and a window is refused (OpenCV's windows are for one thread):
    ConfigErrors."""
    from edge.stream.sinks import is_stdout, writes_mcap, writes_objects
    from edge.viewer.sink import metrics_path

    own: dict[str, list[str]] = {name: [] for name in names}
    shared: list[str] = []
    several = len(names) > 1
    for uri in uris:
        scheme = urlsplit(uri).scheme if not is_stdout(uri) else ""
        if several and scheme == "display":
            raise ConfigError(
                f"sink {uri!r} is a window, which shows one camera, and {len(names)} run "
                f"({', '.join(names)}); "
                "watch them in the web viewer (http://127.0.0.1:8080: a port a camera, counted on from it), "
                "or each with an edge run of its own"
            )
        if several and ((scheme == "http" and metrics_path(uri)) or scheme == "foxglove"):
            # one endpoint: every camera's samples labelled with its name, its topics under it
            shared.append(uri)
        elif several and scheme == "http":
            for name, each in zip(names, viewer_ports(uri, len(names)), strict=True):
                own[name].append(each)
        elif CAMERA in uri or not several or scheme == "null":
            for name in names:
                own[name].append(uri.replace(CAMERA, name))
        elif writes_objects(uri) or writes_mcap(uri):  # an MCAP file: each camera's channels apart
            shared.append(uri)
        else:
            example = _with_camera(uri)
            raise ConfigError(
                f"sink {uri!r} would get the frames of {len(names)} cameras ({', '.join(names)}); put "
                f"{CAMERA} in its name for one a camera, e.g. {example!r}"
            )
    return own, shared


def viewer_ports(uri: str, count: int) -> list[str]:
    """``count`` web viewers of ``uri``'s host, on its port and the ones after it (each on
    a free port of its own for port 0)."""
    from edge.viewer.sink import parse_viewer_uri

    host, port = parse_viewer_uri(uri)
    shown = f"[{host}]" if ":" in host else host
    if port and port + count - 1 > 65535:
        raise ConfigError(f"sink {uri!r}: {count} cameras need {count} ports from {port}, past 65535")
    options = f"?{query}" if (query := urlsplit(uri).query) else ""  # each viewer's, as given
    return [f"http://{shown}:{port + i if port else 0}{options}" for i in range(count)]


def _with_camera(uri: str) -> str:
    """``uri`` with ``-{camera}`` before its suffix (a folder's: at its end), for an example."""
    name, query = uri.split("?", 1) if "?" in uri else (uri, "")
    stem, dot, suffix = name.rstrip("/").rpartition(".")
    named = f"{stem}-{CAMERA}.{suffix}" if dot and "/" not in suffix else f"{name.rstrip('/')}-{CAMERA}/"
    return named + (f"?{query}" if query else "")


class _Shared:
    """A sink several cameras write, with what ended it (a stop for good, or its reader gone)."""

    def __init__(self, sink: Any, users: int) -> None:
        self.sink = sink
        self.users = users
        self.lock = threading.Lock()
        self.ended: SinkStopped | StreamEnded | None = None


class SharedSink:
    """One camera's hold of a sink the cameras share (objects.jsonl, ``-``, .mcap): one at a
    time, in the order written; when it stops for good or its reader goes, each camera is
    told once; the last camera to close it closes it."""

    def __init__(self, shared: _Shared) -> None:
        self._shared = shared
        self.uri: str = shared.sink.uri

        self._told = False
        self._closed = False
        self._tracker: Any = None
        # the sink, once this hold's close finished it: the camera whose summary names its files
        self.finished: Any = None

    @property
    def shows(self) -> frozenset[str]:
        """The pictures each camera's pipeline draws for it (an MCAP file's, those Foxglove
        asks for; a line's, none)."""
        shows: frozenset[str] = getattr(self._shared.sink, "shows", frozenset())
        return shows

    @classmethod
    def of(cls, sink: Any, users: int) -> list[SharedSink]:
        """``users`` holds of ``sink``."""
        shared = _Shared(sink, users)
        return [cls(shared) for _ in range(users)]

    def attach(self, tracker: Any) -> None:
        """This camera's statistics, for a shared sink that serves them (the metrics sink):
        it gets them with the camera's name (show_camera)."""
        self._tracker = tracker

    def show_camera(self, name: str) -> None:
        add = getattr(self._shared.sink, "add_camera", None)
        if add is not None and self._tracker is not None:
            add(name, self._tracker)

    def show_watch(self, watch: Any) -> None:
        """The run's watch, for a shared sink that serves the run's health (the metrics sink)."""
        show = getattr(self._shared.sink, "show_watch", None)
        if show is not None:
            show(watch)

    def write(self, image: np.ndarray, seq: int, t_capture_ns: int | None = None) -> None:
        self._shared.sink.write(image, seq, t_capture_ns)  # refused: it takes results

    def write_result(self, result: Any) -> None:
        shared = self._shared
        with shared.lock:
            if shared.ended is not None:
                if self._told:
                    return
                self._told = True
                raise type(shared.ended)(str(shared.ended))
            try:
                shared.sink.write_result(result)
            except (SinkStopped, StreamEnded) as exc:
                shared.ended, self._told = exc, True
                raise

    def close(self) -> None:
        shared = self._shared
        with shared.lock:
            if self._closed:
                return
            self._closed = True
            shared.users -= 1
            if shared.users:
                return
        try:
            shared.sink.close()
        finally:
            self.finished = shared.sink


def say_viewers(pipelines: Mapping[str, Any]) -> None:
    """Which camera each web viewer shows (each said its address as it began), and to each
    viewer every camera's, so that its page links to the others: of the cameras' Pipelines
    (edge run) or Recordings (edge record), each with its ``sinks``."""
    viewers = [
        (name, sink, url)
        for name, p in pipelines.items()
        for sink in p.sinks
        if (url := getattr(sink, "url", None))
    ]
    if not viewers:
        return
    ports = [(name, port) for name, _, url in viewers if (port := urlsplit(url).port) is not None]
    for _, sink, _ in viewers:
        show = getattr(sink, "show_cameras", None)
        if show is not None:
            show(ports)
    print(f"viewers: {', '.join(f'{name} {url}' for name, _, url in viewers)}", file=sys.stderr, flush=True)
