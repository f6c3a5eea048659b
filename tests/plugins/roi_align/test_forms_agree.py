"""Every form of the op that runs on a CPU against the numpy reference, on random problems:
1-4 levels, 0-29 RoIs of every kind (ordinary, upside down, sub-pixel, far larger than the
image, on whole pixels), output 1-8, sampling ratio 0-4, both alignments, both modes. The
torch op (avg: it has no mode), the TensorRT plugin's arithmetic as each of its thread layouts
takes the output (tests/plugins/roi_align/test_tensorrt_plugin.py builds it for the CPU), and
the standard-op expansion in ONNX Runtime. The Triton kernel is left to test_triton.py: its
interpreter takes seconds a problem. A max node under adaptive sampling has no expansion
(test_passes.py)."""

from __future__ import annotations

import ctypes
import importlib.util

import numpy as np
import onnxruntime as ort
import pytest
import torch

import plugins.roi_align.torch_op  # noqa: F401 (registers torch.ops.edge)
from plugins.roi_align.passes import expand
from plugins.roi_align.reference import multilevel_roi_align
from tests.plugins.roi_align.test_passes import fused_model
from tests.plugins.roi_align.test_tensorrt_plugin import host_lib, run_host, run_host_channels_last

__all__ = ["host_lib"]  # the fixture, compiled once for this module too

# the 1e-5 for every CPU form, the expansion's max mode included since it computes each
# sample's point as the reference does (it rounded them otherwise, 1.7e-5 off, until 2026-12-06)
RTOL, ATOL = 1e-5, 1e-5
# as the GPU compiles them (fused multiply-adds): the fp32 bound
GPU_TOL = 1e-4
NCHW_LAYOUTS = (
    "edge_mlroialign_host",
    "edge_mlroialign_host_bin_channels",
    "edge_mlroialign_host_patch",
    "edge_mlroialign_host_patch_unstaged",
    "edge_mlroialign_host_lanes",
)


def problem(seed: int) -> tuple[list[np.ndarray], np.ndarray, np.ndarray, dict[str, object]]:
    rng = np.random.default_rng(seed)
    levels, images, channels = int(rng.integers(1, 5)), int(rng.integers(1, 4)), int(rng.integers(1, 10))
    ih, iw = int(rng.integers(16, 200)), int(rng.integers(16, 200))
    feats = [
        rng.standard_normal((images, channels, max(1, ih >> (2 + i)), max(1, iw >> (2 + i)))).astype(
            np.float32
        )
        for i in range(levels)
    ]
    count = int(rng.integers(0, 30))
    kind = rng.integers(0, 6, count)
    xy = rng.uniform(-20, max(ih, iw) + 20, (count, 2))
    wh = np.exp(rng.uniform(np.log(0.1), np.log(600), (count, 2)))
    for k, (lo, hi) in {1: (-5, 0), 2: (0, 1), 3: (1000, 5000)}.items():  # upside down, sub-pixel, huge
        wh[kind == k] = rng.uniform(lo, hi, (int((kind == k).sum()), 2))
    rois = np.concatenate([xy, xy + wh], 1).astype(np.float32)
    rois[kind == 4] = np.round(rois[kind == 4])
    kw: dict[str, object] = {
        "output_size": int(rng.integers(1, 9)),
        "spatial_scales": [1.0 / 2 ** (2 + i) for i in range(levels)],
        "sampling_ratio": int(rng.integers(0, 5)),
        "aligned": bool(rng.integers(0, 2)),
        "min_level": 2,
    }
    return feats, rois, rng.integers(0, images, count).astype(np.int64), kw


def expanded(
    feats: list[np.ndarray], rois: np.ndarray, bidx: np.ndarray, kw: dict[str, object], mode: str
) -> np.ndarray:
    """The fused node expanded into standard ops, run by ONNX Runtime."""
    model = fused_model([list(f.shape) for f in feats], rois.shape[0], mode=mode, **kw)
    session = ort.InferenceSession(expand(model).SerializeToString(), providers=["CPUExecutionProvider"])
    names = [f"p{2 + i}" for i in range(len(feats))]
    return session.run(None, {"rois": rois, "bidx": bidx, **dict(zip(names, feats, strict=True))})[0]


