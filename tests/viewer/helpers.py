"""A real HTTP client for the viewer (http.client, nothing mocked), a way to start
`edge run` with the viewer as a separate process, and a pipeline in this one."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import cv2
import numpy as np

from tests.conftest import stop_process

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
NO_CHROMIUM = "needs Debian's chromium (apt-get install chromium; .ci/run installs it)"
# without these, Chromium keeps trying to reach Google's services, which this network refuses
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def get(
    url: str, *, headers: dict[str, str] | None = None, method: str = "GET"
) -> tuple[int, dict[str, str], bytes]:
    u = urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    try:
        conn.request(method, u.path + (f"?{u.query}" if u.query else ""), headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def get_json(url: str) -> Any:
    status, _, body = get(url)
    assert status == 200, (url, status, body[:200])
    return json.loads(body)


def mjpeg_frames(url: str, count: int, timeout: float = 60) -> list[tuple[int, np.ndarray]]:
    """The first ``count`` parts of a multipart MJPEG stream: (X-Frame-Seq, decoded image)."""
    u = urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    conn.request("GET", u.path)
    resp = conn.getresponse()
    assert resp.status == 200
    match = re.search(r"boundary=(\S+)", resp.getheader("Content-Type", ""))
    assert match, resp.getheader("Content-Type")
    boundary = b"--" + match.group(1).encode()
    buf = b""
    frames: list[tuple[int, np.ndarray]] = []
    deadline = time.monotonic() + timeout
    try:
        while len(frames) < count:
            assert time.monotonic() < deadline, f"only {len(frames)} frames in {timeout} s"
            chunk = resp.read1(65536)
            assert chunk, "the stream ended"
            buf += chunk
            for seq, jpeg, rest in _parts(buf, boundary):
                image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
                assert image is not None, "a part is not a decodable JPEG"
                frames.append((seq, image))
                buf = rest
    finally:
        conn.close()
    return frames[:count]


def _parts(buf: bytes, boundary: bytes) -> Iterator[tuple[int, bytes, bytes]]:
    while True:
        start = buf.find(boundary)
        head_end = buf.find(b"\r\n\r\n", start)
        if start < 0 or head_end < 0:
            return
        headers = dict(
            line.split(": ", 1)
            for line in buf[start + len(boundary) : head_end].decode().strip().split("\r\n")
        )
        length = int(headers["Content-Length"])
        body_start = head_end + 4
        if len(buf) < body_start + length:
            return
        rest = buf[body_start + length :]
        yield int(headers["X-Frame-Seq"]), buf[body_start : body_start + length], rest
        buf = rest


def write_video(path: Path, frames: int, size: tuple[int, int] = (128, 256), fps: float = 10.0) -> None:
    """A moving box over a gradient: successive frames differ."""
    h, w = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, (w, h))
    base = np.tile(np.linspace(0, 200, w, dtype=np.uint8)[None, :, None], (h, 1, 3))
    for i in range(frames):
        img = base.copy()
        x = i * 9 % (w - 40)
        cv2.rectangle(img, (x, h // 3), (x + 40, h // 3 + 30), (30, 200, 60), -1)
        writer.write(img)
    writer.release()


class EdgeRun:
    """`edge run ... --sink http://127.0.0.1:0` in its own process (or another ``command``
    with the viewer among its sinks, as `edge record`); ``url`` once it listens, from the
    line that ``says`` so (a metrics sink's: "metrics: ")."""

    def __init__(self, args: list[str], cwd: Path, command: str = "run", says: str = "viewer: ") -> None:
        self.work = cwd
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "edge.cli", command, *args],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.url = self._wait_for_url(says)

    @classmethod
    def looping_video(
        cls, work: Path, engines: Path, *, deadline_ms: int, sinks: tuple[str, ...] = ()
    ) -> EdgeRun:
        """A 40-frame video in ``work`` played like a camera into the viewer on a free port."""
        write_video(work / "drive.mp4", 40)
        args = ["drive.mp4", "--engines", str(engines), "--loop", "--realtime"]
        args += ["--deadline-ms", str(deadline_ms), "--sink", "http://127.0.0.1:0"]
        for sink in sinks:
            args += ["--sink", sink]
        return cls(args, cwd=work)

    def _wait_for_url(self, says: str, timeout: float = 120) -> str:
        assert self.proc.stderr is not None
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if not line and self.proc.poll() is not None:
                break
            seen.append(line)
            if line.startswith(says):
                return line.split(" ", 2)[1].strip()
        self.proc.kill()
        raise AssertionError(f"edge did not say {says!r}:\n" + "".join(seen))

    def wait_for_frames(self, count: int = 1, timeout: float = 60) -> None:
        """Until the run has put out ``count`` frames: its engines load after it listens."""
        deadline = time.monotonic() + timeout
        while get_json(self.url + "stats").get("frames_out", 0) < count:  # none before the engines load
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"edge put out fewer than {count} frame(s) in {timeout} s")
            time.sleep(0.1)

    def stop(self) -> tuple[int, str, str]:
        import signal

        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            out, err = self.proc.communicate(timeout=60)
        finally:
            stop_process(self.proc)
        return self.proc.returncode, out, err


@contextlib.contextmanager
def viewer_pipeline(
    engines_dir: Path, source: str, sink: str = "http://127.0.0.1:0", **options: Any
) -> Iterator[tuple[Any, list[Any], threading.Thread]]:
    """A real Pipeline of ``source`` on its own thread, paced, with a viewer on a free port
    (or ``sink``, another live one) as its one sink: the sink, the results handed on so far,
    and the thread; stopped and joined after, its engines closed."""
    from edge.stream.engines import EngineSet
    from edge.stream.pipeline import Pipeline
    from edge.stream.sinks import open_sink
    from edge.stream.sources import open_source

    engines = EngineSet.from_manifest(engines_dir, engine_options={"intra_op_threads": 1})
    (viewer,) = sinks = [open_sink(sink)]
    seen: list[Any] = []
    pipe = Pipeline(
        source=open_source(source),
        engines=engines,
        sinks=sinks,
        realtime=True,
        on_result=seen.append,
        **options,
    )
    run = threading.Thread(target=pipe.run)
    run.start()
    try:
        yield viewer, seen, run
    finally:
        pipe.stop()
        run.join(timeout=30)
        engines.close()
    assert not run.is_alive()
