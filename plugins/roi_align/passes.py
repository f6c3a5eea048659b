"""Graph passes between the fused MultiLevelRoIAlign node and standard ONNX ops.

``expand`` rewrites every fused node into standard ops (level assignment; per level, a
gather of that level's RoIs and one RoiAlign; a scatter back into RoI order), for
backends without the plugin. ``contract`` recognises
that expansion and folds it back into one fused node, for TensorRT with the plugin.
Both use onnx-graphsurgeon.

The fused op's ``max`` mode is the maximum of a bin's bilinear samples (reference.py).
ONNX's RoiAlign ``max`` is another thing: the maximum over the samples of each one's
largest weighted corner (ONNX's own reference and ONNX Runtime compute it so), which
differs from it by up to the values themselves. So a fused ``max`` node expands to an
``avg`` RoiAlign of one sample a cell on a grid ``sampling_ratio`` times finer, the bin's
samples exactly, then a MaxPool over each bin's cells; under adaptive sampling, whose grid
differs from RoI to RoI, it cannot be expanded. ``contract`` folds that form back, and
leaves an ONNX ``max`` RoiAlign alone.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import onnx

from plugins.roi_align.onnx_export import DOMAIN, OP_TYPE, fused_attributes
from plugins.roi_align.reference import CANONICAL_LEVEL, CANONICAL_SIZE, LEVEL_EPS, OUTSIDE_ROI


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
    sampling = int(a.get("sampling_ratio", 0))
    fine = _max_grid(_named(node), str(a.get("mode", "avg")), sampling)  # 0: avg mode
    min_level = int(a.get("min_level", 2))
    counter = iter(range(1_000_000))

    def const(values: Any, dtype: Any = np.float32) -> Any:
        return gs.Constant(f"{prefix}_c{next(counter)}", np.asarray(values, dtype=dtype))

    def layer(op: str, inputs: list[Any], **attrs: Any) -> Any:
        name = f"{prefix}_{op}{next(counter)}"
        return graph.layer(op=op, name=name, inputs=inputs, outputs=[f"{name}_out"], attrs=attrs)[0]

    rois = _finite_rois(layer, const, rois)
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
    lvl = layer("Reshape", [lvl, const([-1], np.int64)])  # [R]
    mode = "half_pixel" if int(a.get("aligned", 1)) else "output_half_pixel"
    # Each RoI is pooled once, on its own level: gather the level's RoIs, pool them, then
    # put the rows back in RoI order. Pooling every RoI on every level and selecting
    # afterwards costs one RoiAlign per level over all RoIs, with large boxes on the finest
    # level sampling hundreds of points per bin.
    pooled, order = [], []
    for i, (feat, scale) in enumerate(zip(feats, a["spatial_scales"], strict=True)):
        # TensorRT's parser takes NonZero of FP32/FP16 only, not of the BOOL from Equal
        hit = layer("Cast", [layer("Equal", [lvl, const(float(min_level + i))])], to=onnx.TensorProto.FLOAT)
        idx = layer("Reshape", [layer("NonZero", [hit]), const([-1], np.int64)])  # [n_i]
        pooled.append(
            layer(
                "RoiAlign",
                [feat, layer("Gather", [rois, idx], axis=0), layer("Gather", [batch_idx, idx], axis=0)],
                coordinate_transformation_mode=mode,
                mode="avg",
                output_height=size_h * max(fine, 1),
                output_width=size_w * max(fine, 1),
                sampling_ratio=1 if fine else sampling,
                spatial_scale=float(scale),
            )
        )
        order.append(idx)
    if not pooled:
        from edge.errors import ExportError

        raise ExportError(f"{_named(node)} has no feature-map inputs")
    stacked = layer("Concat", pooled, axis=0)  # [R, C, h, w], level by level
    positions = layer("Unsqueeze", [layer("Concat", order, axis=0), const([1], np.int64)])
    # every row is overwritten (the levels partition the RoIs), so the stack is its own base
    result = layer("ScatterND", [stacked, positions, stacked])
    if fine:  # each bin's samples, fine x fine cells: their maximum
        result = layer("MaxPool", [result], kernel_shape=[fine, fine], strides=[fine, fine])
    # the last node writes the fused node's output tensor, so consumers stay connected
    out = node.outputs[0]
    result.inputs[0].outputs[0] = out
    node.outputs.clear()


def _named(node: Any) -> str:
    return f"{OP_TYPE} node {node.name!r}" if node.name else f"an unnamed {OP_TYPE} node"


def _max_grid(name: str, mode: str, sampling: int) -> int:
    """For a node (``name``: as errors call it) in ``max`` mode, its samples a bin along an
    axis; 0 in ``avg`` mode."""
    from edge.errors import ExportError

    if mode == "avg":
        return 0
    if mode != "max":
        raise ExportError(f"{name} has mode {mode!r}; expected 'avg' or 'max'")
    if sampling < 1:
        raise ExportError(
            f"{name} pools the maximum under adaptive sampling (sampling_ratio "
            f"{sampling}), which standard ONNX ops cannot express: ONNX's RoiAlign 'max' is not the "
            "maximum of a bin's samples; expected a fixed sampling_ratio (1 or more) for 'max', or "
            "the TensorRT plugin"
        )
    return sampling


def _finite_rois(layer: Any, const: Any, rois: Any) -> Any:
    """``rois`` with each row holding a NaN or inf made the OUTSIDE_ROI point box, which pools
    zeros (reference.py): ONNX Runtime's RoiAlign refuses such rows, and the level of a NaN
    row would match no level, leaving the scatter a row short."""
    bad = layer(
        "Cast", [layer("Or", [layer("IsNaN", [rois]), layer("IsInf", [rois])])], to=onnx.TensorProto.FLOAT
    )
    # ReduceSum takes its axes as an input from opset 13 on, as edge's exports (17+) have it
    # (ReduceMax's moved in 18); a MatMul would be made FP16 by edge.export.fp16
    count = layer("ReduceSum", [bad, const([1], np.int64)], keepdims=1)  # [R, 1]
    row_bad = layer("Cast", [count], to=onnx.TensorProto.BOOL)
    dtype = np.float16 if getattr(rois, "dtype", None) == np.float16 else np.float32
    return layer("Where", [row_bad, const(np.full((1, 4), OUTSIDE_ROI), dtype), rois])


def _unguarded(rois: Any) -> Any:
    """The RoIs before the expansion's _finite_rois, whose work the fused op does itself."""
    where = _producer(rois, "Where")
    if where is None:
        return rois
    outside = getattr(where.inputs[1], "values", None)
    if outside is None or np.shape(outside) != (1, 4) or not np.all(np.asarray(outside) == OUTSIDE_ROI):
        return rois
    return where.inputs[2]


