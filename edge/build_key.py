"""What keys a build: tool versions, edge's own code, weights and the request.

An unchanged key means an unchanged artifact, so ``edge.build`` reuses it instead of
rebuilding. Everything that changes what a build writes belongs in the key; nothing
that does not (runtime-only modules, the Python patch version) may, or every engine
would be rebuilt for nothing.
"""

from __future__ import annotations

import hashlib
import json
import platform
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge.util.fs import sha256_file

if TYPE_CHECKING:
    from edge.build import BuildRequest


def tool_versions() -> dict[str, str]:
    import onnx
    import onnxruntime
    import torch

    import edge

    return {
        "edge": edge.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
    }


def code_sources(req: BuildRequest) -> list[Path]:
    """The sources whose code decides what a build of ``req`` writes.

    Model, export and plugin code shape every ONNX file; the calibration package shapes
    INT8 ones; the backend's own module writes the artifact. Runtime-only modules stay out
    so that changing them does not rebuild every engine.
    """
    base = Path(__file__).parent
    root = base.parent
    folders = [base / "models", base / "export", root / "plugins" / "roi_align"]
    if req.precision == "int8":
        folders.append(root / "calib")
    files = [p for folder in folders for p in sorted(folder.glob("*.py"))]
    backend_module = base / "backends" / f"{req.backend}.py"
    if backend_module.is_file():
        files.append(backend_module)
    return files


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
        "model": req.model,
        "config": config,
        "weights": weights["sha256"] or weights["source"],
        "input": [req.batch, 3, req.height, req.width],
        "backend": req.backend,
        "precision": req.precision,
        "opset": req.opset,
        "calibration": [
            req.calib_data,
            req.calib_frames,
            req.calib_method,
            req.int8_min_snr,
            req.int8_equalize,
        ]
        if req.precision == "int8"
        else None,
        "versions": {k: v for k, v in versions.items() if k != "python"},
        "tensorrt": _trt_key(req) if req.backend == "tensorrt" else None,
        "code": code_digest(code_sources(req)),
    }
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
