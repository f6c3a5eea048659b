"""A frame's placed objects as a 3D scene for Foxglove's 3D panel (``foxglove.SceneUpdate``):
a box the size of its class a thing, where the tracker placed it, with its label over it and
an arrow the way it moves against the vehicle, and the edges of the path ahead that
``in_path`` is measured against (--path-width).

Placed means the camera's field of view is known (``--hfov``, or the source's: synthetic://,
cityscapes://DIR with camera files): each object then has ``ahead_m`` (along the vehicle, from
the camera) and ``lateral_m`` (right of the vehicle's middle). The scene's frame, ``vehicle``,
follows ROS's axes as Foxglove does: x ahead, y left, z up, the road at z = 0, its origin
at the vehicle's middle across it and, along it, level with the camera, or at the vehicle's
reference point where --mount-ahead places the camera along the vehicle (so several cameras'
things share one frame). fused_scene draws the things of every camera at once
(edge.postprocess.fusion), a thing two cameras see once.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from edge.postprocess.facing import Facing, path_side, turn, yaw_deg
from edge.stream.foxglove_schema import COLOR, DURATION, NUMBER, POSE, TIME, VECTOR3, pose, schema, stamp

SCENE_FRAME = "vehicle"
# typical length (along the road), width and height, metres: the picture gives a thing's place,
# not its extent along the line of sight, so each is drawn its class's size, aligned with the road
THING_SIZE_M: dict[str, tuple[float, float, float]] = {
    "person": (0.5, 0.5, 1.7),
    "rider": (1.8, 0.6, 1.7),
    "car": (4.5, 1.8, 1.5),
    "truck": (8.0, 2.5, 3.2),
    "bus": (12.0, 2.55, 3.2),
    "train": (20.0, 3.0, 3.8),
    "motorcycle": (2.1, 0.8, 1.2),
    "bicycle": (1.8, 0.6, 1.1),
}
UNKNOWN_SIZE_M = (1.0, 1.0, 1.0)
PATH_DRAWN_M = 50.0  # how far the path's edges are drawn ahead (or behind) of the camera
LINE_LIST = 2  # foxglove.LinePrimitive's type: each pair of points a segment
ARROW_S = 1.0  # a thing's arrow is how far it goes in this long, against the vehicle
MIN_ARROW_MPS = 0.5  # slower than this: no arrow
WARNED_RGBA = (1.0, 0.2, 0.2, 0.6)
OTHER_RGBA = (0.2, 0.9, 0.4, 0.45)
DELETE_ALL = 1  # foxglove.SceneEntityDeletionType: every entity the topic sent before
METADATA = ("class", "track", "score", "distance_m", "ahead_m", "lateral_m", "closing_mps", "ttc_s", "warned")

_ENTITY = {
    "type": "object",
    "properties": {
        "timestamp": TIME,
        "frame_id": {"type": "string"},
        "id": {"type": "string"},
        "lifetime": DURATION,
        "frame_locked": {"type": "boolean"},
        "metadata": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"key": {"type": "string"}, "value": {"type": "string"}},
            },
        },
        "cubes": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"pose": POSE, "size": VECTOR3, "color": COLOR},
            },
        },
        "lines": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "type": {"enum": [0, 1, 2]},
                    "pose": POSE,
                    "thickness": NUMBER,
                    "scale_invariant": {"type": "boolean"},
                    "points": {"type": "array", "items": VECTOR3},
                    "color": COLOR,
                },
            },
        },
        "arrows": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "pose": POSE,
                    "shaft_length": NUMBER,
                    "shaft_diameter": NUMBER,
                    "head_length": NUMBER,
                    "head_diameter": NUMBER,
                    "color": COLOR,
                },
            },
        },
        "texts": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "pose": POSE,
                    "billboard": {"type": "boolean"},
                    "font_size": NUMBER,
                    "scale_invariant": {"type": "boolean"},
                    "color": COLOR,
                    "text": {"type": "string"},
                },
            },
        },
    },
}
# Foxglove's schema (github.com/foxglove/schemas, jsonschema/SceneUpdate.json), the fields written
SCENE_SCHEMA = (
    "foxglove.SceneUpdate",
    schema(
        "foxglove.SceneUpdate",
        {
            "deletions": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"timestamp": TIME, "type": {"enum": [0, 1]}, "id": {"type": "string"}},
                },
            },
            "entities": {"type": "array", "items": _ENTITY},
        },
    ),
)


def box_centre(ahead: float, lateral: float, size: tuple[float, float, float]) -> tuple[float, float]:
    """Where a thing of ``size`` read at (``ahead``, ``lateral``: its near side, where it meets
    the road) has its middle, in the scene's x (ahead) and y (left): half its length further
    along the vehicle where it is more ahead or behind than beside, else half its width
    further out to its side."""
    length, width, _ = size
    x, y = ahead, -lateral
    if abs(ahead) >= abs(lateral):
        x += math.copysign(length / 2, ahead)
    else:
        y += math.copysign(width / 2, y)
    return x, y


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)  # true, not Python's True


def _label(obj: dict[str, Any]) -> str:
    label = obj["class"] + (f" #{obj['track']}" if obj.get("track") is not None else "")
    from edge.stream.foxglove_messages import how_far

    distance = how_far(obj)
    return label + (f" {distance:.0f} m" if distance is not None else "")


def path_entity(
    when: dict[str, int], facing: Facing, half_width_m: float, from_m: float = 0.0
) -> dict[str, Any] | None:
    """The path's edges, ``half_width_m`` either side of the vehicle's middle, drawn from the
    camera (``from_m`` along the vehicle) PATH_DRAWN_M ahead of a front camera or behind a
    rear one (a side camera has no path)."""
    side = path_side(facing)
    if side is None:
        return None
    far = from_m + (PATH_DRAWN_M if side == "front" else -PATH_DRAWN_M)
    points = [{"x": x, "y": y, "z": 0.0} for y in (half_width_m, -half_width_m) for x in (from_m, far)]
    return {
        "timestamp": when,
        "frame_id": SCENE_FRAME,
        "id": "path",
        "lifetime": {"sec": 0, "nsec": 0},
        "frame_locked": True,
        "metadata": [{"key": "half_width_m", "value": _text(half_width_m)}],
        "lines": [
            {
                "type": LINE_LIST,
                "pose": pose(0.0, 0.0, 0.0),
                "thickness": 2.0,
                "scale_invariant": True,
                "points": points,
                "color": {"r": 1.0, "g": 0.85, "b": 0.2, "a": 0.8},
            }
        ],
    }


def velocity(obj: dict[str, Any], facing: Facing) -> tuple[float, float] | None:
    """How a thing seen by a camera looking along the vehicle (within 45 degrees of ahead or
    behind) moves against it, m/s in the scene's x (ahead) and y (left): its closing speed
    along the camera's axis, its ``lateral_mps`` across the vehicle; None where neither is
    known yet, or for a side camera's (whose closing speed is across)."""
    closing, across = obj.get("closing_mps"), obj.get("lateral_mps")
    if path_side(facing) is None or (closing is None and across is None):
        return None
    c, s = turn(facing)
    radial = -(closing or 0.0)  # along the camera's axis, away from it
    # lateral_mps (right) = aside x cos - radial x sin: what moves across the camera's axis
    aside = ((across or 0.0) + radial * s) / c
    return radial * c + aside * s, radial * s - aside * c


