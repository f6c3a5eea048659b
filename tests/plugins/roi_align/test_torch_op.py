"""The torch op's CPU implementation on hand-computed values and edge cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from plugins.roi_align.reference import assign_levels
from plugins.roi_align.reference import multilevel_roi_align as multilevel_roi_align_reference
from plugins.roi_align.torch_op import assign_fpn_levels, multilevel_roi_align, roi_align_reference


def ramp(h: int, w: int) -> torch.Tensor:
    """f(y, x) = x + 10*y: bilinear sampling of a linear map returns the point's value."""
    y, x = torch.meshgrid(
        torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij"
    )
    return (x + 10 * y)[None, None]


def test_roi_align_aligned_on_linear_map_is_bin_centre_value() -> None:
    feat = ramp(8, 8)
    # box [1,1,5,5], aligned: shifted by -0.5 -> [0.5, 4.5]; 2x2 bins of size 2;
    # bin (0,0) samples at 1.0 and 2.0 in x and y, mean x = 1.5, mean y = 1.5
    out = roi_align_reference(feat, torch.tensor([[1.0, 1.0, 5.0, 5.0]]), torch.tensor([0]), 2, 1.0, 2, True)
    expected = torch.tensor([[1.5 + 15.0, 3.5 + 15.0], [1.5 + 35.0, 3.5 + 35.0]])
    torch.testing.assert_close(out[0, 0], expected)


def test_roi_align_not_aligned_uses_unshifted_coordinates() -> None:
    feat = ramp(8, 8)
    # box [1,1,5,5], not aligned: bins [1,3],[3,5]; samples 1.5, 2.5 -> mean 2.0
    out = roi_align_reference(feat, torch.tensor([[1.0, 1.0, 5.0, 5.0]]), torch.tensor([0]), 2, 1.0, 2, False)
    expected = torch.tensor([[2.0 + 20.0, 4.0 + 20.0], [2.0 + 40.0, 4.0 + 40.0]])
    torch.testing.assert_close(out[0, 0], expected)


def test_roi_align_spatial_scale_and_batch_index() -> None:
    feat = torch.cat([ramp(8, 8), ramp(8, 8) + 100.0])
    rois = torch.tensor([[2.0, 2.0, 10.0, 10.0]])  # scale 0.5 -> [1,1,5,5]
    out = roi_align_reference(feat, rois, torch.tensor([1]), 2, 0.5, 2, True)
    assert float(out[0, 0, 0, 0]) == pytest.approx(100.0 + 1.5 + 15.0)


def test_roi_align_outside_samples_are_zero_and_border_clamped() -> None:
    feat = torch.ones(1, 1, 4, 4)
    far = roi_align_reference(
        feat, torch.tensor([[10.0, 10.0, 20.0, 20.0]]), torch.tensor([0]), 2, 1.0, 2, True
    )
    assert torch.count_nonzero(far) == 0
    # samples within one pixel outside the map clamp to the border value
    edge = roi_align_reference(feat, torch.tensor([[3.2, 3.2, 4.4, 4.4]]), torch.tensor([0]), 1, 1.0, 1, True)
    assert float(edge) == pytest.approx(1.0)


def test_roi_align_adaptive_equals_fixed_grid_when_grid_matches() -> None:
    feat = torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    rois = torch.tensor([[0.0, 0.0, 8.0, 8.0]])  # 8 px / 4 bins -> adaptive grid of 2
    adaptive = roi_align_reference(feat, rois, torch.tensor([0]), 4, 1.0, 0, True)
    fixed = roi_align_reference(feat, rois, torch.tensor([0]), 4, 1.0, 2, True)
    torch.testing.assert_close(adaptive, fixed)


