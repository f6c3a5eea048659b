"""Why a video file cannot be opened, where that can be told from its bytes: said before OpenCV
tries, so the error names the cause (and FFmpeg prints no line of its own first).

The common case is an MP4 whose recording was cut off: MP4 writes its index (the ``moov``
box) last, so a killed recorder or a power cut leaves frames no reader can find.
"""

from __future__ import annotations

import struct
from pathlib import Path

MP4_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".3gp"})
_BOXES_READ = 10_000  # top-level boxes: a real file has a handful; junk stops the walk sooner


def why_unopenable(path: Path) -> str | None:
    """A sentence on why ``path`` is no video OpenCV can open, or None where its bytes do not
    say (OpenCV is then asked, and its failure given in general words)."""
    try:
        size = path.stat().st_size
    except OSError:
        return None
    if size == 0:
        return "the file is empty (0 bytes)"
    if path.suffix.lower() in MP4_SUFFIXES and _mp4_without_index(path, size):
        return (
            "an MP4 without its index (no 'moov' box), as a recording cut off before it finished leaves "
            "it: its frames cannot be found. Tools such as untrunc rebuild the index from a whole recording "
            "of the same camera; an .mkv recording stays readable when cut off"
        )
    return None


def _mp4_without_index(path: Path, size: int) -> bool:
    """Whether the file's top-level boxes are an MP4's (an ``ftyp`` first) with no ``moov``
    among them. Any other layout is left for OpenCV to judge."""
    try:
        with path.open("rb") as f:
            offset, boxes = 0, list[bytes]()
            while offset + 8 <= size and len(boxes) < _BOXES_READ:
                f.seek(offset)
                length, kind = struct.unpack(">I4s", f.read(8))
                if length == 1:  # a 64-bit size follows the type
                    if offset + 16 > size:
                        break
                    (length,) = struct.unpack(">Q", f.read(8))
                elif length == 0:  # to the end of the file
                    length = size - offset
                boxes.append(kind)
                if length < 8:
                    return False  # not a box: not an MP4 this can read
                offset += length
    except OSError:
        return False
    if len(boxes) >= _BOXES_READ:  # not walked to its end: its index may lie further on
        return False
    return bool(boxes) and boxes[0] == b"ftyp" and b"moov" not in boxes
