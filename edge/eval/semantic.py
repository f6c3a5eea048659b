"""Semantic segmentation IoU per class and mIoU, by Cityscapes' rules.

A confusion matrix over labelIds (0..255 so any prediction fits). For each of the 19
evaluated classes: IoU = TP / (TP + FP + FN), where FN counts every ground-truth pixel of
the class predicted as anything else and FP only counts predictions of the class on
ground-truth pixels of evaluated classes. mIoU averages the classes whose IoU is defined
(a non-zero denominator).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edge.data.cityscapes import TRAIN_CLASSES

N = 256


class ConfusionMatrix:
    def __init__(self) -> None:
        self.matrix = np.zeros((N, N), np.int64)  # [ground truth labelId, predicted labelId]

    def add(self, pred_label_ids: np.ndarray, gt_label_ids: np.ndarray) -> None:
        if pred_label_ids.shape != gt_label_ids.shape:
            raise ValueError(
                f"prediction {pred_label_ids.shape} and ground truth {gt_label_ids.shape} differ in shape"
            )
        g = gt_label_ids.astype(np.int64).ravel()
        p = pred_label_ids.astype(np.int64).ravel()
        if g.size and (g.min() < 0 or g.max() >= N or p.min() < 0 or p.max() >= N):
            raise ValueError(f"label ids must lie in 0..{N - 1}")
        self.matrix += np.bincount(g * N + p, minlength=N * N).reshape(N, N)

    def merge(self, other: ConfusionMatrix) -> None:
        self.matrix += other.matrix

    def results(self) -> dict[str, Any]:
        evaluated = [c.label_id for c in TRAIN_CLASSES]
        per_class: dict[str, float] = {}
        for c in TRAIN_CLASSES:
            k = c.label_id
            tp = int(self.matrix[k, k])
            fn = int(self.matrix[k, :].sum()) - tp
            fp = int(self.matrix[[e for e in evaluated if e != k], k].sum())
            denom = tp + fp + fn
            per_class[c.name] = tp / denom if denom else float("nan")
        valid = [v for v in per_class.values() if not np.isnan(v)]
        return {"miou": sum(valid) / len(valid) if valid else float("nan"), "per_class_iou": per_class}
