"""Calibration frames: any edge source, through exactly the runtime's preprocessing.

The sample is deterministic: a seeded reservoir sample of ``frames`` frames from the first
``scan`` frames of the source (a Cityscapes tree, a video file, an image folder or the
synthetic generator), so the same command calibrates the same way twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from dataclasses import dataclass

import numpy as np

from edge.errors import ConfigError, SourceError


@dataclass
class CalibrationSet:
    source: str
    tensors: list[np.ndarray]  # each [1, 3, H, W] float32, as the engines receive them
    indices: list[int]  # which frames of the source were taken

    @property
    def digest(self) -> str:
        """SHA-256 over the preprocessed tensors: what the manifest records as the data hash."""
        h = hashlib.sha256()
        for t in self.tensors:
            h.update(np.ascontiguousarray(t).tobytes())
        return h.hexdigest()


def load_frames(
    source: str,
    *,
    frames: int,
    size: tuple[int, int],
    seed: int = 0,
    scan: int | None = None,
    exclude: Collection[int] = (),
    show_progress: bool = False,
) -> CalibrationSet:
    """``frames`` frames drawn evenly at random from the first ``scan`` of ``source``, leaving
    out the frame numbers in ``exclude`` (a held-out set: not the frames calibrated on);
    with ``show_progress``, a bar of frames scanned, shown once the source has opened.
    A source that ends first gives fewer frames (the caller sees how many)."""
    from edge.stream.pipeline import preprocess
    from edge.stream.sources import open_source

    if frames < 1:
        raise ConfigError(f"--calib-frames must be >= 1, got {frames}")
    scan = scan or frames * 4 + len(exclude)
    rng = np.random.default_rng(seed)
    src = open_source(source)
    picked: list[tuple[int, np.ndarray]] = []
    seen = 0  # frames offered to the sample (excluded ones are not)
    bar = None
    if show_progress:
        from tqdm import tqdm

        bar = tqdm(total=scan, desc="calibration frames", unit="frame", leave=False)
    try:
        for i in range(scan):
            frame = src.read()
            if frame is None:
                break
            if i in exclude:
                if bar is not None:
                    bar.update(1)
                continue
            # reservoir sampling: every frame seen so far is kept with equal probability
            seen += 1
            if len(picked) < frames:
                picked.append((i, preprocess(frame.image, size)[1]))
            else:
                j = int(rng.integers(0, seen))
                if j < frames:
                    picked[j] = (i, preprocess(frame.image, size)[1])
            if bar is not None:
                bar.update(1)
    finally:
        src.close()
        if bar is not None:
            bar.close()
    if not picked:
        besides = f" besides the {len(exclude)} left out" if exclude else ""
        raise SourceError(f"calibration source {source!r} delivered no frames{besides}")
    picked.sort(key=lambda p: p[0])
    return CalibrationSet(source, [t for _, t in picked], [i for i, _ in picked])
