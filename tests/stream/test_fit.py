"""Frames of another shape than the engines': padded in (letterboxed) or cropped to their
middle, and the outputs back over the frame."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge.data.synthetic import SyntheticDrive
from edge.errors import ConfigError
from edge.perception import Perception
from edge.schemas import check_document
from edge.stream.fit import (
    CUT_FILL,
    PAD_RGB,
    check_fit,
    fitted_hw,
    input_tensor,
    pad_offset,
    seen_part,
    unpad_outputs,
)
from tests.conftest import TEST_SIZE


@pytest.mark.parametrize(
    ("frame_hw", "fit", "part"),
    [
        ((720, 1280), "pad", (256, 455)),  # 16:9: the height fills, 1280 * 256/720 = 455.1
        ((480, 640), "pad", (256, 341)),  # 4:3: 341.3
        ((300, 1200), "pad", (128, 512)),  # 4:1, wider: the width fills
        ((1024, 2048), "pad", (256, 512)),  # the engines' own shape fills the input
        ((480, 640), "stretch", (256, 512)),
        ((720, 1280), "crop", (288, 512)),  # 16:9: the width fills, 720 * 512/1280 = 288 rows
        ((480, 640), "crop", (384, 512)),
        ((128, 512), "crop", (256, 1024)),  # 4:1: the height fills, twice the input's width
        ((1024, 2048), "crop", (256, 512)),
    ],
)
def test_the_part_of_the_input_a_frame_takes(
    frame_hw: tuple[int, int], fit: str, part: tuple[int, int]
) -> None:
    assert fitted_hw(frame_hw, (256, 512), fit) == part


def test_an_unknown_fit_is_refused_by_name() -> None:
    with pytest.raises(ConfigError, match=r"fit 'zoom': expected one of stretch, pad, crop"):
        check_fit("zoom")


def test_a_crop_that_would_keep_a_sliver_is_refused() -> None:
    # 1000x40 into 256x512: scaled to 256 rows it is 6400 wide, of which 512 is 8%
    assert fitted_hw((40, 1000), (256, 512), "crop") == (256, 6400)
    with pytest.raises(
        ConfigError, match=r"--fit crop would keep 4\.0% of each 2000x40 frame in engines of 256x512"
    ):
        fitted_hw((40, 2000), (256, 512), "crop")
    assert fitted_hw((40, 2000), (256, 512), "pad") == (10, 512)


@pytest.mark.parametrize(
    ("frame_hw", "fit", "part"),
    [
        ((720, 1280), "crop", (40, 0, 680, 1280)),  # rows 16..272 of 288, at 720/288 = 2.5 px each
        ((480, 640), "crop", (80, 0, 400, 640)),  # a third of a 4:3 frame's height is cut
        ((128, 512), "crop", (0, 128, 128, 384)),  # half of a 4:1 frame's width
        ((1024, 2048), "crop", (0, 0, 1024, 2048)),
        ((480, 640), "pad", (0, 0, 480, 640)),
        ((480, 640), "stretch", (0, 0, 480, 640)),
    ],
)
def test_the_part_of_a_frame_the_engines_see(
    frame_hw: tuple[int, int], fit: str, part: tuple[int, int, int, int]
) -> None:
    assert seen_part(frame_hw, (256, 512), fit) == part


def test_the_frame_is_centred_in_the_mean_colour() -> None:
    resized = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    tensor = input_tensor(resized, (4, 7))
    assert tensor.shape == (1, 3, 4, 7) and tensor.dtype == np.float32
    assert pad_offset((2, 3), (4, 7)) == (1, 2)
    # hand-placed: rows 1-2, columns 2-4 hold the frame, channel first
    np.testing.assert_array_equal(tensor[0, :, 1:3, 2:5], resized.transpose(2, 0, 1))
    outside = np.ones((4, 7), bool)
    outside[1:3, 2:5] = False
    for c, value in enumerate(PAD_RGB):
        assert (tensor[0, c][outside] == value).all()


def test_a_frame_of_the_engines_size_is_the_tensor_alone() -> None:
    frame = np.full((4, 8, 3), 9, np.uint8)
    tensor = input_tensor(frame, (4, 8))
    assert tensor.shape == (1, 3, 4, 8) and (tensor == 9).all()


def test_the_outputs_are_cropped_to_the_frame_and_depth_read_as_stretched() -> None:
    """Golden values on a 16x32 input holding an 8x12 part at (4, 10): maps at full size and
    at 1/4 are cropped (outward to whole cells), depth scaled by 12/32, the boxes moved by
    the corner, the rest untouched."""
    ih, iw = 16, 32
    sem = np.arange(ih * iw, dtype=np.int32).reshape(1, ih, iw)
    logits = np.arange(2 * 4 * 8, dtype=np.float32).reshape(1, 2, 4, 8)
    depth = np.full((1, 1, ih, iw), 8.0, np.float32)
    masks = np.ones((1, 3, 28, 28), np.float32)
    boxes = np.array([[[10.0, 4.0, 22.0, 12.0], [0.0, 0.0, 32.0, 16.0]]], np.float32)
    out = unpad_outputs(
        {"sem_labels": sem, "sem_logits": logits, "boxes": boxes, "masks": masks},
        (8, 12),
        (ih, iw),
    )
    assert pad_offset((8, 12), (ih, iw)) == (4, 10)
    np.testing.assert_array_equal(out["sem_labels"], sem[:, 4:12, 10:22])
    # rows 4..12 / 4 = 1..3, columns 10..22 / 4 = 2.5..5.5, so cells 2..6
    np.testing.assert_array_equal(out["sem_logits"], logits[:, :, 1:3, 2:6])
    np.testing.assert_array_equal(out["boxes"][0], [[0, 0, 12, 8], [-10, -4, 22, 12]])
    assert out["masks"] is masks
    d = unpad_outputs({"depth": depth, "disparity": depth / 16}, (8, 12), (ih, iw))
    assert d["depth"].shape == (1, 1, 8, 12) and d["disparity"].shape == (1, 1, 8, 12)
    np.testing.assert_allclose(d["depth"], 8.0 * 12 / 32)
    np.testing.assert_array_equal(d["disparity"], 0.5)
    assert d["depth"].dtype == np.float32


def test_a_larger_frame_gives_its_middle() -> None:
    resized = np.arange(6 * 9 * 3, dtype=np.uint8).reshape(6, 9, 3)
    tensor = input_tensor(resized, (4, 5))
    assert pad_offset((6, 9), (4, 5)) == (-1, -2)
    np.testing.assert_array_equal(tensor[0], resized[1:5, 2:7].transpose(2, 0, 1))


def test_a_cropped_frames_outputs_are_laid_over_it_the_cut_edges_unknown() -> None:
    """Golden values: a 16x32 input cut from the middle of a 24x40 frame, at (4, 4): maps at
    full size and at 1/4 are placed there in maps of the frame's size (whole cells: 6x10),
    void and no depth around; depth scaled by 40/32 (the model saw things larger than a
    stretch would show them, so nearer); the boxes moved by the corner."""
    ih, iw = 16, 32
    sem = np.arange(ih * iw, dtype=np.int32).reshape(1, ih, iw)
    logits = np.arange(2 * 4 * 8, dtype=np.float32).reshape(1, 2, 4, 8)
    depth = np.full((1, 1, ih, iw), 8.0, np.float32)
    boxes = np.array([[[0.0, 0.0, 32.0, 16.0]]], np.float32)
    assert pad_offset((24, 40), (ih, iw)) == (-4, -4)
    out = unpad_outputs(
        {"sem_labels": sem, "sem_logits": logits, "boxes": boxes, "depth": depth, "disparity": depth / 16},
        (24, 40),
        (ih, iw),
    )
    assert out["sem_labels"].shape == (1, 24, 40) and out["sem_labels"].dtype == np.int32
    np.testing.assert_array_equal(out["sem_labels"][:, 4:20, 4:36], sem)
    void = np.ones((24, 40), bool)
    void[4:20, 4:36] = False
    assert CUT_FILL["sem_labels"] == 255 and (out["sem_labels"][0][void] == 255).all()
    assert out["sem_logits"].shape == (1, 2, 6, 10)
    np.testing.assert_array_equal(out["sem_logits"][:, :, 1:5, 1:9], logits)
    assert out["sem_logits"][:, :, 0].sum() == 0 and out["sem_logits"][:, :, :, 9].sum() == 0
    np.testing.assert_allclose(out["depth"][0, 0, 4:20, 4:36], 8.0 * 40 / 32)
    assert (out["depth"][0, 0][void] == 0).all() and (out["disparity"][0, 0][void] == 0).all()
    np.testing.assert_array_equal(out["disparity"][0, 0, 4:20, 4:36], 0.5)
    np.testing.assert_array_equal(out["boxes"][0], [[4, 4, 36, 20]])


def test_cropping_then_laying_back_gives_the_frames_middle_back() -> None:
    """An engine that outputs its input as a map: the frame's middle comes back where it was."""
    rng = np.random.default_rng(1)
    for hw in ((96, 64), (64, 99), (64, 64)):
        frame = rng.integers(0, 255, (*hw, 3), dtype=np.uint8)
        tensor = input_tensor(frame, (64, 64))
        back = unpad_outputs({"sem_labels": tensor[:, 0].astype(np.int32)}, hw, (64, 64))["sem_labels"][0]
        assert back.shape == hw
        y, x = pad_offset(hw, (64, 64))
        np.testing.assert_array_equal(back[-y : -y + 64, -x : -x + 64], frame[-y : -y + 64, -x : -x + 64, 0])
        assert (back == 255).sum() == hw[0] * hw[1] - 64 * 64


