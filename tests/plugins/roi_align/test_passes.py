"""Fused export, expand/contract passes, and ONNX Runtime running both forms."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from edge.backends.onnxruntime import OnnxRuntimeEngine
from edge.errors import ExportError
from edge.export.lint import lint_model
from plugins.roi_align.onnx_export import DOMAIN, OP_TYPE, PLUGIN_VERSION, fused_node, register_schema
from plugins.roi_align.passes import contract, expand, fused_nodes
from plugins.roi_align.reference import multilevel_roi_align
from tests.conftest import TEST_SIZE

SIZE = TEST_SIZE
PLUGIN = f"{DOMAIN}::{OP_TYPE}"


@pytest.fixture(scope="module")
def forms(panoptic_exports: dict[str, Path]) -> dict[str, Path]:
    """export_onnx(informative_model("panoptic_fpn_tiny"), roi_align=form) at TEST_SIZE."""
    return panoptic_exports


def count(model: onnx.ModelProto, op: str) -> int:
    return sum(n.op_type == op for n in model.graph.node)


def run(model: onnx.ModelProto | Path, image: np.ndarray) -> dict[str, np.ndarray]:
    src = model if isinstance(model, Path) else model.SerializeToString()
    sess = ort.InferenceSession(
        str(src) if isinstance(src, Path) else src, providers=["CPUExecutionProvider"]
    )
    return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {"image": image}), strict=True))


def image(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 255, (1, 3, *SIZE)).astype(np.float32)


def test_plugin_form_has_fused_nodes_with_plugin_fields(forms: dict[str, Path]) -> None:
    model = onnx.load(str(forms["plugin"]))
    nodes = fused_nodes(model)
    assert len(nodes) == 2 and count(model, "RoiAlign") == 0  # box head + mask head
    attrs = {a.name: helper.get_attribute_value(a) for a in nodes[0].attribute}
    assert attrs["plugin_version"] == PLUGIN_VERSION.encode() and "plugin_namespace" in attrs
    assert attrs["output_height"] == 7 and attrs["min_level"] == 2 and len(attrs["spatial_scales"]) == 4
    assert len(nodes[0].input) == 2 + 4  # rois, batch indices, P2..P5
    assert any(o.domain == DOMAIN for o in model.opset_import)
    std = onnx.load(str(forms["standard"]))
    assert not fused_nodes(std) and count(std, "RoiAlign") == 8
    assert all(o.domain != DOMAIN for o in std.opset_import)


def test_expand_and_contract_round_trip(forms: dict[str, Path]) -> None:
    std, fused = onnx.load(str(forms["standard"])), onnx.load(str(forms["plugin"]))
    contracted = contract(std)
    assert len(fused_nodes(contracted)) == 2 and count(contracted, "RoiAlign") == 0
    assert len(contracted.graph.node) == len(fused.graph.node)  # the level logic is gone too
    x = image()
    ref = run(std, x)
    for other in (expand(fused), expand(contracted)):
        got = run(other, x)
        for k in ref:
            np.testing.assert_allclose(got[k], ref[k], rtol=1e-5, atol=1e-5)
    assert contract(onnx.load(str(forms["plugin"]))) is not None  # nothing to contract: unchanged
    assert len(fused_nodes(contract(fused))) == 2


def test_onnxruntime_backend_runs_both_forms(forms: dict[str, Path]) -> None:
    x = image(3)
    with OnnxRuntimeEngine(forms["standard"]) as a, OnnxRuntimeEngine(forms["plugin"]) as b:
        ra, rb = a.infer({"image": x}), b.infer({"image": x})
    assert int(ra["num_detections"][0]) > 0
    for k in ra:
        np.testing.assert_allclose(rb[k], ra[k], rtol=1e-5, atol=1e-5)


def test_lint_knows_the_plugin(forms: dict[str, Path]) -> None:
    findings = lint_model(forms["plugin"], target="trt10")
    assert sum("no TensorRT plugin registered" in f.message for f in findings) == 2
    clean = lint_model(forms["plugin"], target="trt10", plugins=[PLUGIN])
    assert [f for f in clean if f.level == "error"] == []


SCALES = [1 / 4, 1 / 8, 1 / 16, 1 / 32]
LEVELS = ["p2", "p3", "p4", "p5"]


def fused_model(level_shapes: list[list[int]], n: int, **attributes: object) -> onnx.ModelProto:
    """A graph of one fused node (``attributes`` as fused_node takes them) over maps of
    ``level_shapes`` and ``n`` RoIs: inputs rois, bidx, p2, p3, ...; output y."""
    register_schema()
    names = [f"p{2 + i}" for i in range(len(level_shapes))]
    node = fused_node(["rois", "bidx", *names], "y", **attributes)
    inputs = [
        helper.make_tensor_value_info("rois", TensorProto.FLOAT, [n, 4]),
        helper.make_tensor_value_info("bidx", TensorProto.INT64, [n]),
    ]
    inputs += [
        helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)
        for name, shape in zip(names, level_shapes, strict=True)
    ]
    graph = helper.make_graph(
        [node], "g", inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]
    )
    return helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid(DOMAIN, 1)], ir_version=9
    )


def single_node(n: int, *, aligned: int, sampling: int = 2, mode: str = "avg") -> onnx.ModelProto:
    """A graph of one fused node over a 4-level pyramid of a 128x192 image with 2 images,
    3 channels and ``n`` RoIs: inputs rois, bidx, p2..p5; output y."""
    return fused_model(
        [[2, 3, 32 >> i, 48 >> i] for i in range(len(LEVELS))],
        n,
        output_size=5,
        spatial_scales=SCALES,
        sampling_ratio=sampling,
        aligned=aligned,
        min_level=2,
        mode=mode,
    )


def pyramid_and_rois(seed: int, n: int) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    feats = [rng.normal(size=(2, 3, 32 >> i, 48 >> i)).astype(np.float32) for i in range(4)]
    xy = rng.uniform(-10, 150, (n, 2))
    wh = np.exp(rng.uniform(0, 6, (n, 2)))  # 1 .. 400 px: every level gets RoIs
    rois = np.concatenate([xy, xy + wh], 1).astype(np.float32)
    return feats, rois, rng.integers(0, 2, n).astype(np.int64)


def run_expanded(
    model: onnx.ModelProto, feats: list[np.ndarray], rois: np.ndarray, bidx: np.ndarray
) -> np.ndarray:
    sess = ort.InferenceSession(expand(model).SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"rois": rois, "bidx": bidx, **dict(zip(LEVELS, feats, strict=True))})[0]


def single_reference(
    feats: list[np.ndarray],
    rois: np.ndarray,
    bidx: np.ndarray,
    *,
    sampling: int,
    aligned: bool,
    mode: str = "avg",
) -> np.ndarray:
    """The numpy reference of single_node's op."""
    return multilevel_roi_align(
        feats,
        rois,
        bidx,
        output_size=5,
        spatial_scales=SCALES,
        sampling_ratio=sampling,
        aligned=aligned,
        mode=mode,
    )


