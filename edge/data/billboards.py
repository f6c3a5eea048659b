"""The synthetic world's things: camera-facing planes (billboards), how some of them move,
and the shapes drawn on them."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Crossing:
    """A move across the road: from the thing's own x at ``start_s`` (seconds into the
    drive) to ``to_x`` over ``duration_s``, eased in and out (a car pulling out) or at a
    steady pace (a person walking)."""

    start_s: float
    duration_s: float
    to_x: float
    eased: bool = False


@dataclass(frozen=True)
class Braking:
    """A stop: from ``start_s`` (seconds into the drive) the thing slows at ``decel_mps2``
    until it stands."""

    start_s: float
    decel_mps2: float


@dataclass(frozen=True)
class Billboard:
    """A camera-facing plane at world (x, z), standing on the ground (bottom at ``y0``)."""

    label: int
    instance: int  # 0 for stuff
    x: float
    z: float
    width: float
    height: float
    color: tuple[int, int, int]
    y0: float = 0.0
    speed: float = 0.0  # m/s along +z
    crossing: Crossing | None = None
    braking: Braking | None = None

    def x_at(self, t: float) -> float:
        """The middle's x at ``t`` seconds into the drive."""
        c = self.crossing
        if c is None or t <= c.start_s:
            return self.x
        s = min((t - c.start_s) / c.duration_s, 1.0)
        if c.eased:
            s = (1.0 - math.cos(math.pi * s)) / 2.0
        return self.x + (c.to_x - self.x) * s

    def z_at(self, t: float) -> float:
        """The z at ``t`` seconds into the drive."""
        b = self.braking
        if b is None or t <= b.start_s:
            return self.z + self.speed * t
        slowing = min(t - b.start_s, abs(self.speed) / b.decel_mps2)  # until it stands
        step = abs(self.speed) * slowing - b.decel_mps2 * slowing**2 / 2
        return self.z + self.speed * b.start_s + math.copysign(step, self.speed)


def shape_of(kind: str, su: np.ndarray, sv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mask and shading of a billboard in its own [0, 1] coordinates (sv = 0 at the top)."""
    inside = (su >= 0) & (su <= 1) & (sv >= 0) & (sv <= 1)
    shade = np.ones(su.shape, np.float32)
    if kind == "car":
        body = inside & ((sv > 0.35) | ((su > 0.15) & (su < 0.85)))
        shade = np.where((sv < 0.35) & (su > 0.2) & (su < 0.8), 0.35, 1.0).astype(np.float32)  # windows
        shade = np.where(sv > 0.85, 0.3, shade).astype(np.float32)  # tyres / shadow
        return body, shade
    if kind == "person":
        head = (su - 0.5) ** 2 / 0.04 + (sv - 0.08) ** 2 / 0.006 < 1
        body = inside & (sv > 0.14) & (np.abs(su - 0.5) < 0.5 - 0.25 * np.clip(sv - 0.55, 0, 1))
        shade = np.where(sv > 0.55, 0.6, 1.0).astype(np.float32)
        return (head | body) & inside, shade
    if kind == "bicycle":
        wheels = ((su - 0.2) ** 2 + ((sv - 0.7) * 0.65) ** 2 < 0.03) | (
            (su - 0.8) ** 2 + ((sv - 0.7) * 0.65) ** 2 < 0.03
        )
        frame = (sv > 0.35) & (sv < 0.55) & (su > 0.2) & (su < 0.8)
        return inside & (wheels | frame), shade
    if kind == "disc":
        return (su - 0.5) ** 2 + (sv - 0.5) ** 2 < 0.25, shade
    if kind == "crown":
        return (su - 0.5) ** 2 + (sv - 0.5) ** 2 < 0.25, (0.8 + 0.2 * (1 - sv)).astype(np.float32)
    return inside, shade
