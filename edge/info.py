"""``edge info``: what this machine offers edge (CPU, backends, versions, GPU, OpenCV,
Jetson), as one dict (``--json``, for a fleet's inventory or a bug report) and as the
lines people read. Nothing here fails for a missing piece: it is said to be missing."""

from __future__ import annotations

import os
import platform
import sys
from typing import Any

from edge.errors import BackendUnavailableError, EdgeError


def machine_info() -> dict[str, Any]:
    """Everything ``edge info`` reports; None where a piece is absent (no torch, no Jetson)."""
    import edge
    from edge.backends import available_backends
    from edge.platform_info import cpu_model, cpu_vector_extensions, jetson_info, module_version

    extensions = cpu_vector_extensions()
    return {
        "edge": edge.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": {"model": cpu_model(), "cores": os.cpu_count(), "extensions": extensions},
        # installed: its version; installed but failing to import: False; absent: None
        "backends": {
            name: (module_version(name) or False) if ok else None for name, ok in available_backends().items()
        },
        "onnxruntime": _onnxruntime_info(extensions),
        "torch": _torch_info(),
        **_cuda_tools(),
        "opencv": _opencv_info(),
        "cameras": _cameras_info(),
        "outputs": _outputs_info(),
        "jetson": jetson_info(),
    }


def _cameras_info() -> list[dict[str, Any]]:
    """The V4L2 cameras plugged in, with udev's stable names for a rig (edge.stream.cameras)."""
    from edge.stream.cameras import v4l2_cameras

    return v4l2_cameras()


def _outputs_info() -> dict[str, str | None]:
    """The packages of the optional outputs: the .mcap sink's, and the live servers' (the
    viewer, /metrics, foxglove://); a version, or None where absent."""
    from edge.platform_info import package_version

    return {"mcap": package_version("mcap"), "aiohttp": package_version("aiohttp")}


def _onnxruntime_info(extensions: list[str]) -> dict[str, Any] | None:
    from calib.quantize import quantizes_beside_float_softmax
    from edge.util.ort import max_ir_version, onnxruntime_module, telemetry_state

    try:
        onnxruntime = onnxruntime_module()
    except BackendUnavailableError:  # said in the backends
        return None
    return {
        "telemetry": telemetry_state(),
        "providers": list(onnxruntime.get_available_providers()),
        "int8": int8_verdict(extensions),
        "reads_ir": max_ir_version(),
        "calibrates_panoptic": quantizes_beside_float_softmax(str(onnxruntime.__version__)),
    }


def int8_verdict(extensions: list[str]) -> str:
    """Whether ONNX Runtime's INT8 kernels pay on this CPU, and where that was measured."""
    from edge.platform_info import int8_dot_extensions, int8_pairs_saturate, is_x86

    if int8_pairs_saturate(extensions):
        return (
            "no VNNI: weights run on 7 bits, the kernels are little faster than FP32 and depth "
            "loses accuracy (benchmarks/results/int8_cpu_avx2.md); use fp32 engines"
        )
    if is_x86():
        dot = ", ".join(int8_dot_extensions(extensions))
        return f"integer kernels with {dot}: INT8 pays (benchmarks/results/int8_cpu.md)"
    return "not x86: integer dot-product kernels where the CPU has them (not measured here)"


def _torch_info() -> dict[str, Any] | None:
    try:
        import torch
    except ImportError:
        return None
    cuda = torch.cuda.is_available()
    return {
        "threads": torch.get_num_threads(),
        "cuda": torch.version.cuda if cuda else None,
        "gpu": torch.cuda.get_device_name(0) if cuda else None,
        "compute_capability": ".".join(map(str, torch.cuda.get_device_capability(0))) if cuda else None,
    }


