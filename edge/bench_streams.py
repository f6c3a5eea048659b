"""Latency benchmark, multi-stream: several cameras at a frame rate each, one set of engines.

What ``edge run --camera`` does on a car with several cameras, measured: each stream is a
Pipeline of its own (its capture, queues, post stage and object tracks), fed the held
frames at ``rate`` frames per second, and the streams take turns at one EngineSet in the
order they ask (TurnLock). By default their frames arrive at the same moments, as those of
cameras triggered as one do: the case in which a frame waits longest for its turn; or
spread evenly over a frame's period (``arrival``), as free-running cameras' can. A frame
the engines cannot take before its stream's next one arrives is dropped, as a camera's is
(drops). A frame's latency runs from its arrival to its end after the post stage (fusion,
drawing where asked, tracks) and the sink, its wait for the engines (stage ``turn``) and in
the queues between the stages (``queues``: the rest of its latency) included. Stage
``engines`` is the longer of the two, which run side by side.

The first ``warmup`` frames out, of any stream, are not measured; then frames that
arrived after the warm-up are, until ``min_frames`` of them (all streams together) and
``min_duration_s`` seconds.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from edge.bench_samples import Samples
from edge.errors import ConfigError
from edge.stream.frame import Frame, Result
from edge.util.numbers import is_positive_number

# a stream that dropped at most this share of the frames that arrived kept up with its camera
KEEPS_UP_DROPPED = 0.01
DEFAULT_RATE = 30.0  # frames per second a stream gets where its source has no rate of its own


@dataclasses.dataclass(frozen=True)
class Look:
    """How one stream's frames are made ready, as edge run makes its camera's: undistorted
    with ``lens`` (an edge.stream.undistort.Calibration), then turned or mirrored (``flip``),
    then put into the engines by ``fit`` (None: the engines' own)."""

    fit: str | None = None
    flip: str = "none"
    lens: Any = None

    def to_json(self) -> dict[str, str]:
        """What differs from a plain camera's: ``fit``, ``flip``, ``lens`` (its file)."""
        out = {"fit": self.fit} if self.fit is not None else {}
        if self.flip != "none":
            out["flip"] = self.flip
        if self.lens is not None:
            out["lens"] = str(self.lens.path)
        return out


class HeldSource:
    """The held frames in turn, for ever, at ``fps``: one camera of a multi-stream benchmark.
    Its frame k arrives at ``t0_ns`` + ``phase_s`` + k / ``fps`` (perf_counter_ns), as a
    camera's does, whatever the engines take (a live source: the Pipeline drops what they
    cannot). A turn through the frames is a new scene to the object tracks, as in the
    single-stream measurement."""

    live = True

    def __init__(
        self, samples: Samples, *, uri: str, fps: float, t0_ns: int | None = None, phase_s: float = 0.0
    ) -> None:
        self.uri = uri
        self.fps: float | None = fps
        self._frames = samples.frames
        self._issued = 0
        self._first_ns = (time.perf_counter_ns() if t0_ns is None else t0_ns) + round(phase_s * 1e9)
        self._period_ns = 1e9 / fps
        self._interrupted = threading.Event()

    def read(self) -> Frame | None:
        due_ns = self._first_ns + round(self._issued * self._period_ns)
        wait_s = (due_ns - time.perf_counter_ns()) / 1e9
        if wait_s > 0 and self._interrupted.wait(wait_s):
            return None  # the run stops
        turn, at = divmod(self._issued, len(self._frames))
        held = self._frames[at]
        frame = dataclasses.replace(
            held,
            seq=self._issued,
            t_capture_ns=time.perf_counter_ns(),
            source=self.uri,
            meta={**held.meta, "loop": turn},
        )
        self._issued += 1
        return frame

    def interrupt(self) -> None:
        """End a read waiting for its frame's time (the Pipeline stops)."""
        self._interrupted.set()

    def close(self) -> None:
        return None


ARRIVALS = ("together", "spread")


def phases(streams: int, rate: float, arrival: str) -> list[float]:
    """Each stream's first frame's delay, s: ``together``, all at once (cameras triggered
    as one: the longest waits for a turn); ``spread``, evenly over a period (free-running
    cameras at their best)."""
    if arrival not in ARRIVALS:
        raise ConfigError(f"arrival {arrival!r}: expected one of {', '.join(ARRIVALS)}")
    return [0.0 if arrival == "together" else i / (streams * rate) for i in range(streams)]


def check_streams(streams: int) -> int:
    """``streams`` if it is a whole number of cameras >= 1; else a ConfigError."""
    if isinstance(streams, bool) or not isinstance(streams, int) or streams < 1:
        raise ConfigError(f"streams {streams!r}: expected a whole number >= 1")
    return streams


def check_turns(
    most: int,
    priorities: Mapping[str, int] | None,
    shares: Mapping[str, float] | None,
    names: Sequence[str] | None = None,
) -> None:
    """A run's --priority and --share, its largest configuration of ``most`` streams
    (0: none of several): ConfigErrors as edge run's, the streams named as stream_names
    names them."""
    from edge.stream.multicam import check_priorities, check_shares

    if priorities:
        if not most:
            raise ConfigError("priorities rank the streams of a multi-stream run: give streams too")
        check_priorities(priorities, stream_names(most, names), what="stream")
    if shares:
        if not most:
            raise ConfigError("shares divide the turns of a multi-stream run's streams: give streams too")
        check_shares(shares, stream_names(most, names), what="stream")


def stream_names(streams: int, names: Sequence[str] | None = None) -> list[str]:
    """The names of ``streams`` streams: ``names`` (a rig's cameras, one a stream), else
    stream0, stream1, ...; a ConfigError where ``names`` are not one a stream."""
    if names is None:
        return [f"stream{i}" for i in range(streams)]
    if len(names) != streams or len(set(names)) != len(names):
        raise ConfigError(f"stream names {', '.join(names)}: expected {streams} different ones, one a stream")
    return list(names)


def check_rate(rate: float) -> float:
    """``rate`` if it is a frame rate a stream can be paced at; else a ConfigError."""
    if not is_positive_number(rate):
        raise ConfigError(f"stream rate {rate!r}: expected frames per second, a number > 0")
    return float(rate)


def check_rates(most: int, rates: Mapping[str, float] | None, names: Sequence[str] | None = None) -> None:
    """A run's rates by stream (--rate NAME=FPS), its largest configuration of ``most``
    streams (0: none of several): a ConfigError for a name no stream of it has, or a rate
    that is not a number > 0."""
    if not rates:
        return
    if not most:
        raise ConfigError("rates by stream pace the streams of a multi-stream run: give streams too")
    from edge.stream.multicam import check_names

    check_names("--rate", rates, stream_names(most, names), "stream")
    for name, fps in rates.items():
        if not is_positive_number(fps):
            raise ConfigError(f"--rate {name}={fps!r}: expected frames per second, a number > 0")


def fair_parts(served: float, asked: Mapping[str, float], shares: Mapping[str, float]) -> dict[str, float]:
    """What each stream should have got of the ``served`` frames, having ``asked`` for some
    (arrived) and with a share of the turns: all it asked for where the engines had room,
    else a part by its share, what streams asking for less leave going to the rest (weighted
    max-min fairness, as TurnLock's turns divide the engines). Evenness compares each
    stream's frames with this: a camera at 10 fps beside one at 30 that got all of its 10
    while the other got the rest was served fairly, as was one of share 2 that got twice
    another's."""
    parts: dict[str, float] = {}
    left = dict(asked)
    room = float(served)
    while left:
        per_share = room / sum(shares[n] for n in left)
        sated = [n for n, a in left.items() if a <= shares[n] * per_share]
        if not sated:
            parts.update({n: shares[n] * per_share for n in left})
            break
        for n in sated:
            parts[n] = float(left.pop(n))
            room -= parts[n]
    return parts


# a frame's stages one after another (the engines' wall time in place of each one's)
_IN_TURN = ("preprocess", "turn", "engines", "postprocess", "sink")


class _Measurement:
    """What the streams' frames out add up to, kept as they come (on the sinks' threads)."""

    def __init__(
        self,
        pipelines: Mapping[str, Any],
        *,
        warmup: int,
        min_frames: int,
        min_duration_s: float,
        progress: Callable[[int, float], None] | None,
        on_start: Callable[[], None],
    ) -> None:
        self._pipelines = pipelines
        self._lock = threading.Lock()
        self._warmup, self._min = warmup, (min_frames, min_duration_s)
        self._progress, self._on_start = progress, on_start
        self._warm = 0
        self.t_start_ns: int | None = None
        self.t_end_ns: int | None = None
        self.times_ms: dict[str, list[float]] = {}
        self.e2e_ms: dict[str, list[float]] = {name: [] for name in pipelines}
        self.counts_at_start: dict[str, tuple[int, int]] = {}
        self.counts_at_end: dict[str, tuple[int, int]] = {}

    def _counts(self) -> dict[str, tuple[int, int]]:
        return {name: (p.tracker.frames_in, p.tracker.drops) for name, p in self._pipelines.items()}

    def start(self) -> None:
        self.t_start_ns = time.perf_counter_ns()
        self.counts_at_start = self._counts()
        self._on_start()

    def end(self) -> None:
        """The measurement's end: now, or at once where it already ended (the streams stop)."""
        if self.t_end_ns is None:
            self.t_end_ns = time.perf_counter_ns()
            self.counts_at_end = self._counts()
        for pipeline in self._pipelines.values():
            pipeline.stop()

    @property
    def measured(self) -> int:
        return sum(len(v) for v in self.e2e_ms.values())

    def taker(self, name: str) -> Callable[[Result], None]:
        """The ``on_result`` of stream ``name``."""
        tracker = self._pipelines[name].tracker

        def take(result: Result) -> None:
            with self._lock:
                if self.t_end_ns is not None:
                    return  # a frame in flight when the measurement ended
                if self.t_start_ns is None:
                    self._warm += 1
                    if self._warm >= self._warmup:
                        self.start()
                    return
                if result.frame.t_capture_ns < self.t_start_ns:
                    return  # it arrived during the warm-up
                self._keep(name, tracker.frame_ms(result.frame.seq))
                measured = self.measured
                elapsed = (time.perf_counter_ns() - self.t_start_ns) / 1e9
                try:
                    if self._progress is not None:
                        self._progress(measured, elapsed)
                except BaseException:
                    self.end()  # at this frame, not at those the other streams finish meanwhile
                    raise
                if measured >= self._min[0] and elapsed >= self._min[1]:
                    self.end()

        return take

    def _keep(self, name: str, times: dict[str, float]) -> None:
        from edge.bench import E2E
        from edge.latency.tracker import stage_rank

        # side by side: the frame waits for the longer engine
        times = {**times, "engines": max(times.get("panoptic", 0.0), times.get("depth", 0.0))}
        # the rest of its latency: its waits in the queues between the stages
        times["queues"] = max(0.0, times[E2E] - sum(times.get(k, 0.0) for k in _IN_TURN))
        frame_ms = {k: times[k] for k in sorted(times, key=stage_rank)}
        for stage, ms in frame_ms.items():
            self.times_ms.setdefault(stage, []).append(ms)
        self.e2e_ms[name].append(times[E2E])


def measure_streams(
    engines: Any,
    samples: Samples,
    *,
    streams: int,
    rate: float,
    warmup: int,
    min_frames: int,
    min_duration_s: float,
    progress: Callable[[int, float], None] | None = None,
    power_root: str | Path | None = "/",
    draw: bool = True,
    priorities: Mapping[str, int] | None = None,
    arrival: str = "together",
    shares: Mapping[str, float] | None = None,
    rates: Mapping[str, float] | None = None,
    names: Sequence[str] | None = None,
    frame_sizes: Mapping[str, tuple[int, int]] | None = None,
    looks: Mapping[str, Look] | None = None,
) -> dict[str, Any]:
    """``streams`` cameras of ``samples`` at ``rate`` fps each through ``engines`` (an
    EngineSet), taking turns: the frames' stage times pooled, each stream's frames, drops and
    end-to-end latency, and the board's power over the measurement where ``power_root`` has
    monitors. ``draw``: as edge.bench.measure's. ``priorities``: a stream's rank at the
    engines by name (``stream0``, ...; edge run --priority), those of streams this run lacks
    left out; ``shares``: a stream's share of the turns among its rank, likewise (edge run
    --share); ``rates``: a stream's own frames per second in place of ``rate``, likewise (a
    rig's front camera at 30, its side ones at 10). ``arrival``: when each stream's frames
    arrive (``phases``; spread, each over its own period). ``names``: the streams' (a rig's
    cameras), in place of stream0, ...; ``frame_sizes``: a stream's frames' (height, width) by
    name, the held ones resized to it (a rig's cameras, each at the size it asks); ``looks``: a
    stream's Look by name (a rig's cameras: each one's lens, flip and fit), the time it takes
    counted in its frames' latency as a camera's is."""
    from edge.bench import E2E, latency_stats, measurement_of
    from edge.bench_samples import resized
    from edge.power import PowerSampler, find_rails
    from edge.stream.flip import flipped
    from edge.stream.multicam import run_all
    from edge.stream.pipeline import Pipeline
    from edge.stream.sinks import RENDERED_VIEWS, NullSink
    from edge.stream.undistort import undistorted
    from edge.util.turns import TurnLock

    check_streams(streams)
    rate = check_rate(rate)
    rails = find_rails(power_root) if power_root is not None else []
    sampler = PowerSampler(rails) if rails else None
    turn = TurnLock()
    names = stream_names(streams, names)
    sized = dict(frame_sizes or {})
    fps = {name: check_rate((rates or {}).get(name, rate)) for name in names}
    # spread: stream i's first frame i/streams of its own period in
    delays = [phases(streams, fps[name], arrival)[i] for i, name in enumerate(names)]
    t0_ns = time.perf_counter_ns() + 100_000_000  # the pipelines' threads are started by then
    ranks = priorities or {}  # those of streams this run lacks are not asked for
    weights = shares or {}
    look = {name: (looks or {}).get(name, Look()) for name in names}
    pipelines = {
        name: Pipeline(
            source=flipped(
                undistorted(
                    HeldSource(
                        resized(samples, sized[name]) if name in sized else samples,
                        uri=f"held://{name}",
                        fps=fps[name],
                        t0_ns=t0_ns,
                        phase_s=delay,
                    ),
                    look[name].lens,
                ),
                look[name].flip,
            ),
            engines=engines,
            fit=look[name].fit,
            sinks=[NullSink()],
            views=RENDERED_VIEWS if draw else (),
            camera=name,
            engine_turn=turn.seat(ranks.get(name, 0), weights.get(name, 1.0)),
        )
        for name, delay in zip(names, delays, strict=True)
    }
    m = _Measurement(
        pipelines,
        warmup=warmup,
        min_frames=min_frames,
        min_duration_s=min_duration_s,
        progress=progress,
        on_start=sampler.start if sampler is not None else lambda: None,
    )
    for name, pipeline in pipelines.items():
        pipeline.on_result = m.taker(name)
    if warmup == 0:
        m.start()
    stopped: KeyboardInterrupt | None = None
    try:
        run_all(pipelines, on_interrupt=m.end)
    except KeyboardInterrupt as exc:
        if not m.measured:
            raise  # nothing measured yet: nothing to keep
        stopped = exc
    finally:
        m.end()
        if sampler is not None:
            sampler.stop()
    if m.t_start_ns is None:
        raise ConfigError(f"the streams ended before their {warmup} frames of warm-up")
    seconds = max(((m.t_end_ns or m.t_start_ns) - m.t_start_ns) / 1e9, 1e-9)
    per_stream: dict[str, dict[str, Any]] = {}
    for name, e2e in m.e2e_ms.items():
        arrived = m.counts_at_end[name][0] - m.counts_at_start[name][0]
        dropped = m.counts_at_end[name][1] - m.counts_at_start[name][1]
        per_stream[name] = {
            "rate_fps": fps[name],
            **({"size": "{}x{}".format(*sized[name])} if name in sized else {}),
            **look[name].to_json(),
            "frames": len(e2e),
            "fps": len(e2e) / seconds,
            "arrived": arrived,
            "drops": dropped,
            "dropped_fraction": dropped / arrived if arrived else 0.0,
            E2E + "_ms": latency_stats(e2e),
        }
    arrived = sum(s["arrived"] for s in per_stream.values())
    drops = sum(s["drops"] for s in per_stream.values())
    served = sum(s["frames"] for s in per_stream.values())
    fair = fair_parts(
        served, {n: s["arrived"] for n, s in per_stream.items()}, {n: weights.get(n, 1.0) for n in names}
    )
    got = [s["frames"] / fair[n] for n, s in per_stream.items() if fair[n] > 0]
    return measurement_of(
        m.times_ms,
        warmup=warmup,
        seconds=seconds,
        drops=drops,
        sampler=sampler,
        stopped=stopped,
        streams=per_stream,
        rate_fps=rate,
        arrived=arrived,
        dropped_fraction=drops / arrived if arrived else 0.0,
        keeps_up=all(s["dropped_fraction"] <= KEEPS_UP_DROPPED for s in per_stream.values()),
        # the least a stream got of its fair part over the most: 1.0, each served alike
        evenness=min(got) / max(got) if got and max(got) else 0.0,
    )
