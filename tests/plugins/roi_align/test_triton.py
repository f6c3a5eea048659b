"""The Triton kernel against the numpy reference.

Without a GPU the kernel runs under Triton's interpreter (TRITON_INTERPRET=1, set by
tests/conftest.py), which executes the same kernel code on the CPU; with one, compiled.
"""

from __future__ import annotations

import importlib
import re
from types import ModuleType

import numpy as np
import pytest
import torch

from plugins.roi_align.reference import assign_levels, multilevel_roi_align

pytest.importorskip("triton", reason="triton is not installed (pip install triton)")
SCALES = [1 / 4, 1 / 8, 1 / 16, 1 / 32]


DEVICE = "cuda" if torch.cuda.is_available() else "cpu"  # cpu: Triton's interpreter (tests/conftest.py)


@pytest.fixture(scope="module")
def kernel() -> ModuleType:
    return importlib.import_module("plugins.roi_align.triton_kernel")


def on_device(arrays: list[np.ndarray]) -> list[torch.Tensor]:
    return [torch.from_numpy(a).to(DEVICE) for a in arrays]


def in_layout(tensors: list[torch.Tensor], layout: str) -> list[torch.Tensor]:
    """``tensors`` as ``layout`` has them: channels-last ones are read in place through
    strides, not copied."""
    return (
        [t.to(memory_format=torch.channels_last) for t in tensors] if layout == "channels_last" else tensors
    )


def assert_matches_reference(
    kernel: ModuleType,
    feats: list[np.ndarray],
    rois: np.ndarray,
    bidx: np.ndarray,
    *,
    sampling: int,
    aligned: bool,
    output_size: int = 7,
    layout: str = "nchw",
    **options: object,
) -> None:
    """The kernel with ``options`` on ``feats`` (in ``layout``) within 1e-4 of the numpy reference."""
    got = kernel.multilevel_roi_align_triton(
        in_layout(on_device(feats), layout),
        *on_device([rois, bidx]),
        output_size,
        SCALES,
        sampling,
        aligned,
        2,
        **options,
    )
    ref = multilevel_roi_align(
        feats,
        rois,
        bidx,
        output_size=output_size,
        spatial_scales=SCALES,
        sampling_ratio=sampling,
        aligned=aligned,
    )
    np.testing.assert_allclose(got.cpu().numpy(), ref, rtol=1e-4, atol=1e-4)


# sqrt(area) of RoIs for each FPN level (2: < 112 px, 3: < 224, 4: < 448, 5: larger)
ROI_SIDES = (6.0, 30.0, 90.0, 130.0, 200.0, 250.0, 400.0, 700.0)


def pyramid(seed: int, n: int = 2, c: int = 5, dtype: type = np.float32):
    """A 4-level pyramid of a 128x192 image and 12 RoIs over every level: one empty, one
    far larger than the image, one off its edge, the rest of random place and aspect."""
    rng = np.random.default_rng(seed)
    feats = [rng.normal(size=(n, c, 32 >> i, 48 >> i)).astype(dtype) for i in range(4)]
    side = np.array([0.0, 0.0, 50.0, *ROI_SIDES, 20.0])
    aspect = np.exp(rng.uniform(-0.7, 0.7, side.size))
    wh = np.stack([side * aspect, side / aspect], 1)
    xy = rng.uniform(-10, 150, (side.size, 2))
    rois = np.concatenate([xy, xy + wh], 1).astype(np.float32)
    rois[1] = [-500, -500, 900, 900]  # far larger than the image
    rois[2] = [170, 100, 260, 160]  # mostly outside it
    levels = assign_levels(rois, 2, 5)
    assert set(levels.tolist()) == {2, 3, 4, 5}, levels  # every level gets RoIs
    return feats, rois, rng.integers(0, n, side.size).astype(np.int64)


def _matrix() -> list:
    """aligned x sampling x layout x tile orientation. Adaptive sampling (0) costs the
    interpreter ~8 s a case (the huge RoI loops over 7x7 samples per bin), and its grid
    does not depend on the layout or orientation: two of its eight cases, one per
    ``aligned``, run by default; the rest with -m slow."""
    cases = []
    for aligned in (True, False):
        for sampling in (2, 0):
            for layout in ("nchw", "channels_last"):
                for bins_fast in (True, False):
                    # adaptive: aligned on nchw, bins fast; not aligned on channels_last, channels fast
                    default = (
                        sampling == 2
                        or (aligned and layout == "nchw" and bins_fast)
                        or (not aligned and layout == "channels_last" and not bins_fast)
                    )
                    marks = () if default else (pytest.mark.slow,)
                    cases.append(pytest.param(aligned, sampling, layout, bins_fast, marks=marks))
    return cases


