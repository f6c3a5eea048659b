"""calib/float_nodes.py: undoing the quantization of chosen nodes gives exactly the model
ONNX Runtime's quantizer writes when told to exclude them, which is what the sensitivity
pass's trials stand for."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from calib.data import load_frames
from calib.float_nodes import with_float_nodes
from calib.quantize import QUANTIZED_OPS, compute_ranges, quantize_qdq
from edge.errors import ConfigError
from tests.conftest import TEST_SIZE, skip_where_onnxruntime_cannot_quantize


def _outputs(model: onnx.ModelProto | Path, x: np.ndarray) -> list[np.ndarray]:
    data = model.SerializeToString() if isinstance(model, onnx.ModelProto) else str(model)
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
    return list(sess.run(None, {"image": x}))


class _Quantized:
    """A tiny float model, its all-INT8 model, and what the quantizer makes with exclusions."""

    def __init__(self, src: Path, tmp: Path) -> None:
        self.src = src
        self.float = onnx.load(str(src))
        frames = load_frames("synthetic://?size=128x256", frames=2, size=TEST_SIZE, seed=0).tensors
        self.x = load_frames("synthetic://?size=128x256", frames=1, size=TEST_SIZE, seed=5).tensors[0]
        self.ranges = compute_ranges(src, frames, method="minmax")
        self.tmp = tmp
        quantize_qdq(src, tmp / "int8.onnx", self.ranges, input_shape=self.x.shape)
        self.qdq = onnx.load(str(tmp / "int8.onnx"))

    def quantizer_outputs(self, exclude: Sequence[str]) -> list[np.ndarray]:
        path = self.tmp / "excluded.onnx"
        quantize_qdq(self.src, path, self.ranges, input_shape=self.x.shape, exclude_nodes=exclude)
        return _outputs(path, self.x)

    def nodes(self) -> list[onnx.NodeProto]:
        return [n for n in self.float.graph.node if n.op_type in QUANTIZED_OPS and n.name]


@pytest.fixture(scope="module")
def depth(tiny_engines: Path, tmp_path_factory: pytest.TempPathFactory) -> _Quantized:
    src = tiny_engines / f"depth_tiny_{TEST_SIZE[0]}x{TEST_SIZE[1]}_b1_onnxruntime_fp32.onnx"
    return _Quantized(src, tmp_path_factory.mktemp("float_nodes_depth"))


@pytest.fixture(scope="module")
def panoptic(tiny_engines: Path, tmp_path_factory: pytest.TempPathFactory) -> _Quantized:
    src = tiny_engines / f"panoptic_fpn_tiny_{TEST_SIZE[0]}x{TEST_SIZE[1]}_b1_onnxruntime_fp32.onnx"
    skip_where_onnxruntime_cannot_quantize(src)
    return _Quantized(src, tmp_path_factory.mktemp("float_nodes_panoptic"))


def _assert_same(got: list[np.ndarray], want: list[np.ndarray]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g.shape == w.shape and np.array_equal(g, w)


def test_a_float_node_reads_float_weights_and_loses_its_pairs(depth: _Quantized) -> None:
    first, last = depth.nodes()[0], depth.nodes()[-1]
    model = with_float_nodes(depth.qdq, depth.float, [first.name, last.name])
    inits = {i.name: i for i in model.graph.initializer}
    nodes = {n.name: n for n in model.graph.node}
    producer = {o: n for n in model.graph.node for o in n.output}
    for name in (first.name, last.name):
        node = nodes[name]
        assert inits[node.input[1]].data_type == onnx.TensorProto.FLOAT  # the float weight itself
        # its input and output were quantized only for it: no pair is left around them
        assert node.input[0] not in producer or producer[node.input[0]].op_type != "DequantizeLinear"
    # the last convolution feeds a float op: nothing quantizes its output any more
    assert not any(
        n.op_type == "QuantizeLinear" and n.input[0] == nodes[last.name].output[0] for n in model.graph.node
    )
    # nothing is left that no node reads
    read = {i for n in model.graph.node for i in n.input}
    assert all(i.name in read for i in model.graph.initializer)
    _assert_same(_outputs(model, depth.x), depth.quantizer_outputs([first.name, last.name]))


def test_no_nodes_is_the_all_int8_model(depth: _Quantized) -> None:
    model = with_float_nodes(depth.qdq, depth.float, [])
    assert model == depth.qdq and model is not depth.qdq


def test_equal_to_the_quantizer_with_exclusions_on_the_depth_model(depth: _Quantized) -> None:
    names = [n.name for n in depth.nodes()]
    for exclude in ([names[len(names) // 2]], names[1::3]):
        _assert_same(
            _outputs(with_float_nodes(depth.qdq, depth.float, exclude), depth.x),
            depth.quantizer_outputs(exclude),
        )


def _shared_weight_readers(q: _Quantized) -> list[str]:
    """The nodes that read one weight (an RPN head applied to every pyramid level)."""
    readers: dict[str, list[str]] = {}
    for n in q.nodes():
        readers.setdefault(n.input[1], []).append(n.name)
    return max(readers.values(), key=len)


def test_equal_to_the_quantizer_on_the_panoptic_model(panoptic: _Quantized) -> None:
    """The cases where the quantizer's own rules show: a weight shared by nodes of which some
    stay INT8 (the float node then reads the dequantized weight and the first INT8
    reader's bias), all of a shared weight's readers in float, a node whose output is a
    graph output, a node whose input other INT8 nodes read too."""
    shared = _shared_weight_readers(panoptic)
    assert len(shared) >= 4
    outputs = {o.name for o in panoptic.float.graph.output}
    to_output = next(n.name for n in panoptic.nodes() if n.output[0] in outputs)
    readers: dict[str, int] = {}
    for n in panoptic.nodes():
        readers[n.input[0]] = readers.get(n.input[0], 0) + 1
    branched = next(n.name for n in panoptic.nodes() if readers[n.input[0]] > 1 and n.name not in shared)
    cases = [[shared[0]], [shared[-1]], shared, [to_output, branched]]
    for exclude in cases:
        got = _outputs(with_float_nodes(panoptic.qdq, panoptic.float, exclude), panoptic.x)
        _assert_same(got, panoptic.quantizer_outputs(exclude))


def test_unknown_nodes_are_named(depth: _Quantized) -> None:
    relu = next(n.name for n in depth.float.graph.node if n.op_type not in QUANTIZED_OPS and n.name)
    with pytest.raises(ConfigError, match=r"\['nope'\] are not quantized nodes of the model"):
        with_float_nodes(depth.qdq, depth.float, ["nope", depth.nodes()[0].name])
    with pytest.raises(ConfigError, match=relu):
        with_float_nodes(depth.qdq, depth.float, [relu])
