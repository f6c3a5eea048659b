"""Camera and stream URIs: what OpenCV is asked to open, and the errors for what cannot be."""

from __future__ import annotations

import re
import sys
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

import cv2
import pytest

from edge.errors import SourceError
from edge.stream.cameras import Asked, asked, csi_pipeline, gstreamer_available, hidden_opencv, spec_for
from edge.stream.sources import open_source


def test_v4l2_options_become_capture_properties() -> None:
    spec = spec_for("/dev/video2?fourcc=MJPG&width=1280&height=720&fps=30")
    assert spec.target == "/dev/video2" and spec.api == "v4l2"
    names = [name for name, _ in spec.props]
    # the pixel format first: it decides which sizes and rates the camera offers
    assert names == [
        "CAP_PROP_FOURCC",
        "CAP_PROP_FRAME_WIDTH",
        "CAP_PROP_FRAME_HEIGHT",
        "CAP_PROP_FPS",
        "CAP_PROP_BUFFERSIZE",
    ]
    assert dict(spec.props)["CAP_PROP_FOURCC"] == cv2.VideoWriter.fourcc(*"MJPG")
    assert spec.requested == {"width": 1280.0, "height": 720.0, "fps": 30.0}
    assert spec_for("/dev/video0").props == [("CAP_PROP_BUFFERSIZE", 1.0)]


def test_csi_pipeline_for_jetson() -> None:
    spec = spec_for("csi://1?width=1920&height=1080&fps=60&flip=2")
    assert spec.api == "gstreamer"
    assert spec.target == csi_pipeline(1, 1920, 1080, 60, 2)
    assert spec.target.startswith("nvarguscamerasrc sensor-id=1 ! video/x-raw(memory:NVMM),width=1920,")
    assert "framerate=60/1" in spec.target and "flip-method=2" in spec.target
    assert spec.target.endswith("appsink drop=true max-buffers=1 sync=false")
    assert "sensor-id=0" in spec_for("csi://").target


def test_network_streams_are_tuned_for_latency() -> None:
    spec = spec_for("rtsp://cam.local:554/live?channel=1#transport=udp")
    assert spec.api == "ffmpeg" and spec.target == "rtsp://cam.local:554/live?channel=1"
    assert spec.ffmpeg_options == "rtsp_transport;udp|fflags;nobuffer|flags;low_delay|max_delay;0"
    http = spec_for("http://127.0.0.1:8080/stream.mjpg")
    assert http.ffmpeg_options == "fflags;nobuffer|flags;low_delay|max_delay;0"
    gst = spec_for("rtsp://cam/live#backend=gstreamer&latency=50")
    assert gst.api == "gstreamer"
    assert gst.target.startswith('rtspsrc location="rtsp://cam/live" latency=50 protocols=tcp ! decodebin')
    assert (
        spec_for("gst://videotestsrc ! videoconvert ! appsink").target
        == "videotestsrc ! videoconvert ! appsink"
    )


@pytest.mark.parametrize(
    "uri,match",
    [
        ("/dev/videoX", "expected /dev/videoN"),
        ("/dev/video0?width=wide", "width='wide' is not an integer"),
        ("/dev/video0?fps=-5", "fps='-5' must be positive"),
        ("/dev/video0?fourcc=MJPEG", "fourcc='MJPEG' must be four characters"),
        ("/dev/video0?zoom=2", "unknown options \\['zoom'\\]"),
        ("csi://0?flip=9", "flip must be 0..7"),
        ("csi://front", "csi://N"),
        ("csi://²", "csi://N"),  # str.isdigit() takes it, int() does not
        ("/dev/video²", "expected /dev/videoN"),
        ("rtsp://cam/live#transport=quic", "transport='quic'; expected tcp or udp"),
        ("rtsp://cam/live#backend=vlc", "backend='vlc'; expected ffmpeg or gstreamer"),
        ("gst://", "expected gst://PIPELINE"),
        ("gst://videotestsrc ! autovideosink", "must end in an appsink"),
    ],
)
def test_bad_camera_uris(uri: str, match: str) -> None:
    with pytest.raises(SourceError, match=match):
        open_source(uri)


@pytest.mark.skipif(gstreamer_available(), reason="this OpenCV has GStreamer")
@pytest.mark.parametrize(
    "uri", ["csi://0", "gst://videotestsrc ! appsink", "rtsp://cam/live#backend=gstreamer"]
)
def test_missing_gstreamer_is_a_clear_error(uri: str) -> None:
    with pytest.raises(SourceError, match="needs OpenCV built with GStreamer.*JetPack"):
        open_source(uri)


