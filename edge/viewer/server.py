"""The live viewer's HTTP server (aiohttp on its own thread and event loop).

Routes, and nothing else (no static-directory handler, so no path can reach a file
that is not one of the viewer's own):

  GET /                         the page
  GET /viewer.js, /viewer.css   its script and style (and /favicon.svg)
  GET /frame/{view}.jpg         newest frame; ?after=N waits for one newer than seq N
  GET /stream/{view}.mjpg       multipart MJPEG (VLC, ffmpeg, OpenCV, another `edge run`)
  GET /stream.mjpg              the same for the composite view
  GET /stats                    rolling per-stage p50/p99, fps, drops, deadline misses
  GET /history                  the last minutes of /stats samples, for a page that opens late
  GET /metrics                  the same statistics in Prometheus' text format (metrics.py)
  GET /healthz                  200 unless the run's watch finds it stuck (503, and what holds it)

With ``metrics_only`` (the sink ``http://HOST:PORT/metrics``) it serves /metrics and /healthz alone.

Views: ``panoptic`` (overlay), ``depth`` (colourised), ``composite`` (side by side).
Frames are JPEG-encoded only when a client asks, at most once per frame and view, and
drawn only while someone watches (``watched``: a request or stream in progress, or one
that ended less than ``watch_grace_s`` ago), so a viewer nobody watches costs the
pipeline nothing per frame. A client that comes back waits for a freshly drawn frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import SinkError
from edge.util.numbers import strict_dumps
from edge.viewer.loop_thread import LoopThread, listen

VIEWS = ("composite", "panoptic", "depth")
STATIC = {
    "viewer.js": "text/javascript",
    "viewer.css": "text/css",
    "index.html": "text/html",
    "favicon.svg": "image/svg+xml",
    "cameras.html": "text/html",
    "cameras.js": "text/javascript",
    "around.js": "text/javascript",
}
BOUNDARY = "edgeframe"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
WARNINGS_KEPT = 20  # the warnings log's newest lines the page lists
_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def warn_if_exposed(what: str, host: str) -> None:
    """Say that a server of the camera's pictures on another address than the loopback is
    anyone's who can reach the machine."""
    if host not in LOOPBACK:
        print(
            f"warning: {what} listens on {host}, so anyone who can reach this machine can watch the "
            "camera; bind to 127.0.0.1 unless that is what you want",
            file=sys.stderr,
        )


