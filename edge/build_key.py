"""What keys a build: tool versions, edge's own code, weights and the request.

An unchanged key means an unchanged artifact, so ``edge.build`` reuses it instead of
rebuilding. Everything that changes what a build writes belongs in the key; nothing
that does not (runtime-only modules, the Python patch version) may, or every engine
would be rebuilt for nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import platform
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge.util.fs import sha256_file

if TYPE_CHECKING:
    from edge.build import BuildRequest


# the exporter's optimiser (edge/export/optimize.py) rewrites every graph with these: they shape the ONNX too
_EXPORT_PACKAGES = ("onnxscript", "onnx-ir")
# what an export depends on, of tool_versions()
_EXPORT_VERSIONS = ("edge", "torch", "onnx", *_EXPORT_PACKAGES)


def tool_versions() -> dict[str, str]:
    from importlib import metadata

    import onnx
    import torch

    import edge
    from edge.util.ort import onnxruntime_module

    onnxruntime = onnxruntime_module()

    versions = {
        "edge": edge.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
    }
    for name in _EXPORT_PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):  # older torch exporters lack them
            versions[name] = metadata.version(name)
    return versions


def code_sources(req: BuildRequest) -> list[Path]:
    """The sources whose code decides what a build of ``req`` writes.

    Model, export and plugin code shape every ONNX file; the calibration package shapes
    INT8 ones; the backend's own module writes the artifact. Runtime-only modules stay out
    so that changing them does not rebuild every engine.
    """
    base = Path(__file__).parent
    files = export_sources()
    if req.precision == "int8":
        files += sorted((base.parent / "calib").glob("*.py"))
    backend_module = base / "backends" / f"{req.backend}.py"
    if backend_module.is_file():
        files.append(backend_module)
    return files


def export_sources() -> list[Path]:
    """The sources that shape an ONNX export: model, export and plugin code."""
    base = Path(__file__).parent
    folders = [base / "models", base / "export", base.parent / "plugins" / "roi_align"]
    return [p for folder in folders for p in sorted(folder.glob("*.py"))]


def code_digest(files: Iterable[Path]) -> str:
    """Hash of source files by folder/name and content: changing them invalidates old engines."""
    h = hashlib.sha256()
    for path in files:
        h.update(f"{path.parent.name}/{path.name}".encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def weights_info(req: BuildRequest) -> dict[str, Any]:
    if req.checkpoint is None:
        return {"source": f"random-init(seed={req.seed})", "sha256": None}
    p = req.checkpoint
    files = sorted(p.glob("*.pth")) if p.is_dir() else [p]
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode())
        h.update(sha256_file(f).encode())
    return {"source": str(p), "sha256": h.hexdigest()}


def fingerprint(
    req: BuildRequest, config: dict[str, Any], weights: dict[str, Any], versions: dict[str, str]
) -> str:
    key = {
        **_model_key(req, config, weights),
        "backend": req.backend,
        "precision": req.precision,
        "calibration": [
            req.calib_data,
            req.calib_frames,
            req.calib_method,
            req.int8_min_snr,
            req.int8_equalize,
            req.calib_fit,
            req.int8_bias_correction,
        ]
        if req.precision == "int8"
        else None,
        "versions": {k: v for k, v in versions.items() if k != "python"},
        "tensorrt": _trt_key(req) if req.backend == "tensorrt" else None,
        "code": code_digest(code_sources(req)),
    }
    return _digest(key)


def export_key(
    req: BuildRequest, config: dict[str, Any], weights: dict[str, Any], versions: dict[str, str]
) -> str:
    """What decides a build's ONNX export, and nothing else.

    Builds of one model, weights and size for several backends or precisions export the
    same graph; a build whose export key matches one already in its folder takes that
    export instead of exporting again (the slowest step of most builds).
    """
    key = {
        **_model_key(req, config, weights),
        "roi_align": req.roi_align_form,
        "versions": {k: versions.get(k) for k in _EXPORT_VERSIONS},
        "code": code_digest(export_sources()),
    }
    return _digest(key)


def _model_key(req: BuildRequest, config: dict[str, Any], weights: dict[str, Any]) -> dict[str, Any]:
    """The model as exported: both keys start from it."""
    return {
        "model": req.model,
        "config": config,
        "weights": weights["sha256"] or weights["source"],
        "input": [req.batch, 3, req.height, req.width],
        "opset": req.opset,
    }


def _digest(key: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()


def _trt_key(req: BuildRequest) -> dict[str, Any]:
    """What else makes a TensorRT engine: the GPU, build options, plugin library contents."""
    from edge.compat import current_machine

    machine = current_machine("tensorrt")
    return {
        "gpu": machine.get("gpu"),
        "compute_capability": machine.get("compute_capability"),
        "options": [req.workspace_mb, req.dla_core, req.gpu_fallback, req.version_compatible],
        "hardware_compatible": req.hardware_compatible,
        "plugins": {p.name: sha256_file(p) for p in req.plugin_libraries},
        "calib_cache": sha256_file(req.calib_cache) if req.calib_cache else None,
    }
