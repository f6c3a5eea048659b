"""ONNX translations of edge's torch custom ops, in standard ONNX ops only.

Standard ops mean ONNX Runtime and TensorRT's ONNX parser both consume the graph with
no plugin: NonMaxSuppression (TensorRT's INMSLayer) and RoiAlign (TensorRT's built-in
RoiAlign plugin). The fused MultiLevelRoIAlign plugin replaces the RoIAlign expansion
later (plugins/roi_align).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from onnxscript import opset18 as op

import edge.models.ops  # noqa: F401  (registers torch.ops.edge.*)
from edge.models.ops import CANONICAL_LEVEL, CANONICAL_SIZE, LEVEL_EPS

BOOL = 9  # onnx.TensorProto.BOOL


def nms_keep_onnx(boxes: Any, scores: Any, iou_threshold: float, score_threshold: float) -> Any:
    """Keep mask [B, N] from NonMaxSuppression's [M, 3] selected (batch, class, box) rows."""
    per_class = op.Unsqueeze(scores, [1])
    n = op.Shape(scores, start=1, end=2)
    selected = op.NonMaxSuppression(
        boxes,
        per_class,
        n,
        op.Constant(value_floats=[iou_threshold]),
        op.Constant(value_floats=[score_threshold]),
    )
    rows = op.Concat(op.Gather(selected, [0], axis=1), op.Gather(selected, [2], axis=1), axis=1)
    zeros = op.CastLike(op.ConstantOfShape(op.Shape(scores)), scores)
    ones = op.CastLike(op.Expand(op.Constant(value_float=1.0), op.Shape(rows, start=0, end=1)), scores)
    return op.Cast(op.ScatterND(zeros, rows, ones), to=BOOL)


def multilevel_roi_align_onnx(
    features: Sequence[Any],
    rois: Any,
    batch_idx: Any,
    output_size: int,
    spatial_scales: Sequence[float],
    sampling_ratio: int,
    aligned: bool,
    min_level: int,
) -> Any:
    """RoiAlign on every level, then each RoI takes the level its size maps to.

    Pooling every RoI on every level costs extra compute but keeps every shape static,
    which TensorRT needs; the fused plugin does only the assigned level.
    """
    mode = "half_pixel" if aligned else "output_half_pixel"
    x1 = op.Gather(rois, [0], axis=1)
    y1 = op.Gather(rois, [1], axis=1)
    x2 = op.Gather(rois, [2], axis=1)
    y2 = op.Gather(rois, [3], axis=1)
    area = op.Max(op.Mul(op.Sub(x2, x1), op.Sub(y2, y1)), op.Constant(value_float=0.0))
    ratio = op.Add(
        op.Div(op.Sqrt(area), op.Constant(value_float=CANONICAL_SIZE)), op.Constant(value_float=LEVEL_EPS)
    )
    log2 = op.Div(op.Log(ratio), op.Constant(value_float=math.log(2.0)))
    lvl = op.Floor(op.Add(log2, op.Constant(value_float=float(CANONICAL_LEVEL))))
    max_level = min_level + len(features) - 1
    lvl = op.Clip(lvl, op.Constant(value_float=float(min_level)), op.Constant(value_float=float(max_level)))
    lvl = op.Unsqueeze(lvl, [2, 3])  # [R,1] -> [R,1,1,1]
    out = None
    for i, (feat, scale) in enumerate(zip(features, spatial_scales, strict=True)):
        pooled = op.RoiAlign(
            feat,
            rois,
            batch_idx,
            coordinate_transformation_mode=mode,
            mode="avg",
            output_height=output_size,
            output_width=output_size,
            sampling_ratio=sampling_ratio,
            spatial_scale=float(scale),
        )
        if out is None:
            out = pooled
        else:
            out = op.Where(op.Equal(lvl, op.Constant(value_float=float(min_level + i))), pooled, out)
    return out


def translation_table() -> dict[Callable[..., Any], Callable[..., Any]]:
    return {
        torch.ops.edge.nms_keep.default: nms_keep_onnx,
        torch.ops.edge.multilevel_roi_align.default: multilevel_roi_align_onnx,
    }
