"""Frames of another shape than the engines': stretched into them, or engines of their shape?

    python benchmarks/aspect_trial.py --out benchmarks/results/aspect_trial_cpu.json

A 4:3 synthetic drive with ground truth on every frame (``--size``, default 384x512) is
replayed with the bundled tiny weights through ONNX Runtime engines built at 256x512, the
demo's 2:1 (preprocess stretches each frame into them, squashing it to 67% of its height,
which edge now warns of), and through the same models built at the frames' own shape, as
the warning advises. Recorded: PQ, mIoU, per-pixel depth and object distance for both.
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
        for name, engine_hw in (("stretched_into_2to1", (256, 512)), ("engines_of_its_shape", frame_hw)):
            folder = Path(tmp) / name
            build_bundled(MODELS, *engine_hw, folder)
            report = replay(f"cityscapes://{data}?fps=0", engines=folder, threads=1)
            runs[name] = {
                "engines": f"{engine_hw[0]}x{engine_hw[1]}",
                "warning": stretch_note(frame_hw, engine_hw),
                "frames": report["gt_frames"],
                **headline(report["metrics"]),
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
