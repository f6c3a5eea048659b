"""Torch op of the fused multi-level RoIAlign, with a vectorised CPU implementation.

``torch.ops.edge.multilevel_roi_align`` is what the Panoptic FPN RoI heads call. Its
eager implementation runs on the CPU; on CUDA it runs the Triton kernel, or where Triton
is missing (JetPack) the TensorRT plugin's kernel built with nvcc, or else the same
per-level torch ops as on the CPU. Its fake implementation lets ``torch.export`` trace it;
plugins/roi_align/onnx_export.py turns it into ONNX, either as standard RoiAlign ops or as
one ``edge.plugins::MultiLevelRoIAlign`` node. The numpy reference (reference.py) is the
ground truth all of them are tested against.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Sequence
from typing import Any

import torch

from plugins.roi_align.reference import CANONICAL_LEVEL, CANONICAL_SIZE, LEVEL_EPS, OUTSIDE_ROI


def _bilinear_weights(
    coords: torch.Tensor, size: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Low/high indices and weights for sampling positions along one axis.

    Follows the RoIAlign convention shared by torchvision, detectron2 and ONNX: samples
    beyond one pixel outside the map contribute zero; others are clamped to the border.
    """
    outside = (coords < -1.0) | (coords > size)
    c = coords.clamp(min=0.0, max=float(size))  # beyond it: outside, and past int64 when far
    low = c.floor().long()
    at_edge = low >= size - 1
    low = torch.where(at_edge, torch.full_like(low, size - 1), low)
    high = torch.where(at_edge, low, low + 1)
    c = torch.where(at_edge, low.to(c.dtype), c)
    frac = c - low.to(c.dtype)
    return low, high, 1.0 - frac, frac, outside


