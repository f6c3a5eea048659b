"""Damaged input: corrupt and truncated videos, frames of odd shapes and types."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.errors import SourceError
from edge.stream.engines import EngineSet
from edge.stream.frame import Frame
from edge.stream.pipeline import Pipeline
from edge.stream.sinks import NullSink
from edge.stream.sources import OpenCVSource, open_source

FRAMES = 20


def numbered_avi(path: Path) -> None:
    """Motion-JPEG AVI: each frame is its own JPEG, so one can be damaged alone."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 10, (128, 64))
    for i in range(FRAMES):
        img = np.random.default_rng(i).integers(0, 255, (64, 128, 3), dtype=np.uint8)
        writer.write(img)
    writer.release()


def damage(path: Path, out: Path, frames: tuple[int, ...]) -> None:
    """Overwrite the start (SOI marker and headers) of the given frames' JPEG data."""
    data = bytearray(path.read_bytes())
    starts = [i for i in range(len(data) - 1) if data[i] == 0xFF and data[i + 1] == 0xD8]
    assert len(starts) == FRAMES
    for k in frames:
        data[starts[k] : starts[k] + 400] = bytes(400)
    out.write_bytes(bytes(data))


def read_all(uri: str) -> tuple[list[Frame], OpenCVSource]:
    src = open_source(uri)
    assert isinstance(src, OpenCVSource)
    frames = []
    while (f := src.read()) is not None:
        frames.append(f)
    src.close()
    return frames, src


