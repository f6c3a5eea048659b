"""--flip: a camera on its side or upside down, its frames turned as they are read, for edge
run (one source, or each camera of several) and edge record, on real sources and sinks."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.cli import main
from edge.errors import ConfigError
from edge.stream.flip import FLIPS, FlippedSource, flip_image, flipped
from edge.stream.sources import open_source
from tests.stream.test_sources_sinks import write_video

# a 2x3 picture, one channel: [[1, 2, 3], [4, 5, 6]]
PICTURE = np.arange(1, 7, dtype=np.uint8).reshape(2, 3, 1)
GOLDEN = {
    "none": [[1, 2, 3], [4, 5, 6]],
    "clockwise": [[4, 1], [5, 2], [6, 3]],
    "counterclockwise": [[3, 6], [2, 5], [1, 4]],
    "rotate-180": [[6, 5, 4], [3, 2, 1]],
    "horizontal": [[3, 2, 1], [6, 5, 4]],
    "vertical": [[4, 5, 6], [1, 2, 3]],
}


@pytest.mark.parametrize("flip", FLIPS)
def test_each_flip_turns_or_mirrors_the_picture_as_seen_on_a_screen(flip: str) -> None:
    picture = np.repeat(PICTURE, 3, axis=2)  # RGB, each channel the same
    out = flip_image(picture, flip)
    assert out.shape[2] == 3 and out.flags["C_CONTIGUOUS"]
    assert out[..., 0].tolist() == GOLDEN[flip] and (out[..., 0] == out[..., 2]).all()


def test_a_flipped_source_is_the_source_but_its_pictures() -> None:
    """Its frames keep their numbers and meta; its rate and the rest are the
    source's; the camera it knows holds as far as the flip keeps the picture's axes."""
    uri = "synthetic://?size=64x128&frames=3&seed=1"
    plain = open_source(uri)
    assert plain.hfov_deg is not None and plain.ground is not None
    assert flipped(plain, "none") is plain
    for flip in FLIPS[1:]:
        turned = flipped(open_source(uri), flip)
        assert isinstance(turned, FlippedSource) and turned.uri == uri and turned.fps == 17.0
        assert not turned.live and getattr(turned, "timestamps", None) is None  # as the source has none
        assert (turned.hfov_deg is not None) == (flip not in ("clockwise", "counterclockwise"))
        assert (turned.ground is not None) == (flip == "horizontal")
        expected = open_source(uri)
        for _ in range(3):
            frame, upright = turned.read(), expected.read()
            assert frame is not None and upright is not None
            assert (frame.seq, frame.meta) == (upright.seq, upright.meta) and frame.t_capture_ns > 0
            assert np.array_equal(frame.image, flip_image(upright.image, flip))
        assert turned.read() is None
        turned.close()
    with pytest.raises(ConfigError, match="flip 'sideways': expected one of none, clockwise"):
        flipped(plain, "sideways")


def test_edge_record_writes_the_frames_turned(tmp_path: Path) -> None:
    """A video recorded upside down comes out the right way up, pixel for pixel (dir://)."""
    write_video(tmp_path / "in.mp4", 5, size=(64, 96))
    upright, turned = tmp_path / "upright", tmp_path / "turned"
    assert main(["record", str(tmp_path / "in.mp4"), f"dir://{upright}"]) == 0
    assert main(["record", str(tmp_path / "in.mp4"), f"dir://{turned}", "--flip", "rotate-180"]) == 0
    names = sorted(p.name for p in upright.glob("*.png"))
    assert len(names) == 5 and names == sorted(p.name for p in turned.glob("*.png"))
    for name in names:
        assert np.array_equal(
            cv2.imread(str(turned / name)), cv2.rotate(cv2.imread(str(upright / name)), cv2.ROTATE_180)
        )


def test_edge_run_takes_a_camera_on_its_side_through_the_engines(tiny_engines: Path, tmp_path: Path) -> None:
    """A 64x96 video turned a quarter: every objects line is of a 96x64 frame, after the loop
    has started it again too (the loop opens the file anew)."""
    write_video(tmp_path / "in.mp4", 3, size=(64, 96))
    argv = ["run", str(tmp_path / "in.mp4"), "--engines", str(tiny_engines), "--loop", "--max-frames", "7"]
    for flip, size in (("clockwise", [96, 64]), ("none", [64, 96])):
        out = tmp_path / f"{flip}.jsonl"
        assert main([*argv, "--flip", flip, "--sink", str(out)]) == 0
        lines = [json.loads(line) for line in out.read_text().splitlines()]
        assert len(lines) == 7 and all(line["frame_size"] == size for line in lines)


def test_each_camera_has_its_own_flip(
    tiny_engines: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--flip front=clockwise turns the front camera's frames and not the rear one's; a name
    that is no camera's, or a camera's name where the run has one source, is refused."""
    write_video(tmp_path / "in.mp4", 3, size=(64, 96))
    video = str(tmp_path / "in.mp4")
    out = tmp_path / "objects.jsonl"
    cameras = ["--camera", f"front={video}", "--camera", f"rear={video}"]
    argv = ["run", *cameras, "--engines", str(tiny_engines), "--sink", str(out)]
    assert main([*argv, "--flip", "front=clockwise"]) == 0
    sizes = {
        (line["camera"], tuple(line["frame_size"])) for line in map(json.loads, out.read_text().splitlines())
    }
    assert sizes == {("front", (96, 64)), ("rear", (64, 96))}
    capsys.readouterr()
    assert main([*argv, "--flip", "side=clockwise", "--overwrite"]) == 2
    assert "side" in capsys.readouterr().err
    assert main(["run", video, "--engines", str(tiny_engines), "--flip", "front=clockwise"]) == 2
    assert "--flip front=clockwise names a camera, and this run has one source" in capsys.readouterr().err


def test_a_camera_recorded_mirrored_keeps_its_capture_thread_and_times(tmp_path: Path) -> None:
    """A real HTTP MJPEG camera on 127.0.0.1 recorded with --flip horizontal: each frame is
    the camera's mirrored (its barcode reads back only once mirrored again), in the order the
    camera numbered them, with the capture times beside them and its drops counted, as the
    live source's capture thread gives them through the flip."""
    from edge.stream.record import record
    from edge.stream.timestamps import folder_timestamps_path, read_timestamps
    from tests.stream.test_capture import Camera, read_barcode

    camera = Camera(fps=30.0)
    try:
        summary = record(camera.url, [f"dir://{tmp_path / 'frames'}"], max_frames=8, flip="horizontal")
    finally:
        camera.unplug()
    pictures = [cv2.imread(str(p)) for p in sorted((tmp_path / "frames").glob("*.png"))]
    seqs = [read_barcode(cv2.flip(p, 1)) for p in pictures]
    assert len(seqs) == summary["frames"] == 8 and seqs == sorted(set(seqs))
    assert [read_barcode(p) for p in pictures] != seqs  # as written, mirrored
    assert len(read_timestamps(folder_timestamps_path(tmp_path / "frames"), frames=8)) == 8
    assert summary["dropped"] >= seqs[-1] - seqs[0] - 7  # every hole counted
