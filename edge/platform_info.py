"""What machine this is: Jetson model, L4T release and power mode, GPU, TensorRT/CUDA versions;
system_info, what a benchmark result says of its machine."""

from __future__ import annotations

import importlib.metadata as md
import os
import platform
import shutil
import subprocess
from pathlib import Path
from typing import Any

from edge.errors import BackendUnavailableError


def jetson_info(root: str | Path = "/") -> dict[str, Any] | None:
    """Jetson model and L4T release from the device tree and /etc; None on other machines."""
    root = Path(root)
    release_file = root / "etc" / "nv_tegra_release"
    model_file = root / "proc" / "device-tree" / "model"
    if not release_file.is_file() and not model_file.is_file():
        return None
    info: dict[str, Any] = {}
    if model_file.is_file():
        info["model"] = model_file.read_bytes().rstrip(b"\x00").decode(errors="replace").strip()
    if release_file.is_file():
        first = (
            release_file.read_text(errors="replace").splitlines()[0] if release_file.stat().st_size else ""
        )
        # "# R36 (release), REVISION: 4.3, ..." -> "36.4.3"
        parts = first.replace("#", "").replace(" ", "").split(",")
        major = parts[0].split("(")[0].lstrip("R") if parts else ""
        revision = next((p.split(":")[1] for p in parts if p.startswith("REVISION:")), "")
        info["l4t"] = f"{major}.{revision}" if major and revision else first.strip()
    info["power_mode"] = power_mode()
    return info


# the extensions that change which kernels torch and ONNX Runtime run: speed-ups (INT8 above
# all) and the last bits of float results differ between machines that have them and not
_VECTOR_EXTENSIONS = (
    "avx2",
    "fma",
    "avx512f",
    "avx512_bf16",
    "avx512_vnni",
    "avx512_fp16",
    "avx_vnni",
    "amx_tile",
    "amx_int8",
    "amx_bf16",
    "asimd",
    "asimddp",
    "sve",
    "sve2",
    "i8mm",
    "bf16",
)


def cpu_model(root: str | Path = "/") -> str:
    """/proc/cpuinfo's model name (x86) or Hardware (older Arm kernels), else what platform says."""
    for line in _cpuinfo_lines(root):
        if line.lower().startswith(("model name", "hardware")):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def cpu_vector_extensions(root: str | Path = "/") -> list[str]:
    """The SIMD extensions in /proc/cpuinfo's flags (x86) or Features (Arm) that kernels use."""
    found: set[str] = set()
    for line in _cpuinfo_lines(root):
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            found.update(value.split())
    return [x for x in _VECTOR_EXTENSIONS if x in found]


_X86 = ("x86_64", "amd64", "i386", "i686", "x86")
# x86 extensions whose INT8 dot products accumulate in int32 (no saturating pair sums)
_INT8_DOT = ("avx512_vnni", "avx_vnni", "amx_int8")


def is_x86(machine: str | None = None) -> bool:
    return (machine or platform.machine()).lower() in _X86


def int8_dot_extensions(extensions: list[str] | None = None) -> list[str]:
    """The x86 extensions found (or among ``extensions``) that ONNX Runtime's INT8 kernels need."""
    found = cpu_vector_extensions() if extensions is None else extensions
    return [x for x in _INT8_DOT if x in found]


def int8_pairs_saturate(extensions: list[str] | None = None, machine: str | None = None) -> bool:
    """Whether ONNX Runtime's UINT8 x INT8 kernels saturate here: x86 without VNNI (calib/seven_bit.py).

    Where /proc/cpuinfo cannot be read (other systems) an x86 CPU is assumed to lack VNNI:
    the 7-bit fallback costs a little precision, saturation costs much more.
    """
    return is_x86(machine) and not int8_dot_extensions(extensions)


def _cpuinfo_lines(root: str | Path) -> list[str]:
    try:
        return (Path(root) / "proc" / "cpuinfo").read_text(errors="replace").splitlines()
    except OSError:
        return []


