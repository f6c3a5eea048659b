"""How flat a depth model reads the road at each engine size.

    python benchmarks/road_fit_sizes.py --weights edge/weights/depth_tiny.pt both.pt \
        --out benchmarks/results/road_fit_sizes_cpu.json

A tracker without a camera height fits the road's plane to each frame's depth map
(edge.postprocess.road_fit) and takes it only where the road's far rows and near rows agree
on the horizon (``bend`` at most 0.03 of the picture's height). A depth network fed half
the rows it learnt on can read the road bent, and then no plane is taken. For each
checkpoint of ``--model`` and each ``--sizes``, this runs the network (torch, CPU) on
frames of synthetic drives from both lanes, seeds the training never draws in the same
order (901-904, frames 5, 25 and 45), resized to that size by the engines' preprocessing
(edge.stream.steps.preprocess), and records the median bend, horizon and reach of the frames' fits
(the synthetic camera's truth: horizon 0.45, reach 2.2 x 1.2 m = 2.64) and the per-pixel
depth AbsRel.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import write_runs
from edge.build import parse_size
from edge.data.cityscapes import label_to_train_lut
from edge.data.synthetic import SyntheticDrive
from edge.models.checkpoints import load_checkpoint
from edge.models.zoo import bundled_weights, create_model
from edge.postprocess.road_fit import fit_road
from edge.stream.steps import preprocess
from edge.util.fs import sha256_file

SEEDS = (901, 902, 903, 904)
FRAMES = (5, 25, 45)


def frames(height: int, width: int) -> list[Any]:
    return [
        SyntheticDrive(height=height, width=width, seed=seed, lane=lane).render(i)
        for seed in SEEDS
        for lane in ("right", "centre")
        for i in FRAMES
    ]


def score(model: torch.nn.Module, shots: list[Any], size: tuple[int, int]) -> dict[str, Any]:
    lut = label_to_train_lut()
    h, w = size
    bends, horizons, reaches, abs_rel = [], [], [], []
    for shot in shots:
        _, tensor = preprocess(shot.image, size)
        with torch.no_grad():
            depth = model(torch.from_numpy(tensor))["depth"][0, 0].numpy()
        semantic = cv2.resize(lut[shot.label_ids].astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST)
        truth = cv2.resize(shot.depth, (w, h), interpolation=cv2.INTER_NEAREST)
        seen = truth > 0
        abs_rel.append(float(np.mean(np.abs(depth[seen] - truth[seen]) / truth[seen])))
        fit = fit_road(semantic, depth)
        if fit is None:
            continue
        horizons.append(fit.horizon)
        reaches.append(fit.reach)
        if fit.bend is not None:
            bends.append(fit.bend)

    def median(values: list[float]) -> float | None:
        return round(statistics.median(values), 4) if values else None

    return {
        "size": f"{h}x{w}",
        "frames": len(shots),
        "fits": len(horizons),
        "bend_p50": median(bends),
        "horizon_p50": median(horizons),
        "reach_p50": median(reaches),
        "depth_abs_rel": round(statistics.mean(abs_rel), 4),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="depth_tiny")
    ap.add_argument("--weights", nargs="+", help="checkpoints (default: the bundled one)")
    ap.add_argument("--sizes", nargs="+", default=["256x512", "128x256"])
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    torch.set_num_threads(1)
    weights = args.weights or [str(bundled_weights(args.model))]
    sizes = [parse_size(text) for text in args.sizes]
    shots = frames(256, 512)
    runs = []
    for path in weights:
        model = create_model(args.model)
        load_checkpoint(model, path)
        for size in sizes:
            run = {"weights": path, "weights_sha256": sha256_file(path), **score(model, shots, size)}
            print(run, flush=True)
            runs.append(run)
    write_runs(
        args.out,
        what=__doc__.splitlines()[0],
        runs=runs,
        baseline=None,
        model=args.model,
        truth={"horizon": 0.45, "reach": 2.64},
    )


if __name__ == "__main__":
    main()
