"""ONNX Runtime's histogram calibration, several tensors at once.

The entropy and percentile calibrators histogram every tensor in turn with numpy, which
took a fifth of an INT8 build on 2 cores. numpy's histogram releases the GIL in its array
operations, so tensors histogrammed on threads overlap (1.7x on 2 cores for the
histograms, compute_ranges 1.35x for depth_small). Each tensor still goes through ONNX
Runtime's own code with its own histogram, and the histograms are kept in the order ONNX
Runtime would have made them, so the ranges are the same as one tensor at a time.

ONNX Runtime copies a tensor twice while it histograms it (it stacks the frames, then
flattens them), on top of every frame's outputs it already holds; the tensors in hand at
once are bounded by those copies' bytes (``BYTES_IN_FLIGHT``), so a large model at a large
size does not multiply its peak memory by the worker count. A tensor larger than that
bound is histogrammed alone.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np

from edge.util.ort import keep_offline

MAX_WORKERS = 8
BYTES_IN_FLIGHT = 1 << 30


def histogram_workers() -> int:
    """How many tensors' histograms are made at once: one per core, at most MAX_WORKERS."""
    return max(1, min(os.cpu_count() or 1, MAX_WORKERS))


class _Budget:
    """Bytes held at once by the workers; a holder larger than the limit waits for none."""

    def __init__(self, limit: int) -> None:
        self.limit, self.used, self.peak_holders, self._holders = limit, 0, 0, 0
        self._cond = threading.Condition()

    @contextlib.contextmanager
    def hold(self, nbytes: int) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: self.used == 0 or self.used + nbytes <= self.limit)
            self.used += nbytes
            self._holders += 1
            self.peak_holders = max(self.peak_holders, self._holders)
        try:
            yield
        finally:
            with self._cond:
                self.used -= nbytes
                self._holders -= 1
                self._cond.notify_all()


def _copy_bytes(arrays: Any) -> int:
    """What ONNX Runtime's collector copies of one tensor: the frames stacked, then flat."""
    frames = arrays if isinstance(arrays, list | tuple) else [arrays]
    return 2 * sum(int(np.asarray(a).nbytes) for a in frames)


def threaded_histograms(calibrator: Any) -> Any:
    """A histogram collector for ``calibrator`` that collects several tensors at once, or
    None where the calibrator is not a histogram one (MinMax), there is one core, or this
    ONNX Runtime lacks what is used (its own collector then runs)."""
    from concurrent.futures import ThreadPoolExecutor

    keep_offline()
    try:
        from onnxruntime.quantization.calibrate import HistogramCalibrater, HistogramCollector
    except ImportError:
        return None
    if not isinstance(calibrator, HistogramCalibrater) or histogram_workers() == 1:
        return None
    names = ("method", "symmetric", "num_bins", "num_quantized_bins", "percentile", "scenario")
    if not all(hasattr(calibrator, n) for n in names):
        return None

    class ThreadedCollector(HistogramCollector):
        budget: _Budget | None = None  # the last collect's, for tests

        def collect(self, name_to_arr: dict[str, Any]) -> None:
            one = super().collect
            made: dict[str, Any] = vars(self)["histogram_dict"]  # ONNX Runtime's, untyped
            order = [*made, *(n for n in name_to_arr if n not in made)]
            budget = self.budget = _Budget(BYTES_IN_FLIGHT)

            def collect_one(item: tuple[str, Any]) -> None:
                with budget.hold(_copy_bytes(item[1])):
                    one({item[0]: item[1]})

            with ThreadPoolExecutor(histogram_workers(), thread_name_prefix="edge-histogram") as pool:
                list(pool.map(collect_one, name_to_arr.items()))  # list(): a worker's error is raised here
            # the order one tensor at a time gives: ranges and files come out the same
            made = vars(self)["histogram_dict"]
            self.histogram_dict = {n: made[n] for n in order if n in made}

    return ThreadedCollector(**{n: getattr(calibrator, n) for n in names})
