from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from edge.cli import main


def test_models_lists_zoo(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "panoptic_fpn_r50" in out and "depth_tiny" in out


def test_version_is_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"edge {version('edge-perception')}\n"


def test_info_reports_backends(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "backend onnxruntime" in out and "CPUExecutionProvider" in out
    assert "backend tensorrt" in out
    assert "RoIAlign on CUDA (torch backend): " in out
    from edge.platform_info import int8_pairs_saturate

    verdict = out.split("onnxruntime INT8 on this CPU: ", 1)[1].splitlines()[0]
    assert ("no VNNI" in verdict and "use fp32" in verdict) is int8_pairs_saturate(), verdict
    import onnxruntime

    from calib.quantize import quantizes_beside_float_softmax
    from edge.util.ort import max_ir_version

    reads = out.split("onnxruntime reads ONNX IR up to ", 1)[1].splitlines()[0]
    assert reads.startswith(f"{max_ir_version()} (a model past it is refused by name); INT8 calibration: ")
    assert reads.endswith("every model") is quantizes_beside_float_softmax(onnxruntime.__version__), reads


def test_build_error_is_clear(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build", "--models", "nope", "--quiet"]) == 2
    assert "error: unknown model 'nope'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "command", "unknown"),
    [
        (["bench", "--frames", "20"], "edge bench", "--frames 20"),
        (["info", "--bogus"], "edge info", "--bogus"),
        # edge service checks the command line it is to run as edge would
        (["service", "run", "/dev/video0", "--segmnet", "5m"], "edge run", "--segmnet 5m"),
    ],
)
def test_an_unknown_argument_is_refused_with_the_commands_usage(
    argv: list[str], command: str, unknown: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Said by the command's parser, with its options, not by edge's with its list of commands."""
    try:
        status = main(argv)
    except SystemExit as exc:
        status = exc.code
    assert status == 2
    err = capsys.readouterr().err
    assert err.startswith(f"usage: {command} [-h]"), err
    assert err.endswith(f"\n{command}: error: unrecognized arguments: {unknown}\n"), err


def test_nvcc_release_is_read_from_a_real_program(tmp_path: Path) -> None:
    from edge.platform_info import nvcc_release

    fake = tmp_path / "nvcc"  # a real executable with nvcc's output, wherever the toolkit is absent
    fake.write_text(
        "#!/bin/sh\necho 'nvcc: NVIDIA (R) Cuda compiler driver'\n"
        "echo 'Cuda compilation tools, release 12.6, V12.6.68'\n"
    )
    fake.chmod(0o755)
    assert nvcc_release(str(fake)) == "12.6"
    assert nvcc_release(str(tmp_path / "missing")) is None
    (tmp_path / "mute").write_text("#!/bin/sh\n")
    (tmp_path / "mute").chmod(0o755)
    assert nvcc_release(str(tmp_path / "mute")) is None


@pytest.mark.parametrize("unbuffered", ["1", ""])
def test_a_reader_that_stops_early_ends_the_command_quietly(unbuffered: str) -> None:
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root), "PYTHONUNBUFFERED": unbuffered}
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge.cli", "models"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    proc.stdout.close()  # as `edge models | head -0` would: nobody reads what it prints
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 141 and err == "", err


def test_info_reports_jetson_absence(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info"]) == 0
    assert "Jetson: not detected" in capsys.readouterr().out  # this CI machine is no Jetson


def test_cpu_model_and_extensions_from_cpuinfo(tmp_path: Path) -> None:
    from edge.platform_info import cpu_model, cpu_vector_extensions

    x86, arm = tmp_path / "x86", tmp_path / "arm"
    (x86 / "proc").mkdir(parents=True)
    (x86 / "proc" / "cpuinfo").write_text(
        "processor\t: 0\nmodel name\t: AMD EPYC 9654\n"
        "flags\t\t: fpu sse2 avx2 fma avx512f avx512_vnni avx512_bf16 sha_ni\n\n"
        "processor\t: 1\nmodel name\t: AMD EPYC 9654\nflags\t\t: fpu sse2 avx2 fma avx512f avx512_vnni\n"
    )
    (arm / "proc").mkdir(parents=True)
    # Jetson Orin (Cortex-A78AE): Arm names the line Features and has no model name
    (arm / "proc" / "cpuinfo").write_text(
        "processor\t: 0\nBogoMIPS\t: 62.50\nFeatures\t: fp asimd evtstrm aes crc32 atomics asimddp\n"
        "CPU implementer\t: 0x41\n"
    )
    assert cpu_model(x86) == "AMD EPYC 9654"
    assert cpu_vector_extensions(x86) == ["avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni"]
    assert cpu_vector_extensions(arm) == ["asimd", "asimddp"]
    assert cpu_model(arm)  # falls back to what platform reports, never empty
    assert cpu_vector_extensions(tmp_path / "nothing") == []


def test_info_names_the_cpu_and_its_vector_extensions(capsys: pytest.CaptureFixture[str]) -> None:
    from edge.platform_info import cpu_vector_extensions

    assert main(["info"]) == 0
    (line,) = [ln for ln in capsys.readouterr().out.splitlines() if ln.strip().startswith("CPU:")]
    assert f"{os.cpu_count()} cores" in line
    assert line.endswith(" ".join(cpu_vector_extensions()) or "none found")


def test_jetson_info_from_device_files(tmp_path: Path) -> None:
    from edge.platform_info import jetson_info

    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "nv_tegra_release").write_text(
        "# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64\n"
    )
    (tmp_path / "proc" / "device-tree").mkdir(parents=True)
    (tmp_path / "proc" / "device-tree" / "model").write_bytes(b"NVIDIA Jetson AGX Orin Developer Kit\x00")
    info = jetson_info(tmp_path)
    assert info is not None
    assert info["model"] == "NVIDIA Jetson AGX Orin Developer Kit" and info["l4t"] == "36.4.3"
    assert jetson_info(tmp_path / "nothing") is None


@pytest.mark.parametrize("code", [130, 0])
def test_a_late_ctrl_c_after_an_interrupted_command_prints_no_traceback(code: int) -> None:
    # the process is ending (here: in an exit handler) when Ctrl-C is pressed once more
    script = (
        "import atexit, os, signal, time\n"
        "from edge.cli import exit_with\n"
        "atexit.register(lambda: (os.kill(os.getpid(), signal.SIGINT), time.sleep(0.2)))\n"
        "print('the summary, still in the buffer of a pipe')\n"
        f"exit_with({code})\n"
    )
    root = Path(__file__).parents[1]
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "PYTHONPATH": str(root), "PYTHONUNBUFFERED": ""},  # stdout: a buffered pipe
        capture_output=True,
        text=True,
        timeout=60,
    )
    if code == 130:
        assert done.returncode == 130 and "Traceback" not in done.stderr, done.stderr
        assert done.stdout == "the summary, still in the buffer of a pipe\n"
    else:  # a command that was not interrupted keeps Ctrl-C's usual meaning
        assert "KeyboardInterrupt" in done.stderr, done.stderr


def test_info_names_opencv_and_the_one_it_hides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import cv2

    from edge.stream.cameras import gstreamer_available

    assert main(["info"]) == 0
    line = capsys.readouterr().out.split("  OpenCV: ", 1)[1].splitlines()[0]
    assert line.startswith(f"{cv2.__version__} ({Path(cv2.__file__).parent})")
    assert ("GStreamer: yes" in line) is gstreamer_available() and "hides" not in line
    if gstreamer_available():
        return
    # a Jetson venv made with --system-site-packages: JetPack's OpenCV behind pip's wheel
    (tmp_path / "dist-packages" / "cv2").mkdir(parents=True)
    (tmp_path / "dist-packages" / "cv2" / "__init__.py").write_text("")
    monkeypatch.setattr(sys, "path", [*sys.path, str(tmp_path / "dist-packages")])
    assert main(["info"]) == 0
    line = capsys.readouterr().out.split("  OpenCV: ", 1)[1].splitlines()[0]
    assert f"it hides {tmp_path / 'dist-packages' / 'cv2'} (pip uninstall opencv-python-headless" in line


def test_what_the_system_refuses_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # /proc takes no new folders, even from root, and no check can foresee every such place
    if not os.access("/proc", os.W_OK):
        pytest.skip("this user may not write /proc: the argument check refuses it before any work")
    out = "/proc/edge-test/synth"
    assert main(["make-synthetic", "--out", out, "--sequences", "1", "--frames", "20", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert (
        err.startswith("error: FileNotFoundError: ") and "/proc/edge-test" in err and "Traceback" not in err
    )


@pytest.mark.parametrize("command", ["run", "record"])
def test_the_help_of_a_service_command_says_its_exit_statuses(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A unit's RestartPreventExitStatus= is written from --help: the status said for outputs
    that all stopped is the one such a run exits with."""
    from edge.errors import OUTPUTS_STOPPED, OutputsStopped, RecordingStoppedForGood

    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert f"; {OUTPUTS_STOPPED} the outputs all stopped for good" in text
    assert "; 2 an error" in text and "; 1 the system refused" in text and "130 Ctrl-C, 143 SIGTERM" in text
    assert OutputsStopped.exit_status == RecordingStoppedForGood.exit_status == OUTPUTS_STOPPED


def test_module_versions_from_any_build_or_from_the_module(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Jetson's onnxruntime is the onnxruntime-gpu distribution, and JetPack's TensorRT and
    OpenCV come from apt, with no metadata at all: the version comes from the module then."""
    import cv2
    import onnxruntime

    import edge.platform_info as platform_info

    assert platform_info.module_version("onnxruntime") == onnxruntime.__version__
    # the wheel's version (5.1.0.95) is said where there is one, not the library's (5.1.0)
    assert platform_info.module_version("cv2") == platform_info.package_version("opencv-python-headless")
    assert platform_info.module_version("no_such_module_here") is None
    seen: list[str] = []

    def gpu_build_only(name: str) -> str | None:
        seen.append(name)
        return "9.9.9" if name == "onnxruntime-gpu" else None

    monkeypatch.setattr(platform_info, "package_version", gpu_build_only)
    assert platform_info.module_version("onnxruntime") == "9.9.9"
    assert seen == ["onnxruntime", "onnxruntime-gpu"]
    monkeypatch.setattr(platform_info, "package_version", lambda name: None)  # apt: no metadata
    assert platform_info.module_version("onnxruntime") == onnxruntime.__version__
    assert platform_info.module_version("cv2") == cv2.__version__