@pytest.mark.parametrize("aligned,sampling,layout,bins_fast", _matrix())
def test_interpreted_kernel_matches_reference(
    kernel: ModuleType, aligned: bool, sampling: int, layout: str, bins_fast: bool
) -> None:
    assert_matches_reference(
        kernel,
        *pyramid(1),
        sampling=sampling,
        aligned=aligned,
        # the box head's size; a smaller one makes adaptive grids larger and slower to interpret
        output_size=7,
        layout=layout,
        block_c=4,
        bins_fast=bins_fast,  # either tile orientation reads either layout
        unroll=False,  # the sample loop (the unrolled grid: test_interpreted_unrolled_tiles_...)
    )


@pytest.mark.parametrize("output_size", [7, 14])
@pytest.mark.parametrize("sampling", [1, 2, 4])
@pytest.mark.parametrize("aligned", [True, False])
def test_interpreted_sample_lanes_tile_matches_reference(
    kernel: ModuleType, output_size: int, sampling: int, aligned: bool
) -> None:
    assert_matches_reference(
        kernel,
        *pyramid(5, c=3),
        sampling=sampling,
        aligned=aligned,
        output_size=output_size,
        block_c=2,  # 3 channels: the second block is half masked
        sample_lanes=True,
    )


def test_sample_lanes_needs_a_power_of_two_sample_grid(kernel: ModuleType) -> None:
    feats, rois, bidx = pyramid(5, c=3)
    for sampling in (0, 3):
        with pytest.raises(ValueError, match=f"sample_lanes needs sampling_ratio 1, 2 or 4.*got {sampling}"):
            kernel.multilevel_roi_align_triton(
                on_device(feats), *on_device([rois, bidx]), 7, SCALES, sampling, True, 2, sample_lanes=True
            )


@pytest.mark.parametrize("output_size", [7, 14])
@pytest.mark.parametrize("sampling", [1, 2, 0])
@pytest.mark.parametrize("aligned", [True, False])
def test_interpreted_rows_tile_matches_reference(
    kernel: ModuleType, output_size: int, sampling: int, aligned: bool
) -> None:
    assert_matches_reference(
        kernel,
        *pyramid(6),
        sampling=sampling,
        aligned=aligned,
        output_size=output_size,
        block_c=4,  # 5 channels: the second block is mostly masked
        rows=True,
        row_block=16,
    )


def test_rows_tile_spans_several_row_blocks(kernel: ModuleType) -> None:
    """A wide, flat RoI on the finest level covers 48 map columns: three blocks of 16,
    whose products add up; its right edge leaves the map, its left one starts off it."""
    rng = np.random.default_rng(8)
    feats = [rng.normal(size=(1, 3, 32 >> i, 48 >> i)).astype(np.float32) for i in range(4)]
    rois = np.array([[-6.0, 40.0, 200.0, 52.0], [3.3, 7.1, 150.9, 20.2]], np.float32)
    bidx = np.zeros(2, np.int64)
    assert assign_levels(rois, 2, 5).tolist() == [2, 2]
    assert_matches_reference(
        kernel, feats, rois, bidx, sampling=2, aligned=False, block_c=2, rows=True, row_block=16
    )


@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
@pytest.mark.parametrize("bins_fast", [True, False])
@pytest.mark.parametrize("sampling", [2, 0])  # 0: adaptive grids are not unrolled; the loop runs
def test_interpreted_unrolled_tiles_match_reference(
    kernel: ModuleType, layout: str, bins_fast: bool, sampling: int
) -> None:
    feats, rois, bidx = pyramid(7, c=3)
    # adaptive: not the huge RoI, whose 49 samples a bin the kernel matrix's loop runs
    pick = np.arange(len(rois)) != 1 if sampling == 0 else slice(None)
    assert_matches_reference(
        kernel,
        feats,
        rois[pick],
        bidx[pick],
        sampling=sampling,
        aligned=False,
        layout=layout,
        block_c=2,
        bins_fast=bins_fast,
        unroll=True,
    )


