"""Bias correction: the Q/DQ model's mean outputs brought back to the float model's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from calib.bias import channel_means, conv_levels, correct_biases, correction_frames, shifted
from calib.quantize import compute_ranges, quantize_qdq
from tests.conftest import IR_VERSION

SHAPE = (1, 3, 16, 24)
PADS = [1, 1, 1, 1]
# the ELU's output range: its step is 1/7.5, so the floor of -1 rounds to -8 steps
# (half to even), 1/15 too low, and every pixel the ELU flattens shifts the next
# convolution's output the same way
ELU_RANGE = (-1.0, 127 / 7.5)


def _model(
    path: Path, nodes: list[onnx.NodeProto], weights: dict[str, np.ndarray], out_shape: list[int]
) -> Path:
    graph = helper.make_graph(
        nodes,
        "bias",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, list(SHAPE))],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, out_shape)],
        [numpy_helper.from_array(w, n) for n, w in weights.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=IR_VERSION)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


B1 = np.array([-6.0, -5.0, -4.0, -3.0], np.float32)


def _elu_floor_model(path: Path, *, w1: np.ndarray | None = None) -> Path:
    """image -> conv1 (biases -6 to -3, tiny weights: outputs far below zero) -> Elu ->
    conv2 (4 -> 2, positive weights) -> out: the ELU's outputs pile up near its floor."""
    rng = np.random.default_rng(0)
    weights = {
        "w1": rng.normal(0, 0.0002, (4, 3, 3, 3)).astype(np.float32) if w1 is None else w1,
        "b1": B1,
        "w2": rng.uniform(0.05, 0.15, (2, 4, 3, 3)).astype(np.float32),
        "b2": np.array([0.5, -0.5], np.float32),
    }
    nodes = [
        helper.make_node("Conv", ["image", "w1", "b1"], ["c1"], name="conv1", pads=PADS),
        helper.make_node("Elu", ["c1"], ["e1"], name="elu"),
        helper.make_node("Conv", ["e1", "w2", "b2"], ["out"], name="conv2", pads=PADS),
    ]
    return _model(path, nodes, weights, [1, 2, *SHAPE[2:]])


def _frames(n: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.uniform(0, 255, SHAPE).astype(np.float32) for _ in range(n)]


def _ranges(src: Path, frames: list[np.ndarray]) -> dict[str, tuple[float, float]]:
    ranges = compute_ranges(src, frames, method="minmax")
    ranges["e1"] = ELU_RANGE
    return ranges


def _conv_mean(
    model: str | Path | onnx.ModelProto, frames: list[np.ndarray], node: str = "conv2"
) -> np.ndarray:
    """The mean of ``node``'s output per channel, before any Q/DQ pair after it: what the
    correction brings back (the rounding of that output to its own grid is the next
    convolution's to correct)."""
    if not isinstance(model, onnx.ModelProto):
        model = onnx.load(str(model))
    (name,) = (n.output[0] for n in model.graph.node if n.name == node)
    return channel_means(model, [name], frames)[name][0]


def _int32_bias(model: onnx.ModelProto, name: str) -> np.ndarray:
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    return inits[f"{name}_quantized"]


