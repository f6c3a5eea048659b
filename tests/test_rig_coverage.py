"""How much of the way round the vehicle a rig's cameras see (edge.rig_coverage): golden
bearings of rigs laid out by hand, and edge rig saying them."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from edge.cli import main
from edge.rig_coverage import NEAR_STEP_DEG, coverage, coverage_lines, near
from edge.schemas import check_document


def test_a_front_and_a_rear_camera_leave_the_sides_unseen() -> None:
    said = coverage({"front": ("front", 60.0), "rear": ("rear", 120.0)})
    assert said == {
        "seen_deg": 180.0,
        "unseen": [[30.0, 120.0], [-120.0, -30.0]],
        "shared": [],
        "unknown": [],
    }
    assert coverage_lines(said) == [
        "coverage: the cameras see 180 of 360 degrees round the vehicle",
        "  not seen: 30 to 120 degrees (left)",
        "  not seen: -120 to -30 degrees (right)",
    ]


def test_four_corner_cameras_see_all_round_each_sharing_with_its_neighbours() -> None:
    views = {name: (yaw, 120.0) for name, yaw in (("fl", 45.0), ("rl", 135.0), ("rr", -135.0), ("fr", -45.0))}
    said = coverage(views)
    assert said["seen_deg"] == 360.0 and said["unseen"] == []
    assert said["shared"] == [["fl", "rl", 30.0], ["fl", "fr", 30.0], ["rl", "rr", 30.0], ["rr", "fr", 30.0]]


def test_gaps_across_straight_ahead_and_behind_are_one_each() -> None:
    """Side cameras alone: what is ahead (-40 to 40) and behind (140 round to -140) is unseen,
    each gap one arc though it crosses where the bearings wrap."""
    said = coverage({"left": ("left", 100.0), "right": ("right", 100.0)})
    assert said["seen_deg"] == 200.0
    assert said["unseen"] == [[-40.0, 40.0], [140.0, -140.0]]
    assert coverage_lines(said)[1:] == [
        "  not seen: -40 to 40 degrees (ahead)",
        "  not seen: 140 to -140 degrees (behind)",
    ]


def test_overlaps_across_straight_ahead_and_unknown_fields_of_view() -> None:
    said = coverage({"front": ("front", 100.0), "corner": (45.0, 90.0), "odd": ("rear", None)})
    assert said["shared"] == [["front", "corner", 50.0]] and said["unknown"] == ["odd"]
    assert said["seen_deg"] == 140.0
    assert coverage_lines(said)[-2:] == [
        "  front and corner share 50 degrees (what both see there is fused as one)",
        "  not counted (no field of view: hfov or a lens file): odd",
    ]
    assert coverage({"a": ("front", None)})["unseen"] == [[-180.0, 180.0]]
    assert "  not seen: -180 to 180 degrees (all round)" in coverage_lines(coverage({"a": ("front", None)}))
    assert coverage({"wide": ("front", 360.0)})["unseen"] == []


def test_edge_rig_says_what_its_cameras_see(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rig = tmp_path / "car.toml"
    rig.write_text(
        '[cameras.front]\nsource = "synthetic://?size=64x128&frames=3"\nhfov = 60\n'
        '[cameras.rear]\nsource = "synthetic://?size=64x128&frames=3&seed=1"\nfacing = "rear"\nhfov = 120\n'
    )
    assert main(["rig", str(rig), "--frames", "2"]) == 0
    out = capsys.readouterr().out
    assert "coverage: the cameras see 180 of 360 degrees round the vehicle\n  not seen: 30 to 120" in out
    assert (
        "  5 m from the vehicle's reference point, each camera from its place: 180 of 360 degrees seen\n"
        in out
    )
    assert main(["rig", str(rig), "--frames", "2", "--json"]) == 0
    text = capsys.readouterr().out
    said = json.loads(text)
    assert said["coverage"]["unseen"] == [[30.0, 120.0], [-120.0, -30.0]]
    assert said["coverage"]["near"]["range_m"] == 5.0 and check_document("rig", text) is None
    # mounted apart, the front camera 2 m ahead and the rear one 2.4 m behind: at 5 m less is seen
    rig.write_text(
        rig.read_text().replace("hfov = 60\n", "hfov = 60\nmount-ahead = 2\n") + "mount-ahead = -2.4\n"
    )
    assert main(["rig", str(rig), "--frames", "2", "--near", "5"]) == 0
    out = capsys.readouterr().out
    assert (
        "each camera from its place: 108 of 360 degrees seen\n  not seen at 5 m: 18.5 to 144.5 degrees" in out
    )
    assert main(["rig", str(rig), "--frames", "2", "--near", "0", "--json"]) == 0
    assert "near" not in json.loads(capsys.readouterr().out)["coverage"]
    with pytest.raises(SystemExit):
        main(["rig", str(rig), "--near", "-1"])
    assert "argument --near: expected a number of metres >= 0, got '-1'" in capsys.readouterr().err


def edge_bearing(ahead_m: float, range_m: float, off_deg: float) -> float:
    """The bearing from the reference point of where a view's edge, ``off_deg`` left of the
    axis of a camera looking ahead from ``ahead_m`` ahead of it, crosses the ring ``range_m``
    round it (the law of cosines, not the sampling near reads the ring with)."""
    theta = math.radians(off_deg)
    along = -ahead_m * math.cos(theta) + math.sqrt(range_m**2 - (ahead_m * math.sin(theta)) ** 2)
    return math.degrees(math.atan2(along * math.sin(theta), ahead_m + along * math.cos(theta)))


def test_far_from_the_vehicle_the_ring_is_what_the_bearings_say() -> None:
    """At 10 km the cameras' places on the vehicle (metres) make no difference: the ring's
    unseen arcs are coverage's, to the ring's step."""
    rigs = [
        ({"front": ("front", 60.0), "rear": ("rear", 120.0)}, {"front": (0.3, 2.0), "rear": (0.0, -2.4)}),
        ({"left": ("left", 100.0), "right": ("right", 100.0)}, {"left": (-0.9, 1.0), "right": (0.9, 1.0)}),
        ({n: (yaw, 120.0) for n, yaw in (("fl", 45.0), ("rl", 135.0), ("fr", -45.0))}, {"fl": (-0.9, 2.0)}),
    ]
    for views, places in rigs:
        far, bearings = near(views, places, 10_000.0), coverage(views)
        assert abs(far["seen_deg"] - bearings["seen_deg"]) <= NEAR_STEP_DEG
        assert len(far["unseen"]) == len(bearings["unseen"])
        for ring, arc in zip(far["unseen"], bearings["unseen"], strict=True):
            assert all(abs(a - b) <= NEAR_STEP_DEG for a, b in zip(ring, arc, strict=True)), (ring, arc)


def test_near_the_vehicle_a_cameras_place_shifts_its_views_edges() -> None:
    """A front camera 2 m ahead, 60 degrees wide, sees of the 5 m ring only to about 18.5
    degrees each side (the law of cosines: 18.46); two mirror cameras looking aside leave a
    wedge straight ahead unseen at 3 m that they would cover seen from the reference point."""
    said = near({"front": ("front", 60.0)}, {"front": (0.0, 2.0)}, 5.0)
    start, end = said["unseen"][0]
    assert abs(start - edge_bearing(2.0, 5.0, 30.0)) <= NEAR_STEP_DEG and start > 0
    assert abs(end + edge_bearing(2.0, 5.0, 30.0)) <= NEAR_STEP_DEG and end < 0
    mirrors = {"left": ("left", 170.0), "right": ("right", 170.0)}
    assert near(mirrors, {}, 3.0)["unseen"] == [[-5.0, 5.0], [175.0, -175.0]], "the bearings' 10 degrees"
    (ahead, behind) = near(mirrors, {"left": (-1.0, 1.0), "right": (1.0, 1.0)}, 3.0)["unseen"]
    assert ahead[0] < -5.0 and ahead[1] > 5.0, "the mirrors' spacing widens the gap straight ahead"
    assert ahead[0] == -ahead[1] and behind[0] == -behind[1] < 175.0, "and behind, alike on each side"
    assert near({"a": ("front", None)}, {}, 3.0) == {
        "range_m": 3.0,
        "seen_deg": 0.0,
        "unseen": [[-180.0, 180.0]],
    }
    assert near({"w": ("front", 360.0)}, {"w": (0.0, 1.0)}, 3.0)["unseen"] == []
    lines = coverage_lines({**coverage({"front": ("front", 60.0)}), "near": said})
    assert lines[-2:] == [
        "  5 m from the vehicle's reference point, each camera from its place: 37 of 360 degrees seen",
        "  not seen at 5 m: 18.5 to -18.5 degrees (behind)",
    ]
