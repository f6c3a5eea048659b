"""Robust slopes of a few timed samples: how fast a box grows, a distance shrinks, a bearing
turns (edge.postprocess.tracks)."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np


def theil_sen_slope(times: Sequence[float], values: Sequence[float]) -> float | None:
    """The median of the slopes between every two samples at different times (None when
    no two are): a line's slope that a minority of wild samples cannot move."""
    t, v = np.asarray(times, float), np.asarray(values, float)
    i, j = _pairs(len(t))
    dt = t[j] - t[i]
    keep = dt > 1e-9
    if not keep.any():
        return None
    return _median((v[j] - v[i])[keep] / dt[keep])


@functools.cache
def _pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
    i, j = np.triu_indices(n, k=1)
    return i, j


def _median(x: np.ndarray) -> float:
    """np.median of a small 1-D array, to the bit, without its overhead (a tenth of the time)."""
    a = np.sort(x)
    n = len(a)
    return float((a[n // 2] + a[(n - 1) // 2]) / 2)


def closing_speed(
    samples: Sequence[tuple[float, float]], *, window_s: float, min_samples: int
) -> float | None:
    """How fast the distance shrinks (m/s) over the (time, distance) ``samples`` of the
    last ``window_s`` seconds: minus their Theil–Sen slope; None with fewer than
    ``min_samples`` of them, or spanning less than a quarter of the window."""
    if not samples:
        return None
    newest = samples[-1][0]
    recent = [(t, d) for t, d in samples if newest - t <= window_s]
    if len(recent) < min_samples or newest - recent[0][0] < window_s / 4:
        return None
    slope = theil_sen_slope([t for t, _ in recent], [d for _, d in recent])
    return None if slope is None else -slope
