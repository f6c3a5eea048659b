"""The TensorRT plugin's CUDA kernel outside TensorRT (plugins/roi_align/cuda_kernel.py).

Where nvcc is installed (the device machine has CUDA 13's) the kernel is compiled for Orin
(sm_87) and Hopper (sm_90) and ptxas's report is checked, elsewhere with NVRTC from its pip
wheel (the dev extra); the library it runs from is built and loaded where nvcc is. Running
it needs a CUDA GPU (marked ``gpu``)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from edge.errors import BackendUnavailableError, BuildError, EngineInputError
from plugins.roi_align import cuda_kernel, nvrtc
from plugins.roi_align.reference import multilevel_roi_align
from tests.plugins.roi_align.test_tensorrt_plugin import boxes, pyramid

needs_nvcc = pytest.mark.skipif(shutil.which("nvcc") is None, reason="needs nvcc (the CUDA toolkit)")


def _nvrtc_missing() -> str | None:
    """Why the NVRTC path cannot compile here, or None."""
    try:
        nvrtc.wheel_dir("nvidia.cuda_nvrtc", "NVRTC")
        nvrtc.wheel_dir("nvidia.cuda_runtime", "the CUDA runtime's headers")
    except BackendUnavailableError as exc:
        return str(exc)
    return None


needs_nvrtc = pytest.mark.skipif(_nvrtc_missing() is not None, reason=f"needs NVRTC: {_nvrtc_missing()}")
needs_a_compiler = pytest.mark.skipif(
    shutil.which("nvcc") is None and _nvrtc_missing() is not None,
    reason="needs nvcc (the CUDA toolkit) or NVRTC (pip install nvidia-cuda-nvrtc-cu12 "
    "nvidia-cuda-runtime-cu12)",
)
needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

PTXAS_REPORT = """\
ptxas info    : 0 bytes gmem
ptxas info : Compiling entry function '_ZN4edge8roialign24multiLevelRoIAlignKernelI6__halfEEv' for 'sm_87'
ptxas info    : Function properties for _ZN4edge8roialign24multiLevelRoIAlignKernelI6__halfEEvNS0_6LevelsE
    136 bytes stack frame, 8 bytes spill stores, 4 bytes spill loads
ptxas info    : Used 40 registers, used 0 barriers, 136 bytes cumulative stack size, 520 bytes cmem[0]
ptxas info : Compiling entry function '_Z5otherPf' for 'sm_87'
ptxas info    : Function properties for _Z5otherPf
    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 8 registers, used 0 barriers
ptxas info : Compiling entry function '_ZN4edge8roialign17sampleLanesKernelIfEEv' for 'sm_90'
ptxas info    : Function properties for _ZN4edge8roialign17sampleLanesKernelIfEEv
    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 48 registers, used 0 barriers
