"""Engine-vs-machine checks: what differs, and the rebuild command (no TensorRT needed)."""

from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path
from typing import Any

import pytest

from edge.compat import EngineMismatchError, check_compatible, differences, parse_version, rebuild_command
from edge.errors import ManifestError
from edge.stream.engines import EngineSet
from tests.conftest import TEST_SIZE

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
        "edge build --models panoptic_fpn_r18 --backend tensorrt --precision fp16 "
        "--size 512x1024 --no-roi-align-plugin --out engines --force"
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
    assert "--size 256x512 --batch 4 --no-roi-align-plugin --out e --force" in rebuild_command(entry, "e")


def _requests(command: str) -> list[Any]:
    """The build requests edge build makes of a printed command."""
    from edge.cli_build import build_parser, requests_from_args

    words = shlex.split(command)
    assert words[:2] == ["edge", "build"]
    return requests_from_args(build_parser().parse_args(words[2:]))


def test_rebuild_command_makes_the_same_request(tiny_engines: Path) -> None:
    """Following the printed command gives the engine the manifest describes: for the test
    engines (seeded random weights) the request is the one that built them."""
    from edge.build import BuildRequest

    for entry in json.loads((tiny_engines / "manifest.json").read_text())["engines"].values():
        command = rebuild_command(entry, tiny_engines)
        assert "--random-weights" in command, command
        (req,) = _requests(command)
        assert req == BuildRequest(model=entry["model"], height=TEST_SIZE[0], width=TEST_SIZE[1])


def test_rebuild_command_keeps_weights_calibration_and_tensorrt_options(tmp_path: Path) -> None:
    """Before, the command dropped --checkpoint (a rebuild got other weights), the INT8
    calibration and the TensorRT options."""
    from edge.models.zoo import bundled_weights

    entry = {
        **TRT_ENTRY,
        "model": "depth_small",
        "precision": "int8",
        "weights": {"source": "my weights/depth.pth", "sha256": "ab"},
        "onnx": {"opset": 17},
        "calibration": {
            "source": "cityscapes://data/cs?split=train",
            "frames": 48,
            "method": "percentile",
            "mixed_precision": {"min_snr_db": 30.0},
            "equalize": False,
            "fit": "pad",
            "bias_correction": None,
        },
        "build_flags": {"dla_core": 1, "flags": ["INT8", "FP16"], "version_compatible": True},
        "plugins": {"libedge_roi_align.so": "cd"},
    }
    (req,) = _requests(rebuild_command(entry, tmp_path / "my engines"))
    assert (req.model, req.backend, req.precision, req.height, req.width) == (
        "depth_small",
        "tensorrt",
        "int8",
        512,
        1024,
    )
    assert req.checkpoint == Path("my weights/depth.pth") and req.opset == 17
    assert (req.calib_data, req.calib_frames, req.calib_method) == (
        "cityscapes://data/cs?split=train",
        48,
        "percentile",
    )
    assert req.int8_min_snr == 30.0 and not req.int8_equalize and req.calib_fit == "pad"
    assert not req.int8_bias_correction
    assert (
        req.dla_core == 1 and not req.gpu_fallback and req.version_compatible and not req.hardware_compatible
    )
    assert req.plugin_libraries == (tmp_path / "my engines" / "plugins" / "libedge_roi_align.so",)
    # edge's bundled weights need no --checkpoint: a build without one takes them
    bundled = {**entry, "weights": {"source": str(bundled_weights("depth_small"))}, "calibration": None}
    command = rebuild_command(bundled, "e")
    assert "--checkpoint" not in command and "--random-weights" not in command
    assert _requests(command)[0].checkpoint == bundled_weights("depth_small")
    # TensorRT 10 implicit INT8 from a cache
    cached = {**entry, "calibration": {"method": "tensorrt10-cache", "cache": "c/model.trt10.calib"}}
    assert _requests(rebuild_command(cached, "e"))[0].calib_cache == Path("c/model.trt10.calib")
    # a panoptic engine with TensorRT's own RoiAlign is rebuilt so, not with edge's plugin
    # (which a build now takes by default); one with the plugin, with its copy
    plain = {**TRT_ENTRY, "kind": "panoptic", "plugins": {}}
    assert "--no-roi-align-plugin" in rebuild_command(plain, "e")
    assert _requests(rebuild_command(plain, "e"))[0].roi_align_form == "standard"
    fused = {**plain, "plugins": {"libedge_roi_align_plugin-0123.so": "cd"}}
    assert "--no-roi-align-plugin" not in rebuild_command(fused, "e")
    assert _requests(rebuild_command(fused, "e"))[0].roi_align_form == "plugin"
    assert "--no-roi-align-plugin" not in rebuild_command(entry, "e")  # a depth model has no RoIAlign
    # biases corrected, or a record from before the correction: a rebuild corrects them
    for done in ({"frames": 16, "convolutions": 3}, "absent"):
        calibration = {k: v for k, v in entry["calibration"].items() if k != "bias_correction"}
        if done != "absent":
            calibration["bias_correction"] = done
        assert _requests(rebuild_command({**entry, "calibration": calibration}, "e"))[0].int8_bias_correction


def test_runtime_refuses_an_engine_from_a_newer_onnxruntime(tiny_engines: Path, tmp_path: Path) -> None:
    eng = tmp_path / "eng"
    shutil.copytree(tiny_engines, eng)
    data = json.loads((eng / "manifest.json").read_text())
    for entry in data["engines"].values():
        entry["versions"]["onnxruntime"] = "99.0.0"
    (eng / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(EngineMismatchError, match=r"built with onnxruntime 99.0.0.*Rebuild it: edge build"):
        EngineSet.from_manifest(eng)
    EngineSet.from_manifest(tiny_engines).close()  # the real manifest fits this machine
