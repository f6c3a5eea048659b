"""A run as a systemd service (``Type=notify``): ready, how it is doing, and a watchdog fed
only while it makes progress.

A run can hang rather than end: a camera driver that never returns from a read, a disk
that never finishes a write (an SD card that stopped answering), an engine stuck on its
device. It then prints nothing and exits never, and ``Restart=`` cannot help. With
``WatchdogSec=`` in its unit, systemd kills and restarts a service that has not sent
``WATCHDOG=1`` for that long. The run looks every few seconds and sends it only while
nothing is held up: no sink inside one write, the camera's thread inside no read or open,
and no frames taken in without one coming out (allowing a slow model three times the run's
own pace), since the last look. So systemd's own timer
measures a hang, and one that lasts the watchdog's period ends the run. Once a hold has
lasted half the period the run says what is stuck. Outside systemd nothing is sent, and a
run stuck for ``STUCK_AFTER_S`` still says so.

A live run may instead skip a stuck sink (``skip_stuck_sinks``, ``--stuck-sink skip``): the
sink writers already give its frames to the others (edge.stream.writers), so a planner
reading the objects from ``-`` keeps them while the recording's disk does not answer, and
only the frames coming out, or the camera, decide the feeding. When every sink is stuck no
frame comes out, which is a hold as before.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple

from edge.latency import LatencyTracker
from edge.stream.heartbeat import Heartbeat
from edge.util.proc import thread_states
from edge.util.systemd import notify, notify_socket, watchdog_s

LOOK_EVERY_S = 5.0  # how often the run is looked at, the status sent, the watchdog fed
STUCK_AFTER_S = 30.0  # without a watchdog: how long a held call is called stuck
# half of it must outlast a camera's own read timeouts (OpenCV: 5 s network, 10 s V4L2)
SHORT_WATCHDOG_S = 30.0
PACE_TIMES = 3  # a wait for frames this many times the run's usual time between them is a hold


def waiting_in_kernel(pid: int | str = "self") -> int:
    """How many of a process's threads wait inside the kernel uninterruptibly (state D), as
    for a disk or a driver that does not answer: no signal ends that wait, the watchdog's
    kill included. 0 where /proc does not say (not Linux)."""
    return thread_states(pid).count("D")


class Hold(NamedTuple):
    """Something in a run held up: for how long, what, and how long such a hold lasts when
    all is well (the frames: the run's own pace between them, which a slow model on a CPU
    makes seconds; 0 for a single call)."""

    seconds: float
    what: str
    usual_s: float = 0.0
    sink: str | None = None  # the sink's uri, for a sink inside a write
    # a sink for watching behind a camera (edge record's window or viewer): its frames are
    # skipped meanwhile, so its hold is said but never holds the run
    aside: bool = False


class Progress:
    """What in a run is held up now: a Hold for each sink inside a write, the camera inside
    a read, and frames waiting for one to come out, in that order (the causes before what
    they cause)."""

    PACE_LOOKS = 12  # the run's pace is measured over the last so many looks that saw frames out

    def __init__(
        self,
        *,
        tracker: LatencyTracker | None,
        sinks_busy: Callable[[], list[tuple[str, int, float]]],
        source: Any,
        sinks_aside: Callable[[], list[tuple[str, int, float]]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``tracker``: the frames taken in and out of a pipeline (None: edge record, whose
        frames wait only for its source's reads and its sinks' writes, both looked at here).
        ``sinks_busy``: the sinks inside a write (uri, frame, seconds so far). ``source``: its
        ``in_call_s()``, where it has one (a camera's capture thread), says how long its read
        or open has taken so far. ``sinks_aside``: as ``sinks_busy``, the sinks for watching
        whose frames are skipped behind a camera (Hold.aside)."""
        self._tracker, self._sinks_busy, self._source = tracker, sinks_busy, source
        self._sinks_aside = sinks_aside
        self._clock = clock
        self._last_out = tracker.frames_out if tracker is not None else 0
        self._well_at = clock()  # when a frame last came out, or none was waiting to
        self._outs: deque[tuple[float, int]] = deque(maxlen=self.PACE_LOOKS)  # (when, frames out)

    def pace_s(self) -> float:
        """Seconds between frames out, lately (0 until two looks have seen them come out)."""
        if len(self._outs) < 2:
            return 0.0
        (t0, n0), (t1, n1) = self._outs[0], self._outs[-1]
        return (t1 - t0) / (n1 - n0)

    def __call__(self) -> list[Hold]:
        now = self._clock()
        out, taken = self._last_out, 0
        if self._tracker is not None:
            out = self._tracker.frames_out
            taken = self._tracker.frames_in - out - self._tracker.drops  # in the pipeline now
        if out != self._last_out:
            self._outs.append((now, out))
        if out != self._last_out or taken <= 0:  # a frame came out, or none waits to
            self._last_out, self._well_at = out, now
        holds = [
            Hold(s, f"sink {uri!r} has been writing frame {seq} for {s:.0f} s", sink=uri)
            for uri, seq, s in self._sinks_busy()
        ]
        holds += [
            Hold(s, f"sink {uri!r} has been writing frame {seq} for {s:.0f} s", sink=uri, aside=True)
            for uri, seq, s in (self._sinks_aside() if self._sinks_aside is not None else [])
        ]
        in_call = getattr(self._source, "in_call_s", None)
        if in_call is not None and (s := in_call()) > 0:
            holds.append(Hold(s, f"source {self._source.uri!r} has been inside one read for {s:.0f} s"))
        if (s := now - self._well_at) > 0:
            holds.append(Hold(s, f"no frame has come out for {s:.0f} s, {taken} taken in", self.pace_s()))
        return holds