"""


def test_ptxas_report_is_read_per_kernel_and_architecture() -> None:
    found = cuda_kernel.parse_ptxas(PTXAS_REPORT)
    assert found == [
        cuda_kernel.CudaKernelResources("thread_per_bin", 87, "fp16", 40, 136, 8, 4),
        cuda_kernel.CudaKernelResources("sample_lanes", 90, "fp32", 48, 0, 0, 0),
    ]
    assert found[0].spills and not found[1].spills


@needs_a_compiler
@pytest.mark.parametrize("compiler", ["nvcc, else NVRTC", "NVRTC"])
def test_kernel_compiles_for_orin_and_hopper_without_stack_or_spills(compiler: str) -> None:
    if compiler == "NVRTC" and _nvrtc_missing() is not None:
        pytest.skip(f"needs NVRTC: {_nvrtc_missing()}")
    compile_for = nvrtc.nvrtc_resources if compiler == "NVRTC" else cuda_kernel.kernel_resources
    found = compile_for([87, 90])
    assert sorted((r.layout, r.arch, r.dtype) for r in found) == [
        (layout, arch, dtype)
        for layout in (
            "bin_channels",
            "channel_vectors",
            "channels_last",
            "patch",
            "sample_lanes",
            "thread_per_bin",
        )
        for arch in (87, 90)
        for dtype in ("fp16", "fp32")
    ]
    for r in found:
        # a stack frame here was the pyramid parameters copied to local memory for runtime indexing
        assert r.stack_bytes == 0 and not r.spills, r
        # 64 registers: four 256-thread blocks an SM; channel vectors and bin channels hold 8
        # channels of each of a sample's four corners at once, and may take three blocks (85);
        # the patch kernel 4 channels by two ways of reading, in 64-thread blocks (twelve: 85)
        limit = 85 if r.layout in ("channel_vectors", "bin_channels", "patch") else 64
        assert r.registers <= limit, f"{r}: more than {limit} registers"


@needs_nvrtc
@pytest.mark.parametrize("arch", [87, 90])
def test_channel_vectors_load_and_store_16_bytes_at_a_time(arch: int) -> None:
    """What the compiler made of channel vectors: a 16-byte load a corner and a 16-byte store
    (cuobjdump's listing of NVRTC's machine code), where a thread per element loads 4 or 2."""
    pytest.importorskip("triton", reason="cuobjdump comes with Triton's wheel")
    sass = nvrtc.nvrtc_sass(arch)
    for dtype in ("fp32", "fp16"):
        vectors, elements = sass[("channel_vectors", dtype)], sass[("channels_last", dtype)]
        # a load per corner of a sample, in each of the two sample loops (grids of powers of two
        # multiply by their reciprocals, others divide)
        # through the read-only data cache (ld.global.nc: .CONSTANT), as every kernel reads the maps
        assert len(re.findall(r"\bLDG\.E\.128\.CONSTANT\b", vectors)) == 8, "one load per corner of a sample"
        assert len(re.findall(r"\bSTG\.E\.128\b", vectors)) == 1
        assert "LDG.E.128" not in elements and "STG.E.128" not in elements


@needs_nvrtc
def test_a_kernel_nvrtc_cannot_compile_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    # the error NVRTC gives, with its log, not a ptxas report of nothing
    monkeypatch.setattr(nvrtc, "STAND_INS", {**nvrtc.STAND_INS, "cmath": ""})
    with pytest.raises(
        BuildError, match=r'(?s)NVRTC could not compile the RoIAlign CUDA kernel .*"INFINITY" is undefined'
    ):
        nvrtc.nvrtc_resources([90])


def test_without_nvcc_or_nvrtc_both_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_nvcc() -> str:
        raise BackendUnavailableError("nvcc (the CUDA toolkit's compiler) was not found")

    def no_wheel(package: str, what: str) -> Path:
        raise BackendUnavailableError(
            f"{what} was not found (pip install nvidia-cuda-nvrtc-cu12 nvidia-cuda-runtime-cu12)"
        )

    monkeypatch.setattr(cuda_kernel, "find_nvcc", no_nvcc)
    monkeypatch.setattr(nvrtc, "wheel_dir", no_wheel)
    with pytest.raises(
        BackendUnavailableError, match=r"nvcc .* was not found; NVRTC was not found \(pip install"
    ):
        cuda_kernel.kernel_resources([87])


@needs_nvcc
def test_library_is_built_once_and_exports_its_entry_point(tmp_path: Path) -> None:
    first = cuda_kernel.build_library([87], cache_dir=tmp_path)
    mtime = first.stat().st_mtime_ns
    again = cuda_kernel.build_library([87], cache_dir=tmp_path)
    assert again == first and again.stat().st_mtime_ns == mtime
    # another architecture is another library (each build takes nvcc ~15 s: named, not built)
    nvcc = cuda_kernel.find_nvcc()
    assert first.name == cuda_kernel.library_name([87], nvcc) != cuda_kernel.library_name([90], nvcc)
    symbols = subprocess.run(["nm", "-D", str(first)], capture_output=True, text=True).stdout
    assert " T edge_mlroialign_cuda" in symbols and " T edge_cuda_error_string" in symbols
    lib = cuda_kernel._load(str(first))  # loads without a GPU: the CUDA runtime starts lazily
    assert lib.edge_cuda_error_string(1) == b"invalid argument"


@needs_nvcc
def test_a_failed_build_leaves_no_library(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match=r"nvcc could not build the RoIAlign CUDA kernel for sm_\[999\]"):
        cuda_kernel.build_library([999], cache_dir=tmp_path)
    left = [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")]
    assert left == [], "a failed build must not leave a library or a temporary file"


def test_nvcc_is_found_on_path_cuda_home_or_the_default_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.delenv("CUDA_HOME", raising=False)
    monkeypatch.delenv("CUDA_PATH", raising=False)
    with pytest.raises(
        BackendUnavailableError, match="nvcc .* was not found on PATH, under .CUDA_HOME or in"
    ):
        cuda_kernel.find_nvcc(homes=[tmp_path / "nowhere"])
    fake = tmp_path / "jetpack" / "bin" / "nvcc"  # where JetPack puts it, off PATH
    fake.parent.mkdir(parents=True)
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    assert cuda_kernel.find_nvcc(homes=[tmp_path / "jetpack"]) == str(fake)
    monkeypatch.setenv("CUDA_HOME", str(tmp_path / "jetpack"))
    assert cuda_kernel.find_nvcc(homes=[]) == str(fake)


def test_architectures_must_be_sm_numbers() -> None:
    with pytest.raises(EngineInputError, match=r"SM numbers such as 87 or 90, got \['sm_90'\]"):
        cuda_kernel._gencode(["sm_90"])  # type: ignore[list-item]


def test_inputs_are_checked_before_any_cuda_call() -> None:
    feats = [torch.zeros(1, 4, 8, 8), torch.zeros(1, 4, 4, 4)]
    rois, bidx = torch.zeros(2, 4), torch.zeros(2, dtype=torch.int64)
    call = cuda_kernel.multilevel_roi_align_cuda
    with pytest.raises(
        EngineInputError, match="feature map 0 is on cpu; expected every map on one CUDA device"
    ):
        call(feats, rois, bidx, 7, [0.25, 0.125], 2, True, 2)
    with pytest.raises(EngineInputError, match="2 feature maps but 1 spatial scales"):
        call(feats, rois, bidx, 7, [0.25], 2, True, 2)
    with pytest.raises(EngineInputError, match="1 to 5 pyramid levels, got 6"):
        call(feats * 3, rois, bidx, 7, [1.0] * 6, 2, True, 2)
    for mapping in ("channel_vectors", "bin_channels", "patch", "tuned"):
        with pytest.raises(EngineInputError, match="1 to 5 pyramid levels, got 0"):
            call([], rois, bidx, 7, [], 2, True, 2, mapping=mapping, layout="channels_last")
    with pytest.raises(EngineInputError, match="mapping 'warp'; expected one of"):
        call(feats, rois, bidx, 7, [0.25, 0.125], 2, True, 2, mapping="warp")
    with pytest.raises(
        EngineInputError, match="sample_lanes mapping takes NCHW maps and sampling ratio 1, 2 or 4"
    ):
        call(feats, rois, bidx, 7, [0.25, 0.125], 0, True, 2, mapping="sample_lanes")
    with pytest.raises(EngineInputError, match="got channels_last maps and sampling ratio 2; use 'auto'"):
        call(feats, rois, bidx, 7, [0.25, 0.125], 2, True, 2, mapping="sample_lanes", layout="channels_last")
    with pytest.raises(
        EngineInputError,
        match="bin_channels mapping takes NCHW maps and a fixed sampling ratio .1 or more., got channels_",
    ):
        call(feats, rois, bidx, 7, [0.25, 0.125], 2, True, 2, mapping="bin_channels", layout="channels_last")
    # an adaptive grid grows with its box, and these two loops visit every sample of it
    for mapping in ("bin_channels", "patch"):
        with pytest.raises(EngineInputError, match=f"the {mapping} .* nchw maps and sampling ratio 0; use"):
            call(feats, rois, bidx, 7, [0.25, 0.125], 0, True, 2, mapping=mapping)
    with pytest.raises(
        EngineInputError, match="channel_vectors mapping takes channels_last maps whose channels"
    ):
        call(feats, rois, bidx, 7, [0.25, 0.125], 2, True, 2, mapping="channel_vectors")
    with pytest.raises(EngineInputError, match="multiple of 4, got channels_last maps of 6 channels"):
        call(
            [f[:, :2].repeat(1, 3, 1, 1) for f in feats],
            rois,
            bidx,
            7,
            [0.25, 0.125],
            2,
            True,
            2,
            mapping="channel_vectors",
            layout="channels_last",
        )
    with pytest.raises(EngineInputError, match=r"layout 'nhwc'; expected one of \['nchw', 'channels_last'\]"):
        call(feats, rois, bidx, 7, [0.25, 0.125], 2, True, 2, layout="nhwc")


@pytest.mark.gpu
@needs_gpu
@needs_nvcc
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-4), (torch.float16, 1e-2)])
@pytest.mark.parametrize(
    "aligned,sampling,mode,mapping,layout,channels",
    [
        (True, 2, "avg", "thread_per_bin", "nchw", 3),
        (True, 2, "avg", "sample_lanes", "nchw", 3),
        (False, 4, "max", "sample_lanes", "nchw", 3),
        (False, 1, "avg", "auto", "nchw", 3),
        (False, 0, "avg", "auto", "nchw", 3),  # adaptive sampling: a thread per bin
        (True, 3, "max", "auto", "nchw", 3),
        (True, 2, "avg", "bin_channels", "nchw", 3),  # one short group of 8
        (False, 3, "max", "bin_channels", "nchw", 20),
        (True, 2, "avg", "patch", "nchw", 3),  # one short group of 4
        (False, 3, "max", "patch", "nchw", 20),
        (True, 2, "avg", "auto", "channels_last", 3),  # TensorRT's kHWC: a thread per element
        (False, 0, "max", "thread_per_bin", "channels_last", 16),
        (True, 2, "avg", "auto", "channels_last", 16),  # channel vectors: 16-byte loads
        (False, 0, "max", "channel_vectors", "channels_last", 24),
    ],
)
def test_cuda_kernel_matches_reference(
    dtype: torch.dtype,
    tol: float,
    aligned: bool,
    sampling: int,
    mode: str,
    mapping: str,
    layout: str,
    channels: int,
) -> None:
    feats, scales = pyramid(5, c=channels)
    rois, bidx = boxes(6)
    got = cuda_kernel.multilevel_roi_align_cuda(
        [torch.from_numpy(f).cuda().to(dtype) for f in feats],
        torch.from_numpy(rois).cuda(),
        torch.from_numpy(bidx).cuda(),
        7,
        scales,
        sampling,
        aligned,
        2,
        mode=mode,
        mapping=mapping,
        layout=layout,
    )
    torch.cuda.synchronize()
    assert got.dtype == dtype
    memory = torch.channels_last if layout == "channels_last" else torch.contiguous_format
    assert got.is_contiguous(memory_format=memory)
    ref = multilevel_roi_align(
        feats,
        rois,
        bidx,
        output_size=7,
        spatial_scales=scales,
        sampling_ratio=sampling,
        aligned=aligned,
        mode=mode,
    )
    np.testing.assert_allclose(got.float().cpu().numpy(), ref, rtol=tol, atol=tol)


@pytest.mark.gpu
@needs_gpu
@needs_nvcc
@pytest.mark.parametrize(
    ("mapping", "layout", "sampling"),
    [
        ("thread_per_bin", "nchw", 100),
        ("thread_per_bin", "nchw", 0),
        ("thread_per_bin", "channels_last", 0),
        ("channel_vectors", "channels_last", 0),
    ],
)
def test_bounded_sample_loops_on_the_gpu_match_the_reference(
    mapping: str, layout: str, sampling: int
) -> None:
    """The loops that visit only a bin's samples on the map (axisRun, past 64 an axis), as the
    GPU compiles them: the bisection must find the points the loop computes, fused multiply-adds
    and all, or a row of samples at the map's edge goes missing (1% of a bin at ratio 100).
    RoIs running off the map at sampling ratio 100, and absurd ones under adaptive sampling,
    which the loops took minutes over before."""
    feats, scales = pyramid(23, c=8, size=(64, 80))
    rois = np.array(
        [[-30, -20, 50, 40], [40, 30, 120, 90], [50, 40, 20, 10], [0, 0, 1e6, 1e6], [-5e5, 10, 5e5, 30]],
        np.float32,
    )
    bidx = np.zeros(len(rois), np.int64)
    got = cuda_kernel.multilevel_roi_align_cuda(
        [torch.from_numpy(f).cuda() for f in feats],
        torch.from_numpy(rois).cuda(),
        torch.from_numpy(bidx).cuda(),
        2,  # the reference visits each sample on the map in Python: 10^4 a bin at ratio 100
        scales,
        sampling,
        True,
        2,
        mapping=mapping,
        layout=layout,
    )
    ref = multilevel_roi_align(
        feats, rois, bidx, output_size=2, spatial_scales=scales, sampling_ratio=sampling, aligned=True
    )
    np.testing.assert_allclose(got.cpu().numpy(), ref, rtol=1e-4, atol=1e-6)


@pytest.mark.gpu
@needs_gpu
@needs_nvcc
def test_cuda_kernel_agrees_with_the_triton_kernel_and_takes_no_rois() -> None:
    from plugins.roi_align.triton_kernel import multilevel_roi_align_triton

    feats_np, scales = pyramid(7, c=32)
    rois_np, bidx_np = boxes(8, count=200)
    feats = [torch.from_numpy(f).cuda() for f in feats_np]
    rois, bidx = torch.from_numpy(rois_np).cuda(), torch.from_numpy(bidx_np).cuda()
    triton = multilevel_roi_align_triton(feats, rois, bidx, 14, scales, 2, False, 2)
    for mapping, layout in [  # 14 bins a row: two passes of sample lanes
        ("thread_per_bin", "nchw"),
        ("sample_lanes", "nchw"),
        ("bin_channels", "nchw"),
        ("patch", "nchw"),
        ("thread_per_bin", "channels_last"),
        ("channel_vectors", "channels_last"),
    ]:
        ours = cuda_kernel.multilevel_roi_align_cuda(
            feats, rois, bidx, 14, scales, 2, False, 2, mapping=mapping, layout=layout
        )
        torch.testing.assert_close(ours, triton, rtol=1e-5, atol=1e-5)
    empty = cuda_kernel.multilevel_roi_align_cuda(feats, rois[:0], bidx[:0], 7, scales, 2, False, 2)
    assert empty.shape == (0, 32, 7, 7)


@pytest.mark.gpu
@needs_gpu
@needs_nvcc
def test_the_torch_op_reads_channels_last_maps_as_they_lie() -> None:
    """torch.ops.edge's CUDA fallback (JetPack: no Triton) on a channels_last pyramid: the
    plugin's channel-last kernel, the output NCHW as on NCHW maps and equal to it."""
    from plugins.roi_align.torch_op import multilevel_roi_align_on_cuda

    feats_np, scales = pyramid(11, c=16)
    rois_np, bidx_np = boxes(12, count=64)
    feats = [torch.from_numpy(f).cuda() for f in feats_np]
    rois, bidx = torch.from_numpy(rois_np).cuda(), torch.from_numpy(bidx_np).cuda()
    args = (rois, bidx, 7, scales, 2, True, 2)
    nchw = multilevel_roi_align_on_cuda(feats, *args, kernel="nvcc")
    cl = multilevel_roi_align_on_cuda(
        [f.to(memory_format=torch.channels_last) for f in feats], *args, kernel="nvcc"
    )
    assert cl.is_contiguous()
    torch.testing.assert_close(cl, nchw, rtol=1e-6, atol=1e-6)


