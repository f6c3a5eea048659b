"""build_engines.py / edge.build: artifacts, manifest, fingerprint, no-rebuild, errors."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from edge.build import BuildRequest, build_one, parse_size
from edge.errors import BackendUnavailableError, CheckpointError, ConfigError, UnknownModelError
from edge.manifest import Manifest
from edge.models import create_model
from edge.util.fs import sha256_file
from tests.conftest import ROOT, signal_when


def test_manifest_records_design_fields(tiny_engines: Path) -> None:
    manifest = Manifest.load(tiny_engines, must_exist=True)
    assert set(manifest.engines) == {
        "panoptic_fpn_tiny_128x256_b1_onnxruntime_fp32",
        "depth_tiny_128x256_b1_onnxruntime_fp32",
    }
    for entry in manifest.engines.values():
        for key in (
            "model",
            "config",
            "backend",
            "precision",
            "inputs",
            "outputs",
            "onnx",
            "artifact",
            "weights",
            "fingerprint",
            "versions",
            "plugins",
            "calibration",
            "accuracy_check",
        ):
            assert key in entry, key
        assert entry["versions"]["onnxruntime"] and entry["versions"]["torch"]
        for part in ("onnx", "artifact"):
            path = tiny_engines / entry[part]["path"]
            assert sha256_file(path) == entry[part]["sha256"]
        check = entry["accuracy_check"]
        assert check["passed"] is True and check["samples"] == 2
    pan = manifest.engines["panoptic_fpn_tiny_128x256_b1_onnxruntime_fp32"]
    assert pan["inputs"] == [{"name": "image", "shape": [1, 3, 128, 256], "dtype": "float32"}]
    det = pan["accuracy_check"]["per_sample"][0]["detections"][0]
    assert det["matched"] == det["ref_detections"]


def test_unchanged_request_is_not_rebuilt_and_tampering_is(tiny_engines: Path, tmp_path: Path) -> None:
    out = tmp_path / "eng"
    shutil.copytree(tiny_engines, out)
    req = BuildRequest(model="depth_tiny", height=128, width=256)
    artifact = out / f"{req.engine_id}.ort.onnx"
    before = artifact.stat().st_mtime_ns
    result = build_one(req, out)
    assert not result.rebuilt and artifact.stat().st_mtime_ns == before
    artifact.write_bytes(artifact.read_bytes()[:-10])  # damaged artifact -> rebuilt
    result = build_one(req, out, verify_samples=0)
    assert result.rebuilt
    assert sha256_file(artifact) == result.entry["artifact"]["sha256"]
    # the other model's entry survives the rewrite of the manifest
    assert "panoptic_fpn_tiny_128x256_b1_onnxruntime_fp32" in Manifest.load(out).engines


def test_changed_weights_change_fingerprint(tmp_path: Path) -> None:
    ckpt = tmp_path / "w.pth"
    torch.save(create_model("depth_tiny", seed=3).state_dict(), ckpt)
    out = tmp_path / "eng"
    a = build_one(BuildRequest(model="depth_tiny", height=64, width=128), out, verify_samples=0)
    b = build_one(
        BuildRequest(model="depth_tiny", height=64, width=128, checkpoint=ckpt), out, verify_samples=1
    )
    assert b.rebuilt and a.entry["fingerprint"] != b.entry["fingerprint"]
    assert b.entry["weights"]["sha256"] and b.entry["accuracy_check"]["passed"]
    assert not build_one(BuildRequest(model="depth_tiny", height=64, width=128, checkpoint=ckpt), out).rebuilt


def test_another_backend_takes_the_folders_export(tiny_engines: Path, tmp_path: Path) -> None:
    """One model, weights and size built for another backend exports the same graph: the
    folder's export is copied instead of made again (the slowest step), unless --force."""
    from edge.cli_build import result_lines

    out = tmp_path / "eng"
    shutil.copytree(tiny_engines, out)
    donor = Manifest.load(out).engines["depth_tiny_128x256_b1_onnxruntime_fp32"]
    req = BuildRequest(model="depth_tiny", height=128, width=256, backend="torch")
    steps: list[str] = []
    built = build_one(req, out, verify_samples=1, progress=steps.append)
    assert f"reusing the ONNX export of {donor['id']}" in steps and "exporting ONNX" not in steps
    assert built.entry["onnx"]["reused_from"] == donor["id"]
    assert built.entry["export_key"] == donor["export_key"]
    assert sha256_file(out / built.entry["onnx"]["path"]) == donor["onnx"]["sha256"]
    assert built.entry["accuracy_check"]["passed"]
    assert result_lines(built, out)[0].startswith(
        f"{req.engine_id}: built (the ONNX export of {donor['id']}), check passed"
    )
    # --force exports again; the export it makes is the same file, byte for byte
    steps.clear()
    forced = build_one(req, out, force=True, verify_samples=0, progress=steps.append)
    assert "exporting ONNX" in steps and forced.entry["onnx"]["reused_from"] is None
    assert forced.entry["onnx"]["sha256"] == donor["onnx"]["sha256"]


