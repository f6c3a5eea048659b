"""edge info and edge info --json: one report, two forms."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import pytest

from edge.cli import main
from edge.info import format_info, machine_info
from plugins.roi_align.tensorrt_library import headers_version


def test_json_holds_everything_the_lines_say(capsys: pytest.CaptureFixture[str]) -> None:
    import cv2
    import onnxruntime

    assert main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert main(["info"]) == 0
    assert capsys.readouterr().out == format_info(info) + "\n"
    assert (
        info["cpu"]["cores"] == os.cpu_count() and info["backends"]["onnxruntime"] == onnxruntime.__version__
    )
    assert info["opencv"]["version"] == cv2.__version__ and info["jetson"] is None  # no Jetson here
    assert "CPUExecutionProvider" in info["onnxruntime"]["providers"]
    import aiohttp
    import mcap

    assert info["outputs"] == {"mcap": mcap.__version__, "aiohttp": aiohttp.__version__}


def test_the_lines_of_a_jetson_with_its_gpu() -> None:
    """What this machine cannot show: a Jetson's GPU, power mode, JetPack's hidden OpenCV
    and a TensorRT that does not import, from the dict such a board reports."""
    info = {
        **machine_info(),
        "cpu": {"model": "ARMv8 Processor rev 1 (v8l)", "cores": 12, "extensions": ["asimd", "asimddp"]},
        "backends": {"onnxruntime": "1.20.0", "tensorrt": False, "torch": None},
        "torch": {"threads": 12, "cuda": "12.6", "gpu": "Orin", "compute_capability": "8.7"},
        "cuda_python": None,
        "triton": None,
        "nvcc": "12.6",
        "roi_align_cuda_kernel": "cuda",
        "tensorrt_headers": {"path": "/usr/include/aarch64-linux-gnu", "version": "10.3.0"},
        "opencv": {
            "version": "4.10.0",
            "path": "/venv/cv2",
            "gstreamer": False,
            "hides": "/usr/lib/python3/dist-packages/cv2",
        },
        "outputs": {"mcap": None, "aiohttp": "3.9.5"},
        "cameras": [
            {
                "node": "/dev/video0",
                "name": "HD Pro Webcam C920",
                "links": ["/dev/v4l/by-id/usb-046d_HD_Pro_Webcam_C920_1234-video-index0"],
            }
        ],
        "jetson": {"model": "NVIDIA Jetson AGX Orin Developer Kit", "l4t": "36.4.3", "power_mode": "MAXN"},
    }
    lines = format_info(info).splitlines()
    assert (
        "  outputs: .mcap: mcap not installed (pip install 'edge-perception[mcap]')  "
        "viewer, /metrics and foxglove://: aiohttp 3.9.5" in lines
    )
    assert "  CPU: ARMv8 Processor rev 1 (v8l), 12 cores, vector extensions: asimd asimddp" in lines
    assert "  backend tensorrt     installed, does not import" in lines
    assert "  backend torch        not installed" in lines
    assert "  torch threads: 12  CUDA: 12.6  GPU: Orin  compute capability: 8.7" in lines
    assert (
        "  cuda-python: not installed  triton: not installed  "
        "nvcc: 12.6 (builds the RoIAlign plugin and its kernel)" in lines
    )
    assert "  RoIAlign on CUDA (torch backend): cuda" in lines
    assert (
        "  RoIAlign in TensorRT builds: the fused plugin, built with nvcc against TensorRT 10.3.0's "
        "headers in /usr/include/aarch64-linux-gnu" in lines
    )
    assert lines[-4] == (
        "  OpenCV: 4.10.0 (/venv/cv2)  GStreamer: no (csi://, gst:// need it); it hides "
        "/usr/lib/python3/dist-packages/cv2 (pip uninstall opencv-python-headless uses that one)"
    )
    assert lines[-3:-1] == [
        "  cameras (V4L2), by the name a rig should give each:",
        "    /dev/video0  HD Pro Webcam C920  /dev/v4l/by-id/usb-046d_HD_Pro_Webcam_C920_1234-video-index0",
    ]
    assert lines[-1] == "  Jetson: NVIDIA Jetson AGX Orin Developer Kit  L4T 36.4.3  power mode: MAXN"


def test_a_gpu_only_cuda_python_sees_is_said() -> None:
    """A Jetson image with PyPI's CPU torch and cuda-python: the GPU line comes from cuda-python."""
    info = {
        **machine_info(),
        "torch": {"threads": 8, "cuda": None, "gpu": None, "compute_capability": None},
        "cuda_python": "12.6.2.post1",
        "cuda_python_gpu": {"name": "Orin", "compute_capability": "8.7", "via": "cuda-python"},
    }
    lines = format_info(info).splitlines()
    assert "  torch threads: 8  CUDA: no  GPU: none  compute capability: -" in lines
    assert (
        "  GPU (cuda-python; torch has no CUDA): Orin  compute capability: 8.7  "
        "(TensorRT engines run; torch engines on the CPU)" in lines
    )
    assert machine_info()["cuda_python_gpu"] is None  # none here


