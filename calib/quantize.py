"""Ranges and the Q/DQ model, through ONNX Runtime's quantization tooling.

Activations: symmetric INT8; weights: per-channel symmetric INT8 — the explicit
quantization TensorRT 10/11 requires, and what ONNX Runtime's CPU INT8 kernels run. Only
the compute-heavy ops are quantized (convolutions and matrix products); box decoding,
NMS, top-K and the other index/coordinate arithmetic stay in float.
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from calib.histograms import threaded_histograms
from edge.errors import ConfigError
from edge.util.ort import keep_offline

METHODS = ("minmax", "percentile", "entropy")
QUANTIZED_OPS = ("Conv", "ConvTranspose", "MatMul", "Gemm")
# ONNX Runtime 1.19's quantizer sets a range on every Softmax's output and fails where that
# output was not calibrated ("Only an existing tensor can be modified"), as the panoptic
# models' class scores are not (Softmax is not quantized); 1.20 checks first
SOFTMAX_QUANTIZER_SINCE = (1, 20)


def quantizes_beside_float_softmax(version: str) -> bool:
    """Whether ONNX Runtime ``version``'s quantizer makes a Q/DQ model with a float Softmax."""
    from packaging.version import InvalidVersion, Version

    try:
        return Version(version).release[:2] >= SOFTMAX_QUANTIZER_SINCE
    except InvalidVersion:
        return True  # a build of its own: let it try


def check_quantizer(model: Any, path: str | Path, *, version: str | None = None) -> None:
    """A DependencyError, before any frame is read, where ONNX Runtime's quantizer (``version``:
    the one installed) cannot make ``model``'s Q/DQ form."""
    from edge.errors import DependencyError
    from edge.util.ort import onnxruntime_module

    version = version if version is not None else str(onnxruntime_module().__version__)
    if quantizes_beside_float_softmax(version):
        return
    if any(node.op_type == "Softmax" for node in model.graph.node):
        raise DependencyError(
            f"{Path(path).name}: ONNX Runtime {version}'s quantizer fails on a model with a Softmax that "
            "stays float, as this one has; 1.20 or newer quantizes it: pip install -U 'onnxruntime>=1.20' "
            "(on a Jetson, PyPI's CPU build serves: calibration runs on the CPU)"
        )


def _method(name: str) -> Any:
    keep_offline()
    from onnxruntime.quantization import CalibrationMethod

    table = {
        "minmax": CalibrationMethod.MinMax,
        "percentile": CalibrationMethod.Percentile,
        "entropy": CalibrationMethod.Entropy,
    }
    if name not in table:
        raise ConfigError(f"calibration method {name!r} is unknown; choose one of {', '.join(METHODS)}")
    return table[name]


def _options(method: str, percentile: float) -> dict[str, Any]:
    if method == "percentile":
        return {"percentile": percentile, "symmetric": True}
    if method == "entropy":
        return {"symmetric": True}
    # the observed min and max as they are: the quantizer takes the larger magnitude, and
    # calib/ranges.py needs to know which side is which
    return {"symmetric": False}


class _Reader:
    """ONNX Runtime's CalibrationDataReader protocol over preprocessed frames."""

    def __init__(self, tensors: Sequence[np.ndarray], input_name: str = "image") -> None:
        self._it: Iterator[np.ndarray] = iter(tensors)
        self._name = input_name

    def get_next(self) -> dict[str, np.ndarray] | None:
        t = next(self._it, None)
        return None if t is None else {self._name: t}

    def rewind(self) -> None:  # not needed: a new reader is made per pass
        return None


