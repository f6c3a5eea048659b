from __future__ import annotations

from pathlib import Path

import onnx
import pytest

from edge.errors import ConfigError
from edge.export import export_onnx
from edge.models import create_model

STANDARD_DOMAINS = {"", "ai.onnx"}


@pytest.fixture(scope="module")
def panoptic_onnx(panoptic_exports: dict[str, Path]) -> Path:
    """export_onnx of panoptic_fpn_tiny with metadata {"edge.model": ...}, standard form."""
    return panoptic_exports["standard"]


def test_graph_is_standard_static_and_self_contained(panoptic_onnx: Path) -> None:
    model = onnx.load(str(panoptic_onnx))
    onnx.checker.check_model(model)
    opset = {o.domain: o.version for o in model.opset_import}
    assert opset.get("", opset.get("ai.onnx", 0)) >= 17
    assert {n.domain for n in model.graph.node} <= STANDARD_DOMAINS
    # no external-data file next to the model: all weights are inside
    assert [p.name for p in panoptic_onnx.parent.iterdir()] == [panoptic_onnx.name]
    assert all(i.data_location != onnx.TensorProto.EXTERNAL for i in model.graph.initializer)
    for value in list(model.graph.input) + list(model.graph.output):
        dims = value.type.tensor_type.shape.dim
        assert all(d.HasField("dim_value") for d in dims), f"{value.name} has a dynamic dimension"
    outputs = {o.name: [d.dim_value for d in o.type.tensor_type.shape.dim] for o in model.graph.output}
    assert outputs["boxes"] == [1, 20, 4]
    assert outputs["num_detections"] == [1]
    assert {m.key: m.value for m in model.metadata_props}["edge.model"] == "panoptic_fpn_tiny"


def test_roialign_is_standard_half_pixel(panoptic_onnx: Path) -> None:
    model = onnx.load(str(panoptic_onnx))
    roi = [n for n in model.graph.node if n.op_type == "RoiAlign"]
    assert len(roi) == 8  # 4 FPN levels x (box head, mask head)
    for node in roi:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        assert attrs["coordinate_transformation_mode"] == b"half_pixel"
        assert attrs["mode"] == b"avg"
    assert sum(n.op_type == "NonMaxSuppression" for n in model.graph.node) == 2  # RPN + boxes


def test_old_opset_and_bad_size_refused(tmp_path: Path) -> None:
    model = create_model("depth_tiny")
    with pytest.raises(ConfigError, match="opset 16"):
        export_onnx(model, tmp_path / "d.onnx", height=64, width=128, opset=16)
    with pytest.raises(ConfigError, match="multiples of 32"):
        export_onnx(model, tmp_path / "d.onnx", height=65, width=128)
    assert not any(tmp_path.iterdir()), "nothing written on refusal"


def test_exports_hold_no_path_of_the_build_machine(
    tiny_engines: Path, panoptic_exports: dict[str, Path]
) -> None:
    """The exporter notes each node's Python stack, with absolute file paths; without them
    the same model exported from two checkouts is the same bytes."""
    import edge

    root = str(Path(edge.__file__).resolve().parent.parent).encode()
    depth = next(tiny_engines.glob("depth_tiny_*_fp32.onnx"))
    for path in (depth, panoptic_exports["plugin"], panoptic_exports["standard"]):
        data = path.read_bytes()
        assert root not in data and b"stack_trace" not in data, path.name
    # the node's other notes stay: where in the model it came from
    keys = {p.key for n in onnx.load(str(depth)).graph.node for p in n.metadata_props}
    assert "pkg.torch.onnx.class_hierarchy" in keys


def test_a_torch_too_old_to_export_is_named_before_the_export() -> None:
    from edge.export.onnx import exporter_problem

    # NVIDIA's JetPack 6 wheel, and PyPI's 2.5.1: their exporter fails on edge's custom ops
    for old in ("2.5.0a0+872d972e41.nv24.08", "2.5.1+cu124", "2.4.0", "1.13.1"):
        problem = exporter_problem(old)
        assert problem is not None and problem.startswith(
            f"exporting to ONNX needs torch 2.6 or newer, and this is torch {old}: "
        )
    for new in ("2.6.0+cu124", "2.9.1+cu128", "2.13.0+cpu", "2.14.0.dev20261101", "3.0.0", "not-a-version"):
        assert exporter_problem(new) is None, new


def test_custom_ops_name_the_plugin_and_its_version(
    tiny_engines: Path, panoptic_exports: dict[str, Path]
) -> None:
    """What a build records in the manifest of the plugins its graph asks TensorRT for."""
    from edge.export.onnx import custom_ops
    from plugins.roi_align.onnx_export import PLUGIN_VERSION

    fused = [n for n in onnx.load(str(panoptic_exports["plugin"])).graph.node if n.domain == "edge.plugins"]
    assert len(fused) == 2  # the box head's and the mask head's pooling
    assert custom_ops(panoptic_exports["plugin"]) == [
        {
            "domain": "edge.plugins",
            "op_type": "MultiLevelRoIAlign",
            "plugin_version": PLUGIN_VERSION,
            "plugin_namespace": "",
            "nodes": 2,
        }
    ]
    assert custom_ops(panoptic_exports["standard"]) == []
    # the form ONNX Runtime runs has none, and its builds say so
    import json

    entries = json.loads((tiny_engines / "manifest.json").read_text())["engines"].values()
    assert [e["custom_ops"] for e in entries] == [[], []]