@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
@pytest.mark.parametrize("grid_y", [65535, 4])  # 4: more RoIs than the grid's second axis holds
def test_channel_blocks_side_by_side_match_reference(
    kernel: ModuleType, layout: str, grid_y: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kernel, "MAX_GRID_Y", grid_y)
    assert_matches_reference(
        kernel,
        *pyramid(9),
        sampling=2,
        aligned=True,
        layout=layout,
        block_c=2,
        cb_fast=True,  # 3 blocks of 5
    )


# the interpreter's time goes by programs and their samples: one layout each, on six RoIs
# (the empty one, the huge one, the one off the edge, and one on each other level); adaptive
# sampling without the huge RoI (its 49 samples a bin are the kernel matrix's), and bin_block 1
# on 3x3 bins of two RoIs
SIX = [0, 1, 2, 3, 7, 9]


@pytest.mark.parametrize(
    "layout,options",
    [
        ("channels_last", {"bin_block": 8, "bins_fast": True, "sampling": 2}),  # the last of 7 has one bin
        ("nchw", {"bin_block": 16, "bins_fast": False, "sampling": 0, "rois": [0, 2, 3, 7, 9, 10]}),
        (
            "channels_last",
            {"bin_block": 8, "bins_fast": False, "sampling": 2, "unroll": True, "cb_fast": True},
        ),
        ("nchw", {"bin_block": 1, "bins_fast": True, "sampling": 2, "rois": [0, 1], "output_size": 3}),
    ],
)
def test_bins_split_over_programs_match_reference(kernel: ModuleType, layout: str, options: dict) -> None:
    options = dict(options)
    sampling = options.pop("sampling")
    feats, rois, bidx = pyramid(11, c=3)  # two channel blocks of 2, the second half empty
    pick = options.pop("rois", SIX)
    assert_matches_reference(
        kernel,
        feats,
        rois[pick],
        bidx[pick],
        sampling=sampling,
        aligned=True,
        layout=layout,
        block_c=2,
        **options,
    )


@pytest.mark.parametrize(
    "options",
    [
        {"bin_block": 2, "unroll": True},  # the last of 25 bins alone in its program
        {"bin_block": 1, "unroll": False, "num_warps": 2},
    ],
)
def test_all_channels_of_few_bins_match_reference(kernel: ModuleType, options: dict) -> None:
    # the benchmark's whole-pixel tiles (a program every channel of a bin or two, channels-last,
    # threads across channels): here one block wider than the map's 5 channels, 3 masked
    feats, rois, bidx = pyramid(12)
    assert_matches_reference(
        kernel,
        feats,
        rois[SIX],
        bidx[SIX],
        sampling=2,
        aligned=False,
        output_size=5,
        layout="channels_last",
        block_c=8,
        bins_fast=False,
        **options,
    )


@pytest.mark.parametrize("unroll", [False, True])
@pytest.mark.parametrize("sampling", [3, 4])
def test_fixed_grids_of_any_size_match_reference(kernel: ModuleType, sampling: int, unroll: bool) -> None:
    # a grid of a power of two places its samples by multiplying, any other by an IEEE
    # division (triton_kernel._sample_offset): both as the reference places them
    feats, rois, bidx = pyramid(13)
    pick = [0, 2, 3, 7]
    assert_matches_reference(
        kernel,
        feats,
        rois[pick],
        bidx[pick],
        sampling=sampling,
        aligned=True,
        output_size=3,
        layout="channels_last",
        block_c=8,
        bins_fast=False,
        unroll=unroll,
    )


@pytest.mark.parametrize(
    "layout,options",
    [
        ("channels_last", {"block_c": 8, "bins_fast": True}),  # 8 channels: one whole block
        ("channels_last", {"block_c": 8, "bins_fast": False, "bin_block": 2, "unroll": True}),
        ("nchw", {"block_c": 4, "bins_fast": False}),  # 8 channels: two whole blocks
        ("nchw", {"block_c": 4, "bins_fast": False, "c": 6}),  # a block and a half: the launch masks
    ],
)
def test_unmasked_loads_match_reference(kernel: ModuleType, layout: str, options: dict) -> None:
    # every corner loaded at its clamped address, a sample outside the map weighing zero:
    # the huge RoI, the one off the edge and the empty one included
    options = dict(options)
    feats, rois, bidx = pyramid(14, c=options.pop("c", 8))
    assert_matches_reference(
        kernel,
        feats,
        rois[SIX],
        bidx[SIX],
        sampling=2,
        aligned=False,
        layout=layout,
        masked=False,
        **options,
    )


