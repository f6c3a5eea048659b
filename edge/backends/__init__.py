"""Inference backends behind one Engine protocol; optional ones are imported lazily."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from edge.backends.base import Engine, EngineBase, TensorSpec
from edge.errors import ConfigError

BACKENDS = ("onnxruntime", "tensorrt", "torch")


def available_backends() -> dict[str, bool]:
    """Which backends can be used on this machine (without importing them)."""
    return {
        "onnxruntime": importlib.util.find_spec("onnxruntime") is not None,
        "tensorrt": importlib.util.find_spec("tensorrt") is not None,
        "torch": importlib.util.find_spec("torch") is not None,
    }


def open_engine(path: str | Path, *, backend: str, **options: Any) -> Engine:
    """Load a built artifact with the named backend."""
    if backend == "onnxruntime":
        from edge.backends.onnxruntime import OnnxRuntimeEngine

        return OnnxRuntimeEngine(path, **options)
    if backend == "tensorrt":
        from edge.backends.tensorrt import TensorRTEngine

        return TensorRTEngine(path, **options)
    if backend == "torch":
        from edge.backends.torch import load_engine

        return load_engine(path, **options)
    raise ConfigError(f"backend {backend!r} is unknown; choose one of: {', '.join(BACKENDS)}")


__all__ = ["BACKENDS", "Engine", "EngineBase", "TensorSpec", "available_backends", "open_engine"]