def _cuda_tools() -> dict[str, Any]:
    from edge.platform_info import nvcc_release, package_version
    from plugins.roi_align.cuda_kernel import find_nvcc
    from plugins.roi_align.torch_op import choose_cuda_kernel

    try:
        nvcc = nvcc_release(find_nvcc())  # where the RoIAlign kernel build looks, JetPack's folder too
    except EdgeError:
        nvcc = None
    from edge.backends.cuda_io import cuda_device
    from plugins.roi_align.cuda_kernel import HEADERS, missing_sources
    from plugins.roi_align.tensorrt_library import PLUGIN_SOURCES, headers_version, tensorrt_include

    triton = package_version("triton")
    gpu = cuda_device()
    include = tensorrt_include()
    return {
        "cuda_python": package_version("cuda-python"),
        # a GPU torch does not see (a CPU torch): the TensorRT runtime's buffers use cuda-python
        "cuda_python_gpu": gpu if gpu is not None and gpu["via"] == "cuda-python" else None,
        "triton": triton,
        "nvcc": nvcc,
        "roi_align_cuda_kernel": choose_cuda_kernel(triton=triton is not None, nvcc=nvcc is not None),
        # what a TensorRT build's RoIAlign plugin is compiled against (TENSORRT_INCLUDE or JetPack's)
        "tensorrt_headers": (
            None if include is None else {"path": str(include), "version": headers_version(include)}
        ),
        # the plugin's own sources, which an install without the package's data files lacks
        "plugin_sources_missing": missing_sources((*PLUGIN_SOURCES, *HEADERS)),
    }


def _opencv_info() -> dict[str, Any]:
    """Which OpenCV is imported, whether it reads GStreamer sources (csi://, gst://), and
    the one it hides if another is installed (a Jetson's, behind pip's wheel)."""
    try:
        import cv2
    except ImportError as exc:
        return {"error": str(exc)}
    from edge.stream.cameras import gstreamer_available, hidden_opencv

    gstreamer = gstreamer_available()
    other = None if gstreamer else hidden_opencv(cv2.__file__ or "", sys.path)
    return {
        "version": cv2.__version__,
        "path": os.path.dirname(cv2.__file__ or "") or None,
        "gstreamer": gstreamer,
        "hides": os.path.dirname(other) if other else None,
    }


def format_info(info: dict[str, Any]) -> str:
    """The lines of ``edge info``."""
    cpu = info["cpu"]
    lines = [
        f"edge {info['edge']}  python {info['python']}  {info['platform']}",
        f"  CPU: {cpu['model']}, {cpu['cores']} cores, vector extensions: "
        f"{' '.join(cpu['extensions']) or 'none found'}",
    ]
    for name, version in info["backends"].items():
        shown = "not installed" if version is None else version or "installed, does not import"
        if name == "tensorrt" and version:
            shown += _lint_note(version)
        lines.append(f"  backend {name:12s} {shown}")
    if (ort := info["onnxruntime"]) is not None:
        lines += [
            f"  onnxruntime telemetry: {ort['telemetry']}",
            f"  onnxruntime providers: {', '.join(ort['providers'])}",
            f"  onnxruntime INT8 on this CPU: {ort['int8']}",
            f"  onnxruntime reads ONNX IR up to {ort['reads_ir']} (a model past it is refused by name); "
            + (
                "INT8 calibration: every model"
                if ort["calibrates_panoptic"]
                else "INT8 calibration: not of the panoptic models (its quantizer fails on their float "
                "Softmax; 1.20 or newer calibrates them)"
            ),
        ]
    if (torch := info["torch"]) is not None:
        lines.append(
            f"  torch threads: {torch['threads']}  CUDA: {torch['cuda'] or 'no'}  "
            f"GPU: {torch['gpu'] or 'none'}  compute capability: {torch['compute_capability'] or '-'}"
        )
    nvcc = info["nvcc"]
    if (gpu := info.get("cuda_python_gpu")) is not None:
        lines.append(
            f"  GPU (cuda-python; torch has no CUDA): {gpu['name']}  compute capability: "
            f"{gpu['compute_capability']}  (TensorRT engines run; torch engines on the CPU)"
        )
    lines.append(
        f"  cuda-python: {info['cuda_python'] or 'not installed'}  "
        f"triton: {info['triton'] or 'not installed'}  "
        f"nvcc: {nvcc or 'not found'}{' (builds the RoIAlign plugin and its kernel)' if nvcc else ''}"
    )
    kernel = info["roi_align_cuda_kernel"]
    slow = " (slow: per-level torch ops)" if kernel == "torch" else ""
    lines.append(f"  RoIAlign on CUDA (torch backend): {kernel}{slow}")
    lines.append(f"  RoIAlign in TensorRT builds: {_plugin_line(info)}")
    outputs = info["outputs"]
    lines.append(
        "  outputs: .mcap: "
        + (
            f"mcap {outputs['mcap']}"
            if outputs["mcap"]
            else "mcap not installed (pip install 'edge-perception[mcap]')"
        )
        + "  viewer, /metrics and foxglove://: "
        + (f"aiohttp {outputs['aiohttp']}" if outputs["aiohttp"] else "aiohttp not installed")
    )
    lines.append(f"  OpenCV: {_opencv_line(info['opencv'])}")
    lines += camera_lines(info["cameras"])
    jetson = info["jetson"]
    if jetson is None:
        lines.append("  Jetson: not detected")
    else:
        lines.append(
            f"  Jetson: {jetson.get('model', '?')}  L4T {jetson.get('l4t', '?')}  "
            f"power mode: {jetson.get('power_mode') or 'unknown (nvpmodel not found)'}"
        )
    return "\n".join(lines)


