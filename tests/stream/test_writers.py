"""Each sink on a thread of its own (edge.stream.writers): one held up holds up no other."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge.errors import SinkStopped
from edge.latency import LatencyTracker
from edge.stream.engines import EngineSet
from edge.stream.frame import Frame, Result
from edge.stream.pipeline import Pipeline
from edge.stream.sinks import NullSink
from edge.stream.sources import open_source
from edge.stream.writers import SinkWriters

HOLD_S = 30.0  # how long a held sink waits for what it waits for before the test fails


class SeqSink(NullSink):
    """The frame numbers written, in order; ``reached`` is set at the ``count``-th, and each
    write takes ``delay_s``."""

    def __init__(self, uri: str, *, count: int = 0, delay_s: float = 0.0) -> None:
        super().__init__(uri)
        self.seqs: list[int] = []
        self.reached = threading.Event()
        self._count, self._delay_s = count, delay_s

    def write(self, image: np.ndarray, seq: int, t_capture_ns: int | None = None) -> None:
        time.sleep(self._delay_s)
        self.seqs.append(seq)
        if len(self.seqs) >= self._count:
            self.reached.set()


class HeldSink(SeqSink):
    """A sink whose first write waits for ``until``: a video on a disk that has stopped.
    ``out_when_released``: the frames ``tracker`` counted out by then."""

    def __init__(self, uri: str, until: threading.Event, tracker: LatencyTracker | None = None) -> None:
        super().__init__(uri)
        self._until, self._tracker = until, tracker
        self.out_when_released = -1

    def write(self, image: np.ndarray, seq: int, t_capture_ns: int | None = None) -> None:
        if not self.seqs:
            if not self._until.wait(timeout=HOLD_S):
                raise AssertionError(f"{self.uri}: what it waited for never came: one sink waits on another")
            self.out_when_released = self._tracker.frames_out if self._tracker is not None else -1
        super().write(image, seq, t_capture_ns)


def run_synthetic(
    engines_dir: Path, sinks: list[Any], *, frames: int, live_fps: float | None = None, **kwargs: Any
) -> tuple[Pipeline, dict[str, Any]]:
    """``frames`` synthetic frames through the tiny engines into ``sinks`` (paced like a
    camera at ``live_fps``, when given); the pipeline and its summary."""
    engines = EngineSet.from_manifest(engines_dir)
    try:
        pipe = Pipeline(
            source=open_source(f"synthetic://?size=128x256&frames={frames}"),
            engines=engines,
            sinks=sinks,
            realtime=live_fps is not None,
            fps=live_fps,
            **kwargs,
        )
        return pipe, pipe.run()
    finally:
        engines.close()


def test_a_held_sink_holds_up_no_other_and_skips_frames_in_a_live_run(
    tiny_engines: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fast = SeqSink("null://fast", count=10)
    tracker = LatencyTracker()
    # first: written one after another, it held the fast one
    held = HeldSink("null://held", fast.reached, tracker)
    pipe, s = run_synthetic(tiny_engines, [held, fast], frames=60, live_fps=30.0, tracker=tracker)
    assert fast.reached.is_set()
    # the fast sink wrote every frame that came out, in order; the held one, those it kept up with
    assert fast.seqs == sorted(fast.seqs) and len(fast.seqs) == s["frames_out"]
    assert held.seqs == sorted(held.seqs) and set(held.seqs) <= set(fast.seqs)
    skipped = s["sinks_skipped"]["null://held"]
    assert skipped > 0 and len(held.seqs) + skipped == s["frames_out"]
    assert "null://fast" not in s["sinks_skipped"]
    # the frames the fast one wrote and the held one skipped came out while it held its first:
    # one sink inside a write holds back no later frame (nor keeps them all in memory)
    assert held.out_when_released >= 5
    assert s["frames_out"] + s["drops"] == s["frames_in"] == 60
    said = capsys.readouterr().err
    assert said.count("warning: sink 'null://held' is slower than the stream") == 1
    assert f"sink 'null://held' skipped {skipped} frame(s)" in pipe.tracker.format_summary()


def test_a_file_run_gives_every_frame_to_every_sink_and_the_slowest_sets_the_rate(tiny_engines: Path) -> None:
    slow, fast = SeqSink("null://slow", delay_s=0.05), SeqSink("null://fast")
    done_when: list[tuple[int, list[int], list[int]]] = []

    def on_result(result: Result) -> None:  # what each sink had written when the frame was done
        done_when.append((result.frame.seq, list(slow.seqs), list(fast.seqs)))

    pipe, s = run_synthetic(tiny_engines, [slow, fast], frames=12, on_result=on_result)
    assert slow.seqs == fast.seqs == list(range(12))
    assert s["frames_out"] == 12 and s["drops"] == 0 and s["sinks_skipped"] == {}
    # each frame is done, in order, once every sink has written it
    assert [seq for seq, _, _ in done_when] == list(range(12))
    assert all(seq in slow_seen and seq in fast_seen for seq, slow_seen, fast_seen in done_when)
    assert s["stages_ms"]["sink"]["count"] == 12 and s["end_to_end_ms"]["count"] == 12
    # each sink's own writes, so the slow one can be told: the two wrote at once
    writes = s["sinks_ms"]
    assert writes["null://slow"]["count"] == writes["null://fast"]["count"] == 12
    assert writes["null://slow"]["p50"] >= 50.0 > writes["null://fast"]["p50"]
    # the sink stage is a frame's longest write, as the two wrote at once (not the queue's wait)
    assert s["stages_ms"]["sink"]["p50"] == pytest.approx(writes["null://slow"]["p50"], abs=5.0)
    table = pipe.tracker.format_summary()
    assert "sink 'null://slow' writes: 12 in mean " in table and "sink 'null://fast' writes: 12 in" in table


class JitterSink(SeqSink):
    """Each write takes a random 0-4 ms: two of them fall behind each other in turn."""

    def __init__(self, uri: str, seed: int) -> None:
        super().__init__(uri)
        self._rng = random.Random(seed)

    def write(self, image: np.ndarray, seq: int, t_capture_ns: int | None = None) -> None:
        time.sleep(self._rng.uniform(0.0, 0.004))
        super().write(image, seq, t_capture_ns)


def frame_result(seq: int) -> Result:
    image = np.zeros((2, 2, 3), np.uint8)
    return Result(frame=Frame(seq=seq, t_capture_ns=time.perf_counter_ns(), image=image))


def test_live_sinks_that_fall_behind_in_turn_lose_no_frame_between_them() -> None:
    """A live sink skips a frame only when another has taken it: every frame is written by
    one sink at least, and each is done once."""
    a, b = JitterSink("null://a", seed=1), JitterSink("null://b", seed=2)
    tracker = LatencyTracker()
    done: list[int] = []
    stop = threading.Event()
    writers = SinkWriters(
        [a, b],
        tracker=tracker,
        live=True,
        depth=2,
        stopping=stop,
        stop=stop.set,
        on_done=lambda result: done.append(result.frame.seq),
        on_error=pytest.fail,
    )
    writers.start()
    for seq in range(300):
        assert writers.deliver(frame_result(seq))
    writers.close()
    # each done once (a frame one sink skipped may be done before the one it was writing)
    assert sorted(done) == list(range(300)) and tracker.frames_out == 300 and tracker.drops == 0
    assert sorted(set(a.seqs) | set(b.seqs)) == list(range(300))
    assert a.seqs == sorted(a.seqs) and b.seqs == sorted(b.seqs)
    skipped = tracker.sinks_skipped
    assert skipped.get("null://a", 0) + len(a.seqs) == 300 == skipped.get("null://b", 0) + len(b.seqs)
    assert skipped, "delivered as fast as it can be, one sink or the other fell behind"


class FullDiskSink(SeqSink):
    """A sink whose disk is full from the first frame: it stops for good."""

    def write(self, image: np.ndarray, seq: int, t_capture_ns: int | None = None) -> None:
        raise SinkStopped("the disk is full")


def test_a_sink_that_stopped_for_good_does_not_make_the_others_skip(tiny_engines: Path) -> None:
    """A stopped sink takes every frame at once: the run waits for the one still writing,
    as for a single sink, instead of having it skip."""
    slow = SeqSink("null://slow", delay_s=0.08)  # slower than the source's 30 fps
    _, s = run_synthetic(tiny_engines, [FullDiskSink("null://full"), slow], frames=30, live_fps=30.0)
    assert [stopped["sink"] for stopped in s["sinks_stopped"]] == ["null://full"]
    assert s["sinks_skipped"] == {} and s["drops"] > 0  # the capture dropped what the slow one could not take
    assert slow.seqs == sorted(slow.seqs) and len(slow.seqs) == s["frames_out"]


class BrokenSink(NullSink):
    """A sink with a bug: not a failed write, which the stream goes on after."""

    def write(self, image: np.ndarray, seq: int, t_capture_ns: int | None = None) -> None:
        if seq == 3:
            raise RuntimeError("a bug in a sink")
        super().write(image, seq)


class ClosedSink(SeqSink):
    def __init__(self, uri: str) -> None:
        super().__init__(uri)
        self.closed = False

    def close(self) -> None:
        self.closed = True


def test_a_sink_that_raises_a_bug_ends_the_run_and_the_others_are_closed(tiny_engines: Path) -> None:
    other = ClosedSink("null://other")
    with pytest.raises(RuntimeError, match="a bug in a sink"):
        run_synthetic(tiny_engines, [BrokenSink("null://broken"), other], frames=40)
    assert other.closed and other.seqs == sorted(other.seqs) and len(other.seqs) < 40
