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


def hidden_sides(instances: Sequence[Instance], size: tuple[int, int]) -> list[tuple[bool, bool]]:
    """For each instance, whether the mask of an instance standing nearer (its box's bottom
    lower) borders its own mask on the left, and on the right, in a picture of ``size``
    (height, width); a pixel both hold is the nearer one's, as one seen through the other."""
    out = [(False, False)] * len(instances)
    if len(instances) < 2:
        return out
    win = windows(instances)
    bottoms = np.asarray([float(inst.box[3]) for inst in instances])
    for i, inst in enumerate(instances):
        top, left, bottom, right = (int(v) for v in win[i])
        # the nearer ones whose windows reach a column either side of this one's, on its rows
        near = (bottoms > bottoms[i]) & (win[:, 0] < bottom) & (win[:, 2] > top)
        near &= (win[:, 1] <= right) & (win[:, 3] >= left)
        if not near.any():
            continue
        x0, x1 = max(left - 1, 0), min(right + 1, size[1])
        nearer = np.zeros((bottom - top, x1 - x0), bool)
        for j in np.flatnonzero(near).tolist():
            oy, ox, oy1, ox1 = (int(v) for v in win[j])
            ya, yb, xa, xb = max(oy, top), min(oy1, bottom), max(ox, x0), min(ox1, x1)
            if ya < yb and xa < xb:
                nearer[ya - top : yb - top, xa - x0 : xb - x0] |= instances[j].mask[
                    ya - oy : yb - oy, xa - ox : xb - ox
                ]
        mine = np.zeros_like(nearer)
        mine[:, left - x0 : left - x0 + inst.mask.shape[1]] = inst.mask[:, : x1 - left]
        mine &= ~nearer
        out[i] = (bool((mine[:, 1:] & nearer[:, :-1]).any()), bool((mine[:, :-1] & nearer[:, 1:]).any()))
    return out
