"""Robust slopes of a few timed samples: how fast a box grows, a distance shrinks, a bearing
turns (edge.postprocess.tracks)."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np


def theil_sen_slope(times: Sequence[float], values: Sequence[float]) -> float | None:
    """The median of the slopes between every two samples at different times (None when
    no two are): a line's slope that a minority of wild samples cannot move."""
    slopes = _pair_slopes(times, values)
    return None if slopes is None else _median(slopes)


def _pair_slopes(times: Sequence[float], values: Sequence[float]) -> np.ndarray | None:
    """The slopes between every two samples at different times; None where no two are."""
    t, v = np.asarray(times, float), np.asarray(values, float)
    i, j = _pairs(len(t))
    dt = t[j] - t[i]
    keep = dt > 1e-9
    if not keep.any():
        return None
    return (v[j] - v[i])[keep] / dt[keep]


@functools.cache
def _pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
    i, j = np.triu_indices(n, k=1)
    return i, j


def _median(x: np.ndarray) -> float:
    """np.median of a small 1-D array, to the bit, without its overhead (a tenth of the time)."""
    a = np.sort(x)
    n = len(a)
    return float((a[n // 2] + a[(n - 1) // 2]) / 2)


def slope_interval(
    times: Sequence[float], values: Sequence[float], *, z: float
) -> tuple[float, float] | None:
    """Sen's interval of the Theil–Sen slope (theil_sen_slope): of the N slopes between every
    two samples, in order, those C / 2 places below and above the middle, C = z x
    sqrt(n (n - 1) (2n + 5) / 18) for n samples (the spread of Kendall's S; ties not allowed
    for). With z 1.96 it holds the true slope 95% of the time where the samples scatter
    independently about a line (Sen 1968): few samples, or samples far off a line, give a
    wide one. None when no two samples are at different times."""
    pairs = _pair_slopes(times, values)
    if pairs is None:
        return None
    slopes = np.sort(pairs)
    n, last = len(times), len(slopes) - 1
    c = z * math.sqrt(n * (n - 1) * (2 * n + 5) / 18)
    # Sen's lower bound is the slope at place (N - C) / 2 counting from one, the upper at (N + C) / 2 + 1
    lo = min(max(math.floor((len(slopes) - c) / 2 + 0.5) - 1, 0), last)
    hi = min(max(math.floor((len(slopes) + c) / 2 + 0.5), 0), last)
    return float(slopes[lo]), float(slopes[hi])


def _recent(
    samples: Sequence[tuple[float, float]], window_s: float, min_samples: int
) -> list[tuple[float, float]] | None:
    """The samples of the last ``window_s``; None with fewer than ``min_samples`` of them, or
    spanning less than a quarter of it."""
    if not samples:
        return None
    newest = samples[-1][0]
    recent = [(t, d) for t, d in samples if newest - t <= window_s]
    if len(recent) < min_samples or newest - recent[0][0] < window_s / 4:
        return None
    return recent


def closing_speed(
    samples: Sequence[tuple[float, float]], *, window_s: float, min_samples: int
) -> float | None:
    """How fast the distance shrinks (m/s) over the (time, distance) ``samples`` of the
    last ``window_s`` seconds: minus their Theil–Sen slope; None with fewer than
    ``min_samples`` of them, or spanning less than a quarter of the window."""
    recent = _recent(samples, window_s, min_samples)
    if recent is None:
        return None
    slope = theil_sen_slope([t for t, _ in recent], [d for _, d in recent])
    return None if slope is None else -slope


def closing_interval(
    samples: Sequence[tuple[float, float]], *, window_s: float, min_samples: int, z: float
) -> tuple[float, float] | None:
    """closing_speed's interval, (low, high): minus Sen's interval of the same samples'
    slope (slope_interval, ``z``); None where closing_speed is."""
    recent = _recent(samples, window_s, min_samples)
    if recent is None:
        return None
    bounds = slope_interval([t for t, _ in recent], [d for _, d in recent], z=z)
    return None if bounds is None else (-bounds[1], -bounds[0])
