"""The synthetic world's things: how they move."""

from __future__ import annotations

import dataclasses
import math

import pytest

from edge.data.billboards import Billboard, Braking, Crossing
from edge.data.synthetic import CAR


def test_a_crossing_moves_steadily_or_eased() -> None:
    walk = Billboard(24, 1, -4.0, 20.0, 0.6, 1.7, (0, 0, 0), crossing=Crossing(1.0, 4.0, 4.0))
    assert [walk.x_at(t) for t in (0.0, 1.0, 2.0, 3.0, 5.0, 9.0)] == [-4.0, -4.0, -2.0, 0.0, 4.0, 4.0]
    pull = Billboard(CAR, 1, 3.0, 20.0, 1.8, 1.5, (0, 0, 0), crossing=Crossing(0.0, 2.0, 1.0, eased=True))
    # (1 - cos(pi s)) / 2 of the way: slow at either end, half way at the middle
    assert pull.x_at(0.5) == pytest.approx(3.0 - 2.0 * (1 - math.cos(math.pi / 4)) / 2)
    assert pull.x_at(1.0) == pytest.approx(2.0) and pull.x_at(2.0) == pytest.approx(1.0)
    assert Billboard(CAR, 1, 3.0, 20.0, 1.8, 1.5, (0, 0, 0)).x_at(5.0) == 3.0


def test_a_braking_car_slows_steadily_to_a_stop() -> None:
    ahead = Billboard(CAR, 1, 0.0, 20.0, 1.8, 1.5, (0, 0, 0), speed=10.0, braking=Braking(1.0, 5.0))
    # 10 m/s until 1 s, then 10 t - 2.5 t^2 more until it stands after 2 s of braking
    assert [ahead.z_at(t) for t in (0.0, 1.0, 2.0, 3.0, 5.0)] == [20.0, 30.0, 37.5, 40.0, 40.0]
    oncoming = dataclasses.replace(ahead, speed=-10.0)
    assert [oncoming.z_at(t) for t in (1.0, 2.0, 4.0)] == [10.0, 2.5, 0.0]