@pytest.mark.parametrize(("channels", "masked"), [(8, False), (6, True)])
def test_loads_are_masked_where_channels_are_not_whole_blocks(
    kernel: ModuleType, channels: int, masked: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the last of 6 channels in blocks of 4 would read 2 past the map's end unmasked
    asked: list[bool] = []

    def spy(**kw: object) -> dict:
        asked.append(bool(kw["masked"]))
        return kernel_constexprs(**kw)

    kernel_constexprs = kernel.kernel_constexprs
    monkeypatch.setattr(kernel, "kernel_constexprs", spy)
    feats, rois, bidx = pyramid(15, c=channels)
    assert_matches_reference(
        kernel, feats, rois[[3]], bidx[[3]], sampling=2, aligned=False, block_c=4, masked=False
    )
    assert asked == [masked]


@pytest.mark.filterwarnings("ignore:invalid value encountered in multiply")  # the interpreter's 0 x inf
def test_unmasked_loads_let_an_edges_inf_into_the_bins_beyond_it(kernel: ModuleType) -> None:
    # what masked=False gives up (triton_sample._add_sample): a RoI wholly right of the
    # map pools zeros where its samples are not loaded, NaN where they weigh inf by zero
    feats = [np.ones((1, 4, 8 >> i, 8 >> i), np.float32) for i in range(4)]
    feats[0][:, :, :, -1] = np.inf  # the finest level's right edge
    rois = np.array([[40.0, 4.0, 60.0, 24.0]], np.float32)  # level 2 (p2), right of its 8 columns x 4
    bidx = np.zeros(1, np.int64)
    args = (7, SCALES, 2, False, 2)
    masked = kernel.multilevel_roi_align_triton(
        on_device(feats), *on_device([rois, bidx]), *args, block_c=4, masked=True
    )
    unmasked = kernel.multilevel_roi_align_triton(
        on_device(feats), *on_device([rois, bidx]), *args, block_c=4, masked=False
    )
    assert (masked.cpu().numpy() == 0).all()
    assert np.isnan(unmasked.cpu().numpy()).all()
    reference = multilevel_roi_align(
        feats, rois, bidx, output_size=7, spatial_scales=SCALES, sampling_ratio=2, aligned=False
    )
    assert (reference == 0).all()


def test_a_register_cap_is_the_gpu_compilers_alone(kernel: ModuleType) -> None:
    # maxnreg is a compile option for the GPU (ptxas spills beyond it); the kernel it
    # launches computes the same bins (on the interpreter, which has no registers, as here)
    feats, rois, bidx = pyramid(5, c=3)
    assert_matches_reference(
        kernel, feats, rois, bidx, sampling=2, aligned=False, layout="channels_last", block_c=2, maxnreg=48
    )


@pytest.mark.parametrize(
    "options,message",
    [
        ({"bin_block": 12}, "bin_block must be a power of two from 1 to 64 (7x7 bins), got 12"),
        ({"bin_block": 128}, "bin_block must be a power of two from 1 to 64 (7x7 bins), got 128"),
        ({"bin_block": 0}, "bin_block must be a power of two from 1 to 64 (7x7 bins), got 0"),
        ({"bin_block": 8, "sample_lanes": True}, "bin_block splits the direct tile's bins"),
        ({"bin_block": 8, "rows": True, "block_c": 8}, "bin_block splits the direct tile's bins"),
    ],
)
def test_bin_block_refuses_what_it_cannot_split(kernel: ModuleType, options: dict, message: str) -> None:
    feats, rois, bidx = pyramid(2, c=3)
    with pytest.raises(ValueError, match=re.escape(message)):
        kernel.multilevel_roi_align_triton(
            on_device(feats), *on_device([rois, bidx]), 7, SCALES, 2, False, 2, **options
        )


@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
def test_default_tile_is_the_one_tuned_for_the_layout(kernel: ModuleType, layout: str) -> None:
    feats, rois, bidx = pyramid(4, c=3)
    assert kernel.layout_of(in_layout(on_device(feats), layout)[0]) == layout
    assert_matches_reference(kernel, feats, rois, bidx, sampling=2, aligned=False, layout=layout)
    # a map of one channel has equal strides either way: read as NCHW
    assert kernel.layout_of(torch.zeros(1, 1, 4, 4).to(memory_format=torch.channels_last)) == "nchw"


@pytest.mark.parametrize(
    "options,message",
    [
        ({"rows": True, "row_block": 24}, "row_block a power of two >= 16.*got row_block 24, block_c 4"),
        ({"rows": True, "row_block": 8}, "got row_block 8"),
        ({"rows": True, "block_c": 1}, r"block_c x 8 >= 16.*block_c 1"),
        ({"rows": True, "sample_lanes": True}, "rows and sample_lanes are two different tiles"),
    ],
)
def test_rows_tile_refuses_sizes_it_cannot_multiply(kernel: ModuleType, options: dict, message: str) -> None:
    feats, rois, bidx = pyramid(5, c=3)
    kw = {"block_c": 4, **options}
    with pytest.raises(ValueError, match=message):
        kernel.multilevel_roi_align_triton(
            on_device(feats), *on_device([rois, bidx]), 7, SCALES, 2, True, 2, **kw
        )


def test_interpreted_kernel_fp16_and_edge_shapes(kernel: ModuleType) -> None:
    feats, rois, bidx = pyramid(2, dtype=np.float16)
    got = kernel.multilevel_roi_align_triton(
        on_device(feats),
        *on_device([rois, bidx]),
        7,
        SCALES,
        2,
        True,
        2,
        block_c=8,
    )
    assert got.dtype == torch.float16
    ref = multilevel_roi_align(
        [f.astype(np.float32) for f in feats],
        rois,
        bidx,
        output_size=7,
        spatial_scales=SCALES,
        sampling_ratio=2,
        aligned=True,
    )
    np.testing.assert_allclose(got.float().cpu().numpy(), ref, rtol=1e-2, atol=1e-2)
    empty = kernel.multilevel_roi_align_triton(
        on_device(feats),
        *on_device([np.zeros((0, 4), np.float32), np.zeros(0, np.int64)]),
        7,
        SCALES,
        2,
        True,
        2,
    )
    assert empty.shape == (0, 5, 7, 7)
    with pytest.raises(ValueError, match="1 to 4 pyramid levels"):
        kernel.multilevel_roi_align_triton(
            [torch.zeros(1, 1, 4, 4)] * 5,
            torch.zeros(1, 4),
            torch.zeros(1, dtype=torch.int64),
            2,
            [1.0] * 5,
            2,
            True,
            2,
        )


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-4), (torch.float16, 1e-2)])
@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
def test_cuda_op_matches_reference(
    dtype: torch.dtype, tol: float, memory_format: torch.memory_format
) -> None:
    import plugins.roi_align.torch_op  # noqa: F401  (registers the op and its CUDA kernel)

    feats, rois, bidx = pyramid(3, c=64)
    got = torch.ops.edge.multilevel_roi_align(
        [torch.from_numpy(f).cuda().to(dtype).to(memory_format=memory_format) for f in feats],
        torch.from_numpy(rois).cuda(),
        torch.from_numpy(bidx).cuda(),
        7,
        SCALES,
        2,
        True,
        2,
    )
    ref = multilevel_roi_align(
        feats, rois, bidx, output_size=7, spatial_scales=SCALES, sampling_ratio=2, aligned=True
    )
    np.testing.assert_allclose(got.float().cpu().numpy(), ref, rtol=tol, atol=tol)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-4), (torch.float16, 1e-2)])
