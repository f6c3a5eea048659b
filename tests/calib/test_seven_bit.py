"""7-bit INT8 weights for x86 CPUs whose U8S8 kernels saturate (calib/seven_bit.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from calib.quantize import activations_to_uint8, compute_ranges, quantize_qdq
from calib.ranges import compute_fitted_ranges
from calib.seven_bit import weights_to_seven_bits
from edge.backends.onnxruntime import OnnxRuntimeEngine, optimize_model
from edge.platform_info import int8_pairs_saturate
from edge.verify import snr_db
from tests.calib.test_ranges import SHAPE, _outlier_model
from tests.calib.test_ranges import _run as _literal  # Q/DQ evaluated as written
from tests.conftest import IR_VERSION

CODES = np.array([-127, -3, -1, 0, 1, 2, 127], np.int8)


def _qdq_conv_pair(weight_zero_point: int = 0) -> onnx.ModelProto:
    """image -> Q -> DQ -> two Convs sharing one weight DQ (7 output channels, the codes
    above along them) and one int32 bias."""
    w = np.zeros((7, 1, 1, 1), np.int8)
    w[:, 0, 0, 0] = CODES
    inits = [
        numpy_helper.from_array(np.array(0.5, np.float32), "x_scale"),
        numpy_helper.from_array(np.array(0, np.int8), "x_zp"),
        numpy_helper.from_array(w, "w_q"),
        numpy_helper.from_array(np.full(7, 0.01, np.float32), "w_scale"),
        numpy_helper.from_array(np.full(7, weight_zero_point, np.int8), "w_zp"),
        numpy_helper.from_array(np.array([1001, -7, 0, 3, 5, -2, 40], np.int32), "b_q"),
        numpy_helper.from_array(np.full(7, 0.005, np.float32), "b_scale"),
        numpy_helper.from_array(np.zeros(7, np.int32), "b_zp"),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["image", "x_scale", "x_zp"], ["xq"]),
        helper.make_node("DequantizeLinear", ["xq", "x_scale", "x_zp"], ["xd"]),
        helper.make_node("DequantizeLinear", ["w_q", "w_scale", "w_zp"], ["w"], axis=0),
        helper.make_node("DequantizeLinear", ["b_q", "b_scale", "b_zp"], ["b"], axis=0),
        helper.make_node("Conv", ["xd", "w", "b"], ["y1"], name="conv1"),
        helper.make_node("Conv", ["xd", "w", "b"], ["y2"], name="conv2"),
    ]
    graph = helper.make_graph(
        nodes,
        "pair",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 1, 4, 4])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 7, 4, 4]) for n in ("y1", "y2")],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)], ir_version=IR_VERSION)


def test_codes_are_halved_once_and_scales_doubled() -> None:
    model = _qdq_conv_pair()
    out, changed = weights_to_seven_bits(model)
    onnx.checker.check_model(out)
    assert changed == 2  # both convolutions; their shared DQ rewritten once
    inits = {i.name: numpy_helper.to_array(i) for i in out.graph.initializer}
    (wdq,) = [n for n in out.graph.node if n.op_type == "DequantizeLinear" and n.output[0] == "w"]
    # round half to even: -63.5 -> -64, -1.5 -> -2, -0.5 -> 0, 0.5 -> 0, 63.5 -> 64
    np.testing.assert_array_equal(inits[wdq.input[0]].ravel(), [-64, -2, 0, 0, 0, 1, 64])
    np.testing.assert_array_equal(inits[wdq.input[1]], np.full(7, 0.02, np.float32))
    (bdq,) = [n for n in out.graph.node if n.op_type == "DequantizeLinear" and n.output[0] == "b"]
    np.testing.assert_array_equal(inits[bdq.input[0]], [500, -4, 0, 2, 2, -1, 20])
    np.testing.assert_array_equal(inits[bdq.input[1]], np.full(7, 0.01, np.float32))
    assert "w_q" not in inits and "b_q" not in inits  # the 8-bit originals are dropped
    assert model.graph.initializer[2].name == "w_q"  # the input model is untouched


def test_the_rewritten_model_computes_with_the_coarser_weights() -> None:
    model = _qdq_conv_pair()
    x = np.linspace(-20, 20, 16, dtype=np.float32).reshape(1, 1, 4, 4)
    got = _literal(weights_to_seven_bits(model)[0], x)
    xd = np.clip(np.round(x / 0.5), -128, 127) * 0.5
    w7 = np.array([-64, -2, 0, 0, 0, 1, 64]) * 0.02
    b7 = np.array([500, -4, 0, 2, 2, -1, 20]) * 0.01
    want = (w7[:, None, None] * xd[0] + b7[:, None, None])[None]
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    # each weight moves by at most half a new step (0.01) from the 8-bit one
    assert np.abs(w7 - CODES * 0.01).max() <= 0.01 + 1e-9


def test_asymmetric_weights_are_left_alone() -> None:
    out, changed = weights_to_seven_bits(_qdq_conv_pair(weight_zero_point=3))
    assert changed == 0 and {i.name for i in out.graph.initializer} >= {"w_q", "b_q"}


@pytest.mark.parametrize(
    "extensions,machine,saturates",
    [
        (["avx2", "fma"], "x86_64", True),
        (["avx2", "fma", "avx512f"], "x86_64", True),  # AVX-512 before VNNI: VPMADDUBSW too
        (["avx2", "fma", "avx512f", "avx512_vnni"], "x86_64", False),
        (["avx2", "avx_vnni"], "AMD64", False),
        (["asimd", "asimddp"], "aarch64", False),
        ([], "aarch64", False),
    ],
)
def test_which_cpus_saturate(extensions: list[str], machine: str, saturates: bool) -> None:
    assert int8_pairs_saturate(extensions, machine) is saturates


@pytest.fixture(scope="module")
def outlier_int8(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The outlier model, its Q/DQ form with fitted ranges and the build's optimised artifact."""
    tmp = tmp_path_factory.mktemp("seven_bit")
    src = _outlier_model(tmp / "m.onnx")
    rng = np.random.default_rng(1)
    cal = [rng.uniform(0, 255, SHAPE).astype(np.float32) for _ in range(6)]
    ranges, _ = compute_fitted_ranges(src, cal, method="minmax")
    assert set(ranges) == set(compute_ranges(src, cal, method="minmax"))
    qdq = tmp / "m.int8.onnx"
    quantize_qdq(src, qdq, ranges, input_shape=SHAPE)
    artifact = tmp / "m_int8.ort.onnx"
    optimize_model(qdq, artifact, uint8_activations=True)  # as build_engines.py writes it
    return {"float": src, "qdq": qdq, "artifact": artifact}


