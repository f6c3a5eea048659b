"""The pieces of Foxglove's message schemas (github.com/foxglove/schemas, jsonschema/) that
edge's Foxglove messages share: times, vectors, poses, colours; and the times and poses
themselves as the messages carry them."""

from __future__ import annotations

import json
from typing import Any

NUMBER = {"type": "number"}
NSEC = {"type": "integer", "minimum": 0, "maximum": 999_999_999}
TIME = {"type": "object", "properties": {"sec": {"type": "integer", "minimum": 0}, "nsec": NSEC}}
DURATION = {"type": "object", "properties": {"sec": {"type": "integer"}, "nsec": NSEC}}
POINT2 = {"type": "object", "properties": dict.fromkeys("xy", NUMBER)}
VECTOR3 = {"type": "object", "properties": dict.fromkeys("xyz", NUMBER)}
QUATERNION = {"type": "object", "properties": dict.fromkeys("xyzw", NUMBER)}
POSE = {"type": "object", "properties": {"position": VECTOR3, "orientation": QUATERNION}}
COLOR = {"type": "object", "properties": dict.fromkeys("rgba", NUMBER)}


def schema(title: str, properties: dict[str, Any]) -> bytes:
    """A message's JSON Schema as a channel carries it: ``title`` is Foxglove's schema name."""
    return json.dumps({"title": title, "type": "object", "properties": properties}).encode()


def stamp(ns: int) -> dict[str, int]:
    """A time as Foxglove's messages have it, from nanoseconds since the epoch."""
    return {"sec": ns // 1_000_000_000, "nsec": ns % 1_000_000_000}


def pose(x: float, y: float, z: float, orientation: dict[str, float] | None = None) -> dict[str, Any]:
    """A pose at (x, y, z), unturned unless ``orientation`` (a unit quaternion) says."""
    turned = orientation or {"x": 0.0, "y": 0.0, "z": 0.0, "w": 1.0}
    return {"position": {"x": x, "y": y, "z": z}, "orientation": dict(turned)}
