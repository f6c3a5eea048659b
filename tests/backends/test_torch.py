"""Torch engine files: build, load (weights_only), refuse damaged ones, run in the pipeline."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from edge.backends import open_engine
from edge.backends.torch import TorchEngine, load_engine, save_artifact
from edge.build import BuildRequest, build_all
from edge.errors import BackendError, BackendUnavailableError, ConfigError, EngineInputError
from edge.manifest import Manifest
from edge.models.zoo import create_model
from edge.stream import run_stream
from tests.conftest import TEST_SIZE

SHAPE = (1, 3, 64, 128)
ENGINE_SHAPE = (1, 3, *TEST_SIZE)
SIZE = f"{TEST_SIZE[0]}x{TEST_SIZE[1]}"
PANOPTIC, DEPTH = (f"{m}_{SIZE}_b1_torch_fp32" for m in ("panoptic_fpn_tiny", "depth_tiny"))


@pytest.fixture(scope="module")
def torch_engines(tiny_engines: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny models' torch engines alone in a folder. They are built beside the session's
    ONNX Runtime engines, whose exports they take, and then the others are removed."""
    out = tmp_path_factory.mktemp("torch_engines")
    shutil.copytree(tiny_engines, out, dirs_exist_ok=True)
    reqs = [
        BuildRequest(model=m, height=TEST_SIZE[0], width=TEST_SIZE[1], backend="torch")
        for m in ("panoptic_fpn_tiny", "depth_tiny")
    ]
    build_all(reqs, out, show_progress=False)
    manifest = Manifest.load(out)
    for engine_id, entry in list(manifest.engines.items()):
        if entry["backend"] != "torch":
            for part in ("onnx", "artifact"):
                (out / entry[part]["path"]).unlink()
            del manifest.engines[engine_id]
    manifest.save()
    assert sorted(manifest.engines) == sorted((PANOPTIC, DEPTH))
    return out


def test_built_torch_engine_matches_the_model(torch_engines: Path) -> None:
    artifact = torch_engines / f"{DEPTH}.pt"
    assert artifact.is_file()
    image = np.random.default_rng(0).uniform(0, 255, ENGINE_SHAPE).astype(np.float32)
    want = TorchEngine(create_model("depth_tiny"), input_shape=ENGINE_SHAPE).infer({"image": image})
    with open_engine(artifact, backend="torch", threads=1) as engine:
        assert engine.inputs[0].shape == ENGINE_SHAPE
        got = engine.infer({"image": image})
        assert engine.last_device_ms is None  # CPU: no CUDA events
    for k in want:  # thread counts differ (1 vs default), so float sums may round differently
        np.testing.assert_allclose(got[k], want[k], rtol=1e-5, atol=1e-5)


def test_an_engine_with_its_norms_folded_gives_the_same_outputs(torch_engines: Path) -> None:
    """fold_norms folds the batch norms of the engine's model (a torch engine file loaded
    on CUDA does: fewer operations a forward); without it, as on the CPU and for verify's
    reference, the model stays as it is."""
    from edge.models.layers import FrozenBatchNorm2d

    image = np.random.default_rng(2).uniform(0, 255, ENGINE_SHAPE).astype(np.float32)
    model = create_model("depth_tiny")
    plain = TorchEngine(model, input_shape=ENGINE_SHAPE)
    assert any(isinstance(m, FrozenBatchNorm2d) for m in model.modules())
    want = plain.infer({"image": image})
    folded = TorchEngine(create_model("depth_tiny"), input_shape=ENGINE_SHAPE, fold_norms=True)
    assert not any(isinstance(m, FrozenBatchNorm2d) for m in folded.model.modules())
    got = folded.infer({"image": image})
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-5, atol=1e-5)
    with open_engine(torch_engines / f"{DEPTH}.pt", backend="torch", threads=1) as engine:  # the CPU
        assert any(isinstance(m, FrozenBatchNorm2d) for m in engine.model.modules())


