"""Does weighting objects in the depth loss fix how far away they are put?

    python benchmarks/depth_object_weight.py --out benchmarks/results/depth_object_weight_cpu.json
    python benchmarks/depth_object_weight.py --model depth_small --runs base,ft_w1_600,ft_w10_600 \
        --out benchmarks/results/depth_object_weight_small_cpu.json

The first shipped depth_tiny weights scored a per-pixel AbsRel of 0.085 on the synthetic
val split, yet put matched objects about 20% too far (object distance AbsRel 0.26):
things are a few percent of the pixels, so the loss hardly sees them. Starting from
``--base`` (the recorded run used those first weights, ``git show
876f1ea:edge/weights/depth_tiny.pt``; the shipped ones unless given), this fine-tunes
depth_tiny on synthetic drives with ``edge train``'s ``object_weight`` at 1 (more
training alone, the control) and above, then replays two held-out val splits through
ONNX Runtime with the shipped panoptic_fpn_tiny and records per-pixel depth and object
distance metrics for each: seed 1, the split of the demo-weights evaluation
(benchmarks/results/demo_weights_synthetic_val.json), on which a run is chosen, and seed
2, on which nothing was chosen. ``--model depth_small`` does the same for the small pair
(replayed with the shipped panoptic_fpn_small).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.val_splits import DESCRIPTION, SIZE, write_val_splits
from edge.build import BuildRequest, build_all
from edge.models.zoo import bundled_weights
from edge.platform_info import system_info
from edge.replay import replay
from edge.train.trainer import train
from edge.util.fs import atomic_write_json, sha256_file

# (name, fine-tune steps, object weight); 0 steps: the --base weights as they are
RUNS = [
    ("base", 0, 1.0),
    ("ft_w1_300", 300, 1.0),
    ("ft_w4_300", 300, 4.0),
    ("ft_w1_600", 600, 1.0),
    ("ft_w10_600", 600, 10.0),
]
DEFAULT_RUNS = "base,ft_w1_300,ft_w4_300,ft_w10_600"  # the recorded depth_tiny sweep
PANOPTIC_PARTNER = {"depth_tiny": "panoptic_fpn_tiny", "depth_small": "panoptic_fpn_small"}


def evaluate(model: str, depth_ckpt: Path, data: Path, work: Path) -> dict[str, Any]:
    engines = work / "engines"
    panoptic = PANOPTIC_PARTNER[model]
    reqs = [
        BuildRequest(model=panoptic, height=SIZE[0], width=SIZE[1], checkpoint=bundled_weights(panoptic)),
        BuildRequest(model=model, height=SIZE[0], width=SIZE[1], checkpoint=depth_ckpt),
    ]
    build_all(reqs, engines, show_progress=False)
    metrics = replay(f"cityscapes://{data}?split=val&fps=0", engines=engines, threads=1)["metrics"]
    return {"depth": metrics["depth"], "object_distance": metrics["object_distance"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/depth_object_weight_cpu.json"))
    ap.add_argument("--model", choices=sorted(PANOPTIC_PARTNER), default="depth_tiny")
    ap.add_argument("--base", type=Path, help="weights to start from (default: the shipped ones)")
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument(
        "--runs",
        default=DEFAULT_RUNS,
        help=f"comma-separated, of {', '.join(r[0] for r in RUNS)} (default: {DEFAULT_RUNS})",
    )
    ap.add_argument("--keep", type=Path, help="a folder to keep the fine-tuned weights in (default: none)")
    ap.add_argument(
        "--update",
        action="store_true",
        help="keep the runs --out already holds (from the same --model and --base) beside the new ones",
    )
    ap.add_argument(
        "--trained",
        action="append",
        default=[],
        metavar="RUN=PATH",
        help="evaluate these weights for RUN instead of fine-tuning them here: weights made by "
        "edge train with RUN's settings (the command is recorded), e.g. in parallel on another core",
    )
    args = ap.parse_args()
    base = args.base or bundled_weights(args.model)
    if base is None or not base.is_file():
        ap.error(f"--base: no {args.model} weights at {base}")
    wanted = [r.strip() for r in args.runs.split(",") if r.strip()]
    unknown = sorted(set(wanted) - {r[0] for r in RUNS})
    if unknown or not wanted:
        ap.error(f"--runs {args.runs!r}: unknown {unknown}; choose from {', '.join(r[0] for r in RUNS)}")
    trained = {}
    for item in args.trained:
        name, _, path = item.partition("=")
        if name not in {r[0] for r in RUNS} or not Path(path).is_file():
            ap.error(f"--trained {item!r}: expected RUN=PATH, RUN one of the runs, PATH a weights file")
        trained[name] = Path(path)
    results: dict[str, Any] = {}
    commands = [" ".join(["python", *sys.argv])]
    if args.update and args.out.is_file():
        earlier = json.loads(args.out.read_text())
        if earlier.get("base", {}).get("sha256") != sha256_file(base) or args.model not in earlier["what"]:
            ap.error(f"--update: {args.out} holds runs of other weights or another model")
        results = {k: v for k, v in earlier["runs"].items() if k not in wanted}
        before = earlier.get("commands") or ([earlier["command"]] if "command" in earlier else [])
        commands = [*before, *commands]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        splits = write_val_splits(root)
        for name, steps, weight in [r for r in RUNS if r[0] in wanted]:
            t0 = time.perf_counter()
            ckpt = base
            made_by = None
            if steps and name in trained:
                ckpt = trained[name]
                made_by = (
                    f"edge train --model {args.model} --init {base} --steps {steps} --batch 4 "
                    f"--size {SIZE[0]}x{SIZE[1]} --threads 1 --lr {args.lr} --object-weight {weight} --seed 5"
                )
            elif steps:
                ckpt = root / f"{name}.pt"
                train(
                    args.model,
                    steps=steps,
                    out=ckpt,
                    size=SIZE,
                    batch=4,
                    lr=args.lr,
                    seed=5,
                    init=base,
                    threads=1,
                    object_weight=weight,
                )
                if args.keep is not None:
                    args.keep.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(ckpt, args.keep / ckpt.name)
            results[name] = {"fine_tune_steps": steps, "object_weight": weight, "sha256": sha256_file(ckpt)}
            if made_by:
                results[name]["trained_by"] = made_by
            for split, folder in splits.items():
                results[name][split] = evaluate(args.model, ckpt, folder, root / name / split)
                d, o = results[name][split]["depth"], results[name][split]["object_distance"]
                print(
                    f"{name:<12} {split}  pixels AbsRel {d['abs_rel']:.3f} RMSE {d['rmse']:.2f}  "
                    f"objects AbsRel {o['abs_rel']:.3f} |err| p50 {o['abs_err_m_p50']:.1f} m "
                    f"within 10% {o['within_10pct']:.2f}  ({time.perf_counter() - t0:.0f} s)",
                    flush=True,
                )
            write_record(args.out, args.model, base, args.lr, results, commands)
    print(f"wrote {args.out}")
    return 0


def write_record(
    out: Path, model: str, base: Path, lr: float, results: dict[str, Any], commands: list[str]
) -> None:
    # rewritten after every run so a long sweep that is stopped keeps what it finished
    record = {
        "what": f"{model} fine-tuned from --base with the depth loss's object weight; "
        "depth and object distance on two held-out synthetic val splits "
        f"(replayed with the shipped {PANOPTIC_PARTNER[model]})",
        "commands": commands,
        "machine": system_info(),
        "base": {"path": str(base), "sha256": sha256_file(base)},
        "fine_tune": {"batch": 4, "size": list(SIZE), "lr": lr, "seed": 5, "threads": 1},
        "datasets": DESCRIPTION,
        "runs": results,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out, record)


if __name__ == "__main__":
    raise SystemExit(main())
