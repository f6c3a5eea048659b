"""Graph passes between the fused MultiLevelRoIAlign node and standard ONNX ops.

``expand`` rewrites every fused node into standard ops (level assignment, one RoiAlign
per level, a per-RoI select), for backends without the plugin. ``contract`` recognises
that expansion and folds it back into one fused node, for TensorRT with the plugin.
Both use onnx-graphsurgeon.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import onnx

from plugins.roi_align.onnx_export import DOMAIN, OP_TYPE, fused_attributes
from plugins.roi_align.reference import CANONICAL_LEVEL, CANONICAL_SIZE, LEVEL_EPS


def _gs() -> Any:
    try:
        import onnx_graphsurgeon as gs
    except ImportError as exc:
        from edge.errors import ExportError

        raise ExportError(
            "the RoIAlign graph passes need onnx-graphsurgeon: pip install onnx-graphsurgeon"
        ) from exc
    return gs


def fused_nodes(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    return [n for n in model.graph.node if n.domain == DOMAIN and n.op_type == OP_TYPE]


def expand(model: onnx.ModelProto) -> onnx.ModelProto:
    """Every fused node replaced by standard ops; other nodes untouched."""
    if not fused_nodes(model):
        return model
    gs = _gs()
    graph = gs.import_onnx(model)
    for k, node in enumerate([n for n in graph.nodes if n.domain == DOMAIN and n.op == OP_TYPE]):
        _expand_node(gs, graph, node, f"mlroialign{k}")
    graph.cleanup().toposort()
    out = gs.export_onnx(graph)
    _drop_domain(out)
    return out


def _expand_node(gs: Any, graph: Any, node: Any, prefix: str) -> None:
    rois, batch_idx, *feats = node.inputs
    a = node.attrs
    size_h, size_w = int(a["output_height"]), int(a["output_width"])
    min_level = int(a.get("min_level", 2))
    counter = iter(range(1_000_000))

    def const(values: Any, dtype: Any = np.float32) -> Any:
        return gs.Constant(f"{prefix}_c{next(counter)}", np.asarray(values, dtype=dtype))

    def layer(op: str, inputs: list[Any], **attrs: Any) -> Any:
        name = f"{prefix}_{op}{next(counter)}"
        return graph.layer(op=op, name=name, inputs=inputs, outputs=[f"{name}_out"], attrs=attrs)[0]

    coords = [layer("Gather", [rois, const([i], np.int64)], axis=1) for i in range(4)]  # each [R, 1]
    area = layer(
        "Max",
        [
            layer("Mul", [layer("Sub", [coords[2], coords[0]]), layer("Sub", [coords[3], coords[1]])]),
            const(0.0),
        ],
    )
    ratio = layer(
        "Add",
        [
            layer("Div", [layer("Sqrt", [area]), const(float(a.get("canonical_size", CANONICAL_SIZE)))]),
            const(LEVEL_EPS),
        ],
    )
    log2 = layer("Div", [layer("Log", [ratio]), const(math.log(2.0))])
    lvl = layer("Floor", [layer("Add", [log2, const(float(a.get("canonical_level", CANONICAL_LEVEL)))])])
    lvl = layer("Clip", [lvl, const(float(min_level)), const(float(min_level + len(feats) - 1))])
    lvl = layer("Unsqueeze", [lvl, const([2, 3], np.int64)])  # [R,1] -> [R,1,1,1]
    mode = "half_pixel" if int(a.get("aligned", 1)) else "output_half_pixel"
    result = None
    for i, (feat, scale) in enumerate(zip(feats, a["spatial_scales"], strict=True)):
        pooled = layer(
            "RoiAlign",
            [feat, rois, batch_idx],
            coordinate_transformation_mode=mode,
            mode=str(a.get("mode", "avg")),
            output_height=size_h,
            output_width=size_w,
            sampling_ratio=int(a.get("sampling_ratio", 0)),
            spatial_scale=float(scale),
        )
        if result is None:
            result = pooled
        else:
            result = layer("Where", [layer("Equal", [lvl, const(float(min_level + i))]), pooled, result])
    if result is None:
        from edge.errors import ExportError

        raise ExportError(f"{OP_TYPE} node {node.name!r} has no feature-map inputs")
    # the last node writes the fused node's output tensor, so consumers stay connected
    out = node.outputs[0]
    result.inputs[0].outputs[0] = out
    node.outputs.clear()


def contract(model: onnx.ModelProto) -> onnx.ModelProto:
    """Fold expansions made by ``expand`` (or edge's standard export) into fused nodes."""
    gs = _gs()
    graph = gs.import_onnx(model)
    found = 0
    for where in [n for n in graph.nodes if n.op == "Where"]:
        chain = _chain_ending_at(where)
        if chain is None:
            continue
        first, pooled, min_level = chain
        ra = first.attrs
        inputs = [first.inputs[1], first.inputs[2], *[p.inputs[0] for p in pooled]]
        out = where.outputs[0]
        where.outputs.clear()
        graph.nodes.append(
            gs.Node(
                op=OP_TYPE,
                domain=DOMAIN,
                name=f"MultiLevelRoIAlign_{found}",
                inputs=inputs,
                outputs=[out],
                attrs=fused_attributes(
                    output_size=(int(ra["output_height"]), int(ra["output_width"])),
                    spatial_scales=[float(p.attrs["spatial_scale"]) for p in pooled],
                    sampling_ratio=int(ra.get("sampling_ratio", 0)),
                    aligned=ra.get("coordinate_transformation_mode", "half_pixel") == "half_pixel",
                    mode=str(ra.get("mode", "avg")),
                    min_level=min_level,
                ),
            )
        )
        found += 1
    if not found:
        return model
    graph.cleanup().toposort()
    out_model = gs.export_onnx(graph)
    if not any(o.domain == DOMAIN for o in out_model.opset_import):
        out_model.opset_import.append(onnx.helper.make_opsetid(DOMAIN, 1))
    return out_model


def _chain_ending_at(last: Any) -> tuple[Any, list[Any], int] | None:
    """(level-0 RoiAlign, RoiAligns in level order, min_level) if ``last`` ends a select chain.

    The chain is Where(Equal(lvl, k), RoiAlign_k, Where(..., RoiAlign_1, RoiAlign_0)),
    all RoiAligns sharing rois, batch indices and attributes other than spatial_scale.
    """
    if any(c.op == "Where" for c in last.outputs[0].outputs):
        return None  # not the end of the chain
    pooled, node, levels = [], last, []
    while node.op == "Where":
        cond, x, y = node.inputs
        if not (x.inputs and x.inputs[0].op == "RoiAlign" and cond.inputs and cond.inputs[0].op == "Equal"):
            return None
        level = _constant_of(cond.inputs[0])
        if level is None:
            return None
        pooled.append(x.inputs[0])
        levels.append(level)
        if not y.inputs:
            return None
        node = y.inputs[0]
    if node.op != "RoiAlign":
        return None
    pooled.append(node)
    pooled.reverse()
    levels.reverse()
    first = pooled[0]
    same = ("output_height", "output_width", "sampling_ratio", "mode", "coordinate_transformation_mode")
    for p in pooled[1:]:
        if p.inputs[1] is not first.inputs[1] or p.inputs[2] is not first.inputs[2]:
            return None
        if any(p.attrs.get(k) != first.attrs.get(k) for k in same):
            return None
    min_level = levels[0] - 1
    if levels != list(range(min_level + 1, min_level + len(pooled))):
        return None
    return first, pooled, min_level


def _constant_of(equal: Any) -> int | None:
    for t in equal.inputs:
        values = getattr(t, "values", None)
        if values is not None and np.size(values) == 1:
            return int(np.asarray(values).reshape(-1)[0])
    return None


def _drop_domain(model: onnx.ModelProto) -> None:
    """A fully expanded model no longer needs the plugin opset import."""
    if any(n.domain == DOMAIN for n in model.graph.node):
        return
    keep = [o for o in model.opset_import if o.domain != DOMAIN]
    del model.opset_import[:]
    model.opset_import.extend(keep)
