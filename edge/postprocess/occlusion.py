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

from edge.postprocess.panoptic import Instance


def hidden_sides(instances: Sequence[Instance], size: tuple[int, int]) -> list[tuple[bool, bool]]:
    """For each instance, whether the mask of an instance standing nearer (its box's bottom
    lower) borders its own mask on the left, and on the right, in a picture of ``size``
    (height, width). Each pixel goes to the nearest instance holding it, as one seen
    through the other would."""
    h, w = size
    out = [(False, False)] * len(instances)
    if len(instances) < 2:
        return out
    bottoms = np.asarray([float(inst.box[3]) for inst in instances])
    owner = np.full((h, w), -1, np.int32)
    for k in np.argsort(bottoms, kind="stable"):  # the farthest first, the nearer painted over it
        y0, x0 = instances[k].offset
        mask = instances[k].mask
        ys, xs = slice(max(y0, 0), min(y0 + mask.shape[0], h)), slice(max(x0, 0), min(x0 + mask.shape[1], w))
        if ys.start < ys.stop and xs.start < xs.stop:
            owner[ys, xs][mask[ys.start - y0 : ys.stop - y0, xs.start - x0 : xs.stop - x0]] = k
    for i, inst in enumerate(instances):
        y0, x0 = inst.offset
        mh, mw = inst.mask.shape
        own = owner[max(y0, 0) : min(y0 + mh, h), max(x0 - 1, 0) : min(x0 + mw + 1, w)]
        mine = own == i
        nearer = (own >= 0) & ~mine & (bottoms[np.maximum(own, 0)] > bottoms[i])
        left = bool((mine[:, 1:] & nearer[:, :-1]).any())
        right = bool((mine[:, :-1] & nearer[:, 1:]).any())
        out[i] = (left, right)
    return out
