"""edge engines: a real engines folder, then the same folder damaged in each way it lists."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from edge.cli import main
from edge.inventory import inventory
from tests.conftest import TEST_SIZE


@pytest.fixture
def engines(tiny_engines: Path, tmp_path: Path) -> Path:
    root = tmp_path / "engines"
    shutil.copytree(tiny_engines, root)
    return root


def test_lists_each_engine_and_that_it_runs_here(engines: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = inventory(engines, verify_hashes=True)
    size = f"{TEST_SIZE[0]}x{TEST_SIZE[1]}"
    assert sorted((r["model"], r["kind"], r["size"]) for r in rows) == [
        ("depth_tiny", "depth", size),
        ("panoptic_fpn_tiny", "panoptic", size),
    ]
    assert all(r["files"] == "ok" and r["check"] == "passed" and r["runs_here"] == "yes" for r in rows)
    assert all(r["mb"] > 0.1 for r in rows)
    assert all(r["current"] == "up to date" for r in rows)  # what edge build would make of them now
    assert main(["engines", str(engines)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:6] == ["model", "kind", "backend", "precision", "size", "weights"]
    assert any(line.startswith("depth_tiny") and f"fp32       {size}" in line for line in out)
    assert main(["engines", str(engines), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(json.dumps(inventory(engines)))
    # --engines DIR, as every other command takes the folder, lists the same
    assert main(["engines", "--engines", str(engines)]) == 0
    assert capsys.readouterr().out.splitlines() == out
    assert main(["engines", str(engines), "--engines", str(engines / "other")]) == 2
    assert "error: two engines directories given: " in capsys.readouterr().err


def test_verify_reads_each_engines_files_once(engines: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--verify's files and current columns both need the files' hashes: a 180 MB engine
    was read twice for them."""
    import edge.manifest
    from edge.util.fs import sha256_file

    read: list[str] = []

    def counted(path: Path) -> str:
        read.append(Path(path).name)
        return sha256_file(path)

    monkeypatch.setattr(edge.manifest, "sha256_file", counted)
    rows = inventory(engines, verify_hashes=True)
    assert all(r["files"] == "ok" and r["current"] == "up to date" for r in rows)
    manifest = json.loads((engines / "manifest.json").read_text())
    files = [Path(e[key]["path"]).name for e in manifest["engines"].values() for key in ("onnx", "artifact")]
    assert sorted(read) == sorted(files)


