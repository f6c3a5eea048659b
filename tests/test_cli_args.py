"""Argument types: out-of-range numbers are refused by the parser, naming the flag, the value
received and what was expected, before any work starts."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from edge.cli import main
from edge.cli_args import count, finite_number, percentile, positive_int, positive_number, rate_setting
from edge.errors import ConfigError


@pytest.mark.parametrize(
    ("parse", "good", "bad", "message"),
    [
        (positive_int, {"1": 1, "64": 64}, ["0", "-3", "2.5", "x"], "positive integer"),
        (count, {"0": 0, "7": 7}, ["-1", "1e3", ""], ">= 0|whole number"),
        (finite_number, {"-20": -20.0, "0": 0.0, "35.5": 35.5}, ["inf", "nan", "-inf", "db"], "number"),
        (percentile, {"99.999": 99.999, "100": 100.0}, ["0", "100.1", "-5", "nan"], "percentile"),
        (positive_number("ms"), {"0.5": 0.5}, ["0", "-1", "inf", "nan", "fast"], "number of ms"),
        (positive_number(), {"1e-3": 1e-3}, ["0", "nan"], "number"),
        (
            rate_setting,
            {"30": (None, 30.0), "stream1=7.5": ("stream1", 7.5)},
            ["0", "stream1=0", "=5", "stream1=", "stream1=inf", "fast"],
            r"positive number of frames per second \(FPS, or NAME=FPS for one stream\)",
        ),
    ],
)
def test_types_accept_and_refuse(
    parse: Callable[[str], float], good: dict[str, float], bad: list[str], message: str
) -> None:
    for text, value in good.items():
        assert parse(text) == value
    for text in bad:
        with pytest.raises(argparse.ArgumentTypeError, match=message) as info:
            parse(text)
        assert repr(text) in str(info.value), "the message quotes what was received"


@pytest.mark.parametrize(
    ("argv", "flag", "message"),
    [
        (["make-synthetic", "--out", "x", "--seed", "-1"], "--seed", "whole number >= 0, got '-1'"),
        (["calibrate", "m.onnx", "--percentile", "150"], "--percentile", "in (0, 100], got '150'"),
        (["calibrate", "m.onnx", "--min-snr", "inf"], "--min-snr", "got 'inf'"),
        (["train", "--model", "depth_tiny", "--out", "x", "--lr", "nan"], "--lr", "got 'nan'"),
        (["build", "--verify-samples", "-2"], "--verify-samples", "got '-2'"),
        (["build", "--calib-frames", "0"], "--calib-frames", "positive integer, got '0'"),
        (["build", "--batch", "0"], "--batch", "positive integer, got '0'"),
        (["build", "--workspace-mb", "-1"], "--workspace-mb", "got '-1'"),
        (["build", "--dla-core", "-1"], "--dla-core", "got '-1'"),
        (["build", "--int8-min-snr", "nan"], "--int8-min-snr", "got 'nan'"),
        (["bench", "--threads", "0"], "--threads", "positive integer, got '0'"),
        (["run", "synthetic://", "--threads", "0"], "--threads", "positive integer, got '0'"),
    ],
)
def test_commands_refuse_out_of_range_flags(
    argv: list[str], flag: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {flag}" in err and message in err


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["run", "synthetic://", "--summary", "{f}/s.json"], "--summary"),
        (["run", "synthetic://", "--trace", "{f}/t.json"], "--trace"),
        (["run", "synthetic://", "--latency-log", "{f}/l.jsonl"], "--latency-log"),
        (["replay", "cityscapes://x", "--out", "{f}/preds"], "--out"),
        (["demo", "--out", "{f}"], "--out"),
        (["bench", "--report", "{f}/r"], "--report"),
        (["make-synthetic", "--out", "{f}/ds"], "--out"),
        (["train", "--model", "depth_tiny", "--out", "{f}/w.pt"], "--out"),
        (["train", "--model", "depth_tiny", "--out", "w.pt", "--log", "{f}/l.jsonl"], "--log"),
        (["calibrate", "m.onnx", "--out", "{f}/c"], "--out"),
        (["build", "--out", "{f}/e"], "--out"),
        (["build", "--timing-cache", "{f}/tc"], "--timing-cache"),
    ],
)
def test_outputs_that_cannot_be_written_are_refused_before_any_work(
    argv: list[str], flag: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(SystemExit) as info:
        main([a.replace("{f}", str(blocker)) for a in argv])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {flag}: cannot write '{blocker}" in err
    assert f"'{blocker}' is a file, not a folder" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"], "nothing was written"


@pytest.mark.parametrize(
    ("argv", "flag", "name"),
    [
        (["bench", "--report", "{t}/out/bench.md"], "--report", "bench.md"),
        (["compare", "e", "--out", "{t}/out/compare.html"], "--out", "compare.html"),
        (["build", "--out", "{t}/engines/manifest.json"], "--out", "manifest.json"),
    ],
)
def test_a_folder_flag_given_a_file_name_is_refused_before_a_folder_of_that_name_is_made(
    argv: list[str], flag: str, name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main([a.replace("{t}", str(tmp_path)) for a in argv])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {flag}: cannot write" in err and f"{name}' names a {Path(name).suffix} file" in err
    assert "expected a folder for edge to write its files in" in err
    assert list(tmp_path.iterdir()) == [], "no folder was made"


def test_run_and_replay_take_the_trackers_settings() -> None:
    from edge.cli import build_parser
    from edge.cli_tracking import object_tracker
    from edge.postprocess.tracks import ObjectTracker

    parser = build_parser()
    for command in ("run", "replay"):
        args = parser.parse_args([command, "synthetic://", "--speed-window", "2", "--track-gap", "0.1"])
        tracker = object_tracker(args)
        assert (tracker.speed_window_s, tracker.max_gap_s) == (2.0, 0.1)
        defaults = object_tracker(parser.parse_args([command, "synthetic://"]))
        assert (defaults.speed_window_s, defaults.max_gap_s, defaults.hfov_deg) == (1.0, 0.5, None)
        assert object_tracker(parser.parse_args([command, "x", "--hfov", "62.5"])).hfov_deg == 62.5
        # the help's "default: 3, a lane"
        assert defaults.path_half_width_m == ObjectTracker().path_half_width_m == 1.5
        narrow = object_tracker(parser.parse_args([command, "x", "--hfov", "62.5", "--path-width", "2.5"]))
        assert narrow.path_half_width_m == 1.25 and narrow.fresh().path_half_width_m == 1.25


def test_a_cameras_height_over_the_road_gives_its_tracker_a_ground_plane(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--camera-height M (with --hfov) and --horizon F give the tracker a ground plane of
    square pixels; --no-ground keeps it from taking a source's; what cannot be meant is
    refused before anything runs, naming the flag."""
    from edge.cli import build_parser
    from edge.cli_tracking import object_tracker
    from edge.postprocess.ground import GroundPlane

    parser = build_parser()
    for command in ("run", "replay"):
        level = object_tracker(parser.parse_args([command, "x", "--hfov", "60", "--camera-height", "1.4"]))
        assert level.ground == GroundPlane(height_m=1.4, horizon=0.5) and level.use_ground
        pitched = object_tracker(
            parser.parse_args([command, "x", "--hfov", "60", "--camera-height", "1.4", "--horizon", "0.42"])
        )
        assert pitched.ground == GroundPlane(height_m=1.4, horizon=0.42)
        assert pitched.fresh().ground == pitched.ground
        off = object_tracker(parser.parse_args([command, "x", "--no-ground"]))
        assert off.ground is None and not off.use_ground and not off.fresh().use_ground
        assert object_tracker(parser.parse_args([command, "x"])).use_ground
    refused = {
        ("--camera-height", "1.4"): "--camera-height needs --hfov for the camera's field of view",
        ("--hfov", "60", "--horizon", "0.4"): "--horizon needs --camera-height for the camera's height",
        (
            "--hfov",
            "60",
            "--camera-height",
            "1.4",
            "--no-ground",
        ): "--no-ground and --camera-height contradict",
    }
    for flags, said in refused.items():
        assert main(["run", "synthetic://", *flags, "--engines", "no-such-folder"]) == 2
        err = capsys.readouterr().err
        assert said in err and "no-such-folder" not in err, (flags, err)
    for bad in ("0", "-1", "nan"):
        with pytest.raises(SystemExit):
            main(["run", "synthetic://", "--hfov", "60", "--camera-height", bad])
        assert f"got {bad!r}" in capsys.readouterr().err
    for bad in ("340", "-1", "x"):
        with pytest.raises(SystemExit):
            main(["run", "synthetic://", "--hfov", "60", "--camera-height", "1.3", "--horizon", bad])
        assert f"got {bad!r}" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["run", "synthetic://", "--hfov", "60", "--camera-height", "1.3", "--horizon", "340"])
    assert "not a row in pixels" in capsys.readouterr().err


