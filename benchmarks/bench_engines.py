"""Torch eager vs ONNX Runtime latency per model and input size on this machine's CPU.

Not a test: run it by hand and commit the JSON it writes.

    python benchmarks/bench_engines.py --models panoptic_fpn_r18 depth_r18 \
        --sizes 256x512 512x1024 --out benchmarks/results/cpu_engines.json

Both backends run in one process on the same inputs and thread count, taking turns in
blocks (time_blocks), so the ratio is meaningful even on a noisy machine; absolute
numbers are not.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.backends.onnxruntime import OnnxRuntimeEngine, optimize_model
from edge.backends.torch import TorchEngine
from edge.build import parse_size
from edge.build_key import tool_versions
from edge.export import export_onnx
from edge.models import create_model
from edge.platform_info import cpu_vector_extensions
from edge.verify import sample_images


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def write_report(path: Path, report: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {path}")


def alternate_sessions(
    models: dict[str, bytes],
    output: str,
    size: tuple[int, int],
    threads: int,
    repeats: int,
    each: Callable[[dict[str, np.ndarray]], None],
) -> dict[str, float]:
    """ONNX Runtime sessions of ``models`` (name: serialized model) run in turn on the same
    sample frames of ``size``, two warm-up rounds then ``repeats``; ``each`` gets every
    round's ``output`` by name. Returns each model's median milliseconds."""
    from edge.backends.onnxruntime import session_options
    from edge.util.ort import onnxruntime_module

    ort = onnxruntime_module()
    sessions = {
        key: ort.InferenceSession(
            data, session_options(intra_op_threads=threads), providers=["CPUExecutionProvider"]
        )
        for key, data in models.items()
    }
    frames = sample_images(4, (1, 3, *size), seed=5)
    times: dict[str, list[float]] = {key: [] for key in sessions}
    for i in range(repeats + 2):
        outs = {}
        for key, session in sessions.items():
            t = time.perf_counter_ns()
            outs[key] = session.run([output], {"image": frames[i % len(frames)]})[0]
            if i >= 2:  # two warm-up rounds
                times[key].append((time.perf_counter_ns() - t) / 1e6)
        each(outs)
    return {key: statistics.median(v) for key, v in times.items()}


def speedup_row(
    model: str, size: tuple[int, int], threads: int, rewritten_nodes: int, median_ms: dict[str, float]
) -> dict[str, object]:
    """The row an A/B trial of two models reports: ``median_ms`` as alternate_sessions gives
    it, the model before the rewrite first, and the speedup of the second over it."""
    before, after = median_ms
    return {
        "model": model,
        "size": f"{size[0]}x{size[1]}",
        "threads": threads,
        "rewritten_nodes": rewritten_nodes,
        "median_ms": median_ms,
        "speedup": median_ms[before] / median_ms[after],
    }


def write_speedup_report(path: Path, benchmark: str, rows: list[dict], **about: object) -> None:
    """An A/B trial's ``rows`` (each with its ``speedup``) at ``path``, with this CPU, ``about``
    (versions, weights) and the rows' geometric mean speedup."""
    geomean = math.exp(statistics.fmean(math.log(r["speedup"]) for r in rows))
    report = {"benchmark": benchmark, "device": cpu_name(), **about, "rows": rows, "geomean_speedup": geomean}
    write_report(path, report)


def time_blocks(
    calls: dict[str, Callable[[dict], object]], feeds: dict, repeats: int, block: int, settle_s: float
) -> dict[str, list[float]]:
    """``repeats`` timed calls of each engine, ``block`` at a time, the engines taking turns
    (the order alternating by round) so drifts in machine load hit both alike.

    Not call by call: right after an ONNX Runtime run its pool threads spin waiting for
    more work, and OpenMP's do after torch's, taking the cores of the next call. Alternating
    single calls timed depth_tiny's torch forward at 2.2x its time alone. So each block
    starts ``settle_s`` after the last, and its first call (which finds the other engine's
    data in the caches) is not counted."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    names = list(calls)
    for r in range(math.ceil(repeats / block)):
        for name in names if r % 2 == 0 else names[::-1]:
            time.sleep(settle_s)
            for i in range(block + 1):
                t = time.perf_counter_ns()
                calls[name](feeds)
                if i:
                    times[name].append((time.perf_counter_ns() - t) / 1e6)
    return {name: t[:repeats] for name, t in times.items()}


def bench(
    model_name: str,
    size: tuple[int, int],
    repeats: int,
    warmup: int,
    threads: int,
    block: int,
    settle_s: float,
) -> dict:
    model = create_model(model_name)
    shape = (1, 3, *size)
    with tempfile.TemporaryDirectory() as tmp:
        raw = export_onnx(model, Path(tmp) / "m.onnx", height=size[0], width=size[1])
        opt = Path(tmp) / "m.ort.onnx"
        optimize_model(raw, opt)
        ort = OnnxRuntimeEngine(opt, intra_op_threads=threads)
        ref = TorchEngine(model, input_shape=shape, threads=threads)
        feeds = {"image": sample_images(1, shape)[0]}
        for _ in range(warmup):
            ref.infer(feeds)
            ort.infer(feeds)
        times = time_blocks({"torch": ref.infer, "ort": ort.infer}, feeds, repeats, block, settle_s)
        t_torch, t_ort = times["torch"], times["ort"]
        ort.close()
    med_t, med_o = statistics.median(t_torch), statistics.median(t_ort)
    return {
        "model": model_name,
        "size": f"{size[0]}x{size[1]}",
        "torch_eager_ms": {"median": med_t, "min": min(t_torch), "samples": t_torch},
        "onnxruntime_ms": {"median": med_o, "min": min(t_ort), "samples": t_ort},
        "ratio_ort_over_torch": med_o / med_t,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["panoptic_fpn_r18", "depth_r18"])
    ap.add_argument("--sizes", nargs="+", default=["256x512", "512x1024"])
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0, help="0 = all cores")
    ap.add_argument("--block", type=int, default=5, help="timed calls of one engine before the other's turn")
    ap.add_argument("--settle", type=float, default=1.0, help="seconds between blocks")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/cpu_engines.json"))
    args = ap.parse_args()
    threads = args.threads or torch.get_num_threads()
    results = []
    for name in args.models:
        for s in args.sizes:
            r = bench(name, parse_size(s), args.repeats, args.warmup, threads, args.block, args.settle)
            print(
                f"{name:20s} {r['size']:>9s}  torch {r['torch_eager_ms']['median']:8.1f} ms  "
                f"ort {r['onnxruntime_ms']['median']:8.1f} ms  ratio {r['ratio_ort_over_torch']:.2f}",
                flush=True,
            )
            results.append(r)
    report = {
        "benchmark": "torch eager vs ONNX Runtime (CPU), batch 1, median latency",
        "device": {
            "cpu": cpu_name(),
            "cores": torch.get_num_threads(),
            # ONNX Runtime's and oneDNN's kernels differ by instruction set (AVX2, AVX-512)
            "vector_extensions": cpu_vector_extensions(),
            "gpu": None,
        },
        "threads": threads,
        "repeats": args.repeats,
        "timing": f"blocks of {args.block} timed calls per engine (after one untimed), engines taking turns, "
        f"{args.settle} s between blocks",
        "command": " ".join(["python", *sys.argv]),
        "versions": tool_versions(),
        "target": "onnxruntime <= 0.8 x torch eager for panoptic_fpn_r18",
        "results": results,
    }
    write_report(args.out, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
