"""foxglove://: a real run served over the Foxglove WebSocket protocol, read by a real
WebSocket client (aiohttp's) as Foxglove reads it (edge.viewer.foxglove)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import socket
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from edge.errors import SinkError
from edge.schemas import check_lines
from edge.stream.camera_sinks import split_sinks
from edge.stream.sinks import open_sink
from edge.viewer.foxglove import SUBPROTOCOL, parse_foxglove_uri
from tests.viewer.helpers import EdgeRun, viewer_pipeline

SOURCE = "synthetic://?size=128x256&fps=20&seed=1"


class Client:
    """A Foxglove client on a real connection: what the server said, and the messages of
    each subscription (its log time, JSON body)."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.channels: dict[str, dict[str, Any]] = {}
        self.texts: list[dict[str, Any]] = []
        self.messages: dict[int, list[tuple[int, dict[str, Any]]]] = {}

    async def read_until(self, done: Callable[[], bool], timeout: float = 60) -> None:
        from aiohttp import WSMsgType

        deadline = time.monotonic() + timeout
        while not done():
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError((list(self.channels), {k: len(v) for k, v in self.messages.items()}))
            msg = await self.ws.receive(timeout=left)
            if msg.type == WSMsgType.TEXT:
                text = json.loads(msg.data)
                self.texts.append(text)
                for channel in text.get("channels", ()) if text["op"] == "advertise" else ():
                    self.channels[channel["topic"]] = channel
            elif msg.type == WSMsgType.BINARY:
                opcode, sub, t_ns = struct.unpack_from("<BIQ", msg.data)
                assert opcode == 1
                self.messages.setdefault(sub, []).append((t_ns, json.loads(msg.data[13:])))
            else:
                raise AssertionError(f"the connection ended: {msg}")

    async def subscribe(self, subs: dict[int, str]) -> None:
        body = [{"id": i, "channelId": self.channels[topic]["id"]} for i, topic in subs.items()]
        await self.ws.send_str(json.dumps({"op": "subscribe", "subscriptions": body}))


