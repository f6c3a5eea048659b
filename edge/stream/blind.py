"""A panoptic engine whose instance branch finds nothing while its own semantic branch
labels things: an RPN whose objectness is NaN (an FP16 or INT8 build that overflows)
masks every proposal invalid, so no output holds a NaN for edge.stream.nonfinite to see,
and the run shows a road with no one on it. Said once for a run, after ``BLIND_FRAMES``
frames in a row of one camera with no detection and at least ``MIN_THING_SHARE`` of the
pixels in thing classes."""

from __future__ import annotations

import sys
from collections.abc import Hashable, Mapping
from typing import TYPE_CHECKING

import numpy as np

from edge.data.cityscapes import THING_TRAIN_IDS, TRAIN_CLASSES

if TYPE_CHECKING:
    from edge.stream.engines import EngineSet

BLIND_FRAMES = 30  # a second of a 30 fps camera; a working detector misses a car for fewer
MIN_THING_SHARE = 0.02  # of the semantic map's pixels: a 145 x 145 car in a 1024 x 2048 frame
_STRIDE = 4  # every 4th row and column: a 16th of the pixels tell the share
_NAMES = {c.train_id: c.name for c in TRAIN_CLASSES}


def thing_shares(sem_labels: np.ndarray) -> dict[int, float]:
    """The share of the (sampled) pixels of each thing class present in ``sem_labels``
    (train ids, any leading shape)."""
    sample = np.asarray(sem_labels)[..., ::_STRIDE, ::_STRIDE].reshape(-1)
    counts = np.bincount(np.clip(sample, 0, 255).astype(np.intp), minlength=256)
    total = max(sample.size, 1)
    return {t: float(counts[t]) / total for t in THING_TRAIN_IDS if counts[t]}


def blind_note(engine: str | None, frames: int, first: int, last: int, shares: Mapping[int, float]) -> str:
    """What to say of ``frames`` frames (``first`` to ``last``) with no detection whose
    semantic maps put ``shares`` (mean over them, by thing class) of their pixels in things."""
    name = f"the panoptic engine ({engine})" if engine else "the panoptic engine"
    top = sorted(shares.items(), key=lambda kv: -kv[1])[:3]
    classes = ", ".join(f"{_NAMES[t]} {s:.1%}" for t, s in top)
    return (
        f"{name} found no things in {frames} frames in a row (frames {first} to {last}) while its "
        f"semantic branch put {sum(shares.values()):.1%} of their pixels in thing classes ({classes}): "
        "its instance branch may be giving nothing, as an RPN whose scores are NaN does (an FP16 or "
        "INT8 build that overflows, or a broken engine: edge engines --verify hashes the folder; an "
        "fp32 build of the same weights compares), or every detection is below its score threshold"
    )


class _Streak:
    __slots__ = ("first", "frames", "sums")

    def __init__(self, first: int) -> None:
        self.first = first
        self.frames = 0
        self.sums: dict[int, float] = {}


def say_blind(
    engines: EngineSet, outputs: Mapping[str, Mapping[str, np.ndarray]], seq: int, camera: Hashable = None
) -> None:
    """Count ``camera``'s frames in a row whose panoptic outputs hold no detection and at
    least MIN_THING_SHARE thing pixels; at BLIND_FRAMES, say so on standard error (blind_note),
    once for the run."""
    panoptic = outputs.get("panoptic")
    if panoptic is None or engines.blind_said or "sem_labels" not in panoptic:
        return
    streaks: dict[Hashable, _Streak] = engines.blind_streaks
    if np.any(np.asarray(panoptic["num_detections"]) > 0):
        streaks.pop(camera, None)
        return
    shares = thing_shares(panoptic["sem_labels"])
    if sum(shares.values()) < MIN_THING_SHARE:
        streaks.pop(camera, None)
        return
    streak = streaks.setdefault(camera, _Streak(seq))
    streak.frames += 1
    for t, s in shares.items():
        streak.sums[t] = streak.sums.get(t, 0.0) + s
    if streak.frames >= BLIND_FRAMES:
        engines.blind_said = True
        mean = {t: s / streak.frames for t, s in streak.sums.items()}
        note = blind_note(engines.described.get("panoptic"), streak.frames, streak.first, seq, mean)
        print(f"warning: {note}", file=sys.stderr)
