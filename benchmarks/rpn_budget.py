"""How many RPN proposals the small panoptic models need: recall of large things vs latency.

    python benchmarks/rpn_budget.py --out benchmarks/results/rpn_budget_cpu.json

panoptic_fpn_tiny kept 200 proposals per FPN level before NMS and 64 after it. On the
synthetic drives those 64 go to small, distant things and their near duplicates, so a
car filling the lower left of the frame got no proposal at all. For each budget
(pre-NMS per level, post-NMS) this builds the ONNX Runtime engine with the shipped
weights, replays two held-out val splits (seed 1 and 2, as the demo-weights evaluation)
for PQ, and times the engine on their frames, one thread, the budgets alternating in one
process so their ratios hold on a noisy machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import edge.models.zoo as zoo
from benchmarks.val_splits import DESCRIPTION, SIZE, write_val_splits
from edge.build import BuildRequest, build_all
from edge.models.panoptic_fpn import PanopticFPNConfig
from edge.platform_info import system_info
from edge.replay import replay
from edge.stream.engines import EngineSet
from edge.stream.sources import open_source
from edge.stream.steps import frame_rgb, preprocess
from edge.util.fs import atomic_write_json

BUDGETS = [(200, 64), (400, 150), (1000, 300)]


def with_budget(model: str, pre: int, post: int) -> None:
    """Point the zoo's ``model`` at a copy of its config with this RPN budget."""
    entry = zoo._ZOO[model]
    if not isinstance(entry.config, PanopticFPNConfig):
        raise SystemExit(f"--model {model}: a {entry.kind} model has no RPN; expected a panoptic model")
    config = dataclasses.replace(entry.config, rpn_pre_nms_topk=pre, rpn_post_nms_topk=post)
    zoo._ZOO[model] = dataclasses.replace(entry, config=config)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="panoptic_fpn_tiny")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/rpn_budget_cpu.json"))
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    weights = zoo.bundled_weights(args.model)
    runs: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        splits = write_val_splits(root)
        engines: dict[str, Any] = {}
        for pre, post in BUDGETS:
            name = f"pre{pre}_post{post}"
            with_budget(args.model, pre, post)
            folder = root / name
            build_all(
                [BuildRequest(model=args.model, height=SIZE[0], width=SIZE[1], checkpoint=weights)],
                folder,
                show_progress=False,
            )
            runs[name] = {"rpn_pre_nms_topk_per_level": pre, "rpn_post_nms_topk": post}
            for split, data in splits.items():
                m = replay(f"cityscapes://{data}?split=val&fps=0", engines=folder, threads=1)["metrics"]
                p = m["panoptic"]
                runs[name][split] = {g: p[g] for g in ("all", "things", "stuff")}
                runs[name][split]["per_class"] = {
                    c: p["per_class"][c] for c in ("car", "truck", "person", "bicycle")
                }
            engines[name] = EngineSet.from_manifest(folder, engine_options={"intra_op_threads": 1})
            pq = {(s, g): 100 * runs[name][s][g]["pq"] for s in splits for g in ("things", "all")}
            print(
                f"{name:<16} PQ things {pq['val_seed1', 'things']:.1f} / {pq['val_seed2', 'things']:.1f}  "
                f"all {pq['val_seed1', 'all']:.1f} / {pq['val_seed2', 'all']:.1f}  (val seed 1 / 2)",
                flush=True,
            )
        src = open_source(f"cityscapes://{splits['val_seed1']}?split=val&fps=0")
        tensors = []
        while (frame := src.read()) is not None:
            if frame.meta.get("has_gt"):
                tensors.append(preprocess(frame_rgb(frame), SIZE)[1])
        src.close()
        times: dict[str, list[float]] = {name: [] for name in engines}
        for _ in range(args.repeats):
            for t in tensors:
                for name, es in engines.items():  # alternating: the same machine state for each
                    t0 = time.perf_counter()
                    es.panoptic.infer({"image": t})
                    times[name].append((time.perf_counter() - t0) * 1e3)
        base = float(np.median(times[next(iter(times))]))
        for name, ms in times.items():
            runs[name]["engine_ms_p50"] = float(np.median(ms))
            runs[name]["engine_ms_p90"] = float(np.percentile(ms, 90))
            runs[name]["latency_vs_first"] = float(np.median(ms)) / base
            print(f"{name:<16} engine p50 {np.median(ms):.1f} ms ({np.median(ms) / base:.2f}x)", flush=True)
        for es in engines.values():
            es.close()
    record = {
        "what": f"{args.model}: RPN proposal budget vs PQ (two synthetic val splits) and ONNX Runtime "
        "latency",
        "machine": system_info(),
        "size": list(SIZE),
        "weights": str(weights),
        "datasets": DESCRIPTION,
        "timing": f"{len(tensors)} frames x {args.repeats}, one thread, budgets alternating",
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out, record)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
