"""The camera's calibration and pose for Foxglove (edge.stream.foxglove_camera): the rotation
of each facing, and real runs' messages read back, each placed object's road point projected
through them landing where the detector saw the thing stand."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest

from edge.cli import main
from edge.postprocess.facing import YAW_DEG
from edge.stream.foxglove_camera import (
    CALIBRATION_SCHEMA,
    CAMERA_AXES,
    CLOUD_POINT,
    CLOUD_SCHEMA,
    TRANSFORM_SCHEMA,
    camera_axes,
    intrinsics,
    point_cloud,
    quaternion,
    road_scale,
    transform,
)
from edge.stream.foxglove_scene import PATH_DRAWN_M
from tests.conftest import engines_of_kind

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
    assert np.allclose(camera_axes(YAW_DEG[facing]), axes), "a yaw turns the camera as its name does"


def test_a_corner_camera_looks_between_two_names() -> None:
    """45 degrees left of ahead: its view halfway between the front's and the left's, its
    right halfway between theirs, the sky still up."""
    axes = camera_axes(45.0)
    half = np.sqrt(0.5)
    assert np.allclose(axes[:, 2], (half, half, 0)) and np.allclose(axes[:, 0], (half, -half, 0))
    assert np.allclose(axes[:, 1], (0, 0, -1)) and np.isclose(np.linalg.det(axes), 1.0)


def test_intrinsics_follow_the_picture_to_the_frame() -> None:
    """fx from the field of view across, fy from the plane's focal length down, the principal
    point on the middle column and the horizon's row; a stretched picture's differ."""
    square = intrinsics(
        hfov_deg=90.0,
        ground={"height_m": 1.2, "horizon": 0.5, "focal": 1.0},
        frame_size=(256, 512),
        size=(256, 512),
    )
    assert np.allclose(square, [[256.0, 0, 256.0], [0, 256.0, 128.0], [0, 0, 1]])
    stretched = intrinsics(
        hfov_deg=90.0,
        ground={"height_m": 1.2, "horizon": 0.4, "focal": 1.0},
        frame_size=(1080, 1920),
        size=(256, 512),
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


REAR = "--hfov 48.9 --facing rear --mount-offset 0.4 --mount-ahead -2.5 --camera-height 1.5"
CORNER = "--hfov 48.9 --facing 30 --mount-offset -0.8 --mount-ahead 1.9 --camera-height 1.5"


@pytest.mark.parametrize(
    ("flags", "facing", "at"),
    [
        ([], "front", None),
        (REAR.split(), "rear", (-2.5, -0.4, 1.5)),
        (CORNER.split(), 30.0, (1.9, 0.8, 1.5)),  # a front-left corner camera
    ],
)
def test_a_placed_things_road_point_projects_onto_where_it_stands(
    demo_engines: Path, tmp_path: Path, flags: list[str], facing: str | float, at: tuple[float, ...] | None
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
        assert np.allclose(turn, camera_axes(facing))
        where = np.array([tf["translation"][a] for a in "xyz"])
        if at is not None:
            assert np.allclose(where, at)
        (h, w), (fh, fw) = record["size"], record["frame_size"]
        for obj in record["objects"]:
            if obj.get("range_from") != "road":
                continue
            seen = turn.T @ (np.array([obj["ahead_m"], -obj["lateral_m"], 0.0]) - where)
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


def decode_cloud(cloud: dict[str, Any]) -> np.ndarray:
    assert cloud["point_stride"] == CLOUD_POINT.itemsize == 16
    assert [(f["name"], f["offset"], f["type"]) for f in cloud["fields"]] == [
        ("x", 0, 7),
        ("y", 4, 7),
        ("z", 8, 7),
        ("red", 12, 1),
        ("green", 13, 1),
        ("blue", 14, 1),
        ("alpha", 15, 1),
    ]
    return np.frombuffer(base64.b64decode(cloud["data"]), CLOUD_POINT)


def test_a_flat_roads_depth_map_is_a_flat_cloud_on_the_road() -> None:
    """Golden: the depth map a level camera 1.2 m over a flat road sees below its horizon
    (each pixel's middle's ray), taken back through the same camera and its pose, lies on the
    road (z = 0 to a micrometre), each point ahead as far as its depth, beside as its column
    says; every 2nd pixel each way, the sky (no depth) left out; each the picture's colour."""
    h, w, height, horizon = 64, 128, 1.2, 0.4
    placed = {"hfov_deg": 60.0, "ground": {"height_m": height, "horizon": horizon, "focal": None}}
    placed |= {"facing": "front", "mount_offset_m": 0.0}
    k = intrinsics(hfov_deg=60.0, ground=placed["ground"], frame_size=(h, w), size=(h, w))
    rows = np.arange(h)[:, None] + 0.5 - k[1, 2]
    depth = np.where(rows > 0, height * k[1, 1] / np.where(rows > 0, rows, 1), 0.0) * np.ones((1, w))
    picture = np.random.default_rng(0).integers(0, 256, (h, w, 3), np.uint8)
    record = {"size": [h, w], "frame_size": [h, w]}
    cloud = point_cloud(depth.astype(np.float32), picture, record, 5, "camera", placed, 2)
    jsonschema.validate(cloud, json.loads(CLOUD_SCHEMA[1]))
    assert cloud["frame_id"] == "camera" and cloud["timestamp"] == {"sec": 0, "nsec": 5}
    points = decode_cloud(cloud)
    below = [r for r in range(0, h, 2) if r + 0.5 > k[1, 2]]
    assert len(points) == len(below) * (w // 2)
    seen = np.stack([points["x"], points["y"], points["z"]], axis=1).astype(np.float64)
    tf = transform(0, "camera", placed, "vehicle")
    on_road = seen @ CAMERA_AXES["front"].T + [tf["translation"][a] for a in "xyz"]
    assert np.allclose(on_road[:, 2], 0.0, atol=2e-6 * np.abs(on_road[:, 0]).max())
    assert np.allclose(on_road[:, 0], seen[:, 2])  # ahead as far as its depth
    cols = np.tile(np.arange(0, w, 2), len(below))
    assert np.allclose(-on_road[:, 1], (cols + 0.5 - w / 2) / k[0, 0] * seen[:, 2], atol=1e-4)
    rows_seen = np.repeat(below, w // 2)
    assert (points["rgba"][:, :3] == picture[rows_seen, cols]).all() and (points["rgba"][:, 3] == 255).all()


def test_a_run_writes_its_point_cloud_when_asked(demo_engines: Path, tmp_path: Path) -> None:
    """?cloud=4: each frame's depth map as a cloud in the camera's frame, a point every 4th
    pixel each way where there is depth, coloured from the picture; none unless asked."""
    asked, plain = tmp_path / "cloud.mcap", tmp_path / "plain.mcap"
    source = "synthetic://?size=128x256&frames=3&seed=1"
    run = ["run", source, "--engines", str(demo_engines)]
    assert main([*run, "--sink", f"{asked}?cloud=4", "--sink", str(plain)]) == 0
    assert "/camera/cloud" not in read_topics(plain)
    topics = read_topics(asked)
    assert len(topics["/camera/cloud"]) == 3
    for cloud in topics["/camera/cloud"]:
        jsonschema.validate(cloud, json.loads(CLOUD_SCHEMA[1]))
        assert cloud["frame_id"] == "camera"
        points = decode_cloud(cloud)
        assert 0.5 * 32 * 64 < len(points) <= 32 * 64  # the sky has no depth
        assert (points["z"] > 0).all() and (points["rgba"][:, 3] == 255).all()
        assert len({tuple(c) for c in points["rgba"][:, :3]}) > 50, "the picture's colours"


def test_a_cloud_needs_a_depth_engine(
    demo_engines: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    panoptic = engines_of_kind(demo_engines, "panoptic", tmp_path / "panoptic")
    drive = tmp_path / "drive.mcap"
    run = ["run", "synthetic://?size=128x256&frames=2&seed=1", "--engines", str(panoptic)]
    assert main([*run, "--sink", f"{drive}?cloud=4"]) == 2
    assert "asks for a point cloud (cloud=4), which is the depth map's, and no depth engine runs" in (
        capsys.readouterr().err
    )
    assert not drive.exists()
    assert main([*run, "--sink", str(drive)]) == 0  # not asked: none, and no error
    assert "/camera/cloud" not in read_topics(drive)


def test_each_camera_is_its_own_frame_in_the_vehicles(demo_engines: Path, tmp_path: Path) -> None:
    """Two cameras in one file: each one's calibration in its image's frame (its name), each
    placed in ``vehicle`` by its own transform, turned its own way, where it is along the
    vehicle; each one's path drawn from where it is."""
    drive = tmp_path / "drive.mcap"
    cameras = [
        f"--camera={name}=synthetic://?size=128x256&frames=2&seed={seed}"
        for name, seed in (("front", 0), ("rear", 2))
    ]
    run = ["run", *cameras, "--engines", str(demo_engines), "--hfov", "48.9", "--facing", "rear=rear"]
    run += ["--mount-ahead", "front=2.1", "--mount-ahead", "rear=-2.4", "--path-width", "2"]
    assert main([*run, "--camera-height", "1.2", "--horizon", "0.45", "--sink", str(drive)]) == 0
    topics = read_topics(drive)
    for name in ("front", "rear"):
        assert {c["frame_id"] for c in topics[f"/{name}/calibration"]} == {name}
        assert {c["frame_id"] for c in topics[f"/{name}/image"]} == {name}
        for tf in topics[f"/{name}/transform"]:
            assert (tf["parent_frame_id"], tf["child_frame_id"]) == ("vehicle", name)
            assert np.allclose(rotation_of(tf["rotation"]), CAMERA_AXES[name])
            assert tf["translation"] == {"x": {"front": 2.1, "rear": -2.4}[name], "y": 0.0, "z": 1.2}
        for scene in topics[f"/{name}/scene"]:
            path = next(e for e in scene["entities"] if e["id"] == "path")
            near = {"front": 2.1, "rear": -2.4}[name]
            far = near + (PATH_DRAWN_M if name == "front" else -PATH_DRAWN_M)
            assert {(p["x"], p["y"]) for p in path["lines"][0]["points"]} == {
                (x, y) for x in (near, far) for y in (1.0, -1.0)
            }


def test_the_clouds_metres_are_brought_to_the_road_the_camera_stands_over() -> None:
    """A depth engine that reads everything at half its distance: the road its pixels fit lies
    half as far below the camera as the known plane, so its metres are doubled; a true one's
    are kept; with no panoptic labels, or none of them road, nothing is scaled."""
    from edge.data.cityscapes import label_to_train_lut
    from edge.data.synthetic import SyntheticDrive

    drive = SyntheticDrive(height=256, width=512, seed=3)
    truth = drive.render(4)
    semantic = label_to_train_lut()[truth.label_ids]
    ground = drive.camera.ground.to_json()
    assert road_scale(semantic, truth.depth * 0.5, ground) == pytest.approx(2.0, rel=0.03)
    assert road_scale(semantic, truth.depth, ground) == pytest.approx(1.0, rel=0.03)
    assert road_scale(None, truth.depth * 0.5, ground) == 1.0
    assert road_scale(np.full_like(semantic, 10), truth.depth * 0.5, ground) == 1.0  # all sky
    assert road_scale(semantic, truth.depth * 0.2, ground) == 1.0  # five times out: a fit gone wrong


def test_the_trackers_road_fit_is_taken_not_fitted_again() -> None:
    """Where the tracker fitted this depth map's road already, its RoadFit gives the scale
    (no labels needed); the same as fitting it here."""
    from edge.data.cityscapes import label_to_train_lut
    from edge.data.synthetic import SyntheticDrive
    from edge.postprocess.road_fit import fit_road

    drive = SyntheticDrive(height=256, width=512, seed=3)
    truth = drive.render(4)
    semantic = label_to_train_lut()[truth.label_ids]
    ground = drive.camera.ground.to_json()
    fitted = fit_road(semantic, truth.depth * 0.5)
    assert road_scale(None, truth.depth * 0.5, ground, fitted=fitted) == road_scale(
        semantic, truth.depth * 0.5, ground
    )
