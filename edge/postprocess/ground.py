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
car): then the depth engine's reading stands. Where other masks cover more than half of
that row across the thing's width, or its box reaches well below its mask, its feet are
only partly seen and may not be its feet at all (a truck's roof showing past the car
ahead's, its wheels behind it): such a reading is flagged (RoadReading.partly_hidden), for
the tracker to prefer a clean one.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from collections.abc import Iterable, MutableSequence, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from edge.errors import ConfigError
from edge.postprocess.panoptic import Instance
from edge.postprocess.road_fit import RoadFit

# beyond this a row's height is a few pixels of distance: the depth engine's reading stands
MAX_GROUND_M = 150.0
# nor where one row of the picture moves the distance by more than this share of it (d / (focal
# x height x rows)): boxes' bottoms are a row or two off, and beyond it the road's readings
# were worse than the tiny depth engine's, from 90 m at 256 rows and from 70 m at 128
# (benchmarks/ground_trial.py's drives)
MAX_ROW_SHARE = 0.16
# more than this share of the row below a thing's feet, across its width, in other masks:
# its feet are partly hidden. On the ground trial's drives from the lane, the readings so
# flagged held 53 of the 68 off by 30% or more, beside about 100 right ones
PARTLY_HIDDEN_SHARE = 0.5
# so are they where its box reaches more than this share of its height (and 2 rows) below its
# mask: the box's bottom is the detector's guess, not seen (the demo's truck behind the car
# ahead: its mask ends on the car's roof, its box 32 rows lower)
UNSEEN_SHARE = 0.1


class Feet(NamedTuple):
    """Where a thing meets the road: ``row`` (its box's bottom); ``covered``, the share of
    the row below its mask, across the mask's width, that other things' masks hold; and
    ``partly_hidden``: that share is over PARTLY_HIDDEN_SHARE, or the box reaches more than
    UNSEEN_SHARE of its height below the mask."""

    row: float
    covered: float
    partly_hidden: bool


class RoadReading(NamedTuple):
    """A thing's distance read from the road (m), whether its feet were only partly seen
    (Feet.partly_hidden), and the row it was read at (Feet.row)."""

    distance_m: float
    partly_hidden: bool
    row: float


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
        ``rows`` high; None at or above the horizon, beyond MAX_GROUND_M, or where a row is
        worth more than MAX_ROW_SHARE of it."""
        if self.focal is None:
            raise ConfigError("GroundPlane.distance needs the focal length (with_focal)")
        reach = self.focal * self.height_m  # the road's row below the horizon times its distance
        below = row / rows - self.horizon
        if below <= reach / min(MAX_GROUND_M, MAX_ROW_SHARE * reach * rows):
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


def feet(
    index: int, instances: Sequence[Instance], rows: int, boxes: np.ndarray | None = None
) -> Feet | None:
    """Where instance ``index`` meets the road: its box's bottom, when its mask's lowest
    row has, in some column, a pixel below it that no other instance's mask holds; None
    where the picture's bottom cuts it or other things hide its feet everywhere. ``boxes``:
    the instances' windows, where already worked out."""
    inst = instances[index]
    under = _row_under(inst)
    if under is None:
        return None
    last, below = under
    if below >= rows or inst.box[3] >= rows - 0.5:
        return None
    covered = np.zeros(inst.mask.shape[1], bool)
    for _, held in _holding(index, instances, below, boxes):
        covered |= held
    if covered[inst.mask[last]].all():
        return None
    share, unseen = float(covered.mean()), inst.box[3] - below
    partly = share > PARTLY_HIDDEN_SHARE or unseen > max(2.0, UNSEEN_SHARE * (inst.box[3] - inst.box[1]))
    return Feet(float(inst.box[3]), share, bool(partly))


def hiding_feet(instances: Sequence[Instance], rows: int) -> list[tuple[int, ...]]:
    """For each instance, the nearer ones (their box's bottom lower) whose masks hold some
    of the row under its mask's lowest pixels: the things it stands behind, in a picture
    of ``rows``; none where the picture's bottom cuts it."""
    boxes = windows(instances)
    out: list[tuple[int, ...]] = []
    for i, inst in enumerate(instances):
        under = _row_under(inst)
        if under is None or under[1] >= rows:
            out.append(())
            continue
        lowest = inst.mask[under[0]]
        out.append(
            tuple(
                j
                for j, held in _holding(i, instances, under[1], boxes)
                if instances[j].box[3] > inst.box[3] and held[lowest].any()
            )
        )
    return out


def _row_under(inst: Instance) -> tuple[int, int] | None:
    """The lowest row of an instance's mask that holds a pixel (in the mask), and the
    picture's row under it; None for an empty mask."""
    filled = np.flatnonzero(inst.mask.any(axis=1))
    if not filled.size:
        return None
    last = int(filled[-1])
    return last, inst.offset[0] + last + 1


def _holding(
    index: int, instances: Sequence[Instance], row: int, boxes: np.ndarray | None
) -> list[tuple[int, np.ndarray]]:
    """The other instances whose masks hold some of picture row ``row`` over instance
    ``index``'s mask's columns, each with those columns (over its mask's width)."""
    inst = instances[index]
    x0, width = inst.offset[1], inst.mask.shape[1]
    win = windows(instances) if boxes is None else boxes
    # only the masks whose windows hold the row, over some of this one's columns
    near = (win[:, 0] <= row) & (win[:, 2] > row) & (win[:, 1] < x0 + width) & (win[:, 3] > x0)
    near[index] = False
    out = []
    for j in np.flatnonzero(near).tolist():
        other = instances[j]
        oy, ox = other.offset
        lo, hi = max(x0, ox), min(x0 + width, ox + other.mask.shape[1])
        held = np.zeros(width, bool)
        held[lo - x0 : hi - x0] = other.mask[row - oy, lo - ox : hi - ox]
        if held.any():
            out.append((j, held))
    return out


def road_readings(
    instances: Sequence[Instance], ground: GroundPlane, size: tuple[int, int]
) -> list[RoadReading | None]:
    """Each instance's distance from its feet (feet) over ``ground``, in a picture of
    ``size`` (height, width), flagged where they were partly hidden; None where its feet
    are not seen or too far to read."""
    rows = size[0]
    boxes = windows(instances)
    out: list[RoadReading | None] = []
    for i in range(len(instances)):
        found = feet(i, instances, rows, boxes)
        d = None if found is None else ground.distance(found.row, rows)
        if found is None or d is None:
            out.append(None)
        else:
            out.append(RoadReading(d, found.partly_hidden, found.row))
    return out


class Scale(NamedTuple):
    """A track's distance read from the road over the depth engine's (``ratio``) at ``t_s``,
    with the row of its feet and the depth engine's median (``depth_m``) it was read from."""

    t_s: float
    ratio: float
    row: float
    depth_m: float


def take_reading(
    reading: RoadReading | None,
    depth: tuple[float, float] | None,
    scales: MutableSequence[Scale],
    t_s: float,
) -> float | None:
    """The distance read from the road that a track takes from ``reading`` at ``t_s``,
    its ratio to the depth engine's (``depth``: median, near) added to the track's
    ``scales`` where its feet were seen whole. Partly hidden feet may
    not be its feet (a truck's roof showing past the car ahead's read 66 m for 37): a
    track with such ratios goes by them instead (road_distance), and only one without
    takes the reading, having nothing better (an oncoming car half behind the car ahead
    was read right, where the depth engine put it at half its distance)."""
    if reading is None or (reading.partly_hidden and scales):
        return None
    if not reading.partly_hidden and depth is not None and depth[0] > 0:
        scales.append(Scale(t_s, reading.distance_m / depth[0], reading.row, depth[0]))
    return reading.distance_m


class Range(NamedTuple):
    """A thing's distance as road_distance reads it, metres, and what from."""

    distance_m: float
    nearest_m: float  # its nearest side
    source: str  # "road", "scaled" (the depth map's times the road's ratios) or "depth"


def road_distance(
    depth: tuple[float, float] | None, ground_m: float | None, scales: Sequence[float]
) -> Range | None:
    """A thing's Range: ``ground_m`` where its feet are seen, its nearest side as much
    nearer as the depth map has it (``depth``: the depth engine's (median, near)); where
    they are not, ``depth`` times the median of ``scales``, its track's recent ground over
    depth readings, so that a track's distances stay of one kind while its feet hide for a
    frame or two; else ``depth``."""
    if ground_m is not None:
        shape = 1.0 if depth is None or depth[0] <= 0 else depth[1] / depth[0]
        return Range(ground_m, ground_m * shape, "road")
    if depth is None:
        return None
    k = statistics.median(scales) if scales else 1.0
    return Range(depth[0] * k, depth[1] * k, "scaled" if scales else "depth")


def rescaled(scales: Iterable[Scale], plane: GroundPlane, rows: int) -> deque[Scale]:
    """A track's ``scales`` read again over ``plane`` (a fitted one moves: reread); a row it
    no longer reads keeps its ratio."""
    out: deque[Scale] = deque()
    for s in scales:
        d = plane.distance(s.row, rows)
        out.append(s if d is None else s._replace(ratio=d / s.depth_m))
    return out


def reread(
    ranges: Iterable[tuple[float, float]],
    reads: Iterable[tuple[float, float | None, float | None]],
    scales: Sequence[Scale],
    plane: GroundPlane,
    rows: int,
) -> deque[tuple[float, float]]:
    """A track's ``ranges`` (time, distance) read again over ``plane``, as ``reads`` (time, the
    row of its feet where read from the road, the depth engine's median where scaled) say: a
    fitted plane moves as its window's fits come and go, and a far thing's distance with its
    horizon (at 55 m one row of 256 is 4 m), which the distances' slope would take for the
    thing's motion. Scaled ones go by the median of ``scales`` (rescaled over ``plane``), so
    that ratios coming and going do not move them either. A row the plane no longer reads
    (MAX_GROUND_M) keeps its distance."""
    k = statistics.median(s.ratio for s in scales) if scales else None
    out: deque[tuple[float, float]] = deque()
    for (t, d), (_, row, depth) in zip(ranges, reads, strict=True):
        if row is not None:
            d = plane.distance(row, rows) or d
        elif depth is not None and k is not None:
            d = depth * k
        out.append((t, d))
    return out


def camera_plane(fitted: GroundPlane, hfov_deg: float | None, size: tuple[int, int]) -> GroundPlane:
    """A plane FittedGround gives (focal length 1, height the fits' reach) as a camera's
    height, horizon and field of view give it (``--camera-height``, ``--horizon``, ``--hfov``):
    the same distances for a picture of ``size``, the height in the depth engine's metres.
    Without ``hfov_deg`` it stays as it is: the height needs the focal length."""
    if hfov_deg is None:
        return fitted
    focal = GroundPlane(height_m=1.0, horizon=fitted.horizon).with_focal(hfov_deg, size).focal
    assert focal is not None and fitted.focal is not None  # with_focal gives one
    return GroundPlane(height_m=fitted.height_m * fitted.focal / focal, horizon=fitted.horizon, focal=focal)


# the fits a fitted plane is the median of: a camera's mount stays put and a road's slope
# changes over seconds. On the ground trial's drives 2 s gave what 3, 5 and 10 s did, and
# 1 s (the speed window) 3 more never-due warnings and 4 more false cut-ins at 256x512
FIT_WINDOW_S = 2.0
# no plane where the window's fits bend more than this (their median RoadFit.bend): the
# road's far rows and near rows then disagree on where the horizon is, and the line through
# both is neither's. On the ground trial's drives the tiny depth engine's road bent 0.004-0.008
# (median) at 256 rows and 0.078-0.098 at 128, where its line put the horizon 3-5 rows high
MAX_BEND = 0.03
# and the last plane taken is held through the stretches none is: depth_tiny trained at both
# sizes reads the road at 128x256 with a median bend near MAX_BEND, so the plane came and went
# (none in 450 of 1,200 frames of a ground trial set), and trucks ranged from the depth map
# meanwhile were read at half their distance: the things warned of never due were 29 at
# 128x256, 21 with the plane held (benchmarks/ground_trial.py)


class FittedGround:
    """The road's plane of a camera nobody measured: the median horizon and reach of the
    frames' fits (edge.postprocess.road_fit) within the last ``window_s`` of the stream, so
    that one frame's odd fit (little road showing, a car's shadow) moves it little; not
    taken while their median bend is over ``max_bend`` (a road that is no plane in the depth
    map: a hill, or a depth engine run at a size it reads the road wrong at). The last plane
    taken stands through such stretches, and where no frame in the window had a fit: the
    camera's mount has not moved, and a plane that came and went switched the tracks' distances
    between the road's and the depth map's. None until one is taken."""

    def __init__(self, window_s: float = FIT_WINDOW_S, max_bend: float = MAX_BEND) -> None:
        self.window_s = window_s
        self.max_bend = max_bend
        self._fits: deque[tuple[float, RoadFit]] = deque()
        self._held: GroundPlane | None = None

    def reset(self) -> None:
        self._fits.clear()
        self._held = None

    def update(self, fit: RoadFit | None, t_s: float) -> GroundPlane | None:
        """The plane after this frame's ``fit`` (None: it had none) at ``t_s``: the window's,
        or the last one taken; None until one is taken. Its focal length is 1 and its
        height the fits' reach: the pair a distance is read from (GroundPlane.distance)."""
        if fit is not None:
            self._fits.append((t_s, fit))
        while self._fits and t_s - self._fits[0][0] > self.window_s:
            self._fits.popleft()
        if not self._fits:
            return self._held
        if statistics.median(math.inf if f.bend is None else f.bend for _, f in self._fits) > self.max_bend:
            return self._held
        horizon = statistics.median(f.horizon for _, f in self._fits)
        reach = statistics.median(f.reach for _, f in self._fits)
        self._held = GroundPlane(height_m=reach, horizon=horizon, focal=1.0)
        return self._held
