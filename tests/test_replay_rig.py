"""edge record --replay-rig FILE: a rig file that replays the drive being recorded through the
car's rig's settings, from wherever the drive's folder is copied to."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from edge.cli import main
from edge.cli_rig import beside, read_rig
from edge.errors import ConfigError
from edge.replay_rig import check_replay_rig, recorded_source, replay_rig, start_offsets
from edge.stream.sources import open_source
from tests.stream.test_capture import Camera
from tests.stream.test_undistort import write_opencv

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

FRONT = "synthetic://?size=128x256&frames=3&seed=0"
REAR = "synthetic://?size=128x256&frames=3&seed=2&lane=right"

CAR = f"""\
path-width = 2.6

[cameras.front]
source = "{FRONT}"
hfov = 48.9
camera-height = 1.2
flip = "horizontal"

[cameras."rear.cam"]
source = "{REAR}"
facing = "rear"
undistort = "lens/rear.yml"
mount-ahead = -2.4
"""


def objects_of(path: Path) -> list[tuple[str, list[dict[str, object]]]]:
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    return sorted(((line["camera"], line["objects"]) for line in lines), key=lambda seen: seen[0])


def test_a_rigs_drive_replays_from_wherever_its_folder_is_copied_as_the_car_would_run_it(
    demo_engines: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The car's rig recorded with the front camera flipped as it was recorded: the replay rig
    names each recording and its lens copy beside it, keeps the car's settings but the flip
    the recording made, and run from another folder after the drive was moved gives exactly
    the objects the car's rig gives with its cameras' sources replaced by the recordings."""
    car = tmp_path / "car"
    (car / "lens").mkdir(parents=True)
    (car / "car.toml").write_text(CAR)
    lens = write_opencv(car / "lens" / "rear.yml")
    monkeypatch.chdir(tmp_path)
    record = ["record", "--rig", "car/car.toml", "drive/{camera}.mkv", "--replay-rig", "drive/replay.toml"]
    assert main([*record, "--flip", "front=horizontal"]) == 0
    assert "replay rig: drive/replay.toml (the drive run again as these cameras: edge run --rig " in (
        capsys.readouterr().err
    )
    assert sorted(p.name for p in (tmp_path / "drive").iterdir()) == [
        "front.mkv",
        "rear.cam.mkv",
        "replay-rear.cam.yml",
        "replay.toml",
    ]
    shutil.move(tmp_path / "drive", tmp_path / "copied")
    elsewhere = tmp_path / "desktop"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    replay = tmp_path / "copied" / "replay.toml"
    assert (tmp_path / "copied" / "replay-rear.cam.yml").read_bytes() == lens.read_bytes()
    taken, car_settings = read_rig(replay), read_rig(car / "car.toml")
    assert taken.settings["camera"] == [
        ("front", str(tmp_path / "copied" / "front.mkv")),
        ("rear.cam", str(tmp_path / "copied" / "rear.cam.mkv")),
    ]
    assert taken.settings["flip"] == [], "the recording made it"
    assert taken.settings["undistort"] == [("rear.cam", str(tmp_path / "copied" / "replay-rear.cam.yml"))]
    for dest in ("hfov", "camera_height", "facing", "mount_ahead"):
        assert taken.settings[dest] == car_settings.settings[dest]
    assert taken.path_width == 2.6
    engines = ["--engines", str(demo_engines)]
    assert main(["run", "--rig", str(replay), *engines, "--sink", "replayed.jsonl"]) == 0
    recordings = [f"--camera=front={tmp_path / 'copied/front.mkv'}"]
    recordings += [f"--camera=rear.cam={tmp_path / 'copied/rear.cam.mkv'}", "--flip", "front=none"]
    assert main(["run", "--rig", str(car / "car.toml"), *recordings, *engines, "--sink", "car.jsonl"]) == 0
    seen = objects_of(elsewhere / "replayed.jsonl")
    assert seen == objects_of(elsewhere / "car.jsonl")
    assert sorted(camera for camera, _ in seen) == ["front"] * 3 + ["rear.cam"] * 3