@pytest.mark.parametrize(
    ("layout", "options"),
    [
        ("nchw", {"rows": True, "block_c": 8, "num_warps": 8}),
        ("nchw", {"rows": True, "block_c": 8, "num_warps": 8, "unroll": True}),
        ("nchw", {"rows": True, "block_c": 8, "tf32x3": True}),
        ("nchw", {"rows": True, "block_c": 4, "row_block": 16}),
        ("nchw", {"unroll": True, "block_c": 16, "num_warps": 8, "bins_fast": True}),
        ("nchw", {"unroll": True, "block_c": 16, "num_warps": 8, "bins_fast": False}),
        ("nchw", {"unroll": True, "block_c": 32, "num_warps": 8, "bins_fast": False, "cb_fast": True}),
        ("nchw", {"bin_block": 8, "block_c": 32, "bins_fast": False, "unroll": True}),
        ("nchw", {"bin_block": 16, "block_c": 16, "bins_fast": True}),
        ("nchw", {}),  # the tuned tile
        # whole-pixel and unmasked tiles on channels whole blocks (64, as 256 are in the benchmark)
        ("channels_last", {"bin_block": 1, "block_c": 64, "num_warps": 1, "bins_fast": False}),
        (
            "channels_last",
            {"bin_block": 2, "block_c": 64, "num_warps": 1, "bins_fast": False, "unroll": True},
        ),
        (
            "channels_last",
            {"bin_block": 2, "block_c": 64, "num_warps": 1, "bins_fast": False, "masked": False},
        ),
        (
            "channels_last",
            {
                "bin_block": 1,
                "block_c": 64,
                "num_warps": 1,
                "bins_fast": False,
                "unroll": True,
                "masked": False,
            },
        ),
        ("channels_last", {"block_c": 16, "masked": False}),
        ("channels_last", {}),  # the tuned tile
    ],
)
def test_compiled_tiles_match_reference(
    kernel: ModuleType, dtype: torch.dtype, tol: float, layout: str, options: dict
) -> None:
    """The tiles as compiled for the GPU (the interpreter ignores the rows tile's matrix
    product's precision, does not unroll, and makes no vector loads)."""
    for sampling in (2, 0):
        feats, rois, bidx = pyramid(3, c=64)
        maps = [torch.from_numpy(f).cuda().to(dtype) for f in feats]
        got = kernel.multilevel_roi_align_triton(
            in_layout(maps, layout),
            torch.from_numpy(rois).cuda(),
            torch.from_numpy(bidx).cuda(),
            7,
            SCALES,
            sampling,
            False,
            2,
            **options,
        )
        ref = multilevel_roi_align(
            feats, rois, bidx, output_size=7, spatial_scales=SCALES, sampling_ratio=sampling, aligned=False
        )
        np.testing.assert_allclose(got.float().cpu().numpy(), ref, rtol=tol, atol=tol)


