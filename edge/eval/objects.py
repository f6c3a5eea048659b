"""How far off each object's distance is: for every ground-truth thing that panoptic
matching pairs with a prediction (same class, IoU > 0.5), the predicted distance (median
predicted depth over the predicted segment, as ``objects.jsonl`` reports it) against the
true one (median ground-truth depth over the true segment's valid pixels).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np


def true_distances(
    gt_ids: np.ndarray, gt_depth: np.ndarray, things: Iterable[int], min_depth: float, max_depth: float
) -> dict[int, float]:
    """Each ground-truth thing's true distance: the median of its pixels' depth within
    (min_depth, max_depth); a thing without such pixels has none."""
    valid = (gt_depth > min_depth) & (gt_depth < max_depth)
    out = {}
    for g in things:
        truth = gt_depth[(gt_ids == g) & valid]
        if truth.size:
            out[g] = float(np.median(truth))
    return out


class ObjectDistanceStats:
    def __init__(self, *, min_depth: float = 1e-3, max_depth: float = 80.0) -> None:
        self.min_depth, self.max_depth = min_depth, max_depth
        self._pred: list[float] = []
        self._gt: list[float] = []

    def add(
        self,
        matches: Iterable[tuple[int, int]],
        pred_ids: np.ndarray,
        pred_depth: np.ndarray,
        gt_ids: np.ndarray,
        gt_depth: np.ndarray,
    ) -> None:
        """One image, every map at the ground truth's size; ``matches`` as PanopticStats.add
        returns them. Things only; an object without valid ground-truth depth is skipped."""
        pairs = [(g, p) for g, p in matches if g >= 1000]  # stuff has no distance
        truth = true_distances(gt_ids, gt_depth, {g for g, _ in pairs}, self.min_depth, self.max_depth)
        for g, p in pairs:
            if g in truth:
                self._gt.append(truth[g])
                self._pred.append(float(np.median(pred_depth[pred_ids == p])))

    def results(self) -> dict[str, Any]:
        """``abs_rel`` (mean |d - g| / g), the median and 90th percentile of |d - g| in
        metres, and the share of objects within 10% of their true distance."""
        if not self._gt:
            return {"objects": 0}
        d, g = np.asarray(self._pred), np.asarray(self._gt)
        err = np.abs(d - g)
        return {
            "objects": int(g.size),
            "abs_rel": float(np.mean(err / g)),
            "abs_err_m_p50": float(np.median(err)),
            "abs_err_m_p90": float(np.percentile(err, 90)),
            "within_10pct": float(np.mean(err / g < 0.1)),
        }
