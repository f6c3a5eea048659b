"""The models' configurations: plain dataclasses, no torch, so that naming a model (the
zoo, the CLI's checks of its arguments) does not wait for torch to import."""

from __future__ import annotations

from dataclasses import dataclass, field

from edge.errors import ConfigError


@dataclass(frozen=True)
class ResNetConfig:
    """block: "basic" (ResNet-18/34) or "bottleneck" (ResNet-50/101)."""

    block: str = "basic"
    layers: tuple[int, ...] = (2, 2, 2, 2)
    stem_channels: int = 64
    widths: tuple[int, ...] = (64, 128, 256, 512)
    # detectron2's MSRA weights put the stride on the 1x1 conv; torchvision on the 3x3
    stride_in_1x1: bool = False

    @property
    def expansion(self) -> int:
        return 4 if self.block == "bottleneck" else 1

    @property
    def out_channels(self) -> tuple[int, ...]:
        return tuple(w * self.expansion for w in self.widths)


@dataclass(frozen=True)
class PanopticFPNConfig:
    backbone: ResNetConfig = field(default_factory=ResNetConfig)
    fpn_channels: int = 256
    num_thing_classes: int = 8
    num_sem_classes: int = 19
    anchor_sizes: tuple[float, ...] = (32.0, 64.0, 128.0, 256.0, 512.0)
    aspect_ratios: tuple[float, ...] = (0.5, 1.0, 2.0)
    rpn_pre_nms_topk: int = 1000
    rpn_post_nms_topk: int = 1000
    rpn_nms_thresh: float = 0.7
    box_head_dim: int = 1024
    box_score_thresh: float = 0.05
    box_nms_thresh: float = 0.5
    detections_per_img: int = 100
    candidates_per_img: int = 1000
    mask_head_dims: tuple[int, ...] = (256, 256, 256, 256)
    mask_dim_reduced: int = 256
    sem_conv_dims: int = 128
    sem_norm_groups: int = 32
    roi_sampling_ratio: int = 2
    roi_aligned: bool = True
    pixel_mean: tuple[float, float, float] = (123.675, 116.28, 103.53)
    pixel_std: tuple[float, float, float] = (58.395, 57.12, 57.375)


@dataclass(frozen=True)
class DepthConfig:
    backbone: ResNetConfig = field(default_factory=ResNetConfig)
    decoder_channels: tuple[int, ...] = (16, 32, 64, 128, 256)
    min_depth: float = 0.1
    max_depth: float = 100.0
    scales: tuple[int, ...] = (0, 1, 2, 3)


def check_input_size(height: int, width: int, multiple: int = 32) -> None:
    """FPN strides need sizes divisible by 32 (P5) for the top-down sums to line up."""
    if height <= 0 or width <= 0 or height % multiple or width % multiple:
        raise ConfigError(
            f"input size {height}x{width} is not supported: height and width must be positive "
            f"multiples of {multiple} (e.g. 256x512, 512x1024)"
        )
