"""``edge schema manifest``: the JSON Schema of engines/manifest.json, checked against the
manifests of real builds (float engines of both kinds with their accuracy checks, an INT8
engine calibrated with equalization and layers kept in float) and against a TensorRT entry as
build_engine records it (TensorRT cannot run here)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from edge.backends.tensorrt import TrtBuildOptions, plan_build
from edge.build import BuildRequest, build_all
from edge.cli import main
from edge.schemas import check_document, schema
from plugins.roi_align.onnx_export import DOMAIN, OP_TYPE, PLUGIN_NAMESPACE, PLUGIN_VERSION
from tests.test_replay import listed_fields, written_fields

pytest.importorskip("jsonschema", reason="jsonschema is a test dependency: pip install -e '.[dev]'")


@pytest.fixture(scope="module")
def int8_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An INT8 build that equalizes, fits ranges to ELUs and keeps layers in float (~8 s)."""
    out = tmp_path_factory.mktemp("int8_engines")
    req = BuildRequest(
        model="depth_tiny",
        height=64,
        width=128,
        precision="int8",
        calib_data="synthetic://?size=64x128",
        calib_frames=4,
        calib_method="percentile",
        calib_fit="pad",
        int8_min_snr=80.0,  # more than all-INT8 gives: layers go back to float
    )
    build_all([req], out, show_progress=False, verify_samples=1)
    return out


@pytest.fixture()
def int8_manifest(int8_folder: Path) -> dict[str, Any]:
    return json.loads((int8_folder / "manifest.json").read_text())


def tensorrt_entry(entry: dict[str, Any]) -> dict[str, Any]:
    """``entry`` as a TensorRT build would have recorded it (edge.build._build_backend)."""
    plan = plan_build("10.3.0", TrtBuildOptions(precision="fp16", dla_core=0, gpu_fallback=False))
    out = copy.deepcopy(entry)
    out |= {
        "backend": "tensorrt",
        "precision": "fp16",
        "build_flags": plan.record(),
        "build_notes": plan.notes,
        "device": {"gpu": "Orin (nvgpu)", "compute_capability": "8.7"},
        "plugins": {"libedge_roi_align_plugin.so": "0" * 64},
        # what edge.export.onnx.custom_ops reads from the fused export (tests/export/test_onnx.py)
        "custom_ops": [
            {
                "domain": DOMAIN,
                "op_type": OP_TYPE,
                "plugin_version": PLUGIN_VERSION,
                "plugin_namespace": PLUGIN_NAMESPACE,
                "nodes": 2,
            }
        ],
    }
    out["versions"]["tensorrt"] = "10.3.0.30"
    out["artifact"]["path"] = out["artifact"]["path"].replace(".ort.onnx", ".engine")
    return out


def refusal(document: dict[str, Any]) -> str | None:
    return check_document("manifest", json.dumps(document))


def test_real_builds_manifests_are_valid(tiny_engines: Path, int8_manifest: dict[str, Any]) -> None:
    float_text = (tiny_engines / "manifest.json").read_text()
    assert check_document("manifest", float_text) is None
    assert refusal(int8_manifest) is None
    entries = [*json.loads(float_text)["engines"].values(), *int8_manifest["engines"].values()]
    assert {e["kind"] for e in entries} == {"panoptic", "depth"}
    (int8,) = int8_manifest["engines"].values()
    mixed = int8["calibration"]["mixed_precision"]
    assert mixed["steps"] and int8["calibration"]["equalized"] and int8["calibration"]["ranges_fitted"]
    trt = tensorrt_entry(entries[0])
    assert refusal({"format": 1, "engines": {trt["id"]: trt}}) is None


def test_every_field_the_schema_lists_is_written(tiny_engines: Path, int8_manifest: dict[str, Any]) -> None:
    entries = [
        *json.loads((tiny_engines / "manifest.json").read_text())["engines"].values(),
        *int8_manifest["engines"].values(),
    ]
    entries.append(tensorrt_entry(entries[0]))
    described = schema("manifest")["properties"]["engines"]["additionalProperties"]
    written = set().union(*(written_fields(e) for e in entries))
    # config, versions and plugins are maps of names the models and tools decide
    listed = listed_fields(described)
    assert listed <= written, sorted(listed - written)
    maps = ("config/", "versions/", "plugins/", "accuracy_check/", "calibration/")
    assert {f for f in written if not f.startswith(maps)} <= listed


