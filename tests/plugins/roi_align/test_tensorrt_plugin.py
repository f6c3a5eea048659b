"""The TensorRT plugin's arithmetic (plugins/roi_align/tensorrt/roi_align_*.h) against
the numpy reference: the headers the CUDA kernels include, compiled for the CPU here and
run as the kernels' threads take the output. The plugin against TensorRT's headers:
test_plugin_build.py; the kernels compiled and run on a GPU: test_cuda_kernel.py."""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from plugins.roi_align.reference import multilevel_roi_align

SRC = Path(__file__).resolve().parents[3] / "plugins" / "roi_align" / "tensorrt"
GXX = shutil.which("g++")
NVCC = shutil.which("nvcc")
TRT_INCLUDE = os.environ.get("TENSORRT_INCLUDE") or next(
    (
        p
        for p in ("/usr/include/x86_64-linux-gnu", "/usr/include/aarch64-linux-gnu")
        if Path(p, "NvInfer.h").is_file()
    ),
    None,
)
F32P = ctypes.POINTER(ctypes.c_float)


@pytest.fixture(scope="module")
def host_lib(tmp_path_factory: pytest.TempPathFactory) -> ctypes.CDLL:
    if GXX is None:
        pytest.skip("needs g++ to compile the plugin's arithmetic for the CPU")
    lib = tmp_path_factory.mktemp("plugin") / "libhost.so"
    subprocess.run(
        [
            GXX,
            "-O2",
            "-std=c++17",
            "-shared",
            "-fPIC",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-o",
            str(lib),
            str(SRC / "host_reference.cpp"),
        ],
        check=True,
        capture_output=True,
    )
    return ctypes.CDLL(str(lib))


def _call_host(
    lib: ctypes.CDLL,
    entry: str,
    maps: list[np.ndarray],
    sizes: list[tuple[int, int]],
    layout_args: list[int],
    rois: np.ndarray,
    bidx: np.ndarray,
    out: np.ndarray,
    kw: dict[str, object],
) -> np.ndarray:
    """One of host_reference.cpp's entry points: ``maps`` as its layout has them, their
    (H, W), the layout's arguments (channels, and for channel-last maps stride and vector),
    then what every entry takes. ``out`` filled in."""
    rois = np.ascontiguousarray(rois, np.float32)
    bidx = np.ascontiguousarray(bidx, np.int64)
    oh = ow = int(kw["output_size"])  # type: ignore[call-overload]
    rc = getattr(lib, entry)(
        (F32P * len(maps))(*[m.ctypes.data_as(F32P) for m in maps]),
        (ctypes.c_int32 * len(maps))(*[h for h, _ in sizes]),
        (ctypes.c_int32 * len(maps))(*[w for _, w in sizes]),
        ctypes.c_int32(len(maps)),
        *[ctypes.c_int32(v) for v in layout_args],
        rois.ctypes.data_as(F32P),
        bidx.ctypes.data_as(ctypes.POINTER(ctypes.c_int64)),
        ctypes.c_int32(rois.shape[0]),
        ctypes.c_int32(int(kw.get("min_level", 2))),  # type: ignore[call-overload]
        ctypes.c_int32(oh),
        ctypes.c_int32(ow),
        ctypes.c_int32(int(kw["sampling_ratio"])),  # type: ignore[call-overload]
        ctypes.c_int32(int(bool(kw["aligned"]))),
        ctypes.c_int32(int(kw.get("mode", "avg") == "max")),
        ctypes.c_int32(4),
        ctypes.c_float(224.0),
        (ctypes.c_float * len(maps))(*kw["spatial_scales"]),  # type: ignore[misc]
        out.ctypes.data_as(F32P),
    )
    if rc != 0:
        raise ValueError(f"{entry} returned {rc}")
    return out


def run_host(
    lib: ctypes.CDLL,
    feats: list[np.ndarray],
    rois: np.ndarray,
    bidx: np.ndarray,
    entry: str = "edge_mlroialign_host",
    **kw: object,
) -> np.ndarray:
    feats = [np.ascontiguousarray(f, np.float32) for f in feats]
    oh = ow = int(kw["output_size"])  # type: ignore[call-overload]
    out = np.zeros((rois.shape[0], feats[0].shape[1], oh, ow), np.float32)
    sizes = [(f.shape[2], f.shape[3]) for f in feats]
    return _call_host(lib, entry, feats, sizes, [feats[0].shape[1]], rois, bidx, out, kw)