def test_a_path_width_without_a_field_of_view_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "synthetic://", "--path-width", "2.5", "--engines", "no-such-folder"]) == 2
    err = capsys.readouterr().err
    assert "--path-width 2.5 needs --hfov" in err and "no-such-folder" not in err, "said before the engines"
    positive, number = "a positive number", "a number"
    for bad, expected in (("0", positive), ("-1", positive), ("nan", number), ("w", number)):
        with pytest.raises(SystemExit):
            main(["run", "synthetic://", "--hfov", "60", "--path-width", bad])
        err = capsys.readouterr().err
        assert f"argument --path-width: expected {expected} of metres" in err and f"got {bad!r}" in err


def test_each_camera_takes_its_own_field_of_view() -> None:
    """--hfov NAME=DEG is that camera's (its tracker places its objects by it), DEG every
    other's; what cannot be meant is refused, naming it."""
    from edge.cli import build_parser
    from edge.cli_tracking import fields_of_view, object_tracker

    parser = build_parser()
    cams = ["run", "--camera", "front=/dev/video0", "--camera", "rear=/dev/video2", "--camera", "side=x.mp4"]
    args = parser.parse_args([*cams, "--hfov", "60", "--hfov", "rear=120", "--path-width", "2"])
    assert fields_of_view(args) == {"front": 60.0, "rear": 120.0, "side": 60.0}
    trackers = object_tracker(args)
    assert {n: t.hfov_deg for n, t in trackers.items()} == {"front": 60.0, "rear": 120.0, "side": 60.0}
    assert {t.path_half_width_m for t in trackers.values()} == {1.0}
    assert len({id(t) for t in trackers.values()}) == 3, "each camera follows its own objects"
    assert fields_of_view(parser.parse_args(cams)) == {"front": None, "rear": None, "side": None}
    assert fields_of_view(parser.parse_args(["replay", "x", "--hfov", "48.9"])) == {None: 48.9}
    refused = {
        ("--hfov", "top=60"): "--hfov top=60: no camera is named 'top' (the cameras: front, rear, side)",
        ("--hfov", "rear=60", "--hfov", "rear=70"): "--hfov rear=DEG is given twice",
        ("--hfov", "60", "--hfov", "70"): "--hfov is given 2 times (60, 70); give it once, or NAME=DEG",
        (
            "--hfov",
            "rear=60",
            "--path-width",
            "2",
        ): "--path-width 2 needs --hfov for each camera, and front, side has none",
    }
    for extra, said in refused.items():
        with pytest.raises(ConfigError, match=re.escape(said)):
            object_tracker(parser.parse_args([*cams, *extra]))
    with pytest.raises(
        ConfigError, match=re.escape("--hfov front=60 names a camera, and this run has one source")
    ):
        object_tracker(parser.parse_args(["run", "/dev/video0", "--hfov", "front=60"]))
    with pytest.raises(SystemExit):
        parser.parse_args([*cams, "--hfov", "rear=190"])


