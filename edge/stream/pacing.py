"""When a file's frames are handed on (FilePace): paced like a camera's with ``--realtime``, at
their capture times or one period apart, from a start offset; read in drive order with other
cameras' recordings (DriveOrder); else as soon as read.

A recorded drive's cameras are read in the order of their capture times, as fast as the
engines take them (``edge run --rig drive/replay.toml``, or ``--camera`` of several
recordings, without ``--realtime``).

Read flat out, each camera's recording would run at its own pace: a 30 fps front camera's and
a 10 fps side camera's frames taking turns at the engines, the side camera's drive would run
three times ahead of the front one's, and what the two saw at once would never be fused at
once. Here every camera's reader waits, before handing on its next frame, until no other
camera's next frame was captured earlier (its drive time: its capture time in the recording,
else its number over its rate, after its start offset): a merge of the recordings by time, so
that a replay slower than the drive (a CPU replaying four cameras) or faster (a GPU) keeps
them together, every frame read. Each frame's drive time is its ``meta["drive_s"]``, which
the fused lines (edge.stream.object_sinks.FusedLines) compare instead of the time it was read.

A camera whose read has not returned in ``DRIVE_PATIENCE_S`` (a recording on a network share
that stopped answering) is waited for no longer: said once, the others go on in drive order
without it, and it takes its place again with its next frame (its frames come first until it
has caught up, as they were captured earlier).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

_POLL_S = 0.05  # how often a waiting camera looks whether it is to stop
# a read this long is a hang, not a slow decode: a frame of 4K HEVC takes well under a second
DRIVE_PATIENCE_S = 10.0


class FilePace:
    """One source's pace: ``period`` s between frames when paced (0: not), at its recorded
    capture times where ``by_timestamps``; its first frame ``offset_s`` after the start (a
    camera of a drive that began after another); ``rate``: its frames a second, for the drive
    time of a recording without capture times. ``seat``: its place in a DriveOrder, unpaced;
    ``clock``: the run's DriveClock; ``start_line``: where several cameras' runs begin at once
    (StartLine: their offsets are to one start), else each begins as its capture does."""

    def __init__(self, *, period: float, by_timestamps: bool, offset_s: float, rate: float | None) -> None:
        self.period, self.by_timestamps, self.offset_s, self.rate = period, by_timestamps, offset_s, rate
        self.seat: DriveSeat | None = None
        self.clock = DriveClock()  # a camera of several: the run's (drive_order)
        self.start_line: StartLine | None = None
        self._next_t = 0.0
        self._last_media: float | None = None

    def begin(self) -> None:
        """The run's start: a paced first frame comes one period (and the offset) after it."""
        start = self.start_line.arrive() if self.start_line is not None else time.perf_counter()
        self._next_t = start + (self.offset_s if self.period else 0.0)
        self._last_media = None

    def hand_on(self, frame: Any, stopping: threading.Event) -> bool:
        """Wait until ``frame`` is due (paced: when a camera would send it, stamped then; in
        drive order: until it is the earliest, its drive time its ``meta["drive_s"]``); False
        where ``stopping`` is set first. An unpaced frame's wall-clock time, on the drive's pace,
        is its ``meta["time_unix_ns"]`` (DriveClock)."""
        if self.period:
            self._next_t += self._step(frame)
            self._last_media = frame.meta.get("media_ms")
            time.sleep(max(0.0, self._next_t - time.perf_counter()))
            frame.t_capture_ns = time.perf_counter_ns()
            return True
        if "loop" in frame.meta:  # a loop's restart goes back in time: its frames have no drive time
            return True
        from edge.stream.steps import stream_time_s

        drive_s = stream_time_s(frame, live=False, rate=self.rate) + self.offset_s
        if self.seat is not None:  # the other cameras' frames are on its clock: fused by it
            frame.meta["drive_s"] = drive_s
            if not self.seat.turn(drive_s, stopping):
                return False
        frame.meta["time_unix_ns"] = self.clock.ns(drive_s)
        return True

    def reading(self) -> None:
        """The source is about to read its next frame: in drive order, the others wait for it
        only so long (DriveOrder's patience)."""
        if self.seat is not None:
            self.seat.reading()

    def end(self) -> None:
        """The source has ended (or the run): the other cameras no longer wait for it."""
        if self.seat is not None:
            self.seat.done()

    def _step(self, frame: Any) -> float:
        """Seconds from the previous paced frame to ``frame``: the recorded interval when
        replaying at capture times (not across a loop's restart), else one period."""
        media = frame.meta.get("media_ms") if self.by_timestamps else None
        last = self._last_media
        if media is not None and last is not None and media >= last:
            return float(media - last) / 1e3
        return self.period


