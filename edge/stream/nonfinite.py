"""NaN or inf in an engine's outputs: an FP16 or INT8 build that overflows, or a broken
engine. Said once an engine kind for a run, with which outputs and how much of them, since
otherwise a user finds it only as things without distances (the depth map) or a picture
with no things and one class (the panoptic engine)."""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from edge.stream.engines import EngineSet

# the outputs of each kind a NaN or inf is looked for in: the depth map, and the panoptic
# engine's float outputs (their rows past num_detections are zeros)
CHECKED = {"depth": ("depth",), "panoptic": ("boxes", "scores", "masks", "sem_logits")}
# what such values cost, by output
COST = {
    "depth": "things over those pixels get no distance from it",
    "boxes": "detections with a NaN or inf box are left out",
    "scores": "detections with a NaN or inf score are left out",
    "masks": "a detection's mask's NaN pixels are not pasted (all NaN: no thing)",
    "sem_logits": "pixels whose class logits are NaN are given a class that means nothing",
}


def nonfinite_share(values: np.ndarray) -> float:
    """The share of ``values`` that are NaN or inf: 0 for most outputs, found in one pass (a
    NaN or inf anywhere makes the sum one)."""
    if math.isfinite(float(values.sum())):
        return 0.0
    return 1.0 - float(np.isfinite(values).mean())


def nonfinite_note(kind: str, shares: Mapping[str, float], engine: str | None, seq: int) -> str:
    """What to say of frame ``seq``'s outputs of the ``kind`` engine (described as ``engine``)
    that hold NaN or inf: ``shares``, the share of each such output's values."""
    name = f"the {kind} engine ({engine})" if engine else f"the {kind} engine"
    if kind == "depth":
        where = f"at {shares['depth']:.1%} of frame {seq}'s pixels"
    else:
        parts = [f"{output} ({share:.1%} of their values)" for output, share in shares.items()]
        where = f"in its {', '.join(parts)} at frame {seq}"
    return (
        f"{name} gave NaN or inf {where}: an FP16 or INT8 build that overflows, or a broken engine "
        "(edge engines --verify hashes the folder; an fp32 build of the same weights compares); "
        + "; ".join(COST[output] for output in shares)
    )


def say_nonfinite(engines: EngineSet, outputs: Mapping[str, Mapping[str, np.ndarray]], seq: int) -> None:
    """Say, on standard error, the first frame whose outputs of each engine kind hold NaN or
    inf (nonfinite_note); a kind said is not looked at again."""
    for kind, names in CHECKED.items():
        if kind not in outputs or kind in engines.nonfinite_said:
            continue
        shares = {n: s for n in names if n in outputs[kind] and (s := nonfinite_share(outputs[kind][n]))}
        if shares:
            engines.nonfinite_said.add(kind)
            print(
                f"warning: {nonfinite_note(kind, shares, engines.described.get(kind), seq)}", file=sys.stderr
            )
