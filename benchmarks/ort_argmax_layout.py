"""The panoptic engine on ONNX Runtime with and without the channels-last argmax rewrite.

Not a test: run it by hand and commit the JSON it writes.

    python benchmarks/ort_argmax_layout.py --models panoptic_fpn_tiny panoptic_fpn_small \
        panoptic_fpn_r18 --sizes 256x512 512x1024 --out benchmarks/results/ort_argmax_layout_cpu.json

Each model is exported once (random weights, seed 0: the work per frame does not depend on
them) and run by two sessions in one process, alternating on the same frames: ONNX
Runtime's graph as exported, and the graph after ``argmax_channels_last``. Reports medians,
their ratio, and how many semantic labels differ (ties within float rounding can).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_engines import alternate_sessions, speedup_row, write_speedup_report
from edge.backends.onnxruntime import argmax_channels_last
from edge.build import parse_size
from edge.build_key import tool_versions
from edge.export import export_onnx
from edge.models import create_model


def bench(name: str, size: tuple[int, int], threads: int, repeats: int) -> dict[str, Any]:
    import onnx
    import torch

    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        path = export_onnx(create_model(name), Path(tmp) / "m.onnx", height=size[0], width=size[1])
        model = onnx.load(str(path))
    plain = model.SerializeToString()
    rewritten = argmax_channels_last(model)
    differing = [0]

    def compare(outs: dict[str, Any]) -> None:
        differing[0] += int((outs["nchw"] != outs["channels_last"]).sum())

    models = {"nchw": plain, "channels_last": model.SerializeToString()}
    med = alternate_sessions(models, "sem_labels", size, threads, repeats, compare)
    return {
        **speedup_row(name, size, threads, rewritten, med),
        "labels_differing": differing[0],
        "labels_compared": (repeats + 2) * size[0] * size[1],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--models", nargs="+", default=["panoptic_fpn_tiny", "panoptic_fpn_small", "panoptic_fpn_r18"]
    )
    ap.add_argument("--sizes", nargs="+", default=["256x512", "512x1024"])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/ort_argmax_layout_cpu.json"))
    args = ap.parse_args()
    rows = []
    for name in args.models:
        for size in args.sizes:
            for threads in args.threads:
                row = bench(name, parse_size(size), threads, args.repeats)
                print(
                    f"{name:20s} {row['size']:9s} threads {threads}: {row['median_ms']['nchw']:7.1f} -> "
                    f"{row['median_ms']['channels_last']:7.1f} ms  {row['speedup']:.3f}x  "
                    f"labels differing {row['labels_differing']} of {row['labels_compared']}",
                    flush=True,
                )
                rows.append(row)
    what = "panoptic engine, ONNX Runtime CPU: argmax over upsampled channels, NCHW vs NHWC"
    write_speedup_report(args.out, what, rows, versions=tool_versions())
    return 0


if __name__ == "__main__":
    sys.exit(main())
