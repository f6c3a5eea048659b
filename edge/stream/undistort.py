"""A wide-angle camera's frames undistorted as they are read (``--undistort CALIBRATION``), so
that straight lines are straight: the flat road's row-to-distance rule and the objects'
bearings (edge.postprocess.ground, tracks) are a pinhole camera's, which a dash camera's
120-degree lens bends out of shape towards the picture's edges.

The calibration is OpenCV's (cv2.calibrateCamera: a camera matrix and the distortion
coefficients k1 k2 p1 p2 [k3 [k4 k5 k6]]; or cv2.fisheye.calibrate's k1 k2 k3 k4, for lenses
past 150 degrees, where ``distortion_model`` says ``equidistant`` or ``fisheye``), read from
the file OpenCV's FileStorage writes (YAML, XML or JSON) or from a ROS camera_info YAML
(camera_calibration's): the same names, ``camera_matrix`` and ``distortion_coefficients``,
with ``image_width`` and ``image_height``.
Each frame is remapped onto the pinhole camera that keeps only pixels the lens saw
(cv2.getOptimalNewCameraMatrix with alpha 0; for a fisheye,
cv2.fisheye.estimateNewCameraMatrixForUndistortRectify with balance 0), whose horizontal
field of view the source then gives the objects' placement, as a camera that knows its own
does.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import ConfigError, SourceError
from edge.stream.pictures import PictureSource

# ROS camera_info's distortion_model names (OpenCV's files have none: the pinhole model)
PINHOLE_MODELS = ("plumb_bob", "rational_polynomial")
FISHEYE_MODELS = ("equidistant", "fisheye")


@dataclass(frozen=True)
class Calibration:
    """A camera's matrix (3x3, pixels), its distortion coefficients, and the size (height,
    width) of the pictures it was made from; ``path``: where it was read from."""

    matrix: np.ndarray
    distortion: np.ndarray
    size: tuple[int, int]
    path: str = ""
    fisheye: bool = False  # cv2.fisheye's model (k1..k4 of the angle), not cv2.calibrateCamera's

    def matrix_at(self, size: tuple[int, int]) -> np.ndarray:
        """The lens's camera matrix for pictures of ``size`` (height, width), of the same shape
        as the calibration's: scaled with the width."""
        matrix = self.matrix.copy()
        matrix[:2] *= size[1] / self.size[1]
        return matrix

    def pinhole(self, size: tuple[int, int]) -> np.ndarray:
        """The undistorted pictures' camera matrix at ``size`` (height, width): the pixels the
        lens saw only, scaled from the calibration's size."""
        import cv2

        h, w = size
        matrix = self.matrix_at(size)
        if self.fisheye:
            new = cv2.fisheye.estimateNewCameraMatrixForUndistortRectify(
                matrix, self.distortion, (w, h), np.eye(3), balance=0.0
            )
        else:
            new, _ = cv2.getOptimalNewCameraMatrix(matrix, self.distortion, (w, h), 0.0, (w, h))
        return np.asarray(new, np.float64)

    @functools.cached_property  # an OpenCV fit, asked for by the source and the run's start note
    def hfov_deg(self) -> float:
        """The undistorted pictures' horizontal field of view (any size of the same shape)."""
        fx = float(self.pinhole(self.size)[0, 0])
        return math.degrees(2.0 * math.atan(self.size[1] / (2.0 * fx)))


def _numbers(fs: Any, key: str, path: str) -> np.ndarray:
    node = fs.getNode(key)
    if node.empty():
        raise ConfigError(
            f"camera calibration {path!r} has no {key} (expected OpenCV's or ROS camera_info's)"
        )
    data = node.getNode("data") if node.isMap() else node
    if data.isSeq():
        return np.asarray([data.at(i).real() for i in range(data.size())], np.float64)
    values = data.mat()
    if values is None:
        raise ConfigError(f"camera calibration {path!r}: {key} holds no numbers")
    return np.asarray(values, np.float64).reshape(-1)