def test_each_camera_takes_its_own_height_over_the_road() -> None:
    """--camera-height NAME=M and --horizon NAME=F are that camera's ground plane, M and F
    every other's; a horizon without a height, or a height without a field of view, of one
    camera is refused, naming it."""
    from edge.cli import build_parser
    from edge.cli_tracking import object_tracker
    from edge.postprocess.ground import GroundPlane

    parser = build_parser()
    cams = ["run", "--camera", "front=/dev/video0", "--camera", "rear=/dev/video2", "--hfov", "60"]
    args = parser.parse_args([*cams, "--camera-height", "front=1.3", "--horizon", "front=0.46"])
    trackers = object_tracker(args)
    assert trackers["front"].ground == GroundPlane(height_m=1.3, horizon=0.46)
    assert trackers["rear"].ground is None and trackers["rear"].use_ground
    both = object_tracker(parser.parse_args([*cams, "--camera-height", "1.3", "--camera-height", "rear=0.9"]))
    assert {n: t.ground for n, t in both.items()} == {
        "front": GroundPlane(height_m=1.3, horizon=0.5),
        "rear": GroundPlane(height_m=0.9, horizon=0.5),
    }
    refused = {
        (
            "--camera-height",
            "front=1.3",
            "--horizon",
            "rear=0.4",
        ): "--horizon needs --camera-height for camera rear's",
        ("--camera-height", "top=1.3"): "--camera-height top=1.3: no camera is named 'top'",
    }
    for extra, said in refused.items():
        with pytest.raises(ConfigError, match=re.escape(said)):
            object_tracker(parser.parse_args([*cams, *extra]))
    blind = ["run", "--camera", "front=/dev/video0", "--camera", "rear=/dev/video2", "--hfov", "front=60"]
    with pytest.raises(
        ConfigError, match=re.escape("--camera-height needs --hfov for camera rear's field of view")
    ):
        object_tracker(parser.parse_args([*blind, "--camera-height", "1.3"]))


