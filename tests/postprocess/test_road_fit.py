"""The road's plane fitted to one frame's depth map (edge.postprocess.road_fit)."""

from __future__ import annotations

import numpy as np
import pytest

from edge.postprocess.road_fit import FAR_M, MAX_ROWS, NEAR_M, ROAD_TRAIN_ID, fit_road

CAR = 13
HORIZON, REACH = 0.45, 2.64  # the synthetic camera: 1.2 m up, focal length 2.2 x the height


def flat_road(rows: int = 128, cols: int = 256, horizon: float = HORIZON, reach: float = REACH) -> tuple:
    """Train ids and depth of a picture whose every row below the horizon is road, each at
    the distance the plane puts it: reach / (row's centre - horizon); sky above, far off."""
    centres = (np.arange(rows) + 0.5) / rows
    below = centres > horizon
    distance = np.where(below, reach / np.maximum(centres - horizon, 1e-9), 1000.0)
    depth = np.repeat(distance[:, None], cols, axis=1).astype(np.float32)
    semantic = np.where(below[:, None], ROAD_TRAIN_ID, 10).repeat(cols, axis=1).astype(np.uint8)
    return semantic, depth


def test_a_flat_roads_plane_golden() -> None:
    """An exact plane is given back; only rows within NEAR_M..FAR_M count (on 128 rows:
    rows 66 (37.97 m) down to 127 (4.83 m), 62 of them)."""
    semantic, depth = flat_road()
    fit = fit_road(semantic, depth)
    assert fit is not None
    assert fit.horizon == pytest.approx(HORIZON, abs=1e-6) and fit.reach == pytest.approx(REACH, rel=1e-5)
    in_range = ((depth[:, 0] > NEAR_M) & (depth[:, 0] < FAR_M)).sum()
    assert fit.rows == in_range == 62
    # a taller picture: every k-th row of it, up to MAX_ROWS of them
    tall = fit_road(*flat_road(rows=512, cols=64, horizon=0.5, reach=3.0))
    assert tall is not None and tall.rows <= MAX_ROWS
    assert tall.horizon == pytest.approx(0.5, abs=1e-6) and tall.reach == pytest.approx(3.0, rel=1e-5)


def test_things_on_the_road_and_a_minority_of_wrong_rows_do_not_move_it() -> None:
    """Pixels the panoptic engine calls a car are not the road's whatever their depth; rows
    whose road reads wrong (a shadow the engine puts at half the distance, a fifth of
    them) are outvoted by the others (Theil-Sen)."""
    semantic, depth = flat_road()
    semantic[70:120, 100:180] = CAR
    depth[70:120, 100:180] = 3.0
    wrong = np.arange(70, 128, 5)  # 12 of the 62 rows
    depth[wrong] *= 0.5
    fit = fit_road(semantic, depth)
    assert fit is not None
    assert fit.horizon == pytest.approx(HORIZON, abs=0.005) and fit.reach == pytest.approx(REACH, rel=0.02)


def test_no_plane_where_the_road_is_not_one() -> None:
    semantic, depth = flat_road()
    few = semantic.copy()
    few[:120] = 10  # road on the bottom 8 rows alone
    assert fit_road(few, depth) is None
    # a "road" nearer towards the top of the picture: no ground falls away like that
    assert fit_road(semantic, depth[::-1].copy()) is None
    # no road at all
    assert fit_road(np.full_like(semantic, 10), depth) is None
    with pytest.raises(ValueError, match=r"semantic \(128, 256\) and depth \(64, 256\)"):
        fit_road(semantic, depth[:64])


def test_a_road_the_depth_map_bends_is_said_to_bend() -> None:
    """The road beyond 10 m read nearer, 1 / d + 0.02 (as the tiny depth engine at 128 rows
    reads it): the far rows' line puts the horizon 0.02 x 2.64 = 0.053 higher than the near
    rows' line, where a plane's halves agree to rounding. A depth map that is off by one
    scale everywhere is still a plane: only its reach moves."""
    semantic, depth = flat_road()
    plane = fit_road(semantic, depth)
    assert plane is not None and plane.bend is not None and plane.bend < 1e-6
    far = (depth > 10.0) & (depth < 100.0)
    bent_depth = np.where(far, 1.0 / (1.0 / depth + 0.02), depth).astype(np.float32)
    bent = fit_road(semantic, bent_depth)
    assert bent is not None and bent.bend == pytest.approx(0.02 * REACH, rel=0.1)
    scaled = fit_road(semantic, depth * 1.3)
    assert scaled is not None and scaled.bend is not None and scaled.bend < 1e-6
    assert scaled.horizon == pytest.approx(HORIZON, abs=1e-6) and scaled.reach == pytest.approx(REACH * 1.3)
