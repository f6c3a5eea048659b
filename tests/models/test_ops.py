"""Golden values for greedy NMS (hand-computed) and the batched keep-mask op."""

from __future__ import annotations

import numpy as np
import torch

from edge.models.ops import greedy_nms_np, nms_keep


def test_greedy_nms_golden() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 10.0]], np.float32)
    scores = np.array([0.9, 0.8, 0.7, -1.0], np.float32)
    # box 1 overlaps box 0 with IoU 81/119 = 0.68 > 0.5 -> suppressed; box 3 is not a candidate
    assert greedy_nms_np(boxes, scores, 0.5, -0.5).tolist() == [True, False, True, False]
    # at threshold 0.7 the same pair survives (IoU must exceed the threshold)
    assert greedy_nms_np(boxes, scores, 0.7, -0.5).tolist() == [True, True, True, False]


def test_nms_keep_op_batched() -> None:
    boxes = torch.tensor([[[0, 0, 10, 10], [1, 1, 11, 11.0]], [[0, 0, 10, 10], [50, 50, 60, 60.0]]])
    scores = torch.tensor([[0.5, 0.9], [0.5, 0.9]])
    keep = nms_keep(boxes, scores, 0.5, -0.5)
    assert keep.tolist() == [[False, True], [True, True]]
