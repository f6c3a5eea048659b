"""Numpy reference of RoIAlign and of the fused multi-level RoIAlign.

Written for clarity, not speed: a loop per RoI and bin. Every other implementation
(torch op, ONNX expansion, TensorRT plugin, GPU kernel) is tested against this one.

Conventions (shared with torchvision, detectron2 and ONNX RoiAlign):
- ``aligned=True`` shifts RoI corners by -0.5 pixel (ONNX ``half_pixel``); ``False`` is the
  legacy mode (``output_half_pixel``), which also forces RoIs to at least 1x1 cell.
- ``sampling_ratio > 0`` samples that many points per bin along each axis; ``0`` adapts:
  ceil(roi_size / output_size) per axis, at most MAX_GRID, and an empty RoI then has no
  samples (output 0).
- Samples farther than one pixel outside the map contribute 0; others are clamped to it.
  Only those on the map are visited (``axis_points``): under adaptive sampling a RoI far
  larger than its map has more samples a bin than a loop could visit.
- ``mode="avg"`` averages the bilinear samples of a bin; ``"max"`` takes their maximum.
- A RoI with a NaN or infinite coordinate pools zeros, on the first level of the pyramid.
  An engine that overflows (FP16, INT8) gives such proposals; ONNX Runtime's RoiAlign
  refuses them, and a GPU kernel's adaptive grid of ceil(inf) samples would never end.
  The other implementations (torch_op.finite_rois, the Triton kernel, readBox in the
  plugin's arithmetic, the ONNX expansion) put ``OUTSIDE_ROI`` in their place, a point box
  so far outside every map that all its samples are zero.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

CANONICAL_SIZE = 224.0
CANONICAL_LEVEL = 4
LEVEL_EPS = 1e-6
# x1 = y1 = x2 = y2: an empty box far enough outside a map of any stride up to 2048 that
# its samples (aligned or not) are more than a cell beyond its edge; FP16 holds it exactly
OUTSIDE_ROI = -1e4
# the most samples a bin an adaptive grid takes along an axis: the largest float below 2^31,
# as the kernels count them (in int32). Past it (a RoI of 10^10 pixels and more on its level)
# the points of a float64 grid a pixel apart would round to runs of 10^20 equal ones
MAX_GRID = 2147483520


def bilinear(feature: np.ndarray, y: float, x: float) -> np.ndarray:
    """Value of a [C, H, W] map at (y, x), by RoIAlign's border rules."""
    _, h, w = feature.shape
    if y < -1.0 or y > h or x < -1.0 or x > w:
        return np.zeros(feature.shape[0], dtype=np.float64)
    y, x = max(y, 0.0), max(x, 0.0)
    y0, x0 = int(y), int(x)
    if y0 >= h - 1:
        y0 = y1 = h - 1
        y = float(y0)
    else:
        y1 = y0 + 1
    if x0 >= w - 1:
        x0 = x1 = w - 1
        x = float(x0)
    else:
        x1 = x0 + 1
    ly, lx = y - y0, x - x0
    hy, hx = 1.0 - ly, 1.0 - lx
    # pick the four columns first, then widen: converting the whole map per sample made
    # the reference minutes slow on full-size pyramids
    v00, v01, v10, v11 = (
        feature[:, yy, xx].astype(np.float64) for yy, xx in ((y0, x0), (y0, x1), (y1, x0), (y1, x1))
    )
    return hy * hx * v00 + hy * lx * v01 + ly * hx * v10 + ly * lx * v11


def roi_align(
    features: np.ndarray,
    rois: np.ndarray,
    batch_indices: np.ndarray,
    *,
    output_size: int | tuple[int, int],
    spatial_scale: float,
    sampling_ratio: int,
    aligned: bool,
    mode: str = "avg",
) -> np.ndarray:
    """RoIAlign of ``rois`` [R, 4] (x1, y1, x2, y2 in image pixels) on ``features`` [N, C, H, W]."""
    if mode not in ("avg", "max"):
        raise ValueError(f"mode must be 'avg' or 'max', got {mode!r}")
    ph, pw = (output_size, output_size) if isinstance(output_size, int) else output_size
    r, c = rois.shape[0], features.shape[1]
    out = np.zeros((r, c, ph, pw), dtype=np.float64)
    offset = 0.5 if aligned else 0.0
    for i in range(r):
        if not np.isfinite(rois[i]).all():
            continue  # pools zeros: see the module's docstring
        feat = features[int(batch_indices[i])]
        with np.errstate(over="ignore"):  # a size past float32's range is inf (below)
            x1 = rois[i, 0] * spatial_scale - offset
            y1 = rois[i, 1] * spatial_scale - offset
            roi_w = rois[i, 2] * spatial_scale - offset - x1
            roi_h = rois[i, 3] * spatial_scale - offset - y1
        if not aligned:
            roi_w, roi_h = max(roi_w, 1.0), max(roi_h, 1.0)
        if not (math.isfinite(roi_h) and math.isfinite(roi_w)):
            continue  # a size past float32's range: every sample point is inf or NaN, off the map
        bin_h, bin_w = roi_h / ph, roi_w / pw
        gh = sampling_ratio if sampling_ratio > 0 else min(math.ceil(roi_h / ph), MAX_GRID)
        gw = sampling_ratio if sampling_ratio > 0 else min(math.ceil(roi_w / pw), MAX_GRID)
        if gh <= 0 or gw <= 0:
            continue  # an empty RoI under adaptive sampling has no samples
        h, w = feat.shape[1:]
        for py in range(ph):
            ys = axis_points(y1 + py * bin_h, bin_h, gh, h)
            for px in range(pw):
                xs = axis_points(x1 + px * bin_w, bin_w, gw, w)
                # the grid's other samples are off the map: zeros, counted by the mean
                samples = [bilinear(feat, y, x) for y in ys for x in xs]
                if len(samples) < gh * gw:
                    samples.append(np.zeros(feat.shape[0]))
                total = np.sum(samples, axis=0)
                out[i, :, py, px] = total / (gh * gw) if mode == "avg" else np.max(samples, axis=0)
    return out.astype(features.dtype)