def test_a_segmented_drives_replay_rig_plays_each_cameras_segments(tmp_path: Path) -> None:
    """Recorded with --segment, each camera's source is the name it was recorded to, which
    plays its segments alone (not those of a camera whose name begins alike), and a folder of
    frames (dir://) is a source as a video is."""
    drive = tmp_path / "drive [1]"  # a folder whose name is a glob's
    argv = ["record", "--camera", "f=synthetic://?size=64x128&fps=10&frames=25", "--segment", "1"]
    argv += ["--camera", "f-2=synthetic://?size=64x128&fps=10&frames=15&seed=3"]
    argv += [str(drive / "{camera}.mkv"), "--replay-rig", str(drive / "replay.toml")]
    assert main(argv) == 0
    cameras = dict(read_rig(drive / "replay.toml").settings["camera"])
    assert tomllib.loads((drive / "replay.toml").read_text())["cameras"]["f"] == {"source": "f.mkv"}
    played = {}
    for name, uri in cameras.items():
        source = open_source(uri)
        played[name] = sum(1 for _ in iter(source.read, None))
        source.close()
    assert played == {"f": 25, "f-2": 15}
    frames = tmp_path / "frames"
    argv = ["record", "--camera", "a=synthetic://?size=64x128&frames=4", f"dir://{frames}/{{camera}}"]
    assert main([*argv, "--replay-rig", str(tmp_path / "frames.toml")]) == 0
    ((_, uri),) = read_rig(tmp_path / "frames.toml").settings["camera"]
    assert uri == str(frames / "a")
    source = open_source(uri)
    assert sum(1 for _ in iter(source.read, None)) == 4
    source.close()


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (
            ["synthetic://?frames=2", "drive.mkv", "--replay-rig", "r.toml"],
            "--replay-rig is for a recording of cameras",
        ),
        (
            ["--camera", "a=synthetic://?frames=2", "http://127.0.0.1:8080"],
            "--replay-rig: camera 'a' records to no video or dir:// sink (its sinks: http://127.0.0.1:8080)",
        ),
        (
            ["--camera", "a=synthetic://?frames=2", "{camera}.mkv", "--replay-rig", "earlier.toml"],
            "--replay-rig: 'earlier.toml' exists, and is not this recording's",
        ),
        (
            ["--camera", "a=synthetic://?frames=2", "d/{camera}.mkv", "--replay-rig", "d/../d/a.mkv"],
            "--replay-rig 'd/../d/a.mkv' is where camera a records",
        ),
        (
            ["--camera", "a=synthetic://?frames=2", "d/{camera}.mkv", "--replay-rig", "d/"],
            "argument --replay-rig: cannot write 'd/': 'd/' names a folder (it ends in '/')",
        ),
    ],
)
def test_a_replay_rig_it_cannot_write_is_refused_before_anything_is_recorded(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    said: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "earlier.toml").write_text("# an earlier drive's\n")
    if "--replay-rig" not in argv:
        argv = [*argv, "--replay-rig", "r.toml"]
    try:
        code = main(["record", *argv])
    except SystemExit as exc:  # argparse's refusal of the option itself
        code = exc.code
    assert code == 2
    assert said in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["earlier.toml"]


def test_a_replay_rig_of_the_same_drive_is_written_again_and_another_only_when_asked(tmp_path: Path) -> None:
    """A service that records to the same names after every boot writes the same replay rig:
    taken; another recording's needs --overwrite."""
    rig = replay_rig(tmp_path / "r.toml", {"a": "a.mkv"})
    rig.path.write_text(rig.text)
    check_replay_rig(rig, overwrite=False)
    other = replay_rig(tmp_path / "r.toml", {"b": "b.mkv"})
    with pytest.raises(ConfigError, match="'.*r.toml' exists, and is not this recording's"):
        check_replay_rig(other, overwrite=False)
    check_replay_rig(other, overwrite=True)
    with pytest.raises(ConfigError, match="camera 'a' records to no video or dir:// sink"):
        recorded_source("a", ["http://127.0.0.1:8080", "-"], folder=tmp_path)


def test_a_camera_named_with_a_dot_is_one_camera(tmp_path: Path) -> None:
    rig = replay_rig(tmp_path / "r.toml", {"rear.left": "x.mkv", "front_1": "y.mkv"})
    assert list(tomllib.loads(rig.text)["cameras"]) == ["rear.left", "front_1"]


def test_a_rigs_sources_are_beside_it() -> None:
    """A relative path (a recording, a folder, a glob of segments) is read from the rig's
    folder, a glob's folder taken as named; absolute paths and other URIs as they are."""
    rig = Path("/drives/run [2]/replay.toml")
    assert beside(rig, "front.mkv") == "/drives/run [2]/front.mkv"
    assert beside(rig, "sub/frames") == "/drives/run [2]/sub/frames"
    assert beside(rig, "f-[0-9]*.mkv") == "/drives/run [[]2]/f-[0-9]*.mkv"
    for kept in (
        "/abs/front.mkv",
        "/dev/video0",
        "/dev/v4l/by-id/usb-cam-video-index0",
        "synthetic://?frames=3",
        "cityscapes://data?fps=5",
        "rtsp://10.0.0.2/stream",
        "csi://0",
        "file:///abs/x.mkv",
    ):
        assert beside(rig, kept) == kept