@pytest.mark.parametrize("bad", ["0", "180", "-5", "nan", "wide"])
def test_a_field_of_view_is_between_0_and_180_degrees(bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["run", "synthetic://", "--hfov", bad])
    err = capsys.readouterr().err
    assert "--hfov" in err and repr(bad) in err


def test_cameras_are_ranked_by_priority(capsys: pytest.CaptureFixture[str]) -> None:
    """--priority NAME ranks camera NAME 1 (NAME=N: N), every other 0; what cannot be meant
    is refused, naming it, before the engines load (edge run and edge service alike)."""
    from edge.cli import build_parser
    from edge.cli_args import camera_priorities, run_cameras_of

    parser = build_parser()
    cams = ["run", "--camera", "front=/dev/video0", "--camera", "rear=/dev/video2", "--camera", "side=x.mp4"]

    def ranks(*extra: str) -> dict[str, int]:
        args = parser.parse_args([*cams, *extra])
        return camera_priorities(args, run_cameras_of(args))

    assert ranks() == {}
    assert ranks("--priority", "front") == {"front": 1}
    assert ranks("--priority", "front=3", "--priority", "side=-1") == {"front": 3, "side": -1}
    refused = {
        ("--priority", "top"): "--priority top: no camera is named 'top' (the cameras: front, rear, side)",
        ("--priority", "rear", "--priority", "rear=2"): "--priority rear is given twice",
    }
    for extra, said in refused.items():
        with pytest.raises(ConfigError, match=re.escape(said)):
            ranks(*extra)
    one = parser.parse_args(["run", "/dev/video0", "--priority", "front"])
    with pytest.raises(ConfigError, match=re.escape("--priority front ranks a camera of --camera, and this")):
        camera_priorities(one, run_cameras_of(one))
    assert main(["run", "synthetic://", "--priority", "front", "--engines", "no-such-folder"]) == 2
    err = capsys.readouterr().err
    assert "--priority front ranks a camera" in err and "no-such-folder" not in err, "said before the engines"
    for bad in ("front=first", "=2"):
        with pytest.raises(SystemExit):
            parser.parse_args([*cams, "--priority", bad])
        assert "argument --priority: expected NAME" in capsys.readouterr().err
    assert main(["service", "run", *cams[1:], "--priority", "top"]) == 2
    assert "--priority top: no camera is named 'top'" in capsys.readouterr().err


def test_cameras_share_the_turns_by_share(capsys: pytest.CaptureFixture[str]) -> None:
    """--share NAME=W gives camera NAME W turns to each other camera's 1 among its rank; what
    cannot be meant is refused, naming it, before the engines load (edge run and service)."""
    from edge.cli import build_parser
    from edge.cli_args import camera_shares, run_cameras_of

    parser = build_parser()
    cams = ["run", "--camera", "front=/dev/video0", "--camera", "rear=/dev/video2"]

    def shares(*extra: str) -> dict[str, float]:
        args = parser.parse_args([*cams, *extra])
        return camera_shares(args, run_cameras_of(args))

    assert shares() == {}
    assert shares("--share", "front=2", "--share", "rear=0.5") == {"front": 2.0, "rear": 0.5}
    refused = {
        ("--share", "top=2"): "--share top: no camera is named 'top' (the cameras: front, rear)",
        ("--share", "rear=2", "--share", "rear=3"): "--share rear is given twice",
    }
    for extra, said in refused.items():
        with pytest.raises(ConfigError, match=re.escape(said)):
            shares(*extra)
    one = parser.parse_args(["run", "/dev/video0", "--share", "front=2"])
    with pytest.raises(
        ConfigError, match=re.escape("--share front gives a share of the engines' turns to a camera")
    ):
        camera_shares(one, run_cameras_of(one))
    for bad in ("front", "front=0", "front=-1", "front=inf", "front=nan", "front=lots", "=2"):
        with pytest.raises(SystemExit):
            parser.parse_args([*cams, "--share", bad])
        assert "argument --share: expected NAME=W, W a number > 0" in capsys.readouterr().err
    assert main(["run", "synthetic://", "--share", "front=2", "--engines", "no-such-folder"]) == 2
    err = capsys.readouterr().err
    assert "--share front gives a share" in err and "no-such-folder" not in err, "said before the engines"
    assert main(["service", "run", *cams[1:], "--share", "top=2"]) == 2
    assert "--share top: no camera is named 'top'" in capsys.readouterr().err


