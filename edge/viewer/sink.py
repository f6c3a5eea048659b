"""``http://HOST:PORT`` as a sink: the newest results, served to a browser."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import numpy as np

from edge.errors import SinkError
from edge.viewer.metrics import PATH as METRICS_PATH
from edge.viewer.metrics import PORT as METRICS_PORT
from edge.viewer.server import VIEWS, ViewerServer, warn_if_exposed

if TYPE_CHECKING:
    from edge.stream.object_sinks import FusionOptions

DEFAULT_PORT = 8080


def parse_viewer_uri(uri: str) -> tuple[str, int]:
    """(host, port) of a viewer sink URI, or of a metrics sink's (``http://HOST:PORT/metrics``:
    metrics_path tells them apart); 127.0.0.1 and 8080 (9464 for metrics) unless told otherwise."""
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError as exc:
        raise SinkError(f"sink {uri!r} is not a valid http://HOST:PORT address: {exc}") from None
    if parts.scheme != "http":
        raise SinkError(f"sink {uri!r}: the viewer speaks plain http://, got {parts.scheme!r}")
    metrics_query = parts.path == METRICS_PATH and parts.query
    if parts.path not in ("", "/", METRICS_PATH) or metrics_query or parts.fragment or parts.username:
        raise SinkError(
            f"sink {uri!r}: expected only http://HOST:PORT (the viewer), e.g. http://127.0.0.1:8080, "
            f"or http://HOST:PORT{METRICS_PATH} (statistics for Prometheus alone)"
        )
    viewer_fusion(uri)  # its options, refused here as the address is
    default = METRICS_PORT if parts.path == METRICS_PATH else DEFAULT_PORT
    return parts.hostname or "127.0.0.1", default if port is None else port


VIEWER_OPTIONS = "gate=M and max_age=S (how the /cameras page fuses the cameras' things)"


def viewer_fusion(uri: str) -> FusionOptions:
    """How the viewer of ``uri`` fuses a run's cameras' things for its /cameras page
    (``?gate=M&max_age=S``, as ``?lines=fused``); a SinkError for any other option."""
    from edge.stream.object_sinks import fusion_options
    from edge.stream.sink_refusals import sink_options

    given = sink_options(uri, urlsplit(uri).query, ("gate", "max_age"), VIEWER_OPTIONS)
    return fusion_options(uri, given.get("gate"), given.get("max_age"))


def metrics_path(uri: str) -> str:
    """``/metrics`` for a metrics sink's URI, else ''."""
    try:
        return METRICS_PATH if urlsplit(uri).path == METRICS_PATH else ""
    except ValueError:
        return ""


class ViewerSink:
    """Publishes each result's panoptic overlay, depth map and composite to the viewer.

    The pipeline hands it whole results (``write_result``) and its tracker (``attach``),
    so the page can show the two views side by side and the live latency charts.
    """

    for_watching = True  # never holds a recording (edge.stream.writers); publish does not wait anyway

    def __init__(self, uri: str, *, host: str = "127.0.0.1", port: int = DEFAULT_PORT) -> None:
        from edge.stream.object_sinks import WarningLines

        self.uri = uri
        self.fusion = viewer_fusion(uri)  # the run's Around's (edge.viewer.around.share_around)
        self.frames = 0
        self._warnings = WarningLines()
        self._around: Any = None
        self.server = ViewerServer(host=host, port=port)
        url = self.server.start()
        warn_if_exposed("the viewer", host)
        print(f"viewer: {url}", file=sys.stderr, flush=True)

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def shows(self) -> frozenset[str]:
        """Every view while someone watches (the page shows both halves, streams any view),
        none otherwise: a viewer nobody watches costs no drawing."""
        return frozenset(VIEWS) if self.server.watched else frozenset()

    def attach(self, tracker: Any) -> None:
        self.server.tracker = tracker

    def show_watch(self, watch: Any) -> None:
        """The run's watch (edge.stream.watchdog): /healthz says whether it finds the run stuck."""
        self.server.watch = watch

    def show_camera(self, name: str) -> None:
        """The page names the camera it shows, of several (edge run --camera)."""
        self.server.camera = name

    def show_cameras(self, viewers: list[tuple[str, int]]) -> None:
        """Every camera's viewer of the run, (name, port): the page links to the others'."""
        self.server.cameras = list(viewers)

    def show_around(self, around: Any) -> None:
        """The run's fusion of every camera's things (edge.viewer.around.Around): this camera's
        frames go into it, and /stats holds what it makes, for the /cameras page."""
        self._around = around
        around.add(self.server)

    def pictures_only(self) -> None:
        """The run publishes its source's pictures alone (edge record): the page shows them
        in one panel, and asks for no engine's view."""
        self.server.pictures_only = True

    def write(self, image: np.ndarray, seq: int, t_capture_ns: int | None = None) -> None:
        self.server.publish(seq, {"composite": image})
        self.frames += 1

    def write_result(self, result: Any) -> None:
        # every frame, watched or not: a warning that begins unseen is listed when one looks
        events = self._warnings.events(result)
        if events:
            self.server.publish_warnings(events)
        if self._around is not None:  # every frame too: the things keep their numbers
            self._around.update(result)
        views = dict(result.extras.get("views", {}))
        if result.rendered is not None:
            views["composite"] = result.rendered
        if views:  # what was drawn, for us or for another sink
            self.server.publish(result.frame.seq, views)
            self.server.publish_objects(result.frame.seq, _marked_objects(result))
        else:
            self.server.forget()
        self.frames += 1

    def close(self) -> None:
        self.server.close()


def _marked_objects(result: Any) -> list[dict[str, Any]]:
    """The result's objects as objects.jsonl has them, each marked ``warn`` where the
    overlay outlines it red (render.warned)."""
    from edge.postprocess.render import warned
    from edge.stream.object_sinks import frame_objects

    tracks = result.extras.get("tracks")
    objects = frame_objects(result)
    return [{**o, "warn": tracks is not None and warned(tracks[k])} for k, o in enumerate(objects)]
