"""ONNX translations of edge's torch custom ops, in standard ONNX ops only.

Standard ops mean ONNX Runtime and TensorRT's ONNX parser both consume the graph with
no plugin: NonMaxSuppression (TensorRT's INMSLayer) and RoiAlign (TensorRT's built-in
RoiAlign plugin). Multi-level RoIAlign becomes the fused plugin node here
(plugins/roi_align/onnx_export.py); export_onnx expands it into standard ops unless the
plugin form is asked for.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from onnxscript import opset18 as op

import edge.models.ops  # noqa: F401  (registers torch.ops.edge.nms_keep)
import plugins.roi_align.torch_op  # noqa: F401  (registers torch.ops.edge.multilevel_roi_align)

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


def translation_table() -> dict[Callable[..., Any], Callable[..., Any]]:
    from plugins.roi_align.onnx_export import fused_onnx

    return {
        torch.ops.edge.nms_keep.default: nms_keep_onnx,
        torch.ops.edge.multilevel_roi_align.default: fused_onnx,
    }