def compute_ranges(
    onnx_path: str | Path,
    tensors: Sequence[np.ndarray],
    *,
    method: str = "entropy",
    percentile: float = 99.999,
    op_types: Sequence[str] = QUANTIZED_OPS,
    only: Collection[str] | None = None,
) -> dict[str, tuple[float, float]]:
    """Dynamic range (min, max) of every input and output of the ops that get quantized
    (``op_types``), or of the tensors named in ``only`` alone.

    ``only`` measures its tensors in a copy of the model cut down to the nodes they need:
    the calibrator runs a model unoptimised and histograms each tensor by itself, so they
    get the ranges a whole pass gives them, for a fraction of its time where few are asked
    for (calib/eqchoice.py wants just the equalized tensors of each variant)."""
    keep_offline()
    from onnxruntime.quantization.calibrate import create_calibrator

    with tempfile.TemporaryDirectory(prefix="edge-calib-") as tmp:
        model_path, types = str(onnx_path), list(op_types)
        if only is not None:
            import onnx

            model_path = str(Path(tmp) / "probe.onnx")
            onnx.save(_probe_model(onnx.load(str(onnx_path)), only), model_path)
            types = [_PROBE_OP]
        calibrator = create_calibrator(
            model_path,
            op_types_to_calibrate=types,
            augmented_model_path=str(Path(tmp) / "augmented.onnx"),
            calibrate_method=_method(method),
            extra_options=_options(method, percentile),
        )
        threaded = threaded_histograms(calibrator)
        if threaded is not None:
            calibrator.collector = threaded  # collect_data makes its own only when none is set
        # ONNX Runtime's histogram calibrators print their steps to stdout; edge's output
        # (and a caller's) stays its own
        with contextlib.redirect_stdout(io.StringIO()):
            calibrator.collect_data(_Reader(tensors))
            data = calibrator.compute_data()
    out = {}
    for name, td in data.data.items():
        if only is not None and name not in only:
            continue  # the input of a Shape node the model had of its own
        lo, hi = (float(np.asarray(v).reshape(-1)[0]) for v in td.range_value)
        out[name] = (lo, hi)
    return out


# Calibrators take the float inputs and outputs of the op types they are given: a Shape
# node's input is a float tensor, its output is not, so a Shape read of a tensor marks it alone.
_PROBE_OP = "Shape"


def _probe_model(model: Any, names: Collection[str]) -> Any:
    """``model`` cut down to the nodes that compute ``names``, in their order, with a Shape
    node reading each name as the graph's outputs."""
    from onnx import TensorProto, helper

    graph = model.graph
    producer = {out: node for node in graph.node for out in node.output}
    inputs = {i.name for i in graph.input}
    missing = sorted(set(names) - producer.keys() - inputs)
    if missing:
        raise ConfigError(f"cannot calibrate {', '.join(missing)}: no such tensor in the model")
    needed: set[str] = set()
    kept: set[int] = set()
    stack = list(names)
    while stack:
        name = stack.pop()
        if name in needed:
            continue
        needed.add(name)
        node = producer.get(name)
        if node is not None and id(node) not in kept:
            kept.add(id(node))
            stack.extend(_reads(node))
    nodes = [n for n in graph.node if id(n) in kept]
    sliced = helper.make_graph(
        [*nodes, *(helper.make_node(_PROBE_OP, [n], [f"{n}__edge_probe"]) for n in sorted(names))],
        graph.name,
        [i for i in graph.input if i.name in needed],
        [helper.make_tensor_value_info(f"{n}__edge_probe", TensorProto.INT64, None) for n in sorted(names)],
        [i for i in graph.initializer if i.name in needed],
        value_info=[v for v in graph.value_info if v.name in needed],
    )
    return helper.make_model(
        sliced, opset_imports=model.opset_import, ir_version=model.ir_version, functions=model.functions
    )


def _reads(node: Any) -> list[str]:
    """The tensors a node reads: its inputs and, through any subgraph, the outer ones."""
    from onnx import AttributeProto

    names = [i for i in node.input if i]
    for attr in node.attribute:
        graphs = [attr.g] if attr.type == AttributeProto.GRAPH else list(attr.graphs)
        for sub in graphs:
            for inner in sub.node:
                names.extend(_reads(inner))
    return names


