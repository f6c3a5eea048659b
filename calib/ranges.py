"""Ranges fitted to their consumers: a tensor's statistics are taken on the values its
consumers can tell apart.

A symmetric INT8 range is set by the larger side. A convolution that feeds only a ReLU or
an ELU often has its largest values on the negative side (depth_small's decoder: up to
2.5x the positive side), which those activations map to 0 or to about -alpha. Such a
tensor is calibrated as ``max(x, floor)``, floor 0 for ReLU and -ELU_FLAT for ELU, so
every method (MinMax, Percentile, Entropy) spends its grid on the side that matters. The
function is kept: exactly for ReLU, within alpha * exp(-ELU_FLAT) for ELU. The range stays
symmetric, as TensorRT's explicit quantization and its calibration cache want it.

The clipped view exists only for calibration: ONNX Runtime's calibrator measures it with a
``Max`` node in front of the consumers, then the ranges go back to the real tensor names.
"""

from __future__ import annotations

import tempfile
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from calib.quantize import QUANTIZED_OPS, compute_ranges
from edge.errors import ConfigError

# ELU(x) for x <= -ELU_FLAT is -alpha to within alpha * 3.4e-4
ELU_FLAT = 8.0
RAW_SUFFIX = "__edge_unclipped"


def _floor(op_type: str) -> float | None:
    """Below which input this activation's output no longer changes (None: nowhere)."""
    return {"Relu": 0.0, "Elu": -ELU_FLAT}.get(op_type)


def calibrated_tensors(model: Any) -> set[str]:
    """The activations compute_ranges measures: inputs and outputs of the quantized ops."""
    inits = {i.name for i in model.graph.initializer}
    return {
        t
        for n in model.graph.node
        if n.op_type in QUANTIZED_OPS
        for t in (*n.input, *n.output)
        if t and t not in inits
    }


def flat_floors(model: Any) -> dict[str, tuple[float, list[str]]]:
    """Calibrated tensors whose every consumer is flat below some value: the lowest such
    value (below it no consumer tells values apart) and the consumers' op types."""
    graph = model.graph
    calibrated = calibrated_tensors(model)
    consumers: dict[str, list[str]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node.op_type)
    boundary = {o.name for o in graph.output} | {i.name for i in graph.input}
    floors = {}
    for name in sorted(calibrated - boundary):
        ops = consumers.get(name, [])
        levels = [_floor(op) for op in ops]
        if ops and all(f is not None for f in levels):
            floors[name] = (min(f for f in levels if f is not None), sorted(set(ops)))
    return floors


def clipped_view(model: Any, floors: dict[str, tuple[float, list[str]]]) -> Any:
    """A copy of ``model`` where each tensor in ``floors`` is ``Max(unclipped, floor)``."""
    import onnx
    from onnx import helper, numpy_helper

    view = onnx.ModelProto()
    view.CopyFrom(model)
    graph = view.graph
    nodes = []
    for node in graph.node:
        nodes.append(node)
        for i, name in enumerate(node.output):
            if name in floors:
                node.output[i] = name + RAW_SUFFIX
                const = numpy_helper.from_array(np.array(floors[name][0], np.float32), name + "__edge_floor")
                graph.initializer.append(const)
                # right after its producer: shape inference walks the graph in order
                nodes.append(
                    helper.make_node("Max", [node.output[i], const.name], [name], name=name + "__edge_max")
                )
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.value_info[:]
    return view


def compute_fitted_ranges(
    onnx_path: str | Path,
    tensors: Sequence[np.ndarray],
    *,
    method: str = "entropy",
    percentile: float = 99.999,
    only: Collection[str] | None = None,
) -> tuple[dict[str, tuple[float, float]], list[dict[str, Any]]]:
    """compute_ranges, with tensors that only feed ReLU/ELU measured as their consumers see
    them; and a record of those tensors: consumers, floor, unclipped and fitted range.
    ``only``: of the tensors calibrated, just these (the ranges a whole pass gives them;
    compute_ranges)."""
    import onnx

    model = onnx.load(str(onnx_path))
    all_floors = flat_floors(model)
    wanted = calibrated_tensors(model)
    probes = None
    if only is not None:
        if unknown := sorted(set(only) - wanted):
            raise ConfigError(f"{unknown} are not calibrated tensors of {Path(onnx_path).name}")
        wanted = set(only)
        # an ELU's input clipped upstream changes what follows it (by under alpha * 3.4e-4):
        # these are measured in the clipped view too, even where they are not clipped
        probes = sorted({*wanted, *(k + RAW_SUFFIX for k in wanted & all_floors.keys())})
    floors = {k: v for k, v in all_floors.items() if k in wanted}
    if not all_floors:
        return compute_ranges(onnx_path, tensors, method=method, percentile=percentile, only=probes), []
    with tempfile.TemporaryDirectory(prefix="edge-fit-") as tmp:
        view_path = Path(tmp) / "view.onnx"
        onnx.save(clipped_view(model, all_floors), str(view_path))
        measured = compute_ranges(
            view_path,
            tensors,
            method=method,
            percentile=percentile,
            op_types=(*QUANTIZED_OPS, "Max"),
            only=probes,
        )
    # the view's own tensors (the unclipped outputs) go in the record only
    ranges = {k: v for k, v in measured.items() if k in wanted}
    record = []
    for name, (floor, ops) in floors.items():
        raw, fit = measured.get(name + RAW_SUFFIX), ranges.get(name)
        if raw is None or fit is None:
            continue
        before, after = max(abs(raw[0]), abs(raw[1])), max(abs(fit[0]), abs(fit[1]))
        record.append(
            {
                "tensor": name,
                "consumers": ops,
                "floor": floor,
                "unclipped": list(raw),
                "range": list(fit),
                "finer": round(before / after, 3) if after > 0 else None,
            }
        )
    return ranges, record
