"""TensorRT lint on our exported graphs and on hand-made bad graphs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edge.cli import main
from edge.errors import ConfigError
from edge.export.lint import TOPK_MAX_K, lint_model, operator_table
from tests.conftest import IR_VERSION


def model(
    nodes: list[onnx.NodeProto], *, inputs=None, outputs=None, inits=(), opset: int = 18
) -> onnx.ModelProto:
    inputs = inputs or [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])]
    outputs = outputs or [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=IR_VERSION)


def errors(m: onnx.ModelProto, target: str = "trt10", **kw) -> list[str]:
    return [f.message for f in lint_model(m, target=target, **kw) if f.level == "error"]


def const(name: str, value: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(value, name)


def test_operator_table_has_source_and_both_targets() -> None:
    t = operator_table()
    assert "onnx-tensorrt" in t["sources"]["operators"]
    assert set(t["targets"]) == {"trt10", "trt11"}
    assert t["operators"]["RoiAlign"]["supported"] and t["operators"]["NonMaxSuppression"]["supported"]
    assert not t["operators"]["Unique"]["supported"]


@pytest.mark.parametrize("target", ["trt10", "trt11"])
def test_exported_models_are_clean(tiny_engines: Path, target: str) -> None:
    for path in tiny_engines.glob("*_fp32.onnx"):
        findings = lint_model(path, target=target)
        assert [f for f in findings if f.level != "info"] == [], path.name


def test_unsupported_and_custom_ops() -> None:
    m = model(
        [
            helper.make_node("Unique", ["x"], ["y"], name="u"),
            helper.make_node("MultiLevelRoIAlign", ["x"], ["z"], domain="edge.plugins", name="p"),
        ]
    )
    errs = errors(m)
    assert any("marked unsupported" in e for e in errs)
    assert any("no TensorRT plugin registered" in e for e in errs)
    assert not any("plugin" in e for e in errors(m, plugins=["edge.plugins::MultiLevelRoIAlign"]))


def test_opset_range_differs_by_target() -> None:
    m = model([helper.make_node("Relu", ["x"], ["y"])], opset=22)
    assert any("opset 22 is outside trt10" in e for e in errors(m, "trt10"))
    assert errors(m, "trt11") == []


def test_topk_limit_and_non_constant_axes() -> None:
    big = const("k", np.array([TOPK_MAX_K], np.int64))
    m = model([helper.make_node("TopK", ["x", "k"], ["y", "i"], name="t")], inits=[big])
    assert any(f"K={TOPK_MAX_K} is not below" in e for e in errors(m))
    ok = model(
        [helper.make_node("TopK", ["x", "k"], ["y", "i"])], inits=[const("k", np.array([100], np.int64))]
    )
    assert errors(ok) == []
    axes_in = helper.make_tensor_value_info("axes", TensorProto.INT64, [1])
    m = model(
        [helper.make_node("Unsqueeze", ["x", "axes"], ["y"])],
        inputs=[helper.make_tensor_value_info("x", TensorProto.FLOAT, [4]), axes_in],
    )
    assert any("must be a constant" in e for e in errors(m))


def test_resize_scatter_and_maxpool_rules() -> None:
    scales = const("s", np.array([1, 1, 2, 2], np.float32))
    x4 = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 4])]
    m = model([helper.make_node("Resize", ["x", "", "s"], ["y"], mode="cubic")], inputs=x4, inits=[scales])
    assert any("mode 'cubic'" in e for e in errors(m))
    m = model(
        [
            helper.make_node(
                "Resize", ["x", "", "s"], ["y"], coordinate_transformation_mode="tf_crop_and_resize"
            )
        ],
        inputs=x4,
        inits=[scales],
    )
    assert any("tf_crop_and_resize" in e for e in errors(m))
    idx = const("i", np.zeros((1, 2), np.int64))
    upd = const("u", np.zeros((1,), np.float32))
    m = model([helper.make_node("ScatterND", ["x", "i", "u"], ["y"], reduction="add")], inits=[idx, upd])
    assert any("reduction='add'" in e for e in errors(m))
    m = model([helper.make_node("MaxPool", ["x"], ["y", "ind"], kernel_shape=[2, 2])], inputs=x4)
    assert any("Indices" in e for e in errors(m))


def test_boundary_hazards() -> None:
    m = model(
        [helper.make_node("Cast", ["x"], ["y"], to=TensorProto.INT64)],
        inputs=[helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        outputs=[helper.make_tensor_value_info("y", TensorProto.INT64, ["batch", 4])],
    )
    warnings = [f.message for f in lint_model(m) if f.level == "warning"]
    assert any("INT64 at the graph boundary" in w for w in warnings)
    assert any("optimization profile" in w for w in warnings)


def test_qdq_placement() -> None:
    s, z, bad_z = (
        const("s", np.array(0.1, np.float32)),
        const("z", np.array(0, np.int8)),
        const("bz", np.array(3, np.int8)),
    )
    good = model(
        [
            helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
            helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"]),
        ],
        inits=[s, z],
    )
    assert [f for f in lint_model(good) if f.level != "info"] == []
    unfused = model(
        [
            helper.make_node("QuantizeLinear", ["x", "s", "bz"], ["q"], name="q"),
            helper.make_node("Cast", ["q"], ["y"], to=TensorProto.FLOAT),
        ],
        inits=[s, bad_z],
    )
    found = {f.message for f in lint_model(unfused)}
    assert any("zero point must be 0" in m for m in found)
    assert any("fuses only Q -> DQ pairs" in m for m in found)


def test_bad_target_and_unreadable_model(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="lint target 'trt9'"):
        lint_model(model([]), target="trt9")
    (tmp_path / "x.onnx").write_bytes(b"junk")
    with pytest.raises(ConfigError, match="model to lint .*x.onnx' is not a readable ONNX model"):
        lint_model(tmp_path / "x.onnx")


def test_cli_lint_exit_codes(tmp_path: Path, tiny_engines: Path, capsys: pytest.CaptureFixture[str]) -> None:
    onnx.save(model([helper.make_node("Unique", ["x"], ["y"])]), tmp_path / "bad.onnx")
    assert main(["lint", str(tmp_path / "bad.onnx"), "--target", "trt11"]) == 1
    assert "1 errors" in capsys.readouterr().out
    good = next(tiny_engines.glob("depth_tiny*_fp32.onnx"))
    assert main(["lint", str(good)]) == 0
    assert "trt10: 0 errors, 0 warnings" in capsys.readouterr().out


def test_manifest_records_lint(tiny_engines: Path) -> None:
    import json

    entries = json.loads((tiny_engines / "manifest.json").read_text())["engines"].values()
    for e in entries:
        assert e["lint"]["trt10"]["errors"] == 0 and e["lint"]["trt11"]["errors"] == 0