def test_undecodable_frames_are_skipped_and_counted(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    numbered_avi(tmp_path / "ok.avi")
    damage(tmp_path / "ok.avi", tmp_path / "bad.avi", (5, 6, 12))
    frames, src = read_all(str(tmp_path / "bad.avi"))
    assert len(frames) == FRAMES - 3 and src.undecodable == 3
    assert [f.meta.get("undecodable_before", 0) for f in frames] == [0] * 5 + [2] + [0] * 4 + [1] + [0] * 6
    assert [f.seq for f in frames] == list(range(FRAMES - 3))
    err = capfd.readouterr().err
    assert err.count("could not be decoded") == 1, "said once, then counted"
    good, _ = read_all(str(tmp_path / "ok.avi"))
    np.testing.assert_array_equal(frames[5].image, good[7].image)  # the frame after the damage is intact


def test_truncated_video_ends_early_with_a_warning(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    numbered_avi(tmp_path / "ok.avi")
    data = (tmp_path / "ok.avi").read_bytes()
    (tmp_path / "cut.avi").write_bytes(data[: len(data) * 2 // 3])
    frames, _ = read_all(str(tmp_path / "cut.avi"))
    assert 5 < len(frames) < FRAMES
    assert f"ended after {len(frames)} of the {FRAMES} frames its header declares" in capfd.readouterr().err


def test_truncated_mp4_is_a_clear_error(tmp_path: Path) -> None:
    # MP4 keeps its index at the end: cut, it cannot be opened at all
    writer = cv2.VideoWriter(str(tmp_path / "v.mp4"), cv2.VideoWriter.fourcc(*"mp4v"), 10, (128, 64))
    for i in range(10):
        writer.write(np.full((64, 128, 3), i * 20, np.uint8))
    writer.release()
    data = (tmp_path / "v.mp4").read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])
    with pytest.raises(SourceError, match="cannot open source .*cut.mp4.: an MP4 without its index"):
        open_source(str(tmp_path / "cut.mp4"))


def test_pipeline_counts_undecodable_frames(tiny_engines: Path, tmp_path: Path) -> None:
    numbered_avi(tmp_path / "ok.avi")
    damage(tmp_path / "ok.avi", tmp_path / "bad.avi", (3, 9))
    engines = EngineSet.from_manifest(tiny_engines)
    try:
        summary = Pipeline(
            source=open_source(str(tmp_path / "bad.avi")), engines=engines, sinks=[NullSink()]
        ).run()
    finally:
        engines.close()
    assert summary["undecodable"] == 2 and summary["frames_out"] == FRAMES - 2


def test_pipeline_counts_undecodable_images_in_a_folder(tiny_engines: Path, tmp_path: Path) -> None:
    for i in range(4):
        cv2.imwrite(str(tmp_path / f"{i}.png"), np.full((64, 128, 3), 40 * i, np.uint8))
    (tmp_path / "1.5.png").write_bytes(b"not a png")
    (tmp_path / "9.png").write_bytes(b"")  # the last file: no frame follows to carry it
    engines = EngineSet.from_manifest(tiny_engines)
    try:
        summary = Pipeline(source=open_source(str(tmp_path)), engines=engines, sinks=[NullSink()]).run()
    finally:
        engines.close()
    assert summary["undecodable"] == 2 and summary["frames_out"] == 4


class ListSource:
    """Frames handed in through the Python API, as an integration might."""

    def __init__(self, images: list[object]) -> None:
        self.uri, self.fps, self.live = "list://", 10.0, False
        self._frames = [Frame(i, 0, img, self.uri) for i, img in enumerate(images)]  # type: ignore[arg-type]

    def read(self) -> Frame | None:
        return self._frames.pop(0) if self._frames else None

    def close(self) -> None:
        return None


def test_frames_of_other_sizes_and_channel_counts_are_converted(tiny_engines: Path) -> None:
    images = [
        np.zeros((480, 640, 3), np.uint8),
        np.zeros((37, 53, 3), np.uint8),
        np.zeros((100, 200), np.uint8),  # grey
        np.zeros((100, 200, 1), np.uint8),
        np.zeros((100, 200, 4), np.uint8),  # RGBA
    ]
    engines = EngineSet.from_manifest(tiny_engines)
    shapes = []
    try:
        pipeline = Pipeline(
            source=ListSource(images),
            engines=engines,
            sinks=[NullSink()],
            on_result=lambda r: shapes.append(r.rendered.shape),
            views=["composite"],
        )
        summary = pipeline.run()
    finally:
        engines.close()
    assert summary["frames_out"] == 5 and set(shapes) == {(128, 512, 3)}


@pytest.mark.parametrize(
    "image,match",
    [
        (
            np.zeros((64, 64, 3), np.float32),
            "frame 1 from 'list://' is a float32 array; expected a uint8 RGB",
        ),
        (np.zeros((64, 64, 2), np.uint8), r"frame 1 from 'list://' has shape \(64, 64, 2\); expected HxWx3"),
        (
            np.zeros((1, 64, 3), np.uint8),
            r"frame 1 from .list://. is 1x64 pixels; expected an image of at least 2x2",
        ),
        (np.zeros((0, 0), np.uint8), r"is 0x0 pixels; expected an image of at least 2x2"),
        ("not an image", "is a str; expected"),
    ],
)
def test_unusable_frames_are_refused_by_name(tiny_engines: Path, image: object, match: str) -> None:
    engines = EngineSet.from_manifest(tiny_engines)
    try:
        pipeline = Pipeline(
            source=ListSource([np.zeros((64, 64, 3), np.uint8), image]), engines=engines, sinks=[]
        )
        with pytest.raises(SourceError, match=match):
            pipeline.run()
    finally:
        engines.close()


def test_live_capture_skips_damaged_frames_without_reconnecting(tmp_path: Path) -> None:
    """A stream with damaged frames (here a real decoder over a damaged file) is not lost:
    the failed reads are counted as undecodable and the capture goes on."""
    from edge.stream.capture import LiveCapture

    numbered_avi(tmp_path / "ok.avi")
    damage(tmp_path / "ok.avi", tmp_path / "bad.avi", (5, 6, 12))
    messages: list[str] = []
    src = LiveCapture(
        uri="bad.avi",
        open_reader=lambda: cv2.VideoCapture(str(tmp_path / "bad.avi"), cv2.CAP_FFMPEG),
        log=messages.append,
    )
    try:
        deadline = time.monotonic() + 30
        while src.reconnects == 0:  # the end of the file is a lost source: reopened from the start
            assert src.read() is not None and time.monotonic() < deadline
    finally:
        src.close()
    # each pass over the file skips its 3 damaged frames and ends in one reconnect; the
    # capture thread may be part-way into another pass when closed
    passes = src.reconnects
    assert 3 * passes <= src.undecodable <= 3 * passes + 3, (passes, src.undecodable)
    assert sum("stopped delivering" in m for m in messages) in (passes, passes + 1), messages