def axis_points(start: float, bin_size: float, grid: int, size: int) -> list[float]:
    """Along one axis, the points of a bin's ``grid`` samples that land on a map of ``size``
    cells: within [-1, size] (others pool zeros). Sample s of the bin at ``start`` lies at
    start + (s + 0.5) * bin_size / grid. In a bin of positive size they rise with s, so those
    on the map are a run of samples, found by bisection: under adaptive sampling a RoI far
    larger than its map has more samples than a loop could visit. (An upside-down RoI, aligned,
    has bins of negative size and samples only under a fixed sampling ratio: a few.)"""

    def at(s: int) -> float:
        with np.errstate(over="ignore"):  # float32 points past its range are inf, as the kernels' are
            return start + (s + 0.5) * bin_size / grid

    if not bin_size > 0:
        return [v for v in map(at, range(grid)) if -1.0 <= v <= size]

    def first(past: Callable[[float], bool]) -> int:
        lo, hi = 0, grid  # the first sample whose point is past the bound; grid if none is
        while lo < hi:
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if past(at(mid)) else (mid + 1, hi)
        return lo

    begin = first(lambda v: v >= -1.0)
    end = first(lambda v: v > size)
    return [at(s) for s in range(begin, end)]


def assign_levels(
    rois: np.ndarray,
    min_level: int,
    max_level: int,
    canonical_size: float = CANONICAL_SIZE,
    canonical_level: int = CANONICAL_LEVEL,
) -> np.ndarray:
    """FPN level per RoI: clamp(floor(k0 + log2(sqrt(area) / s0)), kmin, kmax); kmin for a
    RoI with a NaN or inf coordinate."""
    with np.errstate(over="ignore", invalid="ignore"):  # an area past float32's range: the top level
        area = np.clip((rois[:, 2] - rois[:, 0]) * (rois[:, 3] - rois[:, 1]), 0.0, None).astype(np.float64)
    area = np.where(np.isfinite(rois).all(axis=1), area, 0.0)
    k = np.floor(canonical_level + np.log2(np.sqrt(area) / canonical_size + LEVEL_EPS))
    return np.clip(k, min_level, max_level).astype(np.int64)


def multilevel_roi_align(
    features: Sequence[np.ndarray],
    rois: np.ndarray,
    batch_indices: np.ndarray,
    *,
    output_size: int,
    spatial_scales: Sequence[float],
    sampling_ratio: int,
    aligned: bool,
    min_level: int = 2,
    mode: str = "avg",
    canonical_size: float = CANONICAL_SIZE,
    canonical_level: int = CANONICAL_LEVEL,
) -> np.ndarray:
    """Each RoI pooled from the pyramid level its size maps to (features[0] = min_level)."""
    if len(features) != len(spatial_scales):
        raise ValueError(f"{len(features)} feature maps but {len(spatial_scales)} spatial scales")
    levels = assign_levels(rois, min_level, min_level + len(features) - 1, canonical_size, canonical_level)
    c = features[0].shape[1]
    out = np.zeros((rois.shape[0], c, output_size, output_size), dtype=features[0].dtype)
    for lvl, (feat, scale) in enumerate(zip(features, spatial_scales, strict=True)):
        idx = np.flatnonzero(levels == min_level + lvl)
        if idx.size:
            out[idx] = roi_align(
                feat,
                rois[idx],
                batch_indices[idx],
                output_size=output_size,
                spatial_scale=scale,
                sampling_ratio=sampling_ratio,
                aligned=aligned,
                mode=mode,
            )
    return out
