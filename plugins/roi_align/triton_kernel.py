"""Fused multi-level RoIAlign as one Triton kernel (the torch op's CUDA implementation).

One program per (RoI, block of channels): it assigns the RoI's FPN level, then for every
output bin and sample point gathers the four bilinear neighbours of a channel block from
that level only, accumulating in float32. Features may have any strides. The tile's
threads walk either its channels or its bins (``bins_fast``); which is faster was
measured, not reasoned (``TUNED_TILES``): on an H200, channels for NCHW maps and bins
for channels-last ones, the opposite of what coalescing would suggest. (For NCHW a warp's
load then touches a cache line per channel, and Nsight Compute finds the L1 busy 97% of
the time; threads across bins were 5x slower still.) Other tiles: ``sample_lanes`` (a
warp per row of bins with their samples) and ``rows`` (triton_rows.py). Like the ONNX
expansion (a gather of each level's RoIs, a RoiAlign each, a scatter back), this kernel
reads one level per RoI, in one launch. What a tile issues, read from its SASS, is counted by
benchmarks/roi_align_issue_model.py: on the H200 the NCHW default took 1.3x the time its
instructions take to issue and the channels-last one 1.9x, so the sample loop is kept to
fused multiply-adds and the division of a fixed power-of-two grid to a multiplication.

Under adaptive sampling a RoI far larger than its map asks for more samples a bin than a loop
can visit: past HUGE_GRID a bin along an axis the tile leaves it (as zeros) to
triton_huge._huge_rois_kernel, launched next, which visits only the samples on the map.

Runs on a CUDA GPU, or on the CPU under Triton's interpreter (TRITON_INTERPRET=1), which
is how the tests check it against the numpy reference on machines without a GPU.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import triton
import triton.language as tl

from plugins.roi_align.reference import CANONICAL_LEVEL, CANONICAL_SIZE, LEVEL_EPS
from plugins.roi_align.triton_geometry import HUGE_GRID, _adaptive_grid, _roi_on_level, levels_of
from plugins.roi_align.triton_huge import _huge_rois_kernel
from plugins.roi_align.triton_lanes import _samples_in_lanes
from plugins.roi_align.triton_rows import _rows_tile
from plugins.roi_align.triton_sample import _add_sample, _per_bin, _per_channel, _sample_offset
from plugins.roi_align.triton_tiles import TUNED_TILES, kernel_constexprs, layout_of, register_cap

MAX_LEVELS = 4
MAX_GRID_Y = 65535  # the most programs a CUDA grid's second axis holds


@triton.jit
def _mlroialign_kernel(
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
    SAMPLING: tl.constexpr,
    ALIGNED: tl.constexpr,
    BLOCK_C: tl.constexpr,
    BLOCK_B: tl.constexpr,
    BINS_FAST: tl.constexpr,
    SAMPLE_LANES: tl.constexpr,
    ROWS: tl.constexpr,
    PX: tl.constexpr,
    XB: tl.constexpr,
    TF32X3: tl.constexpr,
    UNROLL: tl.constexpr,
    CB_FAST: tl.constexpr,
    MASKED: tl.constexpr,
    HUGE_APART: tl.constexpr,
):
    if CB_FAST:  # a RoI's channel blocks are launched side by side
        cb = tl.program_id(0)
        r = tl.program_id(1)
    else:  # the RoIs of one channel block are
        r = tl.program_id(0)
        cb = tl.program_id(1)
    levels = levels_of(
        f0, f1, f2, f3, h0, w0, h1, w1, h2, w2, h3, w3, s0, s1, s2, s3,
        sn0, sc0, sh0, sw0, sn1, sc1, sh1, sw1, sn2, sc2, sh2, sw2, sn3, sc3, sh3, sw3,
    )  # fmt: skip
    plane, H, W, sc, sh, sw, ry1, rx1, bin_h, bin_w = _roi_on_level(
        rois_ptr, bidx_ptr, r, levels, canonical_size, canonical_level, eps, NUM_LEVELS, P, ALIGNED
    )
    if SAMPLING > 0:
        gh = SAMPLING
        gw = SAMPLING
    else:
        gh = _adaptive_grid(bin_h)
        gw = _adaptive_grid(bin_w)
        if HUGE_APART:
            # past HUGE_GRID samples a bin, a RoI's bins are pooled by _huge_rois_kernel,
            # launched after this one: here they are zeros, at no cost to the tile's loop
            huge = (gh > HUGE_GRID) | (gw > HUGE_GRID)
            gh = tl.where(huge, 0, gh)
            gw = tl.where(huge, 0, gw)

    c = cb * BLOCK_C + tl.arange(0, BLOCK_C)
    cmask = c < C
    Hf = H.to(tl.float32)
    Wf = W.to(tl.float32)
    if SAMPLE_LANES:
        _samples_in_lanes(
            out_ptr,
            plane,
            c,
            cmask,
            r,
            C,
            H,
            W,
            Hf,
            Wf,
            sc,
            sh,
            sw,
            ry1,
            rx1,
            bin_h,
            bin_w,
            P,
            SAMPLING,
            BLOCK_B,
            BLOCK_C,
        )
        return
    if ROWS:
        _rows_tile(
            out_ptr,
            plane,
            c,
            cmask,
            r,
            C,
            H,
            W,
            Hf,
            Wf,
            sc,
            sh,
            sw,
            ry1,
            rx1,
            bin_h,
            bin_w,
            gh,
            gw,
            P,
            BLOCK_B,
            PX,
            XB,
            BLOCK_C,
            TF32X3,
            SAMPLING,
            UNROLL,
        )
        return
    if BLOCK_B >= P * P:  # noqa: SIM108 (a compile-time branch: the whole tile's code unchanged)
        bins = tl.arange(0, BLOCK_B)
    else:
        # the bins split over the grid's third axis (``bin_block``): smaller programs hold
        # fewer accumulators, so more of them fit on an SM. (Only here: reading the program
        # id in whole tiles alone makes ptxas spill one of them on sm_87.)
        bins = tl.program_id(2) * BLOCK_B + tl.arange(0, BLOCK_B)
    bmask = bins < P * P
    py = (bins // P).to(tl.float32)
    px = (bins % P).to(tl.float32)
    # the tile's last axis is the one a warp's threads walk: channels when they are
    # contiguous in memory (channels-last), else bins, whose corners share cache lines
    coff = _per_channel(c * sc, BINS_FAST)
    cmask2 = _per_channel(cmask, BINS_FAST)
    acc = _per_bin(tl.zeros((BLOCK_B,), dtype=tl.float32), BINS_FAST) + _per_channel(
        tl.zeros((BLOCK_C,), dtype=tl.float32), BINS_FAST
    )
    if UNROLL and SAMPLING > 0:
        # a fixed grid unrolled: every sample's corner loads can be in flight together
        for iy in tl.static_range(SAMPLING):
            y = ry1 + py * bin_h + _sample_offset(iy, bin_h, SAMPLING, SAMPLING)
            for ix in tl.static_range(SAMPLING):
                x = rx1 + px * bin_w + _sample_offset(ix, bin_w, SAMPLING, SAMPLING)
                acc = _add_sample(
                    acc, plane, coff, cmask2, bmask, y, x, H, W, Hf, Wf, sh, sw, BINS_FAST, MASKED
                )
    else:
        for iy in range(0, gh):
            y = ry1 + py * bin_h + _sample_offset(iy, bin_h, gh, SAMPLING)
            for ix in range(0, gw):
                x = rx1 + px * bin_w + _sample_offset(ix, bin_w, gw, SAMPLING)
                acc = _add_sample(
                    acc, plane, coff, cmask2, bmask, y, x, H, W, Hf, Wf, sh, sw, BINS_FAST, MASKED
                )
    if SAMPLING > 0:  # the reciprocal of a fixed grid's count, rounded once, at compile time
        acc = acc * (1.0 / (SAMPLING * SAMPLING))
    else:  # one rounded reciprocal, not an approximate divide per element
        acc = acc * tl.div_rn(1.0, tl.maximum(gh * gw, 1).to(tl.float32))
    # the output is (RoI, channel, bin): bins are its contiguous axis. The RoI's offset is
    # 64-bit, once; within a RoI's C x P x P values 32 bits do, a multiply less an element
    roi_out = out_ptr + r.to(tl.int64) * C * (P * P)
    out = roi_out + _per_channel(c * (P * P), BINS_FAST) + _per_bin(bins, BINS_FAST)
    tl.store(out, acc.to(out_ptr.dtype.element_ty), mask=_per_bin(bmask, BINS_FAST) & cmask2)


def beyond_the_kernel(features: Sequence[torch.Tensor]) -> str | None:
    """Why the kernel cannot pool from these maps (too many levels, or a level too large
    for its 32-bit offsets); None where it can."""
    if not 1 <= len(features) <= MAX_LEVELS:
        return f"the Triton kernel takes 1 to {MAX_LEVELS} pyramid levels, got {len(features)}"
    for i, f in enumerate(features):
        # offsets inside one image's map are int32 in the kernel (half the address
        # registers of int64); only the batch offset is 64-bit
        span = sum((int(n) - 1) * int(st) for n, st in zip(f.shape[1:], f.stride()[1:], strict=True))
        if span >= 2**31:
            return (
                f"pyramid level {i} of shape {tuple(f.shape)} spans {span} elements per image; "
                f"the Triton kernel addresses at most 2**31 - 1"
            )
    return None


def multilevel_roi_align_triton(
    features: Sequence[torch.Tensor],
    rois: torch.Tensor,
    batch_idx: torch.Tensor,
    output_size: int,
    spatial_scales: Sequence[float],
    sampling_ratio: int,
    aligned: bool,
    min_level: int,
    *,
    block_c: int | None = None,
    num_warps: int | None = None,
    bins_fast: bool | None = None,
    sample_lanes: bool = False,
    rows: bool = False,
    row_block: int = 32,
    tf32x3: bool = False,
    unroll: bool | None = None,
    cb_fast: bool | None = None,
    bin_block: int | None = None,
    maxnreg: int | None = None,
    masked: bool | None = None,
) -> torch.Tensor:
    """Same contract as torch.ops.edge.multilevel_roi_align; FP32 or FP16 features.

    ``bins_fast`` picks which tile axis neighbouring threads walk: bins (the output's
    contiguous axis) or channels. ``block_c``, ``num_warps``, ``bins_fast`` and ``unroll``
    left None are the tile measured fastest for the features' layout (``TUNED_TILES``),
    which compiles without register spills for sm_80 to sm_90
    (tests/plugins/roi_align/test_triton_aot.py).
    ``sample_lanes`` instead lays a row of bins and their samples across a warp (NCHW
    features, ``sampling_ratio`` 1, 2 or 4); ``block_c`` should then be small (4 to 8).
    ``rows`` reads the map in row segments of ``row_block`` columns and contracts them
    with each bin's x weights in a matrix product (triton_rows.py; NCHW features, any
    sampling ratio); ``tf32x3`` runs that product on the tensor cores at FP32 accuracy.
    ``unroll`` unrolls a fixed sample grid (``sampling_ratio`` > 0) so that all its loads
    can be in flight at once, at the cost of registers. ``cb_fast`` launches a RoI's
    channel blocks next to each other, rather than one channel block of every RoI.
    ``bin_block`` splits the output bins into programs of that many (a power of two; the
    grid's third axis): fewer accumulators a program, so more programs resident an SM.
    ``maxnreg`` caps the registers a thread to the same end, ptxas spilling beyond it.
    ``masked=False`` loads every corner (addresses clamped into the map) and weighs a
    sample outside the map zero, rather than masking its loads: equal on finite maps, but
    an inf or NaN on the map's edge makes the bins beyond that edge NaN, not zero
    (triton_sample._add_sample).
    """
    why = beyond_the_kernel(features)
    if why is not None:
        raise ValueError(why)
    n_levels = len(features)
    # any strides: channels-last pyramids (what cuDNN prefers) are read in place, coalesced
    feats = list(features)
    c = int(feats[0].shape[1])
    out = feats[0].new_empty((rois.shape[0], c, output_size, output_size))
    if rois.shape[0] == 0:
        return out
    padded = feats + [feats[0]] * (MAX_LEVELS - n_levels)  # unused slots are never selected
    scales = [float(s) for s in spatial_scales] + [1.0] * (MAX_LEVELS - n_levels)
    dims = [d for f in padded for d in (int(f.shape[2]), int(f.shape[3]))]
    strides = [int(st) for f in padded for st in f.stride()]
    tuned = TUNED_TILES[layout_of(feats[0])]
    block_c = tuned["block_c"] if block_c is None else block_c
    num_warps = tuned["num_warps"] if num_warps is None else num_warps
    bins_fast = tuned["bins_fast"] if bins_fast is None else bins_fast
    unroll = tuned.get("unroll", False) if unroll is None else unroll
    cb_fast = tuned.get("cb_fast", False) if cb_fast is None else cb_fast
    masked = tuned.get("masked", True) if masked is None else masked
    if c % block_c:  # unmasked loads would read past the last channel block
        masked = True
    if bin_block is None and not (sample_lanes or rows):
        bin_block = tuned.get("bin_block")
    blocks = triton.cdiv(c, block_c)
    if cb_fast and rois.shape[0] > MAX_GRID_Y:
        cb_fast = False
    constexprs = kernel_constexprs(
        num_levels=n_levels,
        output_size=output_size,
        sampling_ratio=sampling_ratio,
        aligned=aligned,
        block_c=block_c,
        bins_fast=bins_fast,
        sample_lanes=sample_lanes,
        rows=rows,
        row_block=row_block,
        tf32x3=tf32x3,
        unroll=unroll,
        cb_fast=cb_fast,
        bin_block=bin_block,
        masked=masked,
        huge_apart=True,
    )
    bin_groups = 1 if sample_lanes or rows else triton.cdiv(output_size * output_size, constexprs["BLOCK_B"])
    grid = (blocks, rois.shape[0], bin_groups) if cb_fast else (rois.shape[0], blocks, bin_groups)
    # passing canonical_level - min_level makes the kernel's level index 0 for features[0]
    args = (
        out,
        rois.contiguous(),
        batch_idx.contiguous(),
        *padded,
        *dims,
        *scales,
        *strides,
        c,
        CANONICAL_SIZE,
        float(CANONICAL_LEVEL - min_level),
        LEVEL_EPS,
    )
    # fused multiply-adds, as nvcc compiles torchvision's kernel; explicit because Triton
    # 3.10 turns the default off
    _mlroialign_kernel[grid](
        *args, **constexprs, num_warps=num_warps, **register_cap(maxnreg), enable_fp_fusion=True
    )
    if constexprs["HUGE_APART"]:  # after the tile, which wrote zeros for those RoIs
        _huge_rois_kernel[(rois.shape[0], triton.cdiv(c, block_c))](
            *args,
            NUM_LEVELS=n_levels,
            P=output_size,
            ALIGNED=bool(aligned),
            BLOCK_C=block_c,
            num_warps=1,
            enable_fp_fusion=True,
        )
    return out
