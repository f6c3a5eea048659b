"""Where the camera is, for Foxglove: its intrinsics (``foxglove.CameraCalibration``, in the
frame's pixels, the image topic's frame) and its pose in the scene's ``vehicle`` frame
(``foxglove.FrameTransform``). With them Foxglove's 3D panel shows the camera's picture where
the camera is, and its Image panel draws the scene's boxes over the picture. And, asked for,
what it sees in 3D: the depth map as a coloured point cloud (``foxglove.PointCloud``).

They are the camera the tracker placed the objects with, so the two agree: a pinhole camera
over a flat road (edge.postprocess.ground.GroundPlane), level, its principal point at the
middle column and on the horizon's row, the focal lengths those of the field of view across
and of the plane down (square pixels unless a stretch made them otherwise), ``height_m`` over
the road, ``mount_offset_m`` right of the vehicle's middle and ``mount_ahead_m`` ahead of its
reference point, looking its facing's way. Sent
only where the camera's height is known (--camera-height, the source's, or the plane fitted
to the depth map).
"""

from __future__ import annotations

import base64
import math
from typing import Any

import numpy as np

from edge.stream.foxglove_schema import NUMBER, POSE, QUATERNION, TIME, VECTOR3, pose, schema, stamp


def _numbers(n: int) -> dict[str, Any]:
    return {"type": "array", "items": NUMBER, "minItems": n, "maxItems": n}


# Foxglove's schemas (github.com/foxglove/schemas, jsonschema/), the fields written
CALIBRATION_SCHEMA = (
    "foxglove.CameraCalibration",
    schema(
        "foxglove.CameraCalibration",
        {
            "timestamp": TIME,
            "frame_id": {"type": "string"},
            "width": {"type": "integer", "minimum": 0},
            "height": {"type": "integer", "minimum": 0},
            "distortion_model": {"type": "string"},
            "D": {"type": "array", "items": NUMBER},
            "K": _numbers(9),
            "R": _numbers(9),
            "P": _numbers(12),
        },
    ),
)
TRANSFORM_SCHEMA = (
    "foxglove.FrameTransform",
    schema(
        "foxglove.FrameTransform",
        {
            "timestamp": TIME,
            "parent_frame_id": {"type": "string"},
            "child_frame_id": {"type": "string"},
            "translation": VECTOR3,
            "rotation": QUATERNION,
        },
    ),
)

# the camera's axes (x right in the picture, y down, z along its view) in the vehicle's (x
# ahead, y left, z up), by the way it looks: the columns of its rotation
CAMERA_AXES: dict[str, np.ndarray] = {
    "front": np.array([[0, -1, 0], [0, 0, -1], [1, 0, 0]], float).T,
    "rear": np.array([[0, 1, 0], [0, 0, -1], [-1, 0, 0]], float).T,
    "left": np.array([[1, 0, 0], [0, 0, -1], [0, 1, 0]], float).T,
    "right": np.array([[-1, 0, 0], [0, 0, -1], [0, -1, 0]], float).T,
}


def camera_axes(facing: str | float) -> np.ndarray:
    """CAMERA_AXES of a facing's name, or of a yaw in degrees (edge.postprocess.facing): the
    front camera's axes turned about the vehicle's z."""
    if isinstance(facing, str):
        return CAMERA_AXES[facing]
    from edge.postprocess.facing import turn

    c, s = turn(facing)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]) @ CAMERA_AXES["front"]