def test_each_camera_takes_its_own_mount_offset(capsys: pytest.CaptureFixture[str]) -> None:
    """--mount-offset NAME=M is that camera's, M every other's, 0 where none is given; it
    needs the camera's field of view, which alone places objects beside the vehicle."""
    from edge.cli import build_parser
    from edge.cli_tracking import mount_offsets, object_tracker

    parser = build_parser()
    cams = ["run", "--camera", "front=/dev/video0", "--camera", "left=/dev/video2", "--camera", "right=x.mp4"]
    args = parser.parse_args([*cams, "--hfov", "60", "--mount-offset", "left=-0.9", "--mount-offset", "0.2"])
    assert mount_offsets(args) == {"front": 0.2, "left": -0.9, "right": 0.2}
    trackers = object_tracker(args)
    assert {n: t.mount_offset_m for n, t in trackers.items()} == {"front": 0.2, "left": -0.9, "right": 0.2}
    one = parser.parse_args(["run", "/dev/video0", "--hfov", "60", "--mount-offset", "-0.4"])
    assert object_tracker(one).mount_offset_m == -0.4
    assert object_tracker(parser.parse_args(["run", "/dev/video0"])).mount_offset_m == 0.0
    refused = {
        ("--hfov", "60", "--mount-offset", "top=1"): "--mount-offset top=1: no camera is named 'top'",
        ("--hfov", "60", "--mount-offset", "1", "--mount-offset", "2"): "--mount-offset is given 2 times",
        ("--hfov", "left=90", "--mount-offset", "0.5"): "--mount-offset needs --hfov for camera front, right",
    }
    for extra, said in refused.items():
        with pytest.raises(ConfigError, match=re.escape(said)):
            object_tracker(parser.parse_args([*cams, *extra]))
    assert main(["run", "synthetic://", "--mount-offset", "0.3", "--engines", "no-such-folder"]) == 2
    err = capsys.readouterr().err
    assert "--mount-offset needs --hfov for the camera's field of view" in err and "no-such-folder" not in err
    with pytest.raises(SystemExit):
        parser.parse_args(["run", "x.mp4", "--mount-offset", "left"])
    assert "argument --mount-offset: expected a number of metres, got 'left'" in capsys.readouterr().err


def test_each_camera_takes_its_own_place_along_the_vehicle() -> None:
    """--mount-ahead NAME=M is that camera's, M every other's, 0 where none is given; the
    trackers measure ahead_m from the vehicle's reference point; it needs the field of view."""
    from edge.cli import build_parser
    from edge.cli_tracking import mount_aheads, object_tracker

    parser = build_parser()
    cams = ["run", "--camera", "front=/dev/video0", "--camera", "rear=/dev/video2", "--camera", "left=x.mp4"]
    args = parser.parse_args([*cams, "--hfov", "60", "--mount-ahead", "rear=-2.4", "--mount-ahead", "2.1"])
    assert mount_aheads(args) == {"front": 2.1, "rear": -2.4, "left": 2.1}
    trackers = object_tracker(args)
    assert {n: t.mount_ahead_m for n, t in trackers.items()} == {"front": 2.1, "rear": -2.4, "left": 2.1}
    assert object_tracker(parser.parse_args(["run", "/dev/video0"])).mount_ahead_m == 0.0
    with pytest.raises(ConfigError, match=re.escape("--mount-ahead needs --hfov for camera front, left")):
        object_tracker(parser.parse_args([*cams, "--hfov", "rear=90", "--mount-ahead", "1"]))
    with pytest.raises(ConfigError, match=re.escape("--mount-ahead top=1: no camera is named 'top'")):
        object_tracker(parser.parse_args([*cams, "--hfov", "60", "--mount-ahead", "top=1"]))


