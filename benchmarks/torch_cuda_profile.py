"""Where a torch CUDA forward's time goes: the host issuing it or the GPU running it, and
what folding the batch norms and looking at the NMS passes less often change.

    python benchmarks/torch_cuda_profile.py --out benchmarks/results/torch_cuda_profile_h200.json

For each model (random weights) and variant, alternating frame by frame in one process:
the wall time of a forward (what the pipeline waits for), its CUDA-event time (what
edge bench reports as ``*_gpu``), and the sum of its kernels' own times from
torch.profiler. Kernels summing far below the event time mean the GPU waited on the host.
Variants: ``as_built`` (the NMS looking after every pass, norms unfolded), ``nms_every_4``
(ops.PASSES_PER_LOOK = 4), ``folded`` (both: what a torch engine loaded on CUDA runs).

Runs on the CPU too (``--device cpu``: wall times only), which is how it is checked
without a GPU; there the NMS op runs its CPU program, so the NMS variant changes nothing.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine, write_result
from edge.build import parse_size
from edge.models import ops
from edge.models.layers import fold_frozen_batchnorm
from edge.models.zoo import create_model

VARIANTS = {  # (passes per look of the matrix NMS, batch norms folded)
    "as_built": (1, False),
    "nms_every_4": (4, False),
    "folded": (4, True),
}


def timed_forward(model: torch.nn.Module, x: torch.Tensor, device: str) -> tuple[float, float | None]:
    """Wall and CUDA-event milliseconds of one forward (event None on the CPU)."""
    if device == "cpu":
        t = time.perf_counter()
        model(x)
        return (time.perf_counter() - t) * 1e3, None
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize()
    t = time.perf_counter()
    start.record()
    model(x)
    end.record()
    torch.cuda.synchronize()
    return (time.perf_counter() - t) * 1e3, start.elapsed_time(end)


def kernel_ms(model: torch.nn.Module, x: torch.Tensor) -> dict[str, Any]:
    """One forward under torch.profiler: its kernels' summed time and count, and the host
    operations that took longest."""
    from torch.profiler import ProfilerActivity, profile

    try:
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            model(x)
            torch.cuda.synchronize()
        events = prof.key_averages()
        kernels = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
        top = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:12]
        return {
            "kernels": len(kernels),
            "kernels_ms": round(sum(e.device_time for e in kernels) / 1e3, 3),
            "host_top_ms": {e.key: round(e.self_cpu_time_total / 1e3, 3) for e in top},
        }
    except Exception as exc:  # the timings beat no record: the profiler's API moves
        return {"profile_error": f"{type(exc).__name__}: {exc}"[:300]}


def with_variant(passes: int, fn: Callable[[], Any]) -> Any:
    before = ops.PASSES_PER_LOOK
    ops.PASSES_PER_LOOK = passes
    try:
        return fn()
    finally:
        ops.PASSES_PER_LOOK = before


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=["panoptic_fpn_r18", "depth_r18"])
    ap.add_argument("--size", default="512x1024")
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    if args.device != "cpu" and not torch.cuda.is_available():
        print("no CUDA device here: --device cpu times the host alone", file=sys.stderr)
        return 2
    import plugins.roi_align.torch_op  # noqa: F401  (registers the RoIAlign op)

    hw = parse_size(args.size)
    layout = torch.channels_last
    rng = np.random.default_rng(0)
    frames = [
        torch.from_numpy(rng.uniform(0, 255, (1, 3, *hw)).astype(np.float32))
        .to(args.device)
        .contiguous(memory_format=layout)
        for _ in range(args.frames)
    ]
    rows = []
    for name in args.models:
        built = create_model(name, seed=0).to(args.device).to(memory_format=layout)  # type: ignore[call-overload]
        folded = copy.deepcopy(built)
        fold_frozen_batchnorm(folded)
        models = {key: (folded if fold else built, passes) for key, (passes, fold) in VARIANTS.items()}
        wall: dict[str, list[float]] = {k: [] for k in models}
        event: dict[str, list[float]] = {k: [] for k in models}
        with torch.inference_mode():
            for model, passes in models.values():  # warm-up: cuDNN's choices, Triton's compile
                for _ in range(3):
                    with_variant(passes, lambda m=model: m(frames[0]))
            for x in frames:
                for key, (model, passes) in models.items():
                    w, e = with_variant(passes, lambda m=model, x=x: timed_forward(m, x, args.device))
                    wall[key].append(w)
                    if e is not None:
                        event[key].append(e)
            profiled = (
                {
                    key: with_variant(passes, lambda m=model: kernel_ms(m, frames[0]))
                    for key, (model, passes) in models.items()
                }
                if args.device != "cpu"
                else {}
            )
        row: dict[str, Any] = {"model": name}
        for key in models:
            row[key] = {
                "wall_ms_p50": round(statistics.median(wall[key]), 3),
                "event_ms_p50": round(statistics.median(event[key]), 3) if event[key] else None,
                **profiled.get(key, {}),
            }
        row["wall_as_built_over_folded"] = round(
            row["as_built"]["wall_ms_p50"] / row["folded"]["wall_ms_p50"], 3
        )
        rows.append(row)
        print(name, {k: row[k] for k in models}, flush=True)
    write_result(
        args.out,
        {
            "what": "torch eager forwards on one device: wall and CUDA-event time, kernels' own time "
            "(torch.profiler), as built / NMS looking every 4 passes / also norms folded; random weights",
            "command": " ".join(sys.argv),
            "machine": machine(),
            "device": torch.cuda.get_device_name(0) if args.device != "cpu" else "cpu",
            "torch": torch.__version__,
            "size": args.size,
            "frames": args.frames,
            "rows": rows,
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
