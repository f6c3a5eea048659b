from __future__ import annotations

import math
import time

import numpy as np
import pytest

from edge.latency import LatencyTracker
from edge.latency.samples import (
    BASE,
    BINS,
    BUCKETS_S,
    HIGH_MS,
    LOW_MS,
    Buckets,
    Samples,
    bin_of,
    bin_of_one,
    bin_value,
)

QS = [0, 1, 50, 90, 99, 99.9, 100]


def _times(n: int, seed: int = 0) -> np.ndarray:
    """Stage-like times: mostly 20-80 ms, a long tail, a few stalls."""
    rng = np.random.default_rng(seed)
    times = rng.lognormal(mean=math.log(40), sigma=0.4, size=n)
    times[rng.choice(n, n // 500, replace=False)] *= 30
    return times


def test_bins_golden_values() -> None:
    middles = [LOW_MS * BASE ** (i - 0.5) for i in (1, 2, 1000)]
    assert bin_of(np.array([0.0, -1.0, np.nan, LOW_MS / 2, *middles, 1e9])).tolist() == [
        0,
        0,
        0,
        0,
        1,
        2,
        1000,
        BINS - 1,
    ]
    np.testing.assert_allclose(bin_value(np.array([0, 1, 2, 1000])), [0.0, *middles], rtol=1e-12)
    # every time is within half a bin of its bin's value, up to the last edge
    times = np.geomspace(LOW_MS, HIGH_MS, 100_000)
    assert np.all(np.abs(bin_value(bin_of(times)) / times - 1) <= math.sqrt(BASE) - 1 + 1e-12)


def test_one_time_goes_to_the_bin_many_do() -> None:
    times = np.concatenate([_times(20_000), [0.0, -3.0, np.nan, 1e-9, 1e12, LOW_MS, HIGH_MS]])
    edges = LOW_MS * BASE ** np.arange(0, 300)  # exactly on edges, where rounding could differ
    for t in (*times, *edges[1:]):
        one, many = bin_of_one(float(t)), int(bin_of(np.array([t]))[0])
        # on an edge the two roundings may pick either side of it: both are within a bin
        assert abs(one - many) <= (1 if t in edges else 0), t


def test_exact_samples_are_numpys_percentiles() -> None:
    times = _times(5000)
    samples = Samples(exact=5000)
    for t in times:
        samples.append(float(t))
    assert samples.exact
    np.testing.assert_array_equal(samples.values(), times)
    assert samples.percentiles(QS) == [float(p) for p in np.percentile(times, QS)]
    assert samples.stats() == pytest.approx(LatencyTracker.stats(times.tolist()), rel=1e-12)


def test_folded_samples_keep_count_mean_max_and_close_percentiles() -> None:
    times = _times(200_000, seed=1)
    samples = Samples(exact=10_000)
    for t in times:
        samples.append(float(t))
    assert not samples.exact
    with pytest.raises(ValueError, match="the 200000 times were folded into bins after 10000"):
        samples.values()
    stats = samples.stats()
    assert stats["count"] == 200_000 and stats["max"] == times.max()
    assert stats["mean"] == pytest.approx(times.mean(), rel=1e-12)
    # within a bin (0.1%) of numpy's on every time
    np.testing.assert_allclose(samples.percentiles(QS[1:-1]), np.percentile(times, QS[1:-1]), rtol=1e-3)
    assert samples.percentiles([100]) == [times.max()]


def test_a_long_run_holds_fixed_memory() -> None:
    samples = Samples(exact=1000)
    for t in _times(3000):
        samples.append(float(t))
    held = samples._counts
    assert held is not None and held.nbytes == BINS * 8 < 256 << 10
    for t in _times(3000, seed=2):
        samples.append(float(t))
    assert samples._counts is held and samples._values is None and int(held.sum()) == 6000
    with pytest.raises(ValueError, match="expected at least 1"):
        Samples(exact=0)


def test_the_tracker_summarises_a_folded_run() -> None:
    tracker = LatencyTracker(exact=100)
    times = _times(1000, seed=3)
    for seq, ms in enumerate(times):
        tracker.record(seq, "panoptic", 0, int(ms * 1e6))
    stats = tracker.summary()["stages_ms"]["panoptic"]
    assert stats["count"] == 1000 and stats["max"] == pytest.approx(times.max(), rel=1e-9)
    assert stats["p99"] == pytest.approx(np.percentile(times, 99), rel=1e-3)
    with pytest.raises(ValueError, match="folded"):
        tracker.stage_times("panoptic")
    short = LatencyTracker()
    short.record(0, "sink", 0, 2_000_000)
    assert short.stage_times("sink").tolist() == [2.0] and short.stage_times("end_to_end").size == 0


def test_buckets_count_each_time_at_or_below_its_bound() -> None:
    b = Buckets()
    for ms in (0.2, 1.0, 1.0001, 49.9, 50.0, 50.1, 9_999.0, 10_000.0, 12_000.0):
        b.add(ms)
    got = dict(b.cumulative())
    # 1 ms lies on the first bound (le: at or below), 1.0001 ms past it
    assert got[0.001] == 2 and got[0.0025] == 3 and got[0.025] == 3
    assert got[0.05] == 5 and got[0.075] == 6  # 50 ms on its bound, 50.1 ms in the next
    assert got[10.0] == 8 and got[math.inf] == 9 == b.count
    assert [n for _, n in b.cumulative()] == sorted(n for _, n in b.cumulative())
    assert b.total_ms == pytest.approx(
        0.2 + 1.0 + 1.0001 + 49.9 + 50.0 + 50.1 + 9_999.0 + 10_000.0 + 12_000.0
    )
    assert [bound for bound, _ in b.cumulative()] == [*BUCKETS_S, math.inf]


def test_the_tracker_keeps_a_histogram_a_stage_and_end_to_end() -> None:
    tracker = LatencyTracker()
    tracker.record(0, "panoptic", 0, 30_000_000)  # 30 ms
    tracker.record(1, "panoptic", 0, 120_000_000)
    tracker.frame_done(0, time.perf_counter_ns() - 200_000_000)
    h = tracker.histograms()
    assert set(h) == {"panoptic", "end_to_end"}
    assert h["panoptic"]["count"] == 2 and h["panoptic"]["sum_s"] == pytest.approx(0.15)
    panoptic = dict(h["panoptic"]["buckets"])
    assert panoptic[0.025] == 0 and panoptic[0.05] == 1 and panoptic[0.1] == 1 and panoptic[0.15] == 2
    assert dict(h["end_to_end"]["buckets"])[0.15] == 0 and h["end_to_end"]["count"] == 1
