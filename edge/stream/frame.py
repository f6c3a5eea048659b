"""The unit that flows through the pipeline."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Frame:
    """One captured image; ``t_capture_ns`` is time.perf_counter_ns() at capture."""

    seq: int
    t_capture_ns: int
    image: np.ndarray  # HxWx3 uint8 RGB
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict)  # e.g. Cityscapes name and has_gt

    def losses(self) -> tuple[int, int, float | None]:
        """What the source lost before this frame: frames a live capture thread replaced,
        frames it could not decode, and the milliseconds without frames when it had to
        reconnect (None when it did not)."""
        gap_ms = self.meta.get("gap_ms")
        return (
            int(self.meta.get("dropped_before", 0)),
            int(self.meta.get("undecodable_before", 0)),
            None if gap_ms is None else float(gap_ms),
        )


@dataclass
class Result:
    """A frame with its engine outputs and what postprocessing made of them."""

    frame: Frame
    panoptic: dict[str, np.ndarray] | None = None
    depth: dict[str, np.ndarray] | None = None
    rendered: np.ndarray | None = None
    extras: dict[str, Any] = field(default_factory=dict)
