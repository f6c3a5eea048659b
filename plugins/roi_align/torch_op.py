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
    c = coords.clamp(min=0.0)
    low = c.floor().long()
    at_edge = low >= size - 1
    low = torch.where(at_edge, torch.full_like(low, size - 1), low)
    high = torch.where(at_edge, low, low + 1)
    c = torch.where(at_edge, low.to(c.dtype), c)
    frac = c - low.to(c.dtype)
    return low, high, 1.0 - frac, frac, outside


def _axis_weights(
    coords: torch.Tensor, size: int, output_size: int, sampling_ratio: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cells to read along one axis and each bin's weight on them, bilinear weights and the
    mean over the bin's samples folded in: ``index`` [R, L], ``weights`` [R, P, L].

    The cells are a window of consecutive ones where it is shorter than two per sample (the
    usual case: a RoI spans about as many cells as it has samples); else each sample's two.
    """
    low, high, w0, w1, outside = _bilinear_weights(coords, size)
    inside = (~outside).to(coords.dtype) / sampling_ratio
    w0, w1 = w0 * inside, w1 * inside
    r, ps = coords.shape
    start = low.amin(dim=1, keepdim=True)
    extent = int((high.amax(dim=1, keepdim=True) - start).max()) + 1
    if extent <= 2 * ps:
        length = extent
        index = (start + torch.arange(length, device=coords.device)).clamp(max=size - 1)
        pos_low, pos_high = low - start, high - start
    else:
        length = 2 * ps
        index = torch.cat([low, high], dim=1)
        pos_low = torch.arange(ps, device=coords.device).expand(r, ps)
        pos_high = pos_low + ps
    bins = (torch.arange(ps, device=coords.device) // sampling_ratio) * length
    weights = coords.new_zeros((r, output_size * length))
    # where low == high (the last cell) both weights land on one cell, as both reads do
    weights = weights.scatter_add(1, bins + pos_low, w0).scatter_add(1, bins + pos_high, w1)
    return index, weights.view(r, output_size, length)


def _roi_align_fixed_grid(
    flat: torch.Tensor,
    hw: tuple[int, int],
    rois: torch.Tensor,
    batch_idx: torch.Tensor,
    output_size: int,
    spatial_scale: float,
    sampling_ratio: int,
    aligned: bool,
) -> torch.Tensor:
    """RoIAlign as two small matrix products per RoI: bilinear sampling on a grid of sample
    points is separable, and so is the mean over a bin's samples, so a bin's value is
    ``Wy @ window @ Wx.T`` over the cells the RoI reads (``flat``: the map as [N*H*W, C])."""
    h, w = hw
    r, c = rois.shape[0], flat.shape[1]
    offset = 0.5 if aligned else 0.0
    x1 = rois[:, 0] * spatial_scale - offset
    y1 = rois[:, 1] * spatial_scale - offset
    rw = rois[:, 2] * spatial_scale - offset - x1
    rh = rois[:, 3] * spatial_scale - offset - y1
    if not aligned:  # legacy mode forces RoIs to be at least one cell
        rw = rw.clamp(min=1.0)
        rh = rh.clamp(min=1.0)
    p, s = output_size, sampling_ratio
    # sample k of P*s along an axis sits at (k + 0.5) / (P*s) of the RoI
    steps = (torch.arange(p * s, dtype=flat.dtype, device=flat.device) + 0.5) / (p * s)
    yi, wy = _axis_weights(y1[:, None] + rh[:, None] * steps[None, :], h, p, s)
    xi, wx = _axis_weights(x1[:, None] + rw[:, None] * steps[None, :], w, p, s)
    ly, lx = yi.shape[1], xi.shape[1]
    cells = (batch_idx.long() * (h * w))[:, None, None] + yi[:, :, None] * w + xi[:, None, :]
    window = flat.index_select(0, cells.reshape(-1)).reshape(r, ly, lx * c)
    rows = torch.bmm(wy, window).reshape(r, p, lx, c).transpose(1, 2).reshape(r, lx, p * c)
    return torch.bmm(wx, rows).reshape(r, p, p, c).permute(0, 3, 2, 1).contiguous()


def _roi_align_adaptive(
    feat: torch.Tensor,
    rois: torch.Tensor,
    batch_idx: torch.Tensor,
    output_size: int,
    spatial_scale: float,
    aligned: bool,
) -> torch.Tensor:
    # sampling_ratio=0: each RoI uses ceil(roi_size / output_size) samples per bin, so
    # the grid differs per RoI; a loop keeps this reference path simple.
    outs = []
    offset = 0.5 if aligned else 0.0
    for i in range(rois.shape[0]):
        roi = rois[i]
        rw = float(roi[2] - roi[0]) * spatial_scale
        rh = float(roi[3] - roi[1]) * spatial_scale
        if not aligned:
            rw, rh = max(rw, 1.0), max(rh, 1.0)
        gy = math.ceil(rh / output_size)
        gx = math.ceil(rw / output_size)
        if gy <= 0 or gx <= 0:  # an empty RoI has no samples under adaptive sampling
            outs.append(feat.new_zeros((feat.shape[1], output_size, output_size)))
            continue
        x1 = float(roi[0]) * spatial_scale - offset
        y1 = float(roi[1]) * spatial_scale - offset
        h, w = feat.shape[-2:]
        ys = y1 + rh * (torch.arange(output_size * gy, dtype=feat.dtype, device=feat.device) + 0.5) / (
            output_size * gy
        )
        xs = x1 + rw * (torch.arange(output_size * gx, dtype=feat.dtype, device=feat.device) + 0.5) / (
            output_size * gx
        )
        ylo, yhi, wy0, wy1, yout = _bilinear_weights(ys, h)
        xlo, xhi, wx0, wx1, xout = _bilinear_weights(xs, w)
        f = feat[int(batch_idx[i])]
        v = (
            f[:, ylo][:, :, xlo] * (wy0[:, None] * wx0[None, :])
            + f[:, ylo][:, :, xhi] * (wy0[:, None] * wx1[None, :])
            + f[:, yhi][:, :, xlo] * (wy1[:, None] * wx0[None, :])
            + f[:, yhi][:, :, xhi] * (wy1[:, None] * wx1[None, :])
        )
        v = v * (~(yout[:, None] | xout[None, :])).to(v.dtype)
        c = f.shape[0]
        outs.append(v.reshape(c, output_size, gy, output_size, gx).mean(dim=(2, 4)))
    if not outs:
        return feat.new_zeros((0, feat.shape[1], output_size, output_size))
    return torch.stack(outs)


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

    RoIs go ``chunk`` at a time at most, fewer where their windows of cells would hold more
    than about 16 M values (wide maps, 14x14 outputs)."""
    if sampling_ratio <= 0:
        return _roi_align_adaptive(feat, rois, batch_idx, output_size, spatial_scale, aligned)
    n, c, h, w = feat.shape
    # contiguous: for one image the reshape is a view with channels H*W apart, and reading
    # rows of it ran at a quarter of the speed
    flat = feat.permute(0, 2, 3, 1).contiguous().view(n * h * w, c)
    cells_per_roi = (2 * output_size * sampling_ratio) ** 2  # the most one RoI reads
    chunk = max(1, min(chunk, (1 << 24) // max(1, cells_per_roi * c)))
    parts = [
        _roi_align_fixed_grid(
            flat,
            (h, w),
            rois[i : i + chunk],
            batch_idx[i : i + chunk],
            output_size,
            spatial_scale,
            sampling_ratio,
            aligned,
        )
        for i in range(0, rois.shape[0], chunk)
    ]
    if not parts:
        return feat.new_zeros((0, feat.shape[1], output_size, output_size))
    return torch.cat(parts)


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
        from plugins.roi_align.triton_kernel import multilevel_roi_align_triton

        return multilevel_roi_align_triton(*args)
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
