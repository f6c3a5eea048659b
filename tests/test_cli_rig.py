"""edge run --rig FILE: a vehicle's cameras and their settings in one TOML file."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from edge.cli import build_parser, main
from edge.cli_rig import EXAMPLE, read_rig, with_rig
from edge.errors import ConfigError

FRONT = "synthetic://?size=128x256&frames=3&seed=0"
REAR = "synthetic://?size=128x256&frames=3&seed=2"

RIG = f"""\
path-width = 2.6

[cameras.front]
source = "{FRONT}"
hfov = 48.9
camera-height = 1.2
horizon = 0.5
mount-ahead = 2.1

[cameras.rear]
source = "{REAR}"
facing = "rear"
hfov = 48.9
mount-offset = 0.3
mount-ahead = -2.4
share = 2
"""


def rig_file(tmp_path: Path, text: str = RIG, name: str = "car.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def objects_of(path: Path) -> list[tuple[str, list[dict[str, object]]]]:
    """Each line's camera and objects, camera by camera (the lines' times, and how the cameras'
    lines interleave, differ from run to run)."""
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    return sorted(((line["camera"], line["objects"]) for line in lines), key=lambda seen: seen[0])


def test_a_rig_runs_as_its_flags_would(
    demo_engines: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The rig's two cameras, each with its own field of view, facing, height and place on the
    vehicle, give exactly the objects the same settings given as flags give; the run begins
    by saying what it took for each camera."""
    rig = rig_file(tmp_path)
    by_rig, by_flags = tmp_path / "rig.jsonl", tmp_path / "flags.jsonl"
    engines = ["--engines", str(demo_engines)]
    assert main(["run", "--rig", str(rig), *engines, "--sink", str(by_rig)]) == 0
    err = capsys.readouterr().err
    assert f"rig {rig}: 2 camera(s)\n" in err
    assert f"  front: {FRONT} (facing front, hfov 48.9, 1.2 m over the road, horizon 0.5, 2.1 m ahead)" in err
    assert f"  rear: {REAR} (facing rear, hfov 48.9, 0.3 m right of the middle, 2.4 m behind)" in err
    flags = [f"--camera=front={FRONT}", f"--camera=rear={REAR}", "--hfov", "48.9", "--path-width", "2.6"]
    flags += ["--camera-height", "front=1.2", "--horizon", "front=0.5", "--facing", "rear=rear"]
    flags += ["--mount-offset", "rear=0.3", "--mount-ahead", "front=2.1", "--mount-ahead", "rear=-2.4"]
    assert main(["run", *flags, "--share", "rear=2", *engines, "--sink", str(by_flags)]) == 0
    seen = objects_of(by_rig)
    assert seen == objects_of(by_flags)
    assert sorted(camera for camera, _ in seen) == ["front"] * 3 + ["rear"] * 3
    placed = {camera: [o["ahead_m"] for o in objs] for camera, objs in seen}
    assert min(placed["front"]) > 2.1 and max(placed["rear"]) < -2.4, "measured from the reference point"


def test_the_command_line_goes_over_the_rig(tmp_path: Path) -> None:
    """A flag's NAME=VALUE replaces the rig's for that camera; a plain VALUE is for the cameras
    the rig gives none; --camera replaces a rig camera's source in its place, or adds one;
    the command line's --path-width goes over the rig's."""
    rig = rig_file(tmp_path)
    parser = build_parser()
    given = ["run", "--rig", str(rig), "--camera", "side=x.mp4", "--camera", "front=drive.mp4"]
    given += ["--hfov", "front=70", "--hfov", "90", "--camera-height", "1.5", "--path-width", "3.1"]
    args = with_rig(parser.parse_args(given))
    assert args.camera == [("front", "drive.mp4"), ("rear", REAR), ("side", "x.mp4")]
    from edge.cli_tracking import fields_of_view, per_camera

    assert fields_of_view(args) == {"front": 70.0, "rear": 48.9, "side": 90.0}
    heights = per_camera(args, args.camera_height, "--camera-height", "M")
    assert heights == {"front": 1.2, "rear": 1.5, "side": 1.5}
    assert args.path_width == 3.1 and args.share == [("rear", 2.0)]
    assert with_rig(args) is args and len(args.camera) == 3, "taken in once"
    plain = with_rig(parser.parse_args(["run", "--rig", str(rig)]))
    assert plain.path_width == 2.6 and plain.mount_ahead == [("front", 2.1), ("rear", -2.4)]


