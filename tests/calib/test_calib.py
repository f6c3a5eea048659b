"""INT8 calibration: deterministic frames, the TensorRT cache format, a Q/DQ model that runs
on ONNX Runtime's CPU kernels with the computed scales, and the CLI."""

from __future__ import annotations

import dataclasses
import json
import platform
import struct
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper

from calib import calibrate
from calib.data import load_frames
from calib.quantize import activations_to_uint8
from calib.trt_cache import read_cache, scale_from_range, write_cache
from edge.cli import main
from edge.errors import ConfigError, EdgeError
from edge.stream.engines import EngineSet
from tests.conftest import TEST_SIZE, skip_where_onnxruntime_cannot_quantize

# a TensorRT 10 cache as TensorRT writes it: 0x3c010204 is float32 0.007874 (= 1/127)
GOLDEN_CACHE = "TRT-100700-EntropyCalibration2\nimage: 3c010204\n/backbone/conv1/Conv_output_0: 3d4ccccd\n"


def test_reads_a_tensorrt_cache() -> None:
    version, algorithm, scales = read_cache(GOLDEN_CACHE)
    assert (version, algorithm) == (100700, "EntropyCalibration2")
    assert scales["image"] == pytest.approx(1 / 127, rel=1e-6)
    assert scales["/backbone/conv1/Conv_output_0"] == pytest.approx(0.05, rel=1e-6)


def test_cache_round_trip_and_scales() -> None:
    scales = {"a": scale_from_range(-2.0, 1.0), "b:x": 1.0}
    with pytest.raises(ConfigError, match="cannot be written"):
        write_cache(scales)
    text = write_cache({"a": scale_from_range(-2.0, 1.0), "c": 0.5})
    assert text.splitlines()[0] == "TRT-100700-EntropyCalibration2"
    assert text.splitlines()[2] == f"c: {struct.pack('>f', 0.5).hex()}" == "c: 3f000000"
    _, _, back = read_cache(text)
    assert back == pytest.approx({"a": 2 / 127, "c": 0.5})


