"""A server's event loop on a thread of its own (the web viewer's, Foxglove's): started and
waited for from the pipeline's side, which then hands it work with ``call``."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Coroutine
from typing import Any

from edge.errors import SinkError

START_TIMEOUT_S = 30.0


class LoopThread:
    """Runs ``main`` (a coroutine function) with an event loop of its own on a daemon thread;
    ``main`` sets ``ready`` once it listens. What it failed with before is ``start``'s error."""

    def __init__(self, name: str, main: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self.name, self._main = name, main
        self.ready = threading.Event()
        self.loop: asyncio.AbstractEventLoop | None = None  # main's, once it runs
        # set by stop(): main returns once it is (an Event binds its loop at its first wait)
        self.closing = asyncio.Event()
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def start(self, *, what: str, host: str, port: int, another: Callable[[int], str]) -> None:
        """Run ``main`` until it is ready. SinkError naming ``what`` where it failed: where
        the address is taken, with ``another(port)``, the URI of the next port, to try."""
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()
        self.ready.wait(timeout=START_TIMEOUT_S)
        exc = self._error
        if exc is not None and not isinstance(exc, OSError):
            raise SinkError(f"{what} failed to start: {type(exc).__name__}: {exc}") from exc
        if exc is not None:
            other = port + 1 if 0 < port < 65535 else 8081
            raise SinkError(
                f"{what} cannot listen on {host}:{port}: {exc} (is another {what} running? choose another "
                f"port, e.g. {another(other)}, or :0 for any free one)"
            ) from exc
        if not self.ready.is_set():
            raise SinkError(f"{what} on {host}:{port} did not start within {START_TIMEOUT_S:g} s")

    def call(self, fn: Callable[..., Any], *args: Any) -> None:
        """``fn(*args)`` on the loop, from any thread; nothing once the loop has closed."""
        loop = self.loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed between the check and the call
                loop.call_soon_threadsafe(fn, *args)

    def stop(self, timeout: float = 10.0) -> None:
        """Set ``closing`` and wait for the thread to end."""
        self.call(self.closing.set)
        if self._thread is not None:
            self._thread.join(timeout=timeout)

    @property
    def closed(self) -> bool:
        return self.closing.is_set()

    def _run(self) -> None:
        async def main() -> None:
            self.loop = asyncio.get_running_loop()
            await self._main()

        try:
            asyncio.run(main())
        except BaseException as exc:  # reported to start(); nothing else waits on this thread
            self._error = exc
            self.ready.set()


async def listen(app: Any, host: str, port: int) -> tuple[Any, int]:
    """``app`` (aiohttp's) served on ``host``:``port``: its runner, to clean up once closing,
    and the port it got (``port`` 0: any free one). Nothing is left running where it fails."""
    from aiohttp import web

    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner, int(runner.addresses[0][1])
