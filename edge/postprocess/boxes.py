"""Boxes as the tracker compares and measures them (edge.postprocess.tracks)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


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
    height, or its width while the picture's top or bottom cut it; None while a side cuts it too."""
    cut_tb = any(tb for *_, tb, _ in sizes)
    if cut_tb and any(lr for *_, lr in sizes):
        return None
    which = 2 if cut_tb else 1
    return [s[0] for s in sizes], [s[which] for s in sizes]