def test_a_grid_that_misses_the_elu_floor_shifts_the_mean_and_the_correction_takes_it_off(
    tmp_path: Path,
) -> None:
    src = _elu_floor_model(tmp_path / "m.onnx")
    frames = _frames(4, 1)
    q = tmp_path / "m.int8.onnx"
    quantize_qdq(src, q, _ranges(src, frames), input_shape=SHAPE)
    qdq = onnx.load(str(q))
    before = _conv_mean(q, frames) - _conv_mean(src, frames)
    # each channel's ELU output is about elu(bias), and its rounding error on the grid is
    # the same at every pixel; conv2 sums it over its taps, fewer at the borders (zeros)
    step = ELU_RANGE[1] / 127
    elu = np.expm1(B1.astype(np.float64))
    error = np.round(elu / step) * step - elu  # about +0.06 a pixel: -0.9975 rounds to -0.933
    w2 = numpy_helper.to_array(next(i for i in onnx.load(str(src)).graph.initializer if i.name == "w2"))
    h, w = SHAPE[2:]
    inside = np.outer([(h - 1) / h, 1, (h - 1) / h], [(w - 1) / w, 1, (w - 1) / w])
    # with conv2's weights on their per-channel INT8 grid, their own error at those values
    w2 = w2.astype(np.float64)
    w2_step = np.abs(w2).max(axis=(1, 2, 3), keepdims=True) / 127
    w2q = np.round(w2 / w2_step) * w2_step
    taps = "ocij,ij,c->o"
    expected = np.einsum(taps, w2q, inside, elu + error) - np.einsum(taps, w2, inside, elu)
    np.testing.assert_allclose(before, expected, rtol=0.01)
    assert np.abs(before).min() > 0.05

    done = correct_biases(qdq, src, frames)
    after = _conv_mean(done.model, frames) - _conv_mean(src, frames)
    inits = {i.name: numpy_helper.to_array(i) for i in qdq.graph.initializer}
    bias_step = inits["b2_quantized_scale"]
    assert np.abs(after).max() < 0.01 * np.abs(before).min() + bias_step.max()
    # what was taken off: whole INT32 steps, and the record says which convolution moved most
    taken = (_int32_bias(qdq, "b2").astype(np.int64) - _int32_bias(done.model, "b2")).astype(np.float64)
    np.testing.assert_allclose(done.shifts["conv2"], taken * bias_step)
    assert done.record["largest_shift"]["node"] == "conv2" and done.record["levels"] == 2
    assert done.record["convolutions"] == 2 and done.record["frames"] == 4
    # the float model shifted the same way quantizes, with the same ranges, to the corrected one
    moved = tmp_path / "moved.onnx"
    onnx.save(shifted(onnx.load(str(src)), done.shifts), str(moved))
    again = tmp_path / "again.int8.onnx"
    quantize_qdq(moved, again, _ranges(src, frames), input_shape=SHAPE)
    np.testing.assert_array_equal(_int32_bias(onnx.load(str(again)), "b2"), _int32_bias(done.model, "b2"))
    # and the input model is left as it was
    np.testing.assert_array_equal(_int32_bias(qdq, "b2"), _int32_bias(onnx.load(str(q)), "b2"))


def test_a_correction_holds_on_frames_it_did_not_see(tmp_path: Path) -> None:
    src = _elu_floor_model(tmp_path / "m.onnx")
    q = tmp_path / "m.int8.onnx"
    quantize_qdq(src, q, _ranges(src, _frames(4, 1)), input_shape=SHAPE)
    done = correct_biases(onnx.load(str(q)), src, _frames(4, 1))
    unseen = _frames(4, 9)
    before = np.abs(_conv_mean(q, unseen) - _conv_mean(src, unseen))
    after = np.abs(_conv_mean(done.model, unseen) - _conv_mean(src, unseen))
    assert (after < before / 10).all(), (before, after)


def test_a_convolution_kept_in_float_has_its_float_bias_shifted(tmp_path: Path) -> None:
    """conv2 excluded from INT8 reads the ELU's output through its Q/DQ pair (conv1's
    output is quantized for conv1): its float bias takes the shift."""
    src = _elu_floor_model(tmp_path / "m.onnx")
    frames = _frames(4, 1)
    q = tmp_path / "m.int8.onnx"
    quantize_qdq(src, q, _ranges(src, frames), input_shape=SHAPE, exclude_nodes=["conv2"])
    qdq = onnx.load(str(q))
    assert "b2" in {i.name for i in qdq.graph.initializer}
    done = correct_biases(qdq, src, frames)
    b2 = {i.name: numpy_helper.to_array(i) for i in done.model.graph.initializer}["b2"]
    np.testing.assert_allclose(b2, np.array([0.5, -0.5], np.float32) - done.shifts["conv2"], rtol=1e-6)
    assert np.abs(_conv_mean(done.model, frames) - _conv_mean(src, frames)).max() < 1e-4


