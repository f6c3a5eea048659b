"""How many bytes a multi-level RoIAlign must move at least: the memory-bandwidth bound.

Every sample reads four bilinear corners, but neighbouring samples share corners and
neighbouring RoIs share pixels, so counting corner reads overstates the traffic several
times. The bound counts what no kernel can avoid: the output, written once, and every
32-byte sector of the pyramid that holds a corner some sample reads (a GPU moves global
memory in sectors). Which pixels are read follows the numpy reference's sampling rules
exactly (reference.py), its adaptive grid's cap and its zeros for a non-finite RoI included;
a kernel that moves these bytes at the copy bandwidth is at 100%.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from plugins.roi_align.reference import MAX_GRID, assign_levels, axis_points

SECTOR = 32


def roi_on_level(roi: np.ndarray, scale: float, aligned: bool) -> tuple[np.float32, ...]:
    """x1, y1, width, height of a RoI in a level's pixels, in float32 as the kernels compute."""
    offset = np.float32(0.5 if aligned else 0.0)
    s = np.float32(scale)
    with np.errstate(over="ignore"):  # a size past float32's range is inf, as the reference's
        x1, y1 = roi[0] * s - offset, roi[1] * s - offset
        rw, rh = roi[2] * s - offset - x1, roi[3] * s - offset - y1
    if not aligned:
        rw, rh = max(rw, np.float32(1.0)), max(rh, np.float32(1.0))
    return x1, y1, rw, rh


def axis_samples(
    start: np.float32, size: np.float32, n: int, output_size: int, grid: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Along one axis, per (bin, sample): low and high corner index and whether the sample
    counts (no farther than one pixel outside the map), by the reference's rules."""
    bin_size = size / output_size
    v = (
        start
        + np.arange(output_size, dtype=np.float32)[:, None] * bin_size
        + (np.arange(grid, dtype=np.float32)[None, :] + 0.5) * bin_size / grid
    )
    ok = (v >= -1.0) & (v <= n)
    lo = np.minimum(np.maximum(v, 0.0).astype(np.int64), n - 1)
    return lo, np.minimum(lo + 1, n - 1), ok


def axis_corners(start: np.float32, size: np.float32, n: int, output_size: int, grid: int) -> np.ndarray:
    """Along one axis of ``n`` cells, the distinct corner indices the samples on the map read.

    Only the samples on the map are visited (reference.axis_points), with the reference's
    arithmetic: an adaptive grid over a RoI far larger than its map has more samples than
    an array could hold, axis_samples' way.
    """
    bin_size = size / output_size
    points = [v for i in range(output_size) for v in axis_points(start + i * bin_size, bin_size, grid, n)]
    lo = np.minimum(np.maximum(np.asarray(points, np.float64), 0.0).astype(np.int64), n - 1)
    return np.unique(np.concatenate([lo, np.minimum(lo + 1, n - 1)]))


def touched_pixels(
    rois: np.ndarray,
    batch_indices: np.ndarray,
    level_shapes: Sequence[tuple[int, int]],
    *,
    output_size: int,
    spatial_scales: Sequence[float],
    sampling_ratio: int,
    aligned: bool,
    min_level: int = 2,
) -> list[np.ndarray]:
    """Per level, the distinct (image, y, x) a fused RoIAlign reads, as an [K, 3] int array."""
    levels = assign_levels(rois, min_level, min_level + len(level_shapes) - 1) - min_level
    found: list[list[np.ndarray]] = [[] for _ in level_shapes]
    for roi, b, lvl in zip(rois.astype(np.float32), batch_indices, levels, strict=True):
        if not np.isfinite(roi).all():
            continue  # pools zeros without reading
        h, w = level_shapes[lvl]
        x1, y1, rw, rh = roi_on_level(roi, spatial_scales[lvl], aligned)
        if not (math.isfinite(rw) and math.isfinite(rh)):
            continue  # every sample point is inf or NaN: off the map
        gh = sampling_ratio if sampling_ratio > 0 else min(math.ceil(rh / output_size), MAX_GRID)
        gw = sampling_ratio if sampling_ratio > 0 else min(math.ceil(rw / output_size), MAX_GRID)
        if gh <= 0 or gw <= 0:
            continue
        rows = axis_corners(y1, rh, h, output_size, gh)
        cols = axis_corners(x1, rw, w, output_size, gw)
        if not rows.size or not cols.size:
            continue
        # a sample grid is separable: every kept row meets every kept column
        yy, xx = np.meshgrid(rows, cols, indexing="ij")
        found[lvl].append(np.stack([np.full(yy.size, int(b)), yy.ravel(), xx.ravel()], 1))
    return [np.unique(np.concatenate(f), axis=0) if f else np.zeros((0, 3), np.int64) for f in found]


def compulsory_bytes(
    pixels: Sequence[np.ndarray],
    level_shapes: Sequence[tuple[int, int]],
    *,
    rois: int,
    channels: int,
    output_size: int,
    element_bytes: int,
    layout: str,
) -> int:
    """Output bytes plus the distinct sectors holding the ``pixels`` of every channel.

    NCHW: a pixel's sector is shared with its row neighbours of the same channel, so each
    channel's plane contributes the sectors its touched pixels fall in. Channels-last: a
    pixel's channels are contiguous, each touched pixel costs its channel vector. Planes
    and pixel vectors are taken to start on sector boundaries (true when W * element bytes,
    resp. C * element bytes, is a multiple of 32).
    """
    if layout not in ("nchw", "channels_last"):
        raise ValueError(f"layout must be 'nchw' or 'channels_last', got {layout!r}")
    out = rois * channels * output_size * output_size * element_bytes
    read = 0
    for px, (_, w) in zip(pixels, level_shapes, strict=True):
        if layout == "nchw":
            sectors = np.stack([px[:, 0], (px[:, 1] * w + px[:, 2]) * element_bytes // SECTOR], 1)
            read += len(np.unique(sectors, axis=0)) * SECTOR * channels
        else:
            read += len(px) * math.ceil(channels * element_bytes / SECTOR) * SECTOR
    return out + read