def test_each_camera_takes_its_own_facing(capsys: pytest.CaptureFixture[str]) -> None:
    """--facing NAME=DIR is that camera's, DIR every other's, front where none is given; it
    needs the camera's field of view, without which no object is placed; edge replay, whose
    recordings are a front camera's, refuses any other."""
    from edge.cli import build_parser
    from edge.cli_tracking import facings, object_tracker

    parser = build_parser()
    cams = ["run", "--camera", "front=/dev/video0", "--camera", "back=/dev/video2", "--camera", "left=x.mp4"]
    args = parser.parse_args([*cams, "--hfov", "90", "--facing", "back=rear", "--facing", "left=left"])
    assert facings(args) == {"front": "front", "back": "rear", "left": "left"}
    assert {n: t.facing for n, t in object_tracker(args).items()} == facings(args)
    one = parser.parse_args(["run", "/dev/video0", "--hfov", "120", "--facing", "rear"])
    assert object_tracker(one).facing == "rear"
    refused = {
        ("--hfov", "90", "--facing", "top=rear"): "--facing top=rear: no camera is named 'top'",
        ("--hfov", "90", "--facing", "rear", "--facing", "left"): "--facing is given 2 times (rear, left)",
        (
            "--hfov",
            "front=90",
            "--facing",
            "back=rear",
        ): "--facing needs --hfov for camera back's field of view",
    }
    for extra, said in refused.items():
        with pytest.raises(ConfigError, match=re.escape(said)):
            object_tracker(parser.parse_args([*cams, *extra]))
    assert main(["run", "synthetic://", "--facing", "rear", "--engines", "no-such-folder"]) == 2
    err = capsys.readouterr().err
    assert "--facing needs --hfov for the camera's field of view" in err and "no-such-folder" not in err
    with pytest.raises(SystemExit):
        parser.parse_args(["run", "x.mp4", "--facing", "up"])
    assert (
        "argument --facing: expected [NAME=]DIR, DIR one of front, rear, left, right or a yaw in degrees "
        "above -180 and up to 180" in capsys.readouterr().err
    )
    for bad in ("left=181", "-180", "nan", "left=inf"):
        with pytest.raises(SystemExit):
            parser.parse_args(["run", "x.mp4", "--facing", bad])
        assert f"got {bad!r}" in capsys.readouterr().err
    corners = parser.parse_args([*cams, "--hfov", "90", "--facing", "back=-135", "--facing", "left=45"])
    assert facings(corners) == {"front": "front", "back": -135.0, "left": 45.0}
    assert object_tracker(parser.parse_args(["run", "/dev/video0", "--facing", "0"])).facing == "front"
    replayed = ["replay", "cityscapes://no-such-folder", "--hfov", "90", "--facing", "rear"]
    assert main([*replayed, "--engines", "no-such-folder"]) == 2
    err = capsys.readouterr().err
    assert "--facing rear: edge replay scores recordings of a front camera" in err
    assert main([*replayed[:-1], "30", "--engines", "no-such-folder"]) == 2
    assert "--facing 30.0: edge replay scores recordings of a front camera" in capsys.readouterr().err


