"""Bias correction: each convolution's mean output in the Q/DQ model brought back to the float model's.

Rounding an activation to the INT8 grid is not noise with a mean of zero where many values
sit at one place: an ELU's outputs pile up near its floor of -1, and whether the grid's
step lands just above or just below -1 shifts every output of the next convolution the
same way. depth_tiny's last convolution feeds a sigmoid whose far-range outputs turn such a
shift of its logits into the same relative shift of depth: 2% more on one tensor's range
moved the INT8 model's depth score from 32 to 17 dB, and a calibration on 256 frames
instead of 64 landed on the wrong side (benchmarks/bias_correction_trial.py).

So, after the ranges, each convolution's per-channel mean output over some calibration
frames is measured in the float model and in the Q/DQ model, and the difference is taken
off the Q/DQ model's bias (its INT32 values, whose step is the input's scale times the
weight's: far finer than any shift worth making). Convolutions are corrected a level at a
time, upstream first: a level's shifts are measured with every convolution upstream of it
already corrected, so a shift is not taken off twice (correcting every layer from one run
overshoots: depth_tiny's 19 dB became 13). Convolutions run per region of interest (the
mask head's) are left as they are: the float and INT8 models need not pick the same
regions, so their means do not compare. Means are not what the scores see, so whether
the shifts are kept is judged on the calibration's held-out frames (calib/api.py).
"""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

CORRECTED_OPS = ("Conv", "ConvTranspose")
MAX_FRAMES = 16  # the means settle on far fewer (depth_tiny's last shift: the same from 4)
_INT32 = np.iinfo(np.int32)


@dataclass
class BiasCorrection:
    model: Any  # the corrected Q/DQ model (onnx.ModelProto)
    # per convolution (node name), what was taken off its bias per channel: for an INT32
    # bias, the whole steps taken times their scale, so the float model shifted by these
    # quantizes to the corrected Q/DQ model (shifted())
    shifts: dict[str, np.ndarray]
    record: dict[str, Any]  # what the calibration record keeps


def correction_frames(tensors: Sequence[np.ndarray], most: int = MAX_FRAMES) -> list[np.ndarray]:
    """Up to ``most`` of ``tensors``, spread evenly over them."""
    if len(tensors) <= most:
        return list(tensors)
    picks = np.linspace(0, len(tensors) - 1, most).round().astype(int)
    return [tensors[i] for i in picks]


def correct_biases(
    qdq_model: Any,
    float_model: str | Path,
    tensors: Sequence[np.ndarray],
    *,
    show_progress: bool = False,
) -> BiasCorrection:
    """``qdq_model`` (an onnx.ModelProto of ``float_model``'s Q/DQ form) with each
    convolution's bias shifted so that its mean output per channel over ``tensors`` is the
    float model's. Returns the corrected copy and a record of the shifts."""
    import onnx

    from calib.sensitivity import trials_bar

    model = onnx.ModelProto()
    model.CopyFrom(qdq_model)
    levels = conv_levels(model)
    floats = onnx.load(str(float_model))
    # the same node in the float model, by name: the quantizer renames a graph output's producer's output
    float_nodes = {n.name: n for n in floats.graph.node if n.name}
    readers = Counter(i for n in floats.graph.node for i in n.input)
    # a bias another node reads too cannot be shifted for one of them
    convs = [
        c
        for level in levels
        for c in level
        if c.name in float_nodes
        and _corrected(float_nodes[c.name])
        and readers[float_nodes[c.name].input[2]] == 1
    ]
    float_output = {c.name: float_nodes[c.name].output[0] for c in convs}
    means = channel_means(floats, list(float_output.values()), tensors)
    reference = {name: means[output] for name, output in float_output.items()}
    # a convolution whose output has another first dimension than the frames' runs per region
    per_frame = {name for name, (_, batch) in reference.items() if batch == tensors[0].shape[0]}
    # looked up once: a shift edits an initializer in place, so these stay the model's
    inits = {i.name: i for i in model.graph.initializer}
    dequantized = {n.output[0]: n for n in model.graph.node if n.op_type == "DequantizeLinear"}
    shifts: dict[str, np.ndarray] = {}
    skipped: list[str] = []
    with trials_bar(show_progress, "bias correction (levels)", total=len(levels)) as bar:
        for level in levels:
            wanted = [c for c in level if c.name in per_frame]
            skipped += [c.name for c in level if c.name in reference and c.name not in per_frame]
            if wanted:
                got = channel_means(model, [c.output[0] for c in wanted], tensors)
                for conv in wanted:
                    delta = got[conv.output[0]][0] - reference[conv.name][0]
                    if delta.shape == reference[conv.name][0].shape and np.isfinite(delta).all():
                        shifts[conv.name] = _shift_bias(inits, dequantized, conv, delta)
            bar.update()
    sizes = {k: float(np.abs(v).max()) for k, v in shifts.items()}
    largest = max(sizes, key=lambda k: sizes[k]) if sizes else None
    record = {
        "frames": len(tensors),
        "convolutions": len(shifts),
        "levels": len(levels),
        "left_per_region": sorted(skipped),
        "largest_shift": {"node": largest, "shift": round(sizes[largest], 4)} if largest else None,
    }
    return BiasCorrection(model, shifts, record)