def pyramid(
    seed: int, n: int = 2, c: int = 3, size: tuple[int, int] = (128, 160)
) -> tuple[list[np.ndarray], list[float]]:
    rng = np.random.default_rng(seed)
    feats, scales = [], []
    for level in range(2, 6):
        s = 2**level
        feats.append(rng.standard_normal((n, c, size[0] // s, size[1] // s)).astype(np.float32))
        scales.append(1.0 / s)
    return feats, scales


def boxes(seed: int, count: int = 40, size: tuple[int, int] = (128, 160)) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    xy = rng.uniform(-10, [size[1], size[0]], (count, 2))
    wh = np.exp(rng.uniform(np.log(2), np.log(400), (count, 2)))  # every level, some past the border
    rois = np.concatenate([xy, xy + wh], axis=1).astype(np.float32)
    rois[0] = [20, 20, 20, 20]  # empty
    rois[1] = [150, 120, 170, 140]  # partly outside
    return rois, rng.integers(0, 2, count).astype(np.int64)


@pytest.mark.parametrize("aligned", [True, False])
@pytest.mark.parametrize("sampling", [0, 2])
@pytest.mark.parametrize("mode", ["avg", "max"])
def test_plugin_arithmetic_matches_reference(
    host_lib: ctypes.CDLL, aligned: bool, sampling: int, mode: str
) -> None:
    feats, scales = pyramid(1)
    rois, bidx = boxes(2)
    kw = {
        "output_size": 7,
        "spatial_scales": scales,
        "sampling_ratio": sampling,
        "aligned": aligned,
        "mode": mode,
    }
    got = run_host(host_lib, feats, rois, bidx, **kw)
    ref = multilevel_roi_align(feats, rois, bidx, min_level=2, **kw)  # type: ignore[arg-type]
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("sampling", [1, 2, 4])
@pytest.mark.parametrize("output_size", [7, 14])
@pytest.mark.parametrize("aligned,mode", [(True, "avg"), (False, "avg"), (True, "max")])
def test_sample_lanes_layout_matches_reference(
    host_lib: ctypes.CDLL, sampling: int, output_size: int, aligned: bool, mode: str
) -> None:
    """The GPU's sample-lanes kernel, a warp emulated lane by lane: which lane takes which
    sample, the butterfly that combines a bin's lanes, and which lane writes."""
    feats, scales = pyramid(3)
    rois, bidx = boxes(4)
    kw = {
        "output_size": output_size,
        "spatial_scales": scales,
        "sampling_ratio": sampling,
        "aligned": aligned,
        "mode": mode,
    }
    got = run_host(host_lib, feats, rois, bidx, entry="edge_mlroialign_host_lanes", **kw)
    ref = multilevel_roi_align(feats, rois, bidx, min_level=2, **kw)  # type: ignore[arg-type]
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)
    per_bin = run_host(host_lib, feats, rois, bidx, **kw)  # the other layout: same up to summation order
    np.testing.assert_allclose(got, per_bin, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("channels", "aligned", "sampling", "mode"),
    [(3, True, 2, "avg"), (12, False, 1, "avg"), (16, True, 3, "max"), (20, False, 2, "max")],
)
def test_bin_channels_layout_matches_reference(
    host_lib: ctypes.CDLL, channels: int, aligned: bool, sampling: int, mode: str
) -> None:
    """The GPU's bin-channels kernel, its threads in order: a bin of 8 channels each, a short
    last group (3, 12, 20 channels), the corners' weights worked out once for the group."""
    feats, scales = pyramid(13, c=channels)
    rois, bidx = boxes(14)
    rois[7, 1] = np.inf  # pools zeros
    kw = {
        "output_size": 7,
        "spatial_scales": scales,
        "sampling_ratio": sampling,
        "aligned": aligned,
        "mode": mode,
    }
    grouped_layout_checks(host_lib, "edge_mlroialign_host_bin_channels", feats, rois, bidx, kw)


def grouped_layout_checks(
    host_lib: ctypes.CDLL,
    entry: str,
    feats: list[np.ndarray],
    rois: np.ndarray,
    bidx: np.ndarray,
    kw: dict[str, object],
) -> np.ndarray:
    """A layout that pools several channels of a bin together (``entry``) against the
    reference, with RoI 7 (a NaN or inf corner) pooling zeros, and bit for bit against a thread
    per bin (the same float32 sums in the same order); its output."""
    got = run_host(host_lib, feats, rois, bidx, entry=entry, **kw)
    ref = multilevel_roi_align(feats, rois, bidx, min_level=2, **kw)  # type: ignore[arg-type]
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)
    assert not got[7].any()
    np.testing.assert_array_equal(got, run_host(host_lib, feats, rois, bidx, **kw))
    return got


@pytest.mark.parametrize(
    ("channels", "aligned", "sampling", "mode", "levels", "output_size"),
    [
        (3, True, 2, "avg", 4, 7),
        (12, False, 1, "avg", 4, 7),
        (6, True, 3, "max", 4, 7),
        (4, False, 2, "max", 4, 14),
        (6, True, 2, "avg", 1, 7),
        (5, False, 3, "max", 1, 14),
    ],
)
def test_patch_layout_matches_reference(
    host_lib: ctypes.CDLL,
    channels: int,
    aligned: bool,
    sampling: int,
    mode: str,
    levels: int,
    output_size: int,
) -> None:
    """The GPU's patch kernel, a block emulated: its 64 threads copy each group of 4 channels'
    patch in turn (short last groups: 3, 5, 6 channels), then pool every bin from the copy (a
    14x14 output: more bins than threads); boxes whose patch does not fit the shared buffer
    (on one 32x40 level, where every box is pooled) from the map. The same float32 sums as a
    thread per bin's, bit for bit, and as the same threads reading every box from the map."""
    feats, scales = pyramid(17, c=channels)
    feats, scales = feats[:levels], scales[:levels]
    rois, bidx = boxes(18)
    rois[7, 1] = np.inf  # pools zeros
    rois[8:10] = [[-20, -20, 200, 150], [0, 0, 120, 100]]  # the whole image; most of it
    rois[10] = [90, 80, 40, 30]  # upside down: a fixed grid's samples run back from its corner
    kw = {
        "output_size": output_size,
        "spatial_scales": scales,
        "sampling_ratio": sampling,
        "aligned": aligned,
        "mode": mode,
    }
    got = grouped_layout_checks(host_lib, "edge_mlroialign_host_patch", feats, rois, bidx, kw)
    unstaged = run_host(host_lib, feats, rois, bidx, entry="edge_mlroialign_host_patch_unstaged", **kw)
    np.testing.assert_array_equal(got, unstaged)
    if levels == 1:  # both ways of reading a box were taken; the upside-down box copied
        h, w = feats[0].shape[2:]
        fits = [
            host_lib.edge_patch_fits(
                np.ascontiguousarray(box).ctypes.data_as(F32P),
                ctypes.c_float(scales[0]),
                h,
                w,
                output_size,
                sampling,
                int(aligned),
            )
            for box in rois
        ]
        assert set(fits) == {0, 1} and fits[10] == 1


@pytest.mark.parametrize("entry", ["edge_mlroialign_host_bin_channels", "edge_mlroialign_host_patch"])
def test_grouped_layouts_refuse_adaptive_sampling(host_lib: ctypes.CDLL, entry: str) -> None:
    """Bin channels and the patch layout visit every sample of a bin, and an adaptive grid
    grows with its box: they take fixed sampling ratios only, as launch() does."""
    feats, scales = pyramid(3)
    rois, bidx = boxes(4)
    with pytest.raises(ValueError, match=f"{entry} returned 2"):
        run_host(
            host_lib,
            feats,
            rois,
            bidx,
            entry=entry,
            output_size=7,
            spatial_scales=scales,
            sampling_ratio=0,
            aligned=True,
        )


@pytest.mark.parametrize("mode", ["avg", "max"])
@pytest.mark.parametrize("aligned", [True, False])
def test_bounded_sample_loops_visit_the_samples_on_the_map_bit_for_bit(
    host_lib: ctypes.CDLL, mode: str, aligned: bool
) -> None:
    """Past 64 samples a bin along an axis, a thread per bin's loop (and the channel-last
    kernels') visits only the run of them whose points lie on the map, found by bisection
    (axisRun); bin channels and the patch layout still visit all of them. With a sampling
    ratio of 100 and boxes running off their maps (one far off, one upside down, whose
    falling points are all visited), their sums and maxima are the same bit for bit, and the
    reference's."""
    feats, scales = pyramid(21, c=3, size=(64, 80))
    rois = np.array(
        [
            [-30, -20, 50, 40],  # off the top-left corner
            [40, 30, 120, 90],  # off the bottom-right
            [-300, 10, -200, 30],  # wholly off the map: zeros, a maximum's 0
            [50, 40, 20, 10],  # upside down
            [5, 5, 60, 50],  # on the map: the whole run
        ],
        np.float32,
    )
    bidx = np.zeros(len(rois), np.int64)
    kw = {"output_size": 2, "spatial_scales": scales, "sampling_ratio": 100, "aligned": aligned, "mode": mode}
    got = run_host(host_lib, feats, rois, bidx, **kw)
    for entry in ("edge_mlroialign_host_bin_channels", "edge_mlroialign_host_patch"):
        np.testing.assert_array_equal(got, run_host(host_lib, feats, rois, bidx, entry=entry, **kw))
    ref = multilevel_roi_align(feats, rois, bidx, min_level=2, **kw)  # type: ignore[arg-type]
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)
    assert not got[2].any() and got[0].any() and got[1].any()


