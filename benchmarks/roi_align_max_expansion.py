"""The fused RoIAlign's ``max`` mode expanded into standard ops, on ONNX Runtime's CPU: time,
memory and distance from the numpy reference, against ``avg`` (one RoiAlign a level) and
against the expansion ``max`` had until 2026-12-06 (an ``avg`` RoiAlign on a grid
``sampling_ratio`` times finer, then a MaxPool), rebuilt here.

Each form runs in a process of its own, so its peak memory (the process's largest resident
set, less what it held before the session) is its own; the times are medians of runs taken
in that process. Not a test: run it by hand and commit the JSON it writes.

    python benchmarks/roi_align_max_expansion.py --out benchmarks/results/roi_align_max_expansion_cpu.json
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import write_runs  # noqa: E402

SCALES = (1 / 4, 1 / 8, 1 / 16, 1 / 32)
FORMS = ("avg", "max", "max_fine_grid")


def problem(
    rois: int, size: tuple[int, int], channels: int
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """A pyramid of one image of ``size`` and RoIs of 16-416 pixels over it (seed 0)."""
    rng = np.random.default_rng(0)
    h, w = size
    feats = [rng.standard_normal((1, channels, int(h * s), int(w * s))).astype(np.float32) for s in SCALES]
    xy = rng.uniform(0, 1, (rois, 2)) * np.asarray([w * 0.9, h * 0.9])
    wh = rng.uniform(16, 416, (rois, 2))
    return feats, np.concatenate([xy, xy + wh], 1).astype(np.float32), np.zeros(rois, np.int64)


def model(form: str, feats: list[np.ndarray], output: int, sampling: int) -> Any:
    """The ONNX model of ``form``: the fused node expanded, or (max_fine_grid) the ``avg``
    expansion of a finer grid, one sample a cell, with a MaxPool of each bin's cells."""
    from onnx import TensorProto, helper

    from plugins.roi_align.onnx_export import DOMAIN, fused_node, register_schema
    from plugins.roi_align.passes import expand

    register_schema()
    fine = form == "max_fine_grid"
    names = [f"p{2 + i}" for i in range(len(feats))]
    node = fused_node(
        ["rois", "bidx", *names],
        "pooled" if fine else "y",
        output_size=output * sampling if fine else output,
        spatial_scales=list(SCALES),
        sampling_ratio=1 if fine else sampling,
        aligned=True,
        min_level=2,
        mode="max" if form == "max" else "avg",
    )
    nodes = [node]
    if fine:
        window = [sampling, sampling]
        nodes.append(helper.make_node("MaxPool", ["pooled"], ["y"], kernel_shape=window, strides=window))
    inputs = [
        helper.make_tensor_value_info("rois", TensorProto.FLOAT, ["n", 4]),
        helper.make_tensor_value_info("bidx", TensorProto.INT64, ["n"]),
    ]
    inputs += [
        helper.make_tensor_value_info(n, TensorProto.FLOAT, list(f.shape))
        for n, f in zip(names, feats, strict=True)
    ]
    graph = helper.make_graph(
        nodes, "g", inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]
    )
    opsets = [helper.make_opsetid("", 18), helper.make_opsetid(DOMAIN, 1)]
    return expand(helper.make_model(graph, opset_imports=opsets, ir_version=9))


def child(args: argparse.Namespace) -> dict[str, Any]:
    """One form, measured in this process."""
    import onnxruntime as ort

    from plugins.roi_align.reference import multilevel_roi_align

    feats, rois, bidx = problem(args.rois, args.size, args.channels)
    proto = model(args.form, feats, args.output, args.sampling)
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    session = ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])
    feed = {"rois": rois, "bidx": bidx, **{f"p{2 + i}": f for i, f in enumerate(feats)}}
    times = []
    for _ in range(args.repeats + 1):  # the first: warm-up
        start = time.perf_counter()
        (out,) = session.run(None, feed)
        times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    mode = "avg" if args.form == "avg" else "max"
    n = min(args.check, args.rois)
    ref = multilevel_roi_align(
        feats,
        rois[:n],
        bidx[:n],
        output_size=args.output,
        spatial_scales=SCALES,
        sampling_ratio=args.sampling,
        aligned=True,
        mode=mode,
    )
    excess = np.abs(out[:n] - ref) - 1e-5 * np.abs(ref)
    return {
        "form": args.form,
        "nodes": len(proto.graph.node),
        "median_ms": round(statistics.median(times[1:]) * 1e3, 1),
        "peak_memory_mib": round((peak - before) / 1024, 1),  # ru_maxrss is in KiB on Linux
        "checked_rois": n,
        "max_abs_difference": float(np.abs(out[:n] - ref).max()),
        "max_beyond_rtol_1e-5": float(excess.max()),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rois", type=int, default=1000)
    ap.add_argument("--size", default="512x1024", help="the image's HxW, multiples of 32")
    ap.add_argument("--channels", type=int, default=256)
    ap.add_argument(
        "--output", type=int, default=7, help="bins a side (the box head's 7, the mask head's 14)"
    )
    ap.add_argument("--sampling", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--check", type=int, default=100, help="RoIs compared with the (slow) numpy reference")
    ap.add_argument("--form", choices=FORMS, help=argparse.SUPPRESS)  # set in the child processes
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    h, w = (int(v) for v in args.size.lower().split("x"))
    args.size = (h, w)
    if args.form:
        print(json.dumps(child(args)))
        return 0
    if args.out is None:
        ap.error("--out is required")
    runs = []
    for form in FORMS:
        cmd = [sys.executable, __file__, *sys.argv[1:], "--form", form]
        done = subprocess.run(cmd, capture_output=True, text=True, check=True)
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(runs[-1])
    write_runs(
        args.out,
        what="a fused RoIAlign node expanded into standard ops, run by ONNX Runtime on the CPU: "
        "avg, max as expanded now (each sample's point computed as the reference does, corners "
        "gathered), and max as expanded until 2026-12-06 (an avg RoiAlign on a finer grid, a MaxPool)",
        runs=runs,
        baseline=None,
        rois=args.rois,
        size=f"{h}x{w}",
        channels=args.channels,
        output=args.output,
        sampling=args.sampling,
        threads=args.threads,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
