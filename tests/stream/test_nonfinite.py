"""NaN or inf from real ONNX Runtime engines, said once a kind for the run."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from edge.latency import LatencyTracker
from edge.stream.engines import EngineSet
from edge.stream.frame import Frame
from edge.stream.nonfinite import nonfinite_share
from edge.stream.steps import run_engines
from tests.conftest import IR_VERSION, TEST_SIZE, source_images


def test_a_depth_engine_giving_nan_is_said_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A real ONNX Runtime depth engine whose map is NaN where the picture is black (0 / 0, as
    an engine that overflows gives them): the first frame with such pixels is said, with their
    share, once for the run; a frame without any says nothing."""
    import onnx
    from onnx import TensorProto, helper

    from edge.backends.onnxruntime import OnnxRuntimeEngine

    h, w = 64, 128
    grey = helper.make_node("ReduceMean", ["image", "axes"], ["grey"], keepdims=1)
    graph = helper.make_graph(
        [
            grey,
            helper.make_node("Div", ["grey", "grey"], ["one"]),
            helper.make_node("Mul", ["one", "ten"], ["depth"]),
        ],
        "nan_where_black",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, h, w])],
        [helper.make_tensor_value_info("depth", TensorProto.FLOAT, [1, 1, h, w])],
        [
            helper.make_tensor("axes", TensorProto.INT64, [1], [1]),
            helper.make_tensor("ten", TensorProto.FLOAT, [], [10.0]),
        ],
    )
    path = tmp_path / "depth.onnx"
    onnx.save(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=IR_VERSION),
        str(path),
    )
    engines = EngineSet(panoptic=None, depth=OnnxRuntimeEngine(path))
    lit = np.full((h, w, 3), 120, np.uint8)
    dark = lit.copy()
    dark[:16] = 0  # a quarter of the rows
    tracker = LatencyTracker()
    with ThreadPoolExecutor(1) as pool:
        maps = [
            run_engines(engines, Frame(seq, seq, image), tracker, pool).depth["depth"]
            for seq, image in enumerate([lit, dark, dark])
        ]
    assert nonfinite_share(maps[0]) == 0.0 and np.all(maps[0] == 10.0)
    assert nonfinite_share(maps[1]) == 0.25 and np.isnan(maps[1][0, 0, :16]).all()
    said = [line for line in capsys.readouterr().err.splitlines() if "NaN or inf" in line]
    assert said == [
        "warning: the depth engine gave NaN or inf at 25.0% of frame 1's pixels: an FP16 or INT8 build that "
        "overflows, or a broken engine (edge engines --verify hashes the folder; an fp32 build of the same "
        "weights compares); things over those pixels get no distance from it"
    ]


def corrupted(engines: Path, folder: Path, initializer: str) -> Path:
    """A copy of the engines folder whose panoptic engine has ``initializer`` set to NaN, as an
    engine whose weights or activations overflow has them."""
    import json
    import shutil

    import onnx
    from onnx import numpy_helper

    shutil.copytree(engines, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    (entry,) = (e for e in manifest["engines"].values() if e["kind"] == "panoptic")
    model = onnx.load(str(folder / entry["artifact"]["path"]))
    (tensor,) = (t for t in model.graph.initializer if t.name == initializer)
    tensor.CopyFrom(numpy_helper.from_array(np.full_like(numpy_helper.to_array(tensor), np.nan), initializer))
    onnx.save(model, str(folder / entry["artifact"]["path"]))
    return folder


@pytest.mark.parametrize(
    ("initializer", "output"),
    [
        ("sem_seg_head.predictor.bias", "sem_logits"),
        ("roi_heads.mask_predictor.mask_fcn_logits.bias", "masks"),
        # NaN proposals: ONNX Runtime's RoiAlign refused them and the run stopped; they pool
        # zeros now (plugins/roi_align/reference.py), and the boxes decoded from them are NaN
        ("rpn.head.bbox_pred.bias", "boxes"),
    ],
)
def test_a_panoptic_engine_giving_nan_is_said_once_and_the_run_goes_on(
    demo_engines: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], initializer: str, output: str
) -> None:
    """The real tiny panoptic engine with its semantic head's, its mask head's or its RPN's box
    bias NaN: the first frame says which output holds NaN and how much of it, once for the
    run; the frames still come out, their things found where their masks and boxes are whole."""
    from edge.perception import Perception

    folder = corrupted(demo_engines, tmp_path / "engines", initializer)
    images = source_images(f"synthetic://?size={TEST_SIZE[0]}x{TEST_SIZE[1]}&frames=3&seed=2&lane=right")
    with Perception.open(demo_engines) as good:
        found = [len(good(image).objects) for image in images]
    capsys.readouterr()
    with Perception.open(folder) as perception:
        seen = [perception(image) for image in images]
    said = [line for line in capsys.readouterr().err.splitlines() if "NaN or inf" in line]
    assert len(said) == 1 and said[0].startswith(
        f"warning: the panoptic engine (panoptic_fpn_tiny onnxruntime fp32 {TEST_SIZE[0]}x{TEST_SIZE[1]}) "
        f"gave NaN or inf in its {output} ("
    )
    assert "% of their values) at frame 0: an FP16 or INT8 build that overflows" in said[0]
    cost = {
        "sem_logits": "pixels whose class logits are NaN are given a class that means nothing",
        "masks": "a detection's mask's NaN pixels are not pasted (all NaN: no thing)",
        "boxes": "detections with a NaN or inf box are left out",
    }
    assert said[0].endswith(f"an fp32 build of the same weights compares); {cost[output]}")
    assert min(found) > 0
    if output in ("masks", "boxes"):  # every detection's mask or box is NaN: no thing is found
        assert [len(s.objects) for s in seen] == [0, 0, 0]
    else:  # the instance branch is whole
        assert [len(s.objects) for s in seen] == found
