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

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import onnx
from onnx import TensorProto

from edge.export.lint_graph import STANDARD_DOMAINS, Finding, LintGraph, nodes
from edge.export.lint_rules import node_rules
from edge.export.trt_versions import TARGETS, Target, operator_table, resolve_target
from edge.util.onnx_io import read_onnx

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
    graph = LintGraph(model)
    return {t: _lint(model, graph, Target.of(t), set(plugins)) for t in targets}


def _lint(model: onnx.ModelProto, graph: LintGraph, target: Target, plugin_set: set[str]) -> list[Finding]:
    ops: dict[str, dict[str, Any]] = operator_table()["operators"]
    findings: list[Finding] = []
    add = findings.append

    problem = None if graph.opset is None else target.opset_problem(graph.opset)
    if problem is not None:
        add(Finding("warning", "model", "", problem))
    findings += _boundary(model.graph)
    for node in nodes(model.graph):
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
        findings += node_rules(node, graph, target)
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


def _types(node: onnx.NodeProto, info: dict[str, Any], graph: LintGraph, target: Target) -> list[Finding]:
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
    found = [f for f in lint_model(model, target=target) if f.level == "error" and "::" not in f.op]
    if not found:
        return ""
    shown = "; ".join(str(f).removeprefix("error: ") for f in found[:limit])
    more = f" and {len(found) - limit} more" if len(found) > limit else ""
    return f" (edge lint --target {target} finds: {shown}{more})"
