"""--undistort: a wide-angle camera's calibration read from OpenCV's and ROS's files, its
frames remapped onto a pinhole camera as they are read, and that camera's field of view
given to the objects; golden values against OpenCV's own point undistortion."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.cli import main
from edge.errors import ConfigError, SourceError
from edge.stream.undistort import Calibration, Undistorter, read_calibration

MATRIX = np.array([[300.0, 0.0, 256.0], [0.0, 300.0, 128.0], [0.0, 0.0, 1.0]])
BARREL = np.array([-0.2, 0.05, 0.0, 0.0, 0.0])  # a wide lens's: the edges pulled in

ROS = """image_width: 512
image_height: 256
camera_name: dashcam
camera_matrix:
  rows: 3
  cols: 3
  data: [300.0, 0.0, 256.0, 0.0, 300.0, 128.0, 0.0, 0.0, 1.0]
distortion_model: plumb_bob
distortion_coefficients:
  rows: 1
  cols: 5
  data: [-0.2, 0.05, 0.0, 0.0, 0.0]
"""


def write_opencv(path: Path, matrix: np.ndarray = MATRIX, distortion: np.ndarray = BARREL) -> Path:
    fs = cv2.FileStorage(str(path), cv2.FILE_STORAGE_WRITE)
    fs.write("image_width", 512)
    fs.write("image_height", 256)
    fs.write("camera_matrix", matrix)
    fs.write("distortion_coefficients", distortion.reshape(1, -1))
    fs.release()
    return path


def test_opencvs_and_ros_files_give_the_same_calibration(tmp_path: Path) -> None:
    (tmp_path / "ros.yaml").write_text(ROS)
    paths = [write_opencv(tmp_path / f"cv.{ext}") for ext in ("yml", "xml", "json")] + [tmp_path / "ros.yaml"]
    for path in paths:
        c = read_calibration(path)
        assert c.size == (256, 512) and c.path == str(path), path
        assert np.allclose(c.matrix, MATRIX) and np.allclose(c.distortion, BARREL), path


@pytest.mark.parametrize(
    ("text", "said"),
    [
        (ROS.replace("camera_matrix", "camera_mat"), "has no camera_matrix"),
        (
            ROS.replace("[-0.2, 0.05, 0.0, 0.0, 0.0]", "[-0.2, 0.05, 0.0]"),
            "3 distortion coefficients, expected 4",
        ),
        (ROS.replace("[300.0, 0.0, 256.0", "[0.0, 0.0, 256.0"), "focal lengths 0, 300 must be above 0"),
        (ROS.replace("image_width: 512\n", ""), "gives no image_width and image_height"),
        (ROS.replace("data: [300.0, 0.0, 256.0, ", "data: ["), "camera_matrix has 6 numbers, expected 3x3"),
    ],
)
def test_a_calibration_that_is_not_one_is_refused_by_name(tmp_path: Path, text: str, said: str) -> None:
    path = tmp_path / "lens.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=f"camera calibration '{path}'.*{said}"):
        read_calibration(path)
    with pytest.raises(ConfigError, match="cannot be read: .*No such file"):
        read_calibration(tmp_path / "missing.yaml")


def test_the_pinhole_camera_and_its_field_of_view() -> None:
    """Without distortion the pinhole is the camera: 512 pixels across at a focal length of
    300 are 2 atan(256 / 300) = 80.950 degrees. A barrel lens's pictures, kept whole, span
    more than the same focal length's pinhole would (the remap's focal length is shorter);
    the field of view is the same at half the size, the matrix half."""
    plain = Calibration(MATRIX, np.zeros(5), (256, 512))
    assert plain.hfov_deg == pytest.approx(math.degrees(2 * math.atan(256 / 300)), abs=1e-6)
    assert plain.hfov_deg == pytest.approx(80.9505, abs=1e-4)
    assert np.allclose(plain.pinhole((256, 512)), MATRIX)
    wide = Calibration(MATRIX, BARREL, (256, 512))
    assert wide.hfov_deg > plain.hfov_deg + 5
    half = wide.pinhole((128, 256))
    assert np.allclose(half[:2], wide.pinhole((256, 512))[:2] / 2, atol=0.5)


def test_a_point_lands_where_opencvs_point_undistortion_puts_it() -> None:
    """A bright spot near a corner of the lens's picture comes out of the remap where
    cv2.undistortPoints sends it (a reference by another path: the point's own iteration,
    not the remap's maps), within a fifth of a pixel; without distortion, every pixel stays."""
    wide = Calibration(MATRIX, BARREL, (256, 512))
    undistort = Undistorter(wide, (256, 512))
    for x, y in ((60.0, 40.0), (450.0, 200.0), (256.0, 128.0)):
        spot = np.zeros((256, 512, 3), np.uint8)
        cv2.circle(spot, (int(x), int(y)), 3, (255, 255, 255), -1)
        out = undistort(spot)[..., 0].astype(np.float64)
        ys, xs = np.nonzero(out)
        seen = (np.average(xs, weights=out[ys, xs]), np.average(ys, weights=out[ys, xs]))
        expected = cv2.undistortPoints(
            np.array([[[int(x), int(y)]]], np.float64), MATRIX, BARREL, P=undistort.pinhole
        ).reshape(2)
        assert seen == pytest.approx(tuple(expected), abs=0.2), (x, y)
    picture = np.random.default_rng(0).integers(0, 256, (256, 512, 3), np.uint8)
    assert np.array_equal(
        Undistorter(Calibration(MATRIX, np.zeros(5), (256, 512)), (256, 512))(picture), picture
    )
    with pytest.raises(SourceError, match=r"frames 200x120 \(width x height\) cannot be undistorted"):
        Undistorter(wide, (120, 200))


def test_edge_run_undistorts_each_camera_given_a_calibration(
    demo_engines: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two cameras, one with its lens's calibration: it is said, and its objects are placed
    (lateral_m) with the calibration's field of view where the other camera has none. The
    undistortion comes before --flip: a quarter turn first would give frames of the other
    shape than the calibration's (and after it the field of view is not the picture's width)."""
    lens = write_opencv(tmp_path / "lens.yml")
    drive = tmp_path / "drive.mp4"
    assert main(["record", "synthetic://?size=256x512&frames=6&seed=2&lane=right", str(drive)]) == 0
    out = tmp_path / "objects.jsonl"
    cameras = ["--camera", f"wide={drive}", "--camera", f"plain={drive}"]
    argv = ["run", *cameras, "--engines", str(demo_engines), "--sink", str(out), "--no-ground"]
    capsys.readouterr()
    assert main([*argv, "--undistort", f"wide={lens}"]) == 0
    err = capsys.readouterr().err
    hfov = read_calibration(lens).hfov_deg
    assert (
        f"the frames of '{drive}' are undistorted with '{lens}': a pinhole camera {hfov:.1f} degrees" in err
    )
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    placed = {
        c: any("lateral_m" in o for x in lines if x["camera"] == c for o in x["objects"])
        for c in ("wide", "plain")
    }
    assert placed == {"wide": True, "plain": False}
    assert main([*argv, "--undistort", f"wide={lens}", "--flip", "wide=clockwise", "--overwrite"]) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert {x["camera"]: x["frame_size"] for x in lines} == {"wide": [512, 256], "plain": [256, 512]}
    assert (
        main(["run", str(drive), "--engines", str(demo_engines), "--undistort", str(tmp_path / "none.yml")])
        == 2
    )
    assert "camera calibration" in capsys.readouterr().err


def test_an_application_undistorts_its_own_images_as_the_readme_says(
    demo_engines: Path, tmp_path: Path
) -> None:
    """The Python API's recipe: the Undistorter before each call, the pinhole's field of view
    in the object tracker; the things found are placed (lateral_m), as edge run places them."""
    from edge.perception import Perception
    from edge.postprocess.tracks import ObjectTracker
    from tests.conftest import source_images

    lens = read_calibration(write_opencv(tmp_path / "lens.yml"))
    undistort = Undistorter(lens, (256, 512))
    images = source_images("synthetic://?size=256x512&frames=3&seed=2&lane=right")
    with Perception.open(demo_engines) as perception:
        perception.object_tracker = ObjectTracker(hfov_deg=lens.hfov_deg)
        seen = [perception(undistort(image)) for image in images]
    objects = [o for s in seen for o in s.objects]
    assert objects and all("lateral_m" in o for o in objects)


FISHEYE = np.array([0.05, -0.01, 0.002, -0.0005])  # k1..k4 of the angle


def test_a_fisheye_calibration_is_undistorted_by_its_own_model(tmp_path: Path) -> None:
    """A ROS camera_info whose distortion_model is equidistant (cv2.fisheye's k1-k4): a spot
    lands where cv2.fisheye.undistortPoints sends it; its 4 coefficients are not read as the
    pinhole model's k1 k2 p1 p2, and a model edge does not know is refused by name."""
    fisheye = (
        ROS.replace("plumb_bob", "equidistant")
        .replace("cols: 5", "cols: 4")
        .replace("[-0.2, 0.05, 0.0, 0.0, 0.0]", "[0.05, -0.01, 0.002, -0.0005]")
        .replace("[300.0, 0.0, 256.0, 0.0, 300.0", "[160.0, 0.0, 256.0, 0.0, 160.0")
    )
    path = tmp_path / "fisheye.yaml"
    path.write_text(fisheye)
    lens = read_calibration(path)
    assert lens.fisheye and np.allclose(lens.distortion, FISHEYE)
    undistort = Undistorter(lens, (256, 512))
    for x, y in ((120.0, 70.0), (400.0, 190.0)):
        spot = np.zeros((256, 512, 3), np.uint8)
        cv2.circle(spot, (int(x), int(y)), 3, (255, 255, 255), -1)
        out = undistort(spot)[..., 0].astype(np.float64)
        ys, xs = np.nonzero(out)
        seen = (np.average(xs, weights=out[ys, xs]), np.average(ys, weights=out[ys, xs]))
        expected = cv2.fisheye.undistortPoints(
            np.array([[[int(x), int(y)]]], np.float64), lens.matrix, FISHEYE, P=undistort.pinhole
        ).reshape(2)
        assert seen == pytest.approx(tuple(expected), abs=0.25), (x, y)
    assert 0 < lens.hfov_deg < 180
    path.write_text(fisheye.replace("cols: 4", "cols: 5").replace("-0.0005]", "-0.0005, 0.0]"))
    with pytest.raises(ConfigError, match=r"a fisheye \(equidistant\) calibration has 4 finite"):
        read_calibration(path)
    path.write_text(ROS.replace("plumb_bob", "kannala"))
    with pytest.raises(ConfigError, match="distortion_model 'kannala' is not one edge takes"):
        read_calibration(path)