def _opencv_package(site: Path) -> Path:
    (site / "cv2").mkdir(parents=True)
    init = site / "cv2" / "__init__.py"
    init.write_text("")
    return init


def test_an_opencv_behind_the_loaded_one_is_found(tmp_path: Path) -> None:
    wheel = _opencv_package(tmp_path / "venv" / "site-packages")
    system = _opencv_package(tmp_path / "usr" / "dist-packages")
    path = [str(tmp_path / "venv" / "site-packages"), "", str(tmp_path / "usr" / "dist-packages")]
    assert hidden_opencv(str(wheel), path) == str(system)
    assert hidden_opencv(str(wheel), path[:2]) is None
    # Debian's OpenCV is one extension module, not a package: it does not hide itself
    single = tmp_path / "debian" / f"cv2{EXTENSION_SUFFIXES[0]}"  # e.g. cv2.cpython-311-x86_64-linux-gnu.so
    single.parent.mkdir()
    single.write_bytes(b"")
    assert hidden_opencv(str(single), [str(single.parent)]) is None
    assert hidden_opencv(str(single), [str(single.parent), path[2]]) == str(system)


@pytest.mark.skipif(gstreamer_available(), reason="this OpenCV has GStreamer")
def test_missing_gstreamer_names_the_opencv_the_wheel_hides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a Jetson venv made with --system-site-packages: pip's wheel comes before JetPack's OpenCV
    system = _opencv_package(tmp_path / "dist-packages")
    monkeypatch.setattr(sys, "path", [*sys.path, str(tmp_path / "dist-packages")])
    with pytest.raises(SourceError) as err:
        open_source("csi://0")
    assert f"another OpenCV is installed ({system})" in str(err.value)
    assert "pip uninstall opencv-python-headless" in str(err.value)


def test_unreachable_stream_fails_at_open() -> None:
    # a refused connection on loopback: fails at once, not after the reconnect loop
    with pytest.raises(SourceError, match="cannot open source 'http://127.0.0.1:9/x.mjpg'.*unreachable"):
        open_source("http://127.0.0.1:9/x.mjpg")


def test_a_camera_by_udevs_stable_name() -> None:
    """/dev/v4l/by-id/... and by-path/... are V4L2 cameras with /dev/videoN's options, live,
    read from no file; the link is what OpenCV is given to follow (at each open)."""
    from edge.stream.sources import is_live, source_file

    uri = "/dev/v4l/by-id/usb-046d_HD_Pro_Webcam_C920_1234ABCD-video-index0?width=640&fps=30"
    spec = spec_for(uri)
    assert spec.api == "v4l2" and spec.target == uri.partition("?")[0]
    assert spec.requested == {"width": 640.0, "fps": 30.0}
    by_path = "/dev/v4l/by-path/platform-3610000.usb-usb-0:2.1:1.0-video-index0"
    assert is_live(by_path) and source_file(by_path) is None
    assert spec_for(by_path).api == "v4l2"


def test_a_stable_name_is_followed_to_the_node_it_leads_to_now(tmp_path: Path) -> None:
    """udev's link is followed when the camera opens: to the node it leads to then (another
    after a replug); one leading nowhere is a camera unplugged, said with where to look."""
    from edge.stream.cameras import v4l2_node

    node = tmp_path / "video4"
    node.touch()
    link = tmp_path / "by-id" / "usb-cam-video-index0"
    link.parent.mkdir()
    link.symlink_to(node)
    assert v4l2_node(str(link)) == str(node)
    assert v4l2_node("/dev/video2") == "/dev/video2"
    node.unlink()
    (tmp_path / "video6").touch()
    with pytest.raises(
        SourceError, match=f"is not plugged in, or is named otherwise: ls {link.parent} lists"
    ):
        v4l2_node(str(link))
    link.unlink()
    link.symlink_to(tmp_path / "video6")  # replugged: another node
    assert v4l2_node(str(link)) == str(tmp_path / "video6")


@pytest.mark.parametrize(
    ("uri", "said"),
    [
        (
            "/dev/v4l/by-id/usb-nothing-here-video-index0",
            "is not plugged in, or is named otherwise: ls /dev/v4l/by-id",
        ),
        ("/dev/v4l/by-id", "is a folder of cameras; name one of them"),
        ("/dev/v4l/by-path/x?zoom=2", "unknown options \\['zoom'\\]"),
    ],
)
def test_a_stable_name_that_opens_no_camera_is_said(uri: str, said: str) -> None:
    with pytest.raises(SourceError, match=said):
        open_source(uri)


