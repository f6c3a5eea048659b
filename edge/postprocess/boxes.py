"""Boxes as the tracker compares and measures them (edge.postprocess.tracks)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

# a box whose height changes by more than this (log: 28% taller, 22% shorter) from one frame
# to the next, at most STEP_WITHIN_S after it, did not loom: a thing closing that fast would
# reach the camera within a fifth of a second. It is the detector's box that stepped (the
# demo's truck past the car ahead: its hidden bottom put 24 rows lower from one frame on, log
# 0.35, which Theil-Sen read as closing at 5 m/s for half a second), so once the next frame
# keeps the new height the growth is read from the frames since (steady_part). From 0.25 to
# 0.4 the ground trial's drives at 256x512 kept every due warning and the demo none; at 0.2 a
# person on the demo's drive was warned of (benchmarks/ground_trial.py)
MAX_SIZE_STEP = 0.25
STEP_WITHIN_S = 0.15


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of ``a`` (N x 4, x1 y1 x2 y2) with every box of ``b`` (M x 4): N x M."""
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)))
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def box_size(
    box: np.ndarray, t_s: float, size: tuple[int, int] | None, *, hidden: bool = False
) -> tuple[float, float, float, bool, bool]:
    """(t, log height, log width, whether the picture's top or bottom cuts it, whether a side
    of the picture cuts it or a nearer thing hides a side of it: ``hidden``, occlusion.hidden_sides)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    h, w = size if size is not None else (None, None)
    touches_tb = h is not None and (y1 <= 0.5 or y2 >= h - 0.5)
    touches_lr = hidden or (w is not None and (x1 <= 0.5 or x2 >= w - 0.5))
    # a box under a pixel (a far object's first frames) is held at one, not log 0
    return (t_s, float(np.log(max(y2 - y1, 1.0))), float(np.log(max(x2 - x1, 1.0))), touches_tb, touches_lr)


def growth_samples(
    sizes: Sequence[tuple[float, float, float, bool, bool]],
) -> tuple[list[float], list[float]] | None:
    """The times and log sizes the box's growth is read from (edge.postprocess.tracks): its
    height, or its width while the picture's top or bottom cut it (None while a side cuts it
    too), since its last step that stayed (steady_part)."""
    cut_tb = any(tb for *_, tb, _ in sizes)
    if cut_tb and any(lr for *_, lr in sizes):
        return None
    which = 2 if cut_tb else 1
    return steady_part([s[0] for s in sizes], [s[which] for s in sizes])


def steady_part(times: Sequence[float], values: Sequence[float]) -> tuple[list[float], list[float]]:
    """The samples of a box's log size over ``times`` but its odd ones and those before its
    last step. A sample is odd where it stepped (MAX_SIZE_STEP, within STEP_WITHIN_S) from the
    one before and the next is back at that one's size (or none has come yet); a step is
    between two samples kept (within STEP_WITHIN_S for each frame from one to the other). So
    one frame's odd box (a pole before it) is left out, and a box that steps and stays is
    read from the step on."""
    n = len(values)

    def stepped(a: int, b: int, within_s: float = STEP_WITHIN_S) -> bool:
        return times[b] - times[a] <= within_s and abs(values[b] - values[a]) > MAX_SIZE_STEP

    kept = [
        i
        for i in range(n)
        if not (i > 0 and stepped(i - 1, i) and (i == n - 1 or not stepped(i - 1, i + 1, 2 * STEP_WITHIN_S)))
    ]
    start = 0
    for a, b in itertools.pairwise(kept):
        if stepped(a, b, STEP_WITHIN_S * (b - a)):
            start = kept.index(b)
    kept = kept[start:]
    return [times[i] for i in kept], [values[i] for i in kept]
