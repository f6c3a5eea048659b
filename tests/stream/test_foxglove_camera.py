"""The camera's calibration and pose for Foxglove (edge.stream.foxglove_camera): the rotation
of each facing, and real runs' messages read back, each placed object's road point projected
through them landing where the detector saw the thing stand."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest

from edge.cli import main
from edge.stream.foxglove_camera import (
    CALIBRATION_SCHEMA,
    CAMERA_AXES,
    TRANSFORM_SCHEMA,
    intrinsics,
    quaternion,
)

pytest.importorskip("mcap", reason="mcap is a test dependency: pip install -e '.[dev]'")


def rotation_of(q: dict[str, float]) -> np.ndarray:
    x, y, z, w = q["x"], q["y"], q["z"], q["w"]
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


@pytest.mark.parametrize(
    ("facing", "view", "right"),
    [
        ("front", (1, 0, 0), (0, -1, 0)),
        ("rear", (-1, 0, 0), (0, 1, 0)),
        ("left", (0, 1, 0), (1, 0, 0)),
        ("right", (0, -1, 0), (-1, 0, 0)),
    ],
)
def test_each_facing_turns_the_camera_its_way(
    facing: str, view: tuple[int, ...], right: tuple[int, ...]
) -> None:
    """The camera looks along ``view`` with ``right`` to its right and the sky up: its z, x
    and -y axes in the vehicle's frame; the quaternion is that rotation, of unit length."""
    axes = CAMERA_AXES[facing]
    assert np.allclose(axes[:, 2], view) and np.allclose(axes[:, 0], right)
    assert np.allclose(axes[:, 1], (0, 0, -1)) and np.isclose(np.linalg.det(axes), 1.0)
    q = quaternion(axes)
    assert np.isclose(sum(v * v for v in q.values()), 1.0)
    assert np.allclose(rotation_of(q), axes)
    assert quaternion(CAMERA_AXES["front"]) == {"x": -0.5, "y": 0.5, "z": -0.5, "w": 0.5}  # ROS's optical


def test_intrinsics_follow_the_picture_to_the_frame() -> None:
    """fx from the field of view across, fy from the plane's focal length down, the principal
    point on the middle column and the horizon's row; a stretched picture's differ."""
    square = intrinsics(
        hfov_deg=90.0, ground={"horizon": 0.5, "focal": 1.0}, frame_size=(256, 512), size=(256, 512)
    )
    assert np.allclose(square, [[256.0, 0, 256.0], [0, 256.0, 128.0], [0, 0, 1]])
    stretched = intrinsics(
        hfov_deg=90.0, ground={"horizon": 0.4, "focal": 1.0}, frame_size=(1080, 1920), size=(256, 512)
    )
    assert np.allclose(stretched, [[960.0, 0, 960.0], [0, 1080.0, 432.0], [0, 0, 1]])


def read_topics(path: Path) -> dict[str, list[dict[str, Any]]]:
    from mcap.reader import make_reader

    by_topic: dict[str, list[dict[str, Any]]] = {}
    with open(path, "rb") as f:
        reader = make_reader(f)
        for _, channel, message in reader.iter_messages():
            by_topic.setdefault(channel.topic, []).append(json.loads(message.data))
    return by_topic


@pytest.mark.parametrize(
    ("flags", "facing"),
    [
        ([], "front"),
        (["--hfov", "48.9", "--facing", "rear", "--mount-offset", "0.4", "--camera-height", "1.5"], "rear"),
    ],
)
def test_a_placed_things_road_point_projects_onto_where_it_stands(
    demo_engines: Path, tmp_path: Path, flags: list[str], facing: str
) -> None:
    """Each frame's calibration and transform (valid against their schemas) are the camera the
    tracker placed the things with: a thing read from the road, its place (ahead_m, lateral_m)
    on the road taken into the camera and through K, lands on its box's middle column and
    bottom row in the frame (within half a pixel: the objects line rounds to the centimetre)."""
    drive = tmp_path / "drive.mcap"
    source = "synthetic://?size=192x384&frames=6&seed=1"
    assert main(["run", source, "--engines", str(demo_engines), *flags, "--sink", str(drive)]) == 0
    topics = read_topics(drive)
    records, calibrations, transforms = (
        topics[f"/camera/{t}"] for t in ("objects", "calibration", "transform")
    )
    assert len(records) == len(calibrations) == len(transforms) == 6
    checked = 0
    for record, cal, tf in zip(records, calibrations, transforms, strict=True):
        jsonschema.validate(cal, json.loads(CALIBRATION_SCHEMA[1]))
        jsonschema.validate(tf, json.loads(TRANSFORM_SCHEMA[1]))
        t_ns = round(record["time_unix"] * 1e9)
        assert cal["timestamp"] == tf["timestamp"] == {"sec": t_ns // 10**9, "nsec": t_ns % 10**9}
        assert (cal["frame_id"], cal["width"], cal["height"]) == ("camera", 384, 192)
        assert (tf["parent_frame_id"], tf["child_frame_id"]) == ("vehicle", "camera")
        k = np.array(cal["K"]).reshape(3, 3)
        assert np.allclose(np.array(cal["P"]).reshape(3, 4)[:, :3], k)
        turn = rotation_of(tf["rotation"])
        assert np.allclose(turn, CAMERA_AXES[facing])
        at = np.array([tf["translation"][a] for a in "xyz"])
        if flags:
            assert np.allclose(at, (0.0, -0.4, 1.5))
        (h, w), (fh, fw) = record["size"], record["frame_size"]
        for obj in record["objects"]:
            if obj.get("range_from") != "road":
                continue
            seen = turn.T @ (np.array([obj["ahead_m"], -obj["lateral_m"], 0.0]) - at)
            u, v, _ = k @ seen / seen[2]
            x1, _, x2, y2 = obj["box"]
            assert u == pytest.approx((x1 + x2) / 2 * fw / w, abs=0.5), obj
            assert v == pytest.approx(y2 * fh / h, abs=0.5), obj
            checked += 1
    assert checked >= 6, "the demo weights find things that stand on the road"


def test_no_camera_messages_without_its_height(demo_engines: Path, tmp_path: Path) -> None:
    """--no-ground: the distances are the depth map's alone, no road's plane is read or fitted,
    so the camera's height is not known: the field of view places the things (a scene), and
    neither the calibration nor the camera's pose is sent."""
    drive = tmp_path / "drive.mcap"
    run = ["run", "synthetic://?size=128x256&frames=3&seed=1", "--engines", str(demo_engines), "--no-ground"]
    assert main([*run, "--sink", str(drive)]) == 0
    topics = read_topics(drive)
    assert "/camera/scene" in topics
    assert "/camera/calibration" not in topics and "/camera/transform" not in topics
