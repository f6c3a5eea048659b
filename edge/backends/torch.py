"""Torch eager backend: the reference the other backends are checked against, and the
GPU path on machines with CUDA but no TensorRT.

A torch "engine" file (``<id>.pt``) holds the zoo model's name, its config, the input
shape and the weights; it is loaded with ``weights_only=True`` and rebuilt from edge's own
model code. On CUDA each engine owns a stream, so panoptic and depth overlap on the GPU,
and CUDA events around the forward pass give the GPU time of every call.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from edge.backends.base import EngineBase, TensorSpec
from edge.errors import BackendError, BackendUnavailableError, EngineInputError
from edge.util.fs import atomic_torch_save

_DTYPES = {torch.float32: "float32", torch.int32: "int32", torch.int64: "int64", torch.bool: "bool"}
ARTIFACT_FORMAT = "edge.torch-engine/1"


class TorchEngine(EngineBase):
    name = "torch"

    def __init__(
        self,
        model: nn.Module,
        *,
        input_shape: tuple[int, int, int, int],
        threads: int = 0,
        device: str = "cpu",
        channels_last: bool = True,
        fold_norms: bool = False,
    ) -> None:
        self.device = _check_device(device)
        if fold_norms:  # the model is the engine's own (it no longer loads a checkpoint)
            from edge.models.layers import fold_frozen_batchnorm

            fold_frozen_batchnorm(model)
        self.model = model.eval().to(self.device)
        # NHWC: cuDNN's fastest convolutions and the RoIAlign kernel's coalesced reads want it
        # on CUDA, and oneDNN's convolutions on the CPU are faster with it too (1.06-1.69x per
        # forward, benchmarks/results/torch_cpu_layout_cpu.json); RoIAlign's CPU path then
        # reads the maps without a copy
        self._memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.model.to(memory_format=self._memory_format)  # type: ignore[call-overload]
        self.threads = threads
        self.last_device_ms: float | None = None
        self._inputs = [TensorSpec("image", tuple(input_shape), "float32")]
        self._stream: Any = None
        self._host_in: torch.Tensor | None = None
        if self.device.type == "cuda":
            self._stream = torch.cuda.Stream(self.device)
            # pinned staging buffer: the host-to-device copy can then run asynchronously
            self._host_in = torch.empty(tuple(input_shape), dtype=torch.float32).pin_memory()
        example = self._forward(np.zeros(input_shape, np.float32))
        self._outputs = [
            TensorSpec(k, tuple(v.shape), _DTYPES.get(v.dtype, str(v.dtype))) for k, v in example.items()
        ]

    def _forward(self, image: np.ndarray) -> dict[str, torch.Tensor]:
        if self._stream is None:
            return self._forward_cpu(torch.from_numpy(image))
        assert self._host_in is not None
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        with torch.cuda.stream(self._stream), torch.inference_mode():
            self._host_in.copy_(torch.from_numpy(image))
            x = self._host_in.to(self.device, non_blocking=True).contiguous(memory_format=self._memory_format)
            start.record(self._stream)
            result: dict[str, torch.Tensor] = self.model(x)
            end.record(self._stream)
            out = {k: v.to("cpu", non_blocking=False) for k, v in result.items()}
        self._stream.synchronize()
        self.last_device_ms = float(start.elapsed_time(end))
        return out

    def _forward_cpu(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        previous = torch.get_num_threads()
        if self.threads:
            torch.set_num_threads(self.threads)
        try:
            with torch.inference_mode():
                result: dict[str, torch.Tensor] = self.model(
                    image.contiguous(memory_format=self._memory_format)
                )
                return result
        finally:
            torch.set_num_threads(previous)

    @property
    def outputs(self) -> list[TensorSpec]:
        return list(self._outputs)

    def infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        arrays = self.check_feeds(feeds)
        return {k: v.numpy() for k, v in self._forward(arrays["image"]).items()}


def _check_device(device: str) -> torch.device:
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise EngineInputError(f"torch device {device!r} is not valid; expected 'cpu' or 'cuda[:N]'") from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise BackendUnavailableError(
                f"torch device {device!r} was asked for, but this torch ({torch.__version__}) sees no CUDA "
                "GPU; use --device cpu, or install a CUDA build of torch"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise EngineInputError(
                f"torch device {device!r} does not exist; this machine has {torch.cuda.device_count()} GPU(s)"
            )
    elif dev.type != "cpu":
        raise EngineInputError(f"torch device {device!r} is not supported; expected 'cpu' or 'cuda[:N]'")
    return dev


def save_artifact(model: nn.Module, *, name: str, input_shape: tuple[int, ...], path: Path) -> None:
    """Write a torch engine file atomically (never half-written)."""
    from edge.models.zoo import get_entry

    payload = {
        "format": ARTIFACT_FORMAT,
        "model": name,
        "config": get_entry(name).config_dict(),
        "input_shape": list(input_shape),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    atomic_torch_save(path, payload)


def load_engine(path: str | Path, *, device: str = "cpu", threads: int = 0) -> TorchEngine:
    """Rebuild the model named in a torch engine file and load its weights."""
    from edge.models.zoo import create_model, get_entry

    path = Path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as exc:
        raise BackendError(f"torch engine {str(path)!r} does not exist") from exc
    except Exception as exc:  # torch raises many kinds for a damaged zip/pickle
        raise BackendError(
            f"torch engine {str(path)!r} cannot be read ({type(exc).__name__}: {exc}); rebuild it"
        ) from exc
    if not isinstance(payload, dict) or payload.get("format") != ARTIFACT_FORMAT:
        raise BackendError(
            f"{str(path)!r} is not an edge torch engine (expected format {ARTIFACT_FORMAT!r}); rebuild it"
        )
    name = str(payload["model"])
    config = get_entry(name).config_dict()
    if _jsonable(payload["config"]) != _jsonable(config):
        raise BackendError(
            f"torch engine {str(path)!r} was built from another configuration of {name!r} than this "
            "edge version defines; rebuild it with edge build --force"
        )
    model = create_model(name, seed=None)
    try:
        model.load_state_dict(payload["state_dict"], strict=True)
    except RuntimeError as exc:
        raise BackendError(f"torch engine {str(path)!r} does not fit model {name!r}: {exc}") from exc
    shape = tuple(int(v) for v in payload["input_shape"])
    if len(shape) != 4:
        raise BackendError(f"torch engine {str(path)!r} has input shape {shape}; expected NCHW")
    # on CUDA, where the host issuing a forward's operations set its time on an H200, the
    # norms folded take 140 of depth r18's 235 (benchmarks/results/fold_norms_cpu.json); on
    # the CPU folding measured within +-6% either way, so the model is run as built there
    cuda = _check_device(device).type == "cuda"
    return TorchEngine(model, input_shape=shape, threads=threads, device=device, fold_norms=cuda)


def _jsonable(value: Any) -> Any:
    """Configs compare as JSON would see them (tuples and lists alike)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value