def test_padding_then_unpadding_gives_the_frame_back() -> None:
    """An engine that outputs its input as a map: what comes back is the resized frame."""
    rng = np.random.default_rng(0)
    for part in ((37, 64), (64, 51), (64, 64)):
        frame = rng.integers(0, 256, (*part, 3), dtype=np.uint8)
        tensor = input_tensor(frame, (64, 64))
        back = unpad_outputs({"sem_labels": tensor[:, 0].astype(np.int32)}, part, (64, 64))
        np.testing.assert_array_equal(back["sem_labels"][0], frame[:, :, 0])


def test_cropped_frames_keep_their_shape_through_real_engines(demo_engines: Path) -> None:
    """A 4:3 picture cropped into the 1:2 test engines: the results are of the whole frame
    at the engines' scale (192x256), its middle (rows 32..160) seen, the rest void and
    without depth; the instances lie in the seen part."""
    h, w = TEST_SIZE
    image = SyntheticDrive(height=96, width=128, seed=1).render(0).image
    with Perception.open(demo_engines, fit="crop") as cropped:
        seen = cropped(image)
        assert "fit='crop'" in repr(cropped)
        assert seen.image.shape == (192, 256, 3) and (h, w) == (128, 256)
        for name in ("panoptic", "semantic"):
            assert getattr(seen, name).shape == (192, 256)
        assert (seen.semantic[:32] == 255).all() and (seen.semantic[160:] == 255).all()
        assert (seen.semantic[32:160] != 255).any()
        assert seen.depth is not None and (seen.depth[:32] == 0).all() and (seen.depth[32:160] > 0).all()
        assert seen.instances, "the drive's things are found"
        for inst in seen.instances:
            x1, y1, x2, y2 = inst.box
            assert 0 <= x1 <= x2 <= 256 and 32 - 1 <= y1 <= y2 <= 160 + 1
        assert cropped.render(seen).shape == (192, 2 * 256, 3)