def test_levels_put_each_convolution_after_every_one_upstream(tmp_path: Path) -> None:
    """a and b side by side (level 1), c after both through an Add (2), d without a
    bias is no level of its own, e after d (3)."""
    rng = np.random.default_rng(0)
    w = {n: rng.normal(0, 0.1, (3, 3, 3, 3)).astype(np.float32) for n in "abcde"}
    b = {f"b{n}": np.zeros(3, np.float32) for n in "abce"}
    nodes = [
        helper.make_node("Conv", ["image", "a", "ba"], ["ya"], name="a", pads=PADS),
        helper.make_node("Conv", ["image", "b", "bb"], ["yb"], name="b", pads=PADS),
        helper.make_node("Add", ["ya", "yb"], ["s"], name="add"),
        helper.make_node("Conv", ["s", "c", "bc"], ["yc"], name="c", pads=PADS),
        helper.make_node("Conv", ["yc", "d"], ["yd"], name="d", pads=PADS),
        helper.make_node("Conv", ["yd", "e", "be"], ["out"], name="e", pads=PADS),
    ]
    src = _model(tmp_path / "m.onnx", nodes, {**w, **b}, [1, 3, *SHAPE[2:]])
    levels = conv_levels(onnx.load(str(src)))
    assert [[n.name for n in level] for level in levels] == [["a", "b"], ["c"], ["e"]]