def power_mode() -> str | None:
    """nvpmodel's current mode (e.g. 'MAXN'), when the tool is there."""
    out = _tool_output(shutil.which("nvpmodel"), "-q", timeout=5)
    for line in (out or "").splitlines():
        if "Power Mode" in line and ":" in line:
            return line.split(":", 1)[1].strip()
    return None


def package_version(name: str) -> str | None:
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return None


# the distributions a module comes in: PyPI's name and its GPU and vendor builds (a Jetson's
# onnxruntime is onnxruntime-gpu; JetPack's TensorRT and OpenCV are apt packages with none)
_DISTRIBUTIONS = {
    "onnxruntime": ("onnxruntime", "onnxruntime-gpu", "onnxruntime-openvino", "onnxruntime-directml"),
    "tensorrt": ("tensorrt", "tensorrt-cu13", "tensorrt-cu12", "tensorrt-cu11"),
    "cv2": (
        "opencv-python-headless",
        "opencv-python",
        "opencv-contrib-python-headless",
        "opencv-contrib-python",
    ),
}


def module_version(module: str) -> str | None:
    """The version of ``module`` (``onnxruntime``, ``tensorrt``, ``cv2``, ``torch``, ...): from
    the metadata of whichever of its distributions is installed, else from the module itself,
    imported (apt's python3-libnvinfer and JetPack's OpenCV carry no metadata); None where it
    is not installed or does not import."""
    import importlib.util

    for dist in _DISTRIBUTIONS.get(module, (module,)):
        version = package_version(dist)
        if version is not None:
            return version
    if importlib.util.find_spec(module) is None:
        return None
    try:
        if module == "onnxruntime":
            from edge.util.ort import onnxruntime_module  # its telemetry off

            imported = onnxruntime_module()
        else:
            imported = importlib.import_module(module)
    except (ImportError, OSError, BackendUnavailableError):  # a library it loads is missing
        return None
    return str(getattr(imported, "__version__", "")) or None


def nvcc_release(nvcc: str | None = None) -> str | None:
    """The CUDA compiler's release (e.g. '13.0'), None where nvcc is not found or says nothing."""
    out = _tool_output(nvcc or shutil.which("nvcc"), "--version", timeout=20)
    # "Cuda compilation tools, release 13.0, V13.0.88"
    for line in (out or "").splitlines():
        if "release" in line:
            return line.split("release", 1)[1].split(",")[0].strip() or None
    return None


def _tool_output(tool: str | None, *args: str, timeout: float) -> str | None:
    """What a command-line tool prints, or None where it is missing or fails to run."""
    if tool is None:
        return None
    try:
        return subprocess.run([tool, *args], capture_output=True, text=True, timeout=timeout).stdout
    except (OSError, subprocess.SubprocessError):
        return None


def system_info() -> dict[str, Any]:
    """CPU, GPU, versions and Jetson power mode: what a reader needs to compare runs."""
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": cpu_model(),
        "cpu_cores": os.cpu_count(),
        "cpu_extensions": cpu_vector_extensions(),
        # named as before, found in any of their builds (edge.platform_info.module_version)
        "versions": {
            "edge-perception": package_version("edge-perception"),
            **{
                name: module_version(module)
                for name, module in (
                    ("numpy", "numpy"),
                    ("onnxruntime", "onnxruntime"),
                    ("torch", "torch"),
                    ("opencv-python-headless", "cv2"),
                    ("tensorrt", "tensorrt"),
                )
            },
        },
        "gpu": None,
        "jetson": jetson_info(),
    }
    from edge.backends.cuda_io import cuda_device

    if (gpu := cuda_device()) is not None:  # torch's, or cuda-python's beside a CPU torch
        import torch

        cuda = torch.version.cuda if gpu["via"] == "torch" else None
        info["gpu"] = {"name": gpu["name"], "compute_capability": gpu["compute_capability"], "cuda": cuda}
    return info
