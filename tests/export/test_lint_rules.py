"""The parser's restrictions on an operator's inputs and attributes (edge.export.lint_rules):
for each, a graph that breaks it and one that keeps it."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edge.export.lint import lint_model
from tests.conftest import IR_VERSION

FLOAT = TensorProto.FLOAT


def said(
    node: onnx.NodeProto,
    inputs: dict[str, tuple[int, list[Any] | None]],
    *,
    inits: dict[str, np.ndarray] | None = None,
    opset: int = 20,
    target: str = "trt11",
) -> list[tuple[str, str]]:
    """(level, message) of what the lint finds in ``node`` alone (the graph's boundary aside),
    its ``inputs`` (name: (type, shape)) given and ``inits`` as initializers."""
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info(n, t, s) for n, (t, s) in inputs.items()],
        [helper.make_tensor_value_info(o, FLOAT, None) for o in node.output if o],
        initializer=[numpy_helper.from_array(v, n) for n, v in (inits or {}).items()],
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=IR_VERSION)
    return [(f.level, f.message) for f in lint_model(m, target=target) if f.op == node.op_type]


X4 = {"x": (FLOAT, [1, 3, 8, 8])}


def test_pooling_is_2d_or_3d_without_dilations() -> None:
    pool = helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[2])
    assert said(pool, {"x": (FLOAT, [1, 3, 8])}) == [
        ("error", "a 3-D input: only 2-D or 3-D pooling (4-D or 5-D inputs) is supported")
    ]
    dilated = helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[2, 2], dilations=[2, 2])
    assert said(dilated, X4) == [("error", "dilations [2, 2] are not supported (only 1)")]
    lp = helper.make_node("LpPool", ["x"], ["y"], kernel_shape=[2, 2], dilations=[1, 3])
    assert said(lp, X4) == [("error", "dilations [1, 3] are not supported (only 1)")]
    plain = helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], dilations=[1, 1])
    assert said(plain, X4) == []


def test_constants_hold_tensors_not_strings() -> None:
    text = helper.make_node("Constant", [], ["y"], value_strings=["a", "b"])
    assert said(text, {}) == [("error", "the value_strings attribute is not supported")]
    assert said(helper.make_node("Constant", [], ["y"], value_float=1.0), {}) == []


def test_deform_conv_is_1d_or_2d_with_even_pads() -> None:
    inputs = {"x": (FLOAT, [1, 3, 8, 8]), "w": (FLOAT, [4, 3, 3, 3]), "o": (FLOAT, [1, 18, 8, 8])}
    uneven = helper.make_node("DeformConv", ["x", "w", "o"], ["y"], pads=[1, 1, 2, 1])
    assert said(uneven, inputs, opset=19) == [
        ("error", "pads [1, 1, 2, 1]: each spatial axis's beginning and end must be the same")
    ]
    even = helper.make_node("DeformConv", ["x", "w", "o"], ["y"], pads=[1, 1, 1, 1])
    assert said(even, inputs, opset=19) == []


def test_dropout_is_inference_only() -> None:
    node = helper.make_node("Dropout", ["x", "r", "t"], ["y"])
    ratio = {"r": np.array(0.5, np.float32)}
    assert said(node, X4, inits={**ratio, "t": np.array(True)}) == [
        ("error", "training_mode is true: only inference (false) is supported")
    ]
    assert said(node, {**X4, "t": (TensorProto.BOOL, [])}, inits=ratio) == [
        ("error", "training_mode must be a constant (and false)")
    ]
    assert said(node, X4, inits={**ratio, "t": np.array(False)}) == []


def test_eye_like_and_hardmax_need_build_time_sizes() -> None:
    eye = helper.make_node("EyeLike", ["x"], ["y"])
    assert said(eye, {"x": (FLOAT, ["n", 4])}) == [
        ("error", "input must have static dimensions; inferred [?, 4]")
    ]
    assert said(eye, {"x": (FLOAT, [4, 4])}) == []
    hardmax = helper.make_node("Hardmax", ["x"], ["y"], axis=1)
    assert said(hardmax, {"x": (FLOAT, [1, "classes"])}) == [
        ("error", "the input's axis 1 must be of a build-time size; inferred [1, ?]")
    ]
    assert said(hardmax, {"x": (FLOAT, ["batch", 10])}) == []


def test_layer_norm_gives_y_alone() -> None:
    inputs = {"x": (FLOAT, [2, 8]), "s": (FLOAT, [8])}
    both = helper.make_node("LayerNormalization", ["x", "s"], ["y", "mean"])
    assert said(both, inputs) == [("error", "only the first output (Y) is supported, not Mean or InvStdDev")]
    assert said(helper.make_node("LayerNormalization", ["x", "s"], ["y"]), inputs) == []


def test_recurrent_layers_share_activations_both_ways() -> None:
    inputs = {"x": (FLOAT, [5, 1, 4]), "w": (FLOAT, [2, 32, 4]), "r": (FLOAT, [2, 32, 8])}
    mixed = ["Sigmoid", "Tanh", "Tanh", "Relu", "Tanh", "Tanh"]
    lstm = helper.make_node(
        "LSTM", ["x", "w", "r"], ["y"], hidden_size=8, direction="bidirectional", activations=mixed
    )
    assert said(lstm, inputs) == [
        ("error", f"activations {mixed}: the forward and reverse passes must use the same functions")
    ]
    batch_first = helper.make_node("LSTM", ["x", "w", "r"], ["y"], hidden_size=8, layout=1, input_forget=1)
    assert said(batch_first, inputs) == [
        ("error", "layout must be 0 (sequence first)"),
        ("error", "input_forget must be 0"),
    ]
    same = ["Sigmoid", "Tanh", "Tanh"] * 2
    gru = helper.make_node(
        "GRU", ["x", "w", "r"], ["y"], hidden_size=8, direction="bidirectional", activations=same[:2] * 2
    )
    assert said(gru, {**inputs, "w": (FLOAT, [2, 24, 4]), "r": (FLOAT, [2, 24, 8])}) == []


def test_one_hot_depth_and_random_seeds() -> None:
    inputs = {"i": (TensorProto.INT64, [4]), "d": (TensorProto.INT64, [1]), "v": (FLOAT, [2])}
    one_hot = helper.make_node("OneHot", ["i", "d", "v"], ["y"])
    ((level, message),) = said(one_hot, inputs)
    assert level == "warning" and message.startswith("depth ('d') is not a constant")
    fixed = {k: v for k, v in inputs.items() if k != "d"}
    assert said(one_hot, fixed, inits={"d": np.array([10], np.int64)}) == []
    seeded = helper.make_node("RandomNormal", [], ["y"], shape=[2], seed=3.0)
    assert said(seeded, {}) == [("info", "the seed is ignored by TensorRT")]


def test_resize_stretches_over_every_axis() -> None:
    inputs = {**X4, "s": (FLOAT, [2])}
    kept = helper.make_node(
        "Resize", ["x", "", "s"], ["y"], axes=[2, 3], keep_aspect_ratio_policy="not_larger"
    )
    assert said(kept, inputs, opset=18) == [
        ("error", "keep_aspect_ratio_policy 'not_larger' is not supported (only stretch)"),
        ("error", "axes [2, 3] with computed scales: they must be every axis in order"),
    ]
    every = helper.make_node("Resize", ["x", "", "s"], ["y"], axes=[0, 1, -2, -1])
    assert said(every, {**X4, "s": (FLOAT, [4])}, opset=18) == []
    fixed = helper.make_node("Resize", ["x", "", "s"], ["y"], axes=[2, 3])
    assert said(fixed, X4, inits={"s": np.array([2, 2], np.float32)}, opset=18) == []


def test_attention_as_tensorrt_takes_it() -> None:
    qkv = {n: (FLOAT, [1, 2, 4, 8]) for n in "qkv"}
    cached = helper.make_node("Attention", ["q", "k", "v", "", "pk"], ["y", "present"], softcap=30.0)
    assert said(cached, {**qkv, "pk": (FLOAT, [1, 2, 3, 8])}, opset=23) == [
        ("error", "the past_key input is not supported"),
        ("error", "the present_key output is not supported"),
        ("error", "the softcap attribute is not supported"),
    ]
    flat = {**qkv, "q": (FLOAT, [1, 4, 16])}
    assert said(helper.make_node("Attention", ["q", "k", "v"], ["y"]), flat, opset=23) == [
        ("error", "Q is 3-D; it must be 4-D (heads as its second dimension)")
    ]
    assert said(helper.make_node("Attention", ["q", "k", "v"], ["y"]), qkv, opset=23) == []


def test_tensor_scatter_rotary_embedding_and_stft() -> None:
    cache = {"c": (FLOAT, [1, 2, 16, 8]), "u": (FLOAT, [1, 2, 1, 8])}
    scatter = helper.make_node("TensorScatter", ["c", "u"], ["y"], axis=1)
    assert said(scatter, cache, opset=24) == [("error", "axis 1 is not supported (only -2)")]
    assert said(helper.make_node("TensorScatter", ["c", "u"], ["y"]), cache, opset=24) == []

    rope = {"x": (FLOAT, [1, 2, 4, 8]), "cos": (FLOAT, [16, 4]), "sin": (FLOAT, [16, 4])}
    node = helper.make_node("RotaryEmbedding", ["x", "cos", "sin", "p"], ["y"])
    assert said(node, {**rope, "p": (TensorProto.INT32, [1, 4])}, opset=23) == [
        ("error", "position_ids are INT32; they must be INT64")
    ]
    assert said(node, {**rope, "p": (TensorProto.INT64, [1, 4])}, opset=23) == []

    stft = helper.make_node("STFT", ["s", "step", "w"], ["y"])
    window = {"w": np.hanning(16).astype(np.float32)}
    complex_signal = {"s": (FLOAT, [1, 64, 2]), "step": (TensorProto.INT64, [])}
    assert said(stft, complex_signal, inits=window) == [
        ("error", "frame_step ('step') must be an initializer"),
        ("error", "a complex signal (last dimension 2): only a real-valued one is supported"),
    ]
    real = {"s": (FLOAT, [1, 64, 1])}
    assert said(stft, real, inits={**window, "step": np.array(8, np.int64)}) == []


@pytest.mark.parametrize("op", ["ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp"])
def test_every_reduction_takes_constant_axes(op: str) -> None:
    node = helper.make_node(op, ["x", "a"], ["y"])
    assert said(node, {**X4, "a": (TensorProto.INT64, [1])}, opset=18) == [
        ("error", "input 1 ('a') must be a constant for the TensorRT parser")
    ]
    assert said(node, X4, inits={"a": np.array([1], np.int64)}, opset=18) == []


def _branch(name: str, nodes: list[onnx.NodeProto], out: str, shape: list[int]) -> onnx.GraphProto:
    return helper.make_graph(nodes, name, [], [helper.make_tensor_value_info(out, FLOAT, shape)])


def test_if_branches_give_tensors_of_their_own_names_and_one_rank() -> None:
    """The parser needs the branches' outputs named apart and of one rank: the same name in
    both, or a 2-D and a 1-D output, are refused; two 2-D outputs of their own names pass."""
    inputs = {"c": (TensorProto.BOOL, []), "x": (FLOAT, [2, 3])}
    inits = {"flat": np.array([6], np.int64)}

    def if_of(then: onnx.GraphProto, other: onnx.GraphProto) -> onnx.NodeProto:
        return helper.make_node("If", ["c"], ["y"], name="choose", then_branch=then, else_branch=other)

    same = if_of(
        _branch("then", [helper.make_node("Relu", ["x"], ["t"])], "t", [2, 3]),
        _branch("else", [helper.make_node("Neg", ["x"], ["t"])], "t", [2, 3]),
    )
    assert said(same, inputs, inits=inits) == [
        (
            "error",
            "output 0: both branches give the same tensor 't'; the parser needs different names "
            "(an Identity in one branch gives it its own)",
        )
    ]
    ranks = if_of(
        _branch("then", [helper.make_node("Relu", ["x"], ["a"])], "a", [2, 3]),
        _branch("else", [helper.make_node("Reshape", ["x", "flat"], ["b"])], "b", [6]),
    )
    assert said(ranks, inputs, inits=inits) == [
        ("error", "output 0: the branches' ranks differ ('a' 2-D, 'b' 1-D); the parser needs the same rank")
    ]
    fine = if_of(
        _branch("then", [helper.make_node("Relu", ["x"], ["a"])], "a", [2, 3]),
        _branch("else", [helper.make_node("Neg", ["x"], ["b"])], "b", [2, 3]),
    )
    assert said(fine, inputs, inits=inits) == []


def _loop_body(grows: bool) -> onnx.GraphProto:
    """A body carrying ``v`` (1-D) and scanning it out; ``grows``: each iteration appends to it."""
    keep = helper.make_node("Identity", ["cond_in"], ["cond_out"])
    step = (
        helper.make_node("Concat", ["v_in", "v_in"], ["v_out"], axis=0)
        if grows
        else helper.make_node("Relu", ["v_in"], ["v_out"])
    )
    scan = helper.make_node("Identity", ["v_in"], ["v_scan"])
    return helper.make_graph(
        [keep, step, scan],
        "body",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("v_in", FLOAT, [2]),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("v_out", FLOAT, [4] if grows else [2]),
            helper.make_tensor_value_info("v_scan", FLOAT, [2]),
        ],
    )


def test_loop_scan_outputs_need_a_constant_trip_count_and_carried_values_keep_their_shape() -> None:
    inputs = {"m": (TensorProto.INT64, []), "go": (TensorProto.BOOL, []), "v0": (FLOAT, [2])}
    inits = {"three": np.array(3, np.int64)}

    def loop(trip: str, *, grows: bool = False) -> onnx.NodeProto:
        return helper.make_node(
            "Loop", [trip, "go", "v0"], ["v", "scanned"], name="repeat", body=_loop_body(grows)
        )

    assert said(loop("m"), inputs, inits=inits) == [
        (
            "error",
            "1 scan output(s) with a trip count of 'm', not a constant: their length would be "
            "dynamic, which the parser refuses (a constant M, the number of iterations, fixes it)",
        )
    ]
    assert said(loop(""), inputs, inits=inits)[0][1].startswith("1 scan output(s) with a trip count of none")
    assert said(loop("three"), inputs, inits=inits) == []
    assert said(loop("three", grows=True), inputs, inits=inits) == [
        (
            "error",
            "carried value 0 ('v_in') goes into an iteration as [2] and comes out as [4]; the parser "
            "needs its shape the same in every iteration",
        )
    ]
