"""Overload mechanics, short: a live source far faster than the engines. The timing
target (p99 <= 2x one frame's processing time) is measured by benchmarks/overload.py
into benchmarks/results/overload_cpu.json, never asserted here."""

from __future__ import annotations

import json
import time
from pathlib import Path

from benchmarks.overload import IN_FLIGHT, CameraLike, overload, phase
from edge.stream.engines import EngineSet


def test_a_fast_camera_is_dropped_not_queued(tiny_engines: Path) -> None:
    engines = EngineSet.from_manifest(tiny_engines, engine_options={"intra_op_threads": 1})
    try:
        result = phase(engines, size="128x256", fps=400.0, frames=40, warmup=5)
    finally:
        engines.close()
    assert result["drops"] > result["frames_out"], "most frames of a 400 fps camera are dropped"
    in_flight = result["frames_in"] - result["frames_out"] - result["drops"]
    assert 0 <= in_flight <= IN_FLIGHT == 7, "every frame is processed, dropped or among the few in flight"
    # latency is bounded by the queues (one frame each), not by how long the run lasts:
    # no processed frame can have waited behind more than a handful of others
    stats = result["end_to_end_ms_after_warmup"]
    per_frame = sum(result["stages_ms_p50"][k] for k in ("preprocess", "panoptic", "postprocess"))
    assert stats["max"] < 20 * per_frame + 500


def test_benchmark_writes_its_result(tiny_engines: Path, tmp_path: Path) -> None:
    # the tiny engines at 128x256 finish a frame well within 1/8 s: at 8 fps none waits
    result = overload(
        tiny_engines, size="128x256", fps=200.0, frames=30, threads=1, idle_fps=8.0, idle_frames=8
    )
    assert set(result["passed"]) == {
        "latency_bound_vs_unloaded",
        "latency_bound_vs_in_live_run",
        "drops_counted",
        "memory_bounded",
    }
    assert min(result["one_frame_processing_ms_p50"].values()) > 0
    assert min(result["p99_over_one_frame"].values()) > 0
    processing = result["overloaded"]["processing_ms_after_warmup"]
    assert processing["count"] >= 20 and processing["p50"] > 0
    assert result["overloaded"]["drops"] > 0
    json.dumps(result)  # serialisable as written by the script


def test_camera_like_frames_are_stamped_when_read() -> None:
    cam = CameraLike("64x128", 30.0, count=3)
    start = time.perf_counter_ns()
    a, b, c = cam.read(), cam.read(), cam.read()
    assert (a.seq, b.seq, c.seq) == (0, 1, 2) and a.image.shape == (64, 128, 3)
    # it paces itself, as a camera does (the pipeline paces only files): frame k is not
    # delivered before k/30 s. Measured from the start, not between two stamps, which a
    # preempted first stamp brings closer than 1/30 s on a loaded machine.
    assert b.t_capture_ns - start >= 1e9 / 30 * 0.99 and c.t_capture_ns - start >= 2e9 / 30 * 0.99