@pytest.mark.parametrize(
    "change,field",
    [
        (lambda e: e.update(precision="int4"), "precision"),
        (lambda e: e["artifact"].update(sha256="abc"), "artifact/sha256"),
        (lambda e: e.update(speed="fast"), "speed"),
        (lambda e: e.pop("fingerprint"), "fingerprint"),
        (lambda e: e.update(build_flags={}), "build_flags"),  # a field of TensorRT's alone
        (lambda e: e["lint"].pop("trt11"), "trt11"),
        (lambda e: e["inputs"][0].update(shape="1x3"), "inputs/0/shape"),
        (lambda e: e["calibration"].update(method="guess"), "calibration"),
        (lambda e: e["accuracy_check"].update(passed="yes"), "accuracy_check"),
        (lambda e: e["calibration"].update(method="tensorrt10-cache"), "calibration"),
    ],
)
def test_a_wrong_entry_is_refused_naming_the_field(
    int8_manifest: dict[str, Any], change: Any, field: str
) -> None:
    doc = copy.deepcopy(int8_manifest)
    (entry,) = doc["engines"].values()
    change(entry)
    why = refusal(doc)
    assert why is not None and field in why, why
    assert len(why) < 200, why  # the refused record is not printed whole


def test_a_tensorrt_entry_needs_its_build_flags(tiny_engines: Path) -> None:
    entry = tensorrt_entry(
        next(iter(json.loads((tiny_engines / "manifest.json").read_text())["engines"].values()))
    )
    del entry["build_flags"]
    why = refusal({"format": 1, "engines": {entry["id"]: entry}})
    assert why is not None and "build_flags" in why, why
    assert refusal({"format": 2, "engines": {}}) is not None


def test_edge_schema_manifest_checks_a_folder(
    tiny_engines: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["schema", "manifest"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["$id"] == "urn:edge-perception:schema:manifest"
    assert main(["schema", "manifest", "--check", str(tiny_engines / "manifest.json")]) == 0
    broken = json.loads((tiny_engines / "manifest.json").read_text())
    next(iter(broken["engines"].values()))["backend"] = "tflite"
    (tmp_path / "manifest.json").write_text(json.dumps(broken))
    capsys.readouterr()
    assert main(["schema", "manifest", "--check", str(tmp_path / "manifest.json")]) == 1
    assert "backend" in capsys.readouterr().out


def test_edge_calibrates_ranges_files_are_valid(int8_folder: Path, tmp_path: Path) -> None:
    """The ranges JSON a build writes (calibrated on frames), and one edge calibrate --from-cache
    writes from that build's TensorRT 10 cache."""
    (entry,) = json.loads((int8_folder / "manifest.json").read_text())["engines"].values()
    files = entry["calibration"]["files"]
    from_frames = (int8_folder / files["ranges"]).read_text()
    assert check_document("ranges", from_frames) is None
    model = int8_folder / (files["cache_float_onnx"] or entry["onnx"]["path"])
    cache = int8_folder / files["tensorrt10_cache"]
    argv = ["calibrate", str(model), "--from-cache", str(cache), "--out", str(tmp_path), "--quiet"]
    assert main(argv) == 0
    (made,) = tmp_path.glob("*.calib.json")
    doc = json.loads(made.read_text())
    assert doc["calibration"]["method"].startswith("tensorrt-cache (")
    assert check_document("ranges", made.read_text()) is None
    assert set(doc["ranges"]) == set(json.loads(from_frames)["ranges"])
    # what a reader relies on is refused when it is not so
    bad = json.loads(from_frames)
    bad["ranges"][next(iter(bad["ranges"]))] = [0.0]
    why = check_document("ranges", json.dumps(bad))
    assert why is not None and why.startswith("ranges/"), why
    doc["calibration"]["files"] = files  # a build's record, not edge calibrate's
    why = check_document("ranges", json.dumps(doc))
    assert why is not None and "files" in why, why
