"""Monocular depth: a monodepth2-style ResNet encoder / skip-connected decoder.

Module names follow monodepth2 (``encoder.encoder.*``, ``decoder.decoder.{i}.*``) so its
encoder.pth / depth.pth load directly. Input ``image``: float32 [B,3,H,W], RGB, 0..255.
Outputs: ``depth`` [B,1,H,W] metres in [min_depth, max_depth], ``disparity`` [B,1,H,W] in 0..1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from edge.models.configs import DepthConfig, ResNetConfig
from edge.models.resnet import ResNet

OUTPUT_NAMES = ("depth", "disparity")


class Conv3x3(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.pad = nn.ReflectionPad2d(1)
        self.conv = nn.Conv2d(cin, cout, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.pad(x))


class ConvBlock(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = Conv3x3(cin, cout)
        self.nonlin = nn.ELU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.nonlin(self.conv(x))


class ResnetEncoder(nn.Module):
    def __init__(self, cfg: ResNetConfig) -> None:
        super().__init__()
        self.encoder = ResNet(cfg)
        self.num_ch_enc = (cfg.stem_channels, *cfg.out_channels)

    def forward(self, image01: torch.Tensor) -> list[torch.Tensor]:
        return self.encoder((image01 - 0.45) / 0.225)


class DepthDecoder(nn.Module):
    """monodepth2's decoder; the ModuleList order (upconvs 4..0, then dispconvs) is its key order."""

    def __init__(
        self, num_ch_enc: tuple[int, ...], num_ch_dec: tuple[int, ...], scales: tuple[int, ...]
    ) -> None:
        super().__init__()
        self.scales = scales
        convs: list[nn.Module] = []
        for i in range(4, -1, -1):
            cin = num_ch_enc[-1] if i == 4 else num_ch_dec[i + 1]
            convs.append(ConvBlock(cin, num_ch_dec[i]))
            cin = num_ch_dec[i] + (num_ch_enc[i - 1] if i > 0 else 0)
            convs.append(ConvBlock(cin, num_ch_dec[i]))
        for s in scales:
            convs.append(Conv3x3(num_ch_dec[s], 1))
        self.decoder = nn.ModuleList(convs)

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        """Sigmoid disparity at full resolution (scale 0; the others serve training only)."""
        x = feats[-1]
        for n, i in enumerate(range(4, -1, -1)):
            x = self.decoder[2 * n](x)
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
            if i > 0:
                x = torch.cat([x, feats[i - 1]], dim=1)
            x = self.decoder[2 * n + 1](x)
        return torch.sigmoid(self.decoder[10 + self.scales.index(0)](x))


class DepthNet(nn.Module):
    def __init__(self, cfg: DepthConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = ResnetEncoder(cfg.backbone)
        self.decoder = DepthDecoder(self.encoder.num_ch_enc, cfg.decoder_channels, cfg.scales)

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        disp = self.decoder(self.encoder(image / 255.0))
        min_disp = 1.0 / self.cfg.max_depth
        max_disp = 1.0 / self.cfg.min_depth
        depth = 1.0 / (min_disp + (max_disp - min_disp) * disp)
        return {"depth": depth, "disparity": disp}