def motion_arrows(
    obj: dict[str, Any], facing: Facing, centre: tuple[float, float, float]
) -> list[dict[str, Any]]:
    """An arrow from the thing's middle the way it moves, as long as it goes in ARROW_S (none
    below MIN_ARROW_MPS, or where its motion is not known)."""
    moving = velocity(obj, facing)
    if moving is None or math.hypot(*moving) < MIN_ARROW_MPS:
        return []
    vx, vy = moving
    length = math.hypot(vx, vy) * ARROW_S
    yaw = math.atan2(vy, vx)  # about z: the arrow points along +x unturned
    head = min(0.6, length / 3)
    return [
        {
            "pose": pose(*centre, {"x": 0.0, "y": 0.0, "z": math.sin(yaw / 2), "w": math.cos(yaw / 2)}),
            "shaft_length": length - head,
            "shaft_diameter": 0.15,
            "head_length": head,
            "head_diameter": 0.4,
            "color": {"r": 1.0, "g": 0.85, "b": 0.2, "a": 0.9},
        }
    ]


def _cube(x: float, y: float, size: tuple[float, float, float], rgba: tuple[float, ...]) -> dict[str, Any]:
    """A thing's box, standing on the road at (x, y)."""
    return {
        "pose": pose(x, y, size[2] / 2),
        "size": dict(zip("xyz", size, strict=True)),
        "color": dict(zip("rgba", rgba, strict=True)),
    }


def _text_over(x: float, y: float, size: tuple[float, float, float], text: str) -> dict[str, Any]:
    """A thing's label, over its box, facing the viewer."""
    return {
        "pose": pose(x, y, size[2] + 0.4),
        "billboard": True,
        "font_size": 14.0,
        "scale_invariant": True,
        "color": {"r": 1.0, "g": 1.0, "b": 1.0, "a": 1.0},
        "text": text,
    }


