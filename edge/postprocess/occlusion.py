"""Which of a thing's sides a nearer thing hides: there the box's edge is the other thing's.

A box's middle moves as much when a nearer car slides over its side as when the thing
itself moves, so a side another thing's mask borders says nothing of where the thing
is (edge.postprocess.tracks reads its bearing from the sides that show). Nearer is told
by the feet: on a flat road the nearer of two things stands lower in the picture, its
box's bottom below the other's.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edge.postprocess.ground import windows
from edge.postprocess.panoptic import Instance

# the panoptic engine's masks are this many cells across their boxes, and an edge is as much
# as a cell off: two masks within a cell of each other (the mean of the two's) may well touch.
# The demo's oncoming truck beside the car ahead: the two masks stopped 1-6 columns short of
# each other, and where the car hid it, the truck's middle moved as the car's edge let it (a
# cut-in warned of). On the ground trial's drives (256x512) this took the warnings of things
# never due from 24 to 21 and left every due one warned of (benchmarks/ground_trial.py)
MASK_CELLS = 28


def hidden_sides(instances: Sequence[Instance], size: tuple[int, int]) -> list[tuple[bool, bool]]:
    """For each instance, whether the mask of an instance standing nearer (its box's bottom
    lower) borders its own mask on the left, and on the right, in a picture of ``size``
    (height, width); a pixel both hold is the nearer one's, as one seen through the other.
    A nearer mask borders it within half their two boxes' widths over MASK_CELLS (at least
    the next column): the gap a mask's coarse edges can leave."""
    out = [(False, False)] * len(instances)
    if len(instances) < 2:
        return out
    win = windows(instances)
    bottoms = np.asarray([float(inst.box[3]) for inst in instances])
    cells = np.asarray([max(float(inst.box[2] - inst.box[0]), 0.0) for inst in instances]) / MASK_CELLS
    for i, inst in enumerate(instances):
        top, left, bottom, right = (int(v) for v in win[i])
        reach = np.maximum(np.ceil((cells[i] + cells) / 2), 1).astype(int)
        # the nearer ones whose windows come within reach of this one's, on its rows
        near = (bottoms > bottoms[i]) & (win[:, 0] < bottom) & (win[:, 2] > top)
        near &= (win[:, 1] <= right + reach) & (win[:, 3] >= left - reach)
        if not near.any():
            continue
        pad = int(reach[near].max())
        x0, x1 = max(left - pad, 0), min(right + pad, size[1])
        planes = []
        for j in np.flatnonzero(near).tolist():
            oy, ox, oy1, ox1 = (int(v) for v in win[j])
            ya, yb, xa, xb = max(oy, top), min(oy1, bottom), max(ox, x0), min(ox1, x1)
            if ya < yb and xa < xb:
                plane = np.zeros((bottom - top, x1 - x0), bool)
                plane[ya - top : yb - top, xa - x0 : xb - x0] = instances[j].mask[
                    ya - oy : yb - oy, xa - ox : xb - ox
                ]
                planes.append((int(reach[j]), plane))
        if not planes:
            continue
        mine = np.zeros((bottom - top, x1 - x0), bool)
        mine[:, left - x0 : left - x0 + inst.mask.shape[1]] = inst.mask[:, : x1 - left]
        mine &= ~np.logical_or.reduce([plane for _, plane in planes])
        out[i] = _bordered(mine, planes)
    return out


def _bordered(mine: np.ndarray, planes: list[tuple[int, np.ndarray]]) -> tuple[bool, bool]:
    """Whether a pixel of ``mine`` has a pixel of one of ``planes`` (reach, mask) within its
    reach of columns on its left, and on its right, on its row."""
    cols = np.arange(mine.shape[1])
    left = right = False
    for reach, plane in planes:
        # counts[:, k]: the plane's pixels in the columns before k, so a span's count is a difference
        counts = np.zeros((plane.shape[0], plane.shape[1] + 1), np.int32)
        np.cumsum(plane, axis=1, out=counts[:, 1:])
        on_left = counts[:, cols] - counts[:, np.maximum(cols - reach, 0)]
        on_right = counts[:, np.minimum(cols + reach + 1, plane.shape[1])] - counts[:, cols + 1]
        left = left or bool((mine & (on_left > 0)).any())
        right = right or bool((mine & (on_right > 0)).any())
        if left and right:
            break
    return left, right