@pytest.mark.parametrize("aligned", [True, False])
@pytest.mark.parametrize("sampling,output", [(1, 7), (2, 7), (3, 2), (4, 14), (2, 1), (0, 7), (0, 3)])
def test_separable_roi_align_matches_the_numpy_reference(aligned: bool, sampling: int, output: int) -> None:
    """Small RoIs (read as a window of cells), RoIs much larger than their samples (read cell
    by cell), RoIs partly and wholly off the map, empty and inverted ones, two images, and
    chunks of 7 so that a chunk mixes both reads; under adaptive sampling (0) RoIs of many
    sample grids, pooled a grid at a time."""
    import numpy as np

    from plugins.roi_align.reference import roi_align

    rng = np.random.default_rng(sampling * 10 + output)
    feat = rng.normal(size=(2, 5, 20, 28)).astype(np.float32)
    xy = rng.uniform(-20, 110, size=(40, 2))
    wh = np.where(rng.uniform(size=(40, 1)) < 0.5, rng.uniform(0, 12, (40, 2)), rng.uniform(40, 200, (40, 2)))
    rois = np.concatenate([xy, xy + wh], axis=1).astype(np.float32)
    rois[0, 2:] = rois[0, :2]  # empty
    rois[1, 2:] = rois[1, :2] - 3  # inverted
    rois[2] = [200, 200, 260, 240]  # off the map
    bidx = rng.integers(0, 2, 40)
    want = roi_align(
        feat, rois, bidx, output_size=output, spatial_scale=0.25, sampling_ratio=sampling, aligned=aligned
    )
    got = roi_align_reference(
        torch.from_numpy(feat),
        torch.from_numpy(rois),
        torch.from_numpy(bidx),
        output,
        0.25,
        sampling,
        aligned,
        chunk=7,
    )
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("roi_dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("sampling", [2, 0])
def test_float16_maps_pool_as_float32(roi_dtype: torch.dtype, sampling: int) -> None:
    """Half-precision maps (the op's CUDA fallback on an FP16 model) pool in float32, as the GPU
    kernels do: within the issue's 1e-2 of the numpy reference on the same (rounded) maps. With
    float32 RoIs the op raised a dtype error; with float16 ones, sample points and weights in
    float16 put it 0.46 off on a 128-wide map."""
    import numpy as np

    from plugins.roi_align.reference import roi_align

    gen = torch.Generator().manual_seed(3)
    feat = torch.randn(1, 8, 64, 128, generator=gen).half()
    xy = torch.rand(30, 2, generator=gen) * torch.tensor([500.0, 250.0])
    rois = torch.cat([xy, xy + torch.rand(30, 2, generator=gen) * 100 + 16], dim=1).to(roi_dtype)
    bidx = torch.zeros(30, dtype=torch.int64)
    got = roi_align_reference(feat, rois, bidx, 7, 0.25, sampling, True)
    want = roi_align(
        feat.float().numpy(),
        rois.float().numpy(),
        bidx.numpy(),
        output_size=7,
        spatial_scale=0.25,
        sampling_ratio=sampling,
        aligned=True,
    )
    assert got.dtype == torch.float16
    np.testing.assert_allclose(got.float().numpy(), want, atol=1e-2)


def test_adaptive_grids_past_the_axis_limit_make_only_the_samples_on_the_map(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """RoIs larger than their map: with the limit on an axis's samples lowered to 16, only the
    run of samples that can land on the map is made, and the result is still the numpy
    reference's mean over every sample of the grid (up to 50 a bin here)."""
    import numpy as np

    from plugins.roi_align import torch_op
    from plugins.roi_align.reference import roi_align

    monkeypatch.setattr(torch_op, "MAX_AXIS_SAMPLES", 16)
    feat = torch.randn(1, 2, 12, 14, generator=torch.Generator().manual_seed(4))
    rois = torch.tensor(
        [
            [-60.0, -40.0, 80.0, 90.0],
            [5.0, 2.0, 150.0, 9.0],
            [-120.0, -130.0, -2.0, -20.0],
            [3.0, -90.0, 9.0, 40.0],
        ]
    )
    bidx = torch.zeros(4, dtype=torch.int64)
    for aligned in (True, False):
        got = roi_align_reference(feat, rois, bidx, 3, 1.0, 0, aligned)
        want = roi_align(
            feat.numpy(),
            rois.numpy(),
            bidx.numpy(),
            output_size=3,
            spatial_scale=1.0,
            sampling_ratio=0,
            aligned=aligned,
        )
        assert float(np.abs(want).max()) > 0.01  # the RoIs do reach the map
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-6)


def test_adaptive_grids_of_absurd_rois_are_their_samples_on_the_map() -> None:
    """A RoI of 10^6 pixels on a 10x12 map asks for 35,715 x 35,715 samples a bin: the op makes
    the few hundred on the map (it tried to allocate hundreds of gigabytes), and bin (0, 0)'s value is
    their bilinear sum over the grid's size, worked out here in float64. RoIs up to float32's
    largest pool zeros, finite, in moments (the numpy reference would loop for ever)."""
    import math

    import numpy as np

    from plugins.roi_align.reference import bilinear

    feat = torch.rand(1, 2, 10, 12, generator=torch.Generator().manual_seed(5)) + 1.0
    big = 1e6
    got = roi_align_reference(feat, torch.tensor([[0.0, 0.0, big, big]]), torch.tensor([0]), 7, 0.25, 0, True)
    length = big * 0.25
    grid = math.ceil(length / 7)
    # sample i of bin 0 at -0.5 + (i + 0.5) * length / (7 * grid); those past the map pool zeros
    points = [-0.5 + (i + 0.5) * length / (7 * grid) for i in range(40)]
    points = [p for p in points if p <= 12]
    want = sum(bilinear(feat[0].double().numpy(), y, x) for y in points for x in points) / grid**2
    np.testing.assert_allclose(got[0, :, 0, 0].double().numpy(), want, rtol=1e-4)
    assert float(got[0, :, 0, 0].min()) > 0
    for far in (1e12, 1e30, 3e38):
        rois = torch.tensor([[0.0, 0.0, far, far], [-far, -far, far, far]])
        out = roi_align_reference(feat, rois, torch.tensor([0, 0]), 7, 0.25, 0, True)
        assert out.shape == (2, 2, 7, 7) and bool(torch.isfinite(out).all())
        assert float(out.abs().max()) < 1e-12


def test_roi_align_gradient_reaches_the_cells_read() -> None:
    """Training pools features through this op: the gradient of a bin is its bilinear weights."""
    feat = torch.zeros(1, 1, 6, 6, requires_grad=True)
    # aligned box [1.5, 1.5, 2.5, 2.5] -> [1, 2] in cells, one bin, one sample at (1.5, 1.5)
    out = roi_align_reference(feat, torch.tensor([[1.5, 1.5, 2.5, 2.5]]), torch.tensor([0]), 1, 1.0, 1, True)
    out.sum().backward()
    grad = feat.grad[0, 0]
    assert grad[1:3, 1:3].tolist() == [[0.25, 0.25], [0.25, 0.25]]
    assert float(grad.sum()) == 1.0


def test_roi_align_no_rois() -> None:
    out = roi_align_reference(
        torch.ones(1, 2, 4, 4), torch.zeros(0, 4), torch.zeros(0, dtype=torch.long), 7, 1.0, 2, True
    )
    assert out.shape == (0, 2, 7, 7)


def test_fpn_level_assignment_golden() -> None:
    # sqrt(area) 224 -> level 4; 112 -> 3; 448 -> 5; 10 -> clamped to 2; 2000 -> clamped to 5
    sizes = [224.0, 112.0, 448.0, 10.0, 2000.0]
    rois = torch.tensor([[0.0, 0.0, s, s] for s in sizes])
    assert assign_fpn_levels(rois, 2, 5).tolist() == [2, 1, 3, 0, 3]


def test_multilevel_roi_align_uses_each_rois_level() -> None:
    feats = [torch.full((1, 1, 64 // 2**i, 64 // 2**i), float(i)) for i in range(4)]
    rois = torch.tensor([[0.0, 0.0, 20.0, 20.0], [0.0, 0.0, 240.0, 240.0]])
    out = multilevel_roi_align(
        feats, rois, torch.tensor([0, 0]), 2, [1 / 4, 1 / 8, 1 / 16, 1 / 32], 2, True, 2
    )
    assert out[0].unique().tolist() == [0.0]  # small box -> P2
    assert out[1].unique().tolist() == [2.0]  # 240 px box -> P4


def test_cuda_kernel_choice() -> None:
    from plugins.roi_align.torch_op import choose_cuda_kernel

    assert choose_cuda_kernel(triton=True, nvcc=True) == "triton"
    assert choose_cuda_kernel(triton=True, nvcc=False) == "triton"
    assert choose_cuda_kernel(triton=False, nvcc=True) == "nvcc"  # JetPack: nvcc, no Triton
    assert choose_cuda_kernel(triton=False, nvcc=False) == "torch"


def test_cuda_kernel_here_is_triton_where_it_is_installed() -> None:
    pytest.importorskip("triton", reason="the dev extras install Triton")
    from plugins.roi_align.torch_op import cuda_kernel_here

    cuda_kernel_here.cache_clear()
    assert cuda_kernel_here() == "triton"


def test_unknown_cuda_kernel_is_named() -> None:
    from plugins.roi_align.torch_op import multilevel_roi_align_on_cuda

    with pytest.raises(
        ValueError, match=r"RoIAlign CUDA kernel 'cudnn' is not one of \('triton', 'nvcc', 'torch'\)"
    ):
        multilevel_roi_align_on_cuda(
            [ramp(8, 8)],
            torch.zeros(1, 4),
            torch.zeros(1, dtype=torch.int64),
            2,
            [1.0],
            2,
            True,
            2,
            kernel="cudnn",
        )


def skip_unless_kernel_here(kernel: str) -> None:
    """Skip where this machine lacks what builds ``kernel`` (Triton, or nvcc)."""
    import shutil

    if kernel == "triton":
        pytest.importorskip("triton")
    if kernel == "nvcc" and shutil.which("nvcc") is None:
        pytest.skip("needs nvcc")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("kernel", ["triton", "nvcc", "torch"])
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-4), (torch.float16, 1e-2)])
def test_every_cuda_kernel_matches_the_cpu_op(kernel: str, dtype: torch.dtype, tol: float) -> None:
    """Each fallback on a CUDA machine: channels-last maps, as the model runs on CUDA."""
    from plugins.roi_align.torch_op import multilevel_roi_align_on_cuda

    skip_unless_kernel_here(kernel)
    g = torch.Generator().manual_seed(0)
    feats = [torch.randn(2, 16, 64 >> i, 96 >> i, generator=g) for i in range(4)]
    xy = torch.rand(60, 2, generator=g) * torch.tensor([380.0, 250.0])
    rois = torch.cat([xy, xy + 4 + torch.rand(60, 2, generator=g) * 200], dim=1)
    bidx = torch.randint(0, 2, (60,), generator=g)
    scales = [1 / 4, 1 / 8, 1 / 16, 1 / 32]
    expected = multilevel_roi_align(feats, rois, bidx, 7, scales, 2, False, 2)
    got = multilevel_roi_align_on_cuda(
        [f.cuda().to(dtype).to(memory_format=torch.channels_last) for f in feats],
        rois.cuda(),
        bidx.cuda(),
        7,
        scales,
        2,
        False,
        2,
        kernel=kernel,
    )
    assert got.dtype == dtype and got.is_cuda
    torch.testing.assert_close(got.float().cpu(), expected, rtol=tol, atol=tol)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("kernel", ["triton", "nvcc", "torch"])
@pytest.mark.parametrize("sampling", [0, 2])
def test_every_cuda_kernel_pools_zeros_for_rois_with_nan_or_inf(kernel: str, sampling: int) -> None:
    """Each kernel reads a RoI with a NaN or inf corner as the outside box: under adaptive
    sampling its grid would otherwise be ceil(inf) samples, which a GPU saturates to 2^31."""
    from plugins.roi_align.torch_op import multilevel_roi_align_on_cuda

    skip_unless_kernel_here(kernel)
    g = torch.Generator().manual_seed(1)
    feats = [torch.randn(2, 16, 64 >> i, 96 >> i, generator=g) for i in range(4)]
    xy = torch.rand(12, 2, generator=g) * torch.tensor([300.0, 200.0])
    rois = torch.cat([xy, xy + 4 + torch.rand(12, 2, generator=g) * 60], dim=1)
    rois[1, 0], rois[3, 3], rois[4, 2], rois[6] = float("nan"), float("inf"), float("-inf"), float("nan")
    bidx = torch.randint(0, 2, (12,), generator=g)
    scales = [1 / 4, 1 / 8, 1 / 16, 1 / 32]
    expected = multilevel_roi_align(feats, rois, bidx, 7, scales, sampling, True, 2)
    got = multilevel_roi_align_on_cuda(
        [f.cuda() for f in feats], rois.cuda(), bidx.cuda(), 7, scales, sampling, True, 2, kernel=kernel
    )
    assert not got[[1, 3, 4, 6]].any()
    torch.testing.assert_close(got.cpu(), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("aligned", [True, False])
@pytest.mark.parametrize("sampling", [0, 2])
def test_rois_with_nan_or_inf_pool_zeros_as_the_reference_says(aligned: bool, sampling: int) -> None:
    """The op beside the numpy reference on RoIs with NaN and inf corners among finite ones
    (the CPU path indexed the map with floor(NaN), or ceil(NaN) samples)."""
    import numpy as np

    from plugins.roi_align.reference import multilevel_roi_align as reference

    rng = np.random.default_rng(3)
    feats = [rng.normal(size=(2, 3, 32 >> i, 48 >> i)).astype(np.float32) for i in range(4)]
    xy = rng.uniform(0, 100, (8, 2))
    rois = np.concatenate([xy, xy + np.exp(rng.uniform(0, 6, (8, 2)))], 1).astype(np.float32)
    rois[1, 0], rois[3, 3], rois[4, 2], rois[6] = np.nan, np.inf, -np.inf, np.nan
    bidx = rng.integers(0, 2, 8)
    scales = [1 / 4, 1 / 8, 1 / 16, 1 / 32]
    got = multilevel_roi_align(
        [torch.from_numpy(f) for f in feats],
        torch.from_numpy(rois),
        torch.from_numpy(bidx),
        5,
        scales,
        sampling,
        aligned,
        2,
    ).numpy()
    ref = reference(
        feats, rois, bidx, output_size=5, spatial_scales=scales, sampling_ratio=sampling, aligned=aligned
    )
    assert not got[[1, 3, 4, 6]].any() and got[[0, 2, 5, 7]].any(axis=(1, 2, 3)).all()
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)


def test_finite_rois_puts_the_outside_box_where_a_corner_is_not_finite() -> None:
    from plugins.roi_align.reference import OUTSIDE_ROI
    from plugins.roi_align.torch_op import finite_rois

    rois = torch.tensor([[1, 2, 3, 4], [float("nan"), 2, 3, 4], [1, 2, 3, float("-inf")]])
    assert finite_rois(rois).tolist() == [[1, 2, 3, 4], [OUTSIDE_ROI] * 4, [OUTSIDE_ROI] * 4]
    assert finite_rois(rois.half()).dtype == torch.float16


def test_a_pyramid_beyond_the_triton_kernel_is_pooled_by_per_level_ops() -> None:
    """The Triton kernel takes 4 levels at most; the op takes any number on the CPU, and on
    CUDA too, through per-level torch ops, with a warning. (The choice is the same on CPU
    tensors, which Triton's interpreter runs here.)"""
    pytest.importorskip("triton", reason="the dev extras install Triton")
    from plugins.roi_align.torch_op import multilevel_roi_align_on_cuda

    g = torch.Generator().manual_seed(2)
    feats = [torch.randn(1, 3, 128 >> i, 128 >> i, generator=g) for i in range(5)]  # P2..P6
    rois = torch.tensor([[4.0, 4.0, 20.0, 30.0], [0.0, 0.0, 1000.0, 900.0], [10.0, 8.0, 300.0, 200.0]])
    bidx = torch.zeros(3, dtype=torch.int64)
    scales = [1 / 4, 1 / 8, 1 / 16, 1 / 32, 1 / 64]
    with pytest.warns(UserWarning, match=r"takes 1 to 4 pyramid levels, got 5: RoIAlign runs as per-level"):
        got = multilevel_roi_align_on_cuda(feats, rois, bidx, 7, scales, 2, True, 2, kernel="triton")
    want = multilevel_roi_align_reference([f.numpy() for f in feats], rois.numpy(), bidx.numpy(),
        output_size=7, spatial_scales=scales, sampling_ratio=2, aligned=True)  # fmt: skip
    assert assign_levels(rois.numpy(), 2, 6).tolist() == [2, 6, 4]  # the fifth level is used
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("seed", range(6))
def test_the_op_has_the_maps_gradient(seed: int) -> None:
    """The op backpropagates into the maps (a model fine-tuned through its RoI heads), as
    finite differences of it say, on random problems of every kind of RoI; not into the RoIs."""
    from tests.plugins.roi_align.test_forms_agree import problem

    feats, rois, bidx, kw = problem(seed)
    rois, bidx = rois[:5], bidx[:5]
    maps = [torch.from_numpy(f).double().requires_grad_() for f in feats]
    boxes = torch.from_numpy(rois).double().requires_grad_()
    args = (kw["output_size"], kw["spatial_scales"], kw["sampling_ratio"], kw["aligned"], 2)

    def pooled(*m: torch.Tensor) -> torch.Tensor:
        return multilevel_roi_align(list(m), boxes, torch.from_numpy(bidx), *args)

    assert torch.autograd.gradcheck(pooled, tuple(maps), eps=1e-6, atol=1e-5, fast_mode=True)
    pooled(*maps).sum().backward()
    assert boxes.grad is None and all(m.grad is not None for m in maps)
