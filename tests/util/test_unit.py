"""`edge service`: a systemd unit for a run's command line, each argument escaped as
systemd reads ExecStart=. That systemd gives the arguments back is checked by its own
`systemd-analyze verify` here, and under a real systemd by benchmarks/systemd_trial.py,
which runs the unit this writes with paths holding a space, `%` and `${HOME}`."""

from __future__ import annotations

import grp
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edge.cli import main
from edge.errors import ConfigError
from edge.util.unit import exec_word, unit_text


@pytest.mark.parametrize(
    ("arg", "word"),
    [
        ("--engines", "--engines"),
        ("/data/drives/objects.jsonl", "/data/drives/objects.jsonl"),
        ("/dev/video0?width=1280&fps=30", '"/dev/video0?width=1280&fps=30"'),
        ("drives x/drive.mkv", '"drives x/drive.mkv"'),
        ("100%", "100%%"),  # %: a specifier, even in quotes
        ("$HOME", "$$HOME"),  # $: a variable, even in quotes
        ("a ${HOME} b", '"a $${HOME} b"'),
        ('say "hi" \\', '"say \\"hi\\" \\\\"'),  # C escapes inside the quotes
        ("it's", '"it\'s"'),
        (";", '";"'),  # a lone ; separates commands
        ("", '""'),
    ],
)
def test_each_argument_is_one_word_systemd_gives_back(arg: str, word: str) -> None:
    assert exec_word(arg) == word


def test_what_a_unit_file_cannot_hold_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"argument 'a\\nb' has a line break or NUL"):
        exec_word("a\nb")
    with pytest.raises(ConfigError, match="a unit needs absolute paths"):
        unit_text(["run", "x"], description="d", program=["edge"], workdir="/", user=None)


def _verify(unit: str, tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed here")
    path = tmp_path / "edge-test.service"
    path.write_text(unit)
    done = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True, text=True)
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr


def test_a_unit_with_awkward_arguments_is_one_systemd_accepts(tmp_path: Path) -> None:
    argv = ["run", "/dev/video0?fps=30", "--engines", "engines 100%", "--sink", "drives ${HOME}/d.mkv"]
    unit = unit_text(
        argv,
        description="edge: 100% of the front camera",
        program=[sys.executable, "-m", "edge"],
        workdir=str(tmp_path),
        user=None,
        watchdog_s=0,
    )
    assert (
        "ExecStart=" + f'{sys.executable} -m edge run "/dev/video0?fps=30" --engines "engines 100%%" ' in unit
    )
    assert (
        '--sink "drives $${HOME}/d.mkv"\n' in unit and "Description=edge: 100%% of the front camera\n" in unit
    )
    assert "WatchdogSec" not in unit and "User=" not in unit
    _verify(unit, tmp_path)


def test_edge_service_writes_the_unit_of_a_checked_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    argv = ["run", "/dev/video0", "--engines", "engines/", "--sink", "drives/drive.mkv", "--segment", "5m"]
    assert main(["service", "--name", "edge-dashcam", "--user", "nobody", *argv]) == 0
    out = capsys.readouterr()
    unit = out.out
    assert unit.startswith("# /etc/systemd/system/edge-dashcam.service, as edge service writes it\n")
    assert f"WorkingDirectory={tmp_path}\n" in unit and "User=nobody\n" in unit
    assert "Description=edge run /dev/video0\n" in unit and "WatchdogSec=60\n" in unit
    exec_start = next(x for x in unit.splitlines() if x.startswith("ExecStart="))
    assert exec_start.endswith(" run /dev/video0 --engines engines/ --sink drives/drive.mkv --segment 5m")
    assert Path(exec_start.removeprefix("ExecStart=").split()[0]).is_absolute()
    try:
        grp.getgrnam("video")
        assert "SupplementaryGroups=video\n" in unit  # the camera's device node
    except KeyError:
        assert "SupplementaryGroups" not in unit
    assert "sudo systemctl daemon-reload && sudo systemctl enable --now edge-dashcam" in out.err
    assert f"warning: the engines folder 'engines/' does not exist in {tmp_path}" in out.err
    # a lens calibration the run could not read is said, as it would be at the start
    assert (
        main(["service", "--user", "nobody", *argv, "--undistort", "front=lens.yaml", "--flip", "rotate-180"])
        == 2
    )
    assert (
        "--undistort front=lens.yaml names a camera, and this run has one source" in capsys.readouterr().err
    )
    assert main(["service", "--user", "nobody", *argv, "--undistort", "lens.yaml"]) == 0
    said = capsys.readouterr().err
    assert "warning: camera calibration 'lens.yaml' cannot be read: [Errno 2] No such file" in said
    assert f"(in {tmp_path})" in said
    # root needs no User= (nor the camera's group); --out writes the file instead
    written = tmp_path / "edge.service"
    record = ["record", "/dev/video0", "drive.mkv", "--segment", "5m"]
    assert main(["service", "--user", "root", "--watchdog", "0", "--out", str(written), *record]) == 0
    unit = written.read_text()
    assert "User=" not in unit and "SupplementaryGroups" not in unit and "WatchdogSec" not in unit
    exec_start = next(x for x in unit.splitlines() if x.startswith("ExecStart="))
    assert exec_start.endswith(" record /dev/video0 drive.mkv --segment 5m")
    assert capsys.readouterr().out == ""
    _verify(unit.replace("/dev/video0", "synthetic://"), tmp_path)


