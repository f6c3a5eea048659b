"""How far a thing is from where it stands: the row of its feet in the picture, over a flat road.

A camera ``height_m`` over a flat road sees the ground at distance ``d`` on the row
``horizon + focal x height_m / d`` (rows, focal length and horizon as fractions of the
picture's height, which a stretch of the picture leaves as they are). So the row where a
thing meets the road gives its distance without the depth engine. Where both can be had
this is the better reading on the synthetic drives: a monocular depth engine's distances
of far things run short (the tiny one put oncoming cars 40-70 m off at half that), and
their offsets from the axis with them, which put them in the path
(benchmarks/ground_trial.py). It holds while the road is flat and the camera's pitch is
the one given; a hill or a braking car's nod moves the horizon.

A thing's feet are its lowest mask row, unless the picture's bottom cuts it or another
thing's mask covers the row below it in every column it reaches (a car behind a nearer
car): then the depth engine's reading stands.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from edge.errors import ConfigError
from edge.postprocess.panoptic import Instance

# beyond this a row's height is a few pixels of distance: the depth engine's reading stands
MAX_GROUND_M = 150.0


@dataclass(frozen=True)
class GroundPlane:
    """The camera over a flat road: ``height_m`` above it; the ``horizon``'s row and the
    vertical ``focal`` length as fractions of the picture's height (a camera of pitch p,
    principal row v0 and focal fy in an image h rows high: (v0 - fy tan p) / h and fy / h).
    ``focal`` None: square pixels, from the horizontal field of view (``with_focal``)."""

    height_m: float
    horizon: float = 0.5
    focal: float | None = None

    def __post_init__(self) -> None:
        checks = {
            "height_m": (self.height_m, "> 0 metres"),
            "horizon": (self.horizon, "a finite fraction of the picture's height"),
            "focal": (self.focal, "> 0 (a fraction of the picture's height)"),
        }
        for name, (value, expected) in checks.items():
            if name == "focal" and value is None:
                continue
            finite = isinstance(value, (int, float)) and math.isfinite(value)
            if not finite or (name != "horizon" and value is not None and value <= 0):
                raise ConfigError(f"GroundPlane {name} must be {expected}, got {value!r}")

    @classmethod
    def of_camera(cls, *, height_m: float, pitch_rad: float, fy: float, v0: float, rows: int) -> GroundPlane:
        """From a camera's mounting (``height_m`` above the road, ``pitch_rad`` down) and
        intrinsics (``fy``, ``v0`` in pixels of an image ``rows`` high), as Cityscapes'
        camera files give them."""
        if rows <= 0:
            raise ConfigError(f"GroundPlane: an image of {rows} rows")
        return cls(height_m=height_m, horizon=(v0 - fy * math.tan(pitch_rad)) / rows, focal=fy / rows)

    def with_focal(self, hfov_deg: float, size: tuple[int, int]) -> GroundPlane:
        """This plane, its focal length (where not given) that of square pixels in a picture of
        ``size`` (height, width) seen over ``hfov_deg`` across: (w / h) / (2 tan(hfov / 2))."""
        if self.focal is not None:
            return self
        focal = size[1] / size[0] / (2 * math.tan(math.radians(hfov_deg) / 2))
        return GroundPlane(height_m=self.height_m, horizon=self.horizon, focal=focal)

    def distance(self, row: float, rows: int) -> float | None:
        """The distance (m) of the road at ``row`` (pixel edges at whole numbers) of a picture
        ``rows`` high; None at or above the horizon, or beyond MAX_GROUND_M."""
        if self.focal is None:
            raise ConfigError("GroundPlane.distance needs the focal length (with_focal)")
        reach = self.focal * self.height_m  # the road's row below the horizon times its distance
        below = row / rows - self.horizon
        if below <= reach / MAX_GROUND_M:
            return None
        return reach / below

    def to_json(self) -> dict[str, float | None]:
        return {"height_m": self.height_m, "horizon": self.horizon, "focal": self.focal}


def windows(instances: Sequence[Instance]) -> np.ndarray:
    """Each instance's mask window in the picture, N x 4: top row, left column, and the row
    and column past its bottom right (whole pixels, as Instance.offset and mask place it)."""
    out = np.zeros((len(instances), 4), np.int64)
    for k, inst in enumerate(instances):
        y0, x0 = inst.offset
        out[k] = (y0, x0, y0 + inst.mask.shape[0], x0 + inst.mask.shape[1])
    return out


def feet_row(
    index: int, instances: Sequence[Instance], rows: int, boxes: np.ndarray | None = None
) -> float | None:
    """The row where instance ``index`` meets the road: its box's bottom, when its mask's
    lowest row has, in some column, a pixel below it that no other instance's mask holds;
    None where the picture's bottom cuts it or other things hide its feet everywhere.
    ``boxes``: the instances' windows, where already worked out."""
    inst = instances[index]
    filled = np.flatnonzero(inst.mask.any(axis=1))
    if not filled.size:
        return None
    y0, x0 = inst.offset
    last = int(filled[-1])
    below = y0 + last + 1
    if below >= rows or inst.box[3] >= rows - 0.5:
        return None
    cols = x0 + np.flatnonzero(inst.mask[last])
    win = windows(instances) if boxes is None else boxes
    # only the masks whose windows hold the row below, over some of these columns
    near = (win[:, 0] <= below) & (win[:, 2] > below) & (win[:, 1] <= cols[-1]) & (win[:, 3] > cols[0])
    near[index] = False
    free = np.ones(cols.size, bool)
    for j in np.flatnonzero(near).tolist():
        other = instances[j]
        oy, ox = other.offset
        c = cols - ox
        inside = (c >= 0) & (c < other.mask.shape[1])
        free[inside] &= ~other.mask[below - oy, c[inside]]
    return float(inst.box[3]) if free.any() else None


def ground_distances(
    instances: Sequence[Instance], ground: GroundPlane, size: tuple[int, int]
) -> list[float | None]:
    """Each instance's distance from its feet (feet_row) over ``ground``, in a picture of
    ``size`` (height, width); None where its feet are not seen or too far to read."""
    rows = size[0]
    boxes = windows(instances)
    out: list[float | None] = []
    for i in range(len(instances)):
        row = feet_row(i, instances, rows, boxes)
        out.append(None if row is None else ground.distance(row, rows))
    return out


def road_distance(
    depth: tuple[float, float] | None, ground_m: float | None, scales: Sequence[float]
) -> tuple[float, float] | None:
    """(distance, nearest) of a thing: ``ground_m`` where its feet are seen, its nearest side
    as much nearer as the depth map has it (``depth``: the depth engine's (median, near));
    where they are not, ``depth`` times the median of ``scales``, its track's recent ground
    over depth readings, so that a track's distances stay of one kind while its feet hide
    for a frame or two; else ``depth``."""
    if ground_m is not None:
        shape = 1.0 if depth is None or depth[0] <= 0 else depth[1] / depth[0]
        return ground_m, ground_m * shape
    if depth is None or not scales:
        return depth
    k = statistics.median(scales)
    return depth[0] * k, depth[1] * k
