"""How many bytes a multi-level RoIAlign must move at least: the memory-bandwidth bound.

Every sample reads four bilinear corners, but neighbouring samples share corners and
neighbouring RoIs share pixels, so counting corner reads overstates the traffic several
times. The bound counts what no kernel can avoid: the output, written once, and every
32-byte sector of the pyramid that holds a corner some sample reads (a GPU moves global
memory in sectors). Which pixels are read follows the numpy reference's sampling rules
exactly (reference.py); a kernel that moves these bytes at the copy bandwidth is at 100%.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from plugins.roi_align.reference import assign_levels

SECTOR = 32


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
    offset = 0.5 if aligned else 0.0
    found: list[list[np.ndarray]] = [[] for _ in level_shapes]
    for roi, b, lvl in zip(rois.astype(np.float32), batch_indices, levels, strict=True):
        h, w = level_shapes[lvl]
        scale = np.float32(spatial_scales[lvl])
        x1, y1 = roi[0] * scale - offset, roi[1] * scale - offset
        rw, rh = roi[2] * scale - offset - x1, roi[3] * scale - offset - y1
        if not aligned:
            rw, rh = max(rw, np.float32(1.0)), max(rh, np.float32(1.0))
        bin_w, bin_h = rw / output_size, rh / output_size
        gh = sampling_ratio if sampling_ratio > 0 else math.ceil(rh / output_size)
        gw = sampling_ratio if sampling_ratio > 0 else math.ceil(rw / output_size)
        if gh <= 0 or gw <= 0:
            continue
        bins = np.arange(output_size, dtype=np.float32)
        ys = (y1 + bins[:, None] * bin_h + (np.arange(gh, dtype=np.float32) + 0.5) * bin_h / gh).ravel()
        xs = (x1 + bins[:, None] * bin_w + (np.arange(gw, dtype=np.float32) + 0.5) * bin_w / gw).ravel()
        ys, xs = ys[(ys >= -1.0) & (ys <= h)], xs[(xs >= -1.0) & (xs <= w)]
        if ys.size == 0 or xs.size == 0:
            continue
        y0 = np.minimum(np.maximum(ys, 0.0).astype(np.int64), h - 1)
        x0 = np.minimum(np.maximum(xs, 0.0).astype(np.int64), w - 1)
        # a sample grid is separable: every kept row meets every kept column
        rows = np.unique(np.concatenate([y0, np.minimum(y0 + 1, h - 1)]))
        cols = np.unique(np.concatenate([x0, np.minimum(x0 + 1, w - 1)]))
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
