"""One sample of the direct tile of the Triton RoIAlign kernel (triton_kernel.py): where it
lies in its bin, and its four corners weighted into the accumulator, for a tile whose
threads walk its bins or its channels (``BINS_FAST``).
"""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def _per_bin(v, BINS_FAST: tl.constexpr):
    """A per-bin vector as a column of the (bins, channels) tile, or a row of (channels, bins)."""
    if BINS_FAST:
        return v[None, :]
    else:
        return v[:, None]


@triton.jit
def _per_channel(v, BINS_FAST: tl.constexpr):
    if BINS_FAST:
        return v[:, None]
    else:
        return v[None, :]


@triton.jit
def _add_sample(
    acc, plane, coff, cmask2, bmask, y, x, H, W, Hf, Wf, sh, sw, BINS_FAST: tl.constexpr, MASKED: tl.constexpr
):
    """One sample of every bin in the tile: its four corners, weighted, added to ``acc``.

    ``MASKED``: a sample outside the map, a padding bin and a channel past the last are not
    loaded (zeros instead). Otherwise every corner is loaded, its address kept in the map
    by the clamps (the launch masks wherever the channels are not whole blocks), and a
    sample outside the map
    weighs zero: the same sums for finite maps, two selects a bin where the masks cost
    two register clears a loaded vector, but an inf or NaN at the map's edge then makes
    the bins whose samples lie beyond that edge NaN, where the reference gives zeros.
    """
    # triton_lanes._axis's rule, spelled out: through that helper ptxas 12 allocated this path
    # differently and spilled on sm_87 (tests/plugins/roi_align/test_triton_aot.py)
    inside = (y >= -1.0) & (y <= Hf) & (x >= -1.0) & (x <= Wf)
    if MASKED:
        yc = tl.maximum(y, 0.0)
        xc = tl.maximum(x, 0.0)
    else:  # unloaded by no mask, a far sample's corner must convert to an index in the map
        yc = tl.minimum(tl.maximum(y, 0.0), Hf)
        xc = tl.minimum(tl.maximum(x, 0.0), Wf)
    y0 = tl.floor(yc).to(tl.int32)
    x0 = tl.floor(xc).to(tl.int32)
    y_edge = y0 >= H - 1
    x_edge = x0 >= W - 1
    y0 = tl.where(y_edge, H - 1, y0)
    x0 = tl.where(x_edge, W - 1, x0)
    y1i = tl.where(y_edge, y0, y0 + 1)
    x1i = tl.where(x_edge, x0, x0 + 1)
    yc = tl.where(y_edge, y0.to(tl.float32), yc)
    xc = tl.where(x_edge, x0.to(tl.float32), xc)
    ly = yc - y0.to(tl.float32)
    lx = xc - x0.to(tl.float32)
    hy = 1.0 - ly
    hx = 1.0 - lx
    r0 = y0 * sh
    r1 = y1i * sh
    c0 = x0 * sw
    c1 = x1i * sw
    if MASKED:
        m = _per_bin(bmask & inside, BINS_FAST) & cmask2
        v00 = tl.load(plane + (coff + _per_bin(r0 + c0, BINS_FAST)), mask=m, other=0.0).to(tl.float32)
        v01 = tl.load(plane + (coff + _per_bin(r0 + c1, BINS_FAST)), mask=m, other=0.0).to(tl.float32)
        v10 = tl.load(plane + (coff + _per_bin(r1 + c0, BINS_FAST)), mask=m, other=0.0).to(tl.float32)
        v11 = tl.load(plane + (coff + _per_bin(r1 + c1, BINS_FAST)), mask=m, other=0.0).to(tl.float32)
    else:
        hy = tl.where(inside, hy, 0.0)
        ly = tl.where(inside, ly, 0.0)
        v00 = tl.load(plane + (coff + _per_bin(r0 + c0, BINS_FAST))).to(tl.float32)
        v01 = tl.load(plane + (coff + _per_bin(r0 + c1, BINS_FAST))).to(tl.float32)
        v10 = tl.load(plane + (coff + _per_bin(r1 + c0, BINS_FAST))).to(tl.float32)
        v11 = tl.load(plane + (coff + _per_bin(r1 + c1, BINS_FAST))).to(tl.float32)
    # one fused multiply-add a corner into the accumulator: summing the corners first, as
    # torchvision's kernel does, costs a multiply and an add more an element (the tile's
    # float work 1.7x, in its SASS for sm_90), for a difference of rounding in the values
    acc += _per_bin(hy * hx, BINS_FAST) * v00
    acc += _per_bin(hy * lx, BINS_FAST) * v01
    acc += _per_bin(ly * hx, BINS_FAST) * v10
    acc += _per_bin(ly * lx, BINS_FAST) * v11
    return acc


@triton.jit
def _sample_offset(i, size, grid, GRID: tl.constexpr):
    """Where sample ``i`` of ``grid`` lies in a bin of ``size``: (i + 0.5) * size / grid,
    rounded as the references round it. A fixed grid of a power of two (``GRID``) divides
    exactly by multiplying; any other grid takes an IEEE division, a call on its slow path,
    which in the sample loop was a tenth of the tile's instructions."""
    if GRID > 0 and (GRID & (GRID - 1)) == 0:
        return (i + 0.5) * size * (1.0 / GRID)
    else:
        return tl.div_rn((i + 0.5) * size, grid * 1.0)
