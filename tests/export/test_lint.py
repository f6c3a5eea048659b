"""TensorRT lint on our exported graphs and on hand-made bad graphs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edge.cli import main
from edge.errors import ConfigError
from edge.export.lint import lint_model
from edge.export.lint_rules import TOPK_MAX_K
from edge.export.trt_versions import operator_table
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


def test_opset_beyond_a_targets_documents_is_a_warning() -> None:
    """The parser refuses no opset (it imports each node as the newest it knows): one newer than
    the target's documents say is a warning naming where it is documented; older than 9 too."""

    def said(opset: int, target: str) -> list[tuple[str, str]]:
        m = model([helper.make_node("Relu", ["x"], ["y"])], opset=opset)
        return [(f.level, f.message) for f in lint_model(m, target=target)]

    assert said(22, "trt10") == [
        ("warning", "opset 22: TensorRT 10.15 and later document it; TensorRT 10.3 documents opsets 9 to 20")
    ]
    assert said(20, "trt10") == said(22, "trt11") == said(24, "10.15") == said(24, "10.16") == []
    assert said(24, "10.14") == [
        ("warning", "opset 24: TensorRT 10.15 and later document it; TensorRT 10.14 documents opsets 9 to 20")
    ]
    assert said(25, "trt11") == [
        ("warning", "opset 25: TensorRT 11.5 and later document it; TensorRT 11.0 documents opsets 9 to 24")
    ]
    assert said(25, "11.5") == []
    assert said(26, "11.5") == [
        (
            "warning",
            "opset 26: no TensorRT version the lint knows documents it; "
            "TensorRT 11.5 documents opsets 9 to 25",
        )
    ]
    assert said(8, "trt11") == [("warning", "opset 8 is older than 9, the oldest TensorRT documents")]


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
    # JetPack 6's TensorRT 10.3 needs Unsqueeze's axes constant; 10.7 and later take a tensor
    assert any("input 1 ('axes') is not a constant: TensorRT 10.7 and later parse it" in e for e in errors(m))
    assert lint_model(m, target="trt11") == [f for f in lint_model(m, target="trt11") if "INT64" in f.message]
    m = model(
        [helper.make_node("ReduceSum", ["x", "axes"], ["y"])],
        inputs=[helper.make_tensor_value_info("x", TensorProto.FLOAT, [4]), axes_in],
    )
    assert any("must be a constant" in e for e in errors(m, "trt11"))


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
    m = model([helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], dilations=[1, 2])], inputs=x4)
    assert errors(m) == errors(m, "trt11") == ["dilations [1, 2] are not supported (only 1)"]
    # ScatterElements' reduction is parsed (10.0 on); ScatterND's is not
    m = model(
        [helper.make_node("ScatterElements", ["x", "i", "u"], ["y"], reduction="add")], inits=[idx, upd]
    )
    assert errors(m) == errors(m, "trt11") == []


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


def test_changes_are_consistent_with_the_operator_list() -> None:
    """Each later change names a version after the list's 10.1 and within its targets' reach,
    adds only operators the list lacks, and lifts only constant inputs the rules require."""
    from edge.export.lint_rules import CONSTANT_INPUTS
    from edge.export.trt_versions import Target
    from edge.export.trt_versions import version_key as _version

    table = operator_table()
    newest = max(_version(t["newest"]) for t in table["targets"].values())
    for change in table["changes"]:
        assert (10, 1) < _version(change["tensorrt"]) <= newest
        assert change["tensorrt"] in table["releases"]
        for op in change.get("added", ()):
            assert not table["operators"].get(op, {"supported": False})["supported"], op
        for op in change.get("constant_input_lifted", ()):
            assert op in CONSTANT_INPUTS, op
    assert Target.of("trt10").versions == "10.3" and Target.of("trt11").versions == "11.0 to 11.5"


@pytest.mark.parametrize(
    ("op", "opset", "inputs", "trt10", "trt11"),
    [
        ("DFT", 20, 1, "error", "warning"),  # 11.2 (through TensorRT's FFT plugin)
        ("Attention", 23, 3, "error", None),  # 10.14
        ("RMSNormalization", 23, 2, "error", None),  # 10.15
        ("Swish", 24, 1, "error", None),  # 11.0
        ("STFT", 20, 2, "error", None),  # 10.5
        ("HannWindow", 17, 1, "error", None),  # 10.4
        ("Unique", 18, 1, "error", "error"),  # no parser takes it
    ],
)
def test_operators_added_after_the_list(
    op: str, opset: int, inputs: int, trt10: str, trt11: str | None
) -> None:
    """What a later parser added is an error where the target's versions all lack it and a
    warning where only a later one of them parses it, each naming the version that added it."""
    m = model([helper.make_node(op, ["x"] * inputs, ["y"], name="n")], opset=opset)
    for target, expected in (("trt10", trt10), ("trt11", trt11)):
        found = [f for f in lint_model(m, target=target) if f.op == op and "operator list" in f.message]
        assert [f.level for f in found] == ([expected] if expected else []), (target, found)
        if found and op != "Unique":
            assert "and later parse it" in found[0].message


