"""edge rig FILE: a rig's cameras opened and read at once, before a drive (a real MJPEG
camera over HTTP, synthetic drives, a camera that is not plugged in, real lens files)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge.cli import main
from edge.rig_check import check_camera, result_line
from tests.stream.test_capture import Camera
from tests.stream.test_undistort import write_opencv

GONE = "/dev/v4l/by-id/usb-edge_test_camera_not_here-video-index0"


def test_a_rigs_cameras_are_opened_and_read_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each camera's settings as edge run takes them, then what it gave: a live camera's size
    and rate (from its frames' capture times), a drive's own rate; one not plugged in fails
    the check, said with where to look, and the others are still checked."""
    camera = Camera(fps=30.0)
    rig = tmp_path / "car.toml"
    rig.write_text(
        f'[cameras.front]\nsource = "{camera.url}"\nhfov = 62\n'
        '[cameras.drive]\nsource = "synthetic://?size=64x128&frames=8"\n'
        f'[cameras.rear]\nsource = "{GONE}"\nfacing = "rear"\nhfov = 120\n'
    )
    try:
        assert main(["rig", str(rig), "--frames", "10"]) == 1
    finally:
        camera.unplug()
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"rig {rig}: 3 camera(s)"
    assert lines[1] == f"  front: {camera.url} (facing front, hfov 62)"
    live = lines[2].strip()
    assert live.startswith("ok: 192x64, ") and " over 10 frame(s), the first after " in live, live
    fps = float(live.split(", ")[1].split()[0])
    assert 10 <= fps <= 60, "the camera's 30 fps, on a loaded machine"
    assert (
        lines[4].strip()
        == "ok: 128x64, 17 fps over 8 frame(s), the first after " + lines[4].split("after ")[1]
    )
    assert lines[5] == f"  rear: {GONE} (facing rear, hfov 120)"
    assert lines[6].strip() == (
        f"FAILED: camera {GONE!r} is not plugged in, or is named otherwise: ls /dev/v4l/by-id lists the "
        "cameras there now"
    )
    assert lines[7:-1] == [  # drive's synthetic field of view is its own: not counted here
        "coverage: the cameras see 182 of 360 degrees round the vehicle",
        "  not seen: 31 to 120 degrees (left)",
        "  not seen: -120 to -31 degrees (right)",
        "  not counted (no field of view: hfov or a lens file): drive",
        # mounted at the reference point, the cameras see of the 5 m ring what the bearings say
        "  5 m from the vehicle's reference point, each camera from its place: 182 of 360 degrees seen",
        "  not seen at 5 m: 31 to 120 degrees (left)",
        "  not seen at 5 m: -120 to -31 degrees (right)",
    ]
    assert lines[-1] == "2 of 3 camera(s) ok; not: rear"


def test_the_check_as_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--json: what edge schema rig says it is, a camera that failed and a lens file's reading
    among it; a camera whose check never ended (a driver that hangs) is one too."""
    from edge.rig_check import _unread
    from edge.schemas import check_document
    from tests.stream.test_undistort import write_opencv

    write_opencv(tmp_path / "lens.yml")
    rig = tmp_path / "car.toml"
    rig.write_text(
        '[cameras.front]\nsource = "synthetic://?size=64x128&frames=3"\nhfov = 60\n'
        f'[cameras.rear]\nsource = "{GONE}"\nfacing = "rear"\nundistort = "lens.yml"\n'
    )
    assert main(["rig", str(rig), "--json"]) == 1
    text = capsys.readouterr().out
    assert check_document("rig", text) is None
    said = json.loads(text)
    assert said["rig"] == str(rig)
    front = said["cameras"]["front"]
    assert front["ok"] is True and front["size"] == [128, 64] and front["frames"] == 3
    assert front["source"] == "synthetic://?size=64x128&frames=3" and front["error"] is None
    assert said["cameras"]["rear"]["ok"] is False and said["coverage"]["unknown"] == []
    hung = {**said, "cameras": {"front": {"source": "/dev/video0", **_unread("hangs"), "stretched": None}}}
    assert check_document("rig", json.dumps(hung)) is None
    assert "cameras/a: 'source' is a required property" in (
        check_document("rig", json.dumps({**said, "cameras": {"a": {}}})) or ""
    )


def test_a_camera_that_gives_no_frames_or_stops_is_said(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hung from the start, it does not open; hung after a few frames, the check says how
    many came, and what became of it. (FFmpeg's waits for a stream, 5 s each, made 1 s here:
    what is checked is what the check says, not how long FFmpeg waits.)"""
    import threading

    from edge.stream import cameras

    monkeypatch.setattr(cameras, "OPEN_TIMEOUT_MS", 1000)
    monkeypatch.setattr(cameras, "READ_TIMEOUT_MS", 1000)

    camera = Camera(fps=30.0)
    camera.stalled.set()
    try:
        hung = check_camera(camera.url, frames=5, timeout_s=1.5)
        assert not hung["ok"] and hung["frames"] == 0 and "cannot open source" in hung["error"]
        camera.stalled.clear()
        threading.Timer(0.8, camera.stalled.set).start()
        stops = check_camera(camera.url, frames=1000, timeout_s=2.5)
    finally:
        camera.unplug()
    assert not stops["ok"] and 0 < stops["frames"] < 1000 and stops["error"]
    assert result_line(stops).startswith("FAILED: 192x64, ") and stops["error"] in result_line(stops)


