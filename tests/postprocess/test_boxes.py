from __future__ import annotations

import math

import numpy as np

from edge.postprocess.boxes import (
    LEVEL_FRAMES,
    MAX_SIZE_STEP,
    STEP_FRAMES,
    STEP_WITHIN_S,
    box_iou,
    match_boxes,
    steady_part,
)


def test_box_iou_golden_values() -> None:
    a = np.array([[0, 0, 10, 10], [0, 0, 2, 2]], float)
    b = np.array([[5, 5, 15, 15], [20, 20, 30, 30], [0, 0, 10, 10]], float)
    iou = box_iou(a, b)
    # 5x5 shared of 100 + 100 - 25; disjoint; the same box; 2x2 inside 10x10
    np.testing.assert_allclose(iou, [[25 / 175, 0, 1], [0, 0, 4 / 100]])
    assert box_iou(a[:0], b).shape == (0, 3)


def test_a_box_is_read_with_its_steps_taken_out_golden() -> None:
    assert (MAX_SIZE_STEP, STEP_WITHIN_S, STEP_FRAMES, LEVEL_FRAMES) == (0.25, 0.15, 3, 5)
    t = [k / 17 for k in range(10)]

    def read(*heights: float) -> list[tuple[int, int]]:
        """(frame, height) of the samples read, the heights rounded."""
        times, values = steady_part(t[: len(heights)], [math.log(h) for h in heights])
        return [(t.index(x), round(math.exp(v))) for x, v in zip(times, values, strict=True)]

    # 57 rows, then the detector puts the hidden bottom 24 rows lower (log 0.35) and keeps it:
    # while it has not held three frames those wait; then the 57s are read as 81s, no growth
    assert read(57, 57, 58, 57, 81) == [(0, 57), (1, 57), (2, 58), (3, 57)]
    assert read(57, 57, 58, 57, 81, 81) == [(0, 57), (1, 57), (2, 58), (3, 57)]
    assert read(57, 57, 58, 57, 81, 81, 82) == [(0, 81), (1, 81), (2, 82), (3, 81), (4, 81), (5, 81), (6, 82)]
    # one frame's odd box (half hidden by a pole), or two, is left out
    assert read(60, 61, 30, 62, 62) == [(0, 60), (1, 61), (3, 62), (4, 62)]
    assert read(60, 61, 30, 31, 62) == [(0, 60), (1, 61), (4, 62)]
    # a box growing a fifth of itself a frame (log 0.18): looming, all of it read
    assert read(40, 48, 58, 69, 83) == [(0, 40), (1, 48), (2, 58), (3, 69), (4, 83)]
    # a step from the frame before that is no step from the frames before it (two frames
    # short, then back) is none: the person of the 128x256 trial whose box shrank and came back
    assert read(17, 17, 17, 15, 14, 19, 19) == [(0, 17), (1, 17), (2, 17), (3, 15), (4, 14), (5, 19), (6, 19)]
    # a step over a longer gap than STEP_WITHIN_S (a thing hidden a while) is no step
    times, _ = steady_part([0.0, 0.1, 0.3, 0.4], [math.log(h) for h in (57, 57, 81, 81)])
    assert times == [0.0, 0.1, 0.3, 0.4]
    # a box that flickers between two sizes every frame: the first size is read
    assert read(57, 30, 57, 30, 57) == [(0, 57), (2, 57), (4, 57)]


def test_boxes_are_matched_to_tracks_best_first_golden() -> None:
    """Three boxes and three tracks. Box 0 overlaps track 0 by 25/175 where it was last
    seen and 1.0 moved on: taken. Box 1 (a car) overlaps track 1 (a person) wholly: another
    class, not taken; it overlaps track 2 moved on by 25/175, under 0.3: not taken. Box 2
    is where track 2 was last seen (its motion had it moved off): taken."""
    boxes = np.array([[5, 5, 15, 15], [40, 40, 50, 50], [60, 60, 70, 70]], float)
    moved = np.array([[5, 5, 15, 15], [40, 40, 50, 50], [60, 60, 70, 70]], float)
    last = np.array([[0, 0, 10, 10], [40, 40, 50, 50], [45, 45, 55, 55]], float)
    moved[2] = [45, 45, 55, 55]
    last[2] = [60, 60, 70, 70]
    pairs = match_boxes(boxes, [24, 26, 26], moved, last, [24, 24, 26], min_iou=0.3)
    assert pairs == {0: 0, 2: 2}
    # equal overlaps: the earlier box and the older track first
    same = np.array([[0, 0, 10, 10], [0, 0, 10, 10]], float)
    assert match_boxes(same, [1, 1], same, same, [1, 1], min_iou=0.3) == {0: 0, 1: 1}
    assert match_boxes(same, [1, 1], same[:1], same[:1], [1], min_iou=0.3) == {0: 0}