def jpeg(body: dict[str, Any]) -> np.ndarray:
    assert body["format"] == "jpeg"
    image = cv2.imdecode(np.frombuffer(base64.b64decode(body["data"]), np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return image


def test_a_live_run_is_served_to_foxglove_as_subscribed(demo_engines: Path) -> None:
    """The server says who it is and advertises each channel as it first has a message; a
    client gets what it subscribed to, each message at its frame's capture time; nothing is
    drawn that nobody subscribed to (the depth picture here), and what is unsubscribed stops."""
    from aiohttp import ClientSession

    with viewer_pipeline(demo_engines, SOURCE, sink="foxglove://127.0.0.1:0") as (sink, seen, run):

        async def watch() -> None:
            async with (
                ClientSession() as session,
                session.ws_connect(sink.url, protocols=[SUBPROTOCOL]) as ws,
            ):
                assert ws.protocol == SUBPROTOCOL
                client = Client(ws)
                await client.read_until(lambda: len(client.texts) >= 2)
                info, first = client.texts[:2]
                assert (info["op"], info["name"], info["capabilities"]) == ("serverInfo", "edge", [])
                assert first["op"] == "advertise"
                topics = {
                    "/camera/image",
                    "/camera/annotations",
                    "/camera/objects",
                    "/camera/panoptic",
                    "/camera/depth",
                    "/camera/scene",
                    "/camera/cloud",  # offered by default, the depth engine running
                }
                await client.read_until(lambda: topics <= set(client.channels))
                assert {c["schemaName"] for c in client.channels.values()} >= {
                    "foxglove.CompressedImage",
                    "foxglove.ImageAnnotations",
                    "edge.objects",
                    "foxglove.SceneUpdate",
                    "foxglove.PointCloud",
                }
                assert {(c["encoding"], c["schemaEncoding"]) for c in client.channels.values()} == {
                    ("json", "jsonschema")
                }
                assert not any(r.extras["views"] for r in seen), "nothing drawn while nobody subscribed"
                await client.subscribe(
                    {
                        1: "/camera/image",
                        2: "/camera/objects",
                        3: "/camera/panoptic",
                        4: "/camera/annotations",
                        6: "/camera/scene",
                        7: "/camera/cloud",
                    }
                )
                await client.read_until(
                    lambda: all(len(client.messages.get(i, [])) >= 4 for i in (1, 2, 3, 4, 6, 7))
                )
                clouds = [body for _, body in client.messages[7]]
                assert {(c["frame_id"], c["point_stride"]) for c in clouds} == {("camera", 16)}
                assert all(0 < len(base64.b64decode(c["data"])) <= 16 * 32 * 64 for c in clouds)
                assert 5 not in client.messages
                placed = {t: b for t, b in client.messages[2]}
                for t_ns, scene in client.messages[6]:  # each frame's placed objects, where both came
                    if t_ns in placed:
                        assert len(scene["entities"]) == 1 + len(  # the path and each placed object
                            [o for o in placed[t_ns]["objects"] if o.get("ahead_m") is not None]
                        )
                objects = [body for _, body in client.messages[2]]
                assert check_lines("objects", (json.dumps(o) for o in objects)) == (len(objects), [])
                for t_ns, body in client.messages[2]:
                    assert t_ns == round(body["time_unix"] * 1e9)
                assert {jpeg(b).shape for _, b in client.messages[1]} == {(128, 256, 3)}
                assert {jpeg(b).shape for _, b in client.messages[3]} == {(128, 256, 3)}
                assert {b["frame_id"] for _, b in client.messages[1]} == {"camera"}
                seq = objects[-1]["frame"]
                # on_result gets a frame once every sink has written it, so after its client did
                for _ in range(300):
                    if seen and seen[-1].frame.seq >= seq:
                        break
                    await asyncio.sleep(0.01)
                drawn = next((r for r in reversed(seen) if r.frame.seq >= seq), None)
                assert drawn is not None, f"frame {seq} was sent but never handed on (on_result)"
                assert set(drawn.extras["views"]) == {"panoptic"}, "only what a client subscribed to is drawn"
                # unsubscribed: no more of it. Frames sent before the server read the request may
                # still come (a frame's objects before its picture), so what stops is judged by
                # capture time: five frames' objects after the last picture (a timeout if they go on)
                await ws.send_str(json.dumps({"op": "unsubscribe", "subscriptionIds": [3]}))

                def after_the_last_picture() -> int:
                    last = client.messages[3][-1][0]
                    return sum(t_ns > last for t_ns, _ in client.messages[2])

                await client.read_until(lambda: after_the_last_picture() >= 5)
                # what the server does not do, it says
                await ws.send_str(json.dumps({"op": "getParameters", "parameterNames": []}))
                await ws.send_str("not json")
                for bad in ({"id": 1, "channelId": 999}, {"id": "x", "channelId": 1}):
                    await ws.send_str(json.dumps({"op": "subscribe", "subscriptions": [bad]}))
                await client.read_until(lambda: sum(t["op"] == "status" for t in client.texts) >= 4)
                said = [t for t in client.texts if t["op"] == "status"]
                assert [s["level"] for s in said] == [1, 2, 2, 2]
                assert "op 'getParameters' is not supported" in said[0]["message"]
                assert "cannot subscribe 1 to channel 999" in said[2]["message"]
                assert "a subscription is an id and a channelId" in said[3]["message"]

            async with ClientSession() as session, session.ws_connect(sink.url) as ws:  # no subprotocol
                msg = await ws.receive(timeout=10)
                assert ws.closed and ws.close_code == 1002, msg

        asyncio.run(watch())
        assert run.is_alive(), "the run went on throughout"


@pytest.mark.parametrize(
    ("uri", "match"),
    [
        ("foxglove://127.0.0.1:99999", "not a valid foxglove://HOST:PORT address"),
        ("foxglove://127.0.0.1:8765/path", "expected foxglove://HOST:PORT"),
        ("foxglove://127.0.0.1?views=radar", "views='radar'; expected a comma-separated list"),
    ],
)
def test_bad_foxglove_uris(uri: str, match: str) -> None:
    with pytest.raises(SinkError, match=match):
        open_sink(uri)


def test_the_defaults_a_taken_port_another_address_and_several_cameras(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert parse_foxglove_uri("foxglove://") == ("127.0.0.1", 8765, (None, 85, None, (None, 0.25)))
    assert parse_foxglove_uri(
        "foxglove://0.0.0.0:9000?views=input&quality=60&cloud=2&gate=3&max_age=0.5"
    ) == ("0.0.0.0", 9000, (("input",), 60, 2, (3.0, 0.5)))
    first = open_sink("foxglove://127.0.0.1:0")
    try:
        port = first.url.rsplit(":", 1)[1]  # type: ignore[attr-defined]
        with pytest.raises(SinkError, match=f"cannot listen on 127.0.0.1:{port}.*or :0 for any free one"):
            open_sink(f"foxglove://127.0.0.1:{port}")
    finally:
        first.close()
    exposed = open_sink("foxglove://0.0.0.0:0")
    exposed.close()
    err = capsys.readouterr().err
    assert "warning: the Foxglove server listens on 0.0.0.0, so anyone who can reach this machine" in err
    assert "foxglove: ws://127.0.0.1:" in err and "foxglove: ws://0.0.0.0:" in err
    own, shared = split_sinks(["foxglove://127.0.0.1:8765"], ["front", "rear"])
    assert shared == ["foxglove://127.0.0.1:8765"] and own == {"front": [], "rear": []}


def test_edge_record_sends_the_cameras_pictures() -> None:
    """Pictures alone (edge record, no engine): the camera's picture channel, as JPEGs a
    subscribed client decodes."""
    from aiohttp import ClientSession

    sink: Any = open_sink("foxglove://127.0.0.1:0")
    picture = np.zeros((48, 64, 3), np.uint8)
    picture[:, :32] = (255, 0, 0)  # red left half, RGB
    try:
        sink.pictures_only()
        sink.write(picture, 0)  # declares the channel; nobody is subscribed yet

        async def watch() -> list[tuple[int, dict[str, Any]]]:
            async with (
                ClientSession() as session,
                session.ws_connect(sink.url, protocols=[SUBPROTOCOL]) as ws,
            ):
                client = Client(ws)
                await client.read_until(lambda: "/camera/image" in client.channels)
                await client.subscribe({7: "/camera/image"})
                for seq in range(1, 50):  # until the subscription has reached the server
                    sink.write(picture, seq, time.perf_counter_ns() - 2 * 10**9)  # captured 2 s ago
                    with contextlib.suppress(TimeoutError, asyncio.TimeoutError):  # one before 3.11
                        await client.read_until(lambda: 7 in client.messages, timeout=0.2)
                    if 7 in client.messages:
                        break
                return client.messages[7]

        got = asyncio.run(watch())
    finally:
        sink.close()
    t_ns, body = got[0]
    assert abs(t_ns - (time.time_ns() - 2 * 10**9)) < 10**9, "at its capture time, on the wall clock"
    assert body["timestamp"] == {"sec": t_ns // 10**9, "nsec": t_ns % 10**9}
    image = jpeg(body)
    assert image.shape == (48, 64, 3)
    assert image[:, :24, 2].mean() > 200 and image[:, 40:, 2].mean() < 30, "red on the left, as sent (BGR)"


def test_two_cameras_share_one_server_each_under_its_name(demo_engines: Path, tmp_path: Path) -> None:
    """edge run --camera front=… --camera rear=…: one server, each camera's channels under
    its name, its pictures drawn for the clients that subscribed to them."""
    from aiohttp import ClientSession

    cameras = [
        f"{name}=synthetic://?size=128x256&fps=20&seed={seed}" for name, seed in (("front", 0), ("rear", 2))
    ]
    args = [a for c in cameras for a in ("--camera", c)]
    run = EdgeRun(
        [*args, "--engines", str(demo_engines), "--sink", "foxglove://127.0.0.1:0"],
        tmp_path,
        says="foxglove: ",
    )
    try:

        async def watch() -> dict[int, list[tuple[int, dict[str, Any]]]]:
            async with ClientSession() as session, session.ws_connect(run.url, protocols=[SUBPROTOCOL]) as ws:
                client = Client(ws)
                wanted = {"/front/objects", "/rear/objects", "/rear/depth"}
                await client.read_until(lambda: wanted <= set(client.channels), timeout=120)
                await client.subscribe({1: "/front/objects", 2: "/rear/objects", 3: "/rear/depth"})
                await client.read_until(lambda: all(len(client.messages.get(i, [])) >= 2 for i in (1, 2, 3)))
                return client.messages

        messages = asyncio.run(watch())
    finally:
        code, _, err = run.stop()
    assert code == 130 and "outputs are finalised" in err, err  # stopped by Ctrl-C
    assert {b["camera"] for _, b in messages[1]} == {"front"} and {b["camera"] for _, b in messages[2]} == {
        "rear"
    }
    assert {jpeg(b).shape for _, b in messages[3]} == {(128, 256, 3)} and {
        b["frame_id"] for _, b in messages[3]
    } == {"rear"}


def test_a_client_that_vanishes_mid_stream_holds_up_nothing(demo_engines: Path) -> None:
    """A client that subscribes to every picture and drops its connection without a close
    (its socket shut) leaves the run going and another client served."""
    from aiohttp import ClientSession

    with viewer_pipeline(demo_engines, SOURCE, sink="foxglove://127.0.0.1:0") as (sink, seen, run):

        async def watch() -> int:
            async with ClientSession() as session:
                rude = await session.ws_connect(sink.url, protocols=[SUBPROTOCOL])
                first = Client(rude)
                topics = {"/camera/image", "/camera/panoptic", "/camera/depth", "/camera/objects"}
                await first.read_until(lambda: topics <= set(first.channels))
                await first.subscribe({i: t for i, t in enumerate(sorted(topics))})
                await first.read_until(lambda: sum(map(len, first.messages.values())) >= 4)
                sock = rude.get_extra_info("socket")
                sock.shutdown(socket.SHUT_RDWR)  # gone, no close frame
                async with session.ws_connect(sink.url, protocols=[SUBPROTOCOL]) as ws:
                    second = Client(ws)
                    await second.read_until(lambda: "/camera/objects" in second.channels)
                    await second.subscribe({1: "/camera/objects"})
                    await second.read_until(lambda: len(second.messages.get(1, [])) >= 10)
                    return len(second.messages[1])

        assert asyncio.run(watch()) >= 10
        frames = len(seen)
        deadline = time.monotonic() + 30
        while len(seen) < frames + 5:
            assert time.monotonic() < deadline and run.is_alive()
            time.sleep(0.05)


class RawClient:
    """A WebSocket client on a bare socket with a tiny receive buffer, read only when the
    test says: the server's sends back up behind it as behind a slow link."""

    def __init__(self, port: int) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.settimeout(30)  # a server that stops answering fails the test, not hangs it
        self.sock.connect(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Sec-WebSocket-Protocol: {SUBPROTOCOL}\r\n\r\n".encode()
        )
        head = b""
        while not head.endswith(b"\r\n\r\n"):
            head += self._exactly(1)
        assert head.startswith(b"HTTP/1.1 101"), head

    def _exactly(self, n: int) -> bytes:
        data = bytearray()
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise AssertionError("the server closed the connection")
            data += chunk
        return bytes(data)

    def send(self, request: dict[str, Any]) -> None:
        payload = json.dumps(request).encode()
        assert len(payload) < 126
        mask = os.urandom(4)  # a client's frames are masked (RFC 6455)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + masked)

    def receive(self) -> tuple[int, bytes]:
        """(opcode, payload) of the server's next frame."""
        first, second = self._exactly(2)
        n = second & 0x7F
        if n >= 126:
            (n,) = struct.unpack(">H" if n == 126 else ">Q", self._exactly(2 if n == 126 else 8))
        return first & 0x0F, self._exactly(n)

    def message(self) -> tuple[int, int, int]:
        """(subscription, log time, size) of the server's next message to a subscription."""
        opcode, data = self.receive()
        assert opcode == 2, (opcode, data[:80])
        kind, sub, t_ns = struct.unpack_from("<BIQ", data)
        assert kind == 1
        return sub, t_ns, len(data) - 13


def test_a_subscription_dropped_while_its_frame_waits_on_a_slow_link_gets_none_of_it() -> None:
    """A frame's messages go out one by one; one that waits on a slow client lets the client's
    unsubscribe in between, and what is left of the frame for that subscription is not sent."""
    from edge.viewer.foxglove import FoxgloveServer

    server = FoxgloveServer(host="127.0.0.1", port=0)
    server.start()
    try:
        server.declare("/big", ("Big", b"{}"))
        server.declare("/small", ("Small", b"{}"))
        client = RawClient(server.port)
        assert json.loads(client.receive()[1])["op"] == "serverInfo"
        assert len(json.loads(client.receive()[1])["channels"]) == 2
        subs = [{"id": 1, "channelId": 1}, {"id": 2, "channelId": 2}]
        client.send({"op": "subscribe", "subscriptions": subs})
        wait_for(lambda: server.wanted("/small"))
        big = b'"' + b"x" * (16 << 20) + b'"'  # far more than the socket buffers hold
        server.publish(10, [("/big", big), ("/small", b'"one"')])
        client.send({"op": "unsubscribe", "subscriptionIds": [2]})
        wait_for(lambda: not server.wanted("/small"))  # read while the big message waits
        assert client.message() == (1, 10, len(big))
        wait_for(lambda: server.frames_sent == 1)
        server.publish(11, [("/big", b'"two"'), ("/small", b'"two"')])
        assert client.message() == (1, 11, 5)  # not (2, 10, 5): frame 10's rest for the dropped one
    finally:
        server.close()


def test_a_channel_subscribed_under_two_ids_is_sent_to_both() -> None:
    """The protocol lets a client subscribe to one channel under several ids (one per panel,
    say): each gets the message (before, only one did)."""
    from edge.viewer.foxglove import FoxgloveServer

    server = FoxgloveServer(host="127.0.0.1", port=0)
    server.start()
    try:
        server.declare("/objects", ("Objects", b"{}"))
        client = RawClient(server.port)
        client.receive(), client.receive()  # who the server is, and its channel
        client.send(
            {"op": "subscribe", "subscriptions": [{"id": 4, "channelId": 1}, {"id": 9, "channelId": 1}]}
        )
        # the server's loop takes a request's subscriptions in one go, and the frame after them
        wait_for(lambda: server.wanted("/objects"))
        server.publish(7, [("/objects", b'"a"')])
        assert sorted([client.message(), client.message()]) == [(4, 7, 3), (9, 7, 3)]
    finally:
        server.close()


def wait_for(done: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)
