"""Frames of another shape than the engines': stretched into them, padded, cropped, or engines of their shape?

    python benchmarks/aspect_trial.py --out benchmarks/results/aspect_trial_cpu.json
    python benchmarks/aspect_trial.py --size 288x512 --out benchmarks/results/aspect_trial_16x9_cpu.json
    python benchmarks/aspect_trial.py --size 128x512 --out benchmarks/results/aspect_trial_4x1_cpu.json

A synthetic drive with ground truth on every frame (``--size``, default 384x512, 4:3) is
replayed with the bundled tiny weights through ONNX Runtime engines built at 256x512, the
demo's 2:1, twice: stretched into them (preprocess's default, squashing a 4:3 frame to
67% of its height, which edge warns of), padded into them (``--fit pad``: the frame
whole, centred, its outputs cropped back) and cropped (``--fit crop``: the frame's middle,
scaled to cover them; scored on that part, whose share of the frame is recorded); and
through the same models built at the frames' own shape, as the warning advises. Recorded:
PQ, mIoU, per-pixel depth and object distance for each.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import build_bundled, bundled_provenance, write_result
from edge.build import parse_size
from edge.data.make_synthetic import write_dataset
from edge.replay import replay
from edge.stream.steps import stretch_note

MODELS = ("panoptic_fpn_tiny", "depth_tiny")


def headline(metrics: dict[str, Any]) -> dict[str, Any]:
    o = metrics.get("object_distance") or {}
    return {
        "pq": metrics["panoptic"]["all"]["pq"],
        "miou": metrics["semantic"]["miou"],
        "depth_abs_rel": metrics["depth"]["abs_rel"],
        "depth_delta1": metrics["depth"]["delta1"],
        "object_distance_abs_rel": o.get("abs_rel"),
        "matched_objects": o.get("objects"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="384x512", help="the drive's frames, HxW; default: %(default)s")
    ap.add_argument("--sequences", type=int, default=2)
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/aspect_trial_cpu.json"))
    args = ap.parse_args()
    frame_hw = parse_size(args.size)
    runs: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "drive"
        write_dataset(
            data, sequences=args.sequences, frames=args.frames, size=frame_hw, seed=args.seed, gt_every=1
        )
        trials = (
            ("stretched_into_2to1", (256, 512), "stretch"),
            ("padded_into_2to1", (256, 512), "pad"),
            ("cropped_into_2to1", (256, 512), "crop"),
            ("engines_of_its_shape", frame_hw, "stretch"),
        )
        for name, engine_hw, fit in trials:
            folder = Path(tmp) / f"{engine_hw[0]}x{engine_hw[1]}"
            if not folder.is_dir():
                build_bundled(MODELS, *engine_hw, folder)
            report = replay(f"cityscapes://{data}?fps=0", engines=folder, threads=1, fit=fit)
            runs[name] = {
                "engines": f"{engine_hw[0]}x{engine_hw[1]}",
                "fit": fit,
                "warning": stretch_note(frame_hw, engine_hw) if fit == "stretch" else None,
                "frames": report["gt_frames"],
                **headline(report["metrics"]),
                **({"scored_part": report["scored_part"]} if "scored_part" in report else {}),
            }
            print(name, runs[name])
    write_result(
        args.out,
        {
            "what": __doc__.split("\n\n")[0],
            "command": " ".join(sys.argv),
            "frames": f"{args.sequences} synthetic drives x {args.frames} at {args.size}, seed {args.seed}",
            **bundled_provenance(),
            "runs": runs,
        },
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
