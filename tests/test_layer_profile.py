from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge.errors import ConfigError
from edge.layer_profile import profile_engine, profile_engines, read_ort_profile
from edge.schemas import check_document
from tests.conftest import ROOT, TEST_SIZE, engines_of_kind, strict_json


def run(ts: float, dur: float) -> dict[str, Any]:
    return {"cat": "Session", "name": "model_run", "ts": ts, "dur": dur}


def node(name: str, op: str, ts: float, dur: float) -> dict[str, Any]:
    args = {"op_name": op, "provider": "CPUExecutionProvider"}
    return {"cat": "Node", "name": f"{name}_kernel_time", "ts": ts, "dur": dur, "args": args}


def test_node_times_are_summed_by_node_and_operator_leaving_out_the_warm_up() -> None:
    events = [
        {"cat": "Session", "name": "session_initialization", "ts": 0, "dur": 50},
        run(100, 1000),  # the warm-up: its nodes left out
        node("conv_a", "Conv", 110, 900),
        run(2000, 400),
        node("conv_a", "Conv", 2010, 200),
        node("conv_b", "Conv", 2210, 100),
        node("nms", "NonMaxSuppression", 2310, 60),
        run(3000, 600),
        node("conv_a", "Conv", 3010, 300),
        node("conv_b", "Conv", 3310, 100),
        node("nms", "NonMaxSuppression", 3410, 140),
    ]
    profile = read_ort_profile(events, warmup=1)
    assert profile.runs_us == [400.0, 600.0]
    assert {n: (t.total_us, t.calls) for n, t in profile.nodes.items()} == {
        "conv_a": (500.0, 2),
        "conv_b": (200.0, 2),
        "nms": (200.0, 2),
    }
    assert profile.by_op() == [("Conv", 700.0, 2), ("NonMaxSuppression", 200.0, 1)]
    out = profile.as_dict(top=2)
    assert out["run_ms"] == {"mean": 0.5, "p50": 0.5} and out["nodes_ms"] == pytest.approx(0.45)
    assert out["by_op"][0] == {"op": "Conv", "ms": 0.35, "share": pytest.approx(7 / 9), "nodes": 2}
    assert [(n["name"], n["ms"]) for n in out["slowest_nodes"]] == [("conv_a", 0.25), ("conv_b", 0.1)]
    assert out["node_count"] == 3


def test_no_run_after_the_warm_up_gives_an_empty_profile() -> None:
    profile = read_ort_profile([run(0, 10), node("a", "Conv", 1, 5)], warmup=1)
    assert profile.frames == 0 and profile.nodes == {}
    assert profile.as_dict(top=3)["run_ms"] == {"mean": None, "p50": None}


def test_a_real_engine_is_timed_node_by_node_within_its_runs(
    tiny_engines: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = json.loads((tiny_engines / "manifest.json").read_text())["engines"]
    depth = next(e for e in manifest.values() if e["kind"] == "depth" and e["backend"] == "onnxruntime")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where ONNX Runtime's own file goes
    rng = np.random.default_rng(0)
    inputs = [rng.uniform(0, 255, (1, 3, *TEST_SIZE)).astype(np.float32) for _ in range(3)]
    profile = profile_engine(tiny_engines / depth["artifact"]["path"], inputs, warmup=2, threads=1)
    assert profile.frames == 3 and all(t.calls == 3 for t in profile.nodes.values())
    ops = {op for op, _, _ in profile.by_op()}
    assert "Conv" in ops and profile.by_op()[0][0] == "Conv"
    # one thread, one node at a time: the nodes' times fit inside the runs they ran in
    assert sum(t.total_us for t in profile.nodes.values()) <= sum(profile.runs_us)
    assert list(tmp_path.iterdir()) == [], "ONNX Runtime's profile file is removed"


def test_frames_and_kinds_given_wrong_are_refused(tiny_engines: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="frames must be >= 1"):
        profile_engines("synthetic://", engines=tiny_engines, frames=0)
    with pytest.raises(ConfigError, match="expected panoptic and/or depth"):
        profile_engines("synthetic://", engines=tiny_engines, kinds=("semantic",))
    depth = engines_of_kind(tiny_engines, "depth", tmp_path / "depth")
    with pytest.raises(ConfigError, match="holds no panoptic engine for onnxruntime to profile"):
        profile_engines("synthetic://", engines=depth, kinds=("panoptic",), frames=1)


def test_a_folder_without_tensorrt_engines_says_which_it_has(tiny_engines: Path) -> None:
    from edge.errors import ManifestError

    with pytest.raises(ManifestError, match="lists no tensorrt panoptic or depth engine; it lists: depth"):
        profile_engines("synthetic://", engines=tiny_engines, backend="tensorrt", frames=1)
    with pytest.raises(ConfigError, match="not 'torch''s"):
        profile_engines("synthetic://", engines=tiny_engines, backend="torch", frames=1)


@pytest.mark.tensorrt
@pytest.mark.skipif(
    importlib.util.find_spec("tensorrt") is None,
    reason="TensorRT is not installed (it cannot be installed here)",
)
def test_a_tensorrt_engine_is_timed_layer_by_layer(tmp_path: Path) -> None:
    from edge.build import BuildRequest, build_all

    req = BuildRequest(model="depth_tiny", height=TEST_SIZE[0], width=TEST_SIZE[1], backend="tensorrt")
    build_all([req], tmp_path, show_progress=False)
    report = profile_engines("synthetic://", engines=tmp_path, backend="tensorrt", frames=3, warmup=1)
    depth = report["engines"]["depth"]
    assert depth["frames"] == 3 and depth["node_count"] > 0 and depth["by_op"] == []
    assert 0 < depth["nodes_ms"] <= 1.1 * depth["run_ms"]["mean"]  # the layers inside the runs' events
    assert check_document("profile", json.dumps(report)) is None


def test_edge_profile_prints_each_engines_operators_and_nodes(tiny_engines: Path, tmp_path: Path) -> None:
    base = [sys.executable, "-m", "edge.cli", "profile", "--engines", str(tiny_engines), "--frames", "2"]
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    shown = subprocess.run([*base, "--top", "3"], capture_output=True, text=True, env=env, timeout=300)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].startswith("panoptic: panoptic_fpn_tiny onnxruntime fp32") and "ms a frame" in lines[0]
    assert any(line.startswith("depth: depth_tiny") for line in lines)
    assert sum("by operator:" in line for line in lines) == 2 and len(lines) == 2 * (3 + 3)
    printed = subprocess.run(
        [*base, "--kind", "depth", "--warmup", "0", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert printed.returncode == 0, printed.stderr
    report = strict_json(printed.stdout)
    assert list(report["engines"]) == ["depth"] and report["warmup"] == 0
    assert report["engines"]["depth"]["frames"] == 2
    assert check_document("profile", printed.stdout) is None
