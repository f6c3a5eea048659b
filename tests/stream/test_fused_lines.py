"""--sink 'around.jsonl?lines=fused': the things around the vehicle of every camera at once,
from real runs of several cameras (edge.stream.object_sinks.FusedLines)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from edge.cli import main
from edge.schemas import check_lines

DRIVE = "synthetic://?size=128x256&frames=6&seed=2&lane=right"


def fused_lines(path: Path) -> list[dict[str, Any]]:
    text = path.read_text()
    assert check_lines("fused", text.splitlines(keepends=True)) == (len(text.splitlines()), [])
    return [json.loads(line) for line in text.splitlines()]


@pytest.fixture(scope="module")
def drive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fused") / "drive.mkv"
    assert main(["record", DRIVE, str(path)]) == 0
    return path


def test_two_cameras_that_see_the_same_things_give_each_once(
    demo_engines: Path, drive: Path, tmp_path: Path
) -> None:
    """Two cameras mounted alike and given one drive place each thing alike: where both
    cameras' same frame is fused, every placed thing is one, seen by both, with each one's
    track; the line says which frame of each camera it fused."""
    around = tmp_path / "around.jsonl"
    cameras = ["--camera", f"a={drive}", "--camera", f"b={drive}", "--hfov", "48.9"]
    argv = ["run", *cameras, "--engines", str(demo_engines), "--sink", f"{around}?lines=fused"]
    assert main([*argv, "--sink", str(tmp_path / "objects.jsonl")]) == 0
    lines = fused_lines(around)
    assert len(lines) == 12 and {line["camera"] for line in lines} == {"a", "b"}
    assert main(["schema", "fused", "--check", str(around)]) == 0
    objects = {
        (o["camera"], o["frame"]): o["objects"] for o in map(json.loads, (tmp_path / "objects.jsonl").open())
    }
    alike = [line for line in lines if len(set(line["cameras"].values())) == 1 and len(line["cameras"]) == 2]
    assert alike, "some line fused both cameras' same frame"
    for line in alike:
        frame = line["cameras"]["a"]
        placed = [o for o in objects[("a", frame)] if "lateral_m" in o]
        assert placed, "the drive's frames hold things"
        assert len(line["things"]) == len(objects[("a", frame)])
        for thing in line["things"]:
            assert [s["camera"] for s in thing["seen_by"]] == ["a", "b"]
            assert thing["seen_by"][0]["lateral_m"] == thing["seen_by"][1]["lateral_m"] == thing["lateral_m"]
            assert isinstance(thing["id"], int) and thing["id"] >= 1
    # a thing's number is its own while the cameras keep its tracks: one number a track of a's
    numbers: dict[int, set[int]] = {}
    for line in lines:
        for thing in line["things"]:
            for seen in thing["seen_by"]:
                if seen["camera"] == "a":
                    numbers.setdefault(seen["track"], set()).add(thing["id"])
    assert numbers and all(len(ids) == 1 for ids in numbers.values()), numbers


def test_a_front_and_a_rear_camera_see_different_things(
    demo_engines: Path, drive: Path, tmp_path: Path
) -> None:
    """The rear camera's things are behind the vehicle, the front one's ahead: none is fused."""
    around = tmp_path / "around.jsonl"
    cameras = ["--camera", f"front={drive}", "--camera", f"rear={drive}", "--hfov", "48.9"]
    cameras += ["--facing", "rear=rear", "--mount-ahead", "front=2", "--mount-ahead", "rear=-2"]
    assert main(["run", *cameras, "--engines", str(demo_engines), "--sink", f"{around}?lines=fused"]) == 0
    lines = fused_lines(around)
    both = [line for line in lines if len(line["cameras"]) == 2]
    assert both
    for line in both:
        for thing in line["things"]:
            (seen,) = thing["seen_by"]
            assert (thing["ahead_m"] > 2) is (seen["camera"] == "front")


def _result(camera: str | None, seq: int, t_ns: int, objects: list[dict[str, Any]]) -> Any:
    import numpy as np

    from edge.stream.frame import Frame, Result

    frame = Frame(seq=seq, t_capture_ns=t_ns, image=np.zeros((4, 4, 3), np.uint8))
    if camera is not None:
        frame.meta["camera"] = camera
    return Result(frame, None, None, extras={"objects": objects})


def test_a_camera_whose_newest_frame_is_old_is_left_out() -> None:
    """A camera's newest frame more than a quarter of a second from the line's frame (a camera
    that stalled) is not fused; a run of one source is one camera, named camera."""
    from edge.stream.object_sinks import FUSED_MAX_AGE_S, FusedLines

    car = {"id": 26000, "class": "car", "score": 0.9, "track": 1, "lateral_m": 0.0, "ahead_m": 10.0}
    lines = FusedLines()
    lines.record(_result("front", 0, 0, [car]))
    both = lines.record(_result("left", 5, int(0.2e9), [{**car, "track": 3, "ahead_m": 10.4}]))
    assert both["cameras"] == {"front": 0, "left": 5}
    assert [s["camera"] for s in both["things"][0]["seen_by"]] == ["front", "left"]
    late = lines.record(_result("left", 6, int((FUSED_MAX_AGE_S + 0.01) * 1e9), [{**car, "track": 3}]))
    assert late["cameras"] == {"left": 6} and [t["id"] for t in late["things"]] == [both["things"][0]["id"]]
    alone = FusedLines().record(_result(None, 2, 0, [car]))
    assert alone["cameras"] == {"camera": 2} and alone["things"][0]["id"] == 1
    assert check_lines("fused", [json.dumps(line) for line in (both, late, alone)]) == (3, [])


def test_the_gate_says_how_far_apart_two_cameras_things_may_be_and_be_one(
    demo_engines: Path, drive: Path, tmp_path: Path
) -> None:
    """Two cameras looking ahead 4 m apart across the vehicle, given one drive, place each thing
    4 m apart: beyond the gate for a thing nearer than 25 m (15% of its distance under 4 m), so
    two things; with ?gate=5, one, seen by both; an .mcap's /around/things likewise."""
    from tests.stream.test_mcap_sink import read_mcap

    cameras = ["--camera", f"a={drive}", "--camera", f"b={drive}", "--hfov", "48.9"]
    cameras += ["--mount-offset", "a=-2", "--mount-offset", "b=2"]
    seen_by = {}
    for option in ("", "&gate=5"):
        around, mcap = tmp_path / f"around{option}.jsonl", tmp_path / f"drive{option}.mcap"
        sinks = ["--sink", f"{around}?lines=fused{option}", "--sink", f"{mcap}{option.replace('&', '?')}"]
        assert main(["run", *cameras, "--engines", str(demo_engines), *sinks]) == 0
        _, messages = read_mcap(mcap)
        for written, lines in (
            ("lines", fused_lines(around)),
            ("mcap", [body for topic, _, body in messages if topic == "/around/things"]),
        ):
            # the lines that fused both cameras' same frame
            both = [
                line
                for line in lines
                if len(line["cameras"]) == 2 and len(set(line["cameras"].values())) == 1
            ]
            near = [
                t
                for line in both
                for t in line["things"]
                if t["from_vehicle_m"] is not None and t["from_vehicle_m"] < 25
            ]
            assert near, "the drive has things near the vehicle"
            seen_by[written, option] = {len(t["seen_by"]) for t in near}
    assert seen_by == {
        ("lines", ""): {1},
        ("mcap", ""): {1},
        ("lines", "&gate=5"): {2},
        ("mcap", "&gate=5"): {2},
    }
