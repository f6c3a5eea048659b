from __future__ import annotations

import pytest

from edge.postprocess.slopes import closing_speed, theil_sen_slope


def test_theil_sen_ignores_a_wild_sample() -> None:
    # slopes of the ten pairs: -1 seven times, 13.33, 20.5, 42, -44: the median is -1,
    # where least squares would give +4.2
    assert theil_sen_slope([0, 1, 2, 3, 4], [10, 9, 8, 50, 6]) == -1.0
    assert theil_sen_slope([1.0, 1.0], [3.0, 4.0]) is None  # no two times differ
    assert theil_sen_slope([2.0], [1.0]) is None


def test_closing_speed_needs_enough_samples_over_enough_time() -> None:
    samples = [(t / 10, 30 - 8 * t / 10) for t in range(12)]  # 8 m/s nearer, at 10 Hz
    assert closing_speed(samples, window_s=1.0, min_samples=5) == pytest.approx(8.0)
    # only the last second counts: the samples before it drew away
    early = [(t / 10 - 2.0, 10 + t / 10) for t in range(10)]
    assert closing_speed(early + samples, window_s=1.0, min_samples=5) == pytest.approx(8.0)
    assert closing_speed(samples[:4], window_s=1.0, min_samples=5) is None
    assert closing_speed(samples[:3], window_s=1.0, min_samples=3) is None  # 0.2 s < a quarter second
    assert closing_speed([], window_s=1.0, min_samples=2) is None
