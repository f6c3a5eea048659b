"""Non-maximum suppression as a torch custom op with a fixed output shape.

The eager implementation (greedy NMS in numpy, split into groups of boxes that can
overlap) is what the torch backend runs on the CPU; the fake implementation is what
``torch.export`` traces; ONNX export maps it to the standard NonMaxSuppression op
(edge/export/translations.py), so ONNX Runtime and TensorRT run their own kernels and the
parity tests compare two implementations.

The output never depends on data: NMS returns a keep *mask* over its inputs instead of a
variable-length index list, so callers pick a fixed top-K afterwards.
"""

from __future__ import annotations

import numpy as np
import torch


def box_iou_np(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    # one axis at a time: broadcast as [N, 1, 2] against [1, M, 2], numpy's inner loop would
    # run over the last axis, two elements a call (2.5x slower at N = M = 900)
    w = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    h = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.clip(w, 0.0, None) * np.clip(h, 0.0, None)
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


def x_separated_groups(boxes: np.ndarray) -> list[np.ndarray]:
    """Indices of ``boxes`` in groups no two of which overlap along x (each group sorted).

    Sorted by x1, a box starts a new group when it begins at or after the right edge of
    every box before it: its intersection with each of those, and with theirs, is empty.
    Batched NMS offsets every class or level by more than the image, so each of them is at
    least one group. NaN edges never start a group (a comparison with NaN is false).
    """
    if boxes.shape[0] == 0:
        return []
    by_x = np.argsort(boxes[:, 0], kind="stable")
    right = np.maximum.accumulate(boxes[by_x, 2])
    starts = np.flatnonzero(boxes[by_x[1:], 0] >= right[:-1]) + 1
    return [np.sort(g) for g in np.split(by_x, starts)]


def greedy_nms_grouped(
    boxes: np.ndarray, scores: np.ndarray, iou_threshold: float, score_threshold: float
) -> np.ndarray:
    """greedy_nms_np's keep mask, found group by group (x_separated_groups).

    Boxes with no overlap along x have IoU 0, which never exceeds a threshold >= 0, so greedy
    NMS over all candidates is greedy NMS over each group on its own: the IoU matrices are
    the groups' squares, not the whole square (a fifth of it for five RPN levels).
    """
    if iou_threshold < 0:  # IoU 0 would suppress: the groups are not independent
        return greedy_nms_np(boxes, scores, iou_threshold, score_threshold)
    keep = np.zeros(scores.shape[0], dtype=bool)
    cand = np.flatnonzero(scores > score_threshold)
    for group in x_separated_groups(boxes[cand]):
        members = cand[group]  # in index order, so a stable sort breaks ties as the reference does
        if members.size == 1:
            keep[members] = True
        else:
            keep[members] = greedy_nms_np(boxes[members], scores[members], iou_threshold, score_threshold)
    return keep


@torch.library.custom_op("edge::nms_keep", mutates_args=())
def nms_keep(
    boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float, score_threshold: float
) -> torch.Tensor:
    """Greedy NMS per batch item; boxes [B, N, 4], scores [B, N] -> keep mask [B, N]."""
    b = boxes.detach().cpu().numpy().astype(np.float32)
    s = scores.detach().cpu().numpy()
    keep = np.stack(
        [greedy_nms_grouped(b[i], s[i], iou_threshold, score_threshold) for i in range(b.shape[0])]
    )
    return torch.from_numpy(keep).to(scores.device)


def box_iou_torch(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU as box_iou_np computes it (0 where the union is empty)."""
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = (rb - lt).clamp(min=0.0)
    inter = wh[..., 0] * wh[..., 1]
    union = area_a[:, None] + area_b[None, :] - inter
    return torch.where(union > 0, inter / union.where(union > 0, torch.ones_like(union)), 0.0)


# matrix NMS passes run between two looks at whether the last one changed anything: on
# CUDA each look is a sync, and looking after every pass the RPN's and the box head's NMS
# made 12 a panoptic forward; 4 now (benchmarks/results/torch_cuda_census_cpu.json)
PASSES_PER_LOOK = 4


def greedy_nms_matrix(
    boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float, score_threshold: float
) -> torch.Tensor:
    """The same keep mask as greedy_nms_np, computed with whole-matrix steps on any device.

    Cluster-NMS (Zheng et al. 2020): with boxes in score order and ``over[i, j]`` = box i
    (earlier) overlaps box j beyond the threshold, iterate "j survives unless a surviving
    earlier box overlaps it". After pass t the first t boxes are final, and in practice the
    fixed point comes after a handful of passes; each pass is one masked reduction, so a GPU
    never waits on a per-box loop.
    """
    n = scores.shape[0]
    keep = torch.zeros(n, dtype=torch.bool, device=scores.device)
    cand = torch.nonzero(scores > score_threshold).flatten()
    if cand.numel() == 0:
        return keep
    order = cand[torch.sort(scores[cand], descending=True, stable=True).indices]
    b = boxes[order].float()
    over = torch.triu(box_iou_torch(b, b) > iou_threshold, diagonal=1)
    alive = torch.ones(order.numel(), dtype=torch.bool, device=scores.device)
    passes = 0
    while passes < order.numel():  # after as many passes as boxes, every box is final
        # a few passes between looks: each look makes the host wait for the GPU, and a pass
        # past the fixed point changes nothing
        for _ in range(PASSES_PER_LOOK):
            last, alive = alive, ~(over & alive[:, None]).any(dim=0)
        passes += PASSES_PER_LOOK
        if torch.equal(last, alive):
            break
    keep[order] = alive
    return keep


@nms_keep.register_kernel("cuda")
def _nms_keep_cuda(
    boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float, score_threshold: float
) -> torch.Tensor:
    return torch.stack(
        [
            greedy_nms_matrix(boxes[i], scores[i], iou_threshold, score_threshold)
            for i in range(boxes.shape[0])
        ]
    )


@nms_keep.register_fake
def _nms_keep_fake(boxes, scores, iou_threshold, score_threshold):
    return torch.empty_like(scores, dtype=torch.bool)
