"""Depth engines on ONNX Runtime with their ELUs as exported and as Min/Exp/Sub/Max.

Not a test: run it by hand and commit the JSON it writes.

    python benchmarks/ort_elu.py --models depth_tiny depth_small depth_r18 \
        --sizes 256x512 512x1024 --out benchmarks/results/ort_elu_cpu.json

Each model is built once with its bundled weights (random ones, seed 0, where it has none:
the work per frame does not depend on them) and its float export run by two sessions in
one process, alternating on the same frames: the graph as exported, and the graph after
``elu_as_exp`` (what ``model_for_ort`` hands ONNX Runtime). Reports the medians, their
ratio, and how far the depth maps differ (largest difference over the largest depth, as
``edge.verify`` measures a build; and the largest difference relative to each pixel).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_engines import alternate_sessions, speedup_row, write_speedup_report
from benchmarks.common import build_bundled, bundled_provenance
from edge.backends.onnxruntime import elu_as_exp
from edge.build import parse_size


def bench(name: str, export: Path, size: tuple[int, int], threads: int, repeats: int) -> dict[str, Any]:
    import onnx

    model = onnx.load(str(export))
    plain = model.SerializeToString()
    rewritten = elu_as_exp(model)
    worst = {"verify": 0.0, "pixel": 0.0}

    def compare(outs: dict[str, np.ndarray]) -> None:
        diff = np.abs(outs["elu"].astype(np.float64) - outs["min_exp_max"])
        worst["verify"] = max(worst["verify"], float(diff.max() / np.abs(outs["elu"]).max()))
        worst["pixel"] = max(worst["pixel"], float((diff / np.abs(outs["elu"])).max()))

    models = {"elu": plain, "min_exp_max": model.SerializeToString()}
    med = alternate_sessions(models, "depth", size, threads, repeats, compare)
    verify_rel, pixel_rel = worst["verify"], worst["pixel"]
    return {
        **speedup_row(name, size, threads, rewritten, med),
        "depth_max_rel": verify_rel,
        "depth_max_pixel_rel": pixel_rel,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["depth_tiny", "depth_small", "depth_r18"])
    ap.add_argument("--sizes", nargs="+", default=["256x512", "512x1024"])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/ort_elu_cpu.json"))
    args = ap.parse_args()
    rows = []
    for size in map(parse_size, args.sizes):
        with tempfile.TemporaryDirectory() as tmp:
            exports = build_bundled(args.models, *size, Path(tmp))
            for name in args.models:
                for threads in args.threads:
                    row = bench(name, exports[name], size, threads, args.repeats)
                    print(
                        f"{name:12s} {row['size']:9s} threads {threads}: {row['median_ms']['elu']:7.1f} -> "
                        f"{row['median_ms']['min_exp_max']:7.1f} ms  {row['speedup']:.3f}x  "
                        f"depth max rel {row['depth_max_rel']:.1e} "
                        f"(per pixel {row['depth_max_pixel_rel']:.1e})",
                        flush=True,
                    )
                    rows.append(row)
    what = "depth engines, ONNX Runtime CPU: Elu as exported vs Min/Exp/Sub/Max (elu_as_exp)"
    write_speedup_report(args.out, what, rows, **bundled_provenance())
    return 0


if __name__ == "__main__":
    sys.exit(main())