def test_a_tuned_call_times_the_kernels_that_apply_to_its_maps() -> None:
    assert cuda_kernel._candidates("nchw", 3, 4, 2) == ["thread_per_bin", "bin_channels", "patch"]
    assert cuda_kernel._candidates("nchw", 3, 4, 0) == ["thread_per_bin"]  # adaptive sampling
    assert cuda_kernel._candidates("channels_last", 256, 4, 2) == ["thread_per_bin", "channel_vectors"]
    assert cuda_kernel._candidates("channels_last", 256, 4, 0) == ["thread_per_bin", "channel_vectors"]
    assert cuda_kernel._candidates("channels_last", 6, 4, 2) == ["thread_per_bin"]  # no whole vectors
    assert cuda_kernel._candidates("channels_last", 24, 8, 2) == ["thread_per_bin", "channel_vectors"]


@pytest.mark.gpu
@needs_gpu
@needs_nvcc
def test_a_tuned_call_runs_the_faster_kernel_timed_once() -> None:
    """mapping='tuned' (the torch op's CUDA fallback): each kind of problem timed on the first
    call, the choice kept; the output the reference's whichever kernel won."""
    feats_np, scales = pyramid(15, c=16)
    rois_np, bidx_np = boxes(16, count=100)
    feats = [torch.from_numpy(f).cuda() for f in feats_np]
    rois, bidx = torch.from_numpy(rois_np).cuda(), torch.from_numpy(bidx_np).cuda()
    cuda_kernel._TUNED.clear()
    try:
        call = cuda_kernel.multilevel_roi_align_cuda
        nchw = call(feats, rois, bidx, 7, scales, 2, True, 2, mapping="tuned")
        cl = call(feats, rois, bidx, 7, scales, 2, True, 2, mapping="tuned", layout="channels_last")
        chosen = cuda_kernel.tuned_choices()
        assert sorted(str(k[2]) for k in chosen) == ["channels_last", "nchw"]
        for key, mapping in chosen.items():
            assert mapping in cuda_kernel._candidates(str(key[2]), 16, 4, 2)
        call(feats, rois, bidx, 7, scales, 2, True, 2, mapping="tuned")
        call(feats, rois[:0], bidx[:0], 7, scales, 2, True, 2, mapping="tuned")  # nothing to time
        assert cuda_kernel.tuned_choices() == chosen
        ref = multilevel_roi_align(
            feats_np, rois_np, bidx_np, output_size=7, spatial_scales=scales, sampling_ratio=2, aligned=True
        )
        for got in (nchw, cl):
            np.testing.assert_allclose(got.cpu().numpy(), ref, rtol=1e-4, atol=1e-4)
    finally:
        cuda_kernel._TUNED.clear()


