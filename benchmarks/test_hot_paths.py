"""pytest-benchmark suite for the per-frame hot pieces. Not part of the default test run
(pytest's testpaths is tests/); run it, compare with the saved CPU baseline, or save one:

    pytest benchmarks/test_hot_paths.py --benchmark-storage=benchmarks/results/pytest-benchmark \\
        --benchmark-compare=0001 --benchmark-compare-fail=median:50%
    pytest benchmarks/test_hot_paths.py --benchmark-storage=benchmarks/results/pytest-benchmark \\
        --benchmark-save=cpu

Sizes are the runtime's (256x512 frames, panoptic_fpn_tiny-like outputs), so the numbers
say what each piece costs per frame on the machine that runs them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from onnx import TensorProto, helper

from edge.models.detection import anchors_for_level, decode_boxes
from edge.models.ops import greedy_nms_grouped, greedy_nms_matrix, greedy_nms_np
from edge.postprocess.labels import place_labels
from edge.postprocess.panoptic import fuse
from edge.postprocess.render import colorize_depth, overlay
from edge.stream.fit import unpad_outputs
from edge.stream.steps import preprocess
from edge.util.ort import onnxruntime_module
from plugins.roi_align.onnx_export import DOMAIN, fused_node
from plugins.roi_align.passes import expand
from plugins.roi_align.reference import multilevel_roi_align
from plugins.roi_align.torch_op import per_level_torch

ort = onnxruntime_module()  # its telemetry off, as edge runs it

H, W = 256, 512
SCALES = [1 / 4, 1 / 8, 1 / 16, 1 / 32]


def panoptic_outputs(k: int = 20, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, [W - 80, H - 80], (k, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(10, 80, (k, 2))], 1).astype(np.float32)[None]
    return {
        "boxes": boxes,
        "scores": np.sort(rng.uniform(0.3, 1.0, (1, k)).astype(np.float32))[:, ::-1].copy(),
        "labels": rng.integers(0, 8, (1, k)).astype(np.int32),
        "masks": rng.uniform(0, 1, (1, k, 28, 28)).astype(np.float32),
        "num_detections": np.array([k], np.int32),
        "sem_labels": rng.integers(0, 19, (1, H, W)).astype(np.int32),
    }


def random_boxes(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 500, (n, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(4, 120, (n, 2))], 1).astype(np.float32)
    return boxes, rng.uniform(0, 1, n).astype(np.float32)


def pyramid(c: int = 32, n_rois: int = 100) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    feats = [rng.normal(size=(1, c, H >> (2 + i), W >> (2 + i))).astype(np.float32) for i in range(4)]
    xy = rng.uniform(0, [W, H], (n_rois, 2))
    rois = np.concatenate([xy, xy + np.exp(rng.uniform(2, 6, (n_rois, 2)))], 1).astype(np.float32)
    return feats, rois, np.zeros(n_rois, np.int64)


def test_preprocess(benchmark: Any) -> None:
    frame = np.random.default_rng(0).integers(0, 255, (720, 1280, 3), dtype=np.uint8)
    _, tensor = benchmark(preprocess, frame, (H, W))
    assert tensor.shape == (1, 3, H, W)


def test_preprocess_padded(benchmark: Any) -> None:
    """--fit pad: a 720p frame scaled whole into the engines (256x455) and centred."""
    frame = np.random.default_rng(0).integers(0, 255, (720, 1280, 3), dtype=np.uint8)
    resized, tensor = benchmark(preprocess, frame, (H, W), "pad")
    assert resized.shape == (H, 455, 3) and tensor.shape == (1, 3, H, W)


def test_unpad_outputs(benchmark: Any) -> None:
    """--fit pad: one frame's outputs cropped back to its 256x455 part (depth scaled)."""
    outputs = {
        **panoptic_outputs(),
        "sem_logits": np.zeros((1, 19, H // 4, W // 4), np.float32),
        "depth": np.ones((1, 1, H, W), np.float32),
    }
    out = benchmark(unpad_outputs, outputs, (H, 455), (H, W))
    assert out["sem_labels"].shape == (1, H, 455) and out["depth"].shape == (1, 1, H, 455)


def test_panoptic_fusion(benchmark: Any) -> None:
    ids, instances = benchmark(fuse, panoptic_outputs())
    assert ids.shape == (H, W) and instances


def test_overlay_rendering(benchmark: Any) -> None:
    ids, instances = fuse(panoptic_outputs())
    image = np.zeros((H, W, 3), np.uint8)
    assert benchmark(overlay, image, ids, instances).shape == (H, W, 3)


@pytest.mark.parametrize("n", [30, 100])
def test_label_placement(benchmark: Any, n: int) -> None:
    """Where the overlay's labels go (edge.postprocess.labels), for n labels on boxes of a
    crowded 256x512 frame: the part of the overlay that grows with its labels' pairs."""
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, [W - 80, H - 80], (n, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(10, 80, (n, 2))], 1).tolist()
    sizes = [(int(w), 12) for w in rng.integers(50, 90, n)]
    assert len(benchmark(place_labels, boxes, sizes, (H, W))) == n


def test_depth_colormap(benchmark: Any) -> None:
    depth = np.random.default_rng(0).uniform(0.1, 100, (H, W)).astype(np.float32)
    assert benchmark(colorize_depth, depth).shape == (H, W, 3)


def test_synthetic_frame(benchmark: Any) -> None:
    """synthetic:// renders on the capture thread, beside the engines on the same cores."""
    from edge.data.synthetic import SyntheticDrive

    drive = SyntheticDrive(height=H, width=W, seed=0)
    frames = iter(range(10**9))
    gt = benchmark(lambda: drive.render(next(frames) % 120))
    assert gt.image.shape == (H, W, 3)


@pytest.mark.parametrize("n", [256, 1000])
def test_nms_numpy_greedy(benchmark: Any, n: int) -> None:
    boxes, scores = random_boxes(n)
    assert benchmark(greedy_nms_np, boxes, scores, 0.7, -0.5).any()


def rpn_boxes(levels: int = 5, per_level: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """RPN candidates as batched NMS sees them: each level's boxes offset past the image."""
    parts = [random_boxes(per_level, seed=lvl) for lvl in range(levels)]
    boxes = np.concatenate([b + lvl * 1000.0 for lvl, (b, _) in enumerate(parts)]).astype(np.float32)
    return boxes, np.concatenate([s for _, s in parts])


@pytest.mark.parametrize("nms", [greedy_nms_np, greedy_nms_grouped], ids=["reference", "grouped"])
def test_nms_rpn_levels(benchmark: Any, nms: Any) -> None:
    """The torch backend's CPU NMS (grouped) against the one-matrix reference, on 5 x 400."""
    boxes, scores = rpn_boxes()
    assert benchmark(nms, boxes, scores, 0.7, -0.5).any()


@pytest.mark.parametrize("n", [256, 1000])
def test_nms_matrix(benchmark: Any, n: int) -> None:
    boxes, scores = random_boxes(n)
    b, s = torch.from_numpy(boxes), torch.from_numpy(scores)
    assert benchmark(greedy_nms_matrix, b, s, 0.7, -0.5).any()


def test_box_decode(benchmark: Any) -> None:
    anchors = anchors_for_level(32.0, (0.5, 1.0, 2.0), (H // 4, W // 4), (4, 4))
    deltas = torch.randn(1, anchors.shape[0], 4, generator=torch.Generator().manual_seed(0)) * 0.1
    out = benchmark(decode_boxes, deltas, anchors[None], (1.0, 1.0, 1.0, 1.0))
    assert out.shape == (1, anchors.shape[0], 1, 4)


def test_roi_align_numpy_reference(benchmark: Any) -> None:
    feats, rois, bidx = pyramid(c=8, n_rois=20)  # the reference is for correctness, not speed
    out = benchmark(
        multilevel_roi_align,
        feats,
        rois,
        bidx,
        output_size=7,
        spatial_scales=SCALES,
        sampling_ratio=2,
        aligned=True,
    )
    assert out.shape == (20, 8, 7, 7)


def test_roi_align_torch_cpu(benchmark: Any) -> None:
    """The torch op's CPU implementation (the torch backend on a CPU, and training)."""
    feats, rois, bidx = pyramid()
    args = ([torch.from_numpy(f) for f in feats], torch.from_numpy(rois), torch.from_numpy(bidx))
    out = benchmark(per_level_torch, *args, 7, SCALES, 2, True, 2)
    assert out.shape == (100, 32, 7, 7)


def test_roi_align_onnxruntime_expanded(benchmark: Any) -> None:
    """The fused node expanded to standard ops, as backends without the plugin run it."""
    feats, rois, bidx = pyramid()
    names = ["p2", "p3", "p4", "p5"]
    node = fused_node(
        ["rois", "bidx", *names],
        "y",
        output_size=7,
        spatial_scales=SCALES,
        sampling_ratio=2,
        aligned=True,
        min_level=2,
    )
    inputs = [
        helper.make_tensor_value_info("rois", TensorProto.FLOAT, rois.shape),
        helper.make_tensor_value_info("bidx", TensorProto.INT64, bidx.shape),
        *[
            helper.make_tensor_value_info(n, TensorProto.FLOAT, f.shape)
            for n, f in zip(names, feats, strict=True)
        ],
    ]
    graph = helper.make_graph(
        [node], "g", inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid(DOMAIN, 1)], ir_version=9
    )
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(expand(model).SerializeToString(), opts, providers=["CPUExecutionProvider"])
    feeds = {"rois": rois, "bidx": bidx, **dict(zip(names, feats, strict=True))}
    out = benchmark(sess.run, None, feeds)[0]
    assert out.shape == (100, 32, 7, 7)