@pytest.mark.parametrize("mode", ["avg", "max"])
def test_adaptive_grids_of_absurd_boxes_pool_their_samples_on_the_map(
    host_lib: ctypes.CDLL, mode: str
) -> None:
    """Adaptive sampling of boxes of 10^6 pixels and more (thousands of samples a bin along each
    axis, 2^31 for one of float's largest; the GPU's loops used to visit every one, for minutes
    or for ever): a thread per bin and both channel-last kernels pool them at once, as the
    reference does (which bisects too, in its own arithmetic). On a map at scale 1 a box whose
    size passes float's range pools zeros: every point is inf or NaN."""
    feats, scales = pyramid(22, c=4, size=(64, 80))
    rois = np.array(
        [
            [0, 0, 1e6, 1e6],
            [-1e6, -1e6, 1e6, 1e6],
            [-5e5, 10, 5e5, 30],  # wide and thin: one axis's grid large
            [-3e38, -3e38, 3e38, 3e38],  # 1.9e37 pixels on the top level
            [10, 10, 50, 40],  # an ordinary box beside them
            [-5e5, 30, 5e5, 10],  # upside down along y: empty, though its x grid is huge
        ],
        np.float32,
    )
    bidx = np.zeros(len(rois), np.int64)
    kw = {"output_size": 7, "spatial_scales": scales, "sampling_ratio": 0, "aligned": True, "mode": mode}
    ref = multilevel_roi_align(feats, rois, bidx, min_level=2, **kw)  # type: ignore[arg-type]
    got = run_host(host_lib, feats, rois, bidx, **kw)
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-6)
    assert got[[0, 1, 2]].any() and not got[5].any()
    for vector in (1, 4):
        cl = run_host_channels_last(host_lib, feats, rois, bidx, stride=4, vector=vector, **kw)
        np.testing.assert_array_equal(cl.transpose(0, 3, 1, 2), got)
    kw["spatial_scales"] = [1.0]
    got = run_host(host_lib, feats[:1], rois[3:5], bidx[3:5], **kw)
    assert not got[0].any() and got[1].any()
    ref = multilevel_roi_align(feats[:1], rois[3:5], bidx[3:5], min_level=2, **kw)  # type: ignore[arg-type]
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("sampling", [0, 3])
def test_sample_lanes_layout_refuses_other_sampling(host_lib: ctypes.CDLL, sampling: int) -> None:
    feats, scales = pyramid(3)
    rois, bidx = boxes(4)
    with pytest.raises(ValueError, match="edge_mlroialign_host_lanes returned 2"):
        run_host(
            host_lib,
            feats,
            rois,
            bidx,
            entry="edge_mlroialign_host_lanes",
            output_size=7,
            spatial_scales=scales,
            sampling_ratio=sampling,
            aligned=True,
        )