def test_a_lens_file_gives_a_camera_the_field_of_view_its_place_needs(tmp_path: Path) -> None:
    """--undistort's pinhole camera has a field of view: a camera with a lens file may face,
    be placed, stand over the road and bound a path without --hfov, its tracker given the
    lens's field of view (--hfov still goes over it)."""
    from edge.cli import build_parser
    from edge.cli_tracking import object_tracker
    from edge.stream.undistort import read_calibration
    from tests.stream.test_undistort import write_opencv

    lens = write_opencv(tmp_path / "rear.yml")
    parser = build_parser()
    cams = ["run", "--camera", "front=/dev/video0", "--camera", "back=/dev/video2"]
    lensed = [*cams, "--undistort", f"back={lens}", "--facing", "back=rear", "--mount-ahead", "back=-2.4"]
    given = [*lensed, "--camera-height", "back=1.1", "--hfov", "front=60"]
    trackers = object_tracker(parser.parse_args(given))
    assert (trackers["back"].facing, trackers["back"].hfov_deg, trackers["back"].mount_ahead_m) == (
        "rear",
        pytest.approx(read_calibration(lens).hfov_deg),
        -2.4,
    )
    assert trackers["back"].ground is not None and trackers["front"].hfov_deg == 60.0
    assert object_tracker(parser.parse_args([*lensed, "--hfov", "70"]))["back"].hfov_deg == 70.0
    object_tracker(parser.parse_args([*lensed, "--hfov", "front=60", "--path-width", "2.5"]))
    with pytest.raises(ConfigError, match=re.escape("needs --hfov for each camera, and front has none")):
        object_tracker(parser.parse_args([*lensed, "--path-width", "2.5"]))
    one = parser.parse_args(["run", "x.mp4", "--undistort", str(lens), "--facing", "left", "--path-width=2"])
    assert object_tracker(one).facing == "left"
    with pytest.raises(ConfigError, match=re.escape("(or a lens file, --undistort, whose pinhole camera")):
        object_tracker(parser.parse_args(["run", "x.mp4", "--facing", "left"]))


def test_the_cut_in_speed_and_confidence_reach_every_cameras_tracker(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from edge.cli import build_parser
    from edge.cli_tracking import object_tracker

    parser = build_parser()
    cams = ["run", "--camera", "a=/dev/video0", "--camera", "b=/dev/video2", "--hfov", "90"]
    # flag, the tracker's setting, its default, a value and what it gives, a bad value's error
    for flag, setting, default, given, want, bad, expected in (
        ("--cut-in-speed", "min_lateral_mps", 1.0, "0.6", 0.6, "0", "a positive number of metres a second"),
        (
            "--cut-in-confidence",
            "cut_in_confidence",
            0.95,
            "0",
            0.0,
            "95",
            "a confidence in [0, 1), e.g. 0.95",
        ),
    ):
        assert getattr(object_tracker(parser.parse_args(["run", "/dev/video0"])), setting) == default
        trackers = object_tracker(parser.parse_args([*cams, flag, given]))
        assert {n: getattr(t, setting) for n, t in trackers.items()} == {"a": want, "b": want}
        with pytest.raises(SystemExit):
            parser.parse_args(["run", "x.mp4", flag, bad])
        assert f"argument {flag}: expected {expected}, got {bad!r}" in capsys.readouterr().err


def test_how_soon_things_are_warned_of_reaches_every_cameras_tracker(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from edge.cli import build_parser
    from edge.cli_tracking import object_tracker

    parser = build_parser()
    assert object_tracker(parser.parse_args(["run", "/dev/video0"])).warn_within_s == 3.0
    cams = ["run", "--camera", "a=/dev/video0", "--camera", "b=/dev/video2"]
    trackers = object_tracker(parser.parse_args([*cams, "--warn-within", "2.2"]))
    assert {n: t.warn_within_s for n, t in trackers.items()} == {"a": 2.2, "b": 2.2}
    assert (
        object_tracker(parser.parse_args(["replay", "cityscapes://x", "--warn-within", "4"])).warn_within_s
        == 4
    )
    with pytest.raises(SystemExit):
        parser.parse_args(["run", "x.mp4", "--warn-within", "-1"])
    assert (
        "argument --warn-within: expected a positive number of seconds, got '-1'" in capsys.readouterr().err
    )


def test_min_score_reaches_run_replay_and_cameras_alike(capsys: pytest.CaptureFixture[str]) -> None:
    from edge.cli import build_parser
    from edge.cli_args import engine_selection

    parser = build_parser()
    for argv in (["run", "/dev/video0"], ["replay", "cityscapes://x"], ["run", "--camera", "a=/dev/video0"]):
        assert engine_selection(parser.parse_args(argv))["min_score"] == 0.5
        assert engine_selection(parser.parse_args([*argv, "--min-score", "0.3"]))["min_score"] == 0.3
    for bad, said in (("1.5", "from 0 to 1, e.g. 0.3"), ("-0.1", "from 0 to 1"), ("inf", "(finite)")):
        with pytest.raises(SystemExit):
            parser.parse_args(["run", "x.mp4", "--min-score", bad])
        err = capsys.readouterr().err
        assert "argument --min-score: expected a detection score" in err and said in err
