"""The exporter's optimiser with and without the rules edge sets aside (edge/export/optimize.py).

    python benchmarks/export_optimizer.py --out benchmarks/results/export_optimizer_cpu.json

For each zoo model (random weights: the graph does not depend on them): one export without
optimisation, then onnxscript's optimiser on copies of it, whole and without
SKIPPED_RULES, in alternating runs. Reported: the seconds of each (median), their ratio,
the nodes before and after, and whether the two optimised models are the same bytes,
which is what lets export_onnx leave the rules out.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine, write_result
from edge.build import parse_size
from edge.build_key import tool_versions
from edge.export.onnx import _quiet_exporter, output_names, traced_program
from edge.export.optimize import SKIPPED_RULES, without_rules
from edge.models.zoo import create_model, list_models


def unoptimized(name: str, height: int, width: int) -> tuple[Any, float]:
    """export_onnx's program of the model (its opset and translations), not yet optimised."""
    import torch

    model = create_model(name, seed=0).eval()
    example = torch.rand(1, 3, height, width) * 255.0
    start = time.perf_counter()
    with _quiet_exporter():
        program = traced_program(model, example, names=output_names(model, example))
    return program, time.perf_counter() - start


def optimized(proto: Any, *, whole: bool) -> tuple[bytes, float, int]:
    import onnx_ir as ir
    from torch.onnx._internal._lazy_import import onnxscript_apis  # what ONNXProgram.optimize calls

    model = ir.serde.deserialize_model(proto)
    start = time.perf_counter()
    with _quiet_exporter():
        if whole:
            onnxscript_apis.optimize(model)
        else:
            with without_rules():
                onnxscript_apis.optimize(model)
        seconds = time.perf_counter() - start
        data = ir.serde.serialize_model(model).SerializeToString()  # notes on the plugin's outputs
    return data, seconds, len(model.graph)


def measure(name: str, height: int, width: int, pairs: int) -> dict[str, Any]:
    import onnx_ir as ir

    program, export_s = unoptimized(name, height, width)
    with _quiet_exporter():
        proto = ir.serde.serialize_model(program.model)
    whole_s, without_s, same = [], [], True
    for _ in range(pairs):
        a, ta, nodes = optimized(proto, whole=True)
        b, tb, _ = optimized(proto, whole=False)
        whole_s.append(ta)
        without_s.append(tb)
        same = same and a == b
    whole, without = statistics.median(whole_s), statistics.median(without_s)
    return {
        "unoptimized_export_s": round(export_s, 2),
        "nodes_before": len(program.model.graph),
        "nodes_after": nodes,
        "optimize_whole_s": round(whole, 3),
        "optimize_without_s": round(without, 3),
        "ratio": round(whole / without, 2),
        "same_bytes": same,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=list_models())
    ap.add_argument("--size", default="128x256", help="input size (the node count does not depend on it)")
    ap.add_argument("--pairs", type=int, default=2, help="alternating pairs of runs per model")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/export_optimizer_cpu.json"))
    args = ap.parse_args()
    height, width = parse_size(args.size)
    results: dict[str, Any] = {}
    for name in args.models:
        results[name] = measure(name, height, width, args.pairs)
        print(name, results[name], flush=True)
    write_result(
        args.out,
        {
            "benchmark": "export_optimizer",
            "skipped_rules": list(SKIPPED_RULES),
            "size": args.size,
            "pairs": args.pairs,
            "machine": machine(),
            "versions": tool_versions(),
            "models": results,
        },
    )
    print(f"wrote {args.out}")
    return 0 if all(r["same_bytes"] for r in results.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
