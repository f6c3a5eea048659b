"""How long `edge replay`'s scoring takes a frame with ground truth, against an earlier tree.

    git worktree add /tmp/base <commit>
    python benchmarks/eval_speed.py --baseline /tmp/base --out benchmarks/results/eval_speed_cpu.json

One synthetic drive (1024x2048, Cityscapes' size) is rendered with its ground truth; each
frame's prediction is the truth moved 3 pixels right, its instances renumbered, classes not
evaluated left unassigned, and its depth 5% long with noise, with a track for every thing:
the panoptic, semantic, depth, object-distance and tracking scores all have work. The
Evaluator of this tree and of ``--baseline`` (another checkout, e.g. a git worktree of an
earlier commit) score the same frames in turns, each in a process of its own, so the
ratio is measured in one run; the two trees' metrics are compared too.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def frames(size: tuple[int, int], count: int, seed: int) -> list[dict[str, Any]]:
    from edge.data.cityscapes import LABEL_IDS
    from edge.data.synthetic import SyntheticDrive
    from edge.eval.panoptic import EVAL_LABELS

    train_id = np.full(256, 255, np.int32)
    train_id[LABEL_IDS] = np.arange(len(LABEL_IDS))
    drive = SyntheticDrive(height=size[0], width=size[1], seed=seed)
    rng = np.random.default_rng(seed)
    out = []
    for k in range(count):
        gt = drive.render(k * 2)
        ids = np.roll(gt.instance_ids, 3, axis=1)
        cats = np.where(ids >= 1000, ids // 1000, ids)
        ids = np.where(np.isin(cats, list(EVAL_LABELS)), ids, 0)
        ids = np.where(ids >= 1000, ids + 7, ids)  # other instance numbers than the truth's
        depth = gt.depth * 1.05 + rng.normal(0, 0.3, gt.depth.shape).astype(np.float32)
        out.append(
            {
                "gt": gt,
                "panoptic_ids": ids.astype(np.int32),
                "sem_train_ids": train_id[np.roll(gt.label_ids, 3, axis=1)],
                "depth": depth.astype(np.float32),
            }
        )
    return out


def time_here(size: tuple[int, int], count: int, seed: int) -> dict[str, Any]:
    """This interpreter's edge (PYTHONPATH picks the tree) scoring the frames: ms a frame
    and the metrics."""
    from edge.eval.evaluator import Evaluator
    from edge.postprocess.tracks import TrackInfo

    data = frames(size, count, seed)
    ms = []
    for _ in range(2):  # the first pass warms the caches and allocator; the second is timed
        evaluator = Evaluator()
        ms = []
        for k, f in enumerate(data):
            things = np.unique(f["panoptic_ids"])
            tracks = {
                int(p): TrackInfo(track=int(p), frames=k + 1, age_s=k / 17, closing_mps=2.0, ttc_s=8.0)
                for p in things
                if p >= 1000
            }
            start = time.perf_counter()
            evaluator.add(
                gt_label_ids=f["gt"].label_ids,
                gt_instance_ids=f["gt"].instance_ids,
                gt_depth=f["gt"].depth,
                panoptic_ids=f["panoptic_ids"],
                sem_train_ids=f["sem_train_ids"],
                depth=f["depth"],
                tracks=tracks,
                t_s=k * 2 / 17,
                scene=0,
            )
            ms.append((time.perf_counter() - start) * 1000)
    return {"ms": ms, "metrics": evaluator.results(), "edge": str(Path(sys.modules["edge"].__file__).parent)}


def run_tree(tree: Path, args: argparse.Namespace) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    cmd = [sys.executable, __file__, "--here", "--size", args.size, "--frames", str(args.frames), "--seed"]
    done = subprocess.run([*cmd, str(args.seed)], env=env, capture_output=True, text=True, cwd=tree)
    if done.returncode:
        raise SystemExit(f"{tree}: {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


def differences(a: Any, b: Any, path: str = "", rel: float = 1e-6) -> list[str]:
    """Where two metrics trees differ beyond ``rel`` (NaN equals NaN)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = [f"{path}/{k}: only one" for k in set(a) ^ set(b)]
        for k in sorted(set(a) & set(b)):
            out += differences(a[k], b[k], f"{path}/{k}", rel)
        return out
    if isinstance(a, float) and isinstance(b, float):
        same = (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=rel, abs_tol=1e-12)
        return [] if same else [f"{path}: {a} vs {b}"]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        pairs = enumerate(zip(a, b, strict=True))
        return [d for i, (x, y) in pairs for d in differences(x, y, f"{path}[{i}]", rel)]
    return [] if a == b else [f"{path}: {a} vs {b}"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="1024x2048")
    ap.add_argument("--frames", type=int, default=12)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3, help="turns of each tree")
    ap.add_argument("--baseline", type=Path, help="another source tree to time against this one")
    ap.add_argument("--out", type=Path, help="the result file (JSON)")
    ap.add_argument("--here", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    h, w = (int(v) for v in args.size.split("x"))
    if args.here:
        print(json.dumps(time_here((h, w), args.frames, args.seed)))
        return
    sys.path.insert(0, str(ROOT))
    from benchmarks.common import machine, write_result

    trees = {"this": ROOT} | ({"baseline": args.baseline.resolve()} if args.baseline else {})
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in trees}
    for turn in range(args.rounds):
        for name, tree in trees.items():
            runs[name].append(run_tree(tree, args))
            print(f"turn {turn + 1} {name}: {np.median(runs[name][-1]['ms']):.1f} ms a frame", flush=True)
    report: dict[str, Any] = {
        "what": "Evaluator.add on frames with ground truth for every score (benchmarks/eval_speed.py)",
        "command": " ".join(sys.argv),
        "machine": machine(),
        "size": [h, w],
        "frames": args.frames,
    }
    for name, tree in trees.items():
        git = ["git", "describe", "--always", "--dirty"]
        commit = subprocess.run(git, cwd=tree, capture_output=True, text=True)
        per_turn = [float(np.median(r["ms"])) for r in runs[name]]
        report[name] = {"commit": commit.stdout.strip(), "ms_per_frame_p50_per_turn": per_turn}
    if "baseline" in trees:
        before, now = (report[k]["ms_per_frame_p50_per_turn"] for k in ("baseline", "this"))
        ratios = [b / t for b, t in zip(before, now, strict=True)]
        report["speedup_per_turn"] = ratios
        diff = differences(runs["baseline"][0]["metrics"], runs["this"][0]["metrics"])
        report["metrics_differ"] = diff
        print(f"speed-up {', '.join(f'{r:.2f}x' for r in ratios)}; metrics differ at {len(diff)} places")
    report["metrics"] = runs["this"][0]["metrics"]
    if args.out:
        write_result(args.out, report)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
