"""A stage's times for a run's summary, in memory that stops growing.

A camera run on a vehicle lasts hours or days. Kept whole, a stage's times grow by 8 bytes
a frame: at 30 fps, seven stages take 145 MB a day and 1 GB a week, on a Jetson whose 8 GB
the GPU shares. So :class:`Samples` keeps the times exactly while there are at most
``exact`` of them (about 9.7 hours at 30 fps by default), then folds them into counts over
log-spaced bins, each 0.1% wide: percentiles are then within 0.05% of a time in the bin of
the exact order statistic, and the count, mean and max stay exact.
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_left
from collections.abc import Sequence

import numpy as np

EXACT = 1 << 20  # times kept exactly before folding: 8 MiB a stage
BASE = 1.001  # each bin's upper edge over its lower
LOW_MS = 1e-4  # 100 ns: the first bin holds everything below
HIGH_MS = 1e7  # 2.8 hours: the last bin holds everything above
BINS = math.ceil(math.log(HIGH_MS / LOW_MS) / math.log(BASE)) + 2  # ~25,000: 200 KB of counts
_LOG_BASE = math.log(BASE)


def percentiles(values: Sequence[float] | np.ndarray, qs: Sequence[float]) -> list[float]:
    """numpy's (linear) percentiles ``qs`` of ``values``."""
    return [float(p) for p in np.percentile(np.asarray(values, dtype=np.float64), qs)]


def bin_of(ms: np.ndarray) -> np.ndarray:
    """The bin of each time: 0 below LOW_MS, then one per factor BASE, the last above HIGH_MS."""
    with np.errstate(divide="ignore", invalid="ignore"):
        index = np.floor(np.log(np.maximum(ms, LOW_MS) / LOW_MS) / _LOG_BASE) + 1
    index[~(ms >= LOW_MS)] = 0  # below the first edge, and NaN
    return np.minimum(index, BINS - 1).astype(np.int64)


def bin_of_one(ms: float) -> int:
    """bin_of for one time, without numpy's per-call cost (every frame of a long run)."""
    if not ms >= LOW_MS:
        return 0
    return min(math.floor(math.log(ms / LOW_MS) / _LOG_BASE) + 1, BINS - 1)


def bin_value(index: np.ndarray) -> np.ndarray:
    """A bin's time: its geometric middle, within half a bin (0.05%) of all it holds."""
    return np.where(index == 0, 0.0, LOW_MS * BASE ** (index - 0.5))


class Samples:
    """One stage's times (ms): exact while at most ``exact``, then binned (see the module)."""

    def __init__(self, *, exact: int = EXACT) -> None:
        if exact < 1:
            raise ValueError(f"exact is {exact}; expected at least 1 time kept exactly")
        self._exact = exact
        self._values: array[float] | None = array("d")
        self._counts: np.ndarray | None = None  # per bin, once folded
        self.count = 0
        self.total = 0.0
        self.max = -math.inf

    @classmethod
    def of(cls, values: Sequence[float]) -> Samples:
        """``values`` kept exactly, without appending them one by one."""
        samples = cls(exact=max(len(values), 1))
        assert samples._values is not None
        samples._values.extend(values)
        held = np.frombuffer(samples._values, dtype=np.float64)
        samples.count = held.size
        samples.total = float(held.sum()) if held.size else 0.0
        samples.max = float(held.max()) if held.size else -math.inf
        return samples

    @property
    def exact(self) -> bool:
        """Whether every time is still kept as it was measured."""
        return self._values is not None

    def append(self, ms: float) -> None:
        self.count += 1
        self.total += ms
        self.max = ms if ms > self.max else self.max
        if self._values is not None:
            self._values.append(ms)
            if len(self._values) > self._exact:
                self._fold()
        else:
            assert self._counts is not None
            self._counts[bin_of_one(ms)] += 1

    def _fold(self) -> None:
        assert self._values is not None
        self._counts = np.bincount(bin_of(np.frombuffer(self._values, dtype=np.float64)), minlength=BINS)
        self._values = None  # the 8 MiB go back

    def values(self) -> np.ndarray:
        """Every time, in the order measured; ValueError once they were folded."""
        if self._values is None:
            raise ValueError(f"the {self.count} times were folded into bins after {self._exact}")
        return np.frombuffer(self._values, dtype=np.float64).copy()

    def percentiles(self, qs: Sequence[float]) -> list[float]:
        """The percentiles ``qs``: numpy's while exact, then from the bins (numpy's linear
        interpolation between the bins of the two order statistics around each rank)."""
        if self._values is not None:
            return percentiles(np.frombuffer(self._values, dtype=np.float64), qs)
        assert self._counts is not None
        ends = np.cumsum(self._counts)  # order statistics 0..ends[i]-1 are in bins <= i
        out = []
        for q in qs:
            rank = q / 100 * (self.count - 1)
            below, above = math.floor(rank), math.ceil(rank)
            lo, hi = bin_value(np.searchsorted(ends, [below, above], side="right"))
            out.append(min(float(lo + (hi - lo) * (rank - below)), self.max))
        return out

    def stats(self) -> dict[str, float]:
        """count, mean, p50, p90, p99 and max, as LatencyTracker.stats gives them."""
        if not self.count:
            return {"count": 0}
        p50, p90, p99 = self.percentiles([50, 90, 99])
        return {
            "count": self.count,
            "mean": self.total / self.count,
            "p50": p50,
            "p90": p90,
            "p99": p99,
            "max": self.max,
        }


# a scraper's buckets (seconds): 1 ms to 10 s, finest where a frame's stages fall
BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_BUCKETS_MS = tuple(b * 1e3 for b in BUCKETS_S)


class Buckets:
    """One stage's times counted into BUCKETS_S, over the whole run: a Prometheus histogram,
    whose cumulative counts a scraper can rate over any interval and add across runs (the
    rolling window's percentiles can be neither)."""

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS_S) + 1)  # the last: above every bound
        self.count = 0
        self.total_ms = 0.0

    def add(self, ms: float) -> None:
        self.counts[bisect_left(_BUCKETS_MS, ms)] += 1  # a time on a bound is in its bucket (le)
        self.count += 1
        self.total_ms += ms

    def cumulative(self) -> list[tuple[float, int]]:
        """(upper bound in seconds, times at or below it), +inf last."""
        out, running = [], 0
        for bound, n in zip((*BUCKETS_S, math.inf), self.counts, strict=True):
            running += n
            out.append((bound, running))
        return out
