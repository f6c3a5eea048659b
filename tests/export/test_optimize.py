from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnx_ir as ir
import pytest
from onnx import TensorProto, helper

from edge.export.optimize import SKIPPED_RULES, rule_name, without_rules
from tests.conftest import IR_VERSION

rewriter = pytest.importorskip("onnxscript.rewriter")
# what torch.onnx's ONNXProgram.optimize calls
torch_api = pytest.importorskip("torch.onnx._internal._lazy_import").onnxscript_apis


def default_rule_names() -> list[str]:
    return [rule_name(r) for r in rewriter._DEFAULT_REWRITE_RULES]


def skipped_rules() -> list:
    """The rules edge sets aside, as this onnxscript has them; skips where it has none (a
    newer onnxscript: export_onnx then runs its optimiser whole, as without_rules says)."""
    rules = [r for r in getattr(rewriter, "_DEFAULT_REWRITE_RULES", ()) if rule_name(r) in SKIPPED_RULES]
    if not rules:
        pytest.skip(f"this onnxscript has no {', '.join(SKIPPED_RULES)} among its default rules")
    return rules


def halves_model() -> onnx.ModelProto:
    """y = x[..., :4] * 2, z = x[..., 4:] ** 2 for an (2, 8) x: the two slices SlicesSplit
    makes one Split of (onnxscript 0.7 matches them only with the upper half first)."""

    def const(name: str, values: list[int]) -> onnx.NodeProto:
        return helper.make_node(
            "Constant", [], [name], value=helper.make_tensor(name, TensorProto.INT64, [1], values)
        )

    nodes = [
        const("zero", [0]),
        const("mid", [4]),
        const("end", [8]),
        const("axis", [-1]),
        helper.make_node("Slice", ["x", "mid", "end", "axis"], ["hi"]),
        helper.make_node("Slice", ["x", "zero", "mid", "axis"], ["lo"]),
        helper.make_node("Add", ["lo", "lo"], ["y"]),
        helper.make_node("Mul", ["hi", "hi"], ["z"]),
    ]
    graph = helper.make_graph(
        nodes,
        "halves",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 8])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [2, 4]) for n in ("y", "z")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=IR_VERSION)


def op_types(model: ir.Model) -> list[str]:
    return sorted(node.op_type for node in model.graph)


def test_the_rules_are_set_aside_while_open_and_restored_after() -> None:
    skipped_rules()
    before = default_rule_names()
    with without_rules() as skipped:
        assert skipped == SKIPPED_RULES
        assert not set(SKIPPED_RULES) & set(default_rule_names())
        assert len(default_rule_names()) == len(before) - len(SKIPPED_RULES)
    assert default_rule_names() == before
    with pytest.raises(RuntimeError, match="boom"), without_rules():
        raise RuntimeError("boom")
    assert default_rule_names() == before


def test_the_optimiser_without_the_rule_keeps_the_slices_it_would_have_split() -> None:
    """A graph the rule does rewrite: the whole optimiser makes a Split, the optimiser
    without the rule keeps both Slices, and the two compute the same."""
    import onnxruntime as ort

    skipped_rules()
    whole = ir.serde.deserialize_model(halves_model())
    torch_api.optimize(whole)
    without = ir.serde.deserialize_model(halves_model())
    with without_rules():
        torch_api.optimize(without)
    assert op_types(whole).count("Split") == 1 and "Slice" not in op_types(whole)
    assert op_types(without).count("Slice") == 2 and "Split" not in op_types(without)
    x = np.arange(16, dtype=np.float32).reshape(2, 8)
    outputs = []
    for model in (whole, without):
        data = ir.serde.serialize_model(model).SerializeToString()
        session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
        outputs.append(session.run(None, {"x": x}))
    np.testing.assert_array_equal(outputs[0][0], x[:, :4] * 2)
    np.testing.assert_array_equal(outputs[0][1], x[:, 4:] ** 2)
    for a, b in zip(*outputs, strict=True):
        np.testing.assert_array_equal(a, b)


def exported_graphs(tiny_engines: Path, panoptic_exports: dict[str, Path]) -> dict[str, Path]:
    return {**panoptic_exports, "depth": next(tiny_engines.glob("depth_tiny_*_fp32.onnx"))}


def test_the_rule_finds_nothing_to_rewrite_in_the_exported_models(
    tiny_engines: Path, panoptic_exports: dict[str, Path]
) -> None:
    """export_onnx optimised these without the rule. Had the whole optimiser split some
    slices, those slices would still be here for the rule to find."""
    rules = skipped_rules()
    for form, path in exported_graphs(tiny_engines, panoptic_exports).items():
        proto = onnx.shape_inference.infer_shapes(onnx.load(str(path)))
        model = ir.serde.deserialize_model(proto)
        slices = [n for n in model.graph if n.op_type == "Slice"]
        assert slices or form == "depth", f"the {form} model has no Slice: the check would be empty"
        assert all(n.inputs[0].shape is not None for n in slices), f"{form}: a slice's shape is unknown"
        for rule in rules:
            assert rule.apply_to_model(model) == 0, f"{rule_name(rule)} would rewrite the {form} model"


def test_an_onnxscript_without_the_rule_set_is_left_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(rewriter, "_DEFAULT_REWRITE_RULES")
    with without_rules() as skipped:
        assert skipped == ()
        assert not hasattr(rewriter, "_DEFAULT_REWRITE_RULES")


def test_nested_use_sets_the_rules_aside_once() -> None:
    skipped_rules()
    before = default_rule_names()
    with without_rules() as outer:
        with without_rules() as inner:
            assert outer == SKIPPED_RULES and inner == ()
        assert not set(SKIPPED_RULES) & set(default_rule_names())
    assert default_rule_names() == before