class ViewerServer:
    """Serves the newest frames and the tracker's live statistics.

    ``publish`` is called from the pipeline's thread; everything else runs on the
    server's own event loop thread.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 8080,
        jpeg_quality: int = 80,
        sample_period_s: float = 0.5,
        history: int = 600,
        watch_grace_s: float = 3.0,
        metrics_only: bool = False,
        sysfs_root: str | Path = "/",
    ) -> None:
        from edge.viewer.metrics import BoardSensors

        self.host, self.requested_port = host, port
        self.metrics_only = metrics_only
        self.board = BoardSensors(sysfs_root)
        self.port: int | None = None
        self.jpeg_quality = jpeg_quality
        self.sample_period_s = sample_period_s
        self.tracker: Any = None
        # the statistics /metrics serves, where not this server's tracker's: [(snapshot,
        # histograms)] of each camera (metrics.MetricsSink.runs)
        self.runs: Callable[[], list[Any]] | None = None
        self.watch: Any = None  # the run's ServiceWatch, once it looks (/healthz)
        # edge record: the source's pictures alone ("composite"), which the page shows in one
        # panel instead of the engines' two views
        self.pictures_only = False
        self.camera: str | None = None  # the camera shown, of several (edge run --camera)
        # every camera's viewer of the run, (name, port), for the page's links between them
        self.cameras: list[tuple[str, int]] = []
        self.frames_published = 0
        # a client that has just had a frame asks again at once; a snapshot tool retries in 1 s
        self.watch_grace_s = watch_grace_s
        self._watching = 0  # requests and streams in progress (changed on the server's loop only)
        self._watched_until = 0.0
        self._lock = threading.Lock()
        self._latest: tuple[int, dict[str, np.ndarray]] | None = None
        # the newest frame's objects, as the objects sinks write them, each marked "warn"
        self._objects: tuple[int, list[dict[str, Any]]] | None = None
        # the newest lines of the run's warnings log (object_sinks.WarningLines), and a count
        self._warnings: deque[dict[str, Any]] = deque(maxlen=WARNINGS_KEPT)
        self.warnings_published = 0
        # the things around the vehicle, every camera's at once (a ?lines=fused line), of several
        self._around: dict[str, Any] | None = None
        self.around_views: list[dict[str, Any]] = []  # what each of those cameras sees
        self._jpeg: dict[str, tuple[int, bytes]] = {}
        self._history: deque[dict[str, Any]] = deque(maxlen=history)
        self._new_frame: asyncio.Event | None = None
        self._thread = LoopThread("edge-viewer", self._main)
        self._t0 = time.monotonic()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    # pipeline side -----------------------------------------------------------------

    def start(self) -> str:
        """Bind and serve; returns the page URL. SinkError if the address is taken."""
        what, path = ("metrics sink", "/metrics") if self.metrics_only else ("viewer", "")
        shown = f"[{self.host}]" if ":" in self.host else self.host
        self._thread.start(
            what=what, host=self.host, port=self.requested_port, another=lambda p: f"http://{shown}:{p}{path}"
        )
        return self.url

    def publish(self, seq: int, views: dict[str, np.ndarray]) -> None:
        """Make ``views`` (RGB uint8 images by view name) the newest frame."""
        with self._lock:
            self._latest = (seq, views)
            self.frames_published += 1
        self._thread.call(self._wake)

    def publish_objects(self, seq: int, objects: list[dict[str, Any]]) -> None:
        """Make ``objects`` (JSON-ready, one per thing found) the newest frame's."""
        with self._lock:
            self._objects = (seq, objects)

    def publish_around(self, line: dict[str, Any]) -> None:
        """Make ``line`` (edge.viewer.around: a ?lines=fused line) the newest fusion."""
        with self._lock:
            self._around = line

    def publish_warnings(self, events: list[dict[str, Any]]) -> None:
        """Add lines of the warnings log (a thing came to be warned of, or cleared)."""
        with self._lock:
            self._warnings.extend(events)
            self.warnings_published += len(events)

    @property
    def watched(self) -> bool:
        """Whether a client wants frames: one is being asked for or streamed, or was within
        the last ``watch_grace_s`` seconds."""
        return self._watching > 0 or time.monotonic() < self._watched_until

    def forget(self) -> None:
        """No frame was drawn (nobody watched): drop the last one, so that a client that
        comes back waits for a fresh frame instead of getting a stale one."""
        with self._lock:
            self._latest = None
            self._objects = None

    def close(self) -> None:
        self._thread.stop()

    # server side -------------------------------------------------------------------

    async def _main(self) -> None:
        from aiohttp import web

        self._new_frame = asyncio.Event()

        @web.middleware
        async def guard(request: Any, handler: Any) -> Any:
            return await self._guard(request, handler)

        app = web.Application(middlewares=[guard])
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._health)
        if not self.metrics_only:
            app.router.add_get("/", self._page)
            app.router.add_get("/cameras", self._cameras_page)
            app.router.add_get("/cameras.js", self._static)
            app.router.add_get("/around.js", self._static)
            app.router.add_get("/viewer.js", self._static)
            app.router.add_get("/viewer.css", self._static)
            app.router.add_get("/favicon.svg", self._static)
            app.router.add_get("/frame/{view}.jpg", self._frame)
            app.router.add_get("/stream/{view}.mjpg", self._mjpeg)
            app.router.add_get("/stream.mjpg", self._mjpeg)
            app.router.add_get("/stats", self._stats)
            app.router.add_get("/history", self._history_json)
        runner, self.port = await listen(app, self.host, self.requested_port)
        sampler = None if self.metrics_only else asyncio.create_task(self._sample())
        self._thread.ready.set()
        try:
            await self._thread.closing.wait()
        finally:
            if sampler is not None:
                sampler.cancel()
            self._wake()  # long polls and streams notice the close at once
            await runner.cleanup()

    def _wake(self) -> None:
        if self._new_frame is not None:
            self._new_frame.set()
            self._new_frame = asyncio.Event()

    def _closed(self) -> bool:
        return self._thread.closed

    async def _wait_newer(self, after: int, timeout: float) -> int | None:
        """Seq of a frame newer than ``after``, waiting up to ``timeout`` s; None if none came."""
        deadline = time.monotonic() + timeout
        while not self._closed():
            with self._lock:
                latest = self._latest
            if latest is not None and latest[0] > after:
                return latest[0]
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._new_frame is None:
                return None
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._new_frame.wait(), remaining)
        return None

    async def _encode(self, view: str) -> tuple[int, bytes] | None:
        with self._lock:
            latest = self._latest
            cached = self._jpeg.get(view)
        if latest is None:
            return None
        seq, views = latest
        if cached is not None and cached[0] == seq:
            return cached
        image = views.get(view)
        if image is None:
            return None
        data = await asyncio.get_running_loop().run_in_executor(None, _jpeg_bytes, image, self.jpeg_quality)
        with self._lock:
            self._jpeg[view] = (seq, data)
        return seq, data

    @staticmethod
    def _view(request: Any) -> str:
        from aiohttp import web

        view = request.match_info.get("view", "composite")
        if view not in VIEWS:
            raise web.HTTPNotFound(text=f"unknown view {view!r}; views: {', '.join(VIEWS)}")
        return view

    # handlers ----------------------------------------------------------------------

    async def _guard(self, request: Any, handler: Any) -> Any:
        """aiohttp middleware: refuse foreign Host headers on a loopback bind (DNS
        rebinding would otherwise let any web page read the camera), add security headers."""
        from aiohttp import web

        if self.host in LOOPBACK:
            host = (request.host or "").rsplit(":", 1)[0].strip("[]")
            if host not in LOOPBACK:
                raise web.HTTPForbidden(text="this viewer only answers requests addressed to localhost")
        response = await handler(request)
        if not getattr(response, "prepared", False):
            for name, value in _SECURITY_HEADERS.items():  # a page may widen its own policy
                response.headers.setdefault(name, value)
        return response

    async def _page(self, request: Any) -> Any:
        return _static_response("index.html")

    async def _cameras_page(self, request: Any) -> Any:
        """Every camera's pictures on one page (a rig aimed at once): each served by its own
        camera's viewer, on the host the browser reached this one by, which the page's policy
        lets it show."""
        host = _hostname(request.host or "")
        siblings = " ".join(f"http://{host}:{port}" for _, port in self.cameras if port != self.port)
        response = _static_response("cameras.html")
        policy = _SECURITY_HEADERS["Content-Security-Policy"]
        if siblings:
            policy = policy.replace("img-src 'self' blob:", f"img-src 'self' blob: {siblings}")
        response.headers["Content-Security-Policy"] = policy
        return response

    async def _static(self, request: Any) -> Any:
        return _static_response(request.path.lstrip("/"))

    @contextlib.contextmanager
    def _watching_request(self) -> Iterator[None]:
        self._watching += 1
        try:
            yield
        finally:
            self._watching -= 1
            self._watched_until = time.monotonic() + self.watch_grace_s

    async def _frame(self, request: Any) -> Any:
        view = self._view(request)
        with self._watching_request():
            return await self._frame_of(view, request)

    async def _frame_of(self, view: str, request: Any) -> Any:
        from aiohttp import web

        after_text = request.query.get("after")
        if after_text is not None:
            try:
                after = int(after_text)
            except ValueError:
                raise web.HTTPBadRequest(
                    text=f"after={after_text!r} is not an integer frame number"
                ) from None
            if await self._wait_newer(after, timeout=10.0) is None:
                return web.Response(status=204, headers={"Retry-After": "0"})
        encoded = await self._encode(view)
        if encoded is None:
            return web.Response(status=503, text="no frame yet", headers={"Retry-After": "1"})
        seq, data = encoded
        return web.Response(body=data, content_type="image/jpeg", headers={"X-Frame-Seq": str(seq)})

    async def _mjpeg(self, request: Any) -> Any:
        from aiohttp import web

        view = self._view(request)
        response = web.StreamResponse(
            headers={
                "Content-Type": f"multipart/x-mixed-replace; boundary={BOUNDARY}",
                **_SECURITY_HEADERS,
            }
        )
        await response.prepare(request)
        sent = -1
        with self._watching_request(), contextlib.suppress(ConnectionError, asyncio.CancelledError):
            while not self._closed():
                seq = await self._wait_newer(sent, timeout=1.0)
                if seq is None:
                    continue
                encoded = await self._encode(view)
                if encoded is None:
                    continue
                sent, data = encoded
                head = (
                    f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(data)}\r\n"
                    f"X-Frame-Seq: {sent}\r\n\r\n"
                ).encode()
                await response.write(head + data + b"\r\n")
        return response

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            seq = self._latest[0] if self._latest is not None else None
            published = self.frames_published
            objects = self._objects
            warnings = list(reversed(self._warnings))
            warnings_published = self.warnings_published
            around = self._around
        stats: dict[str, Any] = self.tracker.rolling() if self.tracker is not None else {}
        t = round(time.monotonic() - self._t0, 3)
        return {
            "t": t,
            "seq": seq,
            "published": published,
            "pictures_only": self.pictures_only,
            "camera": self.camera,
            "cameras": [{"name": name, "port": port} for name, port in self.cameras],
            "objects_seq": objects[0] if objects is not None else None,
            "objects": objects[1] if objects is not None else [],
            "warnings": warnings,  # newest first
            "warnings_total": warnings_published,
            "around": around,
            "around_views": self.around_views,
            **stats,
        }

    async def _stats(self, request: Any) -> Any:
        from aiohttp import web

        return web.json_response(self.snapshot(), dumps=strict_dumps)

    async def _metrics(self, request: Any) -> Any:
        from aiohttp import web

        from edge.viewer.metrics import CONTENT_TYPE, prometheus_text

        board = await asyncio.get_running_loop().run_in_executor(None, self.board.read)
        if self.runs is not None:
            runs = self.runs()
        else:
            tracker = self.tracker
            runs = [(self.snapshot(), tracker.histograms() if tracker is not None else None)]
        watch = self.watch
        stuck = None if watch is None else watch.stuck is not None
        text = prometheus_text(runs, uptime_s=time.monotonic() - self._t0, board=board, stuck=stuck)
        return web.Response(body=text.encode(), headers={"Content-Type": CONTENT_TYPE})

    async def _health(self, request: Any) -> Any:
        """200 while the run is not stuck (``starting`` before its watch begins: the engines
        load), 503 with what holds it while its watch finds it stuck: an HTTP probe's answer
        (Kubernetes' httpGet, a load balancer's check)."""
        from aiohttp import web

        watch = self.watch
        stuck = None if watch is None else watch.stuck
        if stuck is not None:
            return web.Response(status=503, text=f"stuck: {stuck}\n")
        return web.Response(text="starting\n" if watch is None else "ok\n")

    async def _history_json(self, request: Any) -> Any:
        from aiohttp import web

        return web.json_response(list(self._history), dumps=strict_dumps)

    async def _sample(self) -> None:
        while True:
            self._history.append(_compact(self.snapshot()))
            await asyncio.sleep(self.sample_period_s)


