"""Graph passes between the fused MultiLevelRoIAlign node and standard ONNX ops.

``expand`` rewrites every fused node into standard ops (level assignment; per level, a
gather of that level's RoIs and one RoiAlign; a scatter back into RoI order), for
backends without the plugin. ``contract`` recognises
that expansion and folds it back into one fused node, for TensorRT with the plugin.
Both use onnx-graphsurgeon.

The fused op's ``max`` mode is the maximum of a bin's bilinear samples, which ONNX's
RoiAlign ``max`` is not: a ``max`` node expands to its samples computed one by one
(max_expansion.py) and a MaxPool over each bin's; under adaptive sampling, whose grid
differs from RoI to RoI, it cannot be expanded. ``contract`` folds that form back, and
leaves an ONNX ``max`` RoiAlign alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx

from plugins.roi_align.graph_builder import GraphBuilder, producer, up
from plugins.roi_align.max_expansion import LevelSamples, pooled_samples, recognise
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
    b = GraphBuilder(gs=gs, graph=graph, prefix=prefix)
    layer, const = b.layer, b.const

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
        level_rois, level_images = (
            layer("Gather", [rois, idx], axis=0),
            layer("Gather", [batch_idx, idx], axis=0),
        )
        if fine:
            pooled.append(
                pooled_samples(
                    b,
                    feat,
                    level_rois,
                    level_images,
                    spatial_scale=float(scale),
                    output_size=(size_h, size_w),
                    sampling_ratio=fine,
                    aligned=bool(int(a.get("aligned", 1))),
                )
            )
        else:
            pooled.append(
                layer(
                    "RoiAlign",
                    [feat, level_rois, level_images],
                    coordinate_transformation_mode=mode,
                    mode="avg",
                    output_height=size_h,
                    output_width=size_w,
                    sampling_ratio=sampling,
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
    where = producer(rois, "Where")
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
        match = _expansion_ending_at(gs, graph, scatter)
        if match is None:
            continue
        out = match.end.outputs[0]
        match.end.outputs.clear()
        first = match.levels[0]
        graph.nodes.append(
            gs.Node(
                op=OP_TYPE,
                domain=DOMAIN,
                name=f"MultiLevelRoIAlign_{found}",
                inputs=[_unguarded(match.rois), match.batch_indices, *[lv.feature for lv in match.levels]],
                outputs=[out],
                attrs=fused_attributes(
                    output_size=first.output_size,
                    spatial_scales=[lv.spatial_scale for lv in match.levels],
                    sampling_ratio=first.sampling_ratio,
                    aligned=first.aligned,
                    mode=match.mode,
                    min_level=match.min_level,
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


@dataclass(frozen=True)
class _Expansion:
    rois: Any
    batch_indices: Any
    levels: list[LevelSamples]
    min_level: int
    mode: str
    end: Any  # the node whose output is the fused node's


def _roi_align_level(tensor: Any) -> LevelSamples | None:
    """One level of an ``avg`` expansion: an ``avg`` RoiAlign (ONNX's max is not the fused
    op's: the module's docstring)."""
    node = producer(tensor, "RoiAlign")
    if node is None or node.attrs.get("mode", "avg") != "avg":
        return None
    return LevelSamples(
        feature=node.inputs[0],
        rois=node.inputs[1],
        batch_indices=node.inputs[2],
        spatial_scale=float(node.attrs.get("spatial_scale", 1.0)),
        output_size=(int(node.attrs.get("output_height", 1)), int(node.attrs.get("output_width", 1))),
        sampling_ratio=int(node.attrs.get("sampling_ratio", 0)),
        aligned=node.attrs.get("coordinate_transformation_mode", "half_pixel") == "half_pixel",
    )


def _max_pool_of(graph: Any, scatter: Any, grid: int) -> Any | None:
    """The MaxPool of each bin's ``grid`` x ``grid`` samples that ends a ``max`` expansion, if
    ``scatter``'s output goes to it alone."""
    pooled = scatter.outputs[0]
    consumers = list(pooled.outputs)
    if pooled in graph.outputs or len(consumers) != 1 or consumers[0].op != "MaxPool":
        return None
    mp = consumers[0]
    plain = (
        len(mp.outputs) == 1  # no Indices output
        and mp.attrs.get("auto_pad", "NOTSET") in ("NOTSET", b"NOTSET")
        and not any(mp.attrs.get("pads", []))
        and all(int(d) == 1 for d in mp.attrs.get("dilations", [1, 1]))
        and not mp.attrs.get("ceil_mode", 0)
    )
    window = [grid, grid]
    if not plain or [int(k) for k in mp.attrs.get("kernel_shape", [])] != window:
        return None
    return mp if [int(v) for v in mp.attrs.get("strides", [1, 1])] == window else None


def _expansion_ending_at(gs: Any, graph: Any, scatter: Any) -> _Expansion | None:
    """The expansion ``scatter`` ends, if it ends one: ScatterND(Concat(pooled_k),
    Unsqueeze(Concat(idx_k)), same Concat), each pooled_k an ``avg`` RoiAlign (or, for ``max``,
    max_expansion's samples, then a MaxPool) of Gather(rois, idx_k), Gather(bidx, idx_k), with
    idx_k = NonZero(Cast(Equal(level, k))) reshaped."""
    data, positions, updates = scatter.inputs
    stacked = producer(data, "Concat")
    order = up(positions, ("Unsqueeze", 0))
    order = producer(order, "Concat") if order is not None else None
    if stacked is None or updates is not data or order is None or len(order.inputs) != len(stacked.inputs):
        return None
    avg = [_roi_align_level(t) for t in stacked.inputs]
    levels = avg if all(avg) else [recognise(gs, t) for t in stacked.inputs]
    if not levels or not all(levels):
        return None
    found: list[LevelSamples] = [lv for lv in levels if lv is not None]
    rois = up(found[0].rois, ("Gather", 0))
    batch_idx = up(found[0].batch_indices, ("Gather", 0))
    numbers = []
    for lv, idx in zip(found, order.inputs, strict=True):
        g_rois, g_bidx = producer(lv.rois, "Gather"), producer(lv.batch_indices, "Gather")
        if g_rois is None or g_bidx is None or g_rois.inputs[1] is not idx or g_bidx.inputs[1] is not idx:
            return None
        if g_rois.inputs[0] is not rois or g_bidx.inputs[0] is not batch_idx:
            return None
        cast = up(idx, ("Reshape", 0), ("NonZero", 0), ("Cast", 0))
        equal = producer(cast, "Equal") if cast is not None else None
        number = _constant_of(equal) if equal is not None else None
        if number is None:
            return None
        numbers.append(number)
    same = [(lv.output_size, lv.sampling_ratio, lv.aligned) for lv in found]
    if same != same[:1] * len(same) or numbers != list(range(numbers[0], numbers[0] + len(found))):
        return None
    if all(avg):
        return _Expansion(rois, batch_idx, found, numbers[0], "avg", scatter)
    end = _max_pool_of(graph, scatter, found[0].sampling_ratio)
    return None if end is None else _Expansion(rois, batch_idx, found, numbers[0], "max", end)


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
