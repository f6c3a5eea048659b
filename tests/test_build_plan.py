"""edge build --dry-run (edge.build_plan): whether each engine asked for is up to date in its
folder, or why it would be built, said from a real build's folder, which it leaves as it was."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from edge.build import BuildRequest
from edge.build_key import tool_versions
from edge.build_plan import UP_TO_DATE, plan
from edge.cli import main
from edge.models.zoo import create_model

DEPTH = "depth_tiny_128x256_b1_onnxruntime_fp32"


def snapshot(folder: Path) -> dict[str, tuple[int, bytes]]:
    return {
        str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.read_bytes())
        for p in folder.rglob("*")
        if p.is_file()
    }


@pytest.fixture
def folder(tiny_engines: Path, tmp_path: Path) -> Path:
    out = tmp_path / "engines"
    shutil.copytree(tiny_engines, out)
    return out


def request(**kw: object) -> BuildRequest:
    return BuildRequest(**{"model": "depth_tiny", "height": 128, "width": 256, **kw})  # type: ignore[arg-type]


def rewrite_entry(folder: Path, **fields: object) -> None:
    """The manifest as an earlier build of the engine would have left it."""
    path = folder / "manifest.json"
    data = json.loads(path.read_text())
    data["engines"][DEPTH].update(fields)
    path.write_text(json.dumps(data))


def test_an_engine_built_by_this_edge_is_up_to_date_and_nothing_is_written(folder: Path) -> None:
    before = snapshot(folder)
    assert plan(request(), folder) == UP_TO_DATE
    assert plan(request(), folder, force=True) == "would build: --force"
    assert plan(request(height=64, width=128), folder) == "would build: not built yet"
    assert snapshot(folder) == before
    assert plan(request(), folder.parent / "none") == "would build: not built yet"
    assert not (folder.parent / "none").exists()


def test_why_an_engine_would_be_built_again(folder: Path, tmp_path: Path) -> None:
    artifact = folder / f"{DEPTH}.ort.onnx"
    artifact.write_bytes(artifact.read_bytes() + b"\0")
    assert plan(request(), folder) == "would build: its files are missing or changed since its build"

    onnxruntime = tool_versions()["onnxruntime"]
    versions = {**tool_versions(), "onnxruntime": "1.0.0", "python": "2.7"}  # python is no reason
    rewrite_entry(folder, versions=versions, fingerprint="an older build's")
    assert plan(request(), folder) == f"would build: built with onnxruntime 1.0.0 -> {onnxruntime}"

    ckpt = tmp_path / "w.pth"
    torch.save(create_model("depth_tiny", seed=3).state_dict(), ckpt)
    assert plan(request(checkpoint=ckpt), folder) == (
        f"would build: built with onnxruntime 1.0.0 -> {onnxruntime}; its weights changed "
        f"(random-init(seed=0) -> {ckpt})"
    )
    rewrite_entry(folder, versions=tool_versions())  # everything recorded the same, the key not
    assert plan(request(), folder) == (
        "would build: edge's code that builds it changed since, or a setting the manifest does not record"
    )


def test_edge_build_dry_run_says_each_engine_and_builds_nothing(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = snapshot(folder)
    argv = ["build", "--models", "panoptic_fpn_tiny", "depth_tiny", "--size", "128x256", "--random-weights"]
    assert main([*argv, "--out", str(folder), "--dry-run", "--quiet"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"panoptic_fpn_tiny_128x256_b1_onnxruntime_fp32: {UP_TO_DATE}",
        f"{DEPTH}: {UP_TO_DATE}",
    ]
    assert snapshot(folder) == before
    assert main([*argv, "--precision", "int8", "--out", str(folder), "--dry-run", "--quiet"]) == 2
    assert "--calib-data" in capsys.readouterr().err  # bad input is refused as the build refuses it
