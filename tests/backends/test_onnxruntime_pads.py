"""An INT8 engine's reflect Pads moved onto its INT8 values as ONNX Runtime loads it
(edge.backends.onnxruntime.pads_on_int8): real sessions give the same values to the bit."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

C, H, W = 4, 6, 8
SPATIAL = (0, 0, 1, 1, 0, 0, 1, 1)  # a ReflectionPad2d(1) as exported: one row and column each side


def pad_graph(
    *,
    mode: str = "reflect",
    pads: tuple[int, ...] = SPATIAL,
    mul: tuple[int, ...] | None = (1, C, 1, 1),
    dequantize: bool = False,
    second_reader: bool = False,
    axes: bool = False,
) -> Any:
    """x -> Pad -> [Mul by a constant of shape ``mul``] -> QuantizeLinear -> y (INT8; with
    ``dequantize``, y the float a DequantizeLinear gives back, as a Q/DQ model has it)."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(3)
    inits = [
        numpy_helper.from_array(np.array(pads, np.int64), "pads"),
        numpy_helper.from_array(np.array(0.05, np.float32), "scale"),
        numpy_helper.from_array(np.array(3, np.int8), "zero"),
    ]
    pad_inputs = ["x", "pads"]
    if axes:
        inits.append(numpy_helper.from_array(np.array([2, 3], np.int64), "axes"))
        pad_inputs += ["", "axes"]
    nodes = [helper.make_node("Pad", pad_inputs, ["p"], mode=mode, name="pad")]
    last = "p"
    if mul is not None:
        inits.append(numpy_helper.from_array(rng.uniform(0.5, 2.0, mul).astype(np.float32), "s"))
        nodes.append(helper.make_node("Mul", ["p", "s"], ["m"], name="mul"))
        last = "m"
    nodes.append(helper.make_node("QuantizeLinear", [last, "scale", "zero"], ["q"], name="quantize"))
    outputs = ["q"]
    if dequantize:
        nodes.append(helper.make_node("DequantizeLinear", ["q", "scale", "zero"], ["y"], name="dequantize"))
        outputs = ["y"]
    if second_reader:
        nodes.append(helper.make_node("Relu", ["p"], ["r"], name="relu"))
        outputs.append("r")
    types = {"q": TensorProto.INT8, "y": TensorProto.FLOAT, "r": TensorProto.FLOAT}
    graph = helper.make_graph(
        nodes,
        "pads",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, C, H, W])],
        [helper.make_tensor_value_info(o, types[o], None) for o in outputs],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9  # what every ONNX Runtime edge supports reads (onnx writes its newest)
    return model


def run(model: Any, x: np.ndarray) -> list[np.ndarray]:
    from edge.backends.onnxruntime import session_options
    from edge.util.ort import onnxruntime_module

    ort = onnxruntime_module()
    session = ort.InferenceSession(
        model.SerializeToString(), session_options(), providers=["CPUExecutionProvider"]
    )
    return session.run(None, {"x": x})


def frame() -> np.ndarray:
    return np.random.default_rng(7).normal(scale=2.0, size=(1, C, H, W)).astype(np.float32)


@pytest.mark.parametrize(
    ("case", "moves"),
    [
        ({}, 2),  # past the equalization's Mul, then the QuantizeLinear
        ({"mode": "edge"}, 2),
        ({"mul": None}, 1),
        ({"mul": (C, 1, 1)}, 2),  # one value a channel, broadcast from fewer axes
        ({"mul": (1,)}, 2),  # one value for all
        # channels padded too: a quantization per tensor still gives the same values
        ({"mul": None, "pads": (0, 1, 1, 1, 0, 1, 1, 1)}, 1),
    ],
)
def test_a_pad_moved_onto_int8_gives_the_same_values(case: dict[str, Any], moves: int) -> None:
    from edge.backends.onnxruntime import pads_on_int8

    model = pad_graph(**case)
    before = run(model, frame())
    assert pads_on_int8(model) == moves
    ops = [n.op_type for n in model.graph.node]
    assert ops[-1] == "Pad" and ops.index("QuantizeLinear") < ops.index("Pad"), ops
    (pad,) = (n for n in model.graph.node if n.op_type == "Pad")
    assert pad.output[0] == "q" and len(pad.input) == 2  # it writes the INT8 output now
    after = run(model, frame())
    assert after[0].dtype == np.int8 and np.array_equal(after[0], before[0])


