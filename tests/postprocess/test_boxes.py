from __future__ import annotations

import math

import numpy as np

from edge.postprocess.boxes import MAX_SIZE_STEP, STEP_WITHIN_S, box_iou, steady_part


def test_box_iou_golden_values() -> None:
    a = np.array([[0, 0, 10, 10], [0, 0, 2, 2]], float)
    b = np.array([[5, 5, 15, 15], [20, 20, 30, 30], [0, 0, 10, 10]], float)
    iou = box_iou(a, b)
    # 5x5 shared of 100 + 100 - 25; disjoint; the same box; 2x2 inside 10x10
    np.testing.assert_allclose(iou, [[25 / 175, 0, 1], [0, 0, 4 / 100]])
    assert box_iou(a[:0], b).shape == (0, 3)


def test_a_box_is_read_from_its_last_step_that_stayed_and_without_its_odd_frames_golden() -> None:
    assert (MAX_SIZE_STEP, STEP_WITHIN_S) == (0.25, 0.15)
    t = [k / 17 for k in range(8)]

    def frames_read(*heights: float) -> list[int]:
        times, _ = steady_part(t[: len(heights)], [math.log(h) for h in heights])
        return [t.index(x) for x in times]

    # 57 rows, then the detector puts the hidden bottom 24 rows lower (log 0.35) and keeps it:
    # read from the step on; the step's own frame, with nothing after it yet, is left out
    assert frames_read(57, 57, 58, 57, 81, 81, 82) == [4, 5, 6]
    assert frames_read(57, 57, 58, 57, 81) == [0, 1, 2, 3]
    # one frame's odd box (half hidden by a pole) is left out, the rest kept
    assert frames_read(60, 61, 30, 62, 62) == [0, 1, 3, 4]
    # two steps up that stay: from the second on
    assert frames_read(40, 40, 55, 55, 75, 75) == [4, 5]
    # a box growing a quarter of itself a frame (log 0.22), under the step: all of it
    assert frames_read(40, 50, 62, 78, 97) == [0, 1, 2, 3, 4]
    # a step over a longer gap than STEP_WITHIN_S (a thing hidden a while) is no step
    times, _ = steady_part([0.0, 0.1, 0.3, 0.4], [math.log(h) for h in (57, 57, 81, 81)])
    assert times == [0.0, 0.1, 0.3, 0.4]
    # a box that flickers between two sizes every frame: every frame after the first is odd
    assert frames_read(57, 30, 57, 30, 57) == [0]
    # down a frame and then up past where it was: two steps, read from the second on
    assert frames_read(57, 57, 30, 81, 81) == [3, 4]
