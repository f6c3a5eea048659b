"""Soak: many frames through the real pipeline with the tiny engines; memory, threads and
file descriptors measured after warm-up and at the end, written to a JSON file.

    python benchmarks/soak.py --frames 20000 --out benchmarks/results/soak_cpu.json

Targets (issue: reliability): RSS growth after warm-up <= 5%, no thread or fd leak.
tests/test_soak.py runs a short version in the default suite and this one as `slow`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.build import BuildRequest, build_all
from edge.latency import LatencyTracker
from edge.stream.engines import EngineSet
from edge.stream.pipeline import Pipeline
from edge.stream.sinks import RENDERED_VIEWS, NullSink
from edge.stream.sources import open_source


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def soak(engines_dir: Path, frames: int, warmup: int, size: str = "128x256") -> dict[str, Any]:
    samples: list[tuple[int, float]] = []

    def on_result(result: Any) -> None:
        seq = result.frame.seq
        if seq == warmup or seq % 1000 == 0:
            samples.append((seq, rss_mb()))

    threads_before, fds_before = threading.active_count(), open_fds()
    engines = EngineSet.from_manifest(engines_dir, engine_options={"intra_op_threads": 1})
    tracker = LatencyTracker()
    t0 = time.perf_counter()
    try:
        Pipeline(
            source=open_source(f"synthetic://?size={size}&frames={frames}"),
            engines=engines,
            sinks=[NullSink()],
            views=RENDERED_VIEWS,  # every allocation a drawing run makes
            tracker=tracker,
            on_result=on_result,
        ).run()
    finally:
        engines.close()
    end_rss = rss_mb()
    at_warmup = next(r for s, r in samples if s >= warmup) if samples else end_rss
    return {
        "frames": tracker.frames_out,
        "seconds": time.perf_counter() - t0,
        "rss_mb_after_warmup": at_warmup,
        "rss_mb_end": end_rss,
        "rss_growth": (end_rss - at_warmup) / at_warmup,
        "rss_samples_mb": samples,
        "threads": {"before": threads_before, "after": threading.active_count()},
        "fds": {"before": fds_before, "after": open_fds()},
        "spans_kept": len(tracker.chrome_trace()["traceEvents"]),
        "targets": {"rss_growth": "<= 0.05", "threads": "after == before", "fds": "after == before"},
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=20000)
    ap.add_argument("--warmup", type=int, default=1000)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/soak_cpu.json"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        build_all(
            [BuildRequest(model=m, height=128, width=256) for m in ("panoptic_fpn_tiny", "depth_tiny")],
            tmp,
            verify_samples=0,
            show_progress=False,
        )
        soak(Path(tmp), 50, 10)  # first-run imports and allocations are not a leak
        report = {"machine": "x86-64, 2 cores, CPU only", **soak(Path(tmp), args.frames, args.warmup)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "rss_samples_mb"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