def test_two_names_of_one_camera_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A camera opens once: its udev name and its node, given to two cameras, are one device
    (the link is followed as udev made it; here its target stands in for a real udev link)."""
    import os

    from edge.errors import ConfigError
    from edge.stream.multicam import check_cameras

    link = "/dev/v4l/by-id/usb-cam-video-index0"
    real = os.path.realpath
    monkeypatch.setattr(os.path, "realpath", lambda p: "/dev/video2" if p == link else real(p))
    with pytest.raises(ConfigError, match=f"both open {link} \\(/dev/video2\\), which opens once"):
        check_cameras([("front", "/dev/video2?fps=30"), ("rear", f"{link}?width=640")])
    assert check_cameras([("front", "/dev/video4"), ("rear", link)]) == {"front": "/dev/video4", "rear": link}


def v4l2_tree(root: Path) -> None:
    """A copy of what a board with two USB cameras shows: each camera two nodes (its capture,
    index 0, and its metadata, index 1), udev's by-id and by-path links (relative, as udev
    makes them) to each."""
    for node, name, index in (
        ("video0", "HD Pro Webcam C920", "0"),
        ("video1", "HD Pro Webcam C920", "1"),
        ("video2", "USB 2.0 Camera: USB Camera", "0"),
        ("video3", "USB 2.0 Camera: USB Camera", "1"),
        ("video10", "bcm2835-codec-decode", None),  # a codec's node: no index file
    ):
        folder = root / "sys/class/video4linux" / node
        folder.mkdir(parents=True)
        (folder / "name").write_text(name + "\n")
        if index is not None:
            (folder / "index").write_text(index + "\n")
        (root / "dev" / node).parent.mkdir(parents=True, exist_ok=True)
        (root / "dev" / node).touch()
    by_id, by_path = root / "dev/v4l/by-id", root / "dev/v4l/by-path"
    by_id.mkdir(parents=True)
    by_path.mkdir(parents=True)
    for link, node in (
        ("usb-046d_HD_Pro_Webcam_C920_1234ABCD-video-index0", "video0"),
        ("usb-046d_HD_Pro_Webcam_C920_1234ABCD-video-index1", "video1"),
        ("usb-Generic_USB_Camera_200901010001-video-index0", "video2"),
    ):
        (by_id / link).symlink_to(f"../../{node}")
    (by_path / "platform-3610000.usb-usb-0:2.1:1.0-video-index0").symlink_to("../../video2")


def test_the_cameras_plugged_in_are_listed_with_their_stable_names(tmp_path: Path) -> None:
    from edge.info import camera_lines
    from edge.stream.cameras import v4l2_cameras

    v4l2_tree(tmp_path)
    cameras = v4l2_cameras(tmp_path)
    assert cameras == [
        {
            "node": "/dev/video0",
            "name": "HD Pro Webcam C920",
            "links": ["/dev/v4l/by-id/usb-046d_HD_Pro_Webcam_C920_1234ABCD-video-index0"],
        },
        {
            "node": "/dev/video2",
            "name": "USB 2.0 Camera: USB Camera",
            "links": [
                "/dev/v4l/by-id/usb-Generic_USB_Camera_200901010001-video-index0",
                "/dev/v4l/by-path/platform-3610000.usb-usb-0:2.1:1.0-video-index0",
            ],
        },
        {"node": "/dev/video10", "name": "bcm2835-codec-decode", "links": []},
    ]
    assert camera_lines(cameras)[1] == (
        "    /dev/video0  HD Pro Webcam C920  "
        "/dev/v4l/by-id/usb-046d_HD_Pro_Webcam_C920_1234ABCD-video-index0"
    )
    assert camera_lines(cameras)[3].endswith("bcm2835-codec-decode  (no udev link)")
    assert v4l2_cameras(tmp_path / "nothing") == []
    assert camera_lines([]) == [
        "  cameras (V4L2): none plugged in (csi:// and network cameras are not listed)"
    ]


@pytest.mark.parametrize(
    ("uri", "said"),
    [
        ("/dev/video0?width=wide", "width='wide' is not an integer"),
        ("/dev/video0?speed=3", "unknown options ['speed']"),
        ("csi://0?flip=9", "flip must be 0..7"),
        ("synthetic://?fps=fast", "fps='fast' is not a number"),
        ("synthetic://?size=big", "size 'big' is not HEIGHTxWIDTH"),
    ],
)
def test_what_a_camera_is_asked_for_is_read_as_opening_it_reads_it(uri: str, said: str) -> None:
    """edge.stream.cameras.asked: the options its camera would refuse are refused alike."""
    with pytest.raises(SourceError, match=re.escape(said)):
        asked(uri)
    assert asked("/dev/v4l/by-id/usb-cam-video-index0?width=640&height=480") == Asked((640, 480), None)
    assert asked("csi://0?width=1920&height=1080&flip=1") == Asked((1080, 1920), 30.0)