@pytest.mark.parametrize(("aligned", "n"), [(1, 30), (0, 30), (1, 1), (1, 0)])
def test_expanded_single_node_matches_numpy_reference(aligned: int, n: int) -> None:
    feats, rois, bidx = pyramid_and_rois(5, n)
    got = run_expanded(single_node(n, aligned=aligned), feats, rois, bidx)
    ref = single_reference(feats, rois, bidx, sampling=2, aligned=bool(aligned))
    assert got.shape == (n, 3, 5, 5)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("sampling", "mode"), [(0, "avg"), (2, "avg"), (2, "max"), (1, "max")])
def test_expanded_node_pools_zeros_for_rois_with_nan_or_inf(sampling: int, mode: str) -> None:
    """ONNX Runtime's RoiAlign refuses a NaN or inf RoI, and a NaN RoI's level matched no level,
    leaving the scatter a row short: the expansion puts the outside box in their place. Under
    a fixed sampling ratio, boxes whose size is past float32's range pool zeros too (every point
    inf or NaN, which the ``max`` form must not turn into a cell index); ONNX Runtime's adaptive
    grid of ceil(inf) samples overflows, so they are left out there. And a box far off the map."""
    feats, rois, bidx = pyramid_and_rois(6, 14)
    rois[2, 0], rois[5, 3], rois[7, 1], rois[9] = np.nan, np.inf, -np.inf, np.nan
    if sampling:
        rois[10], rois[11] = [-3e38, -3e38, 3e38, 3e38], [-3e38, 5, 3e38, 40]
    rois[12], rois[13] = [100, 100, 100, 100], [1e30, 1e30, 1e30 + 1, 1e30 + 1]
    got = run_expanded(single_node(14, aligned=1, sampling=sampling, mode=mode), feats, rois, bidx)
    ref = single_reference(feats, rois, bidx, sampling=sampling, aligned=True, mode=mode)
    assert not got[[2, 5, 7, 9, 13] + ([10, 11] if sampling else [])].any() and np.isfinite(got).all()
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)


def test_contract_leaves_the_nonfinite_guard_to_the_fused_op() -> None:
    """The fused op pools zeros for such RoIs itself (its kernels check them): contracting an
    expansion takes the graph's own RoIs, and expanding again guards them once."""
    expanded = expand(single_node(12, aligned=1))
    assert count(expanded, "IsNaN") == count(expanded, "IsInf") == 1
    contracted = contract(expanded)
    (fused,) = fused_nodes(contracted)
    assert fused.input[0] == "rois" and count(contracted, "IsNaN") == 0
    again = expand(contracted)
    assert count(again, "IsNaN") == 1 and count(again, "RoiAlign") == 4