class StartLine:
    """Where the cameras of one run begin together: each one's capture ``arrive``s as it
    begins, and all get the time the last arrived (time.perf_counter), so that paced files'
    start offsets are to one start, however late a thread began; one that has not arrived in
    ``timeout_s`` (its run failed first) is not waited for, each then beginning as it arrives."""

    def __init__(self, parties: int, *, timeout_s: float = 5.0) -> None:
        self._barrier = threading.Barrier(parties)
        self._timeout_s = timeout_s
        self._lock = threading.Lock()
        self._t: float | None = None

    def arrive(self) -> float:
        try:
            self._barrier.wait(self._timeout_s)
        except threading.BrokenBarrierError:
            return time.perf_counter()
        with self._lock:
            if self._t is None:
                self._t = time.perf_counter()
            return self._t


def _say(line: str) -> None:
    print(line, file=sys.stderr)


class DriveOrder:
    """The cameras ``names`` of one replay, each reading through its ``seat``; one whose read
    has not returned in ``patience_s`` is not waited for until its next frame (``say``s so)."""

    def __init__(
        self,
        names: Sequence[str],
        *,
        patience_s: float = DRIVE_PATIENCE_S,
        say: Callable[[str], None] = _say,
        on_hung: Callable[[str, float], object] | None = None,
    ) -> None:
        """``on_hung``: called with a camera's name and how long its read hung, once it reads
        again (or its recording ends), where it was not waited for."""
        self._rank = {name: i for i, name in enumerate(names)}  # ties: the cameras' order
        self._pending: dict[str, float | None] = dict.fromkeys(names)
        self._reading = set(names)  # those whose recordings have not ended
        # when each camera began the read it is in (time.monotonic), None out of one
        self._read_since: dict[str, float | None] = dict.fromkeys(names)
        self._stalled: set[str] = set()
        self._patience_s, self._say, self._on_hung = patience_s, say, on_hung
        self._cond = threading.Condition()

    def seat(self, name: str) -> DriveSeat:
        if name not in self._rank:
            raise KeyError(name)
        return DriveSeat(self, name)

    def _turn(self, name: str, t_s: float, stopping: threading.Event) -> bool:
        with self._cond:
            self._pending[name] = t_s
            since, self._read_since[name] = self._read_since[name], None
            if name in self._stalled:
                waited = self._back(name, since)
                self._say(
                    f"note: camera {name!r} read a frame again after {waited:.1f} s: back in drive order "
                    "(its frames come first until it has caught up)"
                )
            self._cond.notify_all()
            while not stopping.is_set():
                if self._earliest() == name:
                    self._pending[name] = None
                    return True
                self._cond.wait(_POLL_S)
            return False

    def _earliest(self) -> str | None:
        """The camera whose next frame is the earliest, once every camera still reading has
        one (one reading its next may yet give an earlier one: it is waited for)."""
        times = []
        for name in self._reading:
            t_s = self._pending[name]
            if t_s is None:
                if not self._hung(name):
                    return None
                continue
            times.append((t_s, self._rank[name], name))
        return min(times)[2] if times else None

    def _hung(self, name: str) -> bool:
        """Whether ``name``'s read has taken longer than the patience (said the first time)."""
        if name in self._stalled:
            return True
        since = self._read_since[name]
        if since is None or time.monotonic() - since < self._patience_s:
            return False
        self._stalled.add(name)
        self._say(
            f"warning: camera {name!r} has read no frame for {self._patience_s:g} s (its recording "
            "stopped answering?): the other cameras go on in drive order without it until it reads one"
        )
        return True

    def _back(self, name: str, since: float | None) -> float:
        """``name``, not waited for, has read again or ended: how long its read hung."""
        self._stalled.discard(name)
        waited = time.monotonic() - since if since is not None else 0.0
        if self._on_hung is not None:
            self._on_hung(name, waited)
        return waited

    def _began_reading(self, name: str) -> None:
        with self._cond:
            self._read_since[name] = time.monotonic()

    def _done(self, name: str) -> None:
        with self._cond:
            self._reading.discard(name)
            self._pending[name] = None
            if name in self._stalled:
                self._back(name, self._read_since[name])
            self._read_since[name] = None
            self._cond.notify_all()