def quantize_qdq(
    onnx_in: str | Path,
    onnx_out: str | Path,
    ranges: dict[str, tuple[float, float]],
    *,
    input_shape: Sequence[int],
    exclude_nodes: Sequence[str] = (),
) -> None:
    """Write the Q/DQ model with exactly ``ranges`` (from compute_ranges or a TensorRT cache)
    as its activation ranges: the model, the ranges JSON and the cache cannot disagree, and
    trying another set of float layers costs no new calibration."""
    keep_offline()
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    # every range is overridden; ONNX Runtime's pass still wants a frame to run
    blank = [np.zeros(tuple(input_shape), np.float32)]
    with _without_preprocess_advice():
        quantize_static(
            str(onnx_in),
            str(onnx_out),
            _Reader(blank),
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=list(QUANTIZED_OPS),
            per_channel=True,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=list(exclude_nodes),
            calibrate_method=CalibrationMethod.MinMax,
            extra_options={
                "ActivationSymmetric": True,
                "WeightSymmetric": True,
                "TensorQuantOverrides": {
                    name: [{"rmin": np.float32(lo), "rmax": np.float32(hi)}]
                    for name, (lo, hi) in ranges.items()
                },
            },
        )


class _PreprocessAdvice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing" not in record.getMessage()


@contextlib.contextmanager
def _without_preprocess_advice() -> Iterator[None]:
    """ONNX Runtime's quantizer advises running its pre-processing on every call, through
    the root logger; the models edge quantizes are already shape-inferred and folded, and
    an equalization choice quantizes once per trial, so that advice would bury the progress."""
    root = logging.getLogger()
    advice = _PreprocessAdvice()
    root.addFilter(advice)
    try:
        yield
    finally:
        root.removeFilter(advice)


def calibrated_tensors(onnx_path: str | Path, shape: Sequence[int]) -> set[str]:
    """The activation tensors that get an INT8 range (inputs and outputs of the quantized
    ops), found the way compute_ranges finds them: one pass over a blank frame."""
    blank = np.zeros(tuple(shape), np.float32)
    return set(compute_ranges(onnx_path, [blank], method="minmax"))


def activations_to_uint8(model: Any) -> Any:
    """The same Q/DQ model with every activation stored as UINT8 (zero point 0 -> 128).

    A lossless change of storage: symmetric INT8 codes -128..127 with zero point 0 become
    0..255 with zero point 128, the same grid of values. x86 ONNX Runtime fuses
    DQ -> Conv -> Q into its integer kernels only for UINT8 activations; it converts INT8
    pairs itself only where a tensor has a single consumer, so a branched network (FPN,
    residual blocks) keeps most convolutions in float between Q/DQ pairs — slower than
    FP32. The symmetric INT8 model stays what TensorRT gets; this form is for ONNX
    Runtime's CPU kernels. Weights stay INT8 (U8S8, what VNNI takes).
    """
    import onnx
    from onnx import TensorProto, numpy_helper

    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    inits = {i.name: i for i in graph.initializer}
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    converted: dict[str, str] = {}  # INT8 zero-point initializer -> its UINT8 twin

    def uint8_twin(name: str) -> str:
        if name not in converted:
            zp = numpy_helper.to_array(inits[name]).astype(np.int16) + 128
            twin = numpy_helper.from_array(zp.astype(np.uint8), f"{name}_uint8")
            graph.initializer.append(twin)
            converted[name] = twin.name
        return converted[name]

    retyped = set()
    for q in [n for n in graph.node if n.op_type == "QuantizeLinear"]:
        zp = q.input[2] if len(q.input) > 2 else ""
        if zp not in inits or inits[zp].data_type != TensorProto.INT8:
            continue
        dqs = consumers.get(q.output[0], [])
        if not dqs or any(d.op_type != "DequantizeLinear" or len(d.input) < 3 for d in dqs):
            continue  # not a plain Q -> DQ pair: leave it as it is
        for node in (q, *dqs):
            node.input[2] = uint8_twin(node.input[2])
        retyped.add(q.output[0])
    for vi in graph.value_info:
        if vi.name in retyped:
            vi.type.tensor_type.elem_type = TensorProto.UINT8
    used = {name for node in graph.node for name in node.input}
    keep = [i for i in graph.initializer if i.name in used or i.name in {x.name for x in graph.input}]
    del graph.initializer[:]
    graph.initializer.extend(keep)
    return out