def test_a_replay_rig_the_system_refuses_ends_the_recording_before_its_first_frame(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """/proc takes no new file (root may write anywhere else): the recording ends as it would
    have begun, its folder not made, and the error names the rig."""
    monkeypatch.chdir(tmp_path)
    argv = ["record", "--camera", "a=synthetic://?frames=2", "x/{camera}.mkv", "--replay-rig", "/proc/r.toml"]
    try:
        code = main(argv)
    except SystemExit as exc:  # a user who may not write /proc is refused by the option's check
        code = exc.code
    assert code == 2 and "--replay-rig" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_each_cameras_start_offset_is_how_long_after_the_first_ones_its_first_frame_came(
    tmp_path: Path,
) -> None:
    """Golden offsets, to the millisecond, from the first frames' capture times; a camera timed
    by its own media clock (None) has none; the rig written with them reads them back, and a
    car rig's own (a replay rig recorded again) is not copied: the drive's are its own."""
    firsts = {"front": 5_000_000_000, "rear": 5_412_345_678, "side": 4_998_999_000, "file": None}
    assert start_offsets(firsts) == {"front": 0.001, "rear": 0.413, "side": 0.0}
    assert start_offsets({"a": None}) == {} and start_offsets({}) == {}
    car = tmp_path / "car.toml"
    car.write_text('[cameras.front]\nsource = "x.mkv"\nstart-offset = 2.5\nhfov = 60\n')
    rig = replay_rig(tmp_path / "r.toml", {"front": "front.mkv", "rear": "rear.mkv"}, rig=car)
    assert "start-offset" not in rig.text
    offset = rig.with_start_offsets({"rear": 0.412})
    rig.path.write_text(offset.text)
    assert tomllib.loads(offset.text)["cameras"] == {
        "front": {"source": "front.mkv", "hfov": 60},
        "rear": {"source": "rear.mkv", "start-offset": 0.412},
    }
    assert read_rig(rig.path).settings["start_offset"] == [("rear", 0.412)]


def test_a_drive_of_live_cameras_carries_their_start_offsets_into_its_replay(
    tiny_engines: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two network cameras recorded: once both have given their first frame the replay rig is
    written again with each one's offset (the earliest 0), said; the drive replays through it,
    each camera's first frame that much after the other's in the drive."""
    monkeypatch.chdir(tmp_path)
    front, rear = Camera(fps=30.0), Camera(fps=5.0, start_seq=500)
    argv = ["record", "--camera", f"front={front.url}", "--camera", f"rear={rear.url}"]
    try:
        assert (
            main([*argv, "drive/{camera}.mkv", "--replay-rig", "drive/replay.toml", "--max-frames", "4"]) == 0
        )
    finally:
        front.unplug()
        rear.unplug()
    said = capsys.readouterr().err
    cameras = tomllib.loads((tmp_path / "drive" / "replay.toml").read_text())["cameras"]
    offsets = {name: table["start-offset"] for name, table in cameras.items()}
    assert set(offsets) == {"front", "rear"} and min(offsets.values()) == 0.0
    assert max(offsets.values()) < 1.0, "each camera's newest frame as the recording began"
    assert (
        f"replay rig: drive/replay.toml: the cameras' start offsets: front {offsets['front']:g} s, " in said
    )
    # read flat out, in drive order: every frame, each camera's first at its offset
    run = ["run", "--rig", "drive/replay.toml", "--engines", str(tiny_engines)]
    assert main([*run, "--sink", "replayed.jsonl"]) == 0
    lines = [json.loads(line) for line in (tmp_path / "replayed.jsonl").read_text().splitlines()]
    assert sorted(line["camera"] for line in lines) == ["front"] * 4 + ["rear"] * 4
    first = {line["camera"]: line["time_unix"] for line in reversed(lines) if line["frame"] == 0}
    assert abs(first["rear"] - first["front"] - (offsets["rear"] - offsets["front"])) <= 2e-6


def test_start_offsets_the_system_refuses_are_a_warning_and_the_drive_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The rig's second writing, mid-drive, refused (/proc takes no new file): said, nothing
    raised (the recording goes on); no offset known (recordings recorded again): not written."""
    from edge.cli_record import _write_start_offsets

    refused = replay_rig("/proc/replay.toml", {"a": "a.mkv", "b": "b.mkv"})
    _write_start_offsets(refused, {"a": 1_000_000_000, "b": 1_250_000_000})
    said = capsys.readouterr().err
    assert "warning: --replay-rig: cannot write the cameras' start offsets into '/proc/replay.toml'" in said
    assert "a replay starts every camera at once" in said
    kept = replay_rig(tmp_path / "r.toml", {"a": "a.mkv"})
    kept.path.write_text(kept.text)
    _write_start_offsets(kept, {"a": None})
    assert kept.path.read_text() == kept.text and capsys.readouterr().err == ""


def test_recordings_recorded_again_keep_the_start_offsets_their_rig_gives(tmp_path: Path) -> None:
    """A replay rig's drive recorded again (its sources files, which share no clock to measure
    offsets by): the new replay rig keeps each camera's offset; the API leaves them out unless
    asked, for a live drive's are measured."""
    rig = tmp_path / "drive.toml"
    rig.write_text(
        f'[cameras.front]\nsource = "{FRONT}"\n\n[cameras.rear]\nsource = "{REAR}"\nstart-offset = 0.25\n'
    )
    again = tmp_path / "again"
    argv = [
        "record",
        "--rig",
        str(rig),
        str(again / "{camera}.mkv"),
        "--replay-rig",
        str(again / "replay.toml"),
    ]
    assert main(argv) == 0
    tables = tomllib.loads((again / "replay.toml").read_text())["cameras"]
    assert tables == {"front": {"source": "front.mkv"}, "rear": {"source": "rear.mkv", "start-offset": 0.25}}
    assert "start-offset" not in replay_rig(tmp_path / "r.toml", {"rear": "rear.mkv"}, rig=rig).text