@pytest.mark.parametrize(
    "case",
    [
        {"mode": "constant"},  # its zeros would not stay zeros through the quantization
        {"mul": (1, 1, 1, W)},  # a constant that varies along a padded axis
        {"mul": (1, C, H + 2, 1)},
        {"mul": (1, 1, C, 1, 1)},  # it would make the tensor 5-D, which the pads do not fit
        {"pads": (0, 1, 1, 1, 0, 1, 1, 1)},  # channels padded: the Mul's channels would not line up
        {"second_reader": True},  # the float padded values are read by another node
        {"axes": True},
        {"dequantize": True},  # a Q/DQ model before ONNX Runtime fuses it: left as the optimiser wants it
    ],
)
def test_pads_that_cannot_or_should_not_move_stay(case: dict[str, Any]) -> None:
    from edge.backends.onnxruntime import pads_on_int8

    model = pad_graph(**case)
    before = model.SerializeToString()
    assert pads_on_int8(model) == 0
    assert model.SerializeToString() == before


def test_an_int8_engines_reflect_pad_runs_on_its_int8_values(tmp_path: Path) -> None:
    """Through the build (optimize_model) the Pad stays on floats, where ONNX Runtime's
    optimiser wants the Q/DQ model; loaded, it runs on the quantized values (ONNX Runtime's
    own profile says what it read), and the engine's output is the built model's to the bit."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from edge.backends.onnxruntime import OnnxRuntimeEngine, optimize_model
    from edge.util.ort import onnxruntime_module

    model = pad_graph(dequantize=True)
    rng = np.random.default_rng(11)
    g = model.graph
    g.initializer.extend(
        [
            numpy_helper.from_array(rng.integers(-100, 100, (5, C, 3, 3)).astype(np.int8), "w_q"),
            numpy_helper.from_array(np.array(0.01, np.float32), "w_scale"),
            numpy_helper.from_array(np.array(0, np.int8), "w_zero"),
            numpy_helper.from_array(rng.normal(size=5).astype(np.float32), "bias"),
            numpy_helper.from_array(np.array(0.1, np.float32), "out_scale"),
        ]
    )
    g.node.extend(
        [
            helper.make_node("DequantizeLinear", ["w_q", "w_scale", "w_zero"], ["w"]),
            helper.make_node("Conv", ["y", "w", "bias"], ["conv"], name="conv"),
            helper.make_node("QuantizeLinear", ["conv", "out_scale", "w_zero"], ["conv_q"]),
            helper.make_node("DequantizeLinear", ["conv_q", "out_scale", "w_zero"], ["out"]),
        ]
    )
    del g.output[:]
    g.output.append(helper.make_tensor_value_info("out", TensorProto.FLOAT, None))
    onnx.save(model, str(tmp_path / "qdq.onnx"))
    artifact = tmp_path / "qdq.ort.onnx"
    optimize_model(tmp_path / "qdq.onnx", artifact, uint8_activations=True)
    built = onnx.load(str(artifact)).graph
    writers = {o: n.op_type for n in built.node for o in n.output}
    (pad,) = (n for n in built.node if n.op_type == "Pad")
    assert writers.get(pad.input[0]) is None and "QLinearConv" in writers.values()  # it reads x

    x = frame()
    ort = onnxruntime_module()
    as_built = ort.InferenceSession(str(artifact), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    # 8-bit weights as built: on an x86 CPU without VNNI the engine would put them on 7 bits
    engine = OnnxRuntimeEngine(
        artifact, intra_op_threads=1, seven_bit_weights=False, profile_prefix=tmp_path / "profile"
    )
    out = engine.infer({"x": x})["out"]
    events = json.loads(engine.end_profiling().read_text())
    engine.close()
    read = [
        e["args"]["input_type_shape"][0]
        for e in events
        if e.get("cat") == "Node" and e["args"].get("op_name") == "Pad"
    ]
    # the build stores INT8 activations as UINT8 (x86 ONNX Runtime's integer kernels)
    assert read and all(list(t) == ["uint8"] for t in read), read
    assert np.array_equal(out, as_built)
    # and with the 7-bit weights an x86 CPU without VNNI runs: the built model's on that grid, to the bit
    from calib.seven_bit import weights_to_seven_bits

    seven, changed = weights_to_seven_bits(onnx.load(str(artifact)))
    assert changed
    on_seven = ort.InferenceSession(seven.SerializeToString(), providers=["CPUExecutionProvider"])
    engine = OnnxRuntimeEngine(artifact, intra_op_threads=1, seven_bit_weights=True)
    assert np.array_equal(engine.infer({"x": x})["out"], on_seven.run(None, {"x": x})[0])
    engine.close()
