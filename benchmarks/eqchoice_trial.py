"""Does the equalization's choice, judged on 4 held-out frames, hold on frames it never saw?

    python benchmarks/eqchoice_trial.py --out benchmarks/results/eqchoice_trial_cpu.json

`edge build --precision int8` equalizes convolutions whose input channels differ wildly in
range, starting from a threshold rule and keeping each change a trial in the all-INT8
model scores at least MIN_GAIN_DB better on the calibration's 4 held-out frames
(calib/eqchoice.py). Four frames are few: a change could win there by chance. Here each
zoo model with its bundled weights is calibrated as the build does (64 frames of the
synthetic drive, entropy), once with the choice and once with the threshold rule alone (no
trial's gain is enough to keep it), for several calibration samples; both INT8 models are
then scored against the float one on 16 frames of another drive, as the choice scores
them (calib/sensitivity.py output_scores: depth by its mean relative error, semantic
logits by SNR). The choice is worth its trials where it scores better on those frames too,
by more than the samples move the scores.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import build_bundled, bundled_provenance, write_result

MODES = ("chosen", "rule")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["depth_small", "panoptic_fpn_small"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="calibration samples")
    ap.add_argument("--frames", type=int, default=64, help="calibration frames (the build's default)")
    ap.add_argument("--unseen", type=int, default=16, help="frames of another drive to score on")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/eqchoice_trial_cpu.json"))
    args = ap.parse_args()

    import calib.eqchoice as eqchoice
    from calib import calibrate
    from calib.data import load_frames
    from calib.sensitivity import output_scores, run_outputs

    kept_gain = eqchoice.MIN_GAIN_DB
    unseen = load_frames("synthetic://?seed=9", frames=args.unseen, size=(256, 512))
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="edge-eqchoice-trial-") as tmp:
        folder = Path(tmp)
        exports = build_bundled(args.models, 256, 512, folder / "engines")
        for model in args.models:
            float_model = exports[model]
            ref = run_outputs(float_model, unseen.tensors, threads=1)
            for seed in args.seeds:
                for mode in MODES:
                    # the rule alone: no trial gains enough to be kept
                    eqchoice.MIN_GAIN_DB = kept_gain if mode == "chosen" else float("inf")
                    start = time.perf_counter()
                    try:
                        result = calibrate(
                            float_model,
                            source="synthetic://?seed=5",
                            out_dir=folder / f"{model}_{seed}_{mode}",
                            frames=args.frames,
                            seed=seed,
                        )
                    finally:
                        eqchoice.MIN_GAIN_DB = kept_gain
                    spent = time.perf_counter() - start
                    scores = output_scores(ref, run_outputs(result.qdq_model, unseen.tensors, threads=1))
                    run = {
                        "model": model,
                        "calibration_seed": seed,
                        "equalization": mode,
                        "calibration_s": spent,
                        "changes": result.record.get("equalization_choice", []),
                        "held_out_4_db": result.record["held_out_scores_db"],
                        "unseen_db": scores,
                    }
                    runs.append(run)
                    held = run["held_out_4_db"]
                    print(f"{model} seed {seed} {mode:6s} 4 held out {held} unseen {scores}", flush=True)
    write_result(
        args.out,
        {
            "what": "INT8 equalization chosen on 4 held-out frames vs the threshold rule alone, "
            f"scored on {args.unseen} frames of another drive (eqchoice_trial.py)",
            "command": " ".join(sys.argv),
            **bundled_provenance(),
            "engines_hw": [256, 512],
            "min_gain_db": kept_gain,
            "summary": summarize(runs),
            "runs": runs,
        },
    )
    print(f"wrote {args.out}")


def summarize(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per model and output: the gain of the choice over the rule on the unseen frames
    (per sample, and the least), and on the 4 held-out frames it was chosen on."""
    out = []
    for model in sorted({r["model"] for r in runs}):
        mine = {(r["calibration_seed"], r["equalization"]): r for r in runs if r["model"] == model}
        seeds = sorted({s for s, _ in mine})
        for name in mine[seeds[0], "chosen"]["unseen_db"]:
            unseen, held = (
                [mine[s, "chosen"][key][name] - mine[s, "rule"][key][name] for s in seeds]
                for key in ("unseen_db", "held_out_4_db")
            )
            out.append(
                {
                    "model": model,
                    "output": name,
                    "gain_unseen_db": [round(g, 2) for g in unseen],
                    "least_gain_unseen_db": round(float(np.min(unseen)), 2),
                    "gain_held_out_4_db": [round(g, 2) for g in held],
                }
            )
    return out


if __name__ == "__main__":
    main()
