"""The post stage of a run whose sinks draw nothing (objects.jsonl, `-`, null://).

    python benchmarks/post_views.py --out benchmarks/results/post_views_cpu.json

The pipeline used to draw the panoptic overlay and the depth colours for every frame,
whatever its sinks showed; now it draws only the views some sink shows. This measures
what that takes off the post stage of an objects-only run: the same pipeline, engines
(the bundled tiny weights, so frames hold things) and source, with the objects.jsonl
sink, drawing every view (as before) or none (as now), in alternating runs. Reported per
input size: the postprocess stage's p50 and mean, end to end p50 and fps, and the ratio
of the postprocess means (drawn / not drawn) per pair of runs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import build_bundled, bundled_provenance, write_result
from edge.build import parse_size
from edge.stream.engines import EngineSet
from edge.stream.pipeline import Pipeline
from edge.stream.sinks import RENDERED_VIEWS, open_sinks
from edge.stream.sources import open_source

MODELS = ("panoptic_fpn_tiny", "depth_tiny")


def one_run(engines_dir: Path, size: str, frames: int, views: Any, out: Path) -> dict[str, Any]:
    engines = EngineSet.from_manifest(engines_dir, size=parse_size(size))
    try:
        sinks = open_sinks([str(out / "objects.jsonl")], fps=17.0, kinds=engines.kinds)
        source = open_source(f"synthetic://?size={size}&frames={frames}&seed=3")
        s = Pipeline(source=source, engines=engines, sinks=sinks, views=views).run()
    finally:
        engines.close()
    post = s["stages_ms"]["postprocess"]
    return {
        "postprocess_p50_ms": post["p50"],
        "postprocess_mean_ms": post["mean"],
        "end_to_end_p50_ms": s["end_to_end_ms"]["p50"],
        "fps": s["fps"],
        "frames": s["frames_out"],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", nargs="+", default=["256x512", "512x1024"])
    ap.add_argument("--frames", type=int, default=40, help="frames per run")
    ap.add_argument("--pairs", type=int, default=3, help="alternating pairs of runs per size")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/post_views_cpu.json"))
    args = ap.parse_args()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for size in args.sizes:
            h, w = parse_size(size)
            build_bundled(MODELS, h, w, work / "engines")
            runs: dict[str, list[dict[str, Any]]] = {"drawn": [], "not_drawn": []}
            for _ in range(args.pairs):
                for name, views in (("drawn", RENDERED_VIEWS), ("not_drawn", None)):
                    runs[name].append(one_run(work / "engines", size, args.frames, views, work))
                    print(size, name, runs[name][-1], file=sys.stderr)
            ratios = [
                a["postprocess_mean_ms"] / b["postprocess_mean_ms"]
                for a, b in zip(runs["drawn"], runs["not_drawn"], strict=True)
            ]
            results[size] = {
                "runs": runs,
                "postprocess_mean_ratio_per_pair": ratios,
                "postprocess_mean_ratio_median": statistics.median(ratios),
            }
    report = {
        "benchmark": "post stage of an objects.jsonl-only run: every view drawn (before) vs none (now)",
        **bundled_provenance(),
        "models": list(MODELS),
        "frames_per_run": args.frames,
        "results": results,
    }
    write_result(args.out, report)
    for size, r in results.items():
        print(f"{size}: postprocess mean drawn/not drawn {r['postprocess_mean_ratio_median']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
