"""What a video file's bytes say of why it cannot be opened: real files OpenCV wrote, cut as a
killed recorder cuts them, and hand-made box layouts."""

from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.errors import SourceError
from edge.stream.sources import open_source
from edge.stream.unopenable import why_unopenable


def _video(path: Path, fourcc: str = "mp4v") -> bytes:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*fourcc), 10, (64, 32))
    for i in range(6):
        writer.write(np.full((32, 64, 3), i * 40, np.uint8))
    writer.release()
    return path.read_bytes()


def _box(kind: bytes, body: bytes, *, large: bool = False) -> bytes:
    if large:
        return struct.pack(">I4sQ", 1, kind, 16 + len(body)) + body
    return struct.pack(">I4s", 8 + len(body), kind) + body


def test_an_mp4_cut_before_its_index_is_named_and_opencv_is_not_asked(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    data = _video(tmp_path / "whole.mp4")
    assert why_unopenable(tmp_path / "whole.mp4") is None
    # OpenCV's writer puts the index after the frames: a recorder killed before it got there
    (tmp_path / "cut.mp4").write_bytes(data[: data.index(b"moov") - 4 - 100])
    reason = why_unopenable(tmp_path / "cut.mp4")
    assert reason is not None and reason.startswith("an MP4 without its index (no 'moov' box)")
    with pytest.raises(SourceError) as info:
        open_source(str(tmp_path / "cut.mp4"))
    assert str(info.value) == f"cannot open source {str(tmp_path / 'cut.mp4')!r}: {reason}"
    assert "moov atom not found" not in capfd.readouterr().err  # FFmpeg's own line, before ours


def test_an_empty_file_is_called_empty(tmp_path: Path) -> None:
    (tmp_path / "empty.mkv").write_bytes(b"")
    with pytest.raises(SourceError, match=r"source '.*empty.mkv': the file is empty \(0 bytes\)$"):
        open_source(str(tmp_path / "empty.mkv"))


@pytest.mark.parametrize(
    ("boxes", "indexless"),
    [
        ([_box(b"ftyp", b"isom" * 3), _box(b"mdat", b"\0" * 40, large=True), _box(b"moov", b"x")], False),
        ([_box(b"ftyp", b"isom" * 3), _box(b"mdat", b"\0" * 40, large=True)], True),
        # an mdat whose size runs to the end of the file (0), as a recorder writes it until it knows
        ([_box(b"ftyp", b"isom" * 3), struct.pack(">I4s", 0, b"mdat") + b"\0" * 40], True),
        # cut off partway through a box
        ([_box(b"ftyp", b"isom" * 3), _box(b"free", b""), _box(b"mdat", b"\0" * 9)[:12]], True),
        ([_box(b"free", b""), _box(b"mdat", b"\0" * 9)], False),  # no ftyp first: not known to be an MP4
        ([_box(b"ftyp", b"isom"), struct.pack(">I4s", 3, b"mdat")], False),  # a box shorter than its header
        # more boxes than are walked: where its index is, is not known
        ([_box(b"ftyp", b"isom"), *[_box(b"free", b"")] * 10_000, _box(b"moov", b"x")], False),
    ],
)
def test_top_level_boxes(boxes: list[bytes], indexless: bool, tmp_path: Path) -> None:
    (tmp_path / "v.mp4").write_bytes(b"".join(boxes))
    assert (why_unopenable(tmp_path / "v.mp4") is not None) is indexless
    (tmp_path / "v.avi").write_bytes(b"".join(boxes))  # only MP4's family is read this way
    assert why_unopenable(tmp_path / "v.avi") is None


def test_other_files_are_left_to_opencv(tmp_path: Path) -> None:
    mkv = _video(tmp_path / "whole.mkv")
    (tmp_path / "cut.mkv").write_bytes(mkv[: len(mkv) // 2])
    assert why_unopenable(tmp_path / "cut.mkv") is None  # a cut mkv plays what it holds
    (tmp_path / "junk.mp4").write_bytes(bytes(range(256)) * 20)
    assert why_unopenable(tmp_path / "junk.mp4") is None
    assert why_unopenable(tmp_path / "missing.mp4") is None
    with pytest.raises(SourceError, match="cannot open source .*junk.mp4.* with OpenCV"):
        open_source(str(tmp_path / "junk.mp4"))
