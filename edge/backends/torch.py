"""Torch eager backend: the reference the other backends are checked against."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

from edge.backends.base import EngineBase, TensorSpec

_DTYPES = {torch.float32: "float32", torch.int32: "int32", torch.int64: "int64", torch.bool: "bool"}


class TorchEngine(EngineBase):
    name = "torch"

    def __init__(self, model: nn.Module, *, input_shape: tuple[int, int, int, int], threads: int = 0) -> None:
        self.model = model.eval()
        self.threads = threads
        self._inputs = [TensorSpec("image", tuple(input_shape), "float32")]
        with torch.no_grad():
            example = self._run(torch.zeros(input_shape))
        self._outputs = [
            TensorSpec(k, tuple(v.shape), _DTYPES.get(v.dtype, str(v.dtype))) for k, v in example.items()
        ]

    def _run(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        previous = torch.get_num_threads()
        if self.threads:
            torch.set_num_threads(self.threads)
        try:
            with torch.inference_mode():
                result: dict[str, torch.Tensor] = self.model(image)
                return result
        finally:
            torch.set_num_threads(previous)

    @property
    def outputs(self) -> list[TensorSpec]:
        return list(self._outputs)

    def infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        arrays = self.check_feeds(feeds)
        out = self._run(torch.from_numpy(arrays["image"]))
        return {k: v.numpy() for k, v in out.items()}
