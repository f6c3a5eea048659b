"""The 3D scene of a frame's placed objects (edge.stream.foxglove_scene): built from an
objects line by hand, and from real runs' .mcap files read back."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from edge.cli import main
from edge.stream.foxglove_scene import (
    MIN_ARROW_MPS,
    PATH_DRAWN_M,
    SCENE_SCHEMA,
    THING_SIZE_M,
    UNKNOWN_SIZE_M,
    box_centre,
    scene_update,
    velocity,
)

pytest.importorskip("mcap", reason="mcap is a test dependency: pip install -e '.[dev]'")

DRIVE = "synthetic://?size=128x256&frames=8&seed=1"


def thing(**fields: Any) -> dict[str, Any]:
    return {"id": 26000, "class": "car", "score": 0.9, "box": [0, 0, 4, 4], **fields}


def test_boxes_stand_on_the_road_beyond_where_each_thing_was_read() -> None:
    """Ahead: half a length further ahead; behind: further behind; beside: half a width
    further out; the scene's y is left, so lateral_m (right) is negated."""
    car = THING_SIZE_M["car"]
    assert box_centre(10.0, 1.0, car) == (12.25, -1.0)
    assert box_centre(-10.0, -1.0, car) == (-12.25, 1.0)
    assert box_centre(1.0, 5.0, car) == (1.0, -5.9)  # 5 m right: its middle 0.9 m further right
    assert box_centre(-1.0, -5.0, car) == (-1.0, 5.9)


def test_a_scene_is_its_placed_objects_after_deleting_the_last() -> None:
    record = {
        "objects": [
            thing(track=3, ahead_m=20.0, lateral_m=-1.5, range_m=20.4, warned=True, ttc_s=1.5),
            thing(id=24001, **{"class": "person"}, ahead_m=8.0, lateral_m=3.0, distance_m=8.6),
            thing(id=26002, distance_m=30.0),  # not placed: no field of view for it
            thing(id=99003, **{"class": "kangaroo"}, ahead_m=5.0, lateral_m=0.0),
        ]
    }
    t_ns = 1_796_000_000_123_456_789
    scene = scene_update(record, t_ns)
    jsonschema.validate(scene, json.loads(SCENE_SCHEMA[1]))
    stamp = {"sec": 1_796_000_000, "nsec": 123_456_789}
    assert scene["deletions"] == [{"timestamp": stamp, "type": 1, "id": ""}]
    car, person, other = scene["entities"]
    assert [e["id"] for e in scene["entities"]] == ["track 3", "object 24001", "object 99003"]
    assert {e["frame_id"] for e in scene["entities"]} == {"vehicle"}
    assert all(e["timestamp"] == stamp and e["frame_locked"] for e in scene["entities"])
    (cube,) = car["cubes"]
    assert cube["pose"]["position"] == {"x": 22.25, "y": 1.5, "z": 0.75}
    assert cube["size"] == {"x": 4.5, "y": 1.8, "z": 1.5}
    assert cube["color"]["r"] == 1.0 and cube["color"]["g"] < 0.5, "warned: red"
    assert car["texts"][0]["text"] == "car #3 20 m" and car["texts"][0]["pose"]["position"]["z"] > 1.5
    assert {m["key"]: m["value"] for m in car["metadata"]} == {
        "class": "car",
        "track": "3",
        "score": "0.9",
        "ahead_m": "20.0",
        "lateral_m": "-1.5",
        "ttc_s": "1.5",
        "warned": "true",
    }
    assert person["cubes"][0]["pose"]["position"] == {"x": 8.25, "y": -3.0, "z": 0.85}
    assert person["cubes"][0]["color"]["g"] > 0.5 and person["texts"][0]["text"] == "person 9 m"
    assert other["cubes"][0]["size"] == dict(zip("xyz", UNKNOWN_SIZE_M, strict=True))
    assert scene_update({"objects": []}, t_ns) == {"deletions": scene["deletions"], "entities": []}