def test_features_a_later_parser_added() -> None:
    """Squeeze without axes (11.5), 5-D GridSample (11.2), Einsum's ellipsis and diagonal
    (10.12), integer Pow (10.12), opset 21's GroupNormalization (10.9): each said with the
    version that parses it."""
    squeeze = model([helper.make_node("Squeeze", ["x"], ["y"])])
    assert errors(squeeze) == [
        "no axes (every dimension of size 1): TensorRT 11.5 and later parse it; trt10 is 10.3"
    ]
    assert [f.level for f in lint_model(squeeze, target="trt11")] == ["warning"]
    old_squeeze = model([helper.make_node("Squeeze", ["x"], ["y"], axes=[0])], opset=11)
    assert lint_model(old_squeeze) == lint_model(old_squeeze, target="trt11") == []

    def grid(rank: int) -> onnx.ModelProto:
        shape = [1, 1, 4, 4, 4][:rank]
        inputs = [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, shape),
            helper.make_tensor_value_info("g", TensorProto.FLOAT, [*[1, 2, 2, 2, 3][: rank - 1], rank - 2]),
        ]
        return model([helper.make_node("GridSample", ["x", "g"], ["y"])], inputs=inputs, opset=20)

    assert lint_model(grid(4)) == [] and lint_model(grid(4), target="trt11") == []
    assert errors(grid(5)) == ["a 5-D input (3-D sampling): TensorRT 11.2 and later parse it; trt10 is 10.3"]
    assert [f.level for f in lint_model(grid(5), target="trt11")] == ["warning"]

    square = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 4])]
    for equation, later in (("ii->i", True), ("...ij->...ji", True), ("ij,jk->ik", False)):
        m = model(
            [helper.make_node("Einsum", ["x"] * (1 + equation.count(",")), ["y"], equation=equation)],
            inputs=square,
        )
        assert bool(errors(m)) is later, equation
        assert errors(m, "trt11") == []

    ints = model(
        [helper.make_node("Pow", ["x", "x"], ["y"])],
        inputs=[helper.make_tensor_value_info("x", TensorProto.INT32, [4])],
    )
    assert [(f.level, f.message) for f in lint_model(ints)] == [
        ("warning", "input type INT32: TensorRT 10.12 and later parse it; trt10 is 10.3")
    ]
    assert lint_model(ints, target="trt11") == []

    def group_norm(opset: int) -> onnx.ModelProto:
        node = helper.make_node("GroupNormalization", ["x", "s", "b"], ["y"], num_groups=2)
        return model([node], opset=opset)

    assert errors(group_norm(21)) == [
        "opset 21's form (scale and bias per channel): TensorRT 10.9 and later parse it; trt10 is 10.3"
    ]
    assert errors(group_norm(18)) == errors(group_norm(21), "10.9") == errors(group_norm(21), "trt11") == []


def test_cli_lint_json_is_every_finding_and_valid(
    tmp_path: Path, tiny_engines: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--json: each model's counts and findings (infos too) with the target's versions, valid
    against edge schema lint; the exit status as without it."""
    import json

    from edge.schemas import check_document

    bad = model(
        [
            helper.make_node("DFT", ["x"], ["d"], name="dft"),
            helper.make_node("NonZero", ["d"], ["y"], name="nz"),
        ],
        opset=20,
    )
    onnx.save(bad, tmp_path / "bad.onnx")
    good = next(tiny_engines.glob("depth_tiny*_fp32.onnx"))
    assert main(["lint", str(tmp_path / "bad.onnx"), str(good), "--target", "trt11", "--json"]) == 0
    text = capsys.readouterr().out
    assert check_document("lint", text) is None
    first, second = json.loads(text)["models"]
    assert (first["target"], first["tensorrt"], first["errors"], first["warnings"]) == (
        "trt11",
        "11.0 to 11.5",
        0,
        1,
    )
    assert [(f["level"], f["op"], f["node"]) for f in first["findings"]] == [
        ("warning", "DFT", "dft"),
        ("info", "NonZero", "nz"),
    ]
    assert second["path"] == str(good) and second["findings"] == []
    assert main(["lint", str(tmp_path / "bad.onnx"), "--json"]) == 1  # trt10: DFT is an error
    assert json.loads(capsys.readouterr().out)["models"][0]["errors"] == 1
