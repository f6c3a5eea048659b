"""Cityscapes: the 19 train classes (ids, colours, things vs stuff) and the dataset layout."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edge.errors import ConfigError, DatasetError

if TYPE_CHECKING:
    from edge.postprocess.ground import GroundPlane


@dataclass(frozen=True)
class TrainClass:
    train_id: int
    label_id: int  # Cityscapes labelId, used in panoptic ids label_id*1000+instance
    name: str
    color: tuple[int, int, int]  # RGB
    thing: bool


TRAIN_CLASSES: tuple[TrainClass, ...] = (
    TrainClass(0, 7, "road", (128, 64, 128), False),
    TrainClass(1, 8, "sidewalk", (244, 35, 232), False),
    TrainClass(2, 11, "building", (70, 70, 70), False),
    TrainClass(3, 12, "wall", (102, 102, 156), False),
    TrainClass(4, 13, "fence", (190, 153, 153), False),
    TrainClass(5, 17, "pole", (153, 153, 153), False),
    TrainClass(6, 19, "traffic light", (250, 170, 30), False),
    TrainClass(7, 20, "traffic sign", (220, 220, 0), False),
    TrainClass(8, 21, "vegetation", (107, 142, 35), False),
    TrainClass(9, 22, "terrain", (152, 251, 152), False),
    TrainClass(10, 23, "sky", (70, 130, 180), False),
    TrainClass(11, 24, "person", (220, 20, 60), True),
    TrainClass(12, 25, "rider", (255, 0, 0), True),
    TrainClass(13, 26, "car", (0, 0, 142), True),
    TrainClass(14, 27, "truck", (0, 0, 70), True),
    TrainClass(15, 28, "bus", (0, 60, 100), True),
    TrainClass(16, 31, "train", (0, 80, 100), True),
    TrainClass(17, 32, "motorcycle", (0, 0, 230), True),
    TrainClass(18, 33, "bicycle", (119, 11, 32), True),
)
THING_TRAIN_IDS: tuple[int, ...] = tuple(c.train_id for c in TRAIN_CLASSES if c.thing)
PALETTE = np.array([c.color for c in TRAIN_CLASSES], dtype=np.uint8)
LABEL_IDS = np.array([c.label_id for c in TRAIN_CLASSES], dtype=np.int32)
# train id -> label id over every uint8, void (255, a cropped frame's cut edges) and any
# other id no class has -> 0, unlabelled
_LABEL_OF_ANY = np.zeros(256, dtype=np.int32)
_LABEL_OF_ANY[: len(LABEL_IDS)] = LABEL_IDS


def label_ids_of(train_ids: np.ndarray) -> np.ndarray:
    """The Cityscapes label ids of a map of train ids; void (255) is unlabelled (0)."""
    return _LABEL_OF_ANY[train_ids]


def thing_to_train_id(thing_index: int) -> int:
    """The instance head's class index (0..7) as a Cityscapes train id (11..18)."""
    return THING_TRAIN_IDS[thing_index]


def label_to_train_lut() -> np.ndarray:
    """labelId -> trainId (255 = ignored), for all 256 byte values."""
    lut = np.full(256, 255, np.uint8)
    for c in TRAIN_CLASSES:
        lut[c.label_id] = c.train_id
    return lut


# ---------------------------------------------------------------------------------------
# The dataset layout. Real Cityscapes and `edge make-synthetic` output share it:
#   leftImg8bit_sequence/{split}/{city}/{city}_{seq:06d}_{frame:06d}_leftImg8bit.png
#   gtFine/{split}/{city}/{name}_gtFine_labelIds.png, _gtFine_instanceIds.png
#   disparity/{split}/{city}/{name}_disparity.png   (uint16, d = (p - 1) / 256, 0 invalid)
#   camera/{split}/{city}/{name}_camera.json        (extrinsic.baseline, intrinsic.fx ...)
# ---------------------------------------------------------------------------------------

_NAME_RE = re.compile(r"^(?P<city>[a-z][a-z_-]*?)_(?P<seq>\d{6})_(?P<frame>\d{6})_leftImg8bit\.png$")


@dataclass(frozen=True)
class FrameRef:
    root: Path
    split: str
    city: str
    seq: int
    frame: int

    @property
    def name(self) -> str:
        return f"{self.city}_{self.seq:06d}_{self.frame:06d}"

    def path(self, kind: str) -> Path:
        """The file of ``kind``: image, labelIds, instanceIds, disparity or camera."""
        d = (self.split, self.city)
        paths = {
            "image": ("leftImg8bit_sequence", f"{self.name}_leftImg8bit.png"),
            "labelIds": ("gtFine", f"{self.name}_gtFine_labelIds.png"),
            "instanceIds": ("gtFine", f"{self.name}_gtFine_instanceIds.png"),
            "disparity": ("disparity", f"{self.name}_disparity.png"),
            "camera": ("camera", f"{self.name}_camera.json"),
        }
        if kind not in paths:
            raise ValueError(f"unknown Cityscapes file kind {kind!r}; known: {', '.join(paths)}")
        top, file = paths[kind]
        return self.root / top / d[0] / d[1] / file

    @property
    def has_gt(self) -> bool:
        return self.path("labelIds").is_file()


def parse_name(file_name: str) -> tuple[str, int, int]:
    """'aachen_000001_000019_leftImg8bit.png' -> ('aachen', 1, 19); DatasetError otherwise."""
    m = _NAME_RE.match(file_name)
    if m is None:
        raise DatasetError(
            f"{file_name!r} is not a Cityscapes image name (expected CITY_SSSSSS_FFFFFF_leftImg8bit.png)"
        )
    return m["city"], int(m["seq"]), int(m["frame"])