def shifted(float_model: Any, shifts: dict[str, np.ndarray]) -> Any:
    """A copy of ``float_model`` with ``shifts`` (BiasCorrection.shifts) taken off its
    convolutions' biases: quantized with the same ranges, it is the corrected Q/DQ model."""
    import onnx

    out = onnx.ModelProto()
    out.CopyFrom(float_model)
    inits = {i.name: i for i in out.graph.initializer}
    for node in out.graph.node:
        if node.name in shifts:
            _subtract(inits[node.input[2]], shifts[node.name])
    return out


def conv_levels(model: Any) -> list[list[Any]]:
    """The convolutions with a bias, grouped by how many such convolutions lie upstream of
    each at most (its level), levels in order: no convolution of a level feeds another.
    ONNX keeps a graph's nodes in topological order, so one pass over them does."""
    level: dict[str, int] = {}
    grouped: dict[int, list[Any]] = {}
    for node in model.graph.node:
        upstream = max((level.get(i, 0) for i in node.input if i), default=0)
        here = upstream + 1 if _corrected(node) else upstream
        if _corrected(node):
            grouped.setdefault(here, []).append(node)
        for output in node.output:
            level[output] = here
    return [grouped[k] for k in sorted(grouped)]


def _corrected(node: Any) -> bool:
    return node.op_type in CORRECTED_OPS and len(node.input) > 2 and bool(node.input[2])


def channel_means(
    model: Any, names: Sequence[str], tensors: Sequence[np.ndarray]
) -> dict[str, tuple[np.ndarray, int]]:
    """Per channel (axis 1) mean of each tensor ``names`` over ``tensors``, and its first
    dimension (-1 where it changed between frames), from ONNX Runtime's CPU session of
    ``model`` with those tensors as outputs."""
    import onnx

    from edge.backends.onnxruntime import model_for_ort, session_options
    from edge.util.onnx_io import with_outputs
    from edge.util.ort import onnxruntime_module

    if not names:
        return {}  # (ONNX Runtime runs every output when asked for none)
    ort = onnxruntime_module()
    with tempfile.TemporaryDirectory(prefix="edge-bias-") as tmp:
        path = Path(tmp) / "m.onnx"  # model_for_ort takes a file
        onnx.save(with_outputs(model, names), str(path))
        session = ort.InferenceSession(
            model_for_ort(path), session_options(), providers=["CPUExecutionProvider"]
        )
    sums: dict[str, np.ndarray] = {}
    counts: dict[str, int] = dict.fromkeys(names, 0)
    batch: dict[str, int] = {}
    for tensor in tensors:
        got = dict(zip(names, session.run(list(names), {"image": tensor}), strict=True))
        for name in names:
            value = np.asarray(got[name], dtype=np.float64)
            batch[name] = value.shape[0] if batch.get(name, value.shape[0]) == value.shape[0] else -1
            if value.ndim < 2 or value.shape[0] == 0:
                continue
            axes = tuple(a for a in range(value.ndim) if a != 1)
            sums[name] = sums.get(name, 0.0) + value.mean(axis=axes)
            counts[name] += 1
    return {n: (sums[n] / counts[n] if counts[n] else np.zeros(0), batch.get(n, -1)) for n in names}


def _shift_bias(
    inits: dict[str, Any], dequantized: dict[str, Any], conv: Any, delta: np.ndarray
) -> np.ndarray:
    """Take ``delta`` off ``conv``'s bias (``inits``: the model's initializers by name,
    ``dequantized``: its DequantizeLinear nodes by output): whole steps of its INT32 values
    where the bias is dequantized, the float values where it is not. What was taken off, in
    float."""
    from onnx import numpy_helper

    name = conv.input[2]
    if name in inits:
        _subtract(inits[name], delta)
        return delta
    dq = dequantized.get(name)
    if dq is None or dq.input[0] not in inits or dq.input[1] not in inits:
        return np.zeros_like(delta)  # a bias computed in the graph: nothing to shift
    scale = numpy_helper.to_array(inits[dq.input[1]]).astype(np.float64)
    before = numpy_helper.to_array(inits[dq.input[0]]).astype(np.int64)
    after = np.clip(before - np.round(delta / scale), _INT32.min, _INT32.max)
    _replace(inits[dq.input[0]], after.astype(np.int32))
    return (before - after) * scale


def _subtract(init: Any, delta: np.ndarray) -> None:
    """Take ``delta`` off the float initializer ``init``."""
    from onnx import numpy_helper

    values = numpy_helper.to_array(init)
    _replace(init, (values.astype(np.float64) - delta).astype(values.dtype))


def _replace(init: Any, values: np.ndarray) -> None:
    from onnx import numpy_helper

    init.CopyFrom(numpy_helper.from_array(values, init.name))
