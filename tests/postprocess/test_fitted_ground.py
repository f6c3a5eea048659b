"""The tracker over a road plane fitted to the depth map (FittedGround), as it moves."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest

from edge.postprocess.ground import GroundPlane
from edge.postprocess.panoptic import Instance
from edge.postprocess.road_fit import RoadFit
from edge.postprocess.tracks import ObjectTracker

# the synthetic camera at 256x512: 1.2 m up, horizon 0.45 of the height, focal length 1.1 x
# the width (563.2 px); the road's row below the horizon times its distance: 2.2 x 1.2 = 2.64
HFOV = float(np.degrees(2 * np.arctan(1 / 2.2)))
F = 1.1 * 512


def person(d: float, x: float = -7.0) -> Instance:
    """A person 0.6 m wide and 1.7 m tall, standing ``x`` m right of the axis ``d`` m out."""
    u1, u2 = 256 + F * (x - 0.3) / d, 256 + F * (x + 0.3) / d
    v1, v2 = 115.2 + F * (1.2 - 1.7) / d, 115.2 + F * 1.2 / d
    top, left = int(v1), int(u1)
    mask = np.ones((math.ceil(v2) - top, math.ceil(u2) - left), bool)
    return Instance(24001, 11, 0.9, (u1, v1, u2, v2), mask, (top, left))


def test_a_still_thing_is_not_said_to_move_as_the_fitted_plane_settles() -> None:
    """A person standing 7 m left of the axis, approached at 15 m/s from 60 m, while the
    depth map's road puts the horizon 0.456 of the height down, then a thousandth of it
    higher every 1/12 s (as the ground trial's drives' fits wandered by a row or two in
    their first second). At 55 m a row is 4 m: read frame by frame over the plane of the
    moment, the distances fall 1.5 m/s faster than the person nears, which beside the axis
    reads as 1.4 m/s towards the path, a cut-in. Read again over the latest plane, all the
    window's distances are of one plane and the person stands still (under 0.25 m/s)."""
    tracker = ObjectTracker(hfov_deg=HFOV)
    speeds, horizons = [], []
    for i in range(20):
        t = i / 17
        d = 60.0 - 15.0 * t
        fit = RoadFit(horizon=0.456 - 0.012 * min(t, 1.0), reach=2.64, rows=60, bend=0.0)
        (info,) = tracker.update([person(d)], [(d, d)], t, size=(256, 512), road_fit=fit)
        if info.lateral_mps is not None:
            speeds.append(info.lateral_mps)
            assert info.path_in_s is None and not info.warned
        # each frame's own distance is read over that frame's plane: its fits' median
        horizons.append(fit.horizon)
        plane = GroundPlane(height_m=2.64, horizon=statistics.median(horizons), focal=1.0)
        assert info.range_from == "road"
        assert info.range_m == pytest.approx(plane.distance(person(d).box[3], 256), rel=1e-9)
    assert len(speeds) == 15 and max(abs(s) for s in speeds) < 0.25
    # the samples of one plane: the still person's speed falls as the plane stops moving
    assert abs(speeds[-1]) < 0.05


def test_a_scaled_distance_moves_with_the_fitted_plane_as_the_roads_do() -> None:
    """A person standing 40 m out, 7 m left of the axis, the camera still, the depth engine
    saying 30 m, and the fitted plane's horizon moving as in the test above. Its feet are
    seen for eight frames (road distances and their ratios to the depth engine's), then a
    nearer car covers the row below them: its distance is the depth engine's times the
    ratios' median. Kept from their own frames' planes, the ratios put it 43.1 m out while
    the same window's road distances, read again over the latest plane, say 42.0: a step
    the distances' slope reads as 0.6 m/s towards the path. Read again over the latest plane
    too, they are all one plane's and the person stands still."""
    walker = person(40.0)
    below, left = math.ceil(walker.box[3]), int(walker.box[0]) - 3
    mask = np.ones((200 - below, 60), bool)
    car = Instance(26002, 13, 0.9, (left, below, left + 60, 200), mask, (below, left))
    tracker = ObjectTracker(hfov_deg=HFOV)
    horizons, said = [], []
    for i in range(25):  # the ratios last the speed window (1 s) after the feet hide
        t = i / 17
        fit = RoadFit(horizon=0.456 - 0.012 * min(t, 1.0), reach=2.64, rows=60, bend=0.0)
        hidden = i >= 8
        things, depths = ([walker, car], [(30.0, 29.0), (8.0, 7.5)]) if hidden else ([walker], [(30.0, 29.0)])
        info = tracker.update(things, depths, t, size=(256, 512), road_fit=fit)[0]
        horizons.append(fit.horizon)
        plane = GroundPlane(height_m=2.64, horizon=statistics.median(horizons), focal=1.0)
        said.append(info.range_from)
        assert info.range_m == pytest.approx(plane.distance(walker.box[3], 256), rel=1e-9)
        assert info.lateral_mps is None or abs(info.lateral_mps) < 1e-6
    assert said == ["road"] * 8 + ["scaled"] * 17