def list_frames(root: str | Path, split: str) -> list[list[FrameRef]]:
    """The sequences of a split, each in frame order; sequences ordered by city and number."""
    root = Path(root)
    base = root / "leftImg8bit_sequence" / split
    if not base.is_dir():
        splits = sorted(p.name for p in (root / "leftImg8bit_sequence").glob("*") if p.is_dir())
        raise DatasetError(
            f"{str(base)!r} does not exist: not a Cityscapes-layout folder or no split {split!r}"
            + (f" (splits there: {', '.join(splits)})" if splits else "")
        )
    seqs: dict[tuple[str, int], list[FrameRef]] = {}
    for path in sorted(base.glob("*/*_leftImg8bit.png")):
        city, seq, frame = parse_name(path.name)
        if city != path.parent.name:
            raise DatasetError(f"{str(path)!r} is in folder {path.parent.name!r} but names city {city!r}")
        seqs.setdefault((city, seq), []).append(FrameRef(root, split, city, seq, frame))
    if not seqs:
        raise DatasetError(f"{str(base)!r} holds no *_leftImg8bit.png images")
    return [sorted(v, key=lambda r: r.frame) for _, v in sorted(seqs.items())]


def read_rgb(path: Path) -> np.ndarray:
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise DatasetError(f"{str(path)!r} cannot be decoded as an image")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def read_ids(path: Path) -> np.ndarray:
    """labelIds (uint8) or instanceIds (uint16 in the file) as int32."""
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None or img.ndim != 2:
        raise DatasetError(f"{str(path)!r} is not a single-channel id image")
    return img.astype(np.int32)


def read_camera(path: Path) -> tuple[float, float]:
    """(baseline metres, fx pixels) from a Cityscapes camera json."""
    try:
        cam = json.loads(path.read_text())
        return float(cam["extrinsic"]["baseline"]), float(cam["intrinsic"]["fx"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DatasetError(f"camera file {str(path)!r} is unreadable or lacks baseline/fx: {exc}") from None


def camera_hfov(refs: Iterable[FrameRef]) -> float | None:
    """The horizontal field of view (degrees) of the camera of the first of ``refs`` with a
    readable camera file, 2 atan(w / 2 fx), ``w`` its image's width; None where none has one
    (a broken one is said where its frame's depth is read)."""
    for ref in refs:
        if not ref.has_gt or not (cam := ref.path("camera")).is_file():
            continue
        try:
            _, fx = read_camera(cam)
            width = png_size(ref.path("image"))[1]
        except DatasetError:
            continue
        if fx > 0:
            return math.degrees(2 * math.atan(width / 2 / fx))
    return None


def camera_ground(refs: Iterable[FrameRef]) -> GroundPlane | None:
    """The ground plane of the camera of the first of ``refs`` with a camera file holding its
    height (extrinsic z), pitch and vertical intrinsics (fy, v0), over its image's rows;
    None where none has them."""
    from edge.postprocess.ground import GroundPlane

    for ref in refs:
        if not ref.has_gt or not (path := ref.path("camera")).is_file():
            continue
        try:
            cam = json.loads(path.read_text())
            ext, intr = cam["extrinsic"], cam["intrinsic"]
            return GroundPlane.of_camera(
                height_m=float(ext["z"]),
                pitch_rad=float(ext.get("pitch", 0.0)),
                fy=float(intr["fy"]),
                v0=float(intr["v0"]),
                rows=png_size(ref.path("image"))[0],
            )
        except (OSError, ValueError, KeyError, TypeError, DatasetError, ConfigError):
            continue
    return None


def png_size(path: Path) -> tuple[int, int]:
    """A PNG's (height, width), from its header alone."""
    try:
        with open(path, "rb") as f:
            head = f.read(24)
    except OSError as exc:
        raise DatasetError(f"cannot read {str(path)!r}: {exc}") from None
    if len(head) < 24 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        raise DatasetError(f"{str(path)!r} is not a PNG image")
    return int.from_bytes(head[20:24], "big"), int.from_bytes(head[16:20], "big")


# Cityscapes' stereo rig (the typical values of its camera files), for frames without one
DEFAULT_BASELINE, DEFAULT_FX = 0.209313, 2262.52


def read_depth(ref: FrameRef) -> np.ndarray | None:
    """Metric depth from the disparity PNG and camera json; 0 where disparity is invalid.

    Without a camera json the frame's city is assumed to use Cityscapes' usual rig."""
    disp_path = ref.path("disparity")
    if not disp_path.is_file():
        return None
    p = read_ids(disp_path).astype(np.float64)
    cam = ref.path("camera")
    baseline, fx = read_camera(cam) if cam.is_file() else (DEFAULT_BASELINE, DEFAULT_FX)
    d = (p - 1.0) / 256.0
    with np.errstate(divide="ignore"):
        depth = np.where((p > 0) & (d > 0), baseline * fx / np.where(d > 0, d, 1.0), 0.0)
    return depth.astype(np.float32)


def depth_to_disparity_png(depth: np.ndarray, baseline: float, fx: float) -> np.ndarray:
    """The inverse of read_depth: uint16 p = d * 256 + 1, 0 where depth is 0."""
    with np.errstate(divide="ignore"):
        d = np.where(depth > 0, baseline * fx / np.where(depth > 0, depth, 1.0), 0.0)
    p = np.where(depth > 0, np.round(d * 256.0) + 1.0, 0.0)
    return np.clip(p, 0, 65535).astype(np.uint16)