@pytest.mark.parametrize("seed", range(40))
def test_every_cpu_form_agrees_with_the_reference(host_lib: ctypes.CDLL, seed: int) -> None:
    feats, rois, bidx, kw = problem(seed)
    channels = feats[0].shape[1]
    checked = []
    for mode in ("avg", "max"):
        ref = multilevel_roi_align(feats, rois, bidx, mode=mode, **kw)  # type: ignore[arg-type]
        got: dict[str, np.ndarray] = {}
        if mode == "avg":
            got["torch op"] = torch.ops.edge.multilevel_roi_align(
                [torch.from_numpy(f) for f in feats], torch.from_numpy(rois), torch.from_numpy(bidx),
                kw["output_size"], kw["spatial_scales"], kw["sampling_ratio"], kw["aligned"], 2,
            ).numpy()  # fmt: skip
        for entry in NCHW_LAYOUTS:
            try:
                got[entry] = run_host(host_lib, feats, rois, bidx, entry=entry, mode=mode, **kw)
            except ValueError as exc:  # 2: the layout does not take this sampling
                assert "returned 2" in str(exc) and entry != "edge_mlroialign_host"
        for stride, vector in (
            (channels, 1),
            (-(-channels // 8) * 8, 1),
            (-(-channels // 4) * 4, 4),
            (-(-channels // 8) * 8, 8),
        ):
            out = run_host_channels_last(host_lib, feats, rois, bidx, stride, vector, mode=mode, **kw)
            got[f"channels last {stride}/{vector}"] = out[..., :channels].transpose(0, 3, 1, 2)
            assert not out[..., channels:].any(), "padding channels are written 0"
        if mode == "avg" or int(kw["sampling_ratio"]) > 0:  # type: ignore[call-overload]
            got["ONNX Runtime, expanded"] = expanded(feats, rois, bidx, kw, mode)
        for name, value in got.items():
            np.testing.assert_allclose(value, ref, rtol=RTOL, atol=ATOL, err_msg=f"{name}, {mode}, {kw}")
        checked += [f"{name} {mode}" for name in got]
    assert len(checked) >= 9  # thread per bin and four channel-last kernels a mode, at least


def gpu_forms(
    maps: list[torch.Tensor], rois: torch.Tensor, bidx: torch.Tensor, kw: dict[str, object], mode: str
) -> dict[str, torch.Tensor]:
    """Every GPU kernel that runs here and takes the problem, by name: Triton's (avg) on both
    layouts, and the TensorRT plugin's in each thread layout that applies."""
    import shutil

    args = (kw["output_size"], kw["spatial_scales"], kw["sampling_ratio"], kw["aligned"], 2)
    sampling, channels = int(kw["sampling_ratio"]), int(maps[0].shape[1])  # type: ignore[call-overload]
    last = [m.to(memory_format=torch.channels_last) for m in maps]
    out: dict[str, torch.Tensor] = {}
    if mode == "avg" and importlib.util.find_spec("triton") is not None:
        from plugins.roi_align.triton_kernel import multilevel_roi_align_triton

        out["triton nchw"] = multilevel_roi_align_triton(maps, rois, bidx, *args)
        out["triton channels_last"] = multilevel_roi_align_triton(last, rois, bidx, *args)
    if shutil.which("nvcc") is not None:
        from plugins.roi_align.cuda_kernel import _candidates, multilevel_roi_align_cuda

        lanes = ["sample_lanes"] if sampling in (1, 2, 4) else []
        for layout, chosen in (("nchw", maps), ("channels_last", last)):
            for mapping in _candidates(layout, channels, 4, sampling) + (lanes if layout == "nchw" else []):
                out[f"cuda {layout} {mapping}"] = multilevel_roi_align_cuda(
                    chosen,
                    rois,
                    bidx,
                    *args,
                    mode=mode,
                    mapping=mapping,
                    layout=layout,  # type: ignore[arg-type]
                )
    return out


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("seed", range(12))
def test_every_gpu_kernel_agrees_with_the_reference(seed: int) -> None:
    """The first of the same random problems through the kernels as the GPU compiles them
    (fused multiply-adds and all): the Triton kernel, and the plugin's kernels built with
    nvcc. Twelve, not forty: each output size, sampling ratio and alignment is a Triton
    compile of its own, a second or so of a device session's few minutes."""
    feats, rois, bidx, kw = problem(seed)
    maps = [torch.from_numpy(f).cuda() for f in feats]
    r, b = torch.from_numpy(rois).cuda(), torch.from_numpy(bidx).cuda()
    ran = 0
    for mode in ("avg", "max"):
        ref = multilevel_roi_align(feats, rois, bidx, mode=mode, **kw)  # type: ignore[arg-type]
        for name, value in gpu_forms(maps, r, b, kw, mode).items():
            np.testing.assert_allclose(
                value.cpu().numpy(), ref, rtol=GPU_TOL, atol=GPU_TOL, err_msg=f"{name}, {mode}, {kw}"
            )
            ran += 1
    if ran == 0:
        pytest.skip("neither Triton nor nvcc is installed")
