from __future__ import annotations

import math

import numpy as np
import pytest

from edge.postprocess.occlusion import MASK_CELLS, hidden_sides
from edge.postprocess.panoptic import Instance
from edge.postprocess.tracks import ObjectTracker

CAR = 13


def solid(x1: int, y1: int, x2: int, y2: int, pid: int = 26001) -> Instance:
    return Instance(pid, CAR, 0.9, (x1, y1, x2, y2), np.ones((y2 - y1, x2 - x1), bool), (y1, x1))


def test_which_sides_a_nearer_thing_hides_golden() -> None:
    far = solid(100, 80, 140, 120)
    # a nearer car (its bottom lower) overlapping the far one's right part: the far one's right
    # side is the nearer one's edge; the nearer one hides nothing of itself
    near_right = solid(130, 90, 200, 160, pid=26002)
    assert hidden_sides([far, near_right], (256, 512)) == [(False, True), (False, False)]
    # on its left, touching without overlap (the pixel beside the far one's first column)
    near_left = solid(60, 90, 100, 160, pid=26003)
    assert hidden_sides([near_left, far], (256, 512)) == [(False, False), (True, False)]
    # a farther thing (its bottom higher) beside a box hides nothing of it
    farther = solid(140, 70, 170, 100, pid=26004)
    assert hidden_sides([far, farther], (256, 512)) == [(False, False), (True, False)]
    # apart, alone, or at the picture's edges: nothing hidden
    assert hidden_sides([far, solid(300, 90, 340, 160, pid=26005)], (256, 512)) == [(False, False)] * 2
    assert hidden_sides([far], (256, 512)) == [(False, False)]
    assert (
        hidden_sides([solid(0, 80, 40, 120), solid(472, 80, 512, 120, pid=26006)], (256, 512))
        == [(False, False)] * 2
    )


def test_a_nearer_mask_within_a_mask_cell_borders_golden() -> None:
    """Masks are MASK_CELLS cells across their boxes, so two that should touch can stop short
    of each other: a nearer mask borders within half the two boxes' cells (rounded up)."""
    assert MASK_CELLS == 28
    far = solid(100, 80, 142, 120)  # 42 wide: cells of 1.5 columns
    # 70 wide: 2.5; half of 1.5 + 2.5 is 2, so one empty column between borders, two do not
    assert hidden_sides([far, solid(143, 90, 213, 160, pid=26002)], (256, 512))[0] == (False, True)
    assert hidden_sides([far, solid(144, 90, 214, 160, pid=26002)], (256, 512))[0] == (False, False)
    assert hidden_sides([solid(29, 90, 99, 160, pid=26002), far], (256, 512))[1] == (True, False)
    assert hidden_sides([solid(28, 90, 98, 160, pid=26002), far], (256, 512))[1] == (False, False)
    # a wider nearer car reaches farther: 182 wide (6.5 columns a cell), 4 across the gap
    assert hidden_sides([far, solid(145, 90, 327, 160, pid=26002)], (256, 512))[0] == (False, True)
    assert hidden_sides([far, solid(146, 90, 328, 160, pid=26002)], (256, 512))[0] == (False, False)
    # still only a nearer one: a farther one as near beside it hides nothing
    assert hidden_sides([far, solid(143, 70, 213, 100, pid=26002)], (256, 512))[0] == (False, False)


