"""Ranges fitted to their consumers: golden values on a hand-made graph, same function,
and a finer INT8 grid where a convolution's negative outliers feed an ELU."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from calib.quantize import compute_ranges, quantize_qdq
from calib.ranges import ELU_FLAT, clipped_view, compute_fitted_ranges, flat_floors
from edge.errors import ConfigError
from edge.verify import snr_db
from tests.conftest import IR_VERSION

SHAPE = (1, 3, 16, 32)


def _consumers_model(path: Path) -> Path:
    """Tensors a..f, each consumed differently: only ReLU, only ELU, both, ReLU and a Conv,
    a graph output with a ReLU, and only a Sigmoid."""
    w = numpy_helper.from_array(np.ones((3, 3, 1, 1), np.float32), "w")
    nodes = [helper.make_node("Conv", ["image", "w"], [t], name=f"conv_{t}") for t in "abcdef"]
    nodes += [
        helper.make_node("Relu", ["a"], ["ra"]),
        helper.make_node("Elu", ["b"], ["eb"]),
        helper.make_node("Relu", ["c"], ["rc"]),
        helper.make_node("Elu", ["c"], ["ec"]),
        helper.make_node("Relu", ["d"], ["rd"]),
        helper.make_node("Conv", ["d", "w"], ["cd"]),
        helper.make_node("Relu", ["e"], ["re"]),
        helper.make_node("Sigmoid", ["f"], ["sf"]),
    ]
    outs = ["ra", "eb", "rc", "ec", "rd", "cd", "re", "e", "sf"]
    graph = helper.make_graph(
        nodes,
        "consumers",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, list(SHAPE))],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, list(SHAPE)) for o in outs],
        [w],
    )
    onnx.save(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=IR_VERSION),
        str(path),
    )
    return path


def test_floors_per_consumer(tmp_path: Path) -> None:
    model = onnx.load(str(_consumers_model(tmp_path / "m.onnx")))
    # a only ReLU, b only ELU, c both (the ELU's floor, where both are flat); not d (also a
    # Conv), e (a graph output), f (a Sigmoid) nor the graph input
    assert flat_floors(model) == {
        "a": (0.0, ["Relu"]),
        "b": (-ELU_FLAT, ["Elu"]),
        "c": (-ELU_FLAT, ["Elu", "Relu"]),
    }


def test_clipped_view_golden_values(tmp_path: Path) -> None:
    model = onnx.load(str(_consumers_model(tmp_path / "m.onnx")))
    view = clipped_view(model, flat_floors(model))
    onnx.checker.check_model(view)  # still in topological order
    x = np.zeros(SHAPE, np.float32)
    x[0, :, 0, 0] = [-20.0, -1.0, 3.0]  # 1x1 convolutions with weight 1: every channel -18
    x[0, :, 0, 1] = [0.5, 0.25, 1.0]  # 1.75
    x[0, :, 0, 2] = [-1.0, -1.0, -1.0]  # -3
    names = ["a", "b", "c", "d"]
    tapped = onnx.ModelProto()
    tapped.CopyFrom(view)
    tapped.graph.output.extend(helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in names)
    sess = ort.InferenceSession(tapped.SerializeToString(), providers=["CPUExecutionProvider"])
    got = dict(zip(names, sess.run(names, {"image": x}), strict=True))
    assert got["a"][0, 0, 0, :3].tolist() == [0.0, 1.75, 0.0]
    assert got["b"][0, 0, 0, :3].tolist() == [-ELU_FLAT, 1.75, -3.0]
    assert got["c"][0, 0, 0, :3].tolist() == [-ELU_FLAT, 1.75, -3.0]
    assert got["d"][0, 0, 0, :3].tolist() == [-18.0, 1.75, -3.0]
    # and the model's own outputs are unchanged
    orig = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    for a, b in zip(
        orig.run(None, {"image": x}), sess.run(None, {"image": x})[: len(model.graph.output)], strict=True
    ):
        np.testing.assert_allclose(a, b, atol=1e-3)


def _outlier_model(path: Path) -> Path:
    """image -> Conv (16 ch, four with a bias of -300) -> Elu -> Conv -> out: the convolution's
    range is set by channels the ELU maps to -1 anyway."""
    rng = np.random.default_rng(0)
    w1 = rng.normal(0, 0.02, (16, 3, 3, 3)).astype(np.float32)
    b1 = np.zeros(16, np.float32)
    b1[:4] = -300.0
    w2 = rng.normal(0, 0.3, (4, 16, 3, 3)).astype(np.float32)
    pads = [1, 1, 1, 1]
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["image", "w1", "b1"], ["c1"], name="conv1", pads=pads),
            helper.make_node("Elu", ["c1"], ["e1"], name="elu1"),
            helper.make_node("Conv", ["e1", "w2"], ["out"], name="conv2", pads=pads),
        ],
        "outliers",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, list(SHAPE))],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 4, SHAPE[2], SHAPE[3]])],
        [numpy_helper.from_array(a, n) for a, n in ((w1, "w1"), (b1, "b1"), (w2, "w2"))],
    )
    onnx.save(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=IR_VERSION),
        str(path),
    )
    return path


def _run(model: Path | onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    """The model's own arithmetic: Q/DQ evaluated as written, not fused into integer kernels
    (which saturate on x86 CPUs without VNNI, calib/seven_bit.py): the ranges are judged,
    not this CPU."""
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    src = model.SerializeToString() if isinstance(model, onnx.ModelProto) else str(model)
    sess = ort.InferenceSession(src, so, providers=["CPUExecutionProvider"])
    return sess.run(None, {"image": x})[0]


def test_fitted_ranges_make_int8_closer_to_float(tmp_path: Path) -> None:
    src = _outlier_model(tmp_path / "m.onnx")
    rng = np.random.default_rng(1)
    cal = [rng.uniform(0, 255, SHAPE).astype(np.float32) for _ in range(6)]
    held = [rng.uniform(0, 255, SHAPE).astype(np.float32) for _ in range(3)]
    ranges = compute_ranges(src, cal, method="minmax")
    fitted, record = compute_fitted_ranges(src, cal, method="minmax")
    assert set(fitted) == set(ranges)
    assert [r["tensor"] for r in record] == ["c1"] and record[0]["finer"] > 5
    assert record[0]["unclipped"] == list(ranges["c1"])
    assert fitted["c1"] == (-ELU_FLAT, pytest.approx(ranges["c1"][1]))
    for name in ranges.keys() - {"c1"}:
        assert fitted[name] == pytest.approx(ranges[name], rel=1e-3)  # downstream of c1: ELU(-8) vs ELU(-300)
    snr = {}
    for name, r in {"plain": ranges, "fitted": fitted}.items():
        q = tmp_path / f"{name}.int8.onnx"
        quantize_qdq(src, q, r, input_shape=SHAPE)
        snr[name] = np.mean([snr_db(_run(src, x), _run(q, x)) for x in held])
    # the grid is 9x finer; the input and ELU-output quantization still cap the gain
    assert snr["fitted"] > snr["plain"] + 6, snr


@pytest.mark.parametrize("method", ["minmax", "entropy"])
def test_named_tensors_get_the_ranges_a_whole_pass_gives_them(tmp_path: Path, method: str) -> None:
    """``only`` measures a few tensors in a cut-down model: the same floats as the whole
    pass, for c1 (clipped, with its record), e1 (after the clip, so measured in the clipped
    view too: ELU(-8) is not ELU(-300)) and the output."""
    src = _outlier_model(tmp_path / "m.onnx")
    rng = np.random.default_rng(1)
    cal = [rng.uniform(0, 255, SHAPE).astype(np.float32) for _ in range(4)]
    whole, whole_record = compute_fitted_ranges(src, cal, method=method)
    for only in (["e1"], ["c1", "out"]):
        part, record = compute_fitted_ranges(src, cal, method=method, only=only)
        assert part == {name: whole[name] for name in only}
        assert record == [r for r in whole_record if r["tensor"] in only]
    if method == "minmax":  # the raw model's e1 reaches -1: measuring it there would differ
        assert compute_ranges(src, cal, method=method)["e1"][0] < whole["e1"][0]
    with pytest.raises(ConfigError, match=r"\['nowhere'\] are not calibrated tensors of m.onnx"):
        compute_fitted_ranges(src, cal, method=method, only=["e1", "nowhere"])


def test_named_tensors_past_a_shape_node_of_the_models_own(tmp_path: Path) -> None:
    """The cut-down model marks the named tensors with Shape nodes; a Shape node the model
    has of its own (here reading a, which c needs) adds nothing to what is returned."""
    rng = np.random.default_rng(2)
    w = numpy_helper.from_array(rng.normal(0, 0.1, (3, 3, 1, 1)).astype(np.float32), "w")
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["image", "w"], ["a"], name="conv_a"),
            helper.make_node("Shape", ["a"], ["s"], name="shape_a"),
            helper.make_node("Reshape", ["a", "s"], ["r"], name="same_shape"),
            helper.make_node("Conv", ["r", "w"], ["c"], name="conv_c"),
            helper.make_node("Relu", ["c"], ["out"], name="relu"),
        ],
        "shaped",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, list(SHAPE))],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, list(SHAPE))],
        [w],
    )
    src = tmp_path / "shaped.onnx"
    onnx.save(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=IR_VERSION), str(src)
    )
    cal = [rng.uniform(0, 255, SHAPE).astype(np.float32) for _ in range(3)]
    whole = compute_ranges(src, cal, method="minmax")
    assert compute_ranges(src, cal, method="minmax", only=["c"]) == {"c": whole["c"]}
    with pytest.raises(ConfigError, match="cannot calibrate nowhere: no such tensor in the model"):
        compute_ranges(src, cal, method="minmax", only=["nowhere"])