@pytest.mark.parametrize(
    ("entry", "sampling"),
    [("edge_mlroialign_host", 0), ("edge_mlroialign_host", 2), ("edge_mlroialign_host_lanes", 2)],
)
def test_boxes_with_nan_or_inf_pool_zeros(host_lib: ctypes.CDLL, entry: str, sampling: int) -> None:
    """readBox makes a box with a NaN or inf corner the reference's outside box: zeros, where a
    fixed grid read the map's corner for NaN (fmaxf(NaN, 0) is 0) and a GPU's adaptive grid of
    ceil(inf) samples would not end."""
    feats, scales = pyramid(5)
    rois, bidx = boxes(6, count=10)
    rois[3, 0], rois[4, 3], rois[6, 1], rois[8] = np.nan, np.inf, -np.inf, np.nan
    kw = {"output_size": 7, "spatial_scales": scales, "sampling_ratio": sampling, "aligned": True}
    got = run_host(host_lib, feats, rois, bidx, entry=entry, **kw)
    ref = multilevel_roi_align(feats, rois, bidx, min_level=2, **kw)  # type: ignore[arg-type]
    assert not got[[3, 4, 6, 8]].any()
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)


def run_host_channels_last(
    lib: ctypes.CDLL,
    feats: list[np.ndarray],
    rois: np.ndarray,
    bidx: np.ndarray,
    stride: int,
    vector: int = 1,
    **kw: object,
) -> np.ndarray:
    """The channel-last kernels on the host, a thread per element (``vector`` 1) or channel
    vectors (4, 8): NCHW maps laid out [N, H, W, stride] with NaN in the padding channels,
    as TensorRT's kHWC8 / kHWC16 may leave them; the output [R, oh, ow, stride] as the
    kernel writes it."""
    channels = feats[0].shape[1]
    packed = []
    for f in feats:
        hwc = np.full((f.shape[0], f.shape[2], f.shape[3], stride), np.nan, np.float32)
        hwc[..., :channels] = f.transpose(0, 2, 3, 1)[..., :stride]  # all of them where stride fits
        packed.append(hwc)
    oh = ow = int(kw["output_size"])  # type: ignore[call-overload]
    out = np.full((rois.shape[0], oh, ow, stride), -7.0, np.float32)  # every element is written
    sizes = [(f.shape[2], f.shape[3]) for f in feats]
    entry = "edge_mlroialign_host_channels_last"
    return _call_host(lib, entry, packed, sizes, [channels, stride, vector], rois, bidx, out, kw)