def _compact(snap: dict[str, Any]) -> dict[str, Any]:
    """One /history sample: the counters and each stage's p50/p99."""
    stages = {
        name: {"p50": round(st["p50"], 3), "p99": round(st["p99"], 3)}
        for name, st in snap.get("stages_ms", {}).items()
        if st.get("count")
    }
    keep = ("t", "seq", "fps", "drops", "deadline_misses", "frames_in", "frames_out", "reconnects")
    return {**{k: snap[k] for k in keep if k in snap}, "stages_ms": stages}


def _jpeg_bytes(image: np.ndarray, quality: int) -> bytes:
    import cv2

    ok, buf = cv2.imencode(
        ".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    if not ok:
        raise SinkError(f"JPEG encoding failed for a {image.shape} {image.dtype} image")
    return bytes(buf)


def _hostname(host: str) -> str:
    """A Host header's name without its port: ``127.0.0.1:8080`` 127.0.0.1, ``[::1]:8080``
    [::1] (brackets kept, as a URL needs them)."""
    if host.startswith("["):
        return host[: host.index("]") + 1] if "]" in host else host
    return host.rsplit(":", 1)[0] if ":" in host else host


def _static_response(name: str) -> Any:
    from aiohttp import web

    # one name a joinpath call: Python 3.10 (JetPack 6) takes no more
    body = resources.files("edge.viewer").joinpath("static").joinpath(name).read_bytes()
    return web.Response(body=body, content_type=STATIC[name], charset="utf-8")
