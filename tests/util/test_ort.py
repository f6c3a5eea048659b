"""edge.util.ort: ONNX Runtime's telemetry off before ONNX Runtime starts.

The PyPI builds of ONNX Runtime on Linux from 1.29 keep a device id and an event cache
under ~/.cache/Microsoft/DeveloperTools/.onnxruntime and resolve Microsoft's collector.
Each test here runs real processes with a home of their own and none of the variables
that turn it off (nor those of CI services, which ONNX Runtime also heeds), and first
checks that a plain ONNX Runtime session there does keep those files: where this
onnxruntime has no telemetry, there is nothing to turn off, and the tests say so.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from edge.util.ort import SWITCHES, keep_offline, telemetry_state
from tests.stream.test_pipeline import ROOT

# what ONNX Runtime reads as "a CI service: no telemetry" (onnxruntime's telemetry_environment.h)
CI_VARIABLES = (
    "CI",
    "TF_BUILD",
    "GITHUB_ACTIONS",
    "GITLAB_CI",
    "CIRCLECI",
    "TRAVIS",
    "JENKINS_URL",
    "CODEBUILD_BUILD_ID",
    "BUILDKITE",
    "TEAMCITY_VERSION",
    "APPVEYOR",
    "BITBUCKET_BUILD_NUMBER",
    "SYSTEM_TEAMFOUNDATIONCOLLECTIONURI",
    "ORT_RUNNING_UNIT_TESTS",
)
SESSION = """
import numpy as np
from onnx import TensorProto, helper
g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=10)
s = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
assert s.run(None, {"x": np.array([-1, 1], np.float32)})[0].tolist() == [0, 1]
"""


def home_env(home: Path, **more: str) -> dict[str, str]:
    """This environment with ``home`` for a home, less what turns ONNX Runtime's telemetry off."""
    home.mkdir(exist_ok=True)
    scrubbed = (*SWITCHES, *CI_VARIABLES, "XDG_CACHE_HOME", "XDG_CONFIG_HOME")
    env = {k: v for k, v in os.environ.items() if k not in scrubbed}
    return {**env, "HOME": str(home), "PYTHONPATH": str(ROOT), **more}