def test_the_path_ahead_is_drawn_for_a_front_or_rear_camera() -> None:
    """Its edges, half its width either side of the vehicle's middle, on the road from the
    camera to PATH_DRAWN_M ahead (behind, for a rear camera); a side camera has no path."""
    record = {"objects": [thing(track=1, ahead_m=-12.0, lateral_m=0.5)]}
    front = scene_update(record, 7, facing="front", path_half_width_m=1.5)
    jsonschema.validate(front, json.loads(SCENE_SCHEMA[1]))
    path, car = front["entities"]
    assert (path["id"], car["id"]) == ("path", "track 1")
    (lines,) = path["lines"]
    assert lines["type"] == 2 and len(lines["points"]) == 4
    edges = [(p["x"], p["y"], p["z"]) for p in lines["points"]]
    assert edges == [(0.0, 1.5, 0.0), (PATH_DRAWN_M, 1.5, 0.0), (0.0, -1.5, 0.0), (PATH_DRAWN_M, -1.5, 0.0)]
    rear = scene_update(record, 7, facing="rear", path_half_width_m=2.0)["entities"][0]
    assert {p["x"] for p in rear["lines"][0]["points"]} == {0.0, -PATH_DRAWN_M}
    assert {p["y"] for p in rear["lines"][0]["points"]} == {2.0, -2.0}
    side = scene_update(record, 7, facing="left", path_half_width_m=1.5)
    assert [e["id"] for e in side["entities"]] == ["track 1"]


def read_topics(path: Path) -> dict[str, list[dict[str, Any]]]:
    from mcap.reader import make_reader

    by_topic: dict[str, list[dict[str, Any]]] = {}
    with open(path, "rb") as f:
        reader = make_reader(f)
        summary = reader.get_summary()
        assert summary is not None
        schemas = {c.topic: summary.schemas[c.schema_id] for c in summary.channels.values()}
        for _, channel, message in reader.iter_messages():
            by_topic.setdefault(channel.topic, []).append(json.loads(message.data))
    if "/camera/scene" in schemas:
        assert schemas["/camera/scene"].name == "foxglove.SceneUpdate"
        assert json.loads(schemas["/camera/scene"].data) == json.loads(SCENE_SCHEMA[1])
    return by_topic


