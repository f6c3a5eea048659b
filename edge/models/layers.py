"""Small layers shared by the models."""

from __future__ import annotations

import itertools
from typing import Any

import torch
from torch import nn


class FrozenBatchNorm2d(nn.Module):
    """BatchNorm with fixed statistics (inference only), torchvision's buffer names."""

    weight: torch.Tensor
    bias: torch.Tensor
    running_mean: torch.Tensor
    running_var: torch.Tensor

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.register_buffer("weight", torch.ones(num_features))
        self.register_buffer("bias", torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        # checkpoints saved from a trainable BatchNorm2d carry this counter; it means nothing here
        state_dict.pop(prefix + "num_batches_tracked", None)
        super()._load_from_state_dict(state_dict, prefix, *args)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.weight * (self.running_var + self.eps).rsqrt()
        shift = self.bias - self.running_mean * scale
        return x * scale.reshape(1, -1, 1, 1) + shift.reshape(1, -1, 1, 1)


def fold_frozen_batchnorm(model: nn.Module) -> int:
    """Fold, in place, each FrozenBatchNorm2d that directly follows a convolution into it:
    ResNet's ``convN`` / ``bnN`` of one module and a ``(Conv2d, FrozenBatchNorm2d)`` pair in
    a Sequential (its downsample). The norm becomes an Identity; returns how many were
    folded. For inference: the model's state_dict no longer loads into a fresh one.

    Each norm costs an eager forward seven operations, two of them passes over its whole
    activation (x * scale + shift), which the convolution's bias then does for free."""
    folded = 0
    for module in list(model.modules()):
        if isinstance(module, nn.Sequential):
            items = list(module.named_children())
            for (_, conv), (name, norm) in itertools.pairwise(items):
                if isinstance(conv, nn.Conv2d) and isinstance(norm, FrozenBatchNorm2d):
                    _fold(conv, norm)
                    setattr(module, name, nn.Identity())
                    folded += 1
        for name, child in list(module.named_children()):
            before = getattr(module, "conv" + name[2:], None) if name.startswith("bn") else None
            if isinstance(child, FrozenBatchNorm2d) and isinstance(before, nn.Conv2d):
                _fold(before, child)
                setattr(module, name, nn.Identity())
                folded += 1
    return folded


def _fold(conv: nn.Conv2d, norm: FrozenBatchNorm2d) -> None:
    with torch.no_grad():
        scale = norm.weight * (norm.running_var + norm.eps).rsqrt()
        shift = norm.bias - norm.running_mean * scale
        conv.weight.mul_(scale.reshape(-1, 1, 1, 1).to(conv.weight.dtype))
        if conv.bias is None:
            conv.bias = nn.Parameter(shift.to(conv.weight.dtype), requires_grad=False)
        else:
            conv.bias.mul_(scale).add_(shift)


class Conv2dNorm(nn.Conv2d):
    """Conv2d with an optional ``norm`` child and activation (detectron2's naming)."""

    def __init__(
        self,
        *args: Any,
        norm: nn.Module | None = None,
        activation: nn.Module | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.norm = norm
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = super().forward(x)
        if self.norm is not None:
            x = self.norm(x)
        if self.activation is not None:
            x = self.activation(x)
        return x