def test_maps_beyond_int32_offsets_are_refused(kernel: ModuleType) -> None:
    # a huge channel stride on the meta device: no memory, and the check comes first
    huge = torch.empty((1, 2, 4, 4), device="meta").as_strided((1, 2, 4, 4), (0, 2**31, 4, 1))
    with pytest.raises(ValueError, match=r"pyramid level 0 of shape \(1, 2, 4, 4\) spans 2147483663"):
        kernel.multilevel_roi_align_triton(
            [huge], torch.zeros(1, 4), torch.zeros(1, dtype=torch.int64), 2, [1.0], 2, True, 2
        )


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-4), (torch.float16, 1e-2)])
@pytest.mark.parametrize("aligned,sampling", [(False, 2), (True, 0)])
def test_cuda_op_matches_torchvision_roi_align(
    dtype: torch.dtype, tol: float, aligned: bool, sampling: int
) -> None:
    """Per level, with our level assignment: torchvision's roi_align is the CUDA reference.

    torchvision runs in FP32 on the same (FP16-rounded) values: its FP16 kernel computes the
    sample coordinates in FP16 too, a quarter pixel apart at x ~ 500.
    """
    tv_ops = pytest.importorskip("torchvision.ops", reason="torchvision is not installed")
    import plugins.roi_align.torch_op  # noqa: F401  (registers the op and its CUDA kernel)
    from plugins.roi_align.reference import assign_levels

    rng = np.random.default_rng(4)
    shapes = [(2, 64, 256 >> i, 512 >> i) for i in range(4)]
    feats = [torch.from_numpy(rng.normal(size=s).astype(np.float32)) for s in shapes]
    xy = rng.uniform(-20, 2000, (300, 2))
    wh = np.exp(rng.uniform(1, 6.5, (300, 2)))
    rois = np.concatenate([xy, xy + wh], 1).astype(np.float32)
    bidx = rng.integers(0, 2, 300).astype(np.int64)
    cuda = [f.cuda().to(dtype) for f in feats]
    got = torch.ops.edge.multilevel_roi_align(
        cuda, torch.from_numpy(rois).cuda(), torch.from_numpy(bidx).cuda(), 7, SCALES, sampling, aligned, 2
    ).float()
    levels = assign_levels(rois, 2, 5)
    boxes = torch.from_numpy(np.concatenate([bidx[:, None].astype(np.float32), rois], 1)).cuda()
    want = torch.zeros_like(got)
    for i, scale in enumerate(SCALES):
        idx = torch.from_numpy(np.flatnonzero(levels == 2 + i)).cuda()
        want[idx] = tv_ops.roi_align(cuda[i].float(), boxes[idx], 7, scale, sampling, aligned)
    assert (levels == 2).any() and (levels == 5).any()  # both ends of the pyramid are used
    torch.testing.assert_close(got, want, rtol=tol, atol=tol)