def test_a_command_line_edge_would_refuse_is_refused_now(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "edge.service"
    assert main(["service", "--out", str(out), "run", "/dev/video0", "--segmnet", "5m"]) == 2
    assert "unrecognized arguments: --segmnet" in capsys.readouterr().err
    assert main(["service", "record", "/dev/video0"]) == 2  # no sink
    assert "edge record needs a sink to write the frames to; got none" in capsys.readouterr().err
    assert main(["service", "--watchdog", "-1", "run", "/dev/video0"]) == 2
    assert "--watchdog is -1; expected seconds >= 0" in capsys.readouterr().err
    # what edge run checks of its arguments together, before its engines load
    assert main(["service", "--out", str(out), "run", "/dev/video0", "--path-width", "2.5"]) == 2
    assert "--path-width 2.5 needs --hfov" in capsys.readouterr().err
    assert main(["service", "--out", str(out), "run", "/dev/video0", "--fit", "front=crop"]) == 2
    assert "--fit front=crop names a camera, and this run has one source" in capsys.readouterr().err
    assert main(["service", "run", "--help"]) == 0  # edge run's help, no unit
    assert capsys.readouterr().out.startswith("usage: edge run ")
    # a service starts its command again after each end: edge record would refuse the
    # video its last start finished, so one of one fixed name needs --segment or --overwrite
    assert main(["service", "--out", str(out), "record", "/dev/video0", "dir://frames", "drive.mkv?x"]) == 2
    err = capsys.readouterr().err
    assert "edge record refuses to write over what the last start finished (drive.mkv?x)" in err
    assert "add --segment DURATION" in err and "--overwrite" in err
    assert not out.exists(), "no unit for a command line edge refuses"
    assert main(["service", "--out", str(out), "record", "/dev/video0", "--sink", "drive.mkv"]) == 2
    assert "refuses to write over what the last start finished (drive.mkv)" in capsys.readouterr().err
    for fine in (["--segment", "5m"], ["--overwrite"]):
        assert main(["service", "--out", str(out), "record", "/dev/video0", "drive.mkv", *fine]) == 0
    assert main(["service", "record", "/dev/video0", "dir://frames", "http://127.0.0.1:8080"]) == 0
    capsys.readouterr()
    # so would edge run from a camera, its objects' file too
    camera_run = ["service", "run", "/dev/video0", "--sink", "o.jsonl", "--sink", "dir://f"]
    assert main(camera_run) == 2
    err = capsys.readouterr().err
    refused = "edge run from a camera or stream refuses to write over what the last start finished"
    assert f"{refused} (o.jsonl)" in err
    assert main([*camera_run, "--overwrite"]) == 0
    capsys.readouterr()
    # edge run from a file replaces them at every start: said, and the unit written
    file_run = ["service", "run", "drive.mkv", "--loop", "--sink", "file:drive.mp4", "--sink", "o.jsonl"]
    assert main(file_run) == 0
    said = capsys.readouterr()
    assert "warning: each start of the service replaces file:drive.mp4, o.jsonl" in said.err
    assert said.out.startswith("# /etc/systemd/system/")
