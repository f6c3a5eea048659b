"""Calibration frames: any edge source, through exactly the runtime's preprocessing.

The sample is deterministic (seeded), so the same command calibrates the same way twice.
A source whose length is known (a Cityscapes tree, an image folder, a video file, a folder
or glob of drives' videos) and holds more than ``4 x frames`` frames is sampled across all
of it: one frame at random from each of ``frames`` equal stretches, the others skipped
without being preprocessed. A drive's first seconds (a parking garage, one city of a split,
the first of a folder of drives) would otherwise be all the calibration sees. Shorter
sources and endless ones (the synthetic generator) give a reservoir sample of their first
``4 x frames`` frames; the generator renders only the frames that sample keeps (the
sample's choices do not depend on the frames).
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edge.errors import ConfigError, SourceError


@dataclass
class CalibrationSet:
    source: str
    tensors: list[np.ndarray]  # each [1, 3, H, W] float32, as the engines receive them
    indices: list[int]  # which frames of the source were taken
    # how they were drawn: {"spread_over": N} across a source of N frames, or {"first": N}
    sampling: dict[str, int] = field(default_factory=dict)
    fit: str = "stretch"  # how each frame went into the input (edge.stream.fit)
    frame_hw: tuple[int, int] | None = None  # the source's frames' size (the first one's)

    def part_hw(self, input_hw: tuple[int, int]) -> tuple[int, int]:
        """What these frames take of an input of ``input_hw``, where a run keeps the
        outputs: all of it stretched (or with no frame seen), their part padded."""
        from edge.stream.fit import fitted_hw

        return fitted_hw(self.frame_hw, input_hw, self.fit) if self.frame_hw else input_hw

    @property
    def digest(self) -> str:
        """SHA-256 over the preprocessed tensors: what the manifest records as the data hash."""
        h = hashlib.sha256()
        for t in self.tensors:
            h.update(np.ascontiguousarray(t).tobytes())
        return h.hexdigest()


def source_length(src: Any) -> int | None:
    """Frames a finite source holds, where it knows (a video: what its header declares)."""
    if hasattr(src, "__len__"):
        return len(src)
    declared = getattr(src, "declared_frames", None)
    return int(declared) if declared else None


def spread_indices(length: int, frames: int, exclude: Collection[int], seed: int) -> list[int]:
    """``frames`` frame numbers of ``range(length)`` minus ``exclude``: one drawn at random
    from each of ``frames`` equal stretches (all of them when there are no more)."""
    candidates = [i for i in range(length) if i not in exclude]
    if len(candidates) <= frames:
        return candidates
    rng = np.random.default_rng(seed)
    edges = np.linspace(0, len(candidates), frames + 1).astype(int)
    return [candidates[int(rng.integers(lo, hi))] for lo, hi in itertools.pairwise(edges)]


def load_frames(
    source: str,
    *,
    frames: int,
    size: tuple[int, int],
    seed: int = 0,
    scan: int | None = None,
    exclude: Collection[int] = (),
    fit: str = "stretch",
    show_progress: bool = False,
) -> CalibrationSet:
    """``frames`` frames of ``source`` (see the module's note on how they are drawn), leaving
    out the frame numbers in ``exclude`` (a held-out set: not the frames calibrated on),
    each put into the input ``size`` as ``edge run --fit`` puts it (stretched or padded).
    ``scan`` forces a reservoir sample of the first ``scan`` frames. With ``show_progress``,
    a bar of frames read, shown once the source has opened. A source that ends first gives
    fewer frames (the caller sees how many)."""
    from edge.stream.fit import check_fit
    from edge.stream.sources import open_source, unpace

    if frames < 1:
        raise ConfigError(f"--calib-frames must be >= 1, got {frames}")
    check_fit(fit)
    prep = _Preprocess(size, fit)
    src = open_source(source)
    try:
        unpace(src)
        limit = scan or frames * 4 + len(exclude)
        length = source_length(src) if scan is None else None
        if length is not None and length > limit:
            wanted = spread_indices(length, frames, exclude, seed)
            picked = _read_wanted(src, wanted, prep, show_progress)
            sampling = {"spread_over": length}
        else:
            picked = _reservoir(src, frames, limit, exclude, seed, prep, show_progress)
            sampling = {"first": limit}
    finally:
        src.close()
    if not picked:
        besides = f" besides the {len(exclude)} left out" if exclude else ""
        raise SourceError(f"calibration source {source!r} delivered no frames{besides}")
    picked.sort(key=lambda p: p[0])
    return CalibrationSet(
        source, [t for _, t in picked], [i for i, _ in picked], sampling, fit=fit, frame_hw=prep.frame_hw
    )


class _Preprocess:
    """The runtime's preprocessing into the engines' input, noting the frames' size."""

    def __init__(self, size: tuple[int, int], fit: str) -> None:
        self.size, self.fit = size, fit
        self.frame_hw: tuple[int, int] | None = None

    def __call__(self, image: np.ndarray) -> np.ndarray:
        from edge.stream.steps import preprocess

        if self.frame_hw is None:
            self.frame_hw = (int(image.shape[0]), int(image.shape[1]))
        return preprocess(image, self.size, self.fit)[1]


def _progress(total: int, show: bool) -> Any:
    from edge.util.progress import progress_bar

    return progress_bar(enabled=show, total=total, desc="calibration frames", unit="frame", leave=False)


def _read_wanted(
    src: Any, wanted: list[int], prep: _Preprocess, show_progress: bool
) -> list[tuple[int, np.ndarray]]:
    """The frames numbered ``wanted`` (ascending); those between are skipped, not decoded
    where the source can (``skip()``), read and dropped where it cannot."""
    picked: list[tuple[int, np.ndarray]] = []
    skip = getattr(src, "skip", None)
    bar = _progress(len(wanted), show_progress)
    position = 0
    try:
        for index in wanted:
            while position < index:
                moved = skip() if skip is not None else src.read() is not None
                if not moved:
                    return picked
                position += 1
            frame = src.read()
            if frame is None:
                return picked
            position += 1
            picked.append((index, prep(frame.image)))
            bar.update(1)
    finally:
        bar.close()
    return picked


class _Reservoir:
    """A reservoir sample's decisions, which depend on the seed and the count of frames
    offered, never on the frames: every frame offered so far is kept with equal
    probability."""

    def __init__(self, frames: int, seed: int) -> None:
        self.frames = frames
        self._rng = np.random.default_rng(seed)
        self._seen = 0
        self.slots: list[int] = []  # which frame each slot holds

    def offer(self, index: int) -> int | None:
        """The slot frame ``index`` goes into, or None when it is not kept."""
        self._seen += 1
        if len(self.slots) < self.frames:
            self.slots.append(index)
            return len(self.slots) - 1
        j = int(self._rng.integers(0, self._seen))
        if j < self.frames:
            self.slots[j] = index
            return j
        return None


def reservoir_indices(scan: int, frames: int, exclude: Collection[int], seed: int) -> list[int]:
    """The frame numbers a reservoir sample of ``frames`` of the first ``scan`` frames
    (minus ``exclude``) keeps, when the source holds all ``scan`` of them; ascending."""
    sample = _Reservoir(frames, seed)
    for i in range(scan):
        if i not in exclude:
            sample.offer(i)
    return sorted(sample.slots)


def _reservoir(
    src: Any,
    frames: int,
    scan: int,
    exclude: Collection[int],
    seed: int,
    prep: _Preprocess,
    show_progress: bool,
) -> list[tuple[int, np.ndarray]]:
    """A reservoir sample of ``frames`` of the first ``scan`` frames, minus ``exclude``.
    A source that can skip frames and is known to hold all ``scan`` (an endless generator)
    reads only the frames the sample keeps: the same sample, without rendering or
    decoding the three in four it would drop."""
    length = source_length(src)
    holds_all = getattr(src, "endless", False) or (length is not None and length >= scan)
    if getattr(src, "skip", None) is not None and holds_all:
        return _read_wanted(src, reservoir_indices(scan, frames, exclude, seed), prep, show_progress)
    sample = _Reservoir(frames, seed)
    picked: list[tuple[int, np.ndarray]] = []
    bar = _progress(scan, show_progress)
    try:
        for i in range(scan):
            frame = src.read()
            if frame is None:
                break
            bar.update(1)
            if i in exclude:
                continue
            slot = sample.offer(i)
            if slot == len(picked):
                picked.append((i, prep(frame.image)))
            elif slot is not None:
                picked[slot] = (i, prep(frame.image))
    finally:
        bar.close()
    return picked