def test_a_rigs_calibration_is_beside_it(tmp_path: Path) -> None:
    folder = tmp_path / "rigs"
    folder.mkdir()
    rig = rig_file(folder, f'[cameras.front]\nsource = "{FRONT}"\nundistort = "lens/front.yaml"\n')
    assert read_rig(rig).settings["undistort"] == [("front", str(folder / "lens" / "front.yaml"))]


@pytest.mark.parametrize(
    ("text", "said"),
    [
        (
            f'[cameras.front]\nsource = "{FRONT}"\ncamera_height = 1.2\n',
            "unknown key 'camera_height'; did you mean 'camera-height'?",
        ),
        (
            f'[cameras.front]\nsource = "{FRONT}"\nhfov = "wide"\n',
            "cameras.front.hfov: expected a number of degrees, got 'wide'",
        ),
        (
            f'[cameras.front]\nsource = "{FRONT}"\nhfov = true\n',
            "cameras.front.hfov: expected a number of degrees, got True",
        ),
        (
            f'[cameras.front]\nsource = "{FRONT}"\nhfov = 200\n',
            "cameras.front.hfov = 200: expected a field of view in degrees",
        ),
        (
            f'[cameras.front]\nsource = "{FRONT}"\nfacing = "up"\n',
            "cameras.front.facing = 'up': expected [NAME=]DIR, DIR one of front, rear",
        ),
        (
            f'[cameras.front]\nsource = "{FRONT}"\npriority = 1.5\n',
            "cameras.front.priority: expected a whole number, got 1.5",
        ),
        (
            f'[cameras.front]\nsource = "{FRONT}"\nshare = 0\n',
            "cameras.front.share = 0: expected NAME=W, W a number > 0",
        ),
        ("[cameras.front]\nhfov = 60\n", "cameras.front: no source; give the camera's URI"),
        (
            f'[cameras."front camera"]\nsource = "{FRONT}"\n',
            "'front camera' is not a camera's name: up to 32",
        ),
        ("[cameras]\n", "names no camera; give each one a table"),
        (f'[cameras."a=b"]\nsource = "{FRONT}"\nhfov = 60\n', "cameras.a=b: 'a=b' is not a camera's name"),
        (f'camera = "{FRONT}"\n', "unknown key 'camera'; did you mean 'cameras'?"),
        (f'path-width = -1\n[cameras.front]\nsource = "{FRONT}"\n', "path-width = -1: expected"),
        ("[cameras.front\nsource = 1\n", "is not valid TOML"),
    ],
)
def test_a_rig_it_cannot_take_is_refused_naming_the_file_and_the_key(
    tmp_path: Path, text: str, said: str
) -> None:
    rig = rig_file(tmp_path, text)
    with pytest.raises(ConfigError, match=re.escape(said)) as caught:
        read_rig(rig)
    assert str(rig) in str(caught.value)


def test_a_missing_rig_shows_what_one_looks_like(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist; a rig is a TOML file of cameras") as caught:
        read_rig(tmp_path / "none.toml")
    assert "[cameras.front]" in str(caught.value)
    example = rig_file(tmp_path, EXAMPLE)  # the example itself reads
    assert read_rig(example).cameras == ["front", "rear"]


def test_a_rig_and_a_source_are_refused_before_the_engines_load(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rig = rig_file(tmp_path)
    assert main(["run", "x.mp4", "--rig", str(rig), "--engines", "no-such-folder"]) == 2
    err = capsys.readouterr().err
    assert f"give the source 'x.mp4' or --rig {rig} (its cameras), not both" in err
    assert "no-such-folder" not in err
    bad = rig_file(tmp_path, f'[cameras.front]\nsource = "{FRONT}"\nhfov = 0\n', "bad.toml")
    assert main(["run", "--rig", str(bad), "--engines", "no-such-folder"]) == 2
    assert "cameras.front.hfov = 0: expected a field of view" in capsys.readouterr().err


def test_a_service_runs_a_rig(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """edge service checks the rig now, and its unit runs edge run --rig as given (in this
    folder, where the rig's relative path holds)."""
    rig = rig_file(tmp_path)
    assert main(["service", "run", "--rig", str(rig), "--engines", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    exec_line = next(line for line in out.splitlines() if line.startswith("ExecStart="))
    assert f"--rig {rig}" in exec_line
    assert f"front={FRONT}" in out, "the description names the rig's cameras"
    bad = rig_file(tmp_path, f'[cameras.front]\nsource = "{FRONT}"\nfacing = "rear"\n', "bad.toml")
    assert main(["service", "run", "--rig", str(bad), "--engines", str(tmp_path)]) == 2
    assert "--facing needs --hfov for camera front's field of view" in capsys.readouterr().err
