"""``foxglove://HOST:PORT``: a run served live to Foxglove over its WebSocket protocol
(``foxglove.websocket.v1``, github.com/foxglove/ws-protocol): in Foxglove, Open connection →
Foxglove WebSocket → ``ws://HOST:PORT`` shows the camera's picture with its things' boxes,
the panoptic and depth pictures, the objects and warnings lines as they come and, where the
camera's field of view places the objects, their 3D scene: the messages the .mcap sink writes
(edge.stream.foxglove_messages).

Only what some client subscribed to is drawn, encoded and sent, so a server nobody watches
costs the run nothing per frame but its objects line. The newest frame wins: a client still
being sent a frame when the next comes misses that one (counted), so a slow link never holds
up the run, nor one client another. The server speaks only the protocol's subscribe and
unsubscribe (no client publishing, parameters or services), on a thread of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
import sys
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from edge.errors import SinkError
from edge.stream.foxglove_messages import (
    DEFAULT_QUALITY,
    FrameChoice,
    Message,
    PictureOptions,
    Schema,
    picture_message,
    picture_options,
)
from edge.util.numbers import strict_dumps
from edge.viewer.loop_thread import LoopThread, listen
from edge.viewer.server import warn_if_exposed

SUBPROTOCOL = "foxglove.websocket.v1"
DEFAULT_PORT = 8765  # Foxglove's own default for a WebSocket connection
DEFAULT_CLOUD = 4  # the point cloud offered: every 4th pixel of the depth map each way
MESSAGE_DATA = 1  # the binary opcode of a message to a subscription
STATUS_WARNING, STATUS_ERROR = 1, 2


def parse_foxglove_uri(uri: str) -> tuple[str, int, PictureOptions]:
    """(host, port, what else it asks for) of ``foxglove://HOST:PORT?views=&quality=&cloud=``;
    127.0.0.1 and 8765 unless told otherwise."""
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError as exc:
        raise SinkError(f"sink {uri!r} is not a valid foxglove://HOST:PORT address: {exc}") from None
    if parts.path not in ("", "/") or parts.fragment or parts.username:
        raise SinkError(
            f"sink {uri!r}: expected foxglove://HOST:PORT, e.g. foxglove://127.0.0.1:{DEFAULT_PORT} "
            "(options: ?views=input,panoptic,depth&quality=85&cloud=4&gate=1.5&max_age=0.25)"
        )
    return (
        parts.hostname or "127.0.0.1",
        DEFAULT_PORT if port is None else port,
        picture_options(uri, parts.query),
    )


class _Client:
    def __init__(self, ws: Any, name: str) -> None:
        self.ws, self.name = ws, name
        self.subscriptions: dict[int, int] = {}  # subscription id -> channel id
        self.ready = False  # told who the server is: what it advertises now goes to it too
        self.busy = False  # a frame is being sent to it
        self.missed = 0  # frames it missed, busy with an earlier one


class FoxgloveServer:
    """The WebSocket server: channels ``declare``d and ``publish``ed from the pipeline's
    thread, clients served on the server's own event loop."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = DEFAULT_PORT) -> None:
        self.host, self.requested_port = host, port
        self.port: int | None = None
        self._lock = threading.Lock()
        self._channels: dict[str, dict[str, Any]] = {}  # topic -> its advertisement
        self._subscribers: dict[int, int] = {}  # channel id -> subscriptions to it
        self._clients: set[_Client] = set()  # changed on the loop only
        self._tasks: set[asyncio.Future[None]] = set()
        self.frames_sent = 0
        self.frames_missed = 0
        self._thread = LoopThread("edge-foxglove", self._main)
        self._session = str(time.time_ns())

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ws://{host}:{self.port}"

    # pipeline side -----------------------------------------------------------------

    def start(self) -> str:
        """Bind and serve; the ws:// URL. SinkError if the address is taken."""
        shown = f"[{self.host}]" if ":" in self.host else self.host
        self._thread.start(
            what="Foxglove server",
            host=self.host,
            port=self.requested_port,
            another=lambda p: f"foxglove://{shown}:{p}",
        )
        return self.url

    def declare(self, topic: str, schema: Schema) -> None:
        """A channel of ``topic``, advertised to every client the first time it is declared."""
        with self._lock:
            if topic in self._channels:
                return
            name, data = schema
            channel = {
                "id": len(self._channels) + 1,
                "topic": topic,
                "encoding": "json",
                "schemaName": name,
                "schema": data.decode(),
                "schemaEncoding": "jsonschema",
            }
            self._channels[topic] = channel
        self._thread.call(self._advertise, [channel])

    def wanted(self, topic: str) -> bool:
        """Whether some client subscribed to ``topic``."""
        with self._lock:
            channel = self._channels.get(topic)
            return channel is not None and self._subscribers.get(channel["id"], 0) > 0

    def wanted_any(self, suffix: str) -> bool:
        """Whether some client subscribed to a topic ending in ``suffix`` (of any camera)."""
        with self._lock:
            return any(
                self._subscribers.get(c["id"], 0) > 0 for t, c in self._channels.items() if t.endswith(suffix)
            )

    def publish(self, t_ns: int, payloads: list[tuple[str, bytes]]) -> None:
        """A frame's messages, (topic, JSON payload), to the clients subscribed to them."""
        with self._lock:
            items = [
                (self._channels[topic]["id"], data) for topic, data in payloads if topic in self._channels
            ]
        if items:
            self._thread.call(self._deliver, t_ns, items)

    def close(self) -> None:
        self._thread.stop()

    # server side -------------------------------------------------------------------

    async def _main(self) -> None:
        from aiohttp import web

        app = web.Application()
        app.router.add_get("/", self._connection)
        runner, self.port = await listen(app, self.host, self.requested_port)
        self._thread.ready.set()
        try:
            await self._thread.closing.wait()
        finally:
            for client in list(self._clients):
                with contextlib.suppress(Exception):
                    await client.ws.close()
            await runner.cleanup()

    async def _connection(self, request: Any) -> Any:
        from aiohttp import WSMsgType, web

        ws = web.WebSocketResponse(protocols=(SUBPROTOCOL,), heartbeat=30.0)
        await ws.prepare(request)
        if ws.ws_protocol != SUBPROTOCOL:
            await ws.close(code=1002, message=f"edge speaks the {SUBPROTOCOL} subprotocol only".encode())
            return ws
        client = _Client(ws, f"{request.remote}")
        self._clients.add(client)
        try:
            info = {"op": "serverInfo", "name": "edge", "capabilities": [], "sessionId": self._session}
            await ws.send_str(json.dumps(info))  # first, as the protocol asks
            # ready before the channels are read, with no await between: a channel declared
            # meanwhile is advertised to it either way (twice at worst, the same channel)
            client.ready = True
            with self._lock:
                channels = list(self._channels.values())
            await ws.send_str(json.dumps({"op": "advertise", "channels": channels}))
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    await self._request(client, msg.data)
                elif msg.type == WSMsgType.BINARY:
                    await self._status(client, STATUS_ERROR, "this server takes no published messages")
        finally:
            self._clients.discard(client)
            self._unsubscribe(client, list(client.subscriptions))
        return ws

    async def _request(self, client: _Client, text: str) -> None:
        try:
            request = json.loads(text)
            op = request["op"]
        except (ValueError, TypeError, KeyError):
            await self._status(client, STATUS_ERROR, f"not a JSON request with an op: {text[:80]!r}")
            return
        if op == "subscribe":
            with self._lock:
                known = {c["id"] for c in self._channels.values()}
            for sub in request.get("subscriptions", ()):
                sub_id, channel = (
                    (sub.get("id"), sub.get("channelId")) if isinstance(sub, dict) else (None, None)
                )
                if not isinstance(sub_id, int) or not isinstance(channel, int):
                    await self._status(
                        client, STATUS_ERROR, f"a subscription is an id and a channelId: {sub!r}"
                    )
                    continue
                if channel not in known or sub_id in client.subscriptions:
                    await self._status(
                        client, STATUS_ERROR, f"cannot subscribe {sub_id} to channel {channel}"
                    )
                    continue
                client.subscriptions[sub_id] = channel
                with self._lock:
                    self._subscribers[channel] = self._subscribers.get(channel, 0) + 1
        elif op == "unsubscribe":
            ids = [
                i
                for i in request.get("subscriptionIds", ())
                if isinstance(i, int) and i in client.subscriptions
            ]
            self._unsubscribe(client, ids)
        else:
            await self._status(client, STATUS_WARNING, f"op {op!r} is not supported (subscribe, unsubscribe)")

    def _unsubscribe(self, client: _Client, ids: list[int]) -> None:
        for sub_id in ids:
            channel = client.subscriptions.pop(sub_id)
            with self._lock:
                self._subscribers[channel] -= 1

    async def _status(self, client: _Client, level: int, message: str) -> None:
        with contextlib.suppress(Exception):
            await client.ws.send_str(json.dumps({"op": "status", "level": level, "message": message}))

    def _advertise(self, channels: list[dict[str, Any]]) -> None:
        text = json.dumps({"op": "advertise", "channels": channels})
        for client in list(self._clients):
            if client.ready:
                self._task(self._send_text(client, text))

    def _task(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)  # held until done: the loop keeps only a weak reference
        task.add_done_callback(self._tasks.discard)

    async def _send_text(self, client: _Client, text: str) -> None:
        with contextlib.suppress(Exception):  # a client that went: its handler has dropped it
            await client.ws.send_str(text)

    def _deliver(self, t_ns: int, items: list[tuple[int, bytes]]) -> None:
        for client in list(self._clients):
            # each of the client's subscriptions to a channel gets its message (the protocol lets a
            # client subscribe to one channel under several ids)
            frames = [
                (sub, c, data)
                for c, data in items
                for sub, wanted in client.subscriptions.items()
                if wanted == c
            ]
            if not frames:
                continue
            if client.busy:
                client.missed += 1
                self.frames_missed += 1
                continue
            client.busy = True
            self._task(self._send(client, t_ns, frames))

    async def _send(self, client: _Client, t_ns: int, frames: list[tuple[int, int, bytes]]) -> None:
        try:
            for sub_id, channel, data in frames:
                # a subscription dropped (or its id given to another channel) while an earlier
                # message waited on a slow link gets nothing more of this frame
                if client.subscriptions.get(sub_id) != channel:
                    continue
                await client.ws.send_bytes(struct.pack("<BIQ", MESSAGE_DATA, sub_id, t_ns) + data)
            self.frames_sent += 1
        except Exception:  # the client went mid-frame: its handler drops it
            pass
        finally:
            client.busy = False


