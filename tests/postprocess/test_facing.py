"""Which way a camera looks (edge.postprocess.facing): golden values of where its things are
on the vehicle and how they move across it, for the four names and for corner yaws."""

from __future__ import annotations

import math

import pytest

from edge.errors import ConfigError
from edge.postprocess.drift import lateral_drift
from edge.postprocess.facing import check_facing, moving_aside, path_side, placed, yaw_deg


@pytest.mark.parametrize(
    ("facing", "lateral", "ahead"),
    [
        # a thing 20 m down the camera's axis and 2 m right of it
        ("front", 2.0, 20.0),
        ("rear", -2.0, -20.0),
        ("left", -20.0, 2.0),
        ("right", 20.0, -2.0),
        (90.0, -20.0, 2.0),
        (45.0, (2.0 - 20.0) * math.sqrt(0.5), (20.0 + 2.0) * math.sqrt(0.5)),
        (-135.0, (-2.0 + 20.0) * math.sqrt(0.5), (-20.0 - 2.0) * math.sqrt(0.5)),
    ],
)
def test_a_things_place_on_the_vehicle(facing: str | float, lateral: float, ahead: float) -> None:
    assert placed(facing, 2.0, 20.0) == pytest.approx((lateral, ahead))


def test_the_four_names_place_exactly() -> None:
    """Their cosines and sines are 0 and 1 exactly: no 1e-16 creeps into a rounded output."""
    assert placed("left", 2.0, 20.0) == (-20.0, 2.0)
    assert placed("rear", 2.0, 20.0) == (-2.0, -20.0)
    assert moving_aside("right", 1.0, 5.0) == -5.0


@pytest.mark.parametrize(
    ("facing", "side"),
    [
        ("front", "front"),
        (45.0, "front"),
        (-45.0, "front"),
        (46.0, None),
        ("left", None),
        (-134.0, None),
        (135.0, "rear"),
        ("rear", "rear"),
        (180.0, "rear"),
    ],
)
def test_a_camera_within_45_degrees_of_ahead_or_behind_sees_the_path(
    facing: str | float, side: str | None
) -> None:
    assert path_side(facing) == side


def test_facings_it_cannot_take_are_refused() -> None:
    assert check_facing(-179.5) == -179.5 and check_facing(180) == 180.0 and check_facing("rear") == "rear"
    assert yaw_deg("right") == -90.0
    for bad in ("up", -180.0, 181.0, float("nan"), float("inf"), True, None):
        with pytest.raises(ConfigError, match="facing must be one of front, rear, left, right or a yaw"):
            check_facing(bad)


def test_a_corner_camera_sees_a_thing_closing_down_its_axis_move_across_the_vehicle() -> None:
    """A thing on the camera's axis (bearing 0) coming 5 m/s closer: nothing across the axis,
    so a front camera sees it keep its place across the vehicle, one turned 30 degrees left
    sees it move 2.5 m/s right (5 sin 30), one looking left sees 5 m/s right, away."""
    times = [i / 10 for i in range(10)]
    bearings = [(t, 0.0) for t in times]
    ranges = [(t, 20.0 - 5.0 * t) for t in times]
    sizes = [(t, 0.0, 0.0, False, False) for t in times]

    def speed(facing: str | float) -> float | None:
        return lateral_drift(
            bearings,
            ranges,
            sizes,
            closing_mps=None,
            lateral=0.0,
            gap=None,
            facing=facing,
            window_s=1.0,
            min_samples=5,
            min_lateral_mps=1.0,
            confidence=0.95,
        )[0]

    assert speed("front") == pytest.approx(0.0, abs=1e-9)
    assert speed(30.0) == pytest.approx(2.5)
    assert speed("left") == pytest.approx(5.0)