def test_an_export_changed_since_its_build_is_not_taken(tiny_engines: Path, tmp_path: Path) -> None:
    out = tmp_path / "eng"
    shutil.copytree(tiny_engines, out)
    changed = out / "depth_tiny_128x256_b1_onnxruntime_fp32.onnx"
    changed.write_bytes(changed.read_bytes() + b"\0")
    steps: list[str] = []
    req = BuildRequest(model="depth_tiny", height=128, width=256, backend="torch")
    built = build_one(req, out, verify_samples=0, progress=steps.append)
    assert "exporting ONNX" in steps and built.entry["onnx"]["reused_from"] is None


def test_export_key_follows_only_what_shapes_the_export() -> None:
    from edge.build_key import export_key, tool_versions

    versions = tool_versions()
    assert "onnxscript" in versions  # the exporter's graph rewrites depend on it
    random0 = {"sha256": None, "source": "random-init(seed=0)"}

    def key(weights: dict = random0, config: dict | None = None, tools: dict = versions, **request) -> str:
        req = BuildRequest(**({"model": "depth_tiny", "height": 64, "width": 128} | request))
        return export_key(req, config or {"max_depth": 80.0}, weights, tools)

    base = key()
    shared = [
        key(backend="torch"),
        key(precision="int8", calib_data="synthetic://", calib_frames=8),
        key(backend="tensorrt", precision="fp16", workspace_mb=512),  # no plugin library: standard ops
        key(tools=versions | {"onnxruntime": "0.1", "python": "3.99"}),
    ]
    assert shared == [base] * len(shared)
    others = [
        key(height=128),
        key(batch=2),
        key(opset=17),
        key(model="panoptic_fpn_tiny"),
        key(config={"max_depth": 50.0}),
        key(weights={"sha256": None, "source": "random-init(seed=1)"}),
        key(weights={"sha256": "ab" * 32, "source": "w.pth"}),
        key(backend="tensorrt", plugin_libraries=(Path("libedge_roi_align.so"),)),  # the fused node
        key(tools=versions | {"onnxscript": "0.0.1"}),
        key(tools=versions | {"torch": "0.0.1"}),
    ]
    assert len({base, *others}) == len(others) + 1