def test_cpu_engine_runs_channels_last_with_the_same_outputs() -> None:
    """NHWC is the default on the CPU too (faster oneDNN convolutions); the panoptic model,
    whose RoIAlign then reads the maps without a copy, gives what NCHW gives."""
    image = np.random.default_rng(1).uniform(0, 255, SHAPE).astype(np.float32)
    model = create_model("panoptic_fpn_tiny", seed=0)
    nchw = TorchEngine(model, input_shape=SHAPE, threads=1, channels_last=False)
    want = nchw.infer({"image": image})
    nhwc = TorchEngine(model, input_shape=SHAPE, threads=1)
    conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert not conv.weight.is_contiguous()
    got = nhwc.infer({"image": image})
    assert set(got) == set(want)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-4, atol=1e-4, err_msg=k)


def test_damaged_or_foreign_torch_engine_is_refused(tmp_path: Path, torch_engines: Path) -> None:
    good = (torch_engines / f"{DEPTH}.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(good[: len(good) // 2])
    with pytest.raises(BackendError, match="cannot be read"):
        load_engine(tmp_path / "cut.pt")
    torch.save({"hello": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(BackendError, match="not an edge torch engine"):
        load_engine(tmp_path / "other.pt")
    with pytest.raises(BackendError, match="does not exist"):
        load_engine(tmp_path / "missing.pt")


def test_engine_from_another_config_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "e.pt"
    save_artifact(create_model("depth_tiny"), name="depth_tiny", input_shape=SHAPE, path=path)
    payload = torch.load(path, weights_only=True)
    payload["config"]["max_depth"] = 1234.0
    torch.save(payload, path)
    with pytest.raises(BackendError, match="another configuration"):
        load_engine(path)


def test_device_errors_are_clear() -> None:
    with pytest.raises(EngineInputError, match="not valid"):
        TorchEngine(create_model("depth_tiny"), input_shape=SHAPE, device="gpu0")
    with pytest.raises(EngineInputError, match="not supported"):
        TorchEngine(create_model("depth_tiny"), input_shape=SHAPE, device="meta")
    if not torch.cuda.is_available():
        with pytest.raises(BackendUnavailableError, match="sees no CUDA"):
            TorchEngine(create_model("depth_tiny"), input_shape=SHAPE, device="cuda")


def test_pipeline_runs_torch_engines(torch_engines: Path) -> None:
    tracker = run_stream(
        f"synthetic://?frames=3&size={SIZE}", engines=torch_engines, backend="torch", threads=1
    )
    s = tracker.summary()
    assert s["frames_out"] == 3
    assert {"panoptic", "depth"} <= set(s["stages_ms"])
    with pytest.raises(ConfigError, match="torch backend only"):
        run_stream("synthetic://?frames=1", engines=torch_engines, backend="onnxruntime", device="cuda")


def test_backend_auto_takes_the_fastest_the_folder_has(
    torch_engines: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Torch engines alone: torch. Torch with both kinds beside an ONNX Runtime depth engine:
    torch; depth alone on each: ONNX Runtime on a CPU, and on a CUDA machine torch on CUDA,
    past a TensorRT engine that does not fit (no TensorRT here). What fits nowhere names
    every backend tried."""
    import json

    import edge.stream.engines as engines_mod
    from edge.cli import main
    from edge.errors import ManifestError
    from edge.stream.engines import choose_backend

    cuda = "cuda" if torch.cuda.is_available() else "cpu"
    assert choose_backend(torch_engines) == ("torch", cuda)
    both = tmp_path / "both"
    shutil.copytree(torch_engines, both)
    # its export is the torch depth engine's
    build_all(
        [BuildRequest(model="depth_tiny", height=TEST_SIZE[0], width=TEST_SIZE[1])], both, show_progress=False
    )
    assert choose_backend(both) == ("torch", cuda)  # both kinds beat depth alone
    # a flag that no backend's engines answer: the one reason, the folder's engines listed once
    with pytest.raises(ManifestError) as refused:
        choose_backend(both, precision="int8")
    said = str(refused.value)
    assert re.match(
        re.escape(repr(str(both)))
        + r" holds no int8 engine for (onnxruntime or torch|torch or onnxruntime) \(it holds: ",
        said,
    )
    assert said.endswith(
        "run its fp32 ones with --precision fp32, or build int8 ones with edge build --precision int8 "
        "--calib-data URI"
    )
    assert said.count("depth depth_tiny torch fp32") == 1
    with pytest.raises(
        ManifestError, match=r"holds no engine at 64x64 for .*: run those at 128x256 with --size"
    ):
        choose_backend(both, size=(64, 64))
    with pytest.raises(
        ManifestError,
        match=r"no panoptic engine for 'depth_tiny' for .*; engines it lists for 'depth_tiny': depth ",
    ):
        choose_backend(both, panoptic="depth_tiny")
    # without the torch panoptic engine, each backend has depth alone: the faster one here
    manifest = json.loads((both / "manifest.json").read_text())
    del manifest["engines"][PANOPTIC]
    (both / "manifest.json").write_text(json.dumps(manifest))
    if not torch.cuda.is_available():
        assert choose_backend(both) == ("onnxruntime", None)
    assert choose_backend(both, device="cpu") == ("torch", "cpu")
    # a GPU machine's order, with a TensorRT engine this machine cannot run
    onnx_depth = next(e for e in manifest["engines"].values() if e["backend"] == "onnxruntime")
    manifest["engines"]["trt"] = {**onnx_depth, "id": "trt", "backend": "tensorrt", "built_at": "9999"}
    (both / "manifest.json").write_text(json.dumps(manifest))
    monkeypatch.setattr(engines_mod, "_cuda_here", lambda: "cuda-python")
    # a GPU only cuda-python sees (torch a CPU build): ONNX Runtime before torch on the CPU
    assert choose_backend(both) == ("onnxruntime", None)
    monkeypatch.setattr(engines_mod, "_cuda_here", lambda: "torch")
    assert choose_backend(both) == ("torch", "cuda")
    # refused for different reasons (an INT8 TensorRT engine that cannot run here, no INT8
    # engine for the others): each backend's is said
    manifest["engines"]["trt"]["precision"] = "int8"
    (both / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ManifestError) as refused:
        choose_backend(both, precision="int8")
    said = str(refused.value)
    assert said.startswith(
        f"none of the engines in {str(both)!r} fits (--backend auto tried tensorrt, torch, "
    )
    assert "; torch: " in said and "lists no torch int8 panoptic or depth engine" in said, said
    monkeypatch.undo()
    # the CLI's default is auto: these engines run without --backend
    summary = tmp_path / "s.json"
    args = ["run", f"synthetic://?frames=2&size={SIZE}", "--engines", str(torch_engines), "--threads", "1"]
    if torch.cuda.is_available():
        args += ["--device", "cpu"]
    assert main([*args, "--summary", str(summary)]) == 0
    assert json.loads(summary.read_text())["engines"]["depth"] == f"depth_tiny torch fp32 {SIZE}"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_engines_match_cpu_and_report_gpu_time(
    torch_engines: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # compare code, not TF32 rounding
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    image = np.random.default_rng(1).uniform(0, 255, ENGINE_SHAPE).astype(np.float32)
    for name in (f"{PANOPTIC}.pt", f"{DEPTH}.pt"):
        cpu = load_engine(torch_engines / name).infer({"image": image})
        gpu_engine = load_engine(torch_engines / name, device="cuda")
        # folded on CUDA (fewer operations a forward), as built on the CPU: the same outputs
        assert not any(type(m).__name__ == "FrozenBatchNorm2d" for m in gpu_engine.model.modules())
        gpu = gpu_engine.infer({"image": image})
        assert gpu_engine.last_device_ms is not None and gpu_engine.last_device_ms > 0
        for k, v in cpu.items():
            if v.dtype.kind == "f":
                np.testing.assert_allclose(gpu[k], v, rtol=1e-3, atol=1e-3, err_msg=f"{name}:{k}")
    tracker = run_stream(
        f"synthetic://?frames=4&size={SIZE}", engines=torch_engines, backend="torch", device="cuda"
    )
    stages = tracker.summary()["stages_ms"]
    assert stages["panoptic_gpu"]["count"] == 4 and stages["depth_gpu"]["count"] == 4