@pytest.mark.parametrize(
    ("aligned", "sampling", "n"), [(1, 2, 30), (0, 2, 30), (1, 1, 30), (0, 3, 30), (1, 2, 0)]
)
def test_expanded_max_mode_is_the_maximum_of_each_bins_samples(aligned: int, sampling: int, n: int) -> None:
    """ONNX's RoiAlign 'max' takes each sample's largest weighted corner, 1.0 and more off the
    reference's maximum of the samples on these maps; an 'avg' RoiAlign on a grid ``sampling``
    times finer rounds its points otherwise (up to 2.4e-5 off). The expansion computes each
    sample's point as the reference does, gathers its corners, and takes each bin's maximum:
    2.4e-7 at most here, within 1.2e-6 of rtol 1e-5 over 300 random problems."""
    feats, rois, bidx = pyramid_and_rois(7, n)
    model = single_node(n, aligned=aligned, sampling=sampling, mode="max")
    expanded = expand(model)
    assert count(expanded, "MaxPool") == 1 and count(expanded, "RoiAlign") == 0
    got = run_expanded(model, feats, rois, bidx)
    ref = single_reference(
        feats,
        rois,
        bidx,
        sampling=sampling,
        aligned=bool(aligned),
        mode="max",
    )
    assert got.shape == (n, 3, 5, 5)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)
    # the round trip: the samples and the MaxPool fold back into the node they came from
    contracted = contract(expanded)
    assert len(contracted.graph.node) == 1
    (fused,) = fused_nodes(contracted)
    attrs = {a.name: helper.get_attribute_value(a) for a in fused.attribute}
    assert (attrs["mode"], attrs["sampling_ratio"], attrs["output_height"], attrs["output_width"]) == (
        b"max",
        sampling,
        5,
        5,
    )


def test_max_mode_under_adaptive_sampling_and_other_modes_are_refused() -> None:
    with pytest.raises(
        ExportError, match=r"an unnamed MultiLevelRoIAlign node pools the maximum under adaptive"
    ):
        expand(single_node(4, aligned=1, sampling=0, mode="max"))
    model = single_node(4, aligned=1, mode="median")
    model.graph.node[0].name = "mask_pooler"
    with pytest.raises(ExportError, match=r"node 'mask_pooler' has mode 'median'; expected 'avg' or 'max'"):
        expand(model)


def _tamper(model: onnx.ModelProto, how: str) -> None:
    """One change to a ``max`` expansion that still runs: the point offset of aligned RoIs,
    or the corner a point rounds to."""
    if how == "offset":
        (init,) = [t for t in model.graph.initializer if onnx.numpy_helper.to_array(t).tolist() == 0.5][:1]
        init.CopyFrom(onnx.numpy_helper.from_array(np.asarray(0.25, np.float32), init.name))
    else:
        made_by = {o: n.op_type for n in model.graph.node for o in n.output}
        # a sample's Floor, of its clamped point (the level assignment's is another)
        next(
            n for n in model.graph.node if n.op_type == "Floor" and made_by[n.input[0]] == "Min"
        ).op_type = "Ceil"


@pytest.mark.parametrize("how", ["offset", "floor"])
def test_contract_folds_only_what_expand_writes_for_max(how: str) -> None:
    """The ``max`` form is recognised by building it again from what it reads and comparing
    node for node: a graph that differs in one constant or one op is another computation."""
    model = expand(single_node(6, aligned=1, sampling=2, mode="max"))
    assert len(fused_nodes(contract(model))) == 1
    _tamper(model, how)
    assert not fused_nodes(contract(model))


def test_contract_keeps_a_max_pool_after_an_avg_expansion() -> None:
    """An ``avg`` expansion (one sample a bin) that a graph max-pools is an ``avg`` node and the
    MaxPool, not a ``max`` node: that reading was the old expansion's, and its points round
    otherwise."""
    model = expand(single_node(6, aligned=1, sampling=1))
    model.graph.node.append(
        helper.make_node("MaxPool", ["y"], ["pooled"], kernel_shape=[5, 5], strides=[5, 5])
    )
    model.graph.output[0].name = "pooled"
    contracted = contract(model)
    (fused,) = fused_nodes(contracted)
    attrs = {a.name: helper.get_attribute_value(a) for a in fused.attribute}
    assert (attrs["mode"], attrs["sampling_ratio"], attrs["output_height"]) == (b"avg", 1, 5)
    assert [n.op_type for n in contracted.graph.node if n.domain != DOMAIN] == ["MaxPool"]


def test_contract_leaves_onnx_max_roialigns_alone() -> None:
    """A standard graph whose RoiAligns pool ONNX's 'max' is not the fused op's max: kept."""
    expanded = expand(single_node(4, aligned=1))
    for node in expanded.graph.node:
        if node.op_type == "RoiAlign":
            for a in node.attribute:
                if a.name == "mode":
                    a.s = b"max"
    assert not fused_nodes(contract(expanded))
    assert len(fused_nodes(contract(expand(single_node(4, aligned=1))))) == 1
