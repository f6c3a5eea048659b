"""Engine-vs-machine checks: what differs, and the rebuild command (no TensorRT needed)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from edge.compat import EngineMismatchError, check_compatible, differences, parse_version, rebuild_command
from edge.errors import ManifestError
from edge.stream.engines import EngineSet

TRT_ENTRY = {
    "id": "panoptic_fpn_r18_512x1024_b1_tensorrt_fp16",
    "model": "panoptic_fpn_r18",
    "backend": "tensorrt",
    "precision": "fp16",
    "inputs": [{"name": "image", "shape": [1, 3, 512, 1024], "dtype": "float32"}],
    "versions": {"tensorrt": "10.3.0.30"},
    "device": {"gpu": "Orin", "compute_capability": "8.7"},
}
ORIN = {"tensorrt": "10.3.0.30", "gpu": "Orin", "compute_capability": "8.7"}


def test_version_parsing() -> None:
    assert parse_version("10.3.0.30", what="t") < parse_version("11.0.0", what="t")
    assert parse_version("2.13.0+cpu", what="t").release == (2, 13, 0)
    with pytest.raises(ManifestError, match="'ten' cannot be parsed"):
        parse_version("ten", what="tensorrt")


def test_tensorrt_same_machine_fits() -> None:
    assert differences(TRT_ENTRY, ORIN) == []


def test_tensorrt_version_and_gpu_mismatch_named_with_rebuild_command() -> None:
    desktop = {"tensorrt": "11.2.0", "gpu": "NVIDIA H100", "compute_capability": "9.0"}
    with pytest.raises(EngineMismatchError) as err:
        check_compatible(TRT_ENTRY, "engines", desktop)
    msg = str(err.value)
    assert "built with TensorRT 10.3.0.30, this machine has 11.2.0 (needs exactly)" in msg
    assert "compute capability 8.7 (Orin), this machine has 9.0 (NVIDIA H100)" in msg
    assert msg.endswith(
        "python build_engines.py --models panoptic_fpn_r18 --backend tensorrt --precision fp16 "
        "--size 512x1024 --out engines --force"
    )


def test_tensorrt_compatibility_flags() -> None:
    entry = {**TRT_ENTRY, "build_flags": {"version_compatible": True, "hardware_compatible": True}}
    assert differences(entry, {"tensorrt": "10.8.0", "compute_capability": "9.0"}) == []
    assert differences(entry, {"tensorrt": "10.1.0", "compute_capability": "9.0"})  # older than built
    assert differences(entry, {"tensorrt": "11.0.0", "compute_capability": "9.0"})  # another major
    assert differences(TRT_ENTRY, {"tensorrt": None}) == [
        "TensorRT is not installed on this machine",
        "built for compute capability 8.7 (Orin), this machine has - (no CUDA GPU)",
    ]


def test_onnxruntime_needs_same_or_newer() -> None:
    entry = {"backend": "onnxruntime", "versions": {"onnxruntime": "1.32.0"}}
    assert differences(entry, {"onnxruntime": "1.32.5"}) == []
    assert differences(entry, {"onnxruntime": "1.33.0"}) == []
    assert differences(entry, {"onnxruntime": "1.20.1"}) == [
        "built with onnxruntime 1.32.0, this machine has 1.20.1 (older)"
    ]


def test_rebuild_command_keeps_batch() -> None:
    entry = {**TRT_ENTRY, "inputs": [{"shape": [4, 3, 256, 512]}]}
    assert "--size 256x512 --batch 4 --out e --force" in rebuild_command(entry, "e")


def test_runtime_refuses_an_engine_from_a_newer_onnxruntime(tiny_engines: Path, tmp_path: Path) -> None:
    eng = tmp_path / "eng"
    shutil.copytree(tiny_engines, eng)
    data = json.loads((eng / "manifest.json").read_text())
    for entry in data["engines"].values():
        entry["versions"]["onnxruntime"] = "99.0.0"
    (eng / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(
        EngineMismatchError, match=r"built with onnxruntime 99.0.0.*Rebuild it: python build_engines.py"
    ):
        EngineSet.from_manifest(eng)
    EngineSet.from_manifest(tiny_engines).close()  # the real manifest fits this machine