def test_what_a_tensorrt_build_s_roi_align_will_be_is_said(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fused plugin needs nvcc, TensorRT's headers and its sources: which is missing, and headers of
    another TensorRT than the installed one, are said (the version read from NvInferVersion.h)."""
    include = tmp_path
    (include / "NvInfer.h").write_text("// TensorRT's\n")
    (include / "NvInferVersion.h").write_text(
        "#define NV_TENSORRT_MAJOR 10 //!< major\n#define NV_TENSORRT_MINOR 3\n#define NV_TENSORRT_PATCH 0\n"
    )
    assert headers_version(include) == "10.3.0" and headers_version(include / "none") is None
    monkeypatch.setenv("TENSORRT_INCLUDE", str(include))
    info = machine_info()
    assert info["tensorrt_headers"] == {"path": str(include), "version": "10.3.0"}

    def line(**changes: object) -> str:
        (found,) = [x for x in format_info({**info, **changes}).splitlines() if "TensorRT builds" in x]
        return found.split(": ", 1)[1]

    assert line(nvcc="12.6").startswith("the fused plugin, built with nvcc against TensorRT 10.3.0's headers")
    assert line(nvcc="12.6", backends={**info["backends"], "tensorrt": "11.1.0"}).endswith(
        "; they are not the installed TensorRT 11.1.0's: set TENSORRT_INCLUDE to its own"
    )
    assert line(nvcc=None).endswith("missing here: nvcc)")
    assert info["plugin_sources_missing"] == []  # a checkout, and the wheel (test_packaging), have them
    assert line(nvcc="12.6", plugin_sources_missing=["roi_align_kernel.cu"]).endswith(
        "sources; missing here: its sources roi_align_kernel.cu (this install lacks them: reinstall "
        "edge-perception))"
    )
    assert line(nvcc=None, tensorrt_headers=None).endswith(
        "missing here: nvcc, TensorRT's headers (set TENSORRT_INCLUDE to NvInfer.h's folder))"
    )
    monkeypatch.delenv("TENSORRT_INCLUDE")
    if not Path(f"/usr/include/{platform.machine()}-linux-gnu/NvInfer.h").is_file():
        assert machine_info()["tensorrt_headers"] is None  # none here


def test_the_installed_tensorrt_names_its_lint_target() -> None:
    """edge info says which --target lints for the installed TensorRT (a newer release than the
    table's, its major's newest; another major, none)."""
    info = machine_info()

    def backend_line(version: str) -> str:
        (found,) = [
            x
            for x in format_info({**info, "backends": {**info["backends"], "tensorrt": version}}).splitlines()
            if "backend tensorrt" in x
        ]
        return found

    assert backend_line("10.13.3.9").endswith("10.13.3.9  (edge lint --target 10.13)")
    assert backend_line("10.20.0").endswith("(edge lint --target 10.16, the newest 10.x it knows)")
    assert backend_line("8.6.1").endswith("(edge lint knows no TensorRT of its major version)")
