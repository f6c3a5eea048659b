"""Panoptic fusion of instance and semantic outputs (Kirillov et al. 2019, sec. 4).

Instances are pasted by descending score; an instance keeps only pixels not already
taken, and is dropped when less than ``overlap_thresh`` of its mask is left. Remaining
pixels take the semantic class if it is stuff and covers at least ``stuff_area`` pixels.
Ids follow Cityscapes: stuff ``label_id``, things ``label_id * 1000 + instance``; 0 = void.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge.data.cityscapes import LABEL_IDS, THING_TRAIN_IDS, TRAIN_CLASSES


@dataclass(frozen=True)
class Instance:
    panoptic_id: int
    train_id: int
    score: float
    box: tuple[float, float, float, float]
    mask: np.ndarray  # HxW bool


def paste_mask(mask: np.ndarray, box: np.ndarray, height: int, width: int, thresh: float = 0.5) -> np.ndarray:
    """A box-relative MxM probability mask as a full-image boolean mask."""
    import cv2

    x1, y1, x2, y2 = box
    bx1, by1 = int(np.floor(x1)), int(np.floor(y1))
    bw = max(int(np.ceil(x2)) - bx1, 1)
    bh = max(int(np.ceil(y2)) - by1, 1)
    resized = cv2.resize(mask.astype(np.float32), (bw, bh), interpolation=cv2.INTER_LINEAR) >= thresh
    out = np.zeros((height, width), dtype=bool)
    ox1, oy1 = max(bx1, 0), max(by1, 0)
    ox2, oy2 = min(bx1 + bw, width), min(by1 + bh, height)
    if ox2 > ox1 and oy2 > oy1:
        out[oy1:oy2, ox1:ox2] = resized[oy1 - by1 : oy2 - by1, ox1 - bx1 : ox2 - bx1]
    return out


def fuse(
    panoptic: dict[str, np.ndarray],
    *,
    score_thresh: float = 0.5,
    overlap_thresh: float = 0.5,
    stuff_area: int = 64,
    batch: int = 0,
) -> tuple[np.ndarray, list[Instance]]:
    """Panoptic id map [H, W] int32 and the kept instances, from one image's outputs."""
    sem = panoptic["sem_labels"][batch]
    h, w = sem.shape
    ids = np.zeros((h, w), dtype=np.int32)
    taken = np.zeros((h, w), dtype=bool)
    n = int(panoptic["num_detections"][batch])
    instances: list[Instance] = []
    counts: dict[int, int] = {}
    for i in range(n):  # outputs are sorted by score
        score = float(panoptic["scores"][batch][i])
        if score < score_thresh:
            break
        box = panoptic["boxes"][batch][i]
        mask = paste_mask(panoptic["masks"][batch][i], box, h, w)
        area = int(mask.sum())
        if area == 0:
            continue
        free = mask & ~taken
        if free.sum() / area < overlap_thresh:
            continue
        train_id = THING_TRAIN_IDS[int(panoptic["labels"][batch][i])]
        counts[train_id] = counts.get(train_id, 0) + 1
        pid = int(LABEL_IDS[train_id]) * 1000 + counts[train_id] - 1
        ids[free] = pid
        taken |= free
        x1, y1, x2, y2 = (float(v) for v in box)
        instances.append(Instance(pid, train_id, score, (x1, y1, x2, y2), free))
    for cls in TRAIN_CLASSES:
        if cls.thing:
            continue
        region = (sem == cls.train_id) & ~taken
        if region.sum() >= stuff_area:
            ids[region] = cls.label_id
    return ids, instances


def semantic_from_panoptic(ids: np.ndarray) -> np.ndarray:
    """Train id per pixel (255 = void) from a panoptic id map."""
    label = np.where(ids >= 1000, ids // 1000, ids)
    lut = np.full(1000, 255, dtype=np.uint8)
    lut[LABEL_IDS] = np.arange(len(LABEL_IDS), dtype=np.uint8)
    return lut[np.clip(label, 0, 999)]
