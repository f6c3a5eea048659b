"""One trial of the INT8 sensitivity pass: quantizing again vs rewriting the all-INT8 model.

    python benchmarks/sensitivity_trials.py --out benchmarks/results/sensitivity_trials_cpu.json

The sensitivity pass (`edge build --precision int8 --int8-min-snr`) measures each
remaining quantizable layer in float at every step: hundreds of trials on a real model.
Each trial used to run ONNX Runtime's quantizer with ``nodes_to_exclude``; now it undoes
the chosen layers' quantization in the all-INT8 model (calib/float_nodes.py). This times
both ways of making a trial's model, and the ONNX Runtime session and held-out run that
follow either, on the bundled-weight models the pass is meant for, alternating per
trial; every trial's outputs are compared between the two ways (they must be equal).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import onnx

from benchmarks.common import build_bundled, bundled_provenance, write_result
from calib.data import load_frames
from calib.float_nodes import with_float_nodes
from calib.quantize import QUANTIZED_OPS, compute_ranges, quantize_qdq
from calib.sensitivity import run_outputs
from edge.build import parse_size


def time_model(model: str, size: str, trials: int, work: Path) -> dict[str, Any]:
    h, w = parse_size(size)
    folder = work / model
    src = build_bundled([model], h, w, folder)[model]
    frames = load_frames(f"synthetic://?size={size}", frames=4, size=(h, w), seed=0).tensors
    held = load_frames(f"synthetic://?size={size}", frames=2, size=(h, w), seed=9).tensors
    ranges = compute_ranges(src, frames, method="minmax")
    float_model = onnx.load(str(src))
    quantize_qdq(src, work / "int8.onnx", ranges, input_shape=held[0].shape)
    qdq = onnx.load(str(work / "int8.onnx"))
    nodes = [n.name for n in float_model.graph.node if n.op_type in QUANTIZED_OPS and n.name]
    rng = np.random.default_rng(0)
    picks = [str(n) for n in rng.choice(nodes, size=min(trials, len(nodes)), replace=False)]
    quantizer_s, rewrite_s, session_s, equal = [], [], [], []
    for node in picks:
        t = time.perf_counter()
        quantize_qdq(src, work / "q.onnx", ranges, input_shape=held[0].shape, exclude_nodes=[node])
        quantizer_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        onnx.save(with_float_nodes(qdq, float_model, [node]), str(work / "r.onnx"))
        rewrite_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        got = run_outputs(work / "r.onnx", held)
        session_s.append(time.perf_counter() - t)
        want = run_outputs(work / "q.onnx", held)
        equal.append(all(np.array_equal(g[k], v[k]) for g, v in zip(got, want, strict=True) for k in v))
        print(
            model, node, f"quantizer {quantizer_s[-1]:.2f} s, rewrite {rewrite_s[-1]:.3f} s", file=sys.stderr
        )
    q, r, s = (statistics.median(x) for x in (quantizer_s, rewrite_s, session_s))
    return {
        "quantizable_nodes": len(nodes),
        "trials": len(picks),
        "quantizer_median_s": q,
        "rewrite_median_s": r,
        "session_and_run_median_s": s,
        "model_ratio": q / r,
        "trial_ratio": (q + s) / (r + s),
        "outputs_equal_every_trial": all(equal),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["depth_small", "panoptic_fpn_small"])
    ap.add_argument("--size", default="256x512")
    ap.add_argument("--trials", type=int, default=6, help="single-layer trials per model")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/sensitivity_trials_cpu.json"))
    args = ap.parse_args()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models:
            results[model] = time_model(model, args.size, args.trials, Path(tmp))
    report = {
        "benchmark": "a sensitivity-pass trial's model: ONNX Runtime's quantizer with nodes_to_exclude "
        "(before) vs calib.float_nodes.with_float_nodes on the all-INT8 model (now)",
        **bundled_provenance(),
        "size": args.size,
        "results": results,
    }
    write_result(args.out, report)
    for model, r in results.items():
        print(
            f"{model}: model {r['model_ratio']:.0f}x, whole trial {r['trial_ratio']:.1f}x quicker; "
            f"outputs equal: {r['outputs_equal_every_trial']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