def test_padded_frames_keep_their_shape_through_real_engines(
    demo_engines: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """A 4:3 picture into the 1:2 test engines: every result is of its part of the input
    (128x171), the instances lie in it, and no stretch is said. A frame of the engines'
    own shape gives the same results either way."""
    h, w = TEST_SIZE
    image = SyntheticDrive(height=96, width=128, seed=1).render(0).image  # things to be found
    same_shape = SyntheticDrive(height=h, width=w, seed=1).render(0).image
    with Perception.open(demo_engines, fit="pad") as padded, Perception.open(demo_engines) as stretched:
        seen = padded(image)
        assert "fit='pad'" in repr(padded)
        assert seen.image.shape == (128, 171, 3)
        for name in ("panoptic", "semantic"):
            assert getattr(seen, name).shape == (128, 171)
        assert seen.depth is not None and seen.depth.shape == (128, 171)
        assert seen.instances, "the drive's things are found"
        for inst in seen.instances:
            x1, y1, x2, y2 = inst.box
            assert 0 <= x1 <= x2 <= 171 and 0 <= y1 <= y2 <= 128
        assert padded.render(seen).shape == (128, 2 * 171, 3)
        a, b = padded(same_shape), stretched(same_shape)
        np.testing.assert_array_equal(a.panoptic, b.panoptic)
        np.testing.assert_array_equal(a.depth, b.depth)
    assert "warning: frames" not in capfd.readouterr().err


def replayed_4_3_drive(
    engines: Path, tmp_path: Path, fit: str
) -> tuple[subprocess.CompletedProcess[str], Path, list[str]]:
    """``edge replay --fit FIT --eval --out`` of a 2-frame 4:3 drive with ground truth on
    each: the finished process, its output folder, and the command without --fit."""
    from edge.data.make_synthetic import write_dataset

    data = tmp_path / "drive"
    write_dataset(data, sequences=1, frames=2, size=(96, 128), split="val", gt_every=1)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "edge", "replay", f"cityscapes://{data}?fps=0", "--engines", str(engines)]
    argv = [*cmd, "--fit", fit, "--threads", "1", "--eval", "--out", str(out)]
    return subprocess.run(argv, capture_output=True, text=True), out, cmd


