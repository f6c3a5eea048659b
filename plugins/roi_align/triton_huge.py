"""The RoIs of an adaptive grid past HUGE_GRID samples a bin, for the Triton RoIAlign kernel.

Under adaptive sampling (``sampling_ratio`` 0) a bin takes ceil(bin size) samples along each
axis, so a RoI far larger than its map (finite, but thousands of times the image) asks for
billions of samples a bin, and the tile's loop over them ran for minutes. The tile leaves such
RoIs to this kernel (triton_kernel's HUGE_APART), launched after it: a program per RoI and block
of channels, a bin at a time, visiting only the samples whose points land on the map. Those
points rise with the sample's number, so along each axis they are a run, found by bisection
with the loop's own arithmetic; the others are zeros, and the mean still counts them.
Any other RoI's program ends at once.
"""

from __future__ import annotations

import triton
import triton.language as tl

from plugins.roi_align.triton_geometry import HUGE_GRID, _adaptive_grid, _roi_on_level, levels_of
from plugins.roi_align.triton_sample import _add_sample, _per_channel, _sample_offset


@triton.jit
def _first_past(start, size, grid, lo, edge, STRICT: tl.constexpr):
    """The first sample from ``lo`` of a bin at ``start`` whose point is past ``edge`` (at it
    too, unless STRICT); ``grid`` where none is."""
    lo = lo + grid * 0  # a tensor, as the loop makes it, where a call gives the constant 0
    hi = grid
    while lo < hi:
        mid = lo + (hi - lo) // 2
        v = start + _sample_offset(mid, size, grid, 0)
        if STRICT:  # noqa: SIM108 (a compile-time branch)
            past = v > edge
        else:
            past = v >= edge
        lo = tl.where(past, lo, mid + 1)
        hi = tl.where(past, mid, hi)
    return lo


@triton.jit
def _huge_rois_kernel(
    out_ptr,
    rois_ptr,
    bidx_ptr,
    f0,
    f1,
    f2,
    f3,
    h0,
    w0,
    h1,
    w1,
    h2,
    w2,
    h3,
    w3,
    s0,
    s1,
    s2,
    s3,
    sn0,
    sc0,
    sh0,
    sw0,
    sn1,
    sc1,
    sh1,
    sw1,
    sn2,
    sc2,
    sh2,
    sw2,
    sn3,
    sc3,
    sh3,
    sw3,
    C,
    canonical_size,
    canonical_level,
    eps,
    NUM_LEVELS: tl.constexpr,
    P: tl.constexpr,
    ALIGNED: tl.constexpr,
    BLOCK_C: tl.constexpr,
):
    r = tl.program_id(0)
    cb = tl.program_id(1)
    levels = levels_of(
        f0, f1, f2, f3, h0, w0, h1, w1, h2, w2, h3, w3, s0, s1, s2, s3,
        sn0, sc0, sh0, sw0, sn1, sc1, sh1, sw1, sn2, sc2, sh2, sw2, sn3, sc3, sh3, sw3,
    )  # fmt: skip
    plane, H, W, sc, sh, sw, ry1, rx1, bin_h, bin_w = _roi_on_level(
        rois_ptr, bidx_ptr, r, levels, canonical_size, canonical_level, eps, NUM_LEVELS, P, ALIGNED
    )
    gh = _adaptive_grid(bin_h)
    gw = _adaptive_grid(bin_w)
    # an empty RoI (a grid of 0, or an upside-down one's below) has no samples: the tile's zeros
    if ((gh > HUGE_GRID) | (gw > HUGE_GRID)) & (gh > 0) & (gw > 0):
        c = cb * BLOCK_C + tl.arange(0, BLOCK_C)
        cmask2 = _per_channel(c < C, False)
        coff = _per_channel(c * sc, False)
        Hf = H.to(tl.float32)
        Wf = W.to(tl.float32)
        one = tl.full((1,), True, tl.int1)  # a tile of one bin
        # the grid's count as a float product: gh * gw passes int32's range
        inv = tl.div_rn(1.0, gh.to(tl.float32) * gw.to(tl.float32))
        roi_out = out_ptr + r.to(tl.int64) * C * (P * P) + _per_channel(c * (P * P), False)
        for k in range(P * P):
            top = ry1 + (k // P) * 1.0 * bin_h  # * 1.0: a float, as the tile has its rows
            left = rx1 + (k % P) * 1.0 * bin_w
            y_begin = _first_past(top, bin_h, gh, 0, -1.0, False)
            y_end = _first_past(top, bin_h, gh, y_begin, Hf, True)
            x_begin = _first_past(left, bin_w, gw, 0, -1.0, False)
            x_end = _first_past(left, bin_w, gw, x_begin, Wf, True)
            acc = tl.zeros((1, BLOCK_C), dtype=tl.float32)
            for iy in range(y_begin, y_end):
                y = tl.zeros((1,), tl.float32) + (top + _sample_offset(iy, bin_h, gh, 0))
                for ix in range(x_begin, x_end):
                    x = tl.zeros((1,), tl.float32) + (left + _sample_offset(ix, bin_w, gw, 0))
                    acc = _add_sample(acc, plane, coff, cmask2, one, y, x, H, W, Hf, Wf, sh, sw, False, True)
            tl.store(roi_out + k, (acc * inv).to(out_ptr.dtype.element_ty), mask=cmask2)
