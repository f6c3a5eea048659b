"""The lint's rules for one node: the TensorRT ONNX parser's restrictions on an operator's
inputs and attributes (operators.md's restrictions column, 10.1's and, for the operators
added since, 10.15's), what a later parser than the target's first takes
(edge.export.trt_versions), and Q/DQ placement.

If's branches and Loop's body are checked as far as their declared or inferred shapes go: a
rank or a shape that only running the graph would tell is not judged."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
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
    "ReduceL1": 1,
    "ReduceL2": 1,
    "ReduceLogSum": 1,
    "ReduceLogSumExp": 1,
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
    rule = RESTRICTIONS.get(op)
    if rule is not None:
        out += [Finding(level, op, node.name, message) for level, message in rule(node, graph)]
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


# a restriction's findings: (level, message) for each way the node breaks it
Said = Iterator[tuple[str, str]]


def _dilations(node: onnx.NodeProto, graph: LintGraph) -> Said:
    dilations = list(attr(node, "dilations", None) or ())
    if any(d != 1 for d in dilations):
        yield "error", f"dilations {dilations} are not supported (only 1)"


def _pooling(node: onnx.NodeProto, graph: LintGraph) -> Said:
    rank = graph.ranks.get(node.input[0])
    if rank is not None and rank not in (4, 5):
        yield "error", f"a {rank}-D input: only 2-D or 3-D pooling (4-D or 5-D inputs) is supported"
    yield from _dilations(node, graph)


def _max_pool(node: onnx.NodeProto, graph: LintGraph) -> Said:
    if len(node.output) > 1 and node.output[1]:
        yield "error", "the Indices output is not supported"
    yield from _pooling(node, graph)


def _constant(node: onnx.NodeProto, graph: LintGraph) -> Said:
    for name in ("sparse_value", "value_string", "value_strings"):
        if attr(node, name) is not None:
            yield "error", f"the {name} attribute is not supported"


def _deform_conv(node: onnx.NodeProto, graph: LintGraph) -> Said:
    rank = graph.ranks.get(node.input[0])
    if rank is not None and rank not in (3, 4):
        yield "error", f"a {rank}-D input: only 1-D or 2-D spatial dimensions are supported"
    pads = list(attr(node, "pads", None) or ())
    half = len(pads) // 2
    if pads[:half] != pads[half:]:
        yield "error", f"pads {pads}: each spatial axis's beginning and end must be the same"


def _dropout(node: onnx.NodeProto, graph: LintGraph) -> Said:
    if len(node.input) > 2 and node.input[2]:
        training = graph.constant_value(node.input[2])
        if training is None:
            yield "error", "training_mode must be a constant (and false)"
        elif bool(np.asarray(training).reshape(-1)[0]):
            yield "error", "training_mode is true: only inference (false) is supported"


def _static_input(what: str) -> Callable[[onnx.NodeProto, LintGraph], Said]:
    def rule(node: onnx.NodeProto, graph: LintGraph) -> Said:
        shape = graph.shapes.get(node.input[0])
        if shape is not None and None in shape:
            yield "error", f"{what} must have static dimensions; inferred {_shape(shape)}"

    return rule


def _hardmax(node: onnx.NodeProto, graph: LintGraph) -> Said:
    shape = graph.shapes.get(node.input[0])
    axis = int(attr(node, "axis", -1))
    if shape is not None and shape and shape[axis] is None:
        yield "error", f"the input's axis {axis} must be of a build-time size; inferred {_shape(shape)}"


def _layer_norm(node: onnx.NodeProto, graph: LintGraph) -> Said:
    if any(node.output[1:]):
        yield "error", "only the first output (Y) is supported, not Mean or InvStdDev"


def _recurrent(node: onnx.NodeProto, graph: LintGraph) -> Said:
    if attr(node, "direction", "forward") == "bidirectional":
        activations = list(attr(node, "activations", None) or ())
        half = len(activations) // 2
        if activations[:half] != activations[half:]:
            yield (
                "error",
                (f"activations {activations}: the forward and reverse passes must use the same functions"),
            )
    if attr(node, "layout", 0) != 0 and node.op_type == "LSTM":
        yield "error", "layout must be 0 (sequence first)"
    if attr(node, "input_forget", 0) != 0:
        yield "error", "input_forget must be 0"


def _one_hot(node: onnx.NodeProto, graph: LintGraph) -> Said:
    if len(node.input) > 1 and not graph.is_constant(node.input[1]):
        yield (
            "warning",
            (
                f"depth ({node.input[1]!r}) is not a constant: TensorRT needs it at build time (a value "
                "worked out from static shapes is; one read from the data is not)"
            ),
        )


def _random(node: onnx.NodeProto, graph: LintGraph) -> Said:
    if attr(node, "seed") is not None:
        yield "info", "the seed is ignored by TensorRT"


def _resize(node: onnx.NodeProto, graph: LintGraph) -> Said:
    policy = attr(node, "keep_aspect_ratio_policy", "stretch")
    if policy != "stretch":
        yield "error", f"keep_aspect_ratio_policy {policy!r} is not supported (only stretch)"
    axes = attr(node, "axes")
    scales = node.input[2] if len(node.input) > 2 else ""
    rank = graph.ranks.get(node.input[0])
    computed = scales and not graph.is_constant(scales)
    if axes is not None and computed and rank is not None and [a % rank for a in axes] != list(range(rank)):
        yield "error", f"axes {list(axes)} with computed scales: they must be every axis in order"


def _attention(node: onnx.NodeProto, graph: LintGraph) -> Said:
    for i, name in enumerate(("Q", "K", "V")):
        rank = graph.ranks.get(node.input[i]) if len(node.input) > i else None
        if rank is not None and rank != 4:
            yield "error", f"{name} is {rank}-D; it must be 4-D (heads as its second dimension)"
    for i, name in ((4, "past_key"), (5, "past_value"), (6, "nonpad_kv_seqlen")):
        if len(node.input) > i and node.input[i]:
            yield "error", f"the {name} input is not supported"
    for i, name in ((1, "present_key"), (2, "present_value"), (3, "qk_matmul_output")):
        if len(node.output) > i and node.output[i]:
            yield "error", f"the {name} output is not supported"
    for name in ("qk_matmul_output_mode", "softcap"):
        if attr(node, name, 0):
            yield "error", f"the {name} attribute is not supported"


def _tensor_scatter(node: onnx.NodeProto, graph: LintGraph) -> Said:
    for i, name in ((0, "past_cache"), (1, "update")):
        rank = graph.ranks.get(node.input[i]) if len(node.input) > i else None
        if rank is not None and rank != 4:
            yield "error", f"{name} is {rank}-D; it must be 4-D"
    if attr(node, "axis", -2) not in (-2, 2):
        yield "error", f"axis {attr(node, 'axis')} is not supported (only -2)"


def _rotary(node: onnx.NodeProto, graph: LintGraph) -> Said:
    position_ids = node.input[3] if len(node.input) > 3 else ""
    kind = graph.types.get(position_ids) if position_ids else None
    if kind is not None and kind != onnx.TensorProto.INT64:
        yield "error", f"position_ids are {onnx.TensorProto.DataType.Name(kind)}; they must be INT64"


def _stft(node: onnx.NodeProto, graph: LintGraph) -> Said:
    for i, name in ((1, "frame_step"), (2, "window")):
        if len(node.input) > i and node.input[i] and not graph.is_constant(node.input[i]):
            yield "error", f"{name} ({node.input[i]!r}) must be an initializer"
    shape = graph.shapes.get(node.input[0])
    if shape and shape[-1] == 2:
        yield "error", "a complex signal (last dimension 2): only a real-valued one is supported"


def _if(node: onnx.NodeProto, graph: LintGraph) -> Said:
    """The branches' outputs, pairwise: different names, the same rank."""
    then, other = attr(node, "then_branch"), attr(node, "else_branch")
    if then is None or other is None:
        return
    for i, (a, b) in enumerate(zip(then.output, other.output, strict=False)):
        if a.name == b.name:
            yield (
                "error",
                (
                    f"output {i}: both branches give the same tensor {a.name!r}; the parser needs "
                    "different names (an Identity in one branch gives it its own)"
                ),
            )
        ranks = graph.ranks.get(a.name), graph.ranks.get(b.name)
        if None not in ranks and ranks[0] != ranks[1]:
            yield (
                "error",
                (
                    f"output {i}: the branches' ranks differ ({a.name!r} {ranks[0]}-D, {b.name!r} "
                    f"{ranks[1]}-D); the parser needs the same rank"
                ),
            )


