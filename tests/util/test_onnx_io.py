from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from edge.errors import ConfigError
from edge.util.onnx_io import read_onnx
from tests.conftest import IR_VERSION


def _identity() -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [x], [y])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=IR_VERSION)


def test_reads_binary_onnx_whatever_the_suffix(tmp_path: Path) -> None:
    # onnx.load would read a .json suffix as JSON; edge only ever writes binary protobuf
    for name in ("m.onnx", "m.json", "m.txt", "m"):
        (tmp_path / name).write_bytes(_identity().SerializeToString())
        got = read_onnx(tmp_path / name)
        assert [n.op_type for n in got.graph.node] == ["Identity"]
        assert got.graph.input[0].name == "x"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", r"m.onnx' holds no graph \(0 bytes\)"),
        (b"junk bytes", "m.onnx' is not a readable ONNX model"),
        (b'{"format": 1, "engines": []}', "m.onnx' is not a readable ONNX model"),
    ],
)
def test_not_a_model_names_the_file(tmp_path: Path, content: bytes, message: str) -> None:
    (tmp_path / "m.onnx").write_bytes(content)
    with pytest.raises(ConfigError, match=f"my model .*{message}.*expected a binary .onnx file"):
        read_onnx(tmp_path / "m.onnx", what="my model")


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"engine 'nope\.onnx' does not exist"):
        read_onnx("nope.onnx", what="engine")
    with pytest.raises(ConfigError, match="is a directory, not a file"):
        read_onnx(tmp_path)
    # it exists, but is no file to read a model from (said to be missing, before)
    with pytest.raises(
        ConfigError, match=r"model '/dev/null' is not a regular file; expected a binary \.onnx"
    ):
        read_onnx("/dev/null", what="model")


def test_with_outputs_runs_the_model_for_an_inner_tensor_and_leaves_the_model() -> None:
    import numpy as np
    import onnxruntime as ort

    from edge.util.onnx_io import with_outputs

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])
    z = helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 3])
    nodes = [helper.make_node("Neg", ["x"], ["y"]), helper.make_node("Abs", ["y"], ["z"])]
    model = helper.make_model(
        helper.make_graph(nodes, "g", [x], [z]),
        opset_imports=[helper.make_opsetid("", 18)],
        ir_version=IR_VERSION,
    )
    tapped = with_outputs(model, ["y"])
    assert [o.name for o in tapped.graph.output] == ["y"] and [o.name for o in model.graph.output] == ["z"]
    sess = ort.InferenceSession(tapped.SerializeToString(), providers=["CPUExecutionProvider"])
    (y,) = sess.run(None, {"x": np.array([[1.0, -2.0, 3.0]], np.float32)})
    assert y.tolist() == [[-1.0, 2.0, -3.0]]