def quaternion(rotation: np.ndarray) -> dict[str, float]:
    """The unit quaternion (x, y, z, w) of a proper rotation matrix (Shepperd's method: the
    largest of the four components first, so no division is by a small number)."""
    r = rotation
    trace = float(np.trace(r))
    options = [trace, r[0, 0], r[1, 1], r[2, 2]]
    k = int(np.argmax(options))
    if k == 0:
        w = math.sqrt(1 + trace) / 2
        x, y, z = (r[2, 1] - r[1, 2]) / (4 * w), (r[0, 2] - r[2, 0]) / (4 * w), (r[1, 0] - r[0, 1]) / (4 * w)
    elif k == 1:
        x = math.sqrt(1 + 2 * r[0, 0] - trace) / 2
        w, y, z = (r[2, 1] - r[1, 2]) / (4 * x), (r[0, 1] + r[1, 0]) / (4 * x), (r[0, 2] + r[2, 0]) / (4 * x)
    elif k == 2:
        y = math.sqrt(1 + 2 * r[1, 1] - trace) / 2
        w, x, z = (r[0, 2] - r[2, 0]) / (4 * y), (r[0, 1] + r[1, 0]) / (4 * y), (r[1, 2] + r[2, 1]) / (4 * y)
    else:
        z = math.sqrt(1 + 2 * r[2, 2] - trace) / 2
        w, x, y = (r[1, 0] - r[0, 1]) / (4 * z), (r[0, 2] + r[2, 0]) / (4 * z), (r[1, 2] + r[2, 1]) / (4 * z)
    return {"x": float(x), "y": float(y), "z": float(z), "w": float(w)}


def intrinsics(
    *, hfov_deg: float, ground: dict[str, Any], frame_size: tuple[int, int], size: tuple[int, int]
) -> np.ndarray:
    """K (3 x 3) in the frame's pixels (``frame_size``: height, width) of the camera the tracker
    read the engines' picture (``size``) with: fx from the field of view across the picture,
    fy from the plane's focal length (a fraction of the picture's height), the principal point
    at the middle column and on the horizon's row; scaled from the picture to the frame."""
    from edge.postprocess.ground import GroundPlane

    (fh, fw), w = frame_size, size[1]
    fx = w / 2 / math.tan(math.radians(hfov_deg) / 2) * fw / w
    # the tracker's plane has its focal set (a given one, or square pixels from the field of view)
    focal = GroundPlane(**ground).with_focal(hfov_deg, size).focal
    assert focal is not None  # with_focal sets it
    fy = focal * fh
    return np.array([[fx, 0.0, fw / 2], [0.0, fy, ground["horizon"] * fh], [0.0, 0.0, 1.0]])


def calibration(record: dict[str, Any], ns: int, frame_id: str, placed: dict[str, Any]) -> dict[str, Any]:
    """The camera's CameraCalibration at capture time ``ns``: the frame has no distortion left
    (--undistort took it out, or the tracker assumed none)."""
    fh, fw = record["frame_size"]
    k = intrinsics(
        hfov_deg=placed["hfov_deg"],
        ground=placed["ground"],
        frame_size=(fh, fw),
        size=(int(record["size"][0]), int(record["size"][1])),
    )
    p = np.hstack([k, np.zeros((3, 1))])
    return {
        "timestamp": stamp(ns),
        "frame_id": frame_id,
        "width": int(fw),
        "height": int(fh),
        "distortion_model": "plumb_bob",
        "D": [0.0] * 5,
        "K": [float(v) for v in k.reshape(-1)],
        "R": [float(v) for v in np.eye(3).reshape(-1)],
        "P": [float(v) for v in p.reshape(-1)],
    }


def transform(ns: int, frame_id: str, placed: dict[str, Any], parent: str) -> dict[str, Any]:
    """The camera's pose in the ``parent`` (vehicle) frame: ``height_m`` over the road,
    ``mount_offset_m`` right of the vehicle's middle, ``mount_ahead_m`` ahead of the scene's
    origin (the vehicle's reference point), its axes turned its facing's way."""
    return {
        "timestamp": stamp(ns),
        "parent_frame_id": parent,
        "child_frame_id": frame_id,
        "translation": {
            "x": 0.0 + float(placed.get("mount_ahead_m", 0.0)),
            "y": 0.0 - float(placed["mount_offset_m"]),  # not -0.0 for a camera in the middle
            "z": float(placed["ground"]["height_m"]),
        },
        "rotation": quaternion(camera_axes(placed["facing"])),
    }


