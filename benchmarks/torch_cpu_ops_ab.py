"""The torch backend on the CPU with the RoIAlign and NMS of a git revision (before) against
those of the working tree (after): whole panoptic model forwards, in one process, on the
same frames, alternating per frame, so the ratio holds on a noisy machine.

Not a test: run it by hand and commit the JSON it writes.

    python benchmarks/torch_cpu_ops_ab.py --before 24adaf8 --out benchmarks/results/torch_cpu_ops_ab_cpu.json

At ``--before`` the NMS op ran ``greedy_nms_np`` (one IoU matrix over all candidates) and
RoIAlign gathered four corners a sample; the working tree's op runs ``greedy_nms_grouped``
and the separable RoIAlign. Only the functions before each module's first
``torch.library.custom_op`` are loaded from the revision (the ops themselves are registered
once, from the working tree), and swapped in where the working tree's ops call them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import edge.models.ops as ops  # noqa: E402
import plugins.roi_align.torch_op as roi_op  # noqa: E402
from edge.build import parse_size  # noqa: E402
from edge.build_key import tool_versions  # noqa: E402
from edge.models.zoo import create_model  # noqa: E402
from edge.platform_info import cpu_model, cpu_vector_extensions  # noqa: E402


def functions_at(rev: str, path: str) -> dict[str, Any]:
    """The module-level functions of ``path`` at ``rev`` that precede its first custom op."""
    source = subprocess.run(
        ["git", "show", f"{rev}:{path}"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    namespace: dict[str, Any] = {"__name__": f"{path}@{rev}"}
    exec(compile(source[: source.index("@torch.library.custom_op")], f"{path}@{rev}", "exec"), namespace)
    return namespace


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--before", required=True, help="git revision whose CPU NMS and RoIAlign are 'before'")
    ap.add_argument("--models", nargs="+", default=["panoptic_fpn_tiny", "panoptic_fpn_r18"])
    ap.add_argument("--sizes", nargs="+", default=["256x512", "512x1024"])
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    old_ops = functions_at(args.before, "edge/models/ops.py")
    old_roi = functions_at(args.before, "plugins/roi_align/torch_op.py")
    code = {
        "before": (old_ops["greedy_nms_np"], old_roi["roi_align_reference"]),
        "after": (ops.greedy_nms_grouped, roi_op.roi_align_reference),
    }

    def use(which: str) -> None:
        ops.greedy_nms_grouped, roi_op.roi_align_reference = code[which]

    rows = []
    for name in args.models:
        model = create_model(name, seed=0).eval()
        for size in args.sizes:
            h, w = parse_size(size)
            rng = np.random.default_rng(0)
            frames = [
                torch.from_numpy(rng.uniform(0, 255, (1, 3, h, w)).astype(np.float32))
                for _ in range(args.frames)
            ]
            times: dict[str, list[float]] = {"before": [], "after": []}
            outputs: dict[str, dict[str, torch.Tensor]] = {}
            with torch.no_grad():
                for which in code:  # warm-up
                    use(which)
                    model(frames[0])
                for i, x in enumerate(frames):
                    for which in ("before", "after") if i % 2 == 0 else ("after", "before"):
                        use(which)
                        t0 = time.perf_counter()
                        outputs[which] = model(x)
                        times[which].append((time.perf_counter() - t0) * 1000)
            use("after")
            diff = {
                k: float((outputs["before"][k].float() - v.float()).abs().max())
                for k, v in outputs["after"].items()
                if v.is_floating_point()
            }
            before, after = statistics.median(times["before"]), statistics.median(times["after"])
            row = {
                "model": name,
                "size": size,
                "before_ms": {"median": before, "samples": times["before"]},
                "after_ms": {"median": after, "samples": times["after"]},
                "speedup": before / after,
                "max_abs_diff_last_frame": diff,
            }
            print(
                f"{name} {size}: {before:.1f} -> {after:.1f} ms, {before / after:.2f}x; diff {diff}",
                flush=True,
            )
            rows.append(row)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "benchmark": "torch backend on the CPU, panoptic model forward (random weights, seed 0): "
                "CPU NMS and RoIAlign at --before vs the working tree, alternating per frame",
                "before": args.before,
                "device": {
                    "cpu": cpu_model(),
                    "cores": os.cpu_count(),
                    "vector_extensions": cpu_vector_extensions(),
                    "threads": args.threads,
                },
                "versions": tool_versions(),
                "results": rows,
            },
            indent=1,
        )
        + "\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