def contract(model: onnx.ModelProto) -> onnx.ModelProto:
    """Fold expansions made by ``expand`` (or edge's standard export) into fused nodes."""
    gs = _gs()
    graph = gs.import_onnx(model)
    found = 0
    for scatter in [n for n in graph.nodes if n.op == "ScatterND"]:
        match = _expansion_ending_at(scatter)
        if match is None:
            continue
        rois, batch_idx, pooled, min_level = match
        ra = pooled[0].attrs
        end, fine = _max_pool_of(graph, scatter, ra)
        out = end.outputs[0]
        end.outputs.clear()
        graph.nodes.append(
            gs.Node(
                op=OP_TYPE,
                domain=DOMAIN,
                name=f"MultiLevelRoIAlign_{found}",
                inputs=[_unguarded(rois), batch_idx, *[p.inputs[0] for p in pooled]],
                outputs=[out],
                attrs=fused_attributes(
                    output_size=(
                        int(ra["output_height"]) // max(fine, 1),
                        int(ra["output_width"]) // max(fine, 1),
                    ),
                    spatial_scales=[float(p.attrs["spatial_scale"]) for p in pooled],
                    sampling_ratio=fine or int(ra.get("sampling_ratio", 0)),
                    aligned=ra.get("coordinate_transformation_mode", "half_pixel") == "half_pixel",
                    mode="max" if fine else "avg",
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


def _max_pool_of(graph: Any, scatter: Any, ra: dict[str, Any]) -> tuple[Any, int]:
    """The MaxPool that makes an expansion ``max`` mode, and its kernel (the sampling ratio),
    where ``scatter``'s output goes to it alone; else (``scatter``, 0), ``avg`` mode."""
    pooled = scatter.outputs[0]
    consumers = list(pooled.outputs)
    if pooled in graph.outputs or len(consumers) != 1 or consumers[0].op != "MaxPool":
        return scatter, 0
    mp = consumers[0]
    kernel = [int(k) for k in mp.attrs.get("kernel_shape", [])]
    plain = (
        len(mp.outputs) == 1  # no Indices output
        and mp.attrs.get("auto_pad", "NOTSET") in ("NOTSET", b"NOTSET")
        and not any(mp.attrs.get("pads", []))
        and all(int(d) == 1 for d in mp.attrs.get("dilations", [1, 1]))
        and not mp.attrs.get("ceil_mode", 0)
    )
    if not plain or len(kernel) != 2 or kernel[0] != kernel[1] or kernel[0] < 1:
        return scatter, 0
    k = kernel[0]
    if [int(v) for v in mp.attrs.get("strides", [1, 1])] != [k, k] or int(ra.get("sampling_ratio", 0)) != 1:
        return scatter, 0
    if int(ra["output_height"]) % k or int(ra["output_width"]) % k:
        return scatter, 0
    return mp, k


def _producer(tensor: Any, op: str) -> Any | None:
    node = tensor.inputs[0] if tensor.inputs else None
    return node if node is not None and node.op == op else None


def _walk_up(tensor: Any, ops: tuple[str, ...]) -> Any | None:
    """The last node of the producer chain ops[0] <- ops[1] <- ... (first inputs), if it is one."""
    node = None
    for op in ops:
        node = _producer(tensor, op)
        if node is None:
            return None
        tensor = node.inputs[0]
    return node


def _expansion_ending_at(scatter: Any) -> tuple[Any, Any, list[Any], int] | None:
    """(rois, batch indices, RoiAligns in level order, min_level) if ``scatter`` ends an
    expansion: ScatterND(Concat(RoiAlign_k(feat_k, Gather(rois, idx_k), Gather(bidx, idx_k))),
    Unsqueeze(Concat(idx_k)), same Concat) with idx_k = NonZero(Cast(Equal(level, k))) reshaped."""
    data, positions, updates = scatter.inputs
    stacked = _producer(data, "Concat")
    unsq = _producer(positions, "Unsqueeze")
    if stacked is None or updates is not data or unsq is None:
        return None
    order = _producer(unsq.inputs[0], "Concat")
    found = [_producer(t, "RoiAlign") for t in stacked.inputs]
    pooled: list[Any] = [p for p in found if p is not None]
    if order is None or not pooled or len(pooled) != len(found) or len(order.inputs) != len(pooled):
        return None
    rois = batch_idx = None
    levels = []
    for p, idx in zip(pooled, order.inputs, strict=True):
        g_rois, g_bidx = _producer(p.inputs[1], "Gather"), _producer(p.inputs[2], "Gather")
        if g_rois is None or g_bidx is None or g_rois.inputs[1] is not idx or g_bidx.inputs[1] is not idx:
            return None
        if rois is None:
            rois, batch_idx = g_rois.inputs[0], g_bidx.inputs[0]
        if g_rois.inputs[0] is not rois or g_bidx.inputs[0] is not batch_idx:
            return None
        equal = _walk_up(idx, ("Reshape", "NonZero", "Cast", "Equal"))
        level = _constant_of(equal) if equal is not None else None
        if level is None:
            return None
        levels.append(level)
    same = ("output_height", "output_width", "sampling_ratio", "mode", "coordinate_transformation_mode")
    if any(p.attrs.get(k) != pooled[0].attrs.get(k) for p in pooled[1:] for k in same):
        return None
    if pooled[0].attrs.get("mode", "avg") != "avg":
        return None  # ONNX's max is not the fused op's (the module's docstring)
    if levels != list(range(levels[0], levels[0] + len(pooled))):
        return None
    return rois, batch_idx, pooled, levels[0]


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
