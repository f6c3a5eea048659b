"""Which way a camera looks on the vehicle: ``front``, ``rear``, ``left``, ``right``, or its
yaw in degrees (left of straight ahead positive, as the vehicle's frame turns: x ahead, y
left), for a corner camera of a surround rig (45, -135).

A camera within 45 degrees of straight ahead or behind looks along the vehicle: its things
can be in the path (ahead, or behind), and cut into it; one looking further aside sees across
the vehicle, and has no path.
"""

from __future__ import annotations

import math

from edge.errors import ConfigError

FACINGS = ("front", "rear", "left", "right")
YAW_DEG = {"front": 0.0, "left": 90.0, "rear": 180.0, "right": -90.0}
# the four names' cosine and sine exactly, so their cameras place things as before
_TURNS = {"front": (1.0, 0.0), "left": (0.0, 1.0), "rear": (-1.0, 0.0), "right": (0.0, -1.0)}

Facing = str | float


def check_facing(facing: object) -> Facing:
    """``facing`` if it is one of FACINGS or a yaw in degrees in (-180, 180]; else a ConfigError."""
    if isinstance(facing, str) and facing in FACINGS:
        return facing
    if isinstance(facing, (int, float)) and not isinstance(facing, bool) and -180.0 < facing <= 180.0:
        return float(facing)
    raise ConfigError(
        f"facing must be one of {', '.join(FACINGS)} or a yaw in degrees above -180 and up to 180 "
        f"(left of straight ahead positive), got {facing!r}"
    )


def yaw_deg(facing: Facing) -> float:
    return YAW_DEG[facing] if isinstance(facing, str) else float(facing)


def turn(facing: Facing) -> tuple[float, float]:
    """The cosine and sine of the camera's yaw."""
    if isinstance(facing, str):
        return _TURNS[facing]
    yaw = math.radians(float(facing))
    return math.cos(yaw), math.sin(yaw)


def placed(facing: Facing, across: float, distance: float) -> tuple[float, float]:
    """(lateral, ahead) on the vehicle, metres right of and ahead of the camera, of a thing
    ``distance`` along the camera's axis and ``across`` right of it."""
    c, s = turn(facing)
    return across * c - distance * s, distance * c + across * s


def moving_aside(facing: Facing, across_mps: float, closing_mps: float) -> float:
    """m/s right on the vehicle of a thing moving ``across_mps`` right of the camera's axis
    and closing on the camera at ``closing_mps``."""
    c, s = turn(facing)
    return across_mps * c + closing_mps * s


def path_side(facing: Facing) -> str | None:
    """``front`` for a camera within 45 degrees of straight ahead, ``rear`` within 45 of
    straight behind (each sees the path that way), else None (it sees across the vehicle)."""
    yaw = abs(yaw_deg(facing))
    if yaw <= 45.0:
        return "front"
    if yaw >= 135.0:
        return "rear"
    return None
