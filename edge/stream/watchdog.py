"""A run as a systemd service (``Type=notify``): ready, how it is doing, and a watchdog fed
only while it makes progress.

A run can hang rather than end: a camera driver that never returns from a read, a disk
that never finishes a write (an SD card that stopped answering), an engine stuck on its
device. It then prints nothing and exits never, and ``Restart=`` cannot help. With
``WatchdogSec=`` in its unit, systemd restarts a service that stops sending ``WATCHDOG=1``;
the run sends it every half period while frames come out, and stops, saying what is stuck,
once something has held one call for half the period: a sink inside one write, the
camera's thread inside one read or open, or frames taken in and none out. Outside systemd
nothing is sent, and a run stuck for ``STUCK_AFTER_S`` still says so.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from edge.latency import LatencyTracker
from edge.util.systemd import notify, notify_socket, watchdog_s

STATUS_EVERY_S = 10.0  # how often the status is sent when no watchdog asks for more
STUCK_AFTER_S = 30.0  # without a watchdog: how long a held call is called stuck
# half of it must outlast a camera's own read timeouts (OpenCV: 5 s network, 10 s V4L2)
SHORT_WATCHDOG_S = 30.0


class Progress:
    """What in a run has made no progress for ``within_s`` seconds, or None when all has."""

    def __init__(
        self,
        *,
        tracker: LatencyTracker | None,
        sinks_busy: Callable[[], list[tuple[str, int, float]]],
        source: Any,
        within_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``tracker``: the frames taken in and out of a pipeline (None: a loop that writes
        each frame as it reads it, edge record). ``sinks_busy``: the sinks inside a write
        (uri, frame, seconds so far). ``source``: its ``in_call_s()``, where it has one (a
        camera's capture thread), says how long its read or open has taken so far."""
        self._tracker, self._sinks_busy, self._source = tracker, sinks_busy, source
        self._within_s, self._clock = within_s, clock
        self._last_out = tracker.frames_out if tracker is not None else 0
        self._well_at = clock()  # when a frame last came out, or none was waiting to

    def __call__(self) -> str | None:
        now = self._clock()
        out, taken = self._last_out, 0
        if self._tracker is not None:
            out = self._tracker.frames_out
            taken = self._tracker.frames_in - out - self._tracker.drops  # in the pipeline now
        if out != self._last_out or taken <= 0:  # a frame came out, or none waits to
            self._last_out, self._well_at = out, now
        for uri, seq, seconds in self._sinks_busy():
            if seconds > self._within_s:
                return f"sink {uri!r} has been writing frame {seq} for {seconds:.0f} s"
        in_call = getattr(self._source, "in_call_s", None)
        if in_call is not None and (seconds := in_call()) > self._within_s:
            return f"source {self._source.uri!r} has been inside one read for {seconds:.0f} s"
        if now - self._well_at > self._within_s:
            return f"no frame has come out for {now - self._well_at:.0f} s, {taken} taken in"
        return None


class ServiceWatch:
    """From ``with`` to its end: ``READY=1`` at once, then every ``every_s`` the status and,
    while ``progress()`` finds nothing stuck, ``WATCHDOG=1``; ``STOPPING=1`` at the end."""

    def __init__(
        self,
        *,
        status: Callable[[], str],
        progress: Callable[[], str | None],
        watchdog_s: float | None,
        send: Callable[..., bool] = notify,
    ) -> None:
        self._status, self._progress, self._send = status, progress, send
        self._watchdog_s = watchdog_s
        self.every_s = watchdog_s / 2 if watchdog_s else STATUS_EVERY_S
        self.stuck: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="edge-service-watch", daemon=True)

    @classmethod
    def for_pipeline(cls, pipeline: Any) -> ServiceWatch:
        """The watch of a Pipeline, with the watchdog period systemd set (if any)."""
        return cls.of(
            status=pipeline.tracker.status_line,
            tracker=pipeline.tracker,
            sinks_busy=pipeline.sinks_busy,
            source=pipeline.source,
        )

    @classmethod
    def of(
        cls,
        *,
        status: Callable[[], str],
        tracker: LatencyTracker | None,
        sinks_busy: Callable[[], list[tuple[str, int, float]]],
        source: Any,
    ) -> ServiceWatch:
        """A watch with the watchdog period systemd set (if any), calling stuck what has
        made no progress for half of it (Progress's arguments)."""
        period = watchdog_s()
        if period is not None and period < SHORT_WATCHDOG_S:
            print(
                f"warning: the watchdog period is {period:g} s (WatchdogSec=); a camera's read may wait "
                f"up to its own timeout (10 s) before it reconnects, which is then called stuck: give it "
                f"{SHORT_WATCHDOG_S:g} s or more",
                file=sys.stderr,
            )
        within_s = period / 2 if period else STUCK_AFTER_S
        progress = Progress(tracker=tracker, sinks_busy=sinks_busy, source=source, within_s=within_s)
        return cls(status=status, progress=progress, watchdog_s=period)

    def __enter__(self) -> ServiceWatch:
        self._send("READY=1", f"STATUS={self._status()}")
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._send("STOPPING=1", "STATUS=finishing the outputs")

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self.tick()

    def tick(self) -> None:
        """One look at the run: the status, and the watchdog fed unless something is stuck."""
        stuck = self._progress()
        if stuck is None:
            if self.stuck is not None:
                print(f"the run is making progress again (it was stuck: {self.stuck})", file=sys.stderr)
            self.stuck = None
            fed = ("WATCHDOG=1",) if self._watchdog_s else ()
            self._send(*fed, f"STATUS={self._status()}")
            return
        if self.stuck is None:
            if self._watchdog_s:
                within = f"{self._watchdog_s:g} s"
                then = f"the watchdog is no longer fed: systemd restarts the service within {within}"
            elif notify_socket() is not None:
                then = "no watchdog is set (WatchdogSec=) to restart it"
            else:  # a terminal, a container: nobody is told but the reader of this
                then = "nothing restarts it here (a systemd service with WatchdogSec= would be)"
            print(f"warning: the run is stuck: {stuck}; {then}", file=sys.stderr, flush=True)
        self.stuck = stuck
        self._send(f"STATUS=stuck: {stuck}")
