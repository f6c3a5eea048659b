"""The progress bar of an ``edge bench`` measurement, whose length is set by two minimums."""

from __future__ import annotations

import math
from typing import Any


def frames_needed(measured: int, elapsed_s: float, min_frames: int, min_duration_s: float) -> int:
    """Frames the run will take to meet both minimums, at the rate seen so far.

    A fast GPU meets ``min_frames`` in seconds and then runs on for ``min_duration_s``; a
    bar whose total is ``min_frames`` would sit at 100% all that time.
    """
    if measured <= 0 or elapsed_s <= 0:
        return min_frames
    return max(min_frames, measured, math.ceil(measured / elapsed_s * min_duration_s))


class Bar:
    def __init__(
        self,
        label: str,
        min_frames: int,
        min_duration_s: float,
        *,
        file: Any = None,
        mininterval: float = 0.1,
    ) -> None:
        from edge.util.progress import progress_bar

        self._min = (min_frames, min_duration_s)
        self._bar = progress_bar(
            total=min_frames,
            desc=f"bench {label}",
            unit="frame",
            leave=False,
            file=file,
            mininterval=mininterval,
        )

    def update_to(self, n: int, elapsed_s: float) -> None:
        self._bar.total = frames_needed(n, elapsed_s, *self._min)
        # update() redraws at most every mininterval: a redraw per frame would cost a fast
        # GPU run a terminal write per frame
        self._bar.update(n - self._bar.n)

    def close(self) -> None:
        self._bar.close()


def progress_bar_of(label: str, min_frames: int, min_duration_s: float, enabled: bool) -> Bar | None:
    return Bar(label, min_frames, min_duration_s) if enabled else None