def test_a_lens_of_another_shape_than_the_frames_is_said(tmp_path: Path) -> None:
    """The calibration is of 512x256 pictures: a 2:1 camera's frames take it (it scales with
    the width), a 4:3 one's do not; a file that is no calibration is said by name."""
    lens = write_opencv(tmp_path / "lens.yaml")
    fine = check_camera("synthetic://?size=128x256&frames=2", lens=str(lens))
    assert fine["ok"] and fine["lens"] == {"ok": True, "path": str(lens), "size": [512, 256]}
    assert result_line(fine).endswith("; lens lens.yaml: read")
    other = check_camera("synthetic://?size=96x128&frames=2", lens=str(lens))
    assert (
        not other["ok"]
        and "the calibration is of 512x256 pictures, and the camera gives 128x96" in (other["lens"]["error"])
    )
    assert result_line(other).startswith("FAILED: 128x96, ")
    (tmp_path / "junk.yaml").write_text("not: a calibration\n")
    junk = check_camera("synthetic://?size=128x256&frames=2", lens=str(tmp_path / "junk.yaml"))
    assert not junk["ok"] and "junk.yaml" in junk["lens"]["error"]


def test_a_rig_file_that_is_wrong_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rig = tmp_path / "car.toml"
    rig.write_text('[cameras.front]\nsource = "synthetic://"\nhfov = 400\n')
    assert main(["rig", str(rig)]) == 2
    assert "cameras.front.hfov = 400: expected a field of view" in capsys.readouterr().err


def test_a_camera_the_engines_would_stretch_is_said_with_what_keeps_its_shape(
    tiny_engines: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--engines: a 4:3 camera stretched into the 2:1 engines is said as edge run will say it
    (the engines of its shape to build); the same camera padded, or a 2:1 one, is not; a
    folder the run could not use is refused before any camera opens."""
    rig = tmp_path / "car.toml"
    rig.write_text(
        '[cameras.square]\nsource = "synthetic://?size=96x128&frames=2"\n'
        '[cameras.padded]\nsource = "synthetic://?size=96x128&frames=2"\nfit = "pad"\n'
        '[cameras.wide]\nsource = "synthetic://?size=128x256&frames=2"\n'
    )
    assert main(["rig", str(rig), "--engines", str(tiny_engines)]) == 0
    lines = capsys.readouterr().out.splitlines()
    notes = [i for i, line in enumerate(lines) if line.startswith("    note: ")]
    assert notes == [3], lines  # under the square camera's check alone
    assert "frames 128 wide and 96 high (1.33:1) go into engines of " in lines[3]
    assert "--size 192x256" in lines[3] and "--fit pad or --fit crop" in lines[3]
    assert main(["rig", str(rig), "--engines", str(tiny_engines), "--json"]) == 0
    text = capsys.readouterr().out
    from edge.schemas import check_document

    assert check_document("rig", text) is None
    said = json.loads(text)["cameras"]
    assert said["square"]["stretched"] == lines[3].removeprefix("    note: ")
    assert said["padded"]["stretched"] is None and said["wide"]["stretched"] is None
    assert main(["rig", str(rig), "--engines", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert "engines directory" in err and "does not exist" in err


@pytest.mark.parametrize(
    ("uri", "asked"),
    [
        ("/dev/video0?width=1280&height=720&fps=30&fourcc=MJPG", {"size": [1280, 720], "fps": 30.0}),
        ("/dev/v4l/by-id/usb-cam-video-index0?fps=15", {"size": None, "fps": 15.0}),
        # a CSI camera's pipeline asks its own where the URI names none; a quarter turn swaps
        ("csi://0?width=1920&height=1080", {"size": [1920, 1080], "fps": 30.0}),
        ("csi://1", {"size": [1280, 720], "fps": 30.0}),
        ("csi://0?width=1920&height=1080&fps=60&flip=3", {"size": [1080, 1920], "fps": 60.0}),
        ("csi://0?flip=2", {"size": [1280, 720], "fps": 30.0}),
        ("synthetic://?size=96x128&fps=20", {"size": [128, 96], "fps": 20.0}),
        ("synthetic://", {"size": None, "fps": None}),
        ("drive.mkv", {"size": None, "fps": None}),
        ("http://cam/mjpg?fps=30", {"size": None, "fps": None}),
        ("rtsp://cam/live", {"size": None, "fps": None}),  # a stream's query is the camera's own
        ("/dev/video0?width=wide&height=720", {"size": None, "fps": None}),
    ],
)
def test_what_a_cameras_uri_asks_of_it(uri: str, asked: dict[str, object]) -> None:
    from edge.rig_check import asked_of

    assert asked_of(uri) == asked


def test_a_camera_that_gives_other_than_asked_is_said() -> None:
    """Another size; a rate under 80% of the one asked (a camera that halves its rate in the
    dark, a bus that cannot carry every camera); a file's rate is its own, not a camera's."""
    from edge.rig_check import mismatch

    asked = {"size": [1280, 720], "fps": 30.0}
    assert mismatch(asked, [1280, 720], 29.5, live=True) is None
    assert mismatch(asked, [640, 480], 29.5, live=True) == "asked for 1280x720, it gives 640x480"
    assert mismatch(asked, [1280, 720], 15.0, live=True) == "asked for 30 fps, it gives 15"
    assert mismatch(asked, [1280, 720], 15.0, live=False) is None
    assert mismatch({"size": None, "fps": None}, [640, 480], 5.0, live=True) is None