def test_damage_and_misfits_are_named(engines: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = json.loads((engines / "manifest.json").read_text())
    depth_id = next(k for k, e in manifest["engines"].items() if e["model"] == "depth_tiny")
    pan_id = next(k for k, e in manifest["engines"].items() if e["model"] == "panoptic_fpn_tiny")
    # an engine from a newer ONNX Runtime, and a TensorRT engine on a machine without TensorRT
    manifest["engines"][pan_id]["versions"]["onnxruntime"] = "99.1.0"
    trt = json.loads(json.dumps(manifest["engines"][depth_id]))
    trt.update(id="depth_trt", backend="tensorrt", build_flags={})
    trt["versions"]["tensorrt"] = "10.3.0"
    manifest["engines"]["depth_trt"] = trt
    (engines / "manifest.json").write_text(json.dumps(manifest))
    artifact = engines / manifest["engines"][depth_id]["artifact"]["path"]
    artifact.write_bytes(artifact.read_bytes() + b"\0")

    rows = {r["id"]: r for r in inventory(engines, verify_hashes=True)}
    assert rows[pan_id]["runs_here"].startswith("built with onnxruntime 99.1.0, this machine has")
    assert rows["depth_trt"]["runs_here"].startswith("TensorRT is not installed")
    assert rows[depth_id]["files"] == "changed"
    assert rows[depth_id]["current"] == "would build: its files are missing or changed since its build"
    assert rows["depth_trt"]["current"].startswith("cannot tell here: ")
    # without hashing, present is all it knows
    assert {r["id"]: r["files"] for r in inventory(engines)}[depth_id] == "ok"
    assert main(["engines", str(engines), "--verify"]) == 1
    assert "changed" in capsys.readouterr().out
    artifact.unlink()
    assert {r["id"]: r["files"] for r in inventory(engines)}[depth_id] == "missing"
    assert main(["engines", str(engines / "nowhere")]) == 2
    assert "no manifest.json in" in capsys.readouterr().err


def test_verify_says_which_engines_edge_build_would_make_again_and_why(
    engines: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An engine an older ONNX Runtime built (its manifest entry as that build wrote it): not
    current, with the reason, which edge build --dry-run gives too."""
    from edge.build_key import tool_versions

    manifest = json.loads((engines / "manifest.json").read_text())
    depth_id = next(k for k, e in manifest["engines"].items() if e["model"] == "depth_tiny")
    entry = manifest["engines"][depth_id]
    entry["versions"]["onnxruntime"], entry["fingerprint"] = "1.0.0", "an older build's"
    (engines / "manifest.json").write_text(json.dumps(manifest))
    why = f"would build: built with onnxruntime 1.0.0 -> {tool_versions()['onnxruntime']}"
    rows = {r["id"]: r for r in inventory(engines, verify_hashes=True)}
    assert rows[depth_id]["current"] == why
    assert {r["current"] for r in inventory(engines)} == {None}  # not without --verify (it imports torch)
    assert main(["engines", str(engines), "--verify"]) == 0  # it still runs: not a failure
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[-4:] == ["files", "current", "runs", "here"]
    current = {line.split()[0]: line.split()[-2] for line in out[1:3]}  # the cell before "runs here"'s yes
    assert current == {"depth_tiny": "no", "panoptic_fpn_tiny": "yes"}
    assert f"note: {depth_id}: {why}" in out
    size = f"{TEST_SIZE[0]}x{TEST_SIZE[1]}"
    argv = ["build", "--models", "depth_tiny", "--size", size, "--random-weights", "--out", str(engines)]
    assert main([*argv, "--dry-run"]) == 0
    assert capsys.readouterr().out == f"{depth_id}: {why}\n"


def test_a_tensorrt_engine_without_its_plugin_library_is_named(engines: Path) -> None:
    from edge.backends.tensorrt_folder import install_plugin_libraries

    manifest = json.loads((engines / "manifest.json").read_text())
    depth_id = next(k for k, e in manifest["engines"].items() if e["model"] == "depth_tiny")
    library = engines.parent / "libedge_roi_align_plugin.so"
    library.write_bytes(b"\x7fELF plugin")
    trt = json.loads(json.dumps(manifest["engines"][depth_id]))
    trt.update(id="depth_trt", backend="tensorrt", build_flags={})
    trt["plugins"] = install_plugin_libraries((library,), engines)  # what a --plugin-lib build records
    manifest["engines"]["depth_trt"] = trt
    (engines / "manifest.json").write_text(json.dumps(manifest))

    def files() -> str:
        return {r["id"]: r["files"] for r in inventory(engines, verify_hashes=True)}["depth_trt"]

    assert files() == "ok"
    (engines / "plugins" / library.name).write_bytes(b"\x7fELF another plugin")
    assert files() == "changed"
    (engines / "plugins" / library.name).unlink()
    assert files() == "missing"


def test_says_where_each_engines_weights_came_from(
    engines: Path, demo_engines: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Random weights time like trained ones and find nothing: the column tells them apart."""
    assert {r["weights"] for r in inventory(engines)} == {"random"}  # built with no checkpoint
    assert {r["weights"] for r in inventory(demo_engines)} == {"edge's"}  # the bundled demo weights
    manifest = json.loads((engines / "manifest.json").read_text())
    for entry in manifest["engines"].values():
        entry["weights"]["source"] = "/data/checkpoints/depth_run7.pth"
    (engines / "manifest.json").write_text(json.dumps(manifest))
    assert {r["weights"] for r in inventory(engines)} == {"depth_run7.pth"}
    assert main(["engines", str(engines)]) == 0
    assert all(" depth_run7.pth " in line for line in capsys.readouterr().out.splitlines()[1:])


def test_a_poorly_calibrated_int8_engine_is_noted_with_the_command_that_measures_it(
    engines: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The listing keeps what the build warned of: an INT8 engine whose calibration scored
    poorly on its held-out frames gets a note after the table, with its score and the edge
    compare that measures it on the deployer's frames; a well calibrated one gets none."""
    manifest = json.loads((engines / "manifest.json").read_text())
    ids = {e["model"]: k for k, e in manifest["engines"].items()}
    for model, score in (("depth_tiny", 24.4), ("panoptic_fpn_tiny", 31.0)):
        entry = manifest["engines"][ids[model]]
        judged = "depth" if model == "depth_tiny" else "sem_logits"
        entry["precision"] = "int8"  # as an INT8 build records its calibration
        entry["calibration"] = {"held_out_indices": [5, 8, 13, 21], "held_out_scores_db": {judged: score}}
    (engines / "manifest.json").write_text(json.dumps(manifest))
    rows = {r["model"]: r for r in inventory(engines)}
    assert rows["depth_tiny"]["poorly_calibrated"] == ["depth"]
    assert rows["depth_tiny"]["held_out_scores_db"] == {"depth": 24.4}
    assert rows["panoptic_fpn_tiny"]["poorly_calibrated"] == []
    assert main(["engines", str(engines)]) == 0  # a warning, not a failure
    out = capsys.readouterr().out.splitlines()
    size = f"{TEST_SIZE[0]}x{TEST_SIZE[1]}"
    assert out[1:3] and all("int8 (calibrated)" in line for line in out[1:3])
    assert out[3:] == [
        f"note: {ids['depth_tiny']}'s calibration scores depth 24.4 dB (6.0% off) against the float model on "
        "its held-out frames (poor: depth under 26 dB (5% off)); how far it is from FP32 on your own frames: "
        f"edge compare FRAMES --engines {engines} --backend onnxruntime --size {size} --precision int8 "
        "--reference-precision fp32"
    ]