@pytest.mark.parametrize(
    ("channels", "format_vector", "thread_vector", "aligned", "sampling", "mode"),
    [
        (3, 1, 1, True, 2, "avg"),  # kHWC (float32): unpadded, a thread per element
        (3, 1, 1, False, 0, "max"),
        (3, 8, 1, True, 0, "avg"),  # kHWC8 (float16): 3 channels padded to 8
        (5, 16, 1, False, 2, "avg"),  # kHWC16
        (12, 1, 4, False, 0, "avg"),  # kHWC, channel vectors of 4 (the float32 kernel's)
        (12, 1, 4, True, 2, "max"),
        (3, 8, 8, True, 2, "avg"),  # kHWC8, vectors of 8 (the float16 kernel's): one, mostly padding
        (12, 16, 8, False, 0, "avg"),  # kHWC16: the second vector half padding
    ],
)
def test_channels_last_kernels_match_reference(
    host_lib: ctypes.CDLL,
    channels: int,
    format_vector: int,
    thread_vector: int,
    aligned: bool,
    sampling: int,
    mode: str,
) -> None:
    """The GPU's kernels for TensorRT's channel-last formats, as their threads take the
    output: which channels and bin a thread pools, where its corners are in a pixel-major
    map, and padding channels neither read (NaN there) nor left unwritten (zeros)."""
    feats, scales = pyramid(9, c=channels)
    rois, bidx = boxes(10)
    rois[5, 2] = np.nan  # pools zeros, as on NCHW maps
    stride = -(-channels // format_vector) * format_vector
    kw = {
        "output_size": 7,
        "spatial_scales": scales,
        "sampling_ratio": sampling,
        "aligned": aligned,
        "mode": mode,
    }
    got = run_host_channels_last(host_lib, feats, rois, bidx, stride, thread_vector, **kw)
    pooled = got[..., :channels].transpose(0, 3, 1, 2)
    ref = multilevel_roi_align(feats, rois, bidx, min_level=2, **kw)  # type: ignore[arg-type]
    np.testing.assert_allclose(pooled, ref, rtol=1e-4, atol=1e-5)
    assert not got[..., channels:].any(), "padding channels are written as zeros"
    assert not got[5].any()
    # the NCHW kernel's sums in its order: the same float32 values, bit for bit
    np.testing.assert_array_equal(pooled, run_host(host_lib, feats, rois, bidx, **kw))


@pytest.mark.parametrize(("stride", "vector", "code"), [(2, 1, 3), (6, 4, 4), (8, 2, 4)])
def test_channels_last_kernels_refuse_what_they_cannot_read(
    host_lib: ctypes.CDLL, stride: int, vector: int, code: int
) -> None:
    """A stride below the channels (3 here), or one that is not whole vectors of a thread."""
    feats, scales = pyramid(9)
    rois, bidx = boxes(10, count=4)
    with pytest.raises(ValueError, match=f"edge_mlroialign_host_channels_last returned {code}"):
        run_host_channels_last(
            host_lib,
            feats,
            rois,
            bidx,
            stride,
            vector,
            output_size=7,
            spatial_scales=scales,
            sampling_ratio=2,
            aligned=True,
        )


@pytest.mark.parametrize("sampling", [1, 2, 4, 8])
@pytest.mark.parametrize("aligned", [True, False])
def test_sample_points_by_the_grids_reciprocal_are_the_divisions_bit_for_bit(
    host_lib: ctypes.CDLL, sampling: int, aligned: bool
) -> None:
    """Where the sampling grid is powers of two the kernels multiply by its reciprocal instead
    of dividing by it (no division's instructions a sample): the same float32 points, for
    boxes of every size and place, fractional corners and scales among them."""
    rng = np.random.default_rng(sampling)
    xy = rng.uniform(-50, 3000, (500, 2))
    wh = np.exp(rng.uniform(np.log(0.01), np.log(5000), (500, 2)))
    rois = np.ascontiguousarray(np.concatenate([xy, xy + wh], axis=1), np.float32)
    points = []
    for by_inverse in (0, 1):
        out = np.zeros((500, 49, sampling * sampling, 2), np.float32)
        rc = host_lib.edge_sample_points(
            rois.ctypes.data_as(F32P),
            ctypes.c_int32(500),
            ctypes.c_float(1 / 12.5),  # not a power of two either
            ctypes.c_int32(7),
            ctypes.c_int32(sampling),
            ctypes.c_int32(int(aligned)),
            ctypes.c_int32(by_inverse),
            out.ctypes.data_as(F32P),
        )
        assert rc == 0
        points.append(out)
    np.testing.assert_array_equal(points[0].view(np.uint32), points[1].view(np.uint32))
    assert host_lib.edge_sample_points(rois.ctypes.data_as(F32P), 1, ctypes.c_float(1), 7, 3, 1, 1, None) == 5


def test_golden_values(host_lib: ctypes.CDLL) -> None:
    """A ramp map with known bilinear values: x + 10 y sampled at bin centres."""
    h, w = 8, 8
    ramp = (np.arange(w)[None, :] + 10 * np.arange(h)[:, None]).astype(np.float32)[None, None]
    rois = np.array([[0, 0, 4, 4], [2, 2, 6, 4]], np.float32)  # tiny boxes: all on the finest level
    out = run_host(
        host_lib,
        [ramp],
        rois,
        np.zeros(2, np.int64),
        output_size=2,
        spatial_scales=[1.0],
        sampling_ratio=1,
        aligned=True,
    )
    # aligned: corners shift by -0.5. First box: 2x2 bins sampled at x, y in {0.5, 2.5}.
    # Second box: corner (1.5, 1.5), 2-wide by 1-high bins: x in {2.5, 4.5}, y in {2, 3}
    np.testing.assert_allclose(out[0, 0], [[5.5, 7.5], [25.5, 27.5]], atol=1e-6)
    np.testing.assert_allclose(out[1, 0], [[22.5, 24.5], [32.5, 34.5]], atol=1e-6)
