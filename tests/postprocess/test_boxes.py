from __future__ import annotations

import numpy as np

from edge.postprocess.boxes import box_iou


def test_box_iou_golden_values() -> None:
    a = np.array([[0, 0, 10, 10], [0, 0, 2, 2]], float)
    b = np.array([[5, 5, 15, 15], [20, 20, 30, 30], [0, 0, 10, 10]], float)
    iou = box_iou(a, b)
    # 5x5 shared of 100 + 100 - 25; disjoint; the same box; 2x2 inside 10x10
    np.testing.assert_allclose(iou, [[25 / 175, 0, 1], [0, 0, 4 / 100]])
    assert box_iou(a[:0], b).shape == (0, 3)
