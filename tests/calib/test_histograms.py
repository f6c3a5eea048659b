"""compute_ranges histograms several tensors at once (calib/histograms.py): the ranges,
and their order, are those of ONNX Runtime's own calibrator, which histograms one tensor
after another; the bytes in hand at once are bounded."""

from __future__ import annotations

import contextlib
import io
import itertools
import threading
from pathlib import Path

import numpy as np
import pytest

from calib import histograms, quantize
from calib.quantize import compute_ranges
from tests.conftest import TEST_SIZE


def _depth_tiny(engines: Path) -> Path:
    return engines / f"depth_tiny_{TEST_SIZE[0]}x{TEST_SIZE[1]}_b1_onnxruntime_fp32.onnx"


def _frames(n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    # outliers in some frames: later frames widen the histograms of earlier ones, so
    # ONNX Runtime's histogram merging is part of what is compared
    return [
        (rng.standard_normal((1, 3, *TEST_SIZE)) * (1 + 4 * (i % 2))).astype(np.float32) for i in range(n)
    ]


def _ort_one_tensor_at_a_time(model: Path, frames: list[np.ndarray], method: str, tmp: Path) -> dict:
    from onnxruntime.quantization.calibrate import create_calibrator

    calibrator = create_calibrator(
        str(model),
        op_types_to_calibrate=list(quantize.QUANTIZED_OPS),
        augmented_model_path=str(tmp / "augmented.onnx"),
        calibrate_method=quantize._method(method),
        extra_options=quantize._options(method, 99.99),
    )
    with contextlib.redirect_stdout(io.StringIO()):
        calibrator.collect_data(quantize._Reader(frames))
        data = calibrator.compute_data()
    return {
        name: tuple(float(np.asarray(v).reshape(-1)[0]) for v in td.range_value)
        for name, td in data.data.items()
    }


def _collecting(monkeypatch: pytest.MonkeyPatch) -> list:
    """The collectors compute_ranges makes, kept for the test to look at."""
    made: list = []

    def keep(calibrator):
        collector = histograms.threaded_histograms(calibrator)
        made.append(collector)
        return collector

    monkeypatch.setattr(quantize, "threaded_histograms", keep)
    return made


@pytest.mark.parametrize("method", ["entropy", "percentile"])
def test_threaded_histograms_give_onnx_runtimes_ranges(
    tiny_engines: Path, tmp_path: Path, method: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    model, frames = _depth_tiny(tiny_engines), _frames(4)
    expected = _ort_one_tensor_at_a_time(model, frames, method, tmp_path)

    from onnxruntime.quantization.calibrate import HistogramCollector

    workers: set[str] = set()
    calls = itertools.count()
    meet = threading.Barrier(2, timeout=20)  # the first two tensors wait for each other
    for name in ("collect_value", "collect_absolute_value"):  # entropy's, symmetric percentile's
        original = getattr(HistogramCollector, name)

        def recording(self, name_to_arr, original=original):
            workers.add(threading.current_thread().name)
            if next(calls) < 2:
                meet.wait()  # broken (an error) unless two tensors are in hand at once
            return original(self, name_to_arr)

        monkeypatch.setattr(HistogramCollector, name, recording)
    monkeypatch.setattr(histograms.os, "cpu_count", lambda: 4)
    made = _collecting(monkeypatch)
    got = compute_ranges(model, frames, method=method, percentile=99.99)
    assert got == expected  # every tensor, to the last bit
    assert list(got) == list(expected) and len(got) > 10  # in the same order
    assert workers and all(w.startswith("edge-histogram") for w in workers)
    assert made[0].budget.peak_holders > 1  # tensors were histogrammed at the same time


def test_the_bytes_in_hand_are_bounded(tiny_engines: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each tensor is copied twice while histogrammed: with room for one tensor's copies
    only, one tensor is histogrammed at a time, and the ranges do not change."""
    model, frames = _depth_tiny(tiny_engines), _frames(3)
    monkeypatch.setattr(histograms.os, "cpu_count", lambda: 4)
    made = _collecting(monkeypatch)
    free = compute_ranges(model, frames)
    monkeypatch.setattr(histograms, "BYTES_IN_FLIGHT", 1)
    bounded = compute_ranges(model, frames)
    assert bounded == free and list(bounded) == list(free)
    assert made[1].budget.peak_holders == 1 and made[1].budget.used == 0
    one_frame = np.zeros((1, 8, 4, 4), np.float32)
    assert histograms._copy_bytes([one_frame, one_frame]) == 2 * 2 * one_frame.nbytes


def test_one_core_or_minmax_keeps_onnx_runtimes_own_collector(monkeypatch: pytest.MonkeyPatch) -> None:
    from onnxruntime.quantization.calibrate import HistogramCalibrater, MinMaxCalibrater

    histogram = HistogramCalibrater.__new__(HistogramCalibrater)
    settings = dict(method="entropy", symmetric=True, num_bins=128, num_quantized_bins=128)
    for name, value in {**settings, "percentile": 99.9, "scenario": "same"}.items():
        setattr(histogram, name, value)
    monkeypatch.setattr(histograms.os, "cpu_count", lambda: 4)
    collector = histograms.threaded_histograms(histogram)
    assert collector is not None and collector.num_bins == 128 and collector.method == "entropy"
    assert histograms.threaded_histograms(MinMaxCalibrater.__new__(MinMaxCalibrater)) is None
    monkeypatch.setattr(histograms.os, "cpu_count", lambda: 1)
    assert histograms.threaded_histograms(histogram) is None
    assert histograms.histogram_workers() == 1
    monkeypatch.setattr(histograms.os, "cpu_count", lambda: 64)
    assert histograms.histogram_workers() == histograms.MAX_WORKERS
