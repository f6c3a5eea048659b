"""Input-channel equalization before INT8: balance a convolution's input channels.

Per-tensor activation quantization (what TensorRT needs) gives every channel of a tensor
the same step. Networks trained without normalization often carry a few channels hundreds
of times larger than the rest (depth_small's decoder: channel maxima ~2 against outliers of
~500), and those few set the step that crushes all the others to zero. For a convolution
``y = W * x`` the identity ``W * x = (W diag(s)) * (x / s)`` moves the imbalance into the
weights, which are quantized per output channel anyway: a ``Mul`` by ``1/s`` is inserted in
front of the convolution and ``s`` folded into its weights. ``s`` follows SmoothQuant
(Xiao et al., 2023): ``s_c = a_c^alpha / w_c^(1 - alpha)`` from the per-channel maxima of
the activation ``a`` (on calibration frames) and of the weights ``w``, so neither side
keeps all of the imbalance. The float model computes the same function (to rounding); only
convolutions whose input is imbalanced beyond ``min_imbalance`` are touched, since each
costs one element-wise pass over its input.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

EQ_SUFFIX = "_eq"
# below this a tensor loses under 4 of its 8 bits to its largest channel: not worth a Mul
MIN_IMBALANCE = 16.0


def balanced_name(conv: Any) -> str:
    """The name of the equalized tensor a convolution reads after equalize()."""
    return f"{conv.input[0]}{EQ_SUFFIX}_{conv.name}"


def _equalizable(model: Any) -> list[Any]:
    """Plain (group 1) convolutions with constant weights, fed by an activation."""
    inits = {i.name for i in model.graph.initializer}
    graph_inputs = {i.name for i in model.graph.input}
    out = []
    for n in model.graph.node:
        if n.op_type != "Conv" or len(n.input) < 2 or n.input[1] not in inits or n.input[0] in graph_inputs:
            continue
        group = next((a.i for a in n.attribute if a.name == "group"), 1)
        if group == 1:
            out.append(n)
    return out


def channel_maxima(onnx_path: str | Path, tensors: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
    """Per-channel max |x| of every equalizable convolution's input over ``tensors``."""
    import onnx

    from edge.backends.onnxruntime import session_options
    from edge.util.onnx_io import with_outputs
    from edge.util.ort import onnxruntime_module

    ort = onnxruntime_module()
    model = onnx.load(str(onnx_path))
    names = sorted({n.input[0] for n in _equalizable(model)})
    if not names:
        return {}
    tapped = with_outputs(model, names).SerializeToString()
    sess = ort.InferenceSession(tapped, session_options(), providers=["CPUExecutionProvider"])
    maxima: dict[str, np.ndarray] = {}
    for x in tensors:
        for name, v in zip(names, sess.run(names, {model.graph.input[0].name: x}), strict=True):
            m = np.abs(v).max(axis=tuple(i for i in range(v.ndim) if i != 1))
            maxima[name] = np.maximum(maxima[name], m) if name in maxima else m
    return maxima


def imbalance(channel_max: np.ndarray) -> float:
    """Largest channel maximum over the median one: how much per-tensor INT8 wastes."""
    return float(channel_max.max() / max(float(np.median(channel_max)), 1e-12))


def equalize(
    model: Any,
    maxima: dict[str, np.ndarray],
    *,
    alpha: float = 0.5,
    min_imbalance: float = MIN_IMBALANCE,
    skip: Sequence[str] = (),
    alphas: Mapping[str, float] | None = None,
) -> tuple[Any, list[dict[str, Any]]]:
    """A copy of ``model`` with imbalanced convolution inputs equalized, and what was done;
    convolutions named in ``skip`` (those that stay in float) are left alone. ``alphas``,
    when given, names the convolutions to equalize and each one's alpha (what
    calib/eqchoice.py measured); the others are left alone whatever their imbalance."""
    import onnx
    from onnx import numpy_helper

    model = onnx.ModelProto.FromString(model.SerializeToString())
    inits = {i.name: i for i in model.graph.initializer}
    users: dict[str, int] = {}
    for n in model.graph.node:
        for i in n.input:
            users[i] = users.get(i, 0) + 1
    record: list[dict[str, Any]] = []
    for conv in _equalizable(model):
        a = maxima.get(conv.input[0])
        if a is None or conv.name in skip:
            continue
        if alphas is not None:
            if conv.name not in alphas:
                continue
            conv_alpha = alphas[conv.name]
        elif imbalance(a) < min_imbalance:
            continue
        else:
            conv_alpha = alpha
        w_name = conv.input[1]
        if users.get(w_name, 0) != 1:  # a shared weight would change its other users too
            continue
        weight = numpy_helper.to_array(inits[w_name]).astype(np.float32)
        if weight.shape[1] != a.size:
            continue
        w = np.abs(weight).max(axis=(0, *range(2, weight.ndim)))
        s = np.maximum(a, 1e-6) ** conv_alpha / np.maximum(w, 1e-8) ** (1.0 - conv_alpha)
        s = s / np.exp(np.log(s).mean())  # unit geometric mean: the tensor keeps its overall size
        shape = (1, -1) + (1,) * (weight.ndim - 2)
        inits[w_name].CopyFrom(numpy_helper.from_array(weight * s.reshape(shape), w_name))
        inv = numpy_helper.from_array(
            (1.0 / s).astype(np.float32).reshape(shape), f"{conv.name}{EQ_SUFFIX}_inv"
        )
        model.graph.initializer.append(inv)
        balanced = balanced_name(conv)
        mul = onnx.helper.make_node(
            "Mul", [conv.input[0], inv.name], [balanced], name=f"{conv.name}{EQ_SUFFIX}"
        )
        model.graph.node.insert(list(model.graph.node).index(conv), mul)
        conv.input[0] = balanced
        record.append(
            {
                "node": conv.name,
                "channels": int(a.size),
                "imbalance_before": round(imbalance(a), 1),
                "imbalance_after": round(imbalance(a / s), 1),
                "alpha": conv_alpha,
            }
        )
    return model, record