# An axis of more samples than this makes only those that can land on the map (a run of
# consecutive ones): a RoI far larger than its map otherwise asks for more samples than fit
# in memory (adaptive sampling: ceil(roi size / output size) a bin)
MAX_AXIS_SAMPLES = 4096


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """Float16 and bfloat16 maps are pooled in float32, as the GPU kernels pool them: their
    8- and 11-bit mantissas put sample points and weights a whole cell off on wide maps."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def _axis_samples(
    start: torch.Tensor, length: torch.Tensor, size: int, output_size: int, samples: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Sample points along one axis of RoIs from ``start`` [R] over ``length`` [R], ``samples``
    a bin: their positions [R, K] (float64 past the limit), bins [R, K] and whether each is
    one of the RoI's ([R, K], or None where all are). Sample k of P*s sits at (k + 0.5) /
    (P*s) of the RoI. Past MAX_AXIS_SAMPLES only a run that holds every one inside [-1, size]
    is made (those outside pool zeros; the mean still counts them); its sample numbers stay
    float64, as they may pass int64's range."""
    ps = output_size * samples
    psf = float(ps)  # tensors take no Python int past int64
    if ps <= MAX_AXIS_SAMPLES or not bool((length > 0).all()):
        k = torch.arange(ps, device=start.device)
        pos = start[:, None] + length[:, None] * ((k.to(start.dtype) + 0.5) / psf)
        return pos, (k // samples).expand(pos.shape), None
    start, length = start.double(), length.double()
    per_cell = psf / length  # samples a cell
    first = torch.floor((-1.0 - start) * per_cell - 0.5) - 2  # 2: rounding's margin
    first = first.clamp(0.0, psf - 1)
    run = min(ps, math.ceil((size + 1) * float(per_cell.max())) + 6)
    k = first[:, None] + torch.arange(run, dtype=torch.float64, device=start.device)
    made = k < psf
    pos = start[:, None] + length[:, None] * ((k + 0.5) / psf)
    pos = torch.where(made, pos, pos[:, :1])  # past the RoI's end: its first point, weighed 0
    bins = torch.div(k, float(samples), rounding_mode="floor").clamp(max=output_size - 1).long()
    return pos, bins, made


def _axis_weights(
    pos: torch.Tensor,
    bins: torch.Tensor,
    made: torch.Tensor | None,
    size: int,
    output_size: int,
    samples: int,
    dtype: torch.dtype,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cells to read along one axis and each bin's weight on them, bilinear weights and the
    mean over the bin's samples folded in: ``index`` [R, L], ``weights`` [R, P, L] (``dtype``).

    The cells are a window of consecutive ones where it is shorter than two per sample (the
    usual case: a RoI spans about as many cells as it has samples); else each sample's two.
    """
    low, high, w0, w1, outside = _bilinear_weights(pos, size)
    inside = (~outside if made is None else ~outside & made).to(pos.dtype) / float(samples)
    w0, w1 = (w0 * inside).to(dtype), (w1 * inside).to(dtype)
    r, k = pos.shape
    start = low.amin(dim=1, keepdim=True)
    extent = int((high.amax(dim=1, keepdim=True) - start).max()) + 1
    if extent <= 2 * k:
        length = extent
        index = (start + torch.arange(length, device=pos.device)).clamp(max=size - 1)
        pos_low, pos_high = low - start, high - start
    else:
        length = 2 * k
        index = torch.cat([low, high], dim=1)
        pos_low = torch.arange(k, device=pos.device).expand(r, k)
        pos_high = pos_low + k
    weights = w0.new_zeros((r, output_size * length))
    # where low == high (the last cell) both weights land on one cell, as both reads do
    at = bins * length
    weights = weights.scatter_add(1, at + pos_low, w0).scatter_add(1, at + pos_high, w1)
    return index, weights.view(r, output_size, length)


def _roi_extent(
    rois: torch.Tensor, spatial_scale: float, aligned: bool, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each RoI's start and size on the map (x1, y1, w, h), as reference.py works them out."""
    offset = 0.5 if aligned else 0.0
    rois = rois.to(dtype)
    x1 = rois[:, 0] * spatial_scale - offset
    y1 = rois[:, 1] * spatial_scale - offset
    rw = rois[:, 2] * spatial_scale - offset - x1
    rh = rois[:, 3] * spatial_scale - offset - y1
    if not aligned:  # legacy mode forces RoIs to be at least one cell
        rw = rw.clamp(min=1.0)
        rh = rh.clamp(min=1.0)
    return x1, y1, rw, rh


def _roi_align_grid(
    flat: torch.Tensor,
    hw: tuple[int, int],
    rois: torch.Tensor,
    batch_idx: torch.Tensor,
    output_size: int,
    spatial_scale: float,
    samples: tuple[int, int],
    aligned: bool,
) -> torch.Tensor:
    """RoIAlign as two small matrix products per RoI: bilinear sampling on a grid of sample
    points is separable, and so is the mean over a bin's samples, so a bin's value is
    ``Wy @ window @ Wx.T`` over the cells the RoI reads (``flat``: the map as [N*H*W, C];
    ``samples``: a bin's samples along y and x)."""
    h, w = hw
    r, c = rois.shape[0], flat.shape[1]
    p, (sy, sx) = output_size, samples
    dtype = _compute_dtype(flat.dtype)
    x1, y1, rw, rh = _roi_extent(rois, spatial_scale, aligned, dtype)
    yi, wy = _axis_weights(*_axis_samples(y1, rh, h, p, sy), h, p, sy, dtype)
    xi, wx = _axis_weights(*_axis_samples(x1, rw, w, p, sx), w, p, sx, dtype)
    ly, lx = yi.shape[1], xi.shape[1]
    cells = (batch_idx.long() * (h * w))[:, None, None] + yi[:, :, None] * w + xi[:, None, :]
    window = flat.index_select(0, cells.reshape(-1)).reshape(r, ly, lx * c).to(dtype)
    rows = torch.bmm(wy, window).reshape(r, p, lx, c).transpose(1, 2).reshape(r, lx, p * c)
    out = torch.bmm(wx, rows).reshape(r, p, p, c).permute(0, 3, 2, 1).contiguous()
    return out.to(flat.dtype)


def _sample_groups(
    rois: torch.Tensor, output_size: int, spatial_scale: float, sampling_ratio: int, aligned: bool
) -> list[tuple[torch.Tensor | None, tuple[int, int]]]:
    """RoIs that share a sample grid: (their indices, or None for all; samples along y and x).
    Under adaptive sampling (``sampling_ratio`` 0) a RoI takes ceil(size / output size) a bin
    along each axis, and an empty RoI none (it pools zeros: left out)."""
    if sampling_ratio > 0:
        return [(None, (sampling_ratio, sampling_ratio))]
    _, _, rw, rh = _roi_extent(rois, spatial_scale, aligned, torch.float32)
    grid = torch.stack([torch.ceil(rh / output_size), torch.ceil(rw / output_size)], dim=1).double()
    keep = torch.nonzero(((grid > 0) & grid.isfinite()).all(dim=1)).flatten()
    pairs, which = torch.unique(grid[keep], dim=0, return_inverse=True)
    return [(keep[which == g], (int(sy), int(sx))) for g, (sy, sx) in enumerate(pairs.tolist())]


def roi_align_reference(
    feat: torch.Tensor,
    rois: torch.Tensor,
    batch_idx: torch.Tensor,
    output_size: int,
    spatial_scale: float,
    sampling_ratio: int,
    aligned: bool,
    chunk: int = 256,
) -> torch.Tensor:
    """Average-mode RoIAlign on one feature map; rois are [R, 4] x1,y1,x2,y2 in pixels.

    RoIs that share a sample grid go ``chunk`` at a time at most, fewer where their windows
    of cells would hold more than about 16 M values (wide maps, 14x14 outputs, large RoIs
    under adaptive sampling)."""
    n, c, h, w = feat.shape
    shape = (rois.shape[0], c, output_size, output_size)
    out = None  # under adaptive sampling, filled a sample grid at a time
    # contiguous: for one image the reshape is a view with channels H*W apart, and reading
    # rows of it ran at a quarter of the speed
    flat = feat.permute(0, 2, 3, 1).contiguous().view(n * h * w, c)
    for idx, (sy, sx) in _sample_groups(rois, output_size, spatial_scale, sampling_ratio, aligned):
        boxes, bidx = (rois, batch_idx) if idx is None else (rois[idx], batch_idx[idx])
        cells_per_roi = min(h, 2 * output_size * sy) * min(w, 2 * output_size * sx)  # the most one reads
        step = max(1, min(chunk, (1 << 24) // max(1, cells_per_roi * c)))
        parts = [
            _roi_align_grid(
                flat,
                (h, w),
                boxes[i : i + step],
                bidx[i : i + step],
                output_size,
                spatial_scale,
                (sy, sx),
                aligned,
            )
            for i in range(0, boxes.shape[0], step)
        ]
        if not parts:
            continue
        pooled = torch.cat(parts)
        if idx is None:
            return pooled
        if out is None:
            out = feat.new_zeros(shape)
        out[idx] = pooled
    return feat.new_zeros(shape) if out is None else out


def finite_rois(rois: torch.Tensor) -> torch.Tensor:
    """``rois`` with each row holding a NaN or inf replaced by the OUTSIDE_ROI point box, which
    pools zeros on the first level (reference.py's contract for such RoIs)."""
    return torch.where(torch.isfinite(rois).all(dim=1, keepdim=True), rois, rois.new_tensor(OUTSIDE_ROI))


def assign_fpn_levels(rois: torch.Tensor, min_level: int, max_level: int) -> torch.Tensor:
    """FPN level index (0 = min_level) per RoI: clamp(floor(4 + log2(sqrt(wh)/224)))."""
    area = (rois[:, 2] - rois[:, 0]) * (rois[:, 3] - rois[:, 1])
    scale = area.clamp(min=0.0).sqrt()
    lvl = torch.floor(CANONICAL_LEVEL + torch.log2(scale / CANONICAL_SIZE + LEVEL_EPS))
    return (lvl.clamp(min_level, max_level) - min_level).long()


@torch.library.custom_op("edge::multilevel_roi_align", mutates_args=())
def multilevel_roi_align(
    features: Sequence[torch.Tensor],
    rois: torch.Tensor,
    batch_idx: torch.Tensor,
    output_size: int,
    spatial_scales: Sequence[float],
    sampling_ratio: int,
    aligned: bool,
    min_level: int,
) -> torch.Tensor:
    """RoIAlign where each RoI samples the FPN level its size maps to."""
    return per_level_torch(
        features, rois, batch_idx, output_size, spatial_scales, sampling_ratio, aligned, min_level
    )


def per_level_torch(
    features: Sequence[torch.Tensor],
    rois: torch.Tensor,
    batch_idx: torch.Tensor,
    output_size: int,
    spatial_scales: Sequence[float],
    sampling_ratio: int,
    aligned: bool,
    min_level: int,
) -> torch.Tensor:
    """The op as torch ops, level by level, on any device (the CPU implementation)."""
    rois = finite_rois(rois)
    levels = assign_fpn_levels(rois, min_level, min_level + len(features) - 1)
    out = features[0].new_zeros((rois.shape[0], features[0].shape[1], output_size, output_size))
    for lvl, (feat, scale) in enumerate(zip(features, spatial_scales, strict=True)):
        idx = torch.nonzero(levels == lvl).flatten()
        if idx.numel():
            out[idx] = roi_align_reference(
                feat, rois[idx], batch_idx[idx], output_size, scale, sampling_ratio, aligned
            )
    return out


@multilevel_roi_align.register_fake
def _multilevel_roi_align_fake(
    features, rois, batch_idx, output_size, spatial_scales, sampling_ratio, aligned, min_level
):
    return features[0].new_empty((rois.shape[0], features[0].shape[1], output_size, output_size))


def _setup_backward(ctx: Any, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
    features, rois, batch_idx, *attrs = inputs
    ctx.save_for_backward(rois, batch_idx, *features)
    ctx.attrs = attrs


def _backward(ctx: Any, grad: torch.Tensor) -> tuple[Any, ...]:
    """The maps' gradient through the per-level torch ops: RoIAlign is linear in the maps, so
    this is the adjoint of the pooling the forward did, whichever kernel did it. None for the
    RoIs (as torchvision's roi_align: the boxes' gradient is not taken through the pooling)."""
    rois, batch_idx, *features = ctx.saved_tensors
    with torch.enable_grad():
        maps = [f.detach().requires_grad_() for f in features]
        pooled = per_level_torch(maps, rois, batch_idx, *ctx.attrs)
        grads = torch.autograd.grad(pooled, maps, grad, allow_unused=True)
    filled = [g if g is not None else torch.zeros_like(m) for g, m in zip(grads, maps, strict=True)]
    return (filled, None, None, None, None, None, None, None)


multilevel_roi_align.register_autograd(_backward, setup_context=_setup_backward)

CUDA_KERNELS = ("triton", "nvcc", "torch")


def choose_cuda_kernel(*, triton: bool, nvcc: bool) -> str:
    """The fastest kernel a machine can run: Triton's; else the TensorRT plugin's, built
    with nvcc (JetPack has nvcc but no Triton); else the per-level torch ops."""
    return "triton" if triton else "nvcc" if nvcc else "torch"


@functools.cache
def cuda_kernel_here() -> str:
    """What runs the op on CUDA on this machine (decided once); warns when it is the slow one."""
    import importlib.util

    from edge.errors import BackendUnavailableError
    from plugins.roi_align import cuda_kernel

    try:
        cuda_kernel.find_nvcc()
        nvcc = True
    except BackendUnavailableError:
        nvcc = False
    chosen = choose_cuda_kernel(triton=importlib.util.find_spec("triton") is not None, nvcc=nvcc)
    if chosen == "torch":
        warnings.warn(
            "neither Triton nor nvcc is installed: RoIAlign runs on CUDA as per-level torch ops, "
            "several times slower (pip install triton, or install the CUDA toolkit)",
            stacklevel=2,
        )
    return chosen


def multilevel_roi_align_on_cuda(
    features: Sequence[torch.Tensor],
    rois: torch.Tensor,
    batch_idx: torch.Tensor,
    output_size: int,
    spatial_scales: Sequence[float],
    sampling_ratio: int,
    aligned: bool,
    min_level: int,
    *,
    kernel: str,
) -> torch.Tensor:
    """The op on CUDA tensors through ``kernel``: one of CUDA_KERNELS."""
    args = (features, rois, batch_idx, output_size, spatial_scales, sampling_ratio, aligned, min_level)
    dtype = features[0].dtype
    if kernel == "triton":
        # imported on first use: Triton is an optional dependency
        from plugins.roi_align.triton_kernel import beyond_the_kernel, multilevel_roi_align_triton

        why = beyond_the_kernel(features)
        if why is None:
            return multilevel_roi_align_triton(*args)
        # the op takes any pyramid on the CPU; on CUDA it should too, if slower
        warnings.warn(f"{why}: RoIAlign runs as per-level torch ops instead", stacklevel=2)
        kernel = "torch"
    if kernel == "nvcc" and dtype in (torch.float32, torch.float16):
        from plugins.roi_align.cuda_kernel import multilevel_roi_align_cuda

        # channels_last maps are read as they lie (the plugin's kHWC kernels) rather than
        # copied whole; the pooled output, a fraction of the pyramid, is what gets copied
        cl = all(
            f.is_contiguous(memory_format=torch.channels_last) and not f.is_contiguous() for f in features
        )
        # the faster of the plugin's two kernels for these maps, timed on this GPU once
        layout = "channels_last" if cl else "nchw"
        return multilevel_roi_align_cuda(*args, layout=layout, mapping="tuned").contiguous()
    if kernel in ("nvcc", "torch"):  # other dtypes, and machines with neither compiler
        # FP32 arithmetic: coordinates in FP16 would be a quarter pixel off at x ~ 500
        return per_level_torch([f.float() for f in features], rois.float(), batch_idx, *args[3:]).to(dtype)
    raise ValueError(f"RoIAlign CUDA kernel {kernel!r} is not one of {CUDA_KERNELS}")


@multilevel_roi_align.register_kernel("cuda")
def _multilevel_roi_align_cuda(
    features: Sequence[torch.Tensor],
    rois: torch.Tensor,
    batch_idx: torch.Tensor,
    output_size: int,
    spatial_scales: Sequence[float],
    sampling_ratio: int,
    aligned: bool,
    min_level: int,
) -> torch.Tensor:
    return multilevel_roi_align_on_cuda(
        features,
        rois,
        batch_idx,
        output_size,
        spatial_scales,
        sampling_ratio,
        aligned,
        min_level,
        kernel=cuda_kernel_here(),
    )