def scene_update(
    record: dict[str, Any],
    ns: int,
    *,
    facing: Facing = "front",
    path_half_width_m: float | None = None,
    mount_ahead_m: float = 0.0,
) -> dict[str, Any]:
    """The scene of an objects line at capture time ``ns``: the topic's earlier entities
    deleted, then the path's edges (``path_half_width_m`` either side of the vehicle's middle,
    from the camera, ``mount_ahead_m`` along the vehicle, for a front or rear camera,
    ``facing``) and one entity a placed object (its box and label; unplaced ones are left out)."""
    when = stamp(ns)
    path = (
        None
        if path_half_width_m is None
        else path_entity(when, facing, path_half_width_m, from_m=float(mount_ahead_m))
    )
    entities = [] if path is None else [path]
    for obj in record["objects"]:
        ahead, lateral = obj.get("ahead_m"), obj.get("lateral_m")
        if ahead is None or lateral is None:
            continue
        size = THING_SIZE_M.get(obj["class"], UNKNOWN_SIZE_M)
        x, y = box_centre(ahead, lateral, size)
        rgba = WARNED_RGBA if obj.get("warned") else OTHER_RGBA
        track = obj.get("track")
        entities.append(
            {
                "timestamp": when,
                "frame_id": SCENE_FRAME,
                "id": f"track {track}" if track is not None else f"object {obj['id']}",
                "lifetime": {"sec": 0, "nsec": 0},  # until the next frame's update deletes it
                "frame_locked": True,
                "metadata": [{"key": k, "value": _text(obj[k])} for k in METADATA if obj.get(k) is not None],
                "cubes": [_cube(x, y, size, rgba)],
                "arrows": motion_arrows(obj, facing, (x, y, size[2] / 2)),
                "texts": [_text_over(x, y, size, _label(obj))],
            }
        )
    return {"deletions": [{"timestamp": when, "type": DELETE_ALL, "id": ""}], "entities": entities}


FUSED_RGBA = (0.3, 0.6, 1.0, 0.45)
FUSED_METADATA = (
    "class",
    "id",
    "score",
    "from_vehicle_m",
    "ahead_m",
    "lateral_m",
    "in_path",
    "ttc_s",
    "warned",
)


VIEW_DRAWN_M = 50.0  # how far a camera's view's edges are drawn from it
VIEW_RGBA = {"r": 0.55, "g": 0.58, "b": 0.64, "a": 0.7}


def view_entity(camera: str, placed: Mapping[str, Any], when: dict[str, int]) -> dict[str, Any]:
    """Camera ``camera``'s view on the vehicle: its field of view's two edges, from where it is
    mounted (``placed``: steps.track_result's, its facing, hfov_deg and mount offsets),
    VIEW_DRAWN_M out."""
    x, y = placed.get("mount_ahead_m", 0.0), -placed.get("mount_offset_m", 0.0)
    yaw, half = math.radians(yaw_deg(placed["facing"])), math.radians(placed["hfov_deg"] / 2)
    points = []
    for edge in (yaw + half, yaw - half):
        points += [{"x": x, "y": y, "z": 0.0}]
        points += [{"x": x + VIEW_DRAWN_M * math.cos(edge), "y": y + VIEW_DRAWN_M * math.sin(edge), "z": 0.0}]
    return {
        "timestamp": when,
        "frame_id": SCENE_FRAME,
        "id": f"view {camera}",
        "lifetime": {"sec": 0, "nsec": 0},
        "frame_locked": True,
        "metadata": [
            {"key": "camera", "value": camera},
            {"key": "hfov_deg", "value": _text(placed["hfov_deg"])},
        ],
        "lines": [
            {
                "type": LINE_LIST,
                "pose": pose(0.0, 0.0, 0.0),
                "thickness": 1.0,
                "scale_invariant": True,
                "points": points,
                "color": VIEW_RGBA,
            }
        ],
        "texts": [_text_over(x, y, (0.0, 0.0, 0.0), camera)],
    }


def fused_scene(
    line: dict[str, Any], ns: int, views: Mapping[str, Mapping[str, Any]] | None = None
) -> dict[str, Any]:
    """The things around the vehicle of a fused line (edge.stream.object_sinks.FusedLines) as
    a scene: a box the size of its class a placed thing, blue (red where warned of), its label
    saying which cameras see it, and each camera's view of ``views`` (FusedLines.views) where
    it is mounted; the topic's earlier entities deleted."""
    when = stamp(ns)
    entities = [view_entity(camera, placed, when) for camera, placed in sorted((views or {}).items())]
    for thing in line["things"]:
        if thing["ahead_m"] is None or thing["lateral_m"] is None:
            continue
        size = THING_SIZE_M.get(thing["class"], UNKNOWN_SIZE_M)
        x, y = box_centre(thing["ahead_m"], thing["lateral_m"], size)
        rgba = WARNED_RGBA if thing["warned"] else FUSED_RGBA
        cameras = ", ".join(seen["camera"] for seen in thing["seen_by"])
        entities.append(
            {
                "timestamp": when,
                "frame_id": SCENE_FRAME,
                "id": f"thing {thing['id']}",
                "lifetime": {"sec": 0, "nsec": 0},
                "frame_locked": True,
                "metadata": [
                    {"key": k, "value": _text(thing[k])} for k in FUSED_METADATA if thing[k] is not None
                ]
                + [{"key": "seen_by", "value": cameras}],
                "cubes": [_cube(x, y, size, rgba)],
                "texts": [_text_over(x, y, size, f"{thing['class']} ({cameras})")],
            }
        )
    return {"deletions": [{"timestamp": when, "type": DELETE_ALL, "id": ""}], "entities": entities}
