"""Panoptic quality (Kirillov et al. 2019) with Cityscapes' conventions.

Ids follow Cityscapes' instanceIds images: ``labelId * 1000 + n`` for an instance,
``labelId`` for stuff, and for a thing class without an instance number a crowd region.
Ground-truth pixels of classes outside the 19 evaluated ones are void (0). A prediction
pixel of 0 is unassigned. Matching and counting follow the official
cityscapesscripts evaluation (checked against it in the tests):
- a predicted and a ground-truth segment of the same class match when IoU > 0.5, where
  the union leaves out the predicted segment's void pixels;
- an unmatched predicted segment is not a false positive when more than half of it lies
  on void or on a crowd region of its class.
Statistics are summed over all images, then averaged over classes that occur.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edge.data.cityscapes import TRAIN_CLASSES

EVAL_LABELS = {c.label_id: c for c in TRAIN_CLASSES}
VOID = 0


@dataclass
class ClassStats:
    iou: float = 0.0
    tp: int = 0
    fp: int = 0
    fn: int = 0


@dataclass
class PanopticStats:
    per_class: dict[int, ClassStats] = field(default_factory=lambda: {k: ClassStats() for k in EVAL_LABELS})

    def add(self, pred_ids: np.ndarray, gt_ids: np.ndarray) -> list[tuple[int, int]]:
        """One image: predicted and ground-truth id maps of the same shape. Returns the
        matched (ground-truth id, predicted id) pairs."""
        if pred_ids.shape != gt_ids.shape:
            raise ValueError(f"prediction {pred_ids.shape} and ground truth {gt_ids.shape} differ in shape")
        gt = _voided(gt_ids.astype(np.int64))
        pred = pred_ids.astype(np.int64)
        gt_seg, gt_area = np.unique(gt, return_counts=True)
        pred_seg, pred_area = np.unique(pred, return_counts=True)
        gt_info = {
            int(s): (_category(int(s)), int(a)) for s, a in zip(gt_seg, gt_area, strict=True) if s != VOID
        }
        pred_info = {}
        for s, a in zip(pred_seg, pred_area, strict=True):
            if s == VOID:
                continue
            cat = _category(int(s))
            if cat not in EVAL_LABELS:
                raise ValueError(f"predicted segment id {int(s)} names label {cat}, which is not evaluated")
            pred_info[int(s)] = (cat, int(a))
        # pairwise intersections through one combined key per pixel
        offset = int(max(gt.max(initial=0), pred.max(initial=0))) + 1
        pairs, inter = np.unique(gt * offset + pred, return_counts=True)
        overlap = {(int(p) // offset, int(p) % offset): int(n) for p, n in zip(pairs, inter, strict=True)}
        crowd = {cat: g for g, (cat, _) in gt_info.items() if _is_crowd(g)}
        matches: list[tuple[int, int]] = []
        for (g, p), n in overlap.items():
            if g not in gt_info or p not in pred_info or _is_crowd(g):
                continue
            (gcat, garea), (pcat, parea) = gt_info[g], pred_info[p]
            if gcat != pcat:
                continue
            iou = n / (parea + garea - n - overlap.get((VOID, p), 0))
            if iou > 0.5:
                stats = self.per_class[gcat]
                stats.tp += 1
                stats.iou += iou
                matches.append((g, p))
        gt_matched = {g for g, _ in matches}
        pred_matched = {p for _, p in matches}
        for g, (cat, _) in gt_info.items():
            if g not in gt_matched and not _is_crowd(g):
                self.per_class[cat].fn += 1
        for p, (cat, area) in pred_info.items():
            if p in pred_matched:
                continue
            ignored = overlap.get((VOID, p), 0)
            if cat in crowd:
                ignored += overlap.get((crowd[cat], p), 0)
            if ignored / area > 0.5:
                continue
            self.per_class[cat].fp += 1
        return matches

    def merge(self, other: PanopticStats) -> None:
        for k, s in other.per_class.items():
            mine = self.per_class[k]
            mine.iou += s.iou
            mine.tp += s.tp
            mine.fp += s.fp
            mine.fn += s.fn

    def results(self) -> dict[str, Any]:
        """PQ, SQ, RQ (0..1) for all, things and stuff, and per class (by name)."""
        per_class: dict[str, dict[str, float]] = {}
        groups: dict[str, list[tuple[float, float, float]]] = {"all": [], "things": [], "stuff": []}
        for label, s in self.per_class.items():
            name = EVAL_LABELS[label].name
            if s.tp + s.fp + s.fn == 0:
                per_class[name] = {"pq": 0.0, "sq": 0.0, "rq": 0.0, "tp": 0, "fp": 0, "fn": 0}
                continue
            denom = s.tp + 0.5 * s.fp + 0.5 * s.fn
            scores = (s.iou / denom, s.iou / s.tp if s.tp else 0.0, s.tp / denom)
            per_class[name] = {
                "pq": scores[0],
                "sq": scores[1],
                "rq": scores[2],
                "tp": s.tp,
                "fp": s.fp,
                "fn": s.fn,
            }
            groups["all"].append(scores)
            groups["things" if EVAL_LABELS[label].thing else "stuff"].append(scores)
        out: dict[str, Any] = {}
        for group, rows in groups.items():
            n = len(rows)
            out[group] = {
                "pq": sum(r[0] for r in rows) / n if n else float("nan"),
                "sq": sum(r[1] for r in rows) / n if n else float("nan"),
                "rq": sum(r[2] for r in rows) / n if n else float("nan"),
                "n": n,
            }
        out["per_class"] = per_class
        return out


def _category(segment: int) -> int:
    return segment // 1000 if segment >= 1000 else segment


def _is_crowd(segment: int) -> bool:
    return segment < 1000 and EVAL_LABELS.get(segment) is not None and EVAL_LABELS[segment].thing


def _voided(gt: np.ndarray) -> np.ndarray:
    """Ground-truth pixels of classes that are not evaluated become void."""
    cats = np.where(gt >= 1000, gt // 1000, gt)
    keep = np.isin(cats, list(EVAL_LABELS))
    return np.where(keep, gt, VOID)