def test_engines_on_seven_bit_weights_compute_exactly_the_seven_bit_model(
    outlier_int8: dict[str, Path],
) -> None:
    x = np.random.default_rng(2).uniform(0, 255, SHAPE).astype(np.float32)
    seven, changed = weights_to_seven_bits(activations_to_uint8(onnx.load(str(outlier_int8["qdq"]))))
    assert changed == 2
    want = _literal(seven, x)
    ref = _literal(outlier_int8["float"], x)
    for path in (outlier_int8["qdq"], outlier_int8["artifact"]):  # Q/DQ form and fused QLinearConv form
        engine = OnnxRuntimeEngine(path, seven_bit_weights=True)
        got = engine.infer({"image": x})["out"]
        # integer kernels that do not saturate give what the Q/DQ arithmetic says, on any CPU
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-4 * np.abs(want).max())
        assert snr_db(ref, got) > 30  # one bit of weight precision given up, not more
        engine.close()


def test_engines_choose_seven_bits_by_the_cpu(outlier_int8: dict[str, Path]) -> None:
    engine = OnnxRuntimeEngine(outlier_int8["artifact"])
    assert engine.seven_bit_weights is int8_pairs_saturate()
    x = np.random.default_rng(3).uniform(0, 255, SHAPE).astype(np.float32)
    # with its default an INT8 engine stays close to float on every CPU
    assert snr_db(_literal(outlier_int8["float"], x), engine.infer({"image": x})["out"]) > 30


@pytest.mark.skipif(not int8_pairs_saturate(), reason="this CPU has VNNI: its INT8 kernels do not saturate")
def test_here_eight_bit_weights_saturate(outlier_int8: dict[str, Path]) -> None:
    x = np.random.default_rng(2).uniform(0, 255, SHAPE).astype(np.float32)
    ref = _literal(outlier_int8["float"], x)
    literal8 = _literal(activations_to_uint8(onnx.load(str(outlier_int8["qdq"]))), x)
    kernels8 = OnnxRuntimeEngine(outlier_int8["artifact"], seven_bit_weights=False).infer({"image": x})["out"]
    seven = OnnxRuntimeEngine(outlier_int8["artifact"], seven_bit_weights=True).infer({"image": x})["out"]
    # what the model says (8 bits, literally) beats 7 bits; the saturating kernels lose to both
    assert snr_db(ref, literal8) > snr_db(ref, seven) > snr_db(ref, kernels8) + 10
