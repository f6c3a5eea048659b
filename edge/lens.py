"""``edge lens``: a camera's lens calibrated from pictures of a chessboard, written as the
file ``--undistort`` reads (OpenCV's YAML): cv2.findChessboardCorners in each frame of a
source (a folder of pictures, a recording, a camera), cv2.calibrateCamera over those that
show the whole board. Only the board's inner corners count (``--board 9x6`` for a board of
10x7 squares); the squares' size does not change the lens's numbers, so none is asked for.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.errors import ConfigError
from edge.stream.undistort import Calibration

MIN_BOARDS = 5  # OpenCV's documentation asks for at least 10; fewer than 5 rarely fit


# below this share of the picture inside the boards' corners, edge lens says to cover more:
# outside them the fit's k1..k3 are extrapolated, and they trade off against each other
WELL_COVERED = 0.6


@dataclass(frozen=True)
class LensFit:
    """A lens's Calibration, its RMS reprojection error (pixels), in how many of the frames
    looked at the board was found, and the share of the picture inside the convex hull of
    every corner found (``coverage``: where the fit was measured, not extrapolated)."""

    calibration: Calibration
    rms_px: float
    boards: int
    frames: int
    coverage: float


def board_corners(picture: np.ndarray, board: tuple[int, int]) -> np.ndarray | None:
    """The ``board``'s (columns, rows) inner corners in ``picture`` (RGB or grey), to a tenth
    of a pixel (cv2.cornerSubPix), or None where it does not show whole."""
    import cv2

    grey = picture if picture.ndim == 2 else cv2.cvtColor(picture, cv2.COLOR_RGB2GRAY)
    found, corners = cv2.findChessboardCorners(
        grey, board, flags=cv2.CALIB_CB_ADAPTIVE_THRESH | cv2.CALIB_CB_NORMALIZE_IMAGE
    )
    if not found:
        return None
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 30, 0.01)
    return np.asarray(cv2.cornerSubPix(grey, corners, (5, 5), (-1, -1), criteria))


def calibrate_lens(pictures: Iterable[np.ndarray], board: tuple[int, int]) -> LensFit:
    """The lens that took ``pictures`` (all one size) of a chessboard of ``board`` (columns,
    rows) inner corners; a ConfigError where fewer than MIN_BOARDS show it whole."""
    import cv2

    cols, rows = board
    plane = np.zeros((cols * rows, 3), np.float32)
    plane[:, :2] = np.mgrid[0:cols, 0:rows].T.reshape(-1, 2)
    found: list[np.ndarray] = []
    size: tuple[int, int] | None = None
    frames = 0
    for picture in pictures:
        frames += 1
        hw = (picture.shape[0], picture.shape[1])
        if size is None:
            size = hw
        elif hw != size:
            raise ConfigError(
                f"frame {frames} is {hw[1]}x{hw[0]}, the first {size[1]}x{size[0]}: one camera's size"
            )
        corners = board_corners(picture, board)
        if corners is not None:
            found.append(corners)
    if size is None or len(found) < MIN_BOARDS:
        raise ConfigError(
            f"the {cols}x{rows} board's inner corners were found in {len(found)} of {frames} frame(s); "
            f"at least {MIN_BOARDS} are needed (--board counts inner corners: a board of 10x7 squares "
            "is 9x6; each picture must show the whole board, from several angles)"
        )
    rms, matrix, distortion, _, _ = cv2.calibrateCamera(
        [plane] * len(found), found, (size[1], size[0]), None, None
    )
    calibration = Calibration(
        np.asarray(matrix, np.float64), np.asarray(distortion, np.float64).reshape(-1), size
    )
    hull = cv2.convexHull(np.concatenate(found).reshape(-1, 2).astype(np.float32))
    coverage = float(cv2.contourArea(hull)) / (size[0] * size[1])
    return LensFit(calibration, float(rms), len(found), frames, coverage)


def write_calibration(path: str | Path, calibration: Calibration) -> None:
    """``calibration`` as OpenCV's YAML (read_calibration reads it back), written whole or not at all."""
    import cv2

    from edge.util.fs import atomic_path

    with atomic_path(path) as tmp:
        fs = cv2.FileStorage(str(tmp), cv2.FILE_STORAGE_WRITE | cv2.FILE_STORAGE_FORMAT_YAML)
        if not fs.isOpened():  # else an empty file would be renamed into place
            raise ConfigError(f"the lens calibration {str(path)!r} cannot be written")
        fs.write("image_width", calibration.size[1])
        fs.write("image_height", calibration.size[0])
        fs.write("camera_matrix", calibration.matrix)
        fs.write("distortion_coefficients", calibration.distortion.reshape(1, -1))
        fs.release()


def frames_of(source: str, *, every: int = 1, max_frames: int | None = None) -> Iterable[np.ndarray]:
    """Every ``every``-th frame's picture of ``source`` (edge's source URIs), ``max_frames``
    of them at most. A file or folder is read as fast as it gives frames, and the frames in
    between are passed over without being converted where the source can (``skip``)."""
    from edge.stream.sources import open_source, unpace

    src = open_source(source)
    try:
        unpace(src)
        skip = getattr(src, "skip", None)
        taken = 0
        for i in itertools.count():
            if i % every and skip is not None:
                if not skip():
                    return
                continue
            frame = src.read()
            if frame is None:
                return
            if i % every == 0:
                yield frame.image
                taken += 1
                if max_frames is not None and taken >= max_frames:
                    return
    finally:
        src.close()


def describe(fit: LensFit, path: str | Path) -> str:
    """What edge lens says of a fit written to ``path``."""
    c = fit.calibration
    fx = float(c.matrix[0, 0])
    nominal = math.degrees(2 * math.atan(c.size[1] / (2 * fx)))
    cover = f"the boards' corners spanned {fit.coverage:.0%} of the picture"
    if fit.coverage < WELL_COVERED:
        cover += " (the fit is extrapolated beyond them: show the board near the edges and corners too)"
    return (
        f"the board was found in {fit.boards} of {fit.frames} frames; {cover}; reprojection error "
        f"{fit.rms_px:.2f} px (RMS); focal length {fx:.1f} px, {nominal:.1f} degrees across at the lens's "
        f"centre, {c.hfov_deg:.1f} once undistorted; written to {path} (edge run --undistort {path})"
    )
