"""The two held-out synthetic val splits the model benchmarks evaluate on.

Seed 1 is the split of the demo-weights evaluation (benchmarks/results/
demo_weights_synthetic_val.json), on which choices are made; seed 2 is a second split on
which nothing is chosen.
"""

from __future__ import annotations

from pathlib import Path

from edge.data.make_synthetic import write_dataset

SIZE = (256, 512)
DESCRIPTION = "write_dataset(sequences=4, frames=30, size=256x512, split=val, gt_every=5, seed=1 or 2)"


def write_val_splits(root: Path) -> dict[str, Path]:
    """``{"val_seed1": folder, "val_seed2": folder}`` under ``root``, in Cityscapes' layout."""
    splits = {"val_seed1": root / "val1", "val_seed2": root / "val2"}
    for seed, folder in enumerate(splits.values(), start=1):
        write_dataset(folder, sequences=4, frames=30, size=SIZE, split="val", gt_every=5, seed=seed)
    return splits