def test_edge_replay_pads_a_4_3_drive(demo_engines: Path, tmp_path: Path) -> None:
    """The CLI's --fit pad: a 4:3 drive replayed into the 1:2 test engines evaluates every
    frame with ground truth, says no stretch, and its metrics file says nothing unfinished."""
    done, out, cmd = replayed_4_3_drive(demo_engines, tmp_path, "pad")
    assert done.returncode == 0, done.stderr
    assert "squashed" not in done.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["gt_frames"] == 2 and "unfinished" not in metrics
    assert check_document("metrics", (out / "metrics.json").read_text()) is None
    assert metrics["latency"]["fit"] == "pad"
    said = done.stdout + done.stderr
    assert "fit             pad: frames of another shape than the engines' are padded" in said
    assert metrics["metrics"]["panoptic"]["all"]["pq"] is not None
    refused = subprocess.run([*cmd, "--fit", "zoom"], capture_output=True, text=True)
    assert (
        refused.returncode == 2 and "--fit: expected one of stretch, pad, crop, got 'zoom'" in refused.stderr
    )


def test_a_cropped_4_3_drive_is_scored_on_what_the_engines_saw(demo_engines: Path, tmp_path: Path) -> None:
    """edge replay --fit crop: a 4:3 drive into the 1:2 test engines sees the middle two
    thirds of each frame's height (rows 16..80 of 96); the metrics are of that part and say
    so, and the predictions written at the frame's size are unlabelled beyond it."""
    from PIL import Image

    done, out, _ = replayed_4_3_drive(demo_engines, tmp_path, "crop")
    assert done.returncode == 0, done.stderr
    report = json.loads((out / "metrics.json").read_text())
    assert report["gt_frames"] == 2 and report["latency"]["fit"] == "crop"
    assert check_document("metrics", (out / "metrics.json").read_text()) is None  # scored_part
    assert report["scored_part"] == {"96x128": {"box": [16, 0, 80, 128], "share": pytest.approx(2 / 3)}}
    m = report["metrics"]
    assert m["panoptic"]["all"]["pq"] is not None and m["depth"]["abs_rel"] < 1.0
    said = done.stdout + done.stderr
    assert (
        "fit             crop: frames of another shape than the engines' are cropped to their middle" in said
    )
    assert (
        "scored on the part of each 96x128 frame the engines saw: rows 16..80, columns 0..128 (67% of it)"
        in said
    )
    labels = sorted(out.rglob("*labelIds*.png"))
    assert labels, list(out.rglob("*"))
    sem = np.asarray(Image.open(labels[0]))
    assert sem.shape == (96, 128)
    assert (sem[:16] == 0).all() and (sem[80:] == 0).all(), "unlabelled where the frame was cut"
    assert len(np.unique(sem[16:80])) > 1, "the part the engines saw has classes"