def _loop(node: onnx.NodeProto, graph: LintGraph) -> Said:
    """Scan outputs need a constant trip count (their length is fixed when the engine is
    built); each carried value keeps its shape from one iteration to the next."""
    body = attr(node, "body")
    if body is None:
        return
    carried = max(len(node.input) - 2, 0)
    scans = len(body.output) - 1 - carried
    trip = node.input[0] if node.input else ""
    if scans > 0 and (not trip or not graph.is_constant(trip)):
        given = f"{trip!r}, not a constant" if trip else "none"
        yield (
            "error",
            (
                f"{scans} scan output(s) with a trip count of {given}: their length would be dynamic, "
                "which the parser refuses (a constant M, the number of iterations, fixes it)"
            ),
        )
    for j in range(carried):
        if 2 + j >= len(body.input) or 1 + j >= len(body.output):
            break
        before, after = graph.shapes.get(body.input[2 + j].name), graph.shapes.get(body.output[1 + j].name)
        if before is None or after is None or None in before or None in after or before == after:
            continue
        yield (
            "error",
            (
                f"carried value {j} ({body.input[2 + j].name!r}) goes into an iteration as {_shape(before)} "
                f"and comes out as {_shape(after)}; the parser needs its shape the same in every iteration"
            ),
        )


def _shape(shape: tuple[int | None, ...]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


RESTRICTIONS: dict[str, Callable[[onnx.NodeProto, LintGraph], Said]] = {
    "AveragePool": _pooling,
    "MaxPool": _max_pool,
    "LpPool": _dilations,
    "Constant": _constant,
    "DeformConv": _deform_conv,
    "Dropout": _dropout,
    "EyeLike": _static_input("input"),
    "Hardmax": _hardmax,
    "LayerNormalization": _layer_norm,
    "GRU": _recurrent,
    "LSTM": _recurrent,
    "RNN": _recurrent,
    "OneHot": _one_hot,
    "RandomNormal": _random,
    "RandomNormalLike": _random,
    "RandomUniform": _random,
    "RandomUniformLike": _random,
    "Resize": _resize,
    "Attention": _attention,
    "TensorScatter": _tensor_scatter,
    "RotaryEmbedding": _rotary,
    "STFT": _stft,
    "If": _if,
    "Loop": _loop,
}