def test_a_run_whose_camera_is_known_has_its_scene_every_frame(demo_engines: Path, tmp_path: Path) -> None:
    """synthetic:// knows its camera's field of view: every frame has a scene, the path
    ahead and an entity a placed object of its objects line at its place."""
    drive = tmp_path / "drive.mcap"
    assert main(["run", DRIVE, "--engines", str(demo_engines), "--sink", str(drive)]) == 0
    by_topic = read_topics(drive)
    scenes, records = by_topic["/camera/scene"], by_topic["/camera/objects"]
    assert len(scenes) == len(records) == 8
    placed = arrows = 0
    for scene, record in zip(scenes, records, strict=True):
        jsonschema.validate(scene, json.loads(SCENE_SCHEMA[1]))
        t_ns = round(record["time_unix"] * 1e9)
        assert scene["deletions"][0]["timestamp"] == {"sec": t_ns // 10**9, "nsec": t_ns % 10**9}
        objects = [o for o in record["objects"] if o.get("ahead_m") is not None]
        path, *things = scene["entities"]  # a front camera: the path, 1.5 m either side by default
        assert path["id"] == "path" and {p["y"] for p in path["lines"][0]["points"]} == {1.5, -1.5}
        assert len(things) == len(objects)
        for obj, entity in zip(objects, things, strict=True):
            x, y = box_centre(obj["ahead_m"], obj["lateral_m"], THING_SIZE_M[obj["class"]])
            position = entity["cubes"][0]["pose"]["position"]
            assert (position["x"], position["y"]) == pytest.approx((x, y))
            assert entity["id"] == f"track {obj['track']}"
            moving = velocity(obj, "front")
            assert bool(entity["arrows"]) == (moving is not None and math.hypot(*moving) >= MIN_ARROW_MPS)
            arrows += bool(entity["arrows"])
            placed += 1
    assert placed > 5, "the demo weights find things, and the synthetic camera places them"
    assert arrows > 0, "things closing in"


def test_no_scene_where_the_camera_is_not_known(demo_engines: Path, tmp_path: Path) -> None:
    """Turned on its side the synthetic camera's field of view is not known: no object is
    placed, and no scene topic is written."""
    drive = tmp_path / "drive.mcap"
    run = ["run", DRIVE, "--engines", str(demo_engines), "--flip", "clockwise", "--sink", str(drive)]
    assert main(run) == 0
    by_topic = read_topics(drive)
    assert "/camera/scene" not in by_topic and len(by_topic["/camera/objects"]) == 8
    assert not any(o.get("ahead_m") for r in by_topic["/camera/objects"] for o in r["objects"])


def test_an_arrow_shows_how_a_thing_moves_against_the_vehicle() -> None:
    """Closing in ahead of a front camera: an arrow back along x, turned by its speed across
    (right: -y), as long as it goes in a second; behind a rear camera, closing is along +x;
    none for a side camera's, a slow one's, or one whose motion is not known yet."""

    def arrows(facing: str, **motion: Any) -> list[dict[str, Any]]:
        record = {"objects": [thing(track=1, ahead_m=20.0, lateral_m=1.0, **motion)]}
        scene = scene_update(record, 0, facing=facing)
        jsonschema.validate(scene, json.loads(SCENE_SCHEMA[1]))
        return scene["entities"][0]["arrows"]

    (arrow,) = arrows("front", closing_mps=10.0, lateral_mps=1.0)
    q = arrow["pose"]["orientation"]
    yaw = 2 * math.atan2(q["z"], q["w"])
    assert (math.cos(yaw), math.sin(yaw)) == pytest.approx((-10 / math.hypot(10, 1), -1 / math.hypot(10, 1)))
    assert arrow["shaft_length"] + arrow["head_length"] == pytest.approx(math.hypot(10, 1))
    assert arrow["pose"]["position"] == {"x": 22.25, "y": -1.0, "z": 0.75}  # from the car's middle
    (rear,) = arrows("rear", closing_mps=5.0, lateral_mps=None)
    assert 2 * math.atan2(
        rear["pose"]["orientation"]["z"], rear["pose"]["orientation"]["w"]
    ) == pytest.approx(0.0)
    assert arrows("left", closing_mps=5.0) == []
    assert arrows("front", closing_mps=0.2, lateral_mps=0.1) == []
    assert arrows("front", closing_mps=None, lateral_mps=None) == []


@pytest.mark.parametrize(
    ("facing", "moving"),
    [
        ("front", (-5.0, 0.0)),  # coming straight down the camera's axis, towards the vehicle
        ("rear", (5.0, 0.0)),
        (180.0, (5.0, 0.0)),
        # a front-left corner camera 30 degrees round: back along its axis, so back and to the right
        (30.0, (-5.0 * math.cos(math.radians(30)), -5.0 * math.sin(math.radians(30)))),
        (-150.0, (5.0 * math.cos(math.radians(30)), 5.0 * math.sin(math.radians(30)))),
    ],
)
def test_a_thing_closing_along_the_cameras_axis_moves_along_it_in_the_scene(
    facing: str | float, moving: tuple[float, float]
) -> None:
    """Closing at 5 m/s along the camera's axis, its lateral_mps the part of that across the
    vehicle (as the tracker reads it: 5 sin yaw right): the scene's velocity is back along
    the axis, whatever way the camera looks; a camera looking aside has none."""
    from edge.postprocess.facing import moving_aside

    obj = {"closing_mps": 5.0, "lateral_mps": moving_aside(facing, 0.0, 5.0)}
    assert velocity(obj, facing) == pytest.approx(moving)
    assert velocity(obj, 90.0) is None and velocity(obj, "left") is None