def test_edge_run_writes_padded_frames_at_their_own_shape(demo_engines: Path, tmp_path: Path) -> None:
    """edge run --fit pad from a 4:3 camera: the video holds the overlay and depth of the
    frame's part (128x171 each, side by side), not the engines' 1:2 input."""
    import cv2

    video = tmp_path / "out.mkv"
    cmd = [sys.executable, "-m", "edge", "run", "synthetic://?size=96x128", "--engines", str(demo_engines)]
    done = subprocess.run(
        [*cmd, "--fit", "pad", "--max-frames", "3", "--sink", str(video)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "squashed" not in done.stderr
    cap = cv2.VideoCapture(str(video))
    try:
        ok, picture = cap.read()
        assert ok and picture.shape == (128, 2 * 171, 3)
    finally:
        cap.release()


def test_padded_objects_say_the_frame_size_their_boxes_scale_to(demo_engines: Path, tmp_path: Path) -> None:
    """objects.jsonl from a padded 4:3 drive: boxes in the 128x171 picture (``size``), and
    the frame's own 96x128 (``frame_size``), which one scale on both axes maps them into."""
    from edge.stream import run_stream

    objects = tmp_path / "objects.jsonl"
    run_stream("synthetic://?size=96x128&frames=3", engines=demo_engines, sinks=[str(objects)], fit="pad")
    lines = [json.loads(x) for x in objects.read_text().splitlines()]
    assert [(x["size"], x["frame_size"]) for x in lines] == [([128, 171], [96, 128])] * 3
    boxes = [o["box"] for x in lines for o in x["objects"]]
    assert boxes, "the drive's things are found"
    scale = 128 / 171
    for x1, y1, x2, y2 in boxes:
        assert 0 <= x1 * scale < x2 * scale <= 128 + 1e-6 and 0 <= y1 * scale < y2 * scale <= 96 + 1e-6


def test_a_playlist_of_two_shapes_padded_into_one_video(demo_engines: Path, tmp_path: Path) -> None:
    """--fit pad over a 4:3 video then a 4:1 one: their pictures differ in size, and the
    second's are scaled into the video's size, said once; every frame is in the video."""
    import cv2

    from edge.data.synthetic import SyntheticDrive

    drives = tmp_path / "drives"
    drives.mkdir()
    for name, (h, w) in (("a", (96, 128)), ("b", (64, 256))):
        writer = cv2.VideoWriter(str(drives / f"{name}.avi"), cv2.VideoWriter.fourcc(*"MJPG"), 10, (w, h))
        for i in range(3):
            writer.write(
                cv2.cvtColor(SyntheticDrive(height=h, width=w, seed=2).render(i).image, cv2.COLOR_RGB2BGR)
            )
        writer.release()
    video = tmp_path / "out.avi"
    argv = [sys.executable, "-m", "edge", "run", f"{drives}/*.avi", "--engines", str(demo_engines)]
    done = subprocess.run([*argv, "--fit", "pad", "--sink", str(video)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "sink errors" not in done.stderr + done.stdout
    # 4:3 into 128x256: 128x171, both views side by side; 4:1: 64x256, scaled into 342x128
    assert done.stderr.count("pictures of 512x64 are scaled into the video's 342x128") == 1
    cap = cv2.VideoCapture(str(video))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 6
    assert (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))) == (342, 128)
    cap.release()


def test_each_camera_goes_into_the_engines_its_own_way(
    demo_engines: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Three 4:3 cameras on one set of engines, --fit front=crop --fit back=stretch --fit
    pad: each camera's objects say the picture of its own fit (cropped 192x256, stretched
    128x256, padded 128x171), the summary says each one's fit, and the stretched one alone
    is said to be squashed."""
    from edge.cli import main

    objects, summary = tmp_path / "{camera}.jsonl", tmp_path / "summary.json"
    argv = ["run", "--engines", str(demo_engines), "--sink", str(objects), "--summary", str(summary)]
    for name in ("front", "back", "side"):
        argv += ["--camera", f"{name}=synthetic://?size=96x128&frames=2"]
    assert main([*argv, "--fit", "front=crop", "--fit", "back=stretch", "--fit", "pad"]) == 0
    sizes = {
        name: {tuple(json.loads(x)["size"]) for x in (tmp_path / f"{name}.jsonl").read_text().splitlines()}
        for name in ("front", "back", "side")
    }
    assert sizes == {"front": {(192, 256)}, "back": {(128, 256)}, "side": {(128, 171)}}
    cameras = json.loads(summary.read_text())["cameras"]
    assert {name: s["fit"] for name, s in cameras.items()} == {
        "front": "crop",
        "back": "stretch",
        "side": "pad",
    }
    assert capsys.readouterr().err.count("squashed") == 1
    for given, said in (
        (["--fit", "crop", "--fit", "pad"], "--fit is given 2 times (crop, pad); give it once, or NAME=FIT"),
        (
            ["--fit", "rear=crop"],
            "--fit rear=crop: no camera is named 'rear' (the cameras: front, back, side)",
        ),
    ):
        assert main([*argv, "--overwrite", *given]) == 2
        assert said in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*argv, "--fit", "front=squash"])
    assert "expected one of stretch, pad, crop, got 'squash'" in capsys.readouterr().err


def test_a_run_of_one_source_takes_one_fit(demo_engines: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from edge.cli import main

    argv = ["replay", "cityscapes://nowhere", "--engines", str(demo_engines), "--fit", "front=crop"]
    assert main(argv) == 2
    assert "--fit front=crop names a camera, and this run has one source: give --fit crop" in (
        capsys.readouterr().err
    )