@pytest.mark.parametrize("text,expected", [("256x512", (256, 512)), (" 512X1024 ", (512, 1024))])
def test_parse_size(text: str, expected: tuple[int, int]) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize(
    "text,match", [("256", "HEIGHTxWIDTH"), ("axb", "HEIGHTxWIDTH"), ("250x512", "multiples of 32")]
)
def test_bad_size(text: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        parse_size(text)


def test_request_validation(tmp_path: Path) -> None:
    with pytest.raises(UnknownModelError):
        BuildRequest(model="resnet9000", height=64, width=64).validate()
    with pytest.raises(ConfigError, match="precision 'fp16' is not supported by the onnxruntime"):
        BuildRequest(model="depth_tiny", height=64, width=64, precision="fp16").validate()
    with pytest.raises(ConfigError, match="int8 needs calibration frames"):
        BuildRequest(model="depth_tiny", height=64, width=64, precision="int8").validate()
    with pytest.raises(BackendUnavailableError, match="TensorRT"):
        BuildRequest(model="depth_tiny", height=64, width=64, backend="tensorrt").validate()
    with pytest.raises(ConfigError, match="checkpoint for depth_tiny not found"):
        BuildRequest(model="depth_tiny", height=64, width=64, checkpoint=tmp_path / "x.pth").validate()


def test_partial_checkpoint_fails_and_leaves_manifest_untouched(tmp_path: Path) -> None:
    sd = create_model("depth_tiny").state_dict()
    del sd["decoder.decoder.0.conv.conv.weight"]
    torch.save(sd, tmp_path / "partial.pth")
    out = tmp_path / "eng"
    with pytest.raises(CheckpointError, match="missing keys: decoder.decoder.0.conv.conv.weight"):
        build_one(
            BuildRequest(model="depth_tiny", height=64, width=128, checkpoint=tmp_path / "partial.pth"), out
        )
    assert not (out / "manifest.json").exists()
    assert [p.name for p in out.iterdir() if not p.name.startswith(".build")] == []


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, str(ROOT / "build_engines.py"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


@pytest.mark.parametrize(
    "args,message",
    [
        (["--models", "nope"], "error: unknown model 'nope'; known models:"),
        (["--size", "100x200"], "error: input size 100x200 is not supported"),
        (["--size", "big"], "error: --size 'big' is not HEIGHTxWIDTH"),
        (
            ["--models", "depth_tiny", "--checkpoint", "depth_tiny=missing.pth"],
            "checkpoint for depth_tiny not found",
        ),
        (["--models", "depth_tiny", "--checkpoint", "nomodel"], "is not MODEL=PATH"),
    ],
)
def test_cli_errors_are_one_clear_line(tmp_path: Path, args: list[str], message: str) -> None:
    proc = run_cli(*args, "--out", str(tmp_path / "eng"), cwd=tmp_path)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "eng" / "manifest.json").exists()


def test_cli_unreadable_checkpoint(tmp_path: Path) -> None:
    (tmp_path / "junk.pth").write_text("junk")
    proc = run_cli(
        "--models",
        "depth_tiny",
        "--size",
        "64x128",
        "--checkpoint",
        "depth_tiny=junk.pth",
        "--out",
        "eng",
        cwd=tmp_path,
    )
    assert proc.returncode == 2 and "is not a torch weights file: it starts with b'junk'" in proc.stderr


def test_a_model_built_with_random_weights_unasked_is_said(tmp_path: Path) -> None:
    """depth_r18 has no weights in edge: without --checkpoint its engine would time like a
    trained one and find nothing, which no run says. depth_tiny has edge's own."""
    from edge.cli_build import build_parser, random_weight_warnings, requests_from_args

    def warnings(*argv: str) -> list[str]:
        args = build_parser().parse_args([*argv, "--size", "64x128", "--out", str(tmp_path / "e")])
        return random_weight_warnings(requests_from_args(args), asked=args.random_weights)

    (said,) = warnings("--models", "depth_r18", "depth_tiny")
    assert said == (
        "warning: depth_r18 has no --checkpoint and edge bundles no weights for it: it is built with random "
        "weights (seed 0), fine for timing but finding nothing; give --checkpoint depth_r18=PATH, or "
        "--random-weights to mean it"
    )
    assert warnings("--models", "depth_r18", "--random-weights") == []
    torch.save(create_model("depth_r18").state_dict(), tmp_path / "r18.pth")
    assert warnings("--models", "depth_r18", "--checkpoint", f"depth_r18={tmp_path / 'r18.pth'}") == []
    if importlib.util.find_spec("tensorrt") is None:
        # before the build begins: here it fails at once, TensorRT being absent
        proc = run_cli(
            "--models", "depth_r18", "--backend", "tensorrt", "--out", "eng", "--quiet", cwd=tmp_path
        )
        assert proc.returncode == 2 and proc.stderr.startswith(said + "\nerror: TensorRT is not installed")


def test_cli_builds_and_reports(tmp_path: Path) -> None:
    proc = run_cli("--models", "depth_tiny", "--size", "64x128", "--out", "eng", "--quiet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "depth_tiny_64x128_b1_onnxruntime_fp32: built, check passed" in proc.stdout
    assert "warning" not in proc.stderr  # edge's own weights
    data = json.loads((tmp_path / "eng" / "manifest.json").read_text())
    assert data["format"] == 1 and len(data["engines"]) == 1
    again = run_cli("--models", "depth_tiny", "--size", "64x128", "--out", "eng", "--quiet", cwd=tmp_path)
    assert "up to date" in again.stdout


def test_what_a_tensorrt_build_plan_noted_is_shown_once() -> None:
    """A TensorRT entry as build_engine records it (TensorRT cannot run here): the plan's
    notes are printed when the engine is built, not again while it is up to date."""
    from edge.backends.tensorrt import TrtBuildOptions, plan_build
    from edge.build import BuildResult
    from edge.cli_build import result_lines

    plan = plan_build("10.3.0", TrtBuildOptions(precision="int8", dla_core=0, gpu_fallback=False))
    req = BuildRequest(model="depth_tiny", height=64, width=128, backend="tensorrt", precision="int8")
    entry = {
        "artifact": {"path": "d.engine"},
        "onnx": {"path": "d.onnx"},
        "build_notes": plan.notes,
        "lint": {"trt10": {"errors": 0, "warnings": 2}},
    }
    built = result_lines(BuildResult(req, entry, rebuilt=True), Path("eng"))
    assert built[0] == f"{req.engine_id}: built, not checked -> {Path('eng') / 'd.engine'}"
    assert "  note: no GPU fallback: a layer DLA cannot run fails the build" in built
    assert any(line.startswith("  note: TensorRT 10.3.0's ONNX parser cannot adjust") for line in built)
    assert built[-1].startswith("  TensorRT lint (trt10): 0 errors, 2 warnings; details: edge lint")
    again = result_lines(BuildResult(req, entry, rebuilt=False), Path("eng"))
    assert again[0].startswith(f"{req.engine_id}: up to date") and not any("note:" in x for x in again)


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_during_a_build_leaves_nothing_half_written(tmp_path: Path, sig: int, code: int) -> None:
    out = tmp_path / "engines"
    # the quicker export first: the first file is written sooner
    cmd = [sys.executable, str(ROOT / "build_engines.py"), "--models", "depth_tiny", "panoptic_fpn_tiny"]
    cmd += ["--size", "128x256", "--out", str(out), "--random-weights"]
    # a file is being written: interrupt it there
    status, _, err = signal_when(cmd, lambda: bool(list(out.glob(".*.tmp"))), sig=sig)
    assert status == code, err
    assert "Traceback" not in err and "nothing half-written" in err
    assert not list(out.glob(".*.tmp")), "temporary files are removed"
    manifest = out / "manifest.json"
    if manifest.exists():  # whatever the manifest lists is complete and intact
        for entry in json.loads(manifest.read_text())["engines"].values():
            artifact = out / entry["artifact"]["path"]
            assert artifact.is_file() and sha256_file(artifact) == entry["artifact"]["sha256"]


def test_code_sources_follow_the_request() -> None:
    from edge.build_key import code_sources

    fp32 = {
        p.relative_to(ROOT).as_posix()
        for p in code_sources(BuildRequest(model="depth_tiny", height=64, width=64))
    }
    int8 = {
        p.relative_to(ROOT).as_posix()
        for p in code_sources(
            BuildRequest(model="depth_tiny", height=64, width=64, precision="int8", calib_data="synthetic://")
        )
    }
    assert {"edge/models/depth.py", "edge/export/onnx.py", "plugins/roi_align/torch_op.py"} <= fp32
    assert "edge/backends/onnxruntime.py" in fp32 and "edge/backends/torch.py" not in fp32
    # an upgrade of the calibration code rebuilds INT8 engines, and only those
    assert not any(p.startswith("calib/") for p in fp32)
    assert {"calib/ranges.py", "calib/quantize.py", "calib/sensitivity.py"} <= int8


def test_code_digest_changes_with_any_source(tmp_path: Path) -> None:
    from edge.build_key import code_digest

    for name in ("a.py", "b.py"):
        (tmp_path / name).write_text("x = 1\n")
    files = sorted(tmp_path.glob("*.py"))
    before = code_digest(files)
    assert code_digest(files) == before
    (tmp_path / "b.py").write_text("x = 2\n")
    assert code_digest(files) != before
    assert code_digest(files[:1]) != code_digest(files)
