"""The torch backend on the CPU with NCHW (torch's default) against channels-last (NHWC)
weights and inputs: whole model forwards, in one process, on the same frames, alternating
per frame, so the ratio holds on a noisy machine.

Not a test: run it by hand and commit the JSON it writes.

    python benchmarks/torch_cpu_layout.py --out benchmarks/results/torch_cpu_layout_cpu.json

On CUDA the torch backend already runs channels-last (cuDNN's fastest convolutions want
it); this measures whether oneDNN's CPU convolutions, ~80% of the panoptic forward
(torch_cpu_ops_ab_cpu.json), do too.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge.build import parse_size  # noqa: E402
from edge.build_key import tool_versions  # noqa: E402
from edge.models.zoo import create_model  # noqa: E402
from edge.platform_info import cpu_model, cpu_vector_extensions  # noqa: E402
from edge.util.fs import atomic_write_json  # noqa: E402

LAYOUTS = {"nchw": torch.contiguous_format, "nhwc": torch.channels_last}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--models", nargs="+", default=["panoptic_fpn_tiny", "panoptic_fpn_r18", "depth_tiny", "depth_r18"]
    )
    ap.add_argument("--sizes", nargs="+", default=["256x512"])
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for name in args.models:
        base = create_model(name, seed=0).eval()
        models = {k: copy.deepcopy(base).to(memory_format=fmt) for k, fmt in LAYOUTS.items()}
        for size in args.sizes:
            h, w = parse_size(size)
            rng = np.random.default_rng(0)
            frames = [
                torch.from_numpy(rng.uniform(0, 255, (1, 3, h, w)).astype(np.float32))
                for _ in range(args.frames)
            ]
            times: dict[str, list[float]] = {k: [] for k in LAYOUTS}
            outputs: dict[str, dict[str, torch.Tensor]] = {}
            with torch.inference_mode():
                for k, fmt in LAYOUTS.items():  # warm-up: oneDNN picks and caches its kernels
                    models[k](frames[0].contiguous(memory_format=fmt))
                for i, x in enumerate(frames):
                    for k in ("nchw", "nhwc") if i % 2 == 0 else ("nhwc", "nchw"):
                        # untimed: the engine converts inside its call, a 3-channel copy, small next to this
                        xi = x.contiguous(memory_format=LAYOUTS[k])
                        t0 = time.perf_counter()
                        outputs[k] = models[k](xi)
                        times[k].append((time.perf_counter() - t0) * 1000)
            diff = {
                key: float((outputs["nchw"][key].float() - v.float()).abs().max())
                for key, v in outputs["nhwc"].items()
                if v.is_floating_point() and v.shape == outputs["nchw"][key].shape
            }
            nchw, nhwc = statistics.median(times["nchw"]), statistics.median(times["nhwc"])
            rows.append(
                {
                    "model": name,
                    "size": size,
                    "nchw_ms": {"median": nchw, "samples": times["nchw"]},
                    "nhwc_ms": {"median": nhwc, "samples": times["nhwc"]},
                    "nhwc_speedup": nchw / nhwc,
                    "max_abs_diff_last_frame": diff,
                }
            )
            print(f"{name} {size}: NCHW {nchw:.1f} ms, NHWC {nhwc:.1f} ms, {nchw / nhwc:.2f}x; diff {diff}")
    atomic_write_json(
        args.out,
        {
            "benchmark": "torch backend on the CPU, model forward (random weights, seed 0): NCHW vs "
            "channels-last weights and input, alternating per frame",
            "command": " ".join(["python", *sys.argv]),
            "device": {
                "cpu": cpu_model(),
                "cores": os.cpu_count(),
                "vector_extensions": cpu_vector_extensions(),
                "threads": args.threads,
            },
            "versions": tool_versions(),
            "results": rows,
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