@pytest.mark.parametrize(
    ("sampling", "options"),
    [(0, {}), (2, {}), (2, {"unroll": True}), (0, {"rows": True}), (2, {"sample_lanes": True, "block_c": 4})],
)
def test_interpreted_kernel_pools_zeros_for_rois_with_nan_or_inf(
    kernel: ModuleType, sampling: int, options: dict[str, object]
) -> None:
    """A RoI with a NaN or inf corner is read as the reference's outside box, in every tile:
    zeros, where the GPU's adaptive grid of ceil(inf) samples would not end."""
    feats, _, _ = pyramid(7)
    rng = np.random.default_rng(8)
    xy = rng.uniform(0, 120, (8, 2))
    rois = np.concatenate([xy, xy + rng.uniform(4, 60, (8, 2))], 1).astype(np.float32)
    rois[1, 0], rois[3, 3], rois[4, 2], rois[6] = np.nan, np.inf, -np.inf, np.nan
    bidx = rng.integers(0, 2, 8).astype(np.int64)
    assert_matches_reference(kernel, feats, rois, bidx, sampling=sampling, aligned=True, **options)
    ref = multilevel_roi_align(
        feats, rois, bidx, output_size=7, spatial_scales=SCALES, sampling_ratio=sampling, aligned=True
    )
    assert not ref[[1, 3, 4, 6]].any() and ref[[0, 2, 5, 7]].any(axis=(1, 2, 3)).all()


@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
@pytest.mark.filterwarnings("ignore:(overflow|invalid value) encountered:RuntimeWarning")  # float32 inf, NaN
def test_adaptive_grids_of_huge_rois_visit_only_their_samples_on_the_map(
    kernel: ModuleType, layout: str
) -> None:
    """Under adaptive sampling a RoI far larger than its map takes ceil(bin size) samples a bin
    along each axis: past 64 (HUGE_GRID) the tile leaves it to triton_huge's kernel, which
    visits the run of each bin's samples on the map (bisection). On one 6x8 map at scale 1, 2x2
    bins (the interpreter's time): RoIs of 300 to 5 million samples a bin along an axis against
    the reference, which bisects in its own arithmetic, and beside them an ordinary RoI the tile
    pools; a 10^7-pixel RoI (a GPU's loop took minutes over its samples) and one of float's
    largest."""
    rng = np.random.default_rng(31)
    feats = [rng.normal(size=(2, 16, 6, 8)).astype(np.float32)]
    rois = np.array(
        [
            [-300, -300, 300, 300],  # 300 a bin on each axis
            [-250, 2, 350, 5],  # wide and thin: one axis's grid huge, the other's 1
            [-250, 5, 350, 4],  # upside down along y: empty (zeros), though its x grid is huge
            [2, 1, 6, 5],  # ordinary: the tile's
            [0, 0, 1e7, 1e7],
            [-3e38, -3e38, 3e38, 3e38],
        ],
        np.float32,
    )
    bidx = np.array([0, 1, 0, 1, 0, 1], np.int64)
    got = kernel.multilevel_roi_align_triton(
        in_layout(on_device(feats), layout), *on_device([rois, bidx]), 2, [1.0], 0, True, 2
    )
    ref = multilevel_roi_align(
        feats, rois, bidx, output_size=2, spatial_scales=[1.0], sampling_ratio=0, aligned=True
    )
    # a row of samples more or less would move the huge RoIs' bins by 1e-5 and more
    assert np.abs(ref[[0, 1, 3]]).max(axis=(1, 2, 3)).min() > 1e-5 and ref[4].any() and not ref[2].any()
    np.testing.assert_allclose(got.cpu().numpy(), ref, rtol=1e-4, atol=1e-8)
