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

import numpy as np
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper

import plugins.roi_align.torch_op  # noqa: F401 (registers torch.ops.edge)
from plugins.roi_align.onnx_export import DOMAIN, fused_node, register_schema
from plugins.roi_align.passes import expand
from plugins.roi_align.reference import multilevel_roi_align
from tests.plugins.roi_align.test_tensorrt_plugin import host_lib, run_host, run_host_channels_last

__all__ = ["host_lib"]  # the fixture, compiled once for this module too

# the expansion's max mode rounds its finer grid's points once more: 1.7e-5 at most (test_passes.py)
RTOL, ATOL = 1e-4, 2e-5
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
    register_schema()
    names = [f"p{i}" for i in range(len(feats))]
    node = fused_node(["rois", "bidx", *names], "y", mode=mode, **kw)
    inputs = [
        helper.make_tensor_value_info("rois", TensorProto.FLOAT, [rois.shape[0], 4]),
        helper.make_tensor_value_info("bidx", TensorProto.INT64, [rois.shape[0]]),
    ]
    inputs += [
        helper.make_tensor_value_info(n, TensorProto.FLOAT, list(f.shape))
        for n, f in zip(names, feats, strict=True)
    ]
    graph = helper.make_graph(
        [node], "g", inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid(DOMAIN, 1)], ir_version=9
    )
    session = ort.InferenceSession(expand(model).SerializeToString(), providers=["CPUExecutionProvider"])
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
