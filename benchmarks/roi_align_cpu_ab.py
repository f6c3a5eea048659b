"""The torch op's CPU RoIAlign of a git revision (before) against the working tree's (after),
level by level over a 4-level 256-channel pyramid, fixed and adaptive sampling: in one
process, on the same RoIs, taking turns, so the ratio holds on a noisy machine.

Not a test: run it by hand and commit the JSON it writes.

    python benchmarks/roi_align_cpu_ab.py --before e27f7ad --out benchmarks/results/roi_align_cpu_ab_cpu.json

Only the functions before torch_op.py's first ``torch.library.custom_op`` are loaded from
the revision (benchmarks/torch_cpu_ops_ab.py's ``functions_at``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import plugins.roi_align.torch_op as roi_op  # noqa: E402
from benchmarks.common import machine  # noqa: E402
from benchmarks.torch_cpu_ops_ab import functions_at  # noqa: E402
from edge.build import parse_size  # noqa: E402
from edge.build_key import tool_versions  # noqa: E402
from edge.util.fs import atomic_write_json  # noqa: E402

SCALES = (1 / 4, 1 / 8, 1 / 16, 1 / 32)


def problem(rois: int, size: tuple[int, int], channels: int) -> tuple[list[torch.Tensor], torch.Tensor]:
    """A pyramid of an image of ``size`` and RoIs of 16-216 pixels over it (seed 0)."""
    gen = torch.Generator().manual_seed(0)
    h, w = size
    feats = [torch.randn(1, channels, int(h * s), int(w * s), generator=gen) for s in SCALES]
    xy = torch.rand(rois, 2, generator=gen) * torch.tensor([w * 0.9, h * 0.9])
    wh = torch.rand(rois, 2, generator=gen) * 200 + 16
    return feats, torch.cat([xy, xy + wh], dim=1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--before", required=True, help="git revision whose CPU RoIAlign is 'before'")
    ap.add_argument("--rois", type=int, default=500)
    ap.add_argument(
        "--size",
        default="512x1024",
        help="the image's HxW, multiples of 32 (the pyramid's levels 1/4 to 1/32)",
    )
    ap.add_argument("--channels", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    feats, rois = problem(args.rois, parse_size(args.size), args.channels)
    bidx = torch.zeros(args.rois, dtype=torch.int64)
    code = {
        "before": functions_at(args.before, "plugins/roi_align/torch_op.py")["roi_align_reference"],
        "after": roi_op.roi_align_reference,
    }

    def pool(which: str, sampling: int) -> torch.Tensor:
        # the op's own level by level (per_level_torch), through the revision's RoIAlign
        roi_op.roi_align_reference = code[which]
        try:
            return roi_op.per_level_torch(feats, rois, bidx, 7, SCALES, sampling, True, 2)
        finally:
            roi_op.roi_align_reference = code["after"]

    rows = []
    for sampling in (2, 0):
        times: dict[str, list[float]] = {"before": [], "after": []}
        outputs = {which: pool(which, sampling) for which in code}  # also the warm-up
        for i in range(args.repeats):
            for which in ("before", "after") if i % 2 == 0 else ("after", "before"):
                t0 = time.perf_counter()
                pool(which, sampling)
                times[which].append((time.perf_counter() - t0) * 1000)
        before, after = statistics.median(times["before"]), statistics.median(times["after"])
        diff = float((outputs["before"] - outputs["after"]).abs().max())
        rows.append(
            {
                "sampling_ratio": sampling,
                "before_ms": {"median": before, "samples": times["before"]},
                "after_ms": {"median": after, "samples": times["after"]},
                "speedup": before / after,
                "max_abs_diff": diff,
            }
        )
        print(f"sampling {sampling}: {before:.1f} -> {after:.1f} ms, {before / after:.2f}x; diff {diff:.2e}")
    report = {
        "benchmark": "the torch op's CPU RoIAlign (roi_align_reference, level by level, avg, aligned, "
        "output 7) at --before vs the working tree, taking turns",
        "before": args.before,
        "problem": {"rois": args.rois, "image": args.size, "channels": args.channels, "levels": len(SCALES)},
        "device": {**machine(), "threads": args.threads},
        "versions": tool_versions(),
        "results": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
