"""The separable tile of the Triton RoIAlign kernel (``rows``), for NCHW pyramids.

Average RoIAlign factors: a sample's four bilinear weights are a y weight times an x
weight, and its in-range test is a y test and an x test. So a RoI's output for one
channel is ``Ay @ F @ Ax.T`` over the patch of the map it covers, with ``Ay`` (bins x
rows) and ``Ax`` (bins x columns) holding the summed weights of each bin's samples.

The tile reads, for each row of samples, the two map rows under it as row segments
(threads along x: one cache line serves 32 FP32 columns), weighs and sums them into
one row per bin and channel, then contracts the columns with ``Ax`` in one matrix
product. The direct tiles gather four corners per sample and channel instead, each a
separate sector in NCHW; this one touches each sector of a row once per sample row.

Measured on an H200 it loses all the same: 0.33-1.01 ms against the direct tile's 0.17-0.22
(benchmarks/results/gpu_roi_align_h200_*.json). Nsight Compute
(gpu_roi_align_h200_ncu.json) counts 2.6x fewer L1 sectors than the direct NCHW tile, but
the time goes to arithmetic: building the x weights with a compare per column, bin and
sample, and the product on the FMA units (on the tensor cores, tf32x3, it was slower
still). It stays as a measured alternative that the benchmark times.
"""

from __future__ import annotations

import triton
import triton.language as tl

from plugins.roi_align.triton_lanes import _axis


@triton.jit
def _x_weights(xcol, rx1, bin_w, gw, W, Wf, P: tl.constexpr, PX: tl.constexpr, XB: tl.constexpr):
    """``Ax`` for the columns ``xcol``: (columns, bins), each bin's samples' x weights summed."""
    px = tl.arange(0, PX)
    ax = tl.zeros((XB, PX), dtype=tl.float32)
    for ix in range(0, gw):
        x = rx1 + px.to(tl.float32) * bin_w + tl.div_rn((ix + 0.5) * bin_w, gw * 1.0)
        inside, x0, x1, frac = _axis(x, W, Wf)
        inside = inside & (px < P)
        lx = tl.where(inside, frac, 0.0)
        hx = tl.where(inside, 1.0 - frac, 0.0)
        ax += tl.where(xcol[:, None] == x0[None, :], hx[None, :], 0.0)
        ax += tl.where(xcol[:, None] == x1[None, :], lx[None, :], 0.0)
    return ax


@triton.jit
def _add_rows(rows, plane, coff, xoff, xmask, row_ok, pyf, iy, gh, ry1, bin_h, H, Hf, sh):
    """Sample row ``iy`` of every bin row: its two map rows, weighted, added to ``rows``."""
    y = ry1 + pyf * bin_h + tl.div_rn((iy + 0.5) * bin_h, gh * 1.0)
    inside, y0, y1, frac = _axis(y, H, Hf)
    ly = frac[None, :, None]
    m = xmask & (inside & row_ok)[None, :, None]
    f0 = tl.load(plane + coff + (y0 * sh)[None, :, None] + xoff, mask=m, other=0.0).to(tl.float32)
    f1 = tl.load(plane + coff + (y1 * sh)[None, :, None] + xoff, mask=m, other=0.0).to(tl.float32)
    return rows + (1.0 - ly) * f0 + ly * f1


@triton.jit
def _rows_tile(
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
    P: tl.constexpr,
    PB: tl.constexpr,
    PX: tl.constexpr,
    XB: tl.constexpr,
    BLOCK_C: tl.constexpr,
    TF32X3: tl.constexpr,
    SAMPLING: tl.constexpr,
    UNROLL: tl.constexpr,
):
    # the columns any sample's corners can fall on: a sample left of -1 weighs nothing,
    # one in [-1, 0) reads column 0, and none lies right of the RoI's edge
    x_lo = tl.minimum(tl.floor(tl.maximum(rx1, 0.0)).to(tl.int32), W - 1)
    x_hi = tl.minimum(tl.floor(tl.maximum(rx1 + bin_w * P, 0.0)).to(tl.int32) + 1, W - 1)
    py = tl.arange(0, PB)
    pyf = py.to(tl.float32)
    row_ok = py < P
    coff = (c * sc)[:, None, None]
    acc = tl.zeros((BLOCK_C * PB, PX), dtype=tl.float32)
    for xs in range(x_lo, x_hi + 1, XB):
        xcol = xs + tl.arange(0, XB)
        ax = _x_weights(xcol, rx1, bin_w, gw, W, Wf, P, PX, XB)
        xoff = (xcol * sw)[None, None, :]
        xmask = cmask[:, None, None] & (xcol <= x_hi)[None, None, :]
        rows = tl.zeros((BLOCK_C, PB, XB), dtype=tl.float32)
        if UNROLL and SAMPLING > 0:  # every sample row's loads in flight together
            for iy in tl.static_range(SAMPLING):
                rows = _add_rows(
                    rows, plane, coff, xoff, xmask, row_ok, pyf, iy, SAMPLING, ry1, bin_h, H, Hf, sh
                )
        else:
            for iy in range(0, gh):
                rows = _add_rows(rows, plane, coff, xoff, xmask, row_ok, pyf, iy, gh, ry1, bin_h, H, Hf, sh)
        flat = tl.reshape(rows, (BLOCK_C * PB, XB))
        # FP32 throughout: TF32's 10-bit mantissa would miss the 1e-4 bound; tf32x3 splits
        # each operand in two TF32 parts to stay within FP32 on the tensor cores
        if TF32X3:
            acc = tl.dot(flat, ax, acc, input_precision="tf32x3")
        else:
            acc = tl.dot(flat, ax, acc, input_precision="ieee")
    count = tl.maximum(gh * gw, 1).to(tl.float32)
    pooled = tl.reshape(acc, (BLOCK_C, PB, PX)) * tl.div_rn(1.0, count)
    px = tl.arange(0, PX)
    bins = (py * P)[None, :, None] + px[None, None, :]
    out = out_ptr + ((r * C + c) * (P * P)).to(tl.int64)[:, None, None] + bins
    keep = cmask[:, None, None] & row_ok[None, :, None] & (px < P)[None, None, :]
    tl.store(out, pooled.to(out_ptr.dtype.element_ty), mask=keep)


def rows_constexprs(output_size: int) -> dict[str, int]:
    """The rows tile's padded sizes: bins rows and columns, each a power of two, at least
    16 columns (a matrix product's smallest side on the GPU)."""
    pb = triton.next_power_of_2(output_size)
    return {"PB": pb, "PX": max(16, pb)}