class DriveSeat:
    """One camera's place in a DriveOrder: ``reading`` as it reads each frame, ``turn`` before
    it is handed on, ``done`` when its recording has ended (or its run), so the others no
    longer wait for it."""

    def __init__(self, order: DriveOrder, name: str) -> None:
        self._order, self.name = order, name

    def turn(self, t_s: float, stopping: threading.Event) -> bool:
        """Wait until this camera's next frame, captured ``t_s`` into the drive, is the earliest
        of every camera's next; False where ``stopping`` is set first."""
        return self._order._turn(self.name, t_s, stopping)

    def reading(self) -> None:
        """This camera has begun reading its next frame: the others wait for it, not for ever."""
        self._order._began_reading(self.name)

    def done(self) -> None:
        self._order._done(self.name)


class DriveClock:
    """Wall-clock times for a replay's frames read by drive time: the first one's is when it
    was read, each other's that plus its drive time after the first's, so that what is written
    of them (the objects lines' ``time_unix``, an .mcap's times) follows the drive's pace,
    however fast or slow the replay. One a run: its cameras' drives on one clock."""

    def __init__(self) -> None:
        self._origin_ns: int | None = None
        self._lock = threading.Lock()

    def ns(self, drive_s: float) -> int:
        """Nanoseconds since the epoch of the frame captured ``drive_s`` into the drive."""
        drive_ns = round(drive_s * 1e9)
        with self._lock:
            if self._origin_ns is None:
                self._origin_ns = time.time_ns() - drive_ns
            return self._origin_ns + drive_ns


def drive_order(pipelines: Mapping[str, Any], *, realtime: bool, loop: bool) -> DriveOrder | None:
    """A DriveOrder of the cameras' Pipelines, each reading through its seat, where two or more
    read recordings flat out (no --realtime, no --loop, whose restart goes back in time) and
    each has a drive clock: its capture times, or the rate its pace times its frames by (its
    own, or --fps); else None."""

    def clocked(pipeline: Any) -> bool:
        timed = getattr(pipeline.source, "timestamps", None) is not None
        return not pipeline.source.live and bool(timed or pipeline.pace.rate)

    if len(pipelines) < 2 or realtime or loop or not all(clocked(p) for p in pipelines.values()):
        return None

    def hung(name: str, seconds: float) -> None:  # in the camera's summary
        pipelines[name].tracker.read_hung(seconds)

    order = DriveOrder(list(pipelines), patience_s=DRIVE_PATIENCE_S, on_hung=hung)
    clock = DriveClock()
    for name, pipeline in pipelines.items():
        pipeline.pace.seat, pipeline.pace.clock = order.seat(name), clock
    return order


def unpaced_beside_live(pipelines: Mapping[str, Any], *, realtime: bool) -> str | None:
    """The warning for a run of live cameras beside recordings read flat out (no --realtime):
    the recordings' drives run ahead of the cameras', so what the two saw at once is not fused
    at once; None for any other run."""
    if realtime:
        return None
    live = [name for name, p in pipelines.items() if p.source.live]
    flat_out = [
        name
        for name, p in pipelines.items()
        if not p.source.live and not getattr(p.source, "keeps_rate", False)
    ]
    if not live or not flat_out:
        return None
    return (
        f"warning: {', '.join(flat_out)} read recordings as fast as the engines take them beside the live "
        f"camera(s) {', '.join(live)}: their drives run ahead of the cameras', so what they saw at once "
        "is not fused at once (?lines=fused, the viewers); --realtime replays the recordings at their pace"
    )
