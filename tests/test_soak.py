"""Long runs: no thread or descriptor leak, bounded span log (short, default suite), and
the 20,000-frame soak (slow: pytest -m slow)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.soak import soak
from edge.latency import LatencyTracker


def test_span_log_is_bounded_but_summary_counts_everything() -> None:
    tr = LatencyTracker(max_spans=50)
    for seq in range(100):
        tr.record(seq, "stage", 0, 1_000_000)
    assert len(tr.chrome_trace()["traceEvents"]) == 50 and tr.spans_dropped == 50
    assert tr.summary()["stages_ms"]["stage"]["count"] == 100


def test_short_soak_leaks_no_threads_or_descriptors(tiny_engines: Path) -> None:
    soak(tiny_engines, 20, 5)  # warm: lazy imports and first allocations
    r = soak(tiny_engines, 200, 50)
    assert r["frames"] == 200
    assert r["threads"]["after"] == r["threads"]["before"]
    assert r["fds"]["after"] == r["fds"]["before"]


@pytest.mark.slow
def test_soak_20000_frames(tiny_engines: Path) -> None:
    r = soak(tiny_engines, 20_000, 1000)
    assert r["frames"] == 20_000
    assert r["rss_growth"] <= 0.05, r
    assert r["threads"]["after"] == r["threads"]["before"] and r["fds"]["after"] == r["fds"]["before"]
