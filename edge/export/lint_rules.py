"""The lint's rules for one node: the TensorRT ONNX parser's restrictions on an operator's
inputs and attributes (operators.md's restrictions column, 10.1 and later), what a later
parser than the target's first takes (edge.export.trt_versions), and Q/DQ placement."""

from __future__ import annotations

import onnx

from edge.export.lint_graph import Finding, LintGraph, attr
from edge.export.trt_versions import Target

TOPK_MAX_K = 3840  # the parser rejects K at or above this
# ops whose listed input must be a constant (initializer or Constant node) for the parser
CONSTANT_INPUTS = {
    "Unsqueeze": 1,
    "Squeeze": 1,
    "Slice": 3,
    "ReduceMax": 1,
    "ReduceMin": 1,
    "ReduceSum": 1,
    "ReduceMean": 1,
    "ReduceProd": 1,
    "ReduceSumSquare": 1,
    "Pad": 3,
    "CumSum": 1,
}
RESIZE_COORDINATE_MODES = {
    "half_pixel",
    "pytorch_half_pixel",
    "tf_half_pixel_for_nn",
    "asymmetric",
    "align_corners",
}
RESIZE_MODES = {"nearest", "linear"}
DATA_DEPENDENT_SHAPE_OPS = {"NonZero", "NonMaxSuppression", "Unique", "Compress"}


def node_rules(node: onnx.NodeProto, graph: LintGraph, target: Target) -> list[Finding]:
    op, out = node.op_type, []

    def err(msg: str) -> None:
        out.append(Finding("error", op, node.name, msg))

    def later(key: str, msg: str) -> None:
        """A finding for what only a later parser than the target's first parses."""
        level = target.level(key)
        if level is not None:
            out.append(Finding(level, op, node.name, f"{msg}: {target.needs(key)}"))

    idx = CONSTANT_INPUTS.get(op)
    if (
        idx is not None
        and len(node.input) > idx
        and node.input[idx]
        and not graph.is_constant(node.input[idx])
    ):
        what = f"input {idx} ({node.input[idx]!r}) is not a constant"
        if f"constant:{op}" in target.since:
            later(f"constant:{op}", what)
        else:
            err(f"input {idx} ({node.input[idx]!r}) must be a constant for the TensorRT parser")
    if op == "Squeeze" and _squeezes_every_unit_axis(node, graph.opset):
        later("squeeze_without_axes", "no axes (every dimension of size 1)")
    if op == "TopK":
        k = graph.constant_value(node.input[1]) if len(node.input) > 1 else None
        if k is None:
            out.append(
                Finding(
                    "warning",
                    op,
                    node.name,
                    f"K is not a constant; it must stay below {TOPK_MAX_K} at run time",
                )
            )
        elif int(k.reshape(-1)[0]) >= TOPK_MAX_K:
            err(f"K={int(k.reshape(-1)[0])} is not below TensorRT's limit of {TOPK_MAX_K}")
        if attr(node, "sorted", 1) != 1:
            err("sorted=0 is not supported")
    elif op == "Resize":
        mode = attr(node, "coordinate_transformation_mode", "half_pixel")
        if mode not in RESIZE_COORDINATE_MODES:
            err(f"coordinate_transformation_mode {mode!r} is not supported")
        if attr(node, "mode", "nearest") not in RESIZE_MODES:
            err(f"mode {attr(node, 'mode')!r} is not supported (nearest, linear)")
        if attr(node, "antialias", 0):
            err("antialias is not supported")
    elif op == "ScatterND" and attr(node, "reduction", "none") != "none":
        err(f"reduction={attr(node, 'reduction')!r} is not supported")  # ScatterElements' is
    elif op == "MaxPool":
        if len(node.output) > 1 and node.output[1]:
            err("the Indices output is not supported")
        if any(d != 1 for d in attr(node, "dilations", None) or ()):
            err(f"dilations {list(attr(node, 'dilations'))} are not supported (only 1)")
    elif op == "GroupNormalization" and (graph.opset or 0) >= 21:
        later("groupnorm_opset21", "opset 21's form (scale and bias per channel)")
    elif op == "GridSample" and graph.ranks.get(node.input[0]) == 5:
        later("gridsample_5d", "a 5-D input (3-D sampling)")
    elif op == "Einsum" and _einsum_needs_later(str(attr(node, "equation", ""))):
        later("einsum_ellipsis_diagonal_broadcast", "an ellipsis or a diagonal in its equation")
    elif op in DATA_DEPENDENT_SHAPE_OPS:
        out.append(
            Finding(
                "info",
                op,
                node.name,
                "data-dependent shape inside the graph: supported by "
                "TensorRT, but keeps these layers on the GPU (no DLA)",
            )
        )
    elif op in ("QuantizeLinear", "DequantizeLinear"):
        out += _qdq(node, graph)
    return out


def _squeezes_every_unit_axis(node: onnx.NodeProto, opset: int | None) -> bool:
    if opset is not None and opset < 13:
        return attr(node, "axes") is None
    return len(node.input) < 2 or not node.input[1]


def _einsum_needs_later(equation: str) -> bool:
    """An ellipsis, or a letter twice in one operand (a diagonal): 10.12 and later."""
    inputs = equation.replace(" ", "").split("->")[0]
    return "..." in inputs or any(len(set(term)) < len(term) for term in inputs.split(","))


def _qdq(node: onnx.NodeProto, graph: LintGraph) -> list[Finding]:
    out = []
    zp = graph.constant_value(node.input[2]) if len(node.input) > 2 and node.input[2] else None
    if zp is not None and zp.any():
        out.append(Finding("error", node.op_type, node.name, "zero point must be 0 (symmetric INT8)"))
    if node.op_type == "QuantizeLinear":
        users = graph.consumers.get(node.output[0], [])
        if any(u.op_type != "DequantizeLinear" for u in users):
            out.append(
                Finding(
                    "warning",
                    node.op_type,
                    node.name,
                    "feeds a node other than DequantizeLinear; TensorRT fuses only Q -> DQ pairs",
                )
            )
    else:
        src = graph.producer.get(node.input[0])
        if not graph.is_constant(node.input[0]) and (src is None or src.op_type != "QuantizeLinear"):
            out.append(
                Finding(
                    "warning",
                    node.op_type,
                    node.name,
                    "input is neither a QuantizeLinear output nor constant weights; TensorRT cannot fuse it",
                )
            )
    return out
