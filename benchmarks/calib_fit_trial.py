"""Does INT8 calibration need frames put into the engines as the run will put them?

    python benchmarks/calib_fit_trial.py --out benchmarks/results/calib_fit_trial_cpu.json

Engines built 2:1 (256x512) fed frames of another shape are either stretched into the
input (`edge run`'s default) or padded (`--fit pad`: scaled whole, centred on the models'
mean colour). Calibration has always stretched its frames. Here each zoo model with its
bundled weights is calibrated as `edge build --precision int8` does (entropy, equalized)
on synthetic frames of a 16:9 and a 4:3 drive, stretched and padded (calib.calibrate's
``fit``), with three calibration seeds to show how far another sample moves the result;
each INT8 model is then scored against the float one on held-out frames of the same drive
put in both ways: the SNR of every dense float output, depth's mean relative error and the
agreement of the semantic labels, on the frame's part of the input (a run crops the
padding's outputs away).
Calibrating as the run feeds the frames would matter if the matched pairs scored better
than the crossed ones by more than the seeds move them.
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

FITS = ("stretch", "pad")


def score(
    float_model: Path, int8_model: Path, tensors: list[np.ndarray], part: tuple[int, int] | None = None
) -> dict[str, float]:
    """Mean SNR (dB) of each dense float output over ``tensors``, and the semantic labels'
    agreement, INT8 against float on ONNX Runtime, as the build's check compares them
    (edge.verify.compare_quantized); and depth's mean relative error in dB
    (``depth_rel_db``), which the calibration's own choices judge it by and AbsRel follows
    (an SNR of depth is carried by the far pixels): on the frames' ``part`` of the input
    where they were padded into it, what a run keeps."""
    from calib.sensitivity import relative_db
    from edge.stream.fit import unpad_outputs
    from edge.util.ort import onnxruntime_module
    from edge.verify import compare_quantized

    ort = onnxruntime_module()
    ref, q = (
        ort.InferenceSession(str(m), providers=["CPUExecutionProvider"]) for m in (float_model, int8_model)
    )
    names = [o.name for o in ref.get_outputs()]
    seen: dict[str, list[float]] = {}
    for x in tensors:
        input_hw = (x.shape[2], x.shape[3])
        a, b = (dict(zip(names, s.run(None, {"image": x}), strict=True)) for s in (ref, q))
        if part is not None:
            a, b = unpad_outputs(a, part, input_hw), unpad_outputs(b, part, input_hw)
        report: dict[str, Any] = compare_quantized(a, b)
        for n in ("depth", "disparity", "sem_logits"):
            if n in report:
                seen.setdefault(f"{n}_snr_db", []).append(report[n]["snr_db"])
        if "depth" in a:
            seen.setdefault("depth_rel_db", []).append(relative_db(a["depth"], b["depth"]))
        if "sem_labels" in report:
            seen.setdefault("sem_label_agreement", []).append(report["sem_labels"]["agreement"])
    return {k: float(np.mean(v)) for k, v in seen.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["depth_small", "panoptic_fpn_small"])
    ap.add_argument("--sizes", nargs="+", default=["288x512", "384x512"], help="the drives' frames")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="calibration samples")
    ap.add_argument("--frames", type=int, default=32, help="calibration frames")
    ap.add_argument("--held-out", type=int, default=16)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/calib_fit_trial_cpu.json"))
    args = ap.parse_args()

    from calib import calibrate
    from calib.data import load_frames

    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="edge-calib-fit-") as tmp:
        folder = Path(tmp)
        exports = build_bundled(args.models, 256, 512, folder / "engines")
        for model in args.models:
            float_model = exports[model]
            for size in args.sizes:
                drive = f"synthetic://?size={size}&seed=5"
                held = {
                    fit: load_frames(
                        f"synthetic://?size={size}&seed=9", frames=args.held_out, size=(256, 512), fit=fit
                    )
                    for fit in FITS
                }
                # a run keeps the frame's part of the input: scored there (all of it stretched)
                part = {f: held[f].part_hw((256, 512)) for f in FITS}
                for seed in args.seeds:
                    for fit in FITS:
                        start = time.perf_counter()
                        out_dir = folder / f"{model}_{size}_{seed}_{fit}"
                        result = calibrate(
                            float_model, source=drive, out_dir=out_dir, frames=args.frames, seed=seed, fit=fit
                        )
                        spent = time.perf_counter() - start
                        run = {
                            "model": model,
                            "frames_hw": size,
                            "calibration_seed": seed,
                            "calibrated": fit,
                            "calibration_s": spent,
                            "scores": {
                                f"run_{f}": score(float_model, result.qdq_model, held[f].tensors, part[f])
                                for f in FITS
                            },
                        }
                        runs.append(run)
                        print(f"{model} {size} seed {seed} calibrated {fit:7s} {run['scores']}", flush=True)
    write_result(
        args.out,
        {
            "what": "INT8 calibrated on stretched vs padded frames, scored on both (calib_fit_trial.py)",
            "command": " ".join(sys.argv),
            **bundled_provenance(),
            "engines_hw": [256, 512],
            "summary": summarize(runs),
            "runs": runs,
        },
    )
    print(f"wrote {args.out}")


def summarize(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per model, drive and way of running: each score's mean over the seeds when calibrated
    the same way (matched) and the other way (crossed), and the seeds' spread (the largest
    difference between two seeds of one calibration)."""
    out = []
    keys = sorted({(r["model"], r["frames_hw"]) for r in runs})
    for model, size in keys:
        mine = [r for r in runs if (r["model"], r["frames_hw"]) == (model, size)]
        for run_fit in FITS:
            metrics = mine[0]["scores"][f"run_{run_fit}"].keys()
            row: dict[str, Any] = {"model": model, "frames_hw": size, "run": run_fit}
            for m in metrics:
                matched = [r["scores"][f"run_{run_fit}"][m] for r in mine if r["calibrated"] == run_fit]
                crossed = [r["scores"][f"run_{run_fit}"][m] for r in mine if r["calibrated"] != run_fit]
                row[m] = {
                    "matched": float(np.mean(matched)),
                    "crossed": float(np.mean(crossed)),
                    "seed_spread": float(max(np.ptp(matched), np.ptp(crossed))),
                }
            out.append(row)
    return out


if __name__ == "__main__":
    main()
