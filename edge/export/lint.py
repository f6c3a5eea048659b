"""TensorRT compatibility lint for ONNX graphs, without TensorRT installed.

Checks every node against the TensorRT ONNX parser's operator list for a target version
(edge/export/data/trt_onnx_ops.json: 10.1's list, then what each later parser changed, with
their sources), custom-domain nodes against the plugins that will be registered, and hazards
the parser accepts but deployments trip on: INT64 and dynamic dimensions at the graph
boundary, data-dependent shapes, constant inputs the parser requires, and Q/DQ placement
TensorRT cannot fuse.

A target (edge/export/trt_versions.py) is trt10 (JetPack 6's 10.3), trt11 (11.0 to the newest
11.x the table knows) or one TensorRT release: what no version of it parses is an error; what
only a later one of it parses is a warning naming that version.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx
from onnx import TensorProto

from edge.export.trt_versions import TARGETS, Target, operator_table, resolve_target
from edge.util.onnx_io import read_onnx, tensor_types

STANDARD_DOMAINS = ("", "ai.onnx")
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
TYPE_NAMES: dict[int, str] = {
    TensorProto.FLOAT: "FP32",
    TensorProto.FLOAT16: "FP16",
    TensorProto.BFLOAT16: "BF16",
    TensorProto.INT32: "INT32",
    TensorProto.INT64: "INT64",
    TensorProto.BOOL: "BOOL",
    TensorProto.UINT8: "UINT8",
    TensorProto.INT8: "INT8",
    TensorProto.DOUBLE: "DOUBLE",
}


@dataclass(frozen=True)
class Finding:
    level: str  # "error" (the parser or build will fail), "warning", "info"
    op: str
    node: str
    message: str

    def __str__(self) -> str:
        where = f"{self.op} '{self.node}'" if self.node else self.op
        return f"{self.level}: {where}: {self.message}"

    def as_dict(self) -> dict[str, str]:
        return {"level": self.level, "op": self.op, "node": self.node, "message": self.message}


def _attr(node: onnx.NodeProto, name: str, default: Any = None) -> Any:
    for a in node.attribute:
        if a.name == name:
            value = onnx.helper.get_attribute_value(a)
            return value.decode() if isinstance(value, bytes) else value
    return default


def _nodes(graph: onnx.GraphProto) -> Iterator[onnx.NodeProto]:
    """All nodes, including those inside If/Loop/Scan bodies."""
    for node in graph.node:
        yield node
        for a in node.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                yield from _nodes(a.g)
            elif a.type == onnx.AttributeProto.GRAPHS:
                for g in a.graphs:
                    yield from _nodes(g)


class _Graph:
    """Lookups the rules need: constants, producers, consumers and inferred types."""

    def __init__(self, model: onnx.ModelProto) -> None:
        try:
            inferred = onnx.shape_inference.infer_shapes(model)
        except Exception:  # inference is best effort; the rules cope without types
            inferred = model
        g = inferred.graph
        self.constants: dict[str, onnx.TensorProto] = {t.name: t for t in g.initializer}
        self.producer: dict[str, onnx.NodeProto] = {}
        self.consumers: dict[str, list[onnx.NodeProto]] = {}
        for node in _nodes(g):
            for out in node.output:
                self.producer[out] = node
            for inp in node.input:
                self.consumers.setdefault(inp, []).append(node)
            if node.op_type == "Constant" and node.output:
                value = _attr(node, "value")
                if isinstance(value, onnx.TensorProto):
                    self.constants[node.output[0]] = value
        self.types = tensor_types(g)
        self.ranks = {
            vi.name: len(vi.type.tensor_type.shape.dim)
            for vi in [*g.input, *g.output, *g.value_info]
            if vi.type.HasField("tensor_type") and vi.type.tensor_type.HasField("shape")
        }
        self.opset = next((o.version for o in model.opset_import if o.domain in STANDARD_DOMAINS), None)
        for name, t in self.constants.items():  # and the Constant nodes' outputs
            self.types.setdefault(name, t.data_type)

    def is_constant(self, name: str) -> bool:
        return name in self.constants

    def constant_value(self, name: str) -> Any:
        t = self.constants.get(name)
        return None if t is None else onnx.numpy_helper.to_array(t)


def lint_model(
    model: onnx.ModelProto | str | Path, *, target: str = "trt10", plugins: Iterable[str] = ()
) -> list[Finding]:
    """Findings for ``model`` on ``target``; ``plugins`` are 'domain::Op' names registered."""
    (findings,) = lint_targets(model, targets=(target,), plugins=plugins).values()
    return findings


def lint_targets(
    model: onnx.ModelProto | str | Path, *, targets: Iterable[str] = TARGETS, plugins: Iterable[str] = ()
) -> dict[str, list[Finding]]:
    """Findings per target (keyed as resolve_target names it: '10.13.3' is '10.13'); the model
    is read and shape-inferred once for all of them."""
    targets = [resolve_target(t) for t in targets]
    if not isinstance(model, onnx.ModelProto):
        model = read_onnx(model, what="model to lint")
    graph = _Graph(model)
    return {t: _lint(model, graph, Target.of(t), set(plugins)) for t in targets}


def _lint(model: onnx.ModelProto, graph: _Graph, target: Target, plugin_set: set[str]) -> list[Finding]:
    ops: dict[str, dict[str, Any]] = operator_table()["operators"]
    findings: list[Finding] = []
    add = findings.append

    problem = None if graph.opset is None else target.opset_problem(graph.opset)
    if problem is not None:
        add(Finding("warning", "model", "", problem))
    findings += _boundary(model.graph)
    for node in _nodes(model.graph):
        if node.domain not in STANDARD_DOMAINS:
            name = f"{node.domain}::{node.op_type}"
            if name not in plugin_set:
                add(
                    Finding(
                        "error",
                        name,
                        node.name,
                        "custom op with no TensorRT plugin registered "
                        "for it (expand it to standard ops, or register the plugin)",
                    )
                )
            continue
        info = ops.get(node.op_type)
        if info is None or not info["supported"]:
            key = f"op:{node.op_type}"
            level = target.level(key)
            if level is not None:
                why = "not in" if info is None else "marked unsupported in"
                later = target.needs(key)
                message = f"{why} 10.1's TensorRT ONNX parser operator list" + (f"; {later}" if later else "")
                add(Finding(level, node.op_type, node.name, message))
                if level == "error":
                    continue
            info = {"supported": True, "types": []}  # added later: its types were not listed
        findings += _types(node, info, graph, target)
        findings += _rules(node, graph, target)
    return findings


def _boundary(g: onnx.GraphProto) -> list[Finding]:
    out = []
    initializers = {t.name for t in g.initializer}
    for kind, values in (("input", g.input), ("output", g.output)):
        for vi in values:
            if vi.name in initializers:
                continue
            tt = vi.type.tensor_type
            if tt.elem_type == TensorProto.INT64:
                out.append(
                    Finding(
                        "warning",
                        f"graph {kind}",
                        vi.name,
                        "INT64 at the graph boundary: prefer INT32 (DLA and older TensorRT lack INT64)",
                    )
                )
            if tt.elem_type == TensorProto.DOUBLE:
                out.append(Finding("warning", f"graph {kind}", vi.name, "DOUBLE is cast down to FP32"))
            dims = list(tt.shape.dim)
            if any(not d.HasField("dim_value") for d in dims):
                shape = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in dims]
                note = (
                    "needs an optimization profile"
                    if kind == "input"
                    else "data-dependent output shape needs an output allocator"
                )
                out.append(Finding("warning", f"graph {kind}", vi.name, f"dynamic shape {shape}: {note}"))
    return out


def _types(node: onnx.NodeProto, info: dict[str, Any], graph: _Graph, target: Target) -> list[Finding]:
    if not node.input or not info["types"]:
        return []
    elem = graph.types.get(node.input[0])
    name = TYPE_NAMES.get(elem) if elem is not None else None
    if name is None or name in info["types"] or node.op_type in ("QuantizeLinear", "DequantizeLinear"):
        return []
    key = f"type:{node.op_type}:{name}"
    if key in target.since:  # a warning, as any type outside the list is
        if target.level(key) is None:
            return []
        return [Finding("warning", node.op_type, node.name, f"input type {name}: {target.needs(key)}")]
    return [
        Finding(
            "warning",
            node.op_type,
            node.name,
            f"input type {name} is not among the parser's types {info['types']}",
        )
    ]


def _rules(node: onnx.NodeProto, graph: _Graph, target: Target) -> list[Finding]:
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
        if _attr(node, "sorted", 1) != 1:
            err("sorted=0 is not supported")
    elif op == "Resize":
        mode = _attr(node, "coordinate_transformation_mode", "half_pixel")
        if mode not in RESIZE_COORDINATE_MODES:
            err(f"coordinate_transformation_mode {mode!r} is not supported")
        if _attr(node, "mode", "nearest") not in RESIZE_MODES:
            err(f"mode {_attr(node, 'mode')!r} is not supported (nearest, linear)")
        if _attr(node, "antialias", 0):
            err("antialias is not supported")
    elif op == "ScatterND" and _attr(node, "reduction", "none") != "none":
        err(f"reduction={_attr(node, 'reduction')!r} is not supported")  # ScatterElements' is
    elif op == "MaxPool":
        if len(node.output) > 1 and node.output[1]:
            err("the Indices output is not supported")
        if any(d != 1 for d in _attr(node, "dilations", None) or ()):
            err(f"dilations {list(_attr(node, 'dilations'))} are not supported (only 1)")
    elif op == "GroupNormalization" and (graph.opset or 0) >= 21:
        later("groupnorm_opset21", "opset 21's form (scale and bias per channel)")
    elif op == "GridSample" and graph.ranks.get(node.input[0]) == 5:
        later("gridsample_5d", "a 5-D input (3-D sampling)")
    elif op == "Einsum" and _einsum_needs_later(str(_attr(node, "equation", ""))):
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
        return _attr(node, "axes") is None
    return len(node.input) < 2 or not node.input[1]


def _einsum_needs_later(equation: str) -> bool:
    """An ellipsis, or a letter twice in one operand (a diagonal): 10.12 and later."""
    inputs = equation.replace(" ", "").split("->")[0]
    return "..." in inputs or any(len(set(term)) < len(term) for term in inputs.split(","))


def _qdq(node: onnx.NodeProto, graph: _Graph) -> list[Finding]:
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


def target_versions(target: str) -> str:
    """The TensorRT versions ``target`` stands for: "10.3", "11.0 to 11.5"."""
    return Target.of(target).versions


def summarize(findings: list[Finding]) -> dict[str, Any]:
    """Counts and the messages, for the manifest."""
    return {
        "errors": sum(f.level == "error" for f in findings),
        "warnings": sum(f.level == "warning" for f in findings),
        "findings": [str(f) for f in findings if f.level != "info"],
    }


def parser_hint(model: str | Path, tensorrt_version: str, *, limit: int = 5) -> str:
    """What the lint finds the installed TensorRT's parser refusing in ``model``, for the parser's
    own error to be read with: '' where it finds nothing or does not know the version. Custom
    ops are left out (the plugin libraries the build loads are not op names to check them by)."""
    from edge.export.trt_versions import installed_target

    target = installed_target(tensorrt_version)
    if target is None:
        return ""
    found = [f for f in lint_model(model, target=target[0]) if f.level == "error" and "::" not in f.op]
    if not found:
        return ""
    shown = "; ".join(str(f).removeprefix("error: ") for f in found[:limit])
    more = f" and {len(found) - limit} more" if len(found) > limit else ""
    return f" (edge lint --target {target[0]} finds: {shown}{more})"