def test_a_convolution_run_per_region_is_left_as_it_was(tmp_path: Path) -> None:
    """A convolution whose output's first dimension is not the frames' (here the image cut
    into two by a Reshape, as a mask head runs per region) has no mean to compare."""
    rng = np.random.default_rng(0)
    weights = {
        "w1": rng.normal(0, 0.0002, (4, 3, 3, 3)).astype(np.float32),
        "b1": B1,
        "w2": rng.uniform(0.05, 0.15, (2, 4, 3, 3)).astype(np.float32),
        "b2": np.array([0.5, -0.5], np.float32),
        "halves": np.array([2, 4, SHAPE[2] // 2, SHAPE[3]], np.int64),
    }
    nodes = [
        helper.make_node("Conv", ["image", "w1", "b1"], ["c1"], name="conv1", pads=PADS),
        helper.make_node("Elu", ["c1"], ["e1"], name="elu"),
        helper.make_node("Reshape", ["e1", "halves"], ["r1"], name="cut"),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["out"], name="conv2", pads=PADS),
    ]
    src = _model(tmp_path / "m.onnx", nodes, weights, [2, 2, SHAPE[2] // 2, SHAPE[3]])
    frames = _frames(3, 1)
    ranges = compute_ranges(src, frames, method="minmax")
    q = tmp_path / "m.int8.onnx"
    quantize_qdq(src, q, ranges, input_shape=SHAPE)
    qdq = onnx.load(str(q))
    done = correct_biases(qdq, src, frames)
    assert done.record["left_per_region"] == ["conv2"] and "conv2" not in done.shifts
    np.testing.assert_array_equal(_int32_bias(done.model, "b2"), _int32_bias(qdq, "b2"))


def test_channel_means_and_the_frames_taken() -> None:
    """The means are per channel over frames and positions, by a run of the model; at
    most 16 frames are taken, spread over all of them, the first and last among them."""
    w = np.ones((2, 3, 1, 1), np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["image", "w"], ["y"], name="c")],
        "m",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, list(SHAPE))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, *SHAPE[2:]])],
        [numpy_helper.from_array(w, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=IR_VERSION)
    frames = [np.full(SHAPE, float(i), np.float32) for i in range(3)]
    mean, batch = channel_means(model, ["y"], frames)["y"]
    np.testing.assert_allclose(mean, [3.0, 3.0])  # (0 + 3 + 6) / 3 per channel
    assert batch == 1 and channel_means(model, [], frames) == {}
    many = [np.full((1,), i) for i in range(64)]
    taken = [int(t[0]) for t in correction_frames(many)]
    assert len(taken) == 16 and taken[0] == 0 and taken[-1] == 63 and taken == sorted(set(taken))
    assert correction_frames(many[:5]) == many[:5]


@pytest.mark.parametrize("corrected", [True, False])
def test_calibrate_writes_the_float_model_the_q_dq_model_is_quantized_from(
    tmp_path: Path, corrected: bool
) -> None:
    """With the correction, the float model the ranges and the TensorRT 10 cache describe
    carries the shifts: quantized with the ranges written, it is the Q/DQ model written."""
    import json

    from calib import calibrate
    from calib.api import bias_line

    src = _elu_floor_model(tmp_path / "m.onnx")
    result = calibrate(
        src,
        source="synthetic://?size=16x24",
        out_dir=tmp_path / "out",
        frames=6,
        method="minmax",
        bias_correction=corrected,
    )
    record = result.record
    if not corrected:
        assert record["bias_correction"] is None and result.float_model == src
        assert not (tmp_path / "out" / "m.calib.onnx").exists()
        return
    done = record["bias_correction"]
    assert done["convolutions"] == 2 and done["frames"] == 6 and done["kept"]
    assert done["held_out_worst_db"]["with"] >= done["held_out_worst_db"]["without"]
    assert bias_line(record) == (
        f"biases corrected: 2 convolutions, measured on 6 frames, largest shift "
        f"{done['largest_shift']['shift']:g} ({done['largest_shift']['node']}); worst output on the "
        f"held-out frames {done['held_out_worst_db']['without']:g} dB without, "
        f"{done['held_out_worst_db']['with']:g} with"
    )
    assert result.float_model == tmp_path / "out" / "m.calib.onnx" and record["float_model"] == "m.calib.onnx"
    ranges = {k: tuple(v) for k, v in json.loads(result.ranges_json.read_text())["ranges"].items()}
    again = tmp_path / "again.int8.onnx"
    quantize_qdq(result.float_model, again, ranges, input_shape=SHAPE)
    written = onnx.load(str(result.qdq_model))
    np.testing.assert_array_equal(_int32_bias(onnx.load(str(again)), "b2"), _int32_bias(written, "b2"))
    np.testing.assert_array_equal(_int32_bias(onnx.load(str(again)), "b1"), _int32_bias(written, "b1"))


def test_shifts_that_score_worse_on_the_held_out_frames_are_not_kept(tmp_path: Path) -> None:
    """The shifts are means over the calibration frames: frames of another kind (here the
    held-out ones bright, where the calibration's are mostly dark and its convolutions'
    errors are the ELU floor's) can be served worse by them, and the 4 held-out frames
    judge. Left unshifted, the record says so with both scores, and the float model the
    ranges describe is the model given."""
    import cv2

    from calib import calibrate
    from calib.api import bias_line
    from calib.data import load_frames

    # bright frames lift conv1 above zero
    src = _elu_floor_model(tmp_path / "m.onnx", w1=np.full((4, 3, 3, 3), 0.002, np.float32))
    rng = np.random.default_rng(0)

    def drive(folder: Path, bright: set[int]) -> str:
        folder.mkdir()
        for i in range(16):
            level = 250 if i in bright else int(rng.integers(0, 20))
            cv2.imwrite(str(folder / f"{i:02d}.png"), np.full((*SHAPE[2:], 3), level, np.uint8))
        return str(folder)

    # which frames are calibrated on depends on the source's length and the seed alone
    calibrated = load_frames(drive(tmp_path / "probe", set()), frames=12, size=SHAPE[2:]).indices
    held = set(range(16)) - set(calibrated)
    source = drive(tmp_path / "drive", held | {calibrated[0], calibrated[5]})  # two bright: in range
    result = calibrate(src, source=source, out_dir=tmp_path / "out", frames=12, method="minmax")
    done = result.record["bias_correction"]
    assert set(result.record["held_out_indices"]) == held
    assert not done["kept"] and done["held_out_worst_db"]["with"] < done["held_out_worst_db"]["without"]
    assert done["convolutions"] == 2  # measured, then left
    assert result.float_model == src and not (tmp_path / "out" / "m.calib.onnx").exists()
    assert result.record["held_out_scores_db"]["out"] == done["held_out_worst_db"]["without"]
    worst = done["held_out_worst_db"]
    assert bias_line(result.record) == (
        f"biases left as they were (worst output on the held-out frames {worst['without']:g} dB without, "
        f"{worst['with']:g} with)"
    )
