"""Feature Pyramid Network with torchvision's names (inner_blocks, layer_blocks)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from edge.models.resnet import ResNet, ResNetConfig


class FPN(nn.Module):
    """P2..P5 from C2..C5, plus P6 by stride-2 subsampling of P5 (LastLevelMaxPool)."""

    def __init__(self, in_channels: tuple[int, ...], out_channels: int) -> None:
        super().__init__()
        self.inner_blocks = nn.ModuleList(nn.Sequential(nn.Conv2d(c, out_channels, 1)) for c in in_channels)
        self.layer_blocks = nn.ModuleList(
            nn.Sequential(nn.Conv2d(out_channels, out_channels, 3, padding=1)) for _ in in_channels
        )

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        last = self.inner_blocks[-1](feats[-1])
        results = [self.layer_blocks[-1](last)]
        for idx in range(len(feats) - 2, -1, -1):
            lateral = self.inner_blocks[idx](feats[idx])
            last = lateral + F.interpolate(last, size=lateral.shape[-2:], mode="nearest")
            results.insert(0, self.layer_blocks[idx](last))
        results.append(F.max_pool2d(results[-1], kernel_size=1, stride=2))
        return results


class BackboneWithFPN(nn.Module):
    """``body`` (ResNet) + ``fpn``: torchvision's ``backbone.body.*`` / ``backbone.fpn.*``."""

    def __init__(self, cfg: ResNetConfig, fpn_channels: int) -> None:
        super().__init__()
        self.body = ResNet(cfg)
        self.fpn = FPN(cfg.out_channels, fpn_channels)
        self.out_channels = fpn_channels

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.fpn(self.body(x)[1:])