@needs_nvcc
def test_the_library_for_an_architecture_is_looked_up_once_per_process(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    built = cuda_kernel.build_library([90])  # where the other tests find it, or built there now
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # the default cache, under tmp_path
    # found there as a build leaves it (the test above builds one): one nvcc run less
    target = cuda_kernel.default_cache_dir() / built.name
    target.parent.mkdir(parents=True)
    shutil.copy2(built, target)
    cuda_kernel.library_for_arch.cache_clear()
    try:
        first = cuda_kernel.library_for_arch(90)
        assert first == target
        assert first.is_relative_to(tmp_path) and first.is_file()
        assert cuda_kernel.library_for_arch(90) is first
        assert cuda_kernel.library_for_arch.cache_info().hits == 1
    finally:
        cuda_kernel.library_for_arch.cache_clear()  # later tests must not get tmp_path's library


@needs_nvcc
def test_the_library_takes_every_mapping_where_it_applies() -> None:
    """Each name of MAPPINGS, as its number, through the library's C entry with no RoIs (no
    GPU needed: nothing is launched): taken on the maps' layouts it applies to, refused as
    cudaErrorInvalidValue (1) on the others and, for bin channels and the patch layout, under
    adaptive sampling; a number past the enum refused."""
    import ctypes

    lib = cuda_kernel._load(str(cuda_kernel.build_library([90])))

    def call(mapping: int, channel_stride: int, sampling: int = 2) -> int:
        return int(
            lib.edge_mlroialign_cuda(
                (ctypes.c_void_p * 1)(None),
                (ctypes.c_int32 * 1)(8),
                (ctypes.c_int32 * 1)(8),
                1,
                4,
                channel_stride,
                None,
                None,
                0,
                2,
                7,
                7,
                sampling,
                1,
                0,
                4,
                224.0,
                (ctypes.c_float * 1)(0.25),
                0,
                None,
                None,
                mapping,
            )
        )

    nchw_only = {"sample_lanes", "bin_channels", "patch"}
    for name, number in cuda_kernel.MAPPINGS.items():
        assert call(number, 0) == (1 if name == "channel_vectors" else 0), name
        assert call(number, 4) == (1 if name in nchw_only else 0), name
        # adaptive sampling on NCHW maps: what a thread per bin takes
        assert call(number, 0, sampling=0) == (0 if name in ("auto", "thread_per_bin") else 1), name
    assert call(max(cuda_kernel.MAPPINGS.values()) + 1, 0) == 1
