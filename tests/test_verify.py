"""verify_engine: the build's accuracy check, on a real tiny ONNX Runtime engine."""

from __future__ import annotations

from pathlib import Path

from edge.models.zoo import create_model
from edge.verify import verify_engine
from tests.conftest import TEST_SIZE


def _artifact(engines: Path) -> Path:
    return engines / f"depth_tiny_{TEST_SIZE[0]}x{TEST_SIZE[1]}_b1_onnxruntime_fp32.ort.onnx"


def test_float_check_passes_for_its_model_and_fails_for_another(tiny_engines: Path) -> None:
    shape = (1, 3, *TEST_SIZE)
    same = verify_engine(
        create_model("depth_tiny", seed=0),
        _artifact(tiny_engines),
        backend="onnxruntime",
        shape=shape,
        samples=2,
    )
    assert same["passed"] is True and same["samples"] == len(same["per_sample"]) == 2
    assert same["reference"] == "torch eager (CPU)"
    # other weights: the same graph, different numbers; the check must notice
    other = verify_engine(
        create_model("depth_tiny", seed=1),
        _artifact(tiny_engines),
        backend="onnxruntime",
        shape=shape,
        samples=1,
    )
    assert other["passed"] is False


def test_frames_from_a_source_use_the_quantized_comparison(tiny_engines: Path) -> None:
    shape = (1, 3, *TEST_SIZE)
    got = verify_engine(
        create_model("depth_tiny", seed=0),
        _artifact(tiny_engines),
        backend="onnxruntime",
        shape=shape,
        samples=1,
        frames_from=f"synthetic://?size={TEST_SIZE[0]}x{TEST_SIZE[1]}",
        frames_seed=3,
    )
    assert got["reference"] == "torch eager fp32 (CPU)" and "(seed 3, stretch)" in got["inputs"]
    # the float engine against its own model: far above any INT8 budget
    (sample,) = got["per_sample"]
    snrs = [v["snr_db"] for v in sample.values() if isinstance(v, dict) and "snr_db" in v]
    assert got["passed"] is True and snrs and min(snrs) > 60
