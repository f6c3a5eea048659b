from __future__ import annotations

import pytest

from edge.postprocess.slopes import closing_interval, closing_speed, slope_interval, theil_sen_slope


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


def test_sens_interval_golden_values() -> None:
    """Five samples, one wild: the ten slopes in order are -44, -1 seven times, 13.33, 20.5,
    42. Kendall's S spreads by sqrt(5 x 4 x 15 / 18) = 4.08; at z 1.96, C = 8.0 and the
    bounds are the slopes at places (10 - 8) / 2 = 1 and (10 + 8) / 2 + 1 = 10: all of them.
    At z 1, C = 4.08: places 2.96 and 8.04, rounded 3 and 8: -1 and 13.33. At z 0 both are
    the middle, -1."""
    times, values = [0, 1, 2, 3, 4], [10, 9, 8, 50, 6]
    assert slope_interval(times, values, z=1.96) == (-44.0, 42.0)
    assert slope_interval(times, values, z=1.0) == pytest.approx((-1.0, 40 / 3))
    assert slope_interval(times, values, z=0.0) == (-1.0, -1.0)
    # samples on a line: every slope is its slope, at any confidence
    assert slope_interval([0, 1, 2, 3], [1, 3, 5, 7], z=3.0) == (2.0, 2.0)
    assert slope_interval([1.0, 1.0], [3.0, 4.0], z=1.96) is None


def test_fewer_samples_give_a_wider_interval() -> None:
    """The same scatter about a slope of -8: 17 samples pin it closer than 6 do."""
    wobble = [0.4, -0.3, 0.1, -0.5, 0.2, 0.3, -0.1, -0.4, 0.5, 0.0, -0.2, 0.1, 0.3, -0.3, 0.2, -0.1, 0.4]
    samples = [(k / 16, 30 - 8 * k / 16 + wobble[k]) for k in range(17)]
    few = closing_interval(samples[:6], window_s=1.0, min_samples=5, z=1.96)
    many = closing_interval(samples, window_s=1.0, min_samples=5, z=1.96)
    assert few is not None and many is not None
    assert few[0] < many[0] <= 8.0 <= many[1] < few[1]
    # closing speeds, not slopes: minus the distances' slope interval, high and low swapped
    slope = slope_interval([t for t, _ in samples], [d for _, d in samples], z=1.96)
    assert slope is not None and many == (-slope[1], -slope[0])
    assert closing_interval(samples[:4], window_s=1.0, min_samples=5, z=1.96) is None
