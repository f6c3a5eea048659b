"""edge rig FILE --new: a rig begun from the USB cameras plugged in, each by udev's stable name."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from edge.cli import main
from edge.cli_rig import read_rig
from edge.errors import ConfigError
from edge.rig_new import new_rig_text, write_new_rig
from tests.stream.test_cameras import v4l2_tree

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def test_a_new_rig_names_each_plugged_in_camera_by_its_stable_name(tmp_path: Path) -> None:
    """Two USB cameras (each's capture node, by-id first) and a codec's node: the cameras become
    cam0 and cam1, each setting to fill in commented; the codec is said, commented out. The
    rig reads as edge run reads a rig, and then, once a setting is filled in, takes it."""
    root = tmp_path / "board"
    v4l2_tree(root)
    rig = tmp_path / "rigs" / "car.toml"
    named = write_new_rig(rig, root=root)
    assert [camera["node"] for _, _, camera in named] == ["/dev/video0", "/dev/video2"]
    text = rig.read_text()
    assert read_rig(rig).settings["camera"] == [
        ("cam0", "/dev/v4l/by-id/usb-046d_HD_Pro_Webcam_C920_1234ABCD-video-index0"),
        ("cam1", "/dev/v4l/by-id/usb-Generic_USB_Camera_200901010001-video-index0"),
    ]
    assert "# HD Pro Webcam C920, now /dev/video0" in text
    assert "# /dev/video10 (bcm2835-codec-decode): no udev link; a camera?" in text
    assert list(tomllib.loads(text)["cameras"]) == ["cam0", "cam1"], "the codec stays a comment"
    # the commented settings are a rig's own: uncommented, they read
    filled = text.replace("# facing = ", "facing = ").replace("# hfov = ", "hfov = ")
    rig.write_text(filled.replace("# path-width = ", "path-width = "))
    taken = read_rig(rig)
    assert taken.settings["hfov"] == [("cam0", 60.0), ("cam1", 60.0)] and taken.path_width == 2.0
    with pytest.raises(ConfigError, match="exists; --new writes a new one"):
        write_new_rig(rig, root=root)
    with pytest.raises(ConfigError, match="rig file '/proc/rigs/car.toml' cannot be written: "):
        write_new_rig("/proc/rigs/car.toml", root=root)
    assert rig.read_text() == filled.replace("# path-width = ", "path-width = "), "not replaced"


def test_no_camera_to_begin_a_rig_with_is_said(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ConfigError, match=r"\(V4L2 nodes udev names no camera: /dev/video10 \(codec\)\)"):
        new_rig_text([{"node": "/dev/video10", "name": "codec", "links": []}])
    # this machine has no camera: the command says so and writes nothing
    if Path("/sys/class/video4linux").is_dir() and any(Path("/dev/v4l").glob("by-*/*")):
        pytest.skip("this machine has a camera plugged in")
    assert main(["rig", str(tmp_path / "car.toml"), "--new"]) == 2
    assert "no USB or CSI camera is plugged in to begin a rig with" in capsys.readouterr().err
    assert main(["rig", str(tmp_path / "car.toml"), "--new", "--json"]) == 2
    assert "--new writes " in capsys.readouterr().err
    assert not (tmp_path / "car.toml").exists()


def test_a_jetsons_csi_sensors_are_csi_cameras(tmp_path: Path) -> None:
    """Two CSI sensors' capture nodes (tegra's VI names them vi-output) beside a USB camera:
    csi://0 and csi://1 in their nodes' order, the USB camera by its by-id name, each said."""
    root = tmp_path / "jetson"
    for node, name in (("video0", "vi-output, imx219 9-0010"), ("video1", "vi-output, imx219 10-0010")):
        folder = root / "sys/class/video4linux" / node
        folder.mkdir(parents=True)
        (folder / "name").write_text(name + "\n")
        (folder / "index").write_text("0\n")
    folder = root / "sys/class/video4linux/video2"
    folder.mkdir()
    (folder / "name").write_text("HD Pro Webcam C920\n")
    (folder / "index").write_text("0\n")
    (root / "dev/v4l/by-id").mkdir(parents=True)
    (root / "dev/v4l/by-id/usb-046d_C920-video-index0").symlink_to("../../video2")
    rig = tmp_path / "car.toml"
    named = write_new_rig(rig, root=root)
    assert [(name, source) for name, source, _ in named] == [
        ("cam0", "csi://0"),
        ("cam1", "csi://1"),
        ("cam2", "/dev/v4l/by-id/usb-046d_C920-video-index0"),
    ]
    assert dict(read_rig(rig).settings["camera"]) == {name: source for name, source, _ in named}
    from edge.info import camera_lines
    from edge.stream.cameras import v4l2_cameras

    assert camera_lines(v4l2_cameras(root))[1:3] == [
        "    /dev/video0  vi-output, imx219 9-0010  csi://0",
        "    /dev/video1  vi-output, imx219 10-0010  csi://1",
    ]
    assert (
        "# vi-output, imx219 10-0010, now /dev/video1; a CSI sensor read through the ISP" in rig.read_text()
    )
