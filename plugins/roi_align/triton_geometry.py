"""Where a RoI lies for the Triton RoIAlign kernels (triton_kernel.py, triton_huge.py): its FPN
level, that level's map and strides, and the RoI on it (corner, bin size), as the references
work them out; and an adaptive grid's samples a bin.
"""

from __future__ import annotations

import triton
import triton.language as tl

from plugins.roi_align.reference import OUTSIDE_ROI

_OUTSIDE_ROI: tl.constexpr = tl.constexpr(OUTSIDE_ROI)  # a kernel reads globals only as constexprs
# an adaptive grid of more samples a bin along an axis than this (a RoI 64 times the output's
# size on its level) is pooled by triton_huge._huge_rois_kernel, which visits only those on the
# map; RoIs the models make are clipped to the image and stay below
HUGE_GRID: tl.constexpr = tl.constexpr(64)


@triton.jit
def _adaptive_grid(bin_size):
    """ceil(bin size) samples a bin, at most the largest float below 2^31 (converting a larger
    one, or inf, to int32 is undefined)."""
    return tl.minimum(tl.ceil(bin_size), 2147483520.0).to(tl.int32)


@triton.jit
def _roi_on_level(
    rois_ptr,
    bidx_ptr,
    r,
    levels,
    canonical_size,
    canonical_level,
    eps,
    NUM_LEVELS: tl.constexpr,
    P: tl.constexpr,
    ALIGNED: tl.constexpr,
):
    """RoI ``r``'s level (``levels``: the kernel's arguments of each, by levels_of): its map of
    the RoI's batch item, height, width and strides (channel, row, column); and the RoI on it:
    top, left, bin height and width."""
    x1 = tl.load(rois_ptr + r * 4 + 0).to(tl.float32)
    y1 = tl.load(rois_ptr + r * 4 + 1).to(tl.float32)
    x2 = tl.load(rois_ptr + r * 4 + 2).to(tl.float32)
    y2 = tl.load(rois_ptr + r * 4 + 3).to(tl.float32)
    # a RoI with a NaN or inf corner pools zeros, as the OUTSIDE_ROI point box (reference.py):
    # its adaptive grid of ceil(inf) samples would never end (|NaN| <= max is false too)
    big = 3.4028234663852886e38
    finite = (tl.abs(x1) <= big) & (tl.abs(y1) <= big) & (tl.abs(x2) <= big) & (tl.abs(y2) <= big)
    x1 = tl.where(finite, x1, _OUTSIDE_ROI)
    y1 = tl.where(finite, y1, _OUTSIDE_ROI)
    x2 = tl.where(finite, x2, _OUTSIDE_ROI)
    y2 = tl.where(finite, y2, _OUTSIDE_ROI)
    b = tl.load(bidx_ptr + r).to(tl.int64)

    # Triton's fp32 `/` and sqrt are approximate on GPUs (about 2 ulp); RoIAlign's
    # coordinates reach hundreds of pixels, where one ulp moves a sample by 3e-5 and the
    # output by that times the feature gradient. The references (numpy, torchvision's
    # CUDA kernel, the TensorRT plugin) round each step to nearest, so this does too.
    area = tl.maximum((x2 - x1) * (y2 - y1), 0.0)
    k = tl.floor(canonical_level + tl.log2(tl.div_rn(tl.sqrt_rn(area), canonical_size) + eps))
    lvl = tl.minimum(tl.maximum(k, 0.0), NUM_LEVELS - 1.0).to(tl.int32)

    base, H, W, scale, sn, sc, sh, sw = levels[0]
    if lvl == 1:
        base, H, W, scale, sn, sc, sh, sw = levels[1]
    if lvl == 2:
        base, H, W, scale, sn, sc, sh, sw = levels[2]
    if lvl == 3:
        base, H, W, scale, sn, sc, sh, sw = levels[3]

    offset = 0.5 if ALIGNED else 0.0
    rx1 = x1 * scale - offset
    ry1 = y1 * scale - offset
    rw = x2 * scale - offset - rx1
    rh = y2 * scale - offset - ry1
    if not ALIGNED:
        rw = tl.maximum(rw, 1.0)
        rh = tl.maximum(rh, 1.0)
    bin_w = tl.div_rn(rw, P * 1.0)
    bin_h = tl.div_rn(rh, P * 1.0)
    return base + b * sn, H, W, sc, sh, sw, ry1, rx1, bin_h, bin_w


@triton.jit
def levels_of(
    f0, f1, f2, f3, h0, w0, h1, w1, h2, w2, h3, w3, s0, s1, s2, s3,
    sn0, sc0, sh0, sw0, sn1, sc1, sh1, sw1, sn2, sc2, sh2, sw2, sn3, sc3, sh3, sw3,
):  # fmt: skip
    """A kernel's pyramid arguments as one tuple a level: map, height, width, scale and the
    strides of batch item, channel, row and column."""
    return (
        (f0, h0, w0, s0, sn0, sc0, sh0, sw0),
        (f1, h1, w1, s1, sn1, sc1, sh1, sw1),
        (f2, h2, w2, s2, sn2, sc2, sh2, sw2),
        (f3, h3, w3, s3, sn3, sc3, sh3, sw3),
    )
