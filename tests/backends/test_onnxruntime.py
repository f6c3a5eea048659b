"""Parity of real ONNX Runtime sessions with the torch reference, and input checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from edge.backends import open_engine
from edge.backends.onnxruntime import OnnxRuntimeEngine
from edge.backends.torch import TorchEngine
from edge.errors import BackendError, EngineInputError
from edge.export import export_onnx
from edge.models import create_model
from edge.verify import match_detections, sample_images
from tests.conftest import informative_model

SIZE = (128, 256)


def parity_pair(name: str, tmp_path: Path) -> tuple[TorchEngine, OnnxRuntimeEngine]:
    model = informative_model(name)
    path = export_onnx(model, tmp_path / f"{name}.onnx", height=SIZE[0], width=SIZE[1])
    return TorchEngine(model, input_shape=(1, 3, *SIZE)), OnnxRuntimeEngine(path)


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(a).max())


def test_panoptic_parity(tmp_path: Path) -> None:
    ref, ort = parity_pair("panoptic_fpn_tiny", tmp_path)
    total = 0
    for image in sample_images(3, (1, 3, *SIZE), seed=11):
        r, o = ref.infer({"image": image}), ort.infer({"image": image})
        assert rel_err(r["sem_logits"], o["sem_logits"]) <= 1e-3
        assert float((r["sem_labels"] == o["sem_labels"]).mean()) >= 0.999
        d = match_detections(r, o, box_px=0.5)
        assert d["ref_detections"] == d["out_detections"] == d["matched"]
        n = d["ref_detections"]
        np.testing.assert_array_equal(r["labels"][0, :n], o["labels"][0, :n])
        np.testing.assert_allclose(r["boxes"][0, :n], o["boxes"][0, :n], atol=0.5)
        np.testing.assert_allclose(r["masks"][0, :n], o["masks"][0, :n], atol=1e-3)
        total += n
    assert total > 0, "the check needs detections to compare"


def test_depth_parity(tmp_path: Path) -> None:
    ref, ort = parity_pair("depth_tiny", tmp_path)
    for image in sample_images(2, (1, 3, *SIZE), seed=12):
        r, o = ref.infer({"image": image}), ort.infer({"image": image})
        assert rel_err(r["depth"], o["depth"]) <= 1e-3
        assert rel_err(r["disparity"], o["disparity"]) <= 1e-3


def test_batch_two_export_runs(tmp_path: Path) -> None:
    model = create_model("depth_tiny")
    path = export_onnx(model, tmp_path / "b2.onnx", height=64, width=128, batch=2)
    with OnnxRuntimeEngine(path, intra_op_threads=1) as engine:
        x = np.random.default_rng(0).uniform(0, 255, (2, 3, 64, 128)).astype(np.float32)
        out = engine.infer({"image": x})
        with torch.no_grad():
            ref = model(torch.from_numpy(x))["depth"].numpy()
        assert rel_err(ref, out["depth"]) <= 1e-3


def test_engine_specs_and_input_errors(tiny_engines: Path) -> None:
    artifact = next(tiny_engines.glob("depth_tiny_*.ort.onnx"))
    with open_engine(artifact, backend="onnxruntime") as engine:
        assert [s.name for s in engine.inputs] == ["image"]
        assert engine.inputs[0].shape == (1, 3, 128, 256)
        assert [s.name for s in engine.outputs] == ["depth", "disparity"]
        with pytest.raises(
            EngineInputError, match=r"has shape \(1, 3, 64, 64\), expected \(1, 3, 128, 256\)"
        ):
            engine.infer({"image": np.zeros((1, 3, 64, 64), np.float32)})
        with pytest.raises(EngineInputError, match="missing: \\['image'\\]"):
            engine.infer({"img": np.zeros((1, 3, 128, 256), np.float32)})
        with pytest.raises(EngineInputError, match="dtype complex64"):
            engine.infer({"image": np.zeros((1, 3, 128, 256), np.complex64)})
        # float64 input is converted, not refused
        out = engine.infer({"image": np.zeros((1, 3, 128, 256), np.float64)})
        assert out["depth"].dtype == np.float32


def test_corrupt_engine_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.ort.onnx"
    bad.write_bytes(b"\x00garbage")
    with pytest.raises(BackendError, match="cannot load"):
        OnnxRuntimeEngine(bad)
    with pytest.raises(BackendError, match="does not exist"):
        OnnxRuntimeEngine(tmp_path / "nothing.onnx")


def test_tensorrt_backend_reports_unavailable(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="TensorRT"):
        open_engine(tmp_path / "x.engine", backend="tensorrt")