def read_calibration(path: str | Path) -> Calibration:
    """The Calibration in ``path``; a ConfigError naming the file and what it lacks."""
    import cv2

    shown = str(path)
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"camera calibration {shown!r} cannot be read: {exc}") from exc
    if not text.lstrip().startswith(("%YAML", "<", "{")):  # a ROS camera_info YAML has no directive
        text = "%YAML:1.0\n---\n" + text
    try:
        fs = cv2.FileStorage(text, cv2.FILE_STORAGE_READ | cv2.FILE_STORAGE_MEMORY)
    except cv2.error as exc:
        raise ConfigError(f"camera calibration {shown!r} is not OpenCV's YAML, XML or JSON: {exc}") from exc
    try:
        matrix = _numbers(fs, "camera_matrix", shown)
        distortion = _numbers(fs, "distortion_coefficients", shown)
        size = (fs.getNode("image_height").real(), fs.getNode("image_width").real())
        model = fs.getNode("distortion_model").string() if not fs.getNode("distortion_model").empty() else ""
    finally:
        fs.release()
    if matrix.size != 9 or not np.isfinite(matrix).all():
        raise ConfigError(
            f"camera calibration {shown!r}: camera_matrix has {matrix.size} numbers, expected 3x3"
        )
    matrix = matrix.reshape(3, 3)
    if matrix[0, 0] <= 0 or matrix[1, 1] <= 0:
        raise ConfigError(
            f"camera calibration {shown!r}: focal lengths {matrix[0, 0]:g}, {matrix[1, 1]:g} must be above 0"
        )
    fisheye = model.lower() in FISHEYE_MODELS
    if model and not fisheye and model.lower() not in PINHOLE_MODELS:
        raise ConfigError(
            f"camera calibration {shown!r}: distortion_model {model!r} is not one edge takes "
            f"({', '.join(PINHOLE_MODELS + FISHEYE_MODELS)})"
        )
    if fisheye and (distortion.size != 4 or not np.isfinite(distortion).all()):
        raise ConfigError(
            f"camera calibration {shown!r}: a fisheye ({model}) calibration has 4 finite distortion "
            f"coefficients (k1 k2 k3 k4), this one {distortion.size}"
        )
    if not fisheye and (distortion.size not in (4, 5, 8) or not np.isfinite(distortion).all()):
        raise ConfigError(
            f"camera calibration {shown!r}: {distortion.size} distortion coefficients, expected 4, 5 or 8 "
            "(k1 k2 p1 p2 [k3 [k4 k5 k6]]: OpenCV's model; a fisheye's k1-k4 need distortion_model: "
            "equidistant)"
        )
    if not (size[0] > 0 and size[1] > 0):
        raise ConfigError(f"camera calibration {shown!r} gives no image_width and image_height")
    return Calibration(matrix, distortion, (int(size[0]), int(size[1])), shown, fisheye)


class Undistorter:
    """Frames of one size remapped through ``calibration`` (cv2.remap of maps made once)."""

    def __init__(self, calibration: Calibration, size: tuple[int, int]) -> None:
        import cv2

        h, w = size
        ch, cw = calibration.size
        if abs(w * ch - h * cw) > max(cw, ch):  # another shape: the matrix does not scale to it
            raise SourceError(
                f"frames {w}x{h} (width x height) cannot be undistorted with {calibration.path!r}, "
                f"made from {cw}x{ch} pictures: another shape (calibrate the camera at this size)"
            )
        matrix = calibration.matrix_at(size)
        self.size = size
        self.pinhole = calibration.pinhole(size)
        if calibration.fisheye:
            self._maps = cv2.fisheye.initUndistortRectifyMap(
                matrix, calibration.distortion, np.eye(3), self.pinhole, (w, h), cv2.CV_16SC2
            )
        else:
            self._maps = cv2.initUndistortRectifyMap(
                matrix, calibration.distortion, None, self.pinhole, (w, h), cv2.CV_16SC2
            )

    def __call__(self, image: np.ndarray) -> np.ndarray:
        import cv2

        return cv2.remap(image, self._maps[0], self._maps[1], cv2.INTER_LINEAR)


class UndistortedSource(PictureSource):
    """``source`` with each frame undistorted (Undistorter, made again when the frames'
    size changes: a playlist's videos); its field of view the calibration's, its road's
    plane unknown (the pinhole is another camera)."""

    def __init__(self, source: Any, calibration: Calibration) -> None:
        super().__init__(source, hfov_deg=calibration.hfov_deg, ground=None)
        self.calibration = calibration
        self._undistort: Undistorter | None = None

    def change(self, image: np.ndarray) -> np.ndarray:
        size = (image.shape[0], image.shape[1])
        if self._undistort is None or self._undistort.size != size:
            self._undistort = Undistorter(self.calibration, size)
        return self._undistort(image)


def calibration_of(given: str | Path | Calibration | None) -> Calibration | None:
    """``given``, or the Calibration its file holds (read_calibration); None for none."""
    return given if given is None or isinstance(given, Calibration) else read_calibration(given)


def undistorted(source: Any, calibration: Calibration | None) -> Any:
    """``source``, undistorted where a ``calibration`` is given (UndistortedSource)."""
    return source if calibration is None else UndistortedSource(source, calibration)
