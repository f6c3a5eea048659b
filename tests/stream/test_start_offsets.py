"""A recorded drive's cameras replayed each from its start offset (edge.stream.multicam's
start_offsets, edge run --start-offset, a rig's start-offset): real tiny ONNX Runtime engines
and real synthetic drives paced as cameras."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge.cli import main
from edge.errors import ConfigError
from edge.stream import StreamOptions
from edge.stream.multicam import check_start_offsets, run_cameras

DRIVE = "synthetic://?size=128x256&frames=3&seed={seed}"
CAMERAS = {"front": DRIVE.format(seed=0), "rear": DRIVE.format(seed=1)}


def first_captures(path: Path) -> dict[str, int]:
    """Each camera's first frame's capture time in an objects file (ns, one clock)."""
    firsts: dict[str, int] = {}
    for line in path.read_text().splitlines():
        record = json.loads(line)
        firsts.setdefault(record["camera"], record["t_capture_ns"])
    return firsts


def test_a_camera_replayed_from_its_start_offset_comes_that_much_after_the_other(
    tiny_engines: Path, tmp_path: Path
) -> None:
    """Paced as cameras, two drives begin together; the rear one given 0.8 s begins about that
    much later (its first frame read no sooner: the offset is slept), each frame of it too."""
    spans = {}
    for offset in (0.0, 0.8):
        out = tmp_path / f"offset-{offset}.jsonl"
        run_cameras(
            CAMERAS,
            engines=tiny_engines,
            sinks=[str(out)],
            options=StreamOptions(realtime=True),
            start_offsets={"rear": offset},
        )
        firsts = first_captures(out)
        spans[offset] = (firsts["rear"] - firsts["front"]) / 1e9
        # paced as cameras, a frame the engines are late for may be dropped, as a camera's is
        assert 2 <= sum(1 for _ in out.read_text().splitlines()) <= 6
    assert abs(spans[0.0]) < 0.4, spans
    assert 0.6 <= spans[0.8] < 2.0, spans
    assert spans[0.8] - spans[0.0] > 0.5, spans


def test_start_offsets_are_checked_before_anything_opens(tiny_engines: Path) -> None:
    cameras = {**CAMERAS, "cam": "http://127.0.0.1:9/stream.mjpg"}
    assert check_start_offsets({"rear": 1.5}, cameras) == {"front": 0.0, "rear": 1.5, "cam": 0.0}
    assert check_start_offsets({"cam": 0}, cameras)["cam"] == 0.0, "a live camera's 0 is its start"
    refused = {
        "side": "--start-offset side: no camera is named 'side' (the cameras: front, rear, cam)",
        "rear": "--start-offset rear=-0.5: expected a number of seconds >= 0",
        "cam": "--start-offset cam=0.3: its source 'http://127.0.0.1:9/stream.mjpg' is live",
    }
    for name, said in refused.items():
        offset = -0.5 if name == "rear" else 0.3
        with pytest.raises(
            ConfigError, match=said.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")
        ):
            check_start_offsets({name: offset}, cameras)
    for bad in (float("nan"), float("inf"), True, "1"):
        with pytest.raises(ConfigError, match="expected a number of seconds >= 0"):
            check_start_offsets({"rear": bad}, CAMERAS)  # type: ignore[dict-item]
    # run_cameras checks them before the engines load: none here
    with pytest.raises(ConfigError, match="no camera is named 'side'"):
        run_cameras(CAMERAS, engines="no-such-engines", start_offsets={"side": 1.0})


def test_edge_run_takes_each_cameras_start_offset_from_the_command_line_or_the_rig(
    tiny_engines: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    rig = tmp_path / "drive.toml"
    rig.write_text(
        f'[cameras.front]\nsource = "{CAMERAS["front"]}"\n\n'
        f'[cameras.rear]\nsource = "{CAMERAS["rear"]}"\nstart-offset = 0.5\n'
    )
    engines = ["--engines", str(tiny_engines)]
    assert main(["run", "--rig", str(rig), "--realtime", *engines, "--sink", "rig.jsonl"]) == 0
    said = capsys.readouterr().err
    assert "  rear: synthetic://" in said and "replayed from 0.5 s after the start)" in said
    assert "  front: synthetic://?size=128x256&frames=3&seed=0 (facing front)" in said
    firsts = first_captures(tmp_path / "rig.jsonl")
    assert (firsts["rear"] - firsts["front"]) / 1e9 >= 0.35
    # the command line's over the rig's; without --realtime the drive is read in order, unless looped
    assert main(["run", "--rig", str(rig), "--start-offset", "rear=0", "--realtime", *engines]) == 0
    assert "replayed from" not in capsys.readouterr().err
    assert main(["run", "--rig", str(rig), *engines]) == 0
    assert (
        "note: the cameras' recordings are read in the order of their capture times (each one's start "
        in (capsys.readouterr().err)
    )
    assert main(["run", "--rig", str(rig), "--loop", "--max-frames", "2", *engines]) == 0
    assert "note: the start offsets order nothing here (a camera, --loop, or a folder with no rate" in (
        capsys.readouterr().err
    )
    refusals = {
        ("synthetic://", "--start-offset", "a=1"): "--start-offset a delays the replay of a camera of "
        "--camera, and this run has one source",
        ("--rig", str(rig), "--start-offset", "rear=1", "--start-offset", "rear=2"): "--start-offset rear is "
        "given twice",
        ("--rig", str(rig), "--camera", "rear=http://127.0.0.1:9/x.mjpg"): "--start-offset rear=0.5: its "
        "source 'http://127.0.0.1:9/x.mjpg' is live",
    }
    for argv, message in refusals.items():
        assert main(["run", *argv, *engines]) == 2
        assert message in capsys.readouterr().err, argv
        # a service's unit is refused as its run would be, before it is written
        assert main(["service", "--user", "nobody", "run", *argv, *engines]) == 2
        assert message in capsys.readouterr().err, argv
    live = tmp_path / "live.toml"
    live.write_text('[cameras.cam]\nsource = "http://127.0.0.1:9/x.mjpg"\nstart-offset = 0.2\n')
    assert main(["rig", str(live)]) == 2, "edge rig checks it as edge run would, before opening any"
    assert "--start-offset cam=0.2: its source 'http://127.0.0.1:9/x.mjpg' is live" in capsys.readouterr().err
    for bad in ("rear", "rear=-1", "rear=soon", "=1"):
        with pytest.raises(SystemExit):
            main(["run", "--rig", str(rig), "--start-offset", bad, *engines])
        assert "expected NAME=S, S a number of seconds >= 0" in capsys.readouterr().err, bad
    rig.write_text(rig.read_text().replace("0.5", '"soon"'))
    assert main(["run", "--rig", str(rig), *engines]) == 2
    assert (
        f"rig file {str(rig)!r}, cameras.rear.start-offset: expected a number of seconds >= 0, got 'soon'"
        in (capsys.readouterr().err)
    )