def camera_lines(cameras: list[dict[str, Any]]) -> list[str]:
    """The V4L2 cameras plugged in, a line each with the name to give it in a rig (its by-id
    link: /dev/videoN changes with the order the cameras come up)."""
    from edge.rig_new import proposed

    if not cameras:
        return ["  cameras (V4L2): none plugged in (csi:// and network cameras are not listed)"]
    lines = ["  cameras (V4L2), by the name a rig should give each:"]
    sources = {camera["node"]: source for _, source, camera in proposed(cameras)}
    for camera in cameras:
        stable = sources.get(camera["node"], "(no udev link)")
        lines.append(f"    {camera['node']}  {camera['name'] or '?'}  {stable}")
    return lines


def _lint_note(tensorrt: str) -> str:
    """What ``edge lint`` checks a graph against for the installed TensorRT."""
    from edge.export.trt_versions import installed_target, release_of

    release = installed_target(tensorrt)
    if release is None:
        return "  (edge lint knows no TensorRT of its major version)"
    newer = release_of(tensorrt) is None  # linted as its major's newest the table knows
    major = release.split(".")[0]
    return f"  (edge lint --target {release}" + (f", the newest {major}.x it knows)" if newer else ")")


def _plugin_line(info: dict[str, Any]) -> str:
    """Whether a TensorRT build of a panoptic model gets the fused plugin here, and what it is
    compiled against (plugins/roi_align/tensorrt_library.py decides the same way)."""
    headers = info.get("tensorrt_headers")
    sources = info.get("plugin_sources_missing") or []
    if info["nvcc"] is None or headers is None or sources:
        missing = ["nvcc"] if info["nvcc"] is None else []
        if headers is None:
            missing.append("TensorRT's headers (set TENSORRT_INCLUDE to NvInfer.h's folder)")
        if sources:
            missing.append(
                f"its sources {', '.join(sources)} (this install lacks them: reinstall edge-perception)"
            )
        return (
            "TensorRT's per-level RoiAlign (the fused plugin needs nvcc, TensorRT's headers and its "
            f"sources; missing here: {', '.join(missing)})"
        )
    version = headers["version"] or "?"
    line = f"the fused plugin, built with nvcc against TensorRT {version}'s headers in {headers['path']}"
    installed = info["backends"].get("tensorrt")
    if isinstance(installed, str) and version.split(".")[0] != installed.split(".")[0]:
        line += f"; they are not the installed TensorRT {installed}'s: set TENSORRT_INCLUDE to its own"
    return line


def _opencv_line(cv: dict[str, Any]) -> str:
    if "error" in cv:
        return f"cannot be imported ({cv['error']})"
    gstreamer = "yes" if cv["gstreamer"] else "no (csi://, gst:// need it)"
    line = f"{cv['version']} ({cv['path'] or '?'})  GStreamer: {gstreamer}"
    if cv["hides"]:
        line += f"; it hides {cv['hides']} (pip uninstall opencv-python-headless uses that one)"
    return line
