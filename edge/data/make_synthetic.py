"""Write synthetic drives in Cityscapes' layout (``edge make-synthetic``).

Each sequence is one SyntheticDrive. Images go to leftImg8bit_sequence for every frame;
ground truth (gtFine labelIds + instanceIds, disparity, camera) for every
``gt_every``-th frame (frame 19 of 30, like Cityscapes, with the default 20), or all.
A split is written into a temporary folder beside the output and moved into place only
when complete, so an interrupted run leaves no partial split.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edge.data.cityscapes import FrameRef, depth_to_disparity_png
from edge.data.synthetic import BASELINE, LANES, SyntheticDrive
from edge.errors import ConfigError, DatasetError

TOPS = ("leftImg8bit_sequence", "gtFine", "disparity", "camera")
CITY = "synthetic"


def is_gt_frame(frame: int, gt_every: int) -> bool:
    """gt_every=20 marks frames 19, 39, ... (Cityscapes annotates the 20th frame of 30)."""
    return gt_every <= 1 or (frame + 1) % gt_every == 0


def write_dataset(
    out: str | Path,
    *,
    sequences: int,
    frames: int = 30,
    size: tuple[int, int] = (512, 1024),
    split: str = "val",
    gt_every: int = 20,
    seed: int = 0,
    cut_ins: int = 0,
    lane: str = "centre",
    lead_brakes: bool = False,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Render ``sequences`` x ``frames`` frames; returns counts. Seeds differ per split.
    ``cut_ins``: road users in each drive that enter the camera's path; ``lane``: where the
    camera drives; ``lead_brakes``: the car ahead in its lane brakes to a stop (SyntheticDrive)."""
    import cv2

    if sequences < 1 or frames < 1:
        raise ConfigError(f"sequences and frames must be >= 1, got {sequences} and {frames}")
    if cut_ins < 0:
        raise ConfigError(f"cut_ins must be >= 0, got {cut_ins}")
    if lane not in LANES:
        raise ConfigError(f"lane must be one of {', '.join(LANES)}, got {lane!r}")
    if not split or not split.replace("_", "").isalnum():
        raise ConfigError(f"split {split!r} must be a plain name such as train or val")
    root = Path(out)
    taken = [root / top / split for top in TOPS if (root / top / split).exists()]
    if taken:
        raise DatasetError(
            f"{str(taken[0])!r} already exists: choose another --out or --split, or remove it first"
        )
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{split}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    h, w = size
    split_seed = seed * 7919 + sum(map(ord, split))  # train and val differ for one --seed
    gt_frames = 0
    try:
        done = 0
        for s in range(sequences):
            drive = SyntheticDrive(
                height=h,
                width=w,
                seed=split_seed * 1000 + s,
                cut_ins=cut_ins,
                lane=lane,
                lead_brakes=lead_brakes,
            )
            camera = json.dumps(drive.camera.to_json(), indent=2)
            for f in range(frames):
                ref = FrameRef(tmp, split, CITY, s, f)
                has_gt = is_gt_frame(f, gt_every)
                gt = drive.render(f)
                _imwrite(ref.path("image"), cv2.cvtColor(gt.image, cv2.COLOR_RGB2BGR))
                if has_gt:
                    gt_frames += 1
                    _imwrite(ref.path("labelIds"), gt.label_ids)
                    _imwrite(ref.path("instanceIds"), gt.instance_ids.astype(np.uint16))
                    _imwrite(
                        ref.path("disparity"), depth_to_disparity_png(gt.depth, BASELINE, drive.camera.f)
                    )
                    ref.path("camera").parent.mkdir(parents=True, exist_ok=True)
                    ref.path("camera").write_text(camera)
                done += 1
                if progress is not None:
                    progress(done)
        for top in TOPS:
            src = tmp / top / split
            if src.exists():
                (root / top).mkdir(exist_ok=True)
                src.rename(root / top / split)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "root": str(root),
        "split": split,
        "sequences": sequences,
        "frames": sequences * frames,
        "gt_frames": gt_frames,
    }


def _imwrite(path: Path, image: np.ndarray) -> None:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), image):
        raise DatasetError(f"could not write {str(path)!r} (disk full or not writable?)")