class ServiceWatch:
    """From ``with`` to its end: ``READY=1`` at once, then every ``every_s`` the status and,
    while ``progress()`` finds nothing held up since the last look, ``WATCHDOG=1``; a hold
    longer than ``stuck_after_s`` is said; ``STOPPING=1`` at the end. With
    ``skip_stuck_sinks`` a sink's hold is said but does not hold the run, as a sink for
    watching's (Hold.aside) never does."""

    def __init__(
        self,
        *,
        status: Callable[[], str],
        progress: Callable[[], list[Hold]],
        watchdog_s: float | None,
        send: Callable[..., bool] = notify,
        heartbeat: Heartbeat | None = None,
        skip_stuck_sinks: bool = False,
    ) -> None:
        """``heartbeat``: rewritten at each look too, for a watcher other than systemd."""
        self._status, self._progress, self._send = status, progress, send
        self._watchdog_s, self._heartbeat = watchdog_s, heartbeat
        self._skip_stuck_sinks = skip_stuck_sinks
        self.skipping: dict[str, str] = {}  # the stuck sinks skipped: uri -> what holds it
        self.every_s = min(LOOK_EVERY_S, watchdog_s / 2) if watchdog_s else LOOK_EVERY_S
        self.stuck_after_s = watchdog_s / 2 if watchdog_s else STUCK_AFTER_S
        self.stuck: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="edge-service-watch", daemon=True)

    @classmethod
    def for_pipeline(
        cls, pipeline: Any, *, heartbeat: str | Path | None = None, skip_stuck_sinks: bool = False
    ) -> ServiceWatch:
        """The watch of a Pipeline, with the watchdog period systemd set (if any); the
        sinks it skips are those the pipeline's end does not wait for (Pipeline.stuck_skipped)."""
        return cls.for_pipelines(
            {None: pipeline},
            status=pipeline.tracker.status_line,
            heartbeat=heartbeat,
            skip_stuck_sinks=skip_stuck_sinks,
        )

    @classmethod
    def for_pipelines(
        cls,
        pipelines: Mapping[Any, Any],
        *,
        status: Callable[[], str],
        heartbeat: str | Path | None = None,
        skip_stuck_sinks: bool = False,
    ) -> ServiceWatch:
        """The watch of several cameras' Pipelines, by name (None: the one camera, whose holds
        name none): what holds any of them up holds the run, said with its camera's name."""
        looks = {
            name: Progress(tracker=p.tracker, sinks_busy=p.sinks_busy, source=p.source)
            for name, p in pipelines.items()
        }
        return cls.for_looks(
            looks, pipelines, status=status, heartbeat=heartbeat, skip_stuck_sinks=skip_stuck_sinks
        )

    @classmethod
    def for_looks(
        cls,
        looks: Mapping[Any, Callable[[], list[Hold]]],
        runs: Mapping[Any, Any],
        *,
        status: Callable[[], str],
        heartbeat: str | Path | None = None,
        skip_stuck_sinks: bool = False,
    ) -> ServiceWatch:
        """The watch of several cameras' ``runs`` (Pipelines, or edge record's Recordings:
        each with its ``sinks`` and a ``stuck_skipped`` the watch sets), each looked at by
        its Progress in ``looks``, by name (None: the one camera, whose holds name none)."""

        def progress() -> list[Hold]:
            return [
                hold if name is None else hold._replace(what=f"camera {name}: {hold.what}")
                for name, look in looks.items()
                for hold in look()
            ]

        watch = cls._watching(status, progress, heartbeat=heartbeat, skip_stuck_sinks=skip_stuck_sinks)
        for run in runs.values():
            run.stuck_skipped = lambda: watch.skipping
            watch.tell(run.sinks)
        return watch

    def tell(self, sinks: Iterable[Any]) -> None:
        """The sinks that serve the run's health over HTTP (the viewer's and the metrics
        sink's /healthz, /metrics' edge_stuck) get this watch, whose ``stuck`` they read."""
        for sink in sinks:
            show = getattr(sink, "show_watch", None)
            if show is not None:
                show(self)

    @classmethod
    def of(
        cls,
        *,
        status: Callable[[], str],
        tracker: LatencyTracker | None,
        sinks_busy: Callable[[], list[tuple[str, int, float]]],
        source: Any,
        heartbeat: str | Path | None = None,
        skip_stuck_sinks: bool = False,
        sinks_aside: Callable[[], list[tuple[str, int, float]]] | None = None,
    ) -> ServiceWatch:
        """A watch with the watchdog period systemd set (if any), of Progress's arguments,
        writing the ``heartbeat`` file (if any); ``skip_stuck_sinks``: as the constructor's."""
        progress = Progress(tracker=tracker, sinks_busy=sinks_busy, source=source, sinks_aside=sinks_aside)
        return cls._watching(status, progress, heartbeat=heartbeat, skip_stuck_sinks=skip_stuck_sinks)

    @classmethod
    def _watching(
        cls,
        status: Callable[[], str],
        progress: Callable[[], list[Hold]],
        *,
        heartbeat: str | Path | None,
        skip_stuck_sinks: bool,
    ) -> ServiceWatch:
        """A watch of ``progress`` with the watchdog period systemd set (if any), writing the
        ``heartbeat`` file (if any)."""
        return cls(
            status=status,
            progress=progress,
            watchdog_s=_watchdog_period(),
            heartbeat=Heartbeat(heartbeat) if heartbeat is not None else None,
            skip_stuck_sinks=skip_stuck_sinks,
        )

    def __enter__(self) -> ServiceWatch:
        status = self._status()
        self._send("READY=1", f"STATUS={status}")
        if self._heartbeat is not None:
            self._heartbeat.beat(fed=True, status=status)
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._send("STOPPING=1", "STATUS=finishing the outputs")
        if self._heartbeat is not None:  # no file: no run (a health check says so at once)
            self._heartbeat.close()

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self.tick()

    def tick(self) -> None:
        """One look at the run: the status, the watchdog fed unless something has been held
        up since the last look, and what is stuck said. A hold is measured against the
        run's own pace where it has one (three times it), so a slow model is not a hang."""
        holds = self._skip(self._progress())
        stuck = [h for h in holds if h.seconds > max(self.stuck_after_s, PACE_TIMES * h.usual_s)]
        if stuck:
            what = stuck[0].what
            if self.stuck is None:
                print(
                    f"warning: the run is stuck: {what}{_in_kernel()}; {self._then()}",
                    file=sys.stderr,
                    flush=True,
                )
            self.stuck = what
            self._send(f"STATUS=stuck: {what}")
            if self._heartbeat is not None:
                self._heartbeat.beat(fed=False, status=self._status(), stuck=what)
            return
        if self.stuck is not None:
            print(f"the run is making progress again (it was stuck: {self.stuck})", file=sys.stderr)
            self.stuck = None
        # a hold shorter than a look is the run's own pace; a longer one is left to systemd's
        # timer, which then kills the run once it has lasted the whole period
        fed = all(h.seconds <= max(self.every_s, PACE_TIMES * h.usual_s) for h in holds)
        status = self._status()
        skipped = "; ".join(self.skipping.values()) or None
        if skipped:
            status += f"  (skipped while stuck: {skipped})"
        self._send(*(("WATCHDOG=1",) if self._watchdog_s and fed else ()), f"STATUS={status}")
        if self._heartbeat is not None:
            self._heartbeat.beat(fed=fed, status=status, stuck=skipped)

    def _skip(self, holds: list[Hold]) -> list[Hold]:
        """The holds but those of the sinks skipped when stuck (all with
        ``skip_stuck_sinks``, those for watching always): the writers give a held sink's
        frames to the others, and when none takes them, the frames' own hold grows. A sink
        held past ``stuck_after_s`` is said once, and so is its writing again."""
        skipped = [h for h in holds if h.sink is not None and (self._skip_stuck_sinks or h.aside)]
        stuck = {h.sink: h for h in skipped if h.sink is not None and h.seconds > self.stuck_after_s}
        for uri, hold in stuck.items():
            if uri not in self.skipping:
                why = "--stuck-sink skip" if not hold.aside else "a sink for watching, behind the camera"
                print(
                    f"warning: {hold.what}{_in_kernel()}; the run goes on without it, its frames "
                    f"skipped ({why})",
                    file=sys.stderr,
                    flush=True,
                )
        for uri in self.skipping.keys() - stuck.keys():
            print(
                f"sink {uri!r} is writing again (its frames were skipped while it was stuck)", file=sys.stderr
            )
        self.skipping = {uri: hold.what for uri, hold in stuck.items()}
        return [h for h in holds if h not in skipped]

    def _then(self) -> str:  # what becomes of a stuck run
        if self._watchdog_s:
            return (
                f"the watchdog has not been fed since it began: systemd kills and restarts the service "
                f"if it lasts {self._watchdog_s:g} s (WatchdogSec=)"
            )
        if notify_socket() is not None:
            return "no watchdog is set (WatchdogSec=) to restart it"
        # a terminal, a container: nobody is told but the reader of this
        return "nothing restarts it here (a systemd service with WatchdogSec= would be)"


def _watchdog_period() -> float | None:
    """The watchdog period systemd set (None: none), warned of when it is short."""
    period = watchdog_s()
    if period is not None and period < SHORT_WATCHDOG_S:
        print(
            f"warning: the watchdog period is {period:g} s (WatchdogSec=); a camera's read may wait "
            f"up to its own timeout (10 s) before it reconnects, which is then called stuck: give it "
            f"{SHORT_WATCHDOG_S:g} s or more",
            file=sys.stderr,
        )
    return period


def _in_kernel() -> str:
    waiting = waiting_in_kernel()
    if not waiting:
        return ""
    return (
        f" ({waiting} of its threads wait inside the kernel for a disk or a driver that does not "
        f"answer: no signal ends that wait, so the run ends, and restarts, only once it answers)"
    )
