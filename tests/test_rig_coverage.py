"""How much of the way round the vehicle a rig's cameras see (edge.rig_coverage): golden
bearings of rigs laid out by hand, and edge rig saying them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge.cli import main
from edge.rig_coverage import coverage, coverage_lines


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
    assert main(["rig", str(rig), "--frames", "2", "--json"]) == 0
    said = json.loads(capsys.readouterr().out)
    assert said["coverage"]["unseen"] == [[30.0, 120.0], [-120.0, -30.0]]