@pytest.mark.parametrize("gap", [0, 2])
def test_a_side_a_nearer_car_slides_over_gives_no_lateral_speed(gap: int) -> None:
    """A car 20 m ahead keeping its place 3 m right of the axis, while a nearer car 10 m ahead
    pulls over its left part at 0.6 m/s: the far box's left edge is the nearer car's, so its
    middle moves right though the far car does not. Those frames give no bearing, so no
    lateral speed; the same far boxes alone (a car that grows rightwards, moving) give one.
    So too where the far mask stops ``gap`` columns short of the nearer one's (coarse masks)."""
    hfov = float(np.degrees(2 * np.arctan(1 / 2.2)))
    w, f = 512, 1.1 * 512

    def boxes(t: float) -> tuple[Instance, Instance]:
        near_x2 = 256 + f * (1.0 + 0.6 * t) / 10.0  # the nearer car's right edge, 10 m out
        far_x1, far_x2 = 256 + f * 2.1 / 20.0, 256 + f * 3.9 / 20.0
        far = solid(int(max(far_x1, near_x2)) + gap, 100, int(far_x2), 130)
        near = solid(int(256 + f * -0.8 / 10.0), 90, int(near_x2), 170, pid=26002)
        return far, near

    together = ObjectTracker(hfov_deg=hfov, min_lateral_mps=0.5)
    alone = ObjectTracker(hfov_deg=hfov, min_lateral_mps=0.5)
    for i in range(11):
        far, near = boxes(i / 10)
        seen, _ = together.update([far, near], [(20.0, 19.0), (10.0, 9.5)], i / 10, size=(256, w))
        (by_itself,) = alone.update([far], [(20.0, 19.0)], i / 10, size=(256, w))
    assert far.box[0] > 256 + f * 2.1 / 20.0, "the nearer car covers the far one's left part"
    assert far.box[0] - near.box[2] == gap
    assert seen.lateral_mps is None and seen.path_in_s is None
    # its middle moves at half the nearer car's edge, 1.2 m/s at 20 m as the picture has it
    assert by_itself.lateral_mps == pytest.approx(0.6, abs=0.1)


def _hidden_by_a_picture_of_owners(
    instances: list[Instance], size: tuple[int, int]
) -> list[tuple[bool, bool]]:
    """hidden_sides the plain way: every mask over the whole picture, and for each pixel of a
    thing no nearer mask holds, the columns within reach either side looked along."""
    bottoms = np.asarray([inst.box[3] for inst in instances], float)
    masks = []
    for inst in instances:
        (y0, x0), mask = inst.offset, inst.mask
        whole = np.zeros(size, bool)
        whole[y0 : y0 + mask.shape[0], x0 : x0 + mask.shape[1]] = mask
        masks.append(whole)
    cells = [float(inst.box[2] - inst.box[0]) / MASK_CELLS for inst in instances]
    out = []
    for i in range(len(instances)):
        nearer = [j for j in range(len(instances)) if bottoms[j] > bottoms[i]]
        mine = masks[i] & ~np.any([masks[j] for j in nearer] or [np.zeros(size, bool)], axis=0)
        left = right = False
        for y, x in zip(*np.nonzero(mine), strict=True):
            for j in nearer:
                reach = max(math.ceil((cells[i] + cells[j]) / 2), 1)
                left |= bool(masks[j][y, max(x - reach, 0) : x].any())
                right |= bool(masks[j][y, x + 1 : x + 1 + reach].any())
        out.append((left, right))
    return out


def test_hidden_sides_are_those_of_a_picture_of_owners() -> None:
    """Random blobs, overlapping and touching, at the picture's edges too: the same sides as
    painting every mask over the whole picture, farthest first, says."""
    rng = np.random.default_rng(0)
    for _ in range(200):
        size = (48, 64)
        instances = []
        for k in range(int(rng.integers(2, 7))):
            y0, x0 = int(rng.integers(0, 40)), int(rng.integers(0, 56))
            h, w = int(rng.integers(1, 48 - y0 + 1)), int(rng.integers(1, 64 - x0 + 1))
            mask = rng.random((h, w)) < 0.8
            bottom = float(y0 + h) + float(rng.integers(0, 3)) * 0.25
            instances.append(Instance(26000 + k, CAR, 0.9, (x0, y0, x0 + w, bottom), mask, (y0, x0)))
        assert hidden_sides(instances, size) == _hidden_by_a_picture_of_owners(instances, size)
