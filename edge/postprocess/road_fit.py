"""The road's plane as one frame's depth map has it, for a camera whose height and horizon
nobody gave (edge.postprocess.ground reads distances from such a plane).

A camera over a flat road sees the road at distance ``d`` on the row ``horizon + reach / d``
(rows as fractions of the picture's height; ``reach`` is the focal length times the
camera's height, edge.postprocess.ground.GroundPlane). So ``1 / d`` is a line in the row,
and the depth engine's road pixels give its two numbers: each row's median depth over the
pixels the panoptic engine calls road, and a Theil–Sen line through the rows' inverse
depths, which a minority of wrong rows (a car's shadow, a far row's noise) cannot move.

A monocular depth engine reads the road better than the things on it: the tiny one put
oncoming cars at half their distance, but on the synthetic drives one frame's fit gave the
horizon within 0.015 and the reach within 4% (p10-p90), 1.21 m above the road for 1.2
(benchmarks/ground_trial.py, the "fitted" arm). The line holds while the road is flat, and
while the depth engine reads it as one: each fit says how far the horizons of its far and
near rows' own lines lie apart (``bend``), and edge.postprocess.ground.FittedGround takes
no plane from fits that bend (the tiny engine run at 128 rows, half its training size).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from edge.postprocess.slopes import theil_sen_slope

ROAD_TRAIN_ID = 0  # Cityscapes' "road"
# the depths a row's road pixels are taken within: nearer, the picture's bottom rows hold
# few; farther, a row is worth metres and the engine's far range is its weakest
NEAR_M, FAR_M = 2.0, 40.0
MIN_PIXELS = 4  # a row's road pixels for its median
MIN_ROWS = 10  # rows for a line
MAX_ROWS = 128  # rows looked at, every k-th of a taller picture


class RoadFit(NamedTuple):
    """One frame's road plane: the ``horizon``'s row and ``reach`` (focal length times the
    camera's height over the road), as fractions of the picture's height (GroundPlane's
    units); ``rows``: how many rows' medians it was fitted to; ``bend``: how far apart the
    horizons of the far half of those rows and of the near half are (0 for a plane; None
    where either half gives no line)."""

    horizon: float
    reach: float
    rows: int
    bend: float | None


def _line(centres: np.ndarray, inverse: np.ndarray) -> tuple[float, float] | None:
    """The horizon and reach of the Theil-Sen line through rows' (centre, 1 / depth); None
    where it does not fall away towards the top of the picture."""
    slope = theil_sen_slope(centres.tolist(), inverse.tolist())
    if slope is None or not slope > 0:
        return None
    offset = float(np.median(inverse - slope * centres))
    return -offset / slope, 1.0 / slope


def fit_road(semantic: np.ndarray, depth: np.ndarray) -> RoadFit | None:
    """The plane of the road in ``depth`` (metres, H x W) over the pixels ``semantic`` (train
    ids, the same H x W) calls road; None where fewer than MIN_ROWS rows show enough of it,
    or the line does not fall away towards the top of the picture as a road's does."""
    if semantic.shape != depth.shape or depth.ndim != 2:
        raise ValueError(f"semantic {semantic.shape} and depth {depth.shape}: expected one H x W")
    height = depth.shape[0]
    step = -(-height // MAX_ROWS)
    sem, dep = semantic[::step], depth[::step].astype(np.float32)
    seen = (sem == ROAD_TRAIN_ID) & (dep > NEAR_M) & (dep < FAR_M)
    enough = seen.sum(axis=1) >= MIN_PIXELS
    if int(enough.sum()) < MIN_ROWS:
        return None
    rows = np.flatnonzero(enough)
    # each row's median: its road depths sorted first, the rest (inf) after them
    ranked = np.sort(np.where(seen[rows], dep[rows], np.inf), axis=1)
    count = seen[rows].sum(axis=1)
    at = np.arange(len(rows))
    medians = (ranked[at, count // 2] + ranked[at, (count - 1) // 2]) / 2
    centres, inverse = (rows * step + 0.5) / height, 1.0 / medians
    line = _line(centres, inverse)
    if line is None or not -0.5 < line[0] < 1.0:  # a horizon far off the picture: no road's
        return None
    half = len(rows) // 2  # the far rows (the picture's upper ones) and the near ones
    far, near = _line(centres[:half], inverse[:half]), _line(centres[half:], inverse[half:])
    bend = None if far is None or near is None else abs(far[0] - near[0])
    return RoadFit(line[0], line[1], len(rows), bend)