def kept(home: Path) -> list[str]:
    """What ONNX Runtime's telemetry left under ``home``."""
    return sorted(str(p.relative_to(home)) for p in home.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def telemetry_here(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The files a plain ONNX Runtime session keeps in a new home: none where this
    onnxruntime has no telemetry (then the tests skip)."""
    home = tmp_path_factory.mktemp("plain-home")
    code = "import onnxruntime as ort\n" + SESSION
    subprocess.run([sys.executable, "-c", code], env=home_env(home), check=True, timeout=120)
    files = kept(home)
    if not files:
        import onnxruntime

        pytest.skip(f"onnxruntime {onnxruntime.__version__} keeps no telemetry files: nothing to turn off")
    return files


def test_a_plain_session_keeps_a_device_id(telemetry_here: list[str]) -> None:
    """The control: what the tests below must not find."""
    assert ".cache/Microsoft/DeveloperTools/.onnxruntime/deviceid" in telemetry_here


def test_edge_s_import_turns_it_off_before_onnxruntime_starts(
    telemetry_here: list[str], tmp_path: Path
) -> None:
    code = (
        "import json, os\nfrom edge.util.ort import onnxruntime_module\nort = onnxruntime_module()\n"
        + SESSION
        + "print(json.dumps({k: os.environ.get(k) for k in "
        + "('ORT_DISABLE_TELEMETRY', 'ORT_TELEMETRY_DISABLED')}))"
    )
    env = home_env(tmp_path / "home")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"ORT_DISABLE_TELEMETRY": "1", "ORT_TELEMETRY_DISABLED": "1"}
    assert kept(tmp_path / "home") == []


def test_an_edge_run_keeps_nothing_and_edge_info_says_it_is_off(
    telemetry_here: list[str], tiny_engines: Path, tmp_path: Path
) -> None:
    """A real ``edge run`` on ONNX Runtime engines, and ``edge info``."""
    home = tmp_path / "home"
    argv = [sys.executable, "-m", "edge.cli"]
    run = subprocess.run(
        [*argv, "run", "synthetic://?frames=3", "--engines", str(tiny_engines), "--backend", "onnxruntime"],
        env=home_env(home),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    info = subprocess.run([*argv, "info"], env=home_env(home), capture_output=True, text=True, timeout=120)
    assert info.returncode == 0, info.stderr
    assert "onnxruntime telemetry: off (ORT_DISABLE_TELEMETRY=1, ORT_TELEMETRY_DISABLED=1)" in info.stdout
    assert kept(home) == []


def test_a_user_who_chose_keeps_their_choice(telemetry_here: list[str], tmp_path: Path) -> None:
    """ORT_DISABLE_TELEMETRY=0 set by the user: edge sets neither variable, so the
    telemetry is on, and edge info says so."""
    home = tmp_path / "home"
    env = home_env(home, ORT_DISABLE_TELEMETRY="0")
    info = subprocess.run(
        [sys.executable, "-m", "edge.cli", "info"], env=env, capture_output=True, text=True, timeout=120
    )
    assert info.returncode == 0, info.stderr
    assert "onnxruntime telemetry: on where this onnxruntime has it (ORT_DISABLE_TELEMETRY=0)" in info.stdout
    assert kept(home) == telemetry_here


def test_after_onnxruntime_was_imported_nothing_is_set_and_that_is_said(
    telemetry_here: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """In this process onnxruntime is imported already: setting the variables now would
    claim what ONNX Runtime no longer reads, so it is said instead."""
    import onnxruntime  # noqa: F401

    import edge.util.ort as ort_module

    for name in SWITCHES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(ort_module, "_warned", False)
    with pytest.warns(UserWarning, match="onnxruntime was imported before edge could turn its telemetry off"):
        keep_offline()
    assert not any(name in os.environ for name in SWITCHES)
    assert telemetry_state() == (
        "on where this onnxruntime has it (it was imported before edge could turn it off)"
    )
    monkeypatch.setenv("ORT_TELEMETRY_DISABLED", "yes")
    assert telemetry_state() == "off (ORT_TELEMETRY_DISABLED=yes)"


def test_a_program_that_imported_onnxruntime_first_is_warned_once(
    telemetry_here: list[str], tmp_path: Path
) -> None:
    """Too late to turn it off: said once, as a warning, with what to do; not said where the
    user set the variable themselves."""
    code = (
        "import warnings\nimport onnxruntime\nfrom edge.util.ort import onnxruntime_module\n"
        "with warnings.catch_warnings(record=True) as said:\n"
        "    warnings.simplefilter('always')\n"
        "    onnxruntime_module(); onnxruntime_module()\n"
        "print(len(said)); print(said[0].message if said else '')\n"
    )
    for extra, count in (({}, "1"), ({"ORT_DISABLE_TELEMETRY": "1"}, "0")):
        env = home_env(tmp_path / f"home{count}", **extra)
        argv = [sys.executable, "-c", code]
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        assert lines[0] == count, done.stdout
        if count == "1":
            assert "set ORT_DISABLE_TELEMETRY=1 in the environment" in lines[1]


def test_versions_before_1_29_have_no_telemetry_to_warn_of() -> None:
    from edge.util.ort import _has_telemetry

    assert not _has_telemetry("1.20.1") and not _has_telemetry("1.28.0")
    assert _has_telemetry("1.29.0") and _has_telemetry("1.32.0") and _has_telemetry("2.0.0")
    assert _has_telemetry("dev")


def test_edge_info_without_onnxruntime_says_so_and_goes_on(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from edge.cli import main

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime: ImportError
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "onnxruntime telemetry" not in out and "onnxruntime providers" not in out
    assert "OpenCV" in out or "opencv" in out.lower()
