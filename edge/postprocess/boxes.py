"""Boxes as the tracker compares and measures them (edge.postprocess.tracks)."""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Sequence

import numpy as np

# a box whose height changes by more than this (log: 28% taller, 22% shorter) from one frame
# to the next, at most STEP_WITHIN_S after it, and from its median of the LEVEL_FRAMES before,
# did not loom: a thing closing that fast would reach the camera within a quarter second.
# The detector's box stepped (the demo's truck past the car ahead: its hidden bottom put 24
# rows lower from one frame on, log 0.35, which Theil-Sen read as closing at 5 m/s for half a
# second; a thing coming out from behind another). Such a step is left out of the growth: its
# frames while it lasts under STEP_FRAMES (one frame's box half hidden by a pole), and once it
# has held them, the size the box stepped by (steady_part). From 0.2 to 0.4 the demo has no
# warning; on the ground trial's drives at 256x512, against no step taken out, 0.25 warned of
# one more due thing and of 2 fewer never due, 0.3 and 0.4 of as many and of 1 fewer
# (benchmarks/ground_trial.py)
MAX_SIZE_STEP = 0.25
STEP_WITHIN_S = 0.15
STEP_FRAMES = 3
LEVEL_FRAMES = 5


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
    too), its steps taken out (steady_part)."""
    cut_tb = any(tb for *_, tb, _ in sizes)
    if cut_tb and any(lr for *_, lr in sizes):
        return None
    which = 2 if cut_tb else 1
    return steady_part([s[0] for s in sizes], [s[which] for s in sizes])


def steady_part(times: Sequence[float], values: Sequence[float]) -> tuple[list[float], list[float]]:
    """The samples of a box's log size (over ``times``) to read its growth from: its steps
    taken out. A sample steps where it is more than MAX_SIZE_STEP from the one before (within
    STEP_WITHIN_S a frame) and from the median of the LEVEL_FRAMES before; it and those after
    it that hold its size wait. A sample back at the size before ends the step, which is left
    out (one frame's odd box, two); once STEP_FRAMES held it, the box's new size stays and
    the samples before it are moved by the step, so that the growth across it is none."""
    values = list(values)
    # a step is first seen between two samples in a row: without one, all of them are read
    if all(abs(b - a) <= MAX_SIZE_STEP for a, b in itertools.pairwise(values)):
        return list(times), values

    def stepped(a: int, b: int) -> bool:
        return times[b] - times[a] <= STEP_WITHIN_S * (b - a) and abs(values[b] - values[a]) > MAX_SIZE_STEP

    def away(kept: list[int], i: int) -> bool:
        return abs(values[i] - statistics.median(values[k] for k in kept[-LEVEL_FRAMES:])) > MAX_SIZE_STEP

    kept: list[int] = []
    waiting: list[int] = []
    for i in range(len(values)):
        if not waiting:
            if kept and stepped(kept[-1], i) and away(kept, i):
                waiting = [i]
            else:
                kept.append(i)
        elif not away(kept, i):
            waiting = []
            kept.append(i)
        elif stepped(waiting[-1], i):
            waiting = [i]
        else:
            waiting.append(i)
            if len(waiting) == STEP_FRAMES:
                shift = values[waiting[0]] - values[kept[-1]]
                for k in kept:
                    values[k] += shift
                kept += waiting
                waiting = []
    return [times[i] for i in kept], [values[i] for i in kept]


def match_boxes(
    boxes: np.ndarray,
    classes: Sequence[int],
    moved: np.ndarray,
    last: np.ndarray,
    their_classes: Sequence[int],
    min_iou: float,
) -> dict[int, int]:
    """Each of ``boxes``' index -> the index of the track it continues: of its class, and
    the best overlap, at least ``min_iou``, with the track's box ``moved`` on by its own
    speed or where it was ``last`` seen (one frame's odd box, half of it hidden, throws the
    motion off for the next, and the object back in full would not meet its moved-on box);
    greedy, best first, and among equal overlaps the earlier box and the older track first."""
    iou = np.maximum(box_iou(boxes, moved), box_iou(boxes, last))
    iou = np.where(np.equal.outer(classes, their_classes), iou, 0.0)
    taken: dict[int, int] = {}
    used: set[int] = set()
    for flat in np.argsort(-iou, axis=None, kind="stable"):
        i, k = divmod(int(flat), iou.shape[1])
        if iou[i, k] < min_iou:
            break
        if i in taken or k in used:
            continue
        taken[i] = k
        used.add(k)
    return taken
