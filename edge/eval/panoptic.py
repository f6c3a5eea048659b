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


@dataclass(frozen=True)
class FrameMatch:
    """One image's segments, as panoptic matching saw them, and which were matched: what
    the object-distance and tracking scores build on, without reading the maps again."""

    pairs: list[tuple[int, int]]  # matched (ground-truth id, predicted id), same class, IoU > 0.5
    gt_areas: dict[int, int]  # ground-truth segments of evaluated classes (crowd regions too): pixels
    pred_areas: dict[int, int]  # predicted segments (not the unassigned 0): pixels

    @property
    def thing_pairs(self) -> list[tuple[int, int]]:
        return [(g, p) for g, p in self.pairs if g >= 1000]

    @property
    def gt_things(self) -> set[int]:
        return {g for g in self.gt_areas if g >= 1000}

    @property
    def pred_things(self) -> set[int]:
        return {p for p in self.pred_areas if p >= 1000}


@dataclass
class PanopticStats:
    per_class: dict[int, ClassStats] = field(default_factory=lambda: {k: ClassStats() for k in EVAL_LABELS})

    def add(self, pred_ids: np.ndarray, gt_ids: np.ndarray) -> FrameMatch:
        """One image: predicted and ground-truth id maps of the same shape. Returns its
        segments and the matched pairs."""
        if pred_ids.shape != gt_ids.shape:
            raise ValueError(f"prediction {pred_ids.shape} and ground truth {gt_ids.shape} differ in shape")
        top = int(max(gt_ids.max(initial=0), pred_ids.max(initial=0)))
        # every pairwise intersection from one key per pixel (in int32 where the keys fit:
        # numpy's unique takes half the time); the segments' areas are their sums, and
        # voiding a class not evaluated moves its intersections to VOID's, as voiding its
        # pixels would
        offset = top + 1
        dtype = np.int32 if offset * offset < 2**31 else np.int64
        gt, pred = gt_ids.astype(dtype, copy=False), pred_ids.astype(dtype, copy=False)
        if gt.size and gt.min() < VOID:
            gt = np.maximum(gt, VOID)  # no evaluated class has a negative id: void
        keys, counts = np.unique(gt * dtype(offset) + pred, return_counts=True)
        overlap: dict[tuple[int, int], int] = {}
        gt_areas: dict[int, int] = {}
        pred_areas: dict[int, int] = {}
        for key, n in zip(keys.tolist(), counts.tolist(), strict=True):
            g, p = divmod(key, offset)
            if _category(g) not in EVAL_LABELS:
                g = VOID
            overlap[g, p] = overlap.get((g, p), 0) + n
            if g != VOID:
                gt_areas[g] = gt_areas.get(g, 0) + n
            if p != VOID:
                pred_areas[p] = pred_areas.get(p, 0) + n
        for p in pred_areas:
            if (cat := _category(p)) not in EVAL_LABELS:
                raise ValueError(f"predicted segment id {p} names label {cat}, which is not evaluated")
        crowd = {_category(g): g for g in gt_areas if _is_crowd(g)}
        matches: list[tuple[int, int]] = []
        for (g, p), n in overlap.items():
            if g == VOID or p == VOID or _is_crowd(g):
                continue
            cat, garea, parea = _category(g), gt_areas[g], pred_areas[p]
            if cat != _category(p):
                continue
            iou = n / (parea + garea - n - overlap.get((VOID, p), 0))
            if iou > 0.5:
                stats = self.per_class[cat]
                stats.tp += 1
                stats.iou += iou
                matches.append((g, p))
        gt_matched = {g for g, _ in matches}
        pred_matched = {p for _, p in matches}
        for g in gt_areas:
            if g not in gt_matched and not _is_crowd(g):
                self.per_class[_category(g)].fn += 1
        for p, area in pred_areas.items():
            if p in pred_matched:
                continue
            cat = _category(p)
            ignored = overlap.get((VOID, p), 0)
            if cat in crowd:
                ignored += overlap.get((crowd[cat], p), 0)
            if ignored / area > 0.5:
                continue
            self.per_class[cat].fp += 1
        return FrameMatch(matches, gt_areas, pred_areas)

    def merge(self, other: PanopticStats) -> None:
        for k, s in other.per_class.items():
            mine = self.per_class[k]
            mine.iou += s.iou
            mine.tp += s.tp
            mine.fp += s.fp
            mine.fn += s.fn

    def copy(self) -> PanopticStats:
        out = PanopticStats()
        out.merge(self)
        return out

    def since(self, earlier: PanopticStats) -> PanopticStats:
        """What was added after ``earlier``, a copy taken then (one image's statistics)."""
        out = self.copy()
        for k, s in earlier.per_class.items():
            mine = out.per_class[k]
            mine.iou -= s.iou
            mine.tp -= s.tp
            mine.fp -= s.fp
            mine.fn -= s.fn
        return out

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