FLOAT32, UINT8 = 7, 1  # foxglove.PackedElementField's numeric types
CLOUD_FIELDS = [
    *({"name": n, "offset": 4 * i, "type": FLOAT32} for i, n in enumerate("xyz")),
    *({"name": n, "offset": 12 + i, "type": UINT8} for i, n in enumerate(("red", "green", "blue", "alpha"))),
]
CLOUD_POINT = np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("rgba", "u1", (4,))])
CLOUD_SCHEMA = (
    "foxglove.PointCloud",
    schema(
        "foxglove.PointCloud",
        {
            "timestamp": TIME,
            "frame_id": {"type": "string"},
            "pose": POSE,
            "point_stride": {"type": "integer", "minimum": 0},
            "fields": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "offset": {"type": "integer", "minimum": 0},
                        "type": {"type": "integer", "minimum": 0, "maximum": 8},
                    },
                },
            },
            "data": {"type": "string", "contentEncoding": "base64"},
        },
    ),
)


def unproject(depth: np.ndarray, k: np.ndarray, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """The camera-frame points (N x 3: x right, y down, z ahead) of every ``stride``-th pixel of
    ``depth`` each way (z-depth in metres; 0, or not finite, where there is none), each through
    its pixel's middle, and their (row, column) indices (N x 2)."""
    rows, cols = np.mgrid[0 : depth.shape[0] : stride, 0 : depth.shape[1] : stride]
    z = depth[rows, cols].astype(np.float64)
    keep = np.isfinite(z) & (z > 0)
    rows, cols, z = rows[keep], cols[keep], z[keep]
    x = (cols + 0.5 - k[0, 2]) / k[0, 0] * z
    y = (rows + 0.5 - k[1, 2]) / k[1, 1] * z
    return np.stack([x, y, z], axis=1), np.stack([rows, cols], axis=1)


def road_scale(
    semantic: np.ndarray | None, depth: np.ndarray, ground: dict[str, Any], *, fitted: Any = None
) -> float:
    """What the depth map's metres are to be multiplied by for its road to lie on ``ground``
    (the plane the camera's height is known over): the given reach (focal times height) over
    the one the road's pixels fit (edge.postprocess.road_fit; a fit that bends is taken too:
    its reach, a robust line's, scales well enough though its horizon does not place a plane);
    1 where no line fits, or where the two are more than twice apart (a fit gone wrong).
    ``fitted``: this depth map's RoadFit where the tracker fitted it already."""
    from edge.postprocess.road_fit import fit_road

    if ground.get("focal") is None:
        return 1.0
    if fitted is None and semantic is not None:
        fitted = fit_road(semantic, depth)
    if fitted is None:
        return 1.0
    scale = float(ground["focal"]) * float(ground["height_m"]) / fitted.reach
    return scale if 0.5 <= scale <= 2.0 else 1.0


def point_cloud(
    depth: np.ndarray,
    picture: np.ndarray,
    record: dict[str, Any],
    ns: int,
    frame_id: str,
    placed: dict[str, Any],
    stride: int,
    *,
    scale: float = 1.0,
) -> dict[str, Any]:
    """The depth map as a PointCloud in the camera's frame (its pose is the transform's), each
    point the colour of the engines' picture (RGB, ``picture``) where it was seen: every
    ``stride``-th pixel each way, its depth times ``scale`` (road_scale: the depth engine's
    metres brought to the road the camera stands over)."""
    h, w = record["size"]
    k = intrinsics(
        hfov_deg=placed["hfov_deg"], ground=placed["ground"], frame_size=depth.shape[:2], size=(h, w)
    )
    points, where = unproject(depth * scale, k, stride)
    # the picture's pixel over each depth pixel's middle (the two are one size but for a depth
    # engine of another resolution)
    prow = np.minimum(
        ((where[:, 0] + 0.5) * picture.shape[0] / depth.shape[0]).astype(int), picture.shape[0] - 1
    )
    pcol = np.minimum(
        ((where[:, 1] + 0.5) * picture.shape[1] / depth.shape[1]).astype(int), picture.shape[1] - 1
    )
    out = np.zeros(len(points), CLOUD_POINT)
    out["x"], out["y"], out["z"] = points[:, 0], points[:, 1], points[:, 2]
    out["rgba"][:, :3] = picture[prow, pcol, :3]
    out["rgba"][:, 3] = 255
    return {
        "timestamp": stamp(ns),
        "frame_id": frame_id,
        "pose": pose(0.0, 0.0, 0.0),
        "point_stride": CLOUD_POINT.itemsize,
        "fields": CLOUD_FIELDS,
        "data": base64.b64encode(out.tobytes()).decode(),
    }
