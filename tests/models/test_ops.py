"""Golden values for greedy NMS (hand-computed) and the batched keep-mask op."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.models.ops import (
    greedy_nms_grouped,
    greedy_nms_matrix,
    greedy_nms_np,
    nms_keep,
    x_separated_groups,
)


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


def test_matrix_nms_golden() -> None:
    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 10.0]])
    scores = torch.tensor([0.9, 0.8, 0.7, -1.0])
    assert greedy_nms_matrix(boxes, scores, 0.5, -0.5).tolist() == [True, False, True, False]
    assert greedy_nms_matrix(boxes, scores, 0.7, -0.5).tolist() == [True, True, True, False]
    # a chain: 0 suppresses 1, so 2 (overlapping only 1) survives; one-pass "fast NMS" drops it
    chain = torch.tensor([[0, 0, 10, 10], [5, 0, 15, 10], [10, 0, 20, 10.0]])
    assert greedy_nms_matrix(chain, torch.tensor([0.9, 0.8, 0.7]), 0.3, -0.5).tolist() == [True, False, True]
    assert greedy_nms_matrix(chain[:0], torch.zeros(0), 0.5, -0.5).tolist() == []


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(0, 40),
    seed=st.integers(0, 2**31 - 1),
    iou=st.sampled_from([0.3, 0.5, 0.7]),
    tie=st.booleans(),
)
def test_matrix_nms_equals_greedy(n: int, seed: int, iou: float, tie: bool) -> None:
    """Clustered boxes so suppression chains are long; ties check the stable order."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, 60, (max(1, n // 5), 2))[rng.integers(0, max(1, n // 5), n)]
    xy = centres + rng.normal(0, 4, (n, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(0, 20, (n, 2))], 1).astype(np.float32)
    scores = (rng.integers(0, 4, n) / 4 if tie else rng.uniform(-1, 1, n)).astype(np.float32)
    want = greedy_nms_np(boxes, scores, iou, -0.5)
    got = greedy_nms_matrix(torch.from_numpy(boxes), torch.from_numpy(scores), iou, -0.5)
    assert got.tolist() == want.tolist()


def test_x_separated_groups_golden() -> None:
    boxes = np.array(
        [
            [20, 0, 30, 5],  # 0: starts where 3 ends (touching is no overlap)
            [0, 0, 10, 5],  # 1
            [5, 9, 12, 10],  # 2: overlaps 1 along x, not along y (same group all the same)
            [11, 0, 20, 5],  # 3: starts inside 2
            [40, 0, 41, 1],  # 4: alone
            [np.nan, 0, 50, 1],  # 5: NaN x1 sorts last and joins the group before it
        ],
        np.float32,
    )
    assert [g.tolist() for g in x_separated_groups(boxes)] == [[1, 2, 3], [0], [4, 5]]
    assert x_separated_groups(boxes[:0]) == []


@settings(max_examples=80, deadline=None)
@given(
    n=st.integers(0, 60),
    seed=st.integers(0, 2**31 - 1),
    iou=st.sampled_from([0.0, 0.3, 0.5, 0.7]),
    levels=st.integers(1, 4),
    tie=st.booleans(),
    grid=st.booleans(),
)
def test_grouped_nms_equals_greedy(n: int, seed: int, iou: float, levels: int, tie: bool, grid: bool) -> None:
    """Clusters of boxes on several levels offset as batched NMS offsets them; on an integer
    grid many boxes touch exactly at a group's edge; ties check the stable order; some scores
    fall below the candidate threshold."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, 80, (max(1, n // 6), 2))[rng.integers(0, max(1, n // 6), n)]
    xy = centres + rng.normal(0, 6, (n, 2))
    wh = rng.uniform(0, 16, (n, 2))
    if grid:
        xy, wh = np.round(xy), np.round(wh)
    boxes = np.concatenate([xy, xy + wh], 1) + (rng.integers(0, levels, n) * 200.0)[:, None]
    boxes = boxes.astype(np.float32)
    scores = (rng.integers(0, 4, n) / 4 if tie else rng.uniform(-1, 1, n)).astype(np.float32)
    want = greedy_nms_np(boxes, scores, iou, -0.5)
    assert greedy_nms_grouped(boxes, scores, iou, -0.5).tolist() == want.tolist()


def test_grouped_nms_on_nan_and_negative_threshold() -> None:
    boxes = np.array([[0, 0, 10, 10], [np.nan, 0, 10, 10], [1, 1, 10, 10], [30, 0, 40, 10]], np.float32)
    scores = np.array([0.9, 0.95, 0.8, 0.7], np.float32)
    for iou in (0.5, -0.1):  # IoU 0 > -0.1: every pair suppresses, groups or not
        want = greedy_nms_np(boxes, scores, iou, -0.5)
        assert greedy_nms_grouped(boxes, scores, iou, -0.5).tolist() == want.tolist()
    assert greedy_nms_grouped(boxes, scores, 0.5, -0.5).tolist() == [True, True, False, True]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_nms_keep_cuda_matches_cpu() -> None:
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 500, (2, 3000, 2))
    boxes = torch.from_numpy(
        np.concatenate([xy, xy + rng.uniform(1, 120, (2, 3000, 2))], 2).astype(np.float32)
    )
    scores = torch.from_numpy(rng.uniform(-1, 1, (2, 3000)).astype(np.float32))
    want = nms_keep(boxes, scores, 0.7, -0.5)
    got = nms_keep(boxes.cuda(), scores.cuda(), 0.7, -0.5)
    assert got.device.type == "cuda"
    assert torch.equal(got.cpu(), want)


def test_matrix_nms_looks_at_the_passes_a_few_at_a_time() -> None:
    """A chain of 10 boxes, each overlapping the next: greedy keeps every other one, and the
    matrix passes reach that after about as many passes as boxes. Each look at whether a
    pass changed anything is a host sync on CUDA: one every PASSES_PER_LOOK passes."""
    from torch.utils._python_dispatch import TorchDispatchMode

    from edge.models.ops import PASSES_PER_LOOK

    class Looks(TorchDispatchMode):
        count = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
            if func is torch.ops.aten.equal.default:
                Looks.count += 1
            return func(*args, **(kwargs or {}))

    x = torch.arange(10, dtype=torch.float32) * 6
    chain = torch.stack([x, torch.zeros(10), x + 10, torch.full((10,), 10.0)], 1)
    scores = torch.linspace(0.9, 0.1, 10)
    with Looks():
        keep = greedy_nms_matrix(chain, scores, 0.2, -0.5)
    assert keep.tolist() == [i % 2 == 0 for i in range(10)]
    assert keep.tolist() == greedy_nms_np(chain.numpy(), scores.numpy(), 0.2, -0.5).tolist()
    assert PASSES_PER_LOOK == 4 and Looks.count == 3  # about 10 passes to the fixed point: 3 looks, not 10
