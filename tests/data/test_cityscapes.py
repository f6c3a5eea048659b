"""Cityscapes layout: names, the synthetic writer, readers, depth from disparity, the source."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from edge.data.cityscapes import (
    FrameRef,
    depth_to_disparity_png,
    label_to_train_lut,
    list_frames,
    parse_name,
    read_depth,
    read_ids,
    read_rgb,
)
from edge.data.make_synthetic import is_gt_frame, write_dataset
from edge.data.synthetic import BASELINE, SyntheticDrive
from edge.errors import ConfigError, DatasetError, SourceError
from edge.stream.sources import open_source


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cityscapes")
    write_dataset(root, sequences=2, frames=21, size=(64, 128), split="val")
    return root


def test_names() -> None:
    assert parse_name("aachen_000001_000019_leftImg8bit.png") == ("aachen", 1, 19)
    assert parse_name("bad-honnef_000000_000000_leftImg8bit.png") == ("bad-honnef", 0, 0)
    for bad in ("aachen_1_19_leftImg8bit.png", "aachen_000001_000019_gtFine_labelIds.png", "x.png"):
        with pytest.raises(DatasetError, match="not a Cityscapes image name"):
            parse_name(bad)
    ref = FrameRef(Path("/d"), "val", "ulm", 3, 19)
    assert ref.path("labelIds") == Path("/d/gtFine/val/ulm/ulm_000003_000019_gtFine_labelIds.png")
    assert ref.path("disparity") == Path("/d/disparity/val/ulm/ulm_000003_000019_disparity.png")
    assert is_gt_frame(19, 20) and not is_gt_frame(20, 20) and is_gt_frame(0, 1)
    lut = label_to_train_lut()
    assert lut[7] == 0 and lut[26] == 13 and lut[0] == 255


def test_written_dataset_layout_and_ground_truth(dataset: Path) -> None:
    seqs = list_frames(dataset, "val")
    assert [len(s) for s in seqs] == [21, 21]
    assert [r.frame for r in seqs[0]] == list(range(21))
    with_gt = [r for s in seqs for r in s if r.has_gt]
    assert [(r.seq, r.frame) for r in with_gt] == [(0, 19), (1, 19)]
    ref = with_gt[0]
    image, labels, inst = (
        read_rgb(ref.path("image")),
        read_ids(ref.path("labelIds")),
        read_ids(ref.path("instanceIds")),
    )
    assert image.shape == (64, 128, 3) and labels.shape == inst.shape == (64, 128)
    # the files hold exactly what the generator rendered (the same seed scheme)
    gt = SyntheticDrive(height=64, width=128, seed=(0 * 7919 + sum(map(ord, "val"))) * 1000 + 0).render(19)
    assert np.array_equal(labels, gt.label_ids) and np.array_equal(inst, gt.instance_ids)
    camera = json.loads(ref.path("camera").read_text())
    assert camera["extrinsic"]["baseline"] == BASELINE
    depth = read_depth(ref)
    assert depth is not None
    valid = gt.depth > 0
    assert np.array_equal(depth > 0, valid)
    # disparity is quantised to 1/256 px: relative depth error grows with depth
    rel = np.abs(depth[valid] - gt.depth[valid]) / gt.depth[valid]
    assert np.median(rel) < 0.01
    assert read_depth(seqs[0][0]) is None  # no ground truth on that frame
    assert not list(dataset.glob(".*partial*"))


def test_make_synthetic_writes_drives_with_cut_ins(tmp_path: Path) -> None:
    from edge.cli import main

    args = ["make-synthetic", "--out", str(tmp_path), "--sequences", "1", "--frames", "2", "--size", "64x128"]
    assert main([*args, "--all-gt", "--cut-ins", "3", "--quiet"]) == 0
    ref = list_frames(tmp_path, "val")[0][1]
    drive = SyntheticDrive(height=64, width=128, seed=sum(map(ord, "val")) * 1000, cut_ins=3)
    assert np.array_equal(read_ids(ref.path("instanceIds")), drive.render(1).instance_ids)
    with pytest.raises(ConfigError, match="cut_ins must be >= 0, got -2"):
        write_dataset(tmp_path / "x", sequences=1, frames=1, size=(64, 128), cut_ins=-2)
    with pytest.raises(SystemExit):
        main([*args[:2], str(tmp_path / "y"), "--cut-ins", "-1"])


def test_make_synthetic_writes_drives_in_the_right_lane_with_cars_braking(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from edge.cli import main

    args = ["make-synthetic", "--out", str(tmp_path), "--sequences", "1", "--frames", "1", "--size", "64x128"]
    assert main([*args, "--all-gt", "--lane", "right", "--lead-brakes", "--quiet"]) == 0
    said = capsys.readouterr().out
    assert said.startswith(f"wrote 1 frame (1 with ground truth) in 1 sequence to {tmp_path} (split val)"), (
        said
    )
    ref = list_frames(tmp_path, "val")[0][0]
    drive = SyntheticDrive(
        height=64, width=128, seed=sum(map(ord, "val")) * 1000, lane="right", lead_brakes=True
    )
    assert np.array_equal(read_ids(ref.path("labelIds")), drive.render(0).label_ids)
    with pytest.raises(ConfigError, match="lane must be one of centre, right, got 'left'"):
        write_dataset(tmp_path / "x", sequences=1, frames=1, size=(64, 128), lane="left")
    with pytest.raises(SystemExit):
        main([*args[:2], str(tmp_path / "y"), "--lane", "left"])


def test_disparity_round_trip_golden() -> None:
    # 0.209313 m * 1000 px / 10 m = 20.9313 px -> p = round(20.9313 * 256) + 1 = 5359
    png = depth_to_disparity_png(np.array([[10.0, 0.0]], np.float32), BASELINE, 1000.0)
    assert png.tolist() == [[5359, 0]]


def test_writer_refuses_to_overwrite_and_leaves_nothing_on_failure(dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="already exists"):
        write_dataset(dataset, sequences=1, frames=1, size=(64, 128), split="val")

    def boom(n: int) -> None:
        if n == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_dataset(tmp_path, sequences=1, frames=5, size=(64, 128), split="train", progress=boom)
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no split, no partial folder
    with pytest.raises(ConfigError):
        write_dataset(tmp_path, sequences=0, frames=5, size=(64, 128))
    with pytest.raises(ConfigError):
        write_dataset(tmp_path, sequences=1, frames=1, size=(64, 128), split="../x")


def test_source_replays_sequences_in_order_and_marks_ground_truth(dataset: Path) -> None:
    src = open_source(f"cityscapes://{dataset}?split=val&fps=0")
    frames = []
    while (f := src.read()) is not None:
        frames.append(f)
    assert len(frames) == 42 and [f.seq for f in frames] == list(range(42))
    assert [(f.meta["sequence"], f.meta["frame"]) for f in frames[:2]] == [(0, 0), (0, 1)]
    assert [f.meta["name"] for f in frames if f.meta["has_gt"]] == [
        "synthetic_000000_000019",
        "synthetic_000001_000019",
    ]
    assert frames[0].image.shape == (64, 128, 3) and not src.live


def test_source_paces_at_the_recorded_rate(dataset: Path) -> None:
    src = open_source(f"cityscapes://{dataset}?fps=40")
    t = time.perf_counter()
    for _ in range(9):
        src.read()
    assert time.perf_counter() - t >= 8 / 40 * 0.9  # 8 intervals at 40 Hz


@pytest.mark.parametrize(
    "uri,match",
    [
        ("cityscapes:///nonexistent/dir", "does not exist"),
        ("cityscapes://{root}?split=train", "no split 'train'"),
        ("cityscapes://{root}?fps=-1", "fps must be"),
        ("cityscapes://{root}?fps=abc", "not a number"),
        ("cityscapes://{root}?colour=1", "unknown options"),
    ],
)
def test_bad_cityscapes_uris(dataset: Path, uri: str, match: str) -> None:
    with pytest.raises(SourceError, match=match):
        open_source(uri.format(root=dataset))


def test_malformed_trees_name_the_file(tmp_path: Path) -> None:
    root = tmp_path / "cs"
    write_dataset(root, sequences=1, frames=2, size=(64, 128), split="val", gt_every=1)
    refs = list_frames(root, "val")[0]
    # a stray file with a non-Cityscapes name
    stray = root / "leftImg8bit_sequence" / "val" / "synthetic" / "frame_0001_leftImg8bit.png"
    stray.write_bytes(b"")
    with pytest.raises(DatasetError, match="frame_0001_leftImg8bit.png.*not a Cityscapes image name"):
        list_frames(root, "val")
    stray.unlink()
    # an image in the wrong city folder
    wrong = root / "leftImg8bit_sequence" / "val" / "synthetic" / "ulm_000000_000000_leftImg8bit.png"
    wrong.write_bytes(b"")
    with pytest.raises(DatasetError, match="names city 'ulm'"):
        list_frames(root, "val")
    wrong.unlink()
    # undecodable ground truth and a broken camera file
    refs[0].path("labelIds").write_bytes(b"not a png")
    with pytest.raises(DatasetError, match="_gtFine_labelIds.png.*not a single-channel id image"):
        read_ids(refs[0].path("labelIds"))
    refs[1].path("camera").write_text("{}")
    with pytest.raises(DatasetError, match="_camera.json.*baseline/fx"):
        read_depth(refs[1])
    # no camera file: Cityscapes' usual rig
    refs[1].path("camera").unlink()
    depth = read_depth(refs[1])
    assert depth is not None and depth.max() > 0
    with pytest.raises(DatasetError, match="holds no"):
        (root / "leftImg8bit_sequence" / "test" / "x").mkdir(parents=True)
        list_frames(root, "test")


def test_the_cameras_field_of_view_from_its_files(dataset: Path, tmp_path: Path) -> None:
    """2 atan(w / 2 fx) of the first frame with a camera file: the synthetic camera's focal
    length is 1.1 widths, so 2 atan(1 / 2.2), 48.9 degrees; none without camera files, and
    a broken one passed over (its depth read says so)."""
    import math
    import shutil

    from edge.data.cityscapes import camera_ground, camera_hfov, png_size

    refs = [ref for seq in list_frames(dataset, "val") for ref in seq]
    assert png_size(refs[0].path("image")) == (64, 128)
    assert camera_hfov(refs) == pytest.approx(math.degrees(2 * math.atan(1 / 2.2)))
    assert camera_hfov(refs) == pytest.approx(SyntheticDrive(height=64, width=128).camera.hfov_deg)
    assert open_source(f"cityscapes://{dataset}").hfov_deg == camera_hfov(refs)  # type: ignore[attr-defined]
    # the ground plane of its height (extrinsic z), pitch and fy, v0 over the image's rows
    assert camera_ground(refs) == SyntheticDrive(height=64, width=128).camera.ground
    assert open_source(f"cityscapes://{dataset}").ground == camera_ground(refs)  # type: ignore[attr-defined]
    copy = tmp_path / "copy"
    shutil.copytree(dataset, copy)
    cameras = sorted((copy / "camera").rglob("*.json"))
    cameras[0].write_text("{")
    refs = [ref for seq in list_frames(copy, "val") for ref in seq]
    assert camera_hfov(refs) == pytest.approx(48.8879, abs=1e-4)  # the second sequence's
    cameras[1].unlink()
    assert camera_hfov(refs) is None and open_source(f"cityscapes://{copy}").hfov_deg is None  # type: ignore[attr-defined]
    assert camera_ground(refs) is None and open_source(f"cityscapes://{copy}").ground is None  # type: ignore[attr-defined]
    with pytest.raises(DatasetError, match="is not a PNG image"):
        png_size(cameras[0])
