"""What machine this is: Jetson model, L4T release and power mode, GPU, TensorRT/CUDA versions."""

from __future__ import annotations

import importlib.metadata as md
import shutil
import subprocess
from pathlib import Path
from typing import Any


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
