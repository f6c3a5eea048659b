"""What a calibration says of the INT8 model it wrote, scored on its held-out frames: each
judged output's score, depth's also as the mean difference it is, and which are poor (depth
over 5% off, the logits' noise over a tenth of their amplitude)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from calib.api import _held_out_scores, held_out_line, percent_off, poor_scores
from calib.data import CalibrationSet


def test_the_line_says_depth_in_percent_and_which_output_is_poor() -> None:
    record = {"held_out_indices": [3, 9, 17, 30], "held_out_scores_db": {"sem_logits": 25.0, "depth": 25.0}}
    assert held_out_line(record) == (
        "INT8 against float on 4 held-out frames: depth 25.0 dB (5.6% off), sem_logits 25.0 dB; "
        "poor: depth under 26 dB (5% off)"
    )
    record["held_out_scores_db"] = {"sem_logits": 19.5, "depth": 30.75}
    assert held_out_line(record) == (
        "INT8 against float on 4 held-out frames: depth 30.8 dB (2.9% off), sem_logits 19.5 dB; "
        "poor: sem_logits under 20 dB"
    )
    record["held_out_scores_db"] = {"sem_logits": 20.0, "depth": 26.0}  # at the bounds: not poor
    assert held_out_line(record) == (
        "INT8 against float on 4 held-out frames: depth 26.0 dB (5.0% off), sem_logits 20.0 dB"
    )
    assert held_out_line({"held_out_indices": []}) is None  # a record made before the score was kept


def test_percent_off_golden_values() -> None:
    assert percent_off(40.0) == pytest.approx(1.0)
    assert percent_off(20.0) == pytest.approx(10.0)
    assert percent_off(26.0) == pytest.approx(5.0119, abs=1e-4)
    # a model with none of edge's dense heads is judged by SNR on every output: 20 dB
    assert poor_scores({"depth": 25.9, "sem_logits": 25.9, "out": 19.9, "boxes": 20.0}) == {
        "depth": 25.9,
        "out": 19.9,
    }


def _heads(path: Path, gain: float) -> Path:
    """image -> depth = (|image| + 1) * gain, sem_logits = image * gain: a model whose outputs
    are exactly ``gain`` times the float one's (gain 1)."""
    nodes = [
        helper.make_node("Abs", ["image"], ["a"]),
        helper.make_node("Add", ["a", "one"], ["positive"]),
        helper.make_node("Mul", ["positive", "gain"], ["depth"]),
        helper.make_node("Mul", ["image", "gain"], ["sem_logits"]),
    ]
    shape = [1, 3, 8, 16]
    graph = helper.make_graph(
        nodes,
        "heads",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, shape) for n in ("depth", "sem_logits")],
        initializer=[
            helper.make_tensor("one", TensorProto.FLOAT, [], [1.0]),
            helper.make_tensor("gain", TensorProto.FLOAT, [], [gain]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_depth_six_percent_off_is_warned_of_where_logits_as_noisy_are_not(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Both outputs 6% from the float model's, run in ONNX Runtime: depth is 6% off (24.4 dB,
    under 26) and warned of; the logits' noise is 6% of their amplitude (24.4 dB SNR, over 20)
    and are not."""
    rng = np.random.default_rng(0)
    held_out = CalibrationSet(
        "test", [rng.normal(0, 50, (1, 3, 8, 16)).astype(np.float32) for _ in range(4)], [0, 1, 2, 3]
    )
    float_model, worse = _heads(tmp_path / "m.onnx", 1.0), _heads(tmp_path / "m.int8.onnx", 1.06)
    scores = _held_out_scores(float_model, worse, held_out, (8, 16))
    six = -20 * math.log10(0.06)  # 24.44 dB either way
    assert scores == {"depth": pytest.approx(six, abs=0.01), "sem_logits": pytest.approx(six, abs=0.01)}
    err = capsys.readouterr().err
    assert err.startswith(
        "warning: m.int8.onnx scores depth 24.4 dB (6.0% off) against the float model on 4 "
    )
    assert "(poor: depth under 26 dB (5% off))" in err and "sem_logits" not in err
    assert "calibration frames from more drives and scenes" in err and "--int8-min-snr" in err
    # 4% off: neither
    scores = _held_out_scores(float_model, _heads(tmp_path / "m4.int8.onnx", 1.04), held_out, (8, 16))
    assert min(scores.values()) > 26 and capsys.readouterr().err == ""
