"""The torch backend's models with their frozen batch norms folded into the convolutions
before them (what a torch engine now loads) against as built: the operations one forward
issues (torch_cuda_census.py's count, which on CUDA is kernels launched) and CPU time per
forward, alternating frame by frame in one process so the ratio holds on a noisy machine.

    python benchmarks/fold_norms.py --out benchmarks/results/fold_norms_cpu.json
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine, write_result
from benchmarks.torch_cuda_census import census_of, nms_as_on_cuda
from edge.build import parse_size
from edge.models.layers import fold_frozen_batchnorm
from edge.models.zoo import create_model


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--models", nargs="+", default=["depth_r18", "panoptic_fpn_r18", "depth_tiny", "panoptic_fpn_tiny"]
    )
    ap.add_argument("--size", default="256x512")
    ap.add_argument("--frames", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import plugins.roi_align.torch_op  # noqa: F401  (registers the RoIAlign op)

    hw = parse_size(args.size)
    rng = np.random.default_rng(0)
    frames = [
        torch.from_numpy(rng.uniform(0, 255, (1, 3, *hw)).astype(np.float32)).contiguous(
            memory_format=torch.channels_last
        )
        for _ in range(args.frames)
    ]
    rows = []
    for name in args.models:
        built = create_model(name, seed=0).to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        folded = copy.deepcopy(built)
        norms = fold_frozen_batchnorm(folded)
        models = {"as_built": built, "folded": folded}
        times: dict[str, list[float]] = {k: [] for k in models}
        with torch.inference_mode():
            for m in models.values():
                m(frames[0])  # warm-up
            for x in frames:
                for key, m in models.items():
                    t = time.perf_counter()
                    m(x)
                    times[key].append((time.perf_counter() - t) * 1e3)
        nms_as_on_cuda()
        launches = {key: census_of(m, frames[0])["launches"] for key, m in models.items()}
        p50 = {key: statistics.median(v) for key, v in times.items()}
        row = {
            "model": name,
            "norms_folded": norms,
            "launches": launches,
            "forward_ms_p50": {k: round(v, 2) for k, v in p50.items()},
            "forward_ms": {k: [round(t, 2) for t in v] for k, v in times.items()},
            "speedup": round(p50["as_built"] / p50["folded"], 3),
        }
        rows.append(row)
        print(name, norms, launches, row["forward_ms_p50"], row["speedup"], flush=True)
    write_result(
        args.out,
        {
            "what": "torch eager forwards with frozen batch norms folded into their convolutions "
            "against as built: operations issued and CPU time, channels-last, random weights",
            "command": " ".join(sys.argv),
            "machine": machine(),
            "torch": torch.__version__,
            "size": args.size,
            "threads": args.threads,
            "rows": rows,
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