class FoxgloveSink:
    """``foxglove://HOST:PORT``: each result's messages to the Foxglove clients that want them
    (the module's doc). In edge record (pictures alone, no engine) the camera's picture."""

    for_watching = True  # a live view: in edge record it skips frames rather than hold the recording

    def __init__(
        self,
        uri: str,
        *,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        views: tuple[str, ...] | None = None,
        quality: int = DEFAULT_QUALITY,
        cloud: int | None = None,
        fused: Any = None,
    ) -> None:
        """``cloud``: the point cloud's stride (None: DEFAULT_CLOUD, offered where a depth engine
        runs and made only for a client that subscribes to it; 0: none). ``fused``: the
        FusedLines of ``/around`` (FrameChoice's)."""
        from edge.stream.object_sinks import WarningLines

        self.uri = uri
        self.choice = FrameChoice(
            uri, views=views, quality=quality, cloud=cloud, default_cloud=DEFAULT_CLOUD, fused=fused
        )
        self.frames = 0
        self._warnings = WarningLines()
        self.server = FoxgloveServer(host=host, port=port)
        url = self.server.start()
        warn_if_exposed("the Foxglove server", host)
        print(
            f"foxglove: {url} (in Foxglove: Open connection, Foxglove WebSocket)", file=sys.stderr, flush=True
        )

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def shows(self) -> frozenset[str]:
        """The engines' pictures some client subscribed to: nothing is drawn for nobody."""
        return frozenset(v for v in self.choice.shows if self.server.wanted_any(f"/{v}"))

    def match_engines(self, kinds: Any) -> None:
        self.choice.match_engines(kinds)

    def pictures_only(self) -> None:
        """edge record: the camera's pictures alone, which write() sends."""

    def write(self, image: np.ndarray, seq: int, t_capture_ns: int | None = None) -> None:
        now = time.time_ns()
        # the capture stamp is on the monotonic clock: its wall-clock time, as the objects lines'
        t_ns = now if t_capture_ns is None else now - (time.perf_counter_ns() - t_capture_ns)
        self._send(
            t_ns, [picture_message(image, t_ns=t_ns, camera=None, quality=self.choice.quality, uri=self.uri)]
        )

    def write_result(self, result: Any) -> None:
        t_ns, messages = self.choice.messages(result, self._warnings)
        # every channel is advertised, drawn or not (a client subscribes to what it sees); a
        # picture first asked for after this frame was drawn comes with the next
        undrawn = {"panoptic", "depth"} - set(result.extras.get("views", {}))
        self._send(t_ns, messages, skip=lambda topic: topic.rsplit("/", 1)[1] in undrawn)

    def _send(self, t_ns: int, messages: list[Message], skip: Any = lambda topic: False) -> None:
        payloads = []
        for topic, schema, make in messages:
            self.server.declare(topic, schema)
            if self.server.wanted(topic) and not skip(topic):
                payloads.append((topic, strict_dumps(make()).encode()))
        self.server.publish(t_ns, payloads)
        self.frames += 1

    def close(self) -> None:
        from edge.stream.foxglove_messages import warning_messages

        # the warnings still on as the run ends are cleared, as the warnings log clears them
        ended = [json.loads(line) for line in self._warnings.finish().splitlines()]
        now = time.time_ns()
        for line in ended:
            for topic, schema, make in warning_messages(line, now):
                self.server.declare(topic, schema)
                if self.server.wanted(topic):
                    self.server.publish(now, [(topic, strict_dumps(make()).encode())])
        self.server.close()