@pytest.mark.parametrize(
    "text,match",
    [
        ("", "empty"),
        ("TRT-abc-Entropy\n", "header"),
        ("TRT-100700-EntropyCalibration2\nimage 3c010204\n", "line 2"),
        ("TRT-100700-EntropyCalibration2\nimage: zz\n", "line 2"),
    ],
)
def test_bad_caches_fail_clearly(text: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        read_cache(text)


def test_frame_sample_is_deterministic() -> None:
    a = load_frames("synthetic://?size=64x128", frames=4, size=(64, 128), seed=1, scan=12)
    b = load_frames("synthetic://?size=64x128", frames=4, size=(64, 128), seed=1, scan=12)
    assert a.indices == b.indices and a.digest == b.digest and len(a.tensors) == 4
    assert a.tensors[0].shape == (1, 3, 64, 128) and a.tensors[0].dtype == np.float32
    assert (
        load_frames("synthetic://?size=64x128", frames=4, size=(64, 128), seed=2, scan=12).indices
        != a.indices
    )
    with pytest.raises(EdgeError):
        load_frames("synthetic://?frames=0x", frames=2, size=(64, 128))


def test_calibration_frames_go_in_as_the_run_fits_them() -> None:
    """fit='pad' puts a 4:3 frame into 2:1 input as `edge run --fit pad` does: scaled
    whole, centred on the models' mean colour; the frames' own size is noted."""
    from edge.data.synthetic import SyntheticScene
    from edge.stream.fit import PAD_RGB
    from edge.stream.steps import preprocess

    uri = "synthetic://?size=96x128&seed=4"
    padded = load_frames(uri, frames=2, size=(64, 128), seed=0, fit="pad")
    stretched = load_frames(uri, frames=2, size=(64, 128), seed=0)
    assert padded.indices == stretched.indices and padded.digest != stretched.digest
    assert (padded.fit, padded.frame_hw, stretched.fit) == ("pad", (96, 128), "stretch")
    image = SyntheticScene(height=96, width=128, seed=4).render(padded.indices[0])
    tensor = padded.tensors[0]
    np.testing.assert_array_equal(tensor, preprocess(image, (64, 128), "pad")[1])
    # 96x128 scaled to 64 rows is 85 wide, centred: 21 columns of padding on the left
    assert (tensor[0, :, :, :21] == np.reshape(PAD_RGB, (3, 1, 1))).all()
    assert not (tensor[0, :, :, 21:106] == np.reshape(PAD_RGB, (3, 1, 1))).all()
    np.testing.assert_array_equal(stretched.tensors[0], preprocess(image, (64, 128))[1])
    # cropped: 96x128 scaled to 128 wide is 96 rows, of which the middle 64 (16..80) go in
    cropped = load_frames(uri, frames=2, size=(64, 128), seed=0, fit="crop")
    assert cropped.part_hw((64, 128)) == (96, 128)
    np.testing.assert_array_equal(cropped.tensors[0], preprocess(image, (64, 128), "crop")[1])
    np.testing.assert_array_equal(cropped.tensors[0][0], image[16:80].transpose(2, 0, 1))
    with pytest.raises(EdgeError, match="fit 'zoom': expected one of stretch, pad, crop"):
        load_frames(uri, frames=1, size=(64, 128), fit="zoom")


def test_held_out_frames_are_not_the_calibration_frames() -> None:
    cal = load_frames("synthetic://?size=64x128", frames=4, size=(64, 128), seed=1, scan=12)
    held = load_frames("synthetic://?size=64x128", frames=3, size=(64, 128), seed=5, exclude=set(cal.indices))
    assert len(held.indices) == 3 and not set(held.indices) & set(cal.indices)
    with pytest.raises(EdgeError, match="no frames besides the 3 left out"):
        load_frames("synthetic://?size=64x128&frames=3", frames=2, size=(64, 128), exclude={0, 1, 2})


def test_an_endless_generator_renders_only_the_frames_its_sample_keeps(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The synthetic generator skips what a reservoir sample would drop, and the sample is
    the one reading every frame gives (the same source made finite reads every frame)."""
    from calib.data import reservoir_indices
    from edge.data.synthetic import SyntheticScene

    rendered: list[int] = []
    render = SyntheticScene.render

    def counted(self: SyntheticScene, index: int, fps: float = 17.0) -> np.ndarray:
        rendered.append(index)
        return render(self, index, fps)

    monkeypatch.setattr(SyntheticScene, "render", counted)
    skipped = load_frames("synthetic://?size=64x128", frames=4, size=(64, 128), seed=3, exclude={2, 9})
    assert sorted(rendered) == skipped.indices == reservoir_indices(4 * 4 + 2, 4, {2, 9}, seed=3)
    assert skipped.sampling == {"first": 18}
    rendered.clear()
    read = load_frames(
        "synthetic://?size=64x128&frames=500", frames=4, size=(64, 128), seed=3, exclude={2, 9}
    )
    assert len(rendered) == 18  # not endless: every frame of the scan is read
    assert read.indices == skipped.indices and read.digest == skipped.digest
    assert reservoir_indices(3, 5, {1}, seed=0) == [0, 2]  # fewer than asked: all there are


def test_spread_indices_take_one_frame_from_each_stretch() -> None:
    from calib.data import spread_indices

    got = spread_indices(100, 4, (), seed=0)
    assert got == spread_indices(100, 4, (), seed=0) and got != spread_indices(100, 4, (), seed=1)
    assert [i // 25 for i in got] == [0, 1, 2, 3]  # one in each quarter
    held = spread_indices(100, 4, set(got), seed=5)
    assert len(held) == 4 and not set(held) & set(got)
    assert spread_indices(5, 8, {1}, seed=0) == [0, 2, 3, 4]  # fewer than asked: all there are


def test_a_long_source_is_sampled_across_all_of_it_without_decoding_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An image folder of 40 where only the frames the sample wants are images at all: the
    others are passed over, never opened (they would be reported as undecodable)."""
    import cv2

    from calib.data import spread_indices

    wanted = spread_indices(40, 4, (), seed=0)
    assert max(wanted) >= 30  # beyond the first 4 x 4 frames a reservoir would have read
    for i in range(40):
        path = tmp_path / f"f{i}.png"
        if i in wanted:
            cv2.imwrite(str(path), np.full((16, 32, 3), i, np.uint8))
        else:
            path.write_bytes(b"not read")
    data = load_frames(str(tmp_path), frames=4, size=(16, 32), seed=0)
    assert data.indices == wanted and data.sampling == {"spread_over": 40}
    assert [int(t[0, 0, 0, 0]) for t in data.tensors] == wanted
    assert "undecodable" not in capsys.readouterr().err


def test_a_long_video_is_sampled_across_all_of_it(tmp_path: Path) -> None:
    import cv2

    video = tmp_path / "drive.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter.fourcc(*"MJPG"), 10, (32, 16))
    for i in range(30):
        writer.write(np.full((16, 32, 3), i * 8, np.uint8))
    writer.release()
    data = load_frames(str(video), frames=3, size=(16, 32), seed=2)
    assert data.sampling == {"spread_over": 30} and [i // 10 for i in data.indices] == [0, 1, 2]
    # each tensor is the frame its index names (grey level i * 8, through MJPEG)
    assert [round(float(t.mean()) / 8) for t in data.tensors] == data.indices
    short = load_frames(str(video), frames=8, size=(16, 32), seed=2)  # 30 < 4 x 8: reservoir
    assert short.sampling == {"first": 32} and len(short.indices) == 8


def test_a_folder_of_drives_is_sampled_across_every_drive(tmp_path: Path) -> None:
    """A folder of videos (a playlist) calibrates on every drive in it, not on the first
    one's first frames: one frame from each of four drives, each the frame its index names."""
    import cv2

    drives = tmp_path / "drives"
    drives.mkdir()
    for d in range(4):
        writer = cv2.VideoWriter(
            str(drives / f"drive_{d}.avi"), cv2.VideoWriter.fourcc(*"MJPG"), 10, (32, 16)
        )
        for i in range(10):
            writer.write(np.full((16, 32, 3), (d * 10 + i) * 6, np.uint8))
        writer.release()
    data = load_frames(str(drives), frames=4, size=(16, 32), seed=2)
    assert data.sampling == {"spread_over": 40} and [i // 10 for i in data.indices] == [0, 1, 2, 3]
    assert [round(float(t.mean()) / 6) for t in data.tensors] == data.indices
    # and the held-out frames a calibration scores it on are spread over them too
    held = load_frames(str(drives), frames=4, size=(16, 32), seed=3, exclude=set(data.indices))
    assert held.sampling == {"spread_over": 40} and not set(held.indices) & set(data.indices)
    assert [i // 10 for i in held.indices] == [0, 1, 2, 3]


def test_a_short_source_calibrates_on_what_it_has_and_says_so(
    tiny_engines: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tiny_engines / f"depth_tiny_{TEST_SIZE[0]}x{TEST_SIZE[1]}_b1_onnxruntime_fp32.onnx"
    result = calibrate(src, source="synthetic://?size=128x256&frames=3", out_dir=tmp_path, frames=8)
    err = capsys.readouterr().err
    assert "ended after 3 frames; 8 were asked for (--calib-frames)" in err
    assert "has no frames besides the 3 calibrated on" in err  # judged on those, and said
    assert result.record["frames"] == 3 and result.record["held_out_indices"] == [0, 1, 2]
    assert result.record["fit"] == "stretch" and result.record["frame_hw"] == [128, 256]
    assert result.qdq_model.is_file()


@pytest.fixture(scope="module")
def calibrated(tiny_engines: Path, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("int8")
    src = tiny_engines / f"depth_tiny_{TEST_SIZE[0]}x{TEST_SIZE[1]}_b1_onnxruntime_fp32.onnx"
    return src, calibrate(src, source="synthetic://?size=128x256", out_dir=out, frames=6, method="minmax")


def test_qdq_model_runs_and_uses_the_computed_scales(calibrated) -> None:
    src, result = calibrated
    qdq = onnx.load(str(result.qdq_model))
    ops = {n.op_type for n in qdq.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    # every activation's scale in the model equals our range / 127 (symmetric), as in the cache
    ranges = json.loads(result.ranges_json.read_text())["ranges"]
    _, _, cache = read_cache(result.trt_cache.read_text())
    inits = {i.name: numpy_helper.to_array(i) for i in qdq.graph.initializer}
    checked = 0
    for node in qdq.graph.node:
        if node.op_type == "QuantizeLinear" and node.input[0] in cache:
            name = node.input[0]
            assert cache[name] == pytest.approx(scale_from_range(*ranges[name]), rel=1e-6)
            assert float(inits[node.input[1]]) == pytest.approx(cache[name], rel=1e-5), name
            assert int(inits[node.input[2]]) == 0  # symmetric: zero point 0
            checked += 1
    assert checked >= 5
    # per-channel weights: a vector of scales on a Conv weight
    w_scales = [v for k, v in inits.items() if "weight" in k.lower() and k.endswith("scale") and v.ndim == 1]
    assert w_scales and max(v.size for v in w_scales) > 1
    # runs on ONNX Runtime's CPU kernels and stays close to FP32 on a frame it was not calibrated on
    x = load_frames("synthetic://?size=128x256&seed=7", frames=1, size=TEST_SIZE).tensors[0]
    ref = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"]).run(None, {"image": x})[0]
    got = ort.InferenceSession(str(result.qdq_model), providers=["CPUExecutionProvider"]).run(
        None, {"image": x}
    )[0]
    snr = 10 * np.log10((ref**2).mean() / ((ref - got) ** 2).mean())
    assert snr > 15, snr
    assert result.record["frames"] == 6 and len(result.record["data_sha256"]) == 64
    # the equalization choice was judged on frames it was not calibrated on
    held = result.record["held_out_indices"]
    assert len(held) == 4 and not set(held) & set(result.record["frame_indices"])


def _session(model: onnx.ModelProto, level: ort.GraphOptimizationLevel, saved: Path | None = None):
    so = ort.SessionOptions()
    so.graph_optimization_level = level
    so.log_severity_level = 3
    if saved is not None:
        so.optimized_model_filepath = str(saved)
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def test_uint8_activations_same_grid_integer_convolutions(calibrated, tmp_path: Path) -> None:
    _, result = calibrated
    s8 = onnx.load(str(result.qdq_model))
    u8 = activations_to_uint8(s8)
    onnx.checker.check_model(u8)
    inits = {i.name: numpy_helper.to_array(i) for i in u8.graph.initializer}
    qs = [n for n in u8.graph.node if n.op_type == "QuantizeLinear"]
    # every activation now UINT8 with zero point 128, scales untouched; weights stay INT8
    assert qs and all(inits[q.input[2]].dtype == np.uint8 and int(inits[q.input[2]]) == 128 for q in qs)
    s8_scales = {i.name: numpy_helper.to_array(i) for i in s8.graph.initializer}
    assert all(float(inits[q.input[1]]) == float(s8_scales[q.input[1]]) for q in qs)
    weight_dqs = [n for n in u8.graph.node if n.op_type == "DequantizeLinear" and n.input[0] in inits]
    assert weight_dqs and {inits[n.input[0]].dtype.name for n in weight_dqs} <= {"int8", "int32"}
    assert onnx.load(str(result.qdq_model)).SerializeToString() == s8.SerializeToString()  # input untouched
    # the same values: unoptimised (Q/DQ evaluated literally) the outputs are bit-identical
    x = load_frames("synthetic://?size=128x256&seed=9", frames=1, size=TEST_SIZE).tensors[0]
    off = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    outs = [_session(m, off).run(None, {"image": x}) for m in (s8, u8)]
    for a, b in zip(*outs, strict=True):
        np.testing.assert_array_equal(a, b)
    # optimised: every convolution becomes an integer kernel (with INT8 activations most stay
    # float between Q/DQ pairs on x86), and the outputs stay close
    on = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    convs = {}
    for name, model in (("s8", s8), ("u8", u8)):
        _session(model, on, tmp_path / f"{name}.onnx")
        ops = [n.op_type for n in onnx.load(str(tmp_path / f"{name}.onnx")).graph.node]
        convs[name] = (ops.count("Conv"), ops.count("QLinearConv"))
    assert convs["u8"][0] == 0 and convs["u8"][1] == sum(convs["s8"])
    if platform.machine().lower() in ("x86_64", "amd64"):
        assert convs["s8"][0] > 0  # the reason for the rewrite, on this architecture
    ref, got = (_session(m, on).run(None, {"image": x})[0] for m in (s8, u8))
    assert 10 * np.log10((ref**2).mean() / max(((ref - got) ** 2).mean(), 1e-30)) > 40


def test_cli_calibrate(tiny_engines: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import cv2

    src = tiny_engines / f"depth_tiny_{TEST_SIZE[0]}x{TEST_SIZE[1]}_b1_onnxruntime_fp32.onnx"
    drive = tmp_path.parent / f"{tmp_path.name}_frames"  # 16 frames: more than 4 x 3
    drive.mkdir()
    for i in range(16):
        cv2.imwrite(
            str(drive / f"{i}.png"), np.random.default_rng(i).integers(0, 255, (96, 128, 3), np.uint8)
        )
    rc = main(
        [
            "calibrate",
            str(src),
            "--calib-data",
            str(drive),
            "--calib-frames",
            "3",
            "--method",
            "percentile",
            "--out",
            str(tmp_path),
            "--no-equalize",
            "--fit",
            "pad",
            "--quiet",
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0 and "Q/DQ model" in out and "equalized" not in out
    assert "3 frames spread over the source's 16, percentile, data sha256 " in out
    # even unequalized, the model written is scored on frames it was not calibrated on
    record = json.loads((tmp_path / f"{src.name.removesuffix('.onnx')}.calib.json").read_text())[
        "calibration"
    ]
    scores = record["held_out_scores_db"]
    depth = scores["depth"]
    said = f"depth {depth:.1f} dB ({100 * 10 ** (-depth / 20):.1f}% off)"  # the mean relative difference
    assert list(scores) == ["depth"] and len(record["held_out_indices"]) == 4
    assert (record["fit"], record["frame_hw"]) == ("pad", [96, 128])  # 4:3 frames padded into 1:2
    assert f"INT8 against float on 4 held-out frames: {said}" in out
    # the biases corrected where the held-out frames score them no worse, which the CPU's integer
    # kernels decide (this calibration keeps them on an AVX-512 VNNI CPU, not on an AVX2 one);
    # where kept, the float model the ranges describe is written beside them
    stem, done = src.name.removesuffix(".onnx"), record["bias_correction"]
    worst = done["held_out_worst_db"]
    assert done["kept"] == (worst["with"] >= worst["without"])
    if done["kept"]:
        assert f"biases corrected: {done['convolutions']} convolutions" in out
        assert record["float_model"] == f"{stem}.calib.onnx"
        assert f"float model the ranges describe: {tmp_path / record['float_model']}" in out
    else:
        judged = f"{worst['without']:g} dB without, {worst['with']:g} with"
        assert f"biases left as they were (worst output on the held-out frames {judged})" in out
        assert record["float_model"] == src.name and "float model the ranges describe" not in out
    written = [".int8.onnx", ".calib.json", ".trt10.calib"] + [".calib.onnx"] * done["kept"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{stem}{s}" for s in written)
    assert main(["calibrate", str(tmp_path / "missing.onnx")]) == 2
    # a manifest given by mistake: one line naming the file, nothing written
    manifest = tiny_engines / "manifest.json"
    before = sorted(tmp_path.iterdir())
    assert main(["calibrate", str(manifest), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"model to calibrate {str(manifest)!r} is not a readable ONNX model" in err
    assert "Traceback" not in err and sorted(tmp_path.iterdir()) == before


def test_padded_frames_are_judged_where_a_run_keeps_them(tiny_engines: Path, tmp_path: Path) -> None:
    """4:3 frames padded into a 1:2 input: the held-out score (like the equalization and
    sensitivity trials) is of the outputs cropped to the frames' part, as a run crops them;
    the padding's outputs are no error a run shows."""
    from calib.sensitivity import output_scores, run_outputs

    src = tiny_engines / f"depth_tiny_{TEST_SIZE[0]}x{TEST_SIZE[1]}_b1_onnxruntime_fp32.onnx"
    source = "synthetic://?size=192x256"
    result = calibrate(src, source=source, out_dir=tmp_path, frames=6, method="minmax", fit="pad")
    record = result.record
    assert record["judged_on_hw"] == [128, 171]  # 192x256 scaled by 2/3, centred in 128x256
    held = load_frames(
        source, frames=4, size=TEST_SIZE, seed=1000, exclude=set(record["frame_indices"]), fit="pad"
    )
    assert held.indices == record["held_out_indices"]

    def scores(part: tuple[int, int] | None) -> dict[str, float]:
        ref = run_outputs(src, held.tensors, threads=1, part=part)
        got = run_outputs(result.qdq_model, held.tensors, part=part)
        assert ref[0]["depth"].shape[-2:] == (part or TEST_SIZE)
        return {k: round(v, 2) for k, v in output_scores(ref, got).items()}

    assert record["held_out_scores_db"] == scores((128, 171)) != scores(None)


def test_int8_build_records_calibration_in_the_manifest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from edge.build import BuildRequest, build_all

    req = BuildRequest(
        model="depth_tiny",
        height=64,
        width=128,
        precision="int8",
        calib_data="synthetic://?size=64x128",
        calib_frames=4,
        calib_method="minmax",
    )
    (result,) = build_all([req], tmp_path, show_progress=False)
    entry = result.entry
    assert entry["precision"] == "int8" and entry["artifact"]["path"].endswith("_int8.ort.onnx")
    cal = entry["calibration"]
    assert cal["method"] == "minmax" and cal["frames"] == 4 and len(cal["data_sha256"]) == 64
    # the build says how the INT8 model did on the frames its calibration held out
    from edge.cli_build import result_lines

    depth = cal["held_out_scores_db"]["depth"]
    off = 100 * 10 ** (-depth / 20)  # the mean relative difference
    said = f"  INT8 against float on 4 held-out frames: depth {depth:.1f} dB ({off:.1f}% off)"
    # random weights calibrated on 4 frames: poor or not, the line says which
    said += "; poor: depth under 26 dB (5% off)" if depth < 26 else ""
    assert said in result_lines(result, tmp_path)
    for name in cal["files"].values():
        assert (tmp_path / name).is_file()
    check = entry["accuracy_check"]
    assert check["reference"].startswith("torch eager fp32") and "snr_db" in check["per_sample"][0]["depth"]
    # the ONNX Runtime artifact runs every convolution as an integer kernel
    ops = [n.op_type for n in onnx.load(str(tmp_path / entry["artifact"]["path"])).graph.node]
    assert "Conv" not in ops and ops.count("QLinearConv") > 5
    # loaded where the weights go on 7 bits (a CPU without VNNI), a run says INT8 gains
    # nothing there; elsewhere it says nothing
    for seven_bits in (True, False):
        EngineSet.from_manifest(tmp_path, engine_options={"seven_bit_weights": seven_bits}).close()
        err = capsys.readouterr().err
        assert ("warning: INT8 engine(s) depth_tiny run on a CPU without VNNI" in err) is seven_bits, err
        assert ("--precision fp32" in err) is seven_bits
    # edge engines says what INT8 costs on this CPU
    from edge.inventory import inventory
    from edge.platform_info import int8_pairs_saturate

    (row,) = inventory(tmp_path)
    assert row["runs_here"].startswith("yes")
    assert ("little faster than fp32 on this CPU" in row["runs_here"]) is int8_pairs_saturate()
    # unchanged request: not rebuilt; a different calibration set is a different engine build
    (again,) = build_all([req], tmp_path, show_progress=False)
    assert not again.rebuilt
    (other,) = build_all([dataclasses.replace(req, calib_frames=3)], tmp_path, show_progress=False)
    assert other.rebuilt
    assert other.entry["onnx"]["reused_from"] == req.engine_id  # calibration does not change the export
    # 4:3 frames padded as edge run --fit pad feeds them: calibrated that way, and checked
    # on what a run keeps of them
    padded_req = dataclasses.replace(req, calib_fit="pad", calib_data="synthetic://?size=96x128")
    (padded,) = build_all([padded_req], tmp_path, show_progress=False)
    assert padded.rebuilt and padded.entry["calibration"]["fit"] == "pad"
    check = padded.entry["accuracy_check"]
    assert check["inputs"].endswith("(seed 1, pad)") and check["passed"]
    assert check["compared_on"] == "the frames' part of the input, 64x85 of 64x128"
    assert "compared_on" not in entry["accuracy_check"]  # 2:1 frames fill the input
    # the build says how to measure the INT8 engine against FP32 on one's own frames: the FP32
    # build first, which the folder lacks; then the command itself, which runs
    from edge.cli import main
    from edge.cli_build import compare_hint

    hint = compare_hint([result], tmp_path)
    assert hint is not None and hint.endswith(
        "(build the FP32 reference first: edge build --models depth_tiny --backend onnxruntime "
        f"--size 64x128 --out {tmp_path})"
    )
    build_all([dataclasses.replace(req, precision="fp32", calib_data=None)], tmp_path, show_progress=False)
    hint = compare_hint([result], tmp_path)
    assert hint is not None and "build the FP32" not in hint
    argv = hint.split(": ", 1)[1].split()[1:]  # edge compare FRAMES ...
    argv[argv.index("FRAMES")] = "synthetic://?size=64x128&frames=2"
    assert main([*argv, "--out", str(tmp_path / "compared"), "--quiet", "--worst", "0"]) == 0
    assert "depth_tiny onnxruntime int8 64x128" in capsys.readouterr().out
    assert (
        compare_hint(
            [dataclasses.replace(result, request=dataclasses.replace(req, precision="fp32"))], tmp_path
        )
        is None
    )


@pytest.mark.parametrize(
    "changes,match",
    [
        ({"calib_data": None}, "needs calibration frames"),
        ({"calib_method": "kl"}, "unknown"),
        ({"calib_frames": 0}, ">= 1"),
        ({"calib_fit": "zoom"}, r"--calib-fit 'zoom' is unknown; choose one of \('stretch', 'pad', 'crop'\)"),
        ({"backend": "torch"}, "not supported by the torch backend"),
    ],
)
def test_int8_requests_are_validated(changes: dict, match: str) -> None:
    from edge.build import BuildRequest

    req = BuildRequest(model="depth_tiny", height=64, width=128, precision="int8", calib_data="synthetic://")
    with pytest.raises(ConfigError, match=match):
        dataclasses.replace(req, **changes).validate()


def test_sensitivity_pass_keeps_layers_in_float_until_the_budget(tiny_engines: Path) -> None:
    from calib.quantize import compute_ranges
    from calib.sensitivity import find_float_layers

    src = tiny_engines / f"depth_tiny_{TEST_SIZE[0]}x{TEST_SIZE[1]}_b1_onnxruntime_fp32.onnx"
    cal = load_frames("synthetic://?size=128x256", frames=4, size=TEST_SIZE, seed=0)
    held = load_frames("synthetic://?size=128x256", frames=2, size=TEST_SIZE, seed=9)
    ranges = compute_ranges(src, cal.tensors, method="minmax")
    base = find_float_layers(src, ranges, held.tensors, min_snr_db=0.0)
    assert base["excluded"] == [] and base["budget_met"]  # nothing to do under a lax budget
    want = base["all_int8_snr_db"]["depth"] + 3.0  # demand 3 dB more than all-INT8 gives
    r = find_float_layers(src, ranges, held.tensors, min_snr_db=want, max_float=4)
    assert 1 <= len(r["excluded"]) <= 4
    # every kept layer improved the worst output, and the report says so
    for step in r["steps"]:
        assert step["worst_snr_after_db"] > step["worst_snr_before_db"]
        assert step["reason"].startswith("kept in float")
    assert r["final_snr_db"]["depth"] > r["all_int8_snr_db"]["depth"]
    # trials run side by side, each on one thread: one at a time gives the same record
    alone = find_float_layers(src, ranges, held.tensors, min_snr_db=want, max_float=4, workers=1)
    assert alone == r


def test_qdq_model_from_a_tensorrt_cache(calibrated, tmp_path: Path) -> None:
    """A TensorRT 10 cache becomes explicit quantization with exactly the cache's scales."""
    from calib import calibrate_from_cache

    src, first = calibrated
    _, _, cache = read_cache(first.trt_cache.read_text())
    # the cache describes the model calibration quantized: the equalized copy where it made one
    assert first.float_model is not None
    src = first.float_model
    result = calibrate_from_cache(src, cache=first.trt_cache, out_dir=tmp_path)
    qdq = onnx.load(str(result.qdq_model))
    inits = {i.name: numpy_helper.to_array(i) for i in qdq.graph.initializer}
    checked = 0
    for node in qdq.graph.node:
        if node.op_type == "QuantizeLinear" and node.input[0] in cache:
            assert float(inits[node.input[1]]) == pytest.approx(cache[node.input[0]], rel=1e-5), node.input[0]
            assert int(inits[node.input[2]]) == 0
            checked += 1
    assert checked >= 5
    assert result.record["method"] == "tensorrt-cache (EntropyCalibration2, TensorRT 100700)"
    assert len(result.record["cache_sha256"]) == 64
    x = load_frames("synthetic://?size=128x256&seed=7", frames=1, size=TEST_SIZE).tensors[0]
    a = ort.InferenceSession(str(first.qdq_model), providers=["CPUExecutionProvider"]).run(None, {"image": x})
    b = ort.InferenceSession(str(result.qdq_model), providers=["CPUExecutionProvider"]).run(
        None, {"image": x}
    )
    np.testing.assert_allclose(a[0], b[0], rtol=1e-4, atol=1e-4)  # same scales, same model


def test_cache_of_another_model_is_refused(calibrated, tiny_engines: Path, tmp_path: Path) -> None:
    from calib import calibrate_from_cache

    _, depth = calibrated
    panoptic = tiny_engines / f"panoptic_fpn_tiny_{TEST_SIZE[0]}x{TEST_SIZE[1]}_b1_onnxruntime_fp32.onnx"
    skip_where_onnxruntime_cannot_quantize(panoptic)
    out = tmp_path / "out"
    with pytest.raises(
        ConfigError, match=r"depth_tiny.*trt10.calib' has scales for \d+ of the \d+ tensors.*another model"
    ):
        calibrate_from_cache(panoptic, cache=depth.trt_cache, out_dir=out)
    # the right model but a cache that lacks some tensors: another export of it
    lines = depth.trt_cache.read_text().splitlines()
    partial = tmp_path / "partial.calib"
    partial.write_text("\n".join(lines[:-2]) + "\n")
    src = calibrated[0]
    with pytest.raises(ConfigError, match="another export or version of this model; missing e.g."):
        calibrate_from_cache(src, cache=partial, out_dir=out)
    (tmp_path / "bad.calib").write_text("TRT-100700-EntropyCalibration2\nimage 3c010204\n")
    with pytest.raises(ConfigError, match="bad.calib: calibration cache line 2"):
        calibrate_from_cache(src, cache=tmp_path / "bad.calib", out_dir=out)
    assert not out.exists() or not list(out.iterdir()), "nothing written for a refused cache"
    rc = main(["calibrate", str(panoptic), "--from-cache", str(depth.trt_cache), "--out", str(out)])
    assert rc == 2


def test_a_model_of_a_newer_ir_version_than_onnx_runtime_reads_is_refused_first(
    tiny_engines: Path, tmp_path: Path
) -> None:
    """Calibration runs the model in ONNX Runtime: one it cannot read (the IR version past its
    ceiling, as onnx 1.23 writes by default) is refused by name before a frame is read, and
    nothing is written."""
    from edge.util.ort import max_ir_version

    model = onnx.load(
        str(tiny_engines / f"depth_tiny_{TEST_SIZE[0]}x{TEST_SIZE[1]}_b1_onnxruntime_fp32.onnx")
    )
    model.ir_version = max_ir_version() + 1
    src = tmp_path / "newer.onnx"
    onnx.save(model, str(src))
    out = tmp_path / "out"
    with pytest.raises(
        ConfigError, match=rf"^model to calibrate '{src}' is ONNX IR version {model.ir_version}, "
    ):
        calibrate(src, source="synthetic://?size=128x256&frames=3", out_dir=out, frames=2)
    assert not out.exists() or not any(out.iterdir())


def test_onnx_runtime_1_19_is_refused_for_a_model_whose_softmax_stays_float(tiny_engines: Path) -> None:
    """ONNX Runtime 1.19's quantizer fails on the panoptic model's float Softmax ("Only an
    existing tensor can be modified", seen in a Python 3.10 venv with 1.19.2; 1.20.1 and 1.21.1
    quantize it): such a version is refused before a frame is read, with the fix; the depth
    model, which has no Softmax, is not, nor is 1.20."""
    from calib.quantize import check_quantizer
    from edge.errors import DependencyError

    stem = f"{TEST_SIZE[0]}x{TEST_SIZE[1]}_b1_onnxruntime_fp32.onnx"
    panoptic = onnx.load(str(tiny_engines / f"panoptic_fpn_tiny_{stem}"))
    depth = onnx.load(str(tiny_engines / f"depth_tiny_{stem}"))
    assert any(n.op_type == "Softmax" for n in panoptic.graph.node)
    with pytest.raises(
        DependencyError, match=r"^p.onnx: ONNX Runtime 1.19.2's quantizer fails on a model with a Softmax"
    ):
        check_quantizer(panoptic, "p.onnx", version="1.19.2")
    with pytest.raises(DependencyError) as refused:
        check_quantizer(panoptic, "p", version="1.19.0")
    assert "pip install -U 'onnxruntime>=1.20'" in str(refused.value)
    check_quantizer(panoptic, "p.onnx", version="1.20.1")
    from calib.quantize import quantizes_beside_float_softmax

    assert [quantizes_beside_float_softmax(v) for v in ("1.19.2", "1.20.0", "1.32.0", "2.0", "dev")] == [
        False,
        True,
        True,
        True,
        True,
    ]
    check_quantizer(depth, "d.onnx", version="1.19.2")
