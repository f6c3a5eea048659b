"""Non-maximum suppression as a torch custom op with a fixed output shape.

The eager implementation (greedy NMS in numpy) is what the torch reference backend
runs; the fake implementation is what ``torch.export`` traces; ONNX export maps it to
the standard NonMaxSuppression op (edge/export/translations.py), so ONNX Runtime and
TensorRT run their own kernels and the parity tests compare two implementations.

The output never depends on data: NMS returns a keep *mask* over its inputs instead of a
variable-length index list, so callers pick a fixed top-K afterwards.
"""

from __future__ import annotations

import numpy as np
import torch


def box_iou_np(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0.0, None)
    inter = wh[..., 0] * wh[..., 1]
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def greedy_nms_np(
    boxes: np.ndarray, scores: np.ndarray, iou_threshold: float, score_threshold: float
) -> np.ndarray:
    """Boolean keep mask of greedy NMS: a box is dropped if IoU > threshold with a kept one.

    Candidates need score > score_threshold (ONNX NonMaxSuppression semantics).
    """
    keep = np.zeros(scores.shape[0], dtype=bool)
    cand = np.flatnonzero(scores > score_threshold)
    if cand.size == 0:
        return keep
    order = cand[np.argsort(-scores[cand], kind="stable")]
    iou = box_iou_np(boxes[order], boxes[order])
    suppressed = np.zeros(order.size, dtype=bool)
    for i in range(order.size):
        if suppressed[i]:
            continue
        keep[order[i]] = True
        suppressed |= iou[i] > iou_threshold
    return keep


@torch.library.custom_op("edge::nms_keep", mutates_args=())
def nms_keep(
    boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float, score_threshold: float
) -> torch.Tensor:
    """Greedy NMS per batch item; boxes [B, N, 4], scores [B, N] -> keep mask [B, N]."""
    b = boxes.detach().cpu().numpy().astype(np.float32)
    s = scores.detach().cpu().numpy()
    keep = np.stack([greedy_nms_np(b[i], s[i], iou_threshold, score_threshold) for i in range(b.shape[0])])
    return torch.from_numpy(keep).to(scores.device)


@nms_keep.register_fake
def _nms_keep_fake(boxes, scores, iou_threshold, score_threshold):
    return torch.empty_like(scores, dtype=torch.bool)
