"""Per-stage timers, per-frame traces (capture to sink), percentiles, exports.

Times are ``time.perf_counter_ns()`` stamps; every stage of every frame is recorded as a
(start, end) span so the run can be replayed as a Chrome trace (opens in Perfetto).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import OrderedDict, defaultdict, deque
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edge.latency.samples import EXACT, Buckets, Samples
from edge.latency.spans import SpanLog
from edge.util.fs import atomic_write_bytes

E2E = "end_to_end"
# the stages in a frame's order, as tables list them
STAGE_ORDER = (
    "preprocess",
    "turn",  # the wait for engines that other cameras share
    "panoptic",
    "panoptic_gpu",
    "depth",
    "depth_gpu",
    "engines",  # edge bench of several streams: the longer of the two engines
    "postprocess",
    "tracks",
    "sink",
    "queues",  # edge bench of several streams: the rest of a frame's latency
)


def stage_rank(stage: str) -> int:
    """Where ``stage`` comes in STAGE_ORDER (others after them all)."""
    return STAGE_ORDER.index(stage) if stage in STAGE_ORDER else len(STAGE_ORDER)


class LatencyTracker:
    """``max_spans`` bounds the per-span log kept for the Chrome trace and JSON lines (the
    most recent ones; a day at 30 fps would otherwise hold millions); the summary's
    percentiles use every frame: exactly for the first ``exact`` of each stage, then from
    0.1%-wide bins, so memory stops growing (edge.latency.samples)."""

    def __init__(
        self,
        *,
        deadline_ms: float | None = None,
        window: int = 256,
        max_spans: int = 200_000,
        exact: int = EXACT,
    ) -> None:
        self.deadline_ms = deadline_ms
        self._lock = threading.Lock()
        self._window = window
        self._recent: dict[str, deque[float]] = defaultdict(lambda: deque(maxlen=window))
        self._recent_done: deque[int] = deque(maxlen=window)
        # each of the last ``window`` frames' stage times, for a caller that wants its own frame's
        self._by_frame: OrderedDict[int, dict[str, float]] = OrderedDict()
        self._spans = SpanLog(max_spans)
        self._stage_ms: dict[str, Samples] = defaultdict(lambda: Samples(exact=exact))
        self._e2e_ms = Samples(exact=exact)
        self._buckets: dict[str, Buckets] = defaultdict(Buckets)  # for /metrics (edge.viewer.metrics)
        self._exact = exact
        self.drops = 0
        self.frames_in = 0
        self.frames_out = 0
        self.deadline_misses = 0
        self.sink_errors = 0
        # sinks that stopped for good (a full disk): {"sink": uri, "frame": seq, "reason": ...}
        self.sinks_stopped: list[dict[str, Any]] = []
        # sinks that could not be finished (a video whose disk failed): {"sink": uri, "reason": ...}
        self.sinks_unfinished: list[dict[str, Any]] = []
        # frames each sink skipped, slower than the stream in a live run: {uri: count}
        self.sinks_skipped: dict[str, int] = {}
        # how long each read of a recording in drive order hung past the patience, s (pacing)
        self.reads_hung_s: list[float] = []
        # each sink's own writes, ms: with several sinks, which is slow (they write at once)
        self._sink_ms: dict[str, Samples] = {}
        # the files each segmented sink wrote, in order, and how many it deleted for room
        self.segments: dict[str, dict[str, Any]] = {}
        self.reconnects = 0
        self.gap_ms = 0.0
        self.undecodable = 0
        # what ran, e.g. {"panoptic": "panoptic_fpn_tiny onnxruntime fp32 256x512"}: describe()
        self.engines: dict[str, str] = {}
        # how frames of another shape than the engines' went in: stretch, pad or crop (stream.fit)
        self.fit = "stretch"
        # how the source gave its frames: "live" (a camera), "realtime" (a file paced as one),
        # "source" (a source that kept its own rate, pace_fps: cityscapes://DIR?fps=17),
        # "file" (as fast as the engines took them: end_to_end then counts their wait in the
        # queues; pace_hint says what would pace it, where not --realtime); None where no
        # pipeline ran (Perception)
        self.pacing: str | None = None
        self.pace_fps: float | None = None
        self.pace_hint: str | None = None
        # the road's plane fitted to the depth map at the run's end (GroundPlane.to_json: its
        # height in the depth engine's metres over the focal length), where one was
        self.road_plane: dict[str, float | None] | None = None
        self._t0 = time.perf_counter_ns()
        self._t_last = self._t0
        # the summary's fps counts from the first frame's capture, not from here: loading the
        # engines and opening a camera (seconds) are not the stream's rate
        self._t_first: int | None = None
        self._t_read_last: int | None = None  # the last capture among the frames out

    @property
    def t0_ns(self) -> int:
        """When the tracker was made (perf_counter_ns): the trace's time 0."""
        return self._t0

    @property
    def spans_dropped(self) -> int:
        """Spans the trace no longer holds: the oldest, past ``max_spans``."""
        return self._spans.appended - len(self._spans)

    def record(self, seq: int, stage: str, start_ns: int, end_ns: int) -> None:
        with self._lock:
            self._spans.append(seq, stage, start_ns, end_ns, threading.get_ident())
            ms = (end_ns - start_ns) / 1e6
            self._stage_ms[stage].append(ms)
            self._buckets[stage].add(ms)
            self._recent[stage].append(ms)
            self._note_frame(seq, stage, ms)

    def _note_frame(self, seq: int, stage: str, ms: float) -> None:
        times = self._by_frame.get(seq)
        if times is None:
            times = self._by_frame[seq] = {}
            if len(self._by_frame) > self._window:
                self._by_frame.popitem(last=False)
        times[stage] = ms

    def frame_ms(self, seq: int) -> dict[str, float]:
        """Stage times of frame ``seq`` in ms, end to end once it is done; empty for a frame
        older than the last ``window`` ones."""
        with self._lock:
            return dict(self._by_frame.get(seq, {}))

    @contextlib.contextmanager
    def stage(self, seq: int, name: str) -> Iterator[None]:
        start = time.perf_counter_ns()
        try:
            yield
        finally:
            self.record(seq, name, start, time.perf_counter_ns())

    def describe(self, engines: Any, *, fit: str | None = None) -> None:
        """What ran, for the summary: an EngineSet's engines (``described``), and ``fit``
        (default: theirs)."""
        self.engines = dict(engines.described)
        self.fit = fit or engines.fit

    def frame_captured(self, count: int = 1) -> None:
        with self._lock:
            self.frames_in += count

    def sink_failed(self) -> None:
        with self._lock:
            self.sink_errors += 1

    def sink_stopped(self, uri: str, seq: int, reason: str) -> None:
        """Sink ``uri`` stopped for good at frame ``seq``: it wrote the frames before."""
        with self._lock:
            self.sinks_stopped.append({"sink": uri, "frame": seq, "reason": reason})

    def sink_skipped(self, uri: str) -> None:
        """Sink ``uri`` skipped a frame, slower than the stream (the others wrote it)."""
        with self._lock:
            self.sinks_skipped[uri] = self.sinks_skipped.get(uri, 0) + 1

    def read_hung(self, seconds: float) -> None:
        """A read of the recording, in drive order, held ``seconds`` before the other cameras
        went on without it (edge.stream.pacing.DriveOrder)."""
        with self._lock:
            self.reads_hung_s.append(round(seconds, 3))

    def sink_wrote(self, uri: str, ms: float) -> None:
        """Sink ``uri`` wrote a frame in ``ms``."""
        with self._lock:
            samples = self._sink_ms.get(uri)
            if samples is None:
                samples = self._sink_ms[uri] = Samples(exact=self._exact)
            samples.append(ms)

    def sink_unfinished(self, uri: str, reason: str) -> None:
        """Sink ``uri`` could not be finished, for ``reason``: what it wrote is left unfinished."""
        with self._lock:
            self.sinks_unfinished.append({"sink": uri, "reason": reason.removeprefix(f"sink {uri!r}: ")})

    def segments_written(self, uri: str, files: Sequence[str], deleted: int) -> None:
        """Sink ``uri`` (--segment) is finished: ``files`` its segments, ``deleted`` how many
        of the oldest it deleted (--delete-oldest), earlier runs' included."""
        with self._lock:
            self.segments[uri] = {"files": list(files), "deleted": deleted}

    def frame_dropped(self, count: int = 1) -> None:
        with self._lock:
            self.drops += count

    def frames_undecodable(self, count: int) -> None:
        """Frames the source skipped because they could not be decoded."""
        with self._lock:
            self.undecodable += count

    def source_gap(self, ms: float) -> None:
        """A live source was lost and came back ``ms`` later."""
        with self._lock:
            self.reconnects += 1
            self.gap_ms += ms

    def frame_done(self, seq: int, t_capture_ns: int) -> float:
        """Close a frame's trace at the sink; returns its end-to-end latency in ms."""
        now = time.perf_counter_ns()
        ms = (now - t_capture_ns) / 1e6
        with self._lock:
            self._e2e_ms.append(ms)
            self._buckets[E2E].add(ms)
            self._recent[E2E].append(ms)
            self._recent_done.append(now)
            self._spans.append(seq, E2E, t_capture_ns, now, 0)
            self._note_frame(seq, E2E, ms)
            self.frames_out += 1
            self._t_last = now
            if self._t_first is None or t_capture_ns < self._t_first:
                self._t_first = t_capture_ns
            self._t_read_last = max(self._t_read_last or t_capture_ns, t_capture_ns)
            if self.deadline_ms is not None and ms > self.deadline_ms:
                self.deadline_misses += 1
        return ms

    @staticmethod
    def stats(values: Sequence[float]) -> dict[str, float]:
        """count, mean, p50, p90, p99 and max of ``values`` (the summary's, for a window)."""
        return Samples.of(values).stats()

    def stage_times(self, stage: str) -> np.ndarray:
        """Every time of ``stage`` (or end_to_end), ms, in the order measured; ValueError
        once a long run has folded them into bins (edge.latency.samples)."""
        with self._lock:
            samples = self._e2e_ms if stage == E2E else self._stage_ms.get(stage, Samples())
            return samples.values()

    def summary(self) -> dict[str, Any]:
        with self._lock:
            start = self._t0 if self._t_first is None else self._t_first
            seconds = max((self._t_last - start) / 1e9, 1e-9)
            read_s = (self._t_read_last - start) / 1e9 if self._t_read_last is not None else 0.0
            return {
                "engines": dict(self.engines),
                "fit": self.fit,
                "pacing": self.pacing,
                "pace_fps": self.pace_fps,
                "pace_hint": self.pace_hint,
                "road_plane": self.road_plane,
                "frames_in": self.frames_in,
                "frames_out": self.frames_out,
                "drops": self.drops,
                "sink_errors": self.sink_errors,
                "sinks_stopped": [dict(stopped) for stopped in self.sinks_stopped],
                "sinks_unfinished": [dict(unfinished) for unfinished in self.sinks_unfinished],
                "sinks_skipped": dict(self.sinks_skipped),
                "reads_hung_s": list(self.reads_hung_s),
                "sinks_ms": {uri: samples.stats() for uri, samples in self._sink_ms.items()},
                "segments": {uri: dict(written) for uri, written in self.segments.items()},
                "reconnects": self.reconnects,
                "source_gap_ms": self.gap_ms,
                "undecodable": self.undecodable,
                "deadline_ms": self.deadline_ms,
                "deadline_misses": self.deadline_misses,
                "fps": self.frames_out / seconds,
                # the rate the frames out were read at (a source keeping its rate and the
                # engines keeping up: that rate); fps above also counts the last one's latency
                "read_fps": (self.frames_out - 1) / read_s if self.frames_out > 1 and read_s > 0 else None,
                "stages_ms": {k: v.stats() for k, v in self._stage_ms.items()},
                E2E + "_ms": self._e2e_ms.stats(),
            }

    def histograms(self) -> dict[str, dict[str, Any]]:
        """Each stage's (and end_to_end's) times over the whole run as a histogram: its
        cumulative ``buckets`` [(upper bound s, count)], ``count`` and ``sum_s``."""
        with self._lock:
            return {
                stage: {"buckets": b.cumulative(), "count": b.count, "sum_s": b.total_ms / 1e3}
                for stage, b in self._buckets.items()
            }

    def rolling(self) -> dict[str, Any]:
        """Percentiles and fps over the last ``window`` frames, for live display."""
        with self._lock:
            recent = {k: list(v) for k, v in self._recent.items()}
            done = list(self._recent_done)
            counts = (self.frames_in, self.frames_out, self.drops, self.deadline_misses)
            gaps = (self.reconnects, self.gap_ms, self.sink_errors, self.undecodable)
        fps = (len(done) - 1) / ((done[-1] - done[0]) / 1e9) if len(done) > 1 and done[-1] > done[0] else 0.0
        return {
            "engines": dict(self.engines),
            "stages_ms": {k: self.stats(v) for k, v in recent.items()},
            "fps": fps,
            "frames_in": counts[0],
            "frames_out": counts[1],
            "drops": counts[2],
            "deadline_misses": counts[3],
            "deadline_ms": self.deadline_ms,
            "reconnects": gaps[0],
            "source_gap_ms": gaps[1],
            "sink_errors": gaps[2],
            "undecodable": gaps[3],
        }

    def status_line(self) -> str:
        r = self.rolling()
        parts = [f"frame {r['frames_out']}", f"{r['fps']:.1f} fps"]
        for name, st in r["stages_ms"].items():
            if st["count"]:
                parts.append(f"{name} {st['p50']:.0f}/{st['p99']:.0f}")
        parts.append(f"drops {r['drops']}")
        if self.deadline_ms is not None:
            parts.append(f"misses {r['deadline_misses']}")
        if r["reconnects"]:
            parts.append(f"reconnects {r['reconnects']} ({r['source_gap_ms'] / 1e3:.1f} s lost)")
        if r["sink_errors"]:
            parts.append(f"sink errors {r['sink_errors']}")
        if self.sinks_skipped:
            parts.append(f"sink skips {sum(self.sinks_skipped.values())}")
        if self.sinks_stopped:  # a long run's log says so until it ends, not only once
            parts.append(f"sinks stopped {len(self.sinks_stopped)}")
        return "  ".join(parts) + "  (p50/p99 ms)"

    def format_summary(self) -> str:
        return self.format_summary_of(self.summary())

    @staticmethod
    def format_summary_of(s: dict[str, Any]) -> str:
        """The one-screen table for a summary() dict (also one read back from JSON)."""
        # in a frame's order, not in the order the threads first finished them (the engines
        # run side by side; the tracks end inside the postprocess stage)
        stages = sorted(s["stages_ms"].items(), key=lambda kv: stage_rank(kv[0]))
        rows = [*stages, (E2E, s[E2E + "_ms"])]
        engines = s.get("engines") or {}
        lines = [f"{kind:<16}{what}" for kind, what in engines.items()]
        if s.get("fit") == "pad":
            lines.append(f"{'fit':<16}pad: frames of another shape than the engines' are padded into them")
        elif s.get("fit") == "crop":
            lines.append(
                f"{'fit':<16}crop: frames of another shape than the engines' are cropped to their middle"
            )
        lines.append(f"{'stage':<16}{'count':>7}{'mean':>9}{'p50':>9}{'p90':>9}{'p99':>9}{'max':>9}  (ms)")
        for name, st in rows:
            if st["count"]:
                lines.append(
                    f"{name:<16}{st['count']:>7}"
                    + "".join(f"{st[k]:>9.1f}" for k in ("mean", "p50", "p90", "p99", "max"))
                )
        sinks_ms = s.get("sinks_ms") or {}
        if len(sinks_ms) > 1:  # which of the sinks, writing at once, is the slow one
            for uri, st in sinks_ms.items():
                if st["count"]:
                    lines.append(
                        f"sink {uri!r} writes: {st['count']} in "
                        + "  ".join(f"{k} {st[k]:.1f}" for k in ("mean", "p50", "p99", "max"))
                        + " ms"
                    )
        misses = (
            ""
            if s["deadline_ms"] is None
            else f"  deadline {s['deadline_ms']:g} ms missed {s['deadline_misses']}"
        )
        lines.append(
            f"frames in {s['frames_in']}  out {s['frames_out']}  dropped {s['drops']}  "
            + (f"sink errors {s['sink_errors']}  " if s["sink_errors"] else "")
            + (
                f"reconnects {s['reconnects']} ({s['source_gap_ms'] / 1e3:.1f} s without frames)  "
                if s.get("reconnects")
                else ""
            )
            + (f"undecodable {s['undecodable']}  " if s.get("undecodable") else "")
            + f"{s['fps']:.1f} fps{misses}"
        )
        queues = "end_to_end counts each frame's wait in the queues between the stages: "
        if s.get("pacing") == "file" and s["frames_out"]:
            hint = s.get("pace_hint") or "--realtime paces it as a camera would"
            lines.append(f"{queues}the source was read as fast as the engines took its frames ({hint})")
        elif s.get("pacing") == "source" and (s.get("read_fps") or 0) < 0.95 * (s.get("pace_fps") or 0):
            # a source keeping its rate waits for the engines that fall behind it, as a file does
            lines.append(
                f"{queues}the engines took the source's frames slower than the {s['pace_fps']:g} fps it keeps"
            )
        lines += [
            f"sink {stopped['sink']!r} stopped at frame {stopped['frame']}: {stopped['reason']}"
            for stopped in s.get("sinks_stopped", ())
        ]
        lines += [
            f"sink {uri!r} skipped {count} frame(s), slower than the stream (the others did not wait for it)"
            for uri, count in (s.get("sinks_skipped") or {}).items()
        ]
        if hung := s.get("reads_hung_s"):
            lines.append(
                f"the recording's read hung {len(hung)} time(s), {max(hung):.1f} s at most: the other "
                "cameras went on in drive order without it"
            )
        lines += [
            f"sink {unfinished['sink']!r} not finished: {unfinished['reason']}"
            for unfinished in s.get("sinks_unfinished", ())
        ]
        for uri, written in (s.get("segments") or {}).items():
            files = written["files"]
            shown = files if len(files) <= 2 else [files[0], "…", files[-1]]
            deleted = f" ({written['deleted']} oldest deleted for room)" if written["deleted"] else ""
            lines.append(f"sink {uri!r} in {len(files)} segment(s): {', '.join(shown)}{deleted}")
        return "\n".join(lines)

    def chrome_trace(self) -> dict[str, Any]:
        """Trace Event Format: one complete ('X') event per stage span, microseconds."""
        with self._lock:  # the columns are copied under the lock, turned into spans outside it
            log = self._spans.copy()
        spans = log.spans()
        tids: dict[int, int] = {}
        events = []
        for seq, stage, start, end, thread in spans:
            tid = tids.setdefault(thread, len(tids))
            events.append(
                {
                    "name": stage,
                    "cat": "edge",
                    "ph": "X",
                    "pid": 1,
                    "tid": tid,
                    "ts": (start - self._t0) / 1e3,
                    "dur": (end - start) / 1e3,
                    "args": {"frame": seq},
                }
            )
        return {"traceEvents": events, "displayTimeUnit": "ms"}

    def write_trace(self, path: str | Path) -> None:
        atomic_write_bytes(path, json.dumps(self.chrome_trace()).encode())

    def span_lines(self, **fields: Any) -> list[str]:
        """The spans kept as --latency-log's JSON lines (no newline), each beginning with ``fields``
        (a camera's name, of several); times on the perf_counter_ns clock."""
        with self._lock:  # the columns are copied under the lock, turned into spans outside it
            log = self._spans.copy()
        return [
            json.dumps({**fields, "frame": s, "stage": st, "start_ns": a, "end_ns": b})
            for s, st, a, b, _ in log.spans()
        ]

    def write_jsonl(self, path: str | Path) -> None:
        atomic_write_bytes(path, ("\n".join(self.span_lines()) + "\n").encode())
