"""The frames ``edge bench`` issues: the source's first few, held in memory.

As MLPerf's loadgen loads its samples before the timed run, the benchmark reads its frames
first and then issues them in turn, so that reading them is neither part of a frame's
latency nor of the throughput. Read between frames, it set the throughput instead of the
engines: a synthetic frame takes 30 ms to render at 256x512 on a 2-core CPU (360 ms at
1024x2048), longer than the tiny engines take for it; a video's frames are decoded, and a
camera's come at the camera's rate.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from edge.errors import SourceError

if TYPE_CHECKING:
    from edge.postprocess.ground import GroundPlane
    from edge.stream.frame import Frame

SAMPLES = 32  # frames held and issued in turn: 200 MB at 1024x2048
SAMPLES_BUDGET_BYTES = 512 * 2**20  # and no more than this (a 4K video's frame is 25 MB)


@dataclass(frozen=True)
class Samples:
    """The frames a benchmark issues, how long each took to read, and the bytes they hold."""

    frames: tuple[Frame, ...]
    read_ms: tuple[float, ...]
    nbytes: int
    full: bool = False  # fewer frames than asked for: they reached the budget (not the source's end)
    fps: float | None = None  # the source's frame rate, where it has one: the rate its streams default to
    uri: str = ""  # the source's
    hfov_deg: float | None = None  # its camera's field of view, where it knows it (sources.Source)
    ground: GroundPlane | None = None  # and its ground plane (likewise)

    @property
    def sizes(self) -> list[str]:
        """HxW of the frames: beside a configuration's size, whether they were resized,
        stretched, padded or cropped (--fit) on the way in."""
        shapes = {f.image.shape[:2] for f in self.frames if isinstance(f.image, np.ndarray)}
        return [f"{h}x{w}" for h, w in sorted(shapes)]


def resized(samples: Samples, hw: tuple[int, int]) -> Samples:
    """``samples`` with each frame's picture resized to ``hw`` (height, width): a camera of
    that size fed the same scenes (edge bench --rig: each camera at the size it asks)."""
    import cv2

    height, width = hw
    frames = tuple(
        dataclasses.replace(f, image=cv2.resize(f.image, (width, height), interpolation=cv2.INTER_AREA))
        for f in samples.frames
    )
    nbytes = sum(f.image.nbytes for f in frames)
    # the whole picture keeps its field of view across; its rows' spacing (the ground) changes
    return dataclasses.replace(samples, frames=frames, nbytes=nbytes, ground=None)


def load_samples(
    source: Any,
    count: int = SAMPLES,
    *,
    budget_bytes: int = SAMPLES_BUDGET_BYTES,
    progress: Callable[[int], None] | None = None,
) -> Samples:
    """The first ``count`` frames of ``source`` (an open source), fewer where it ends first
    or where holding them reaches ``budget_bytes``; ``progress`` is told how many are held."""
    if getattr(source, "keeps_rate", False):
        source.keeps_rate = False  # its frames are held: waiting for their times would only be slow
    frames: list[Frame] = []
    read_ms: list[float] = []
    held = 0
    while len(frames) < count and held < budget_bytes:
        t0 = time.perf_counter_ns()
        frame = source.read()
        if frame is None:
            break
        read_ms.append((time.perf_counter_ns() - t0) / 1e6)
        if isinstance(frame.image, np.ndarray):  # anything else is refused by name when issued
            # issued again and again: a step that drew on its input would draw on every later
            # issue of the frame, so one that tries fails at once instead
            frame.image.flags.writeable = False
            held += frame.image.nbytes
        frames.append(frame)
        if progress is not None:
            progress(len(frames))
    if not frames:
        raise SourceError("the source delivered no frames")
    from edge.stream.sources import nominal_rate

    return Samples(
        tuple(frames),
        tuple(read_ms),
        held,
        full=len(frames) < count and held >= budget_bytes,
        fps=nominal_rate(source),
        uri=getattr(source, "uri", ""),
        hfov_deg=getattr(source, "hfov_deg", None),
        ground=getattr(source, "ground", None),
    )


def read_samples(
    uri: str, count: int = SAMPLES, *, budget_bytes: int = SAMPLES_BUDGET_BYTES, show_progress: bool = True
) -> Samples:
    """load_samples from the source ``uri``, with a progress bar (a camera takes a second
    for 32 frames, a synthetic drive at 1024x2048 ten), and the source closed after; frames
    cut short by ``budget_bytes`` are said."""
    from edge.stream.sources import open_source
    from edge.util.progress import progress_bar

    source = open_source(uri)
    bar = progress_bar(
        enabled=show_progress, total=count, desc="reading the source's frames", unit="frame", leave=False
    )
    try:
        held = load_samples(
            source, count, budget_bytes=budget_bytes, progress=lambda n: bar.update(n - bar.n)
        )
    finally:
        bar.close()
        source.close()
    if held.full:
        from edge.stream.disk import format_bytes

        print(
            f"note: {len(held.frames)} of the {count} frames asked for are held: they fill the "
            f"{format_bytes(budget_bytes)} they may take (--samples-memory)",
            file=sys.stderr,
        )
    return held
