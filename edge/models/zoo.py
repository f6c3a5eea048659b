"""Named model configurations."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge.errors import UnknownModelError
from edge.models.configs import DepthConfig, PanopticFPNConfig, ResNetConfig

if TYPE_CHECKING:
    from torch import nn

R18 = ResNetConfig(block="basic", layers=(2, 2, 2, 2))
R50 = ResNetConfig(block="bottleneck", layers=(3, 4, 6, 3))
TINY = ResNetConfig(block="basic", layers=(1, 1, 1, 1), stem_channels=16, widths=(16, 32, 64, 96))
# wide enough that INT8 kernels pay (at 16-96 channels they do not), small enough to train on a CPU
SMALL = ResNetConfig(block="basic", layers=(1, 1, 1, 1), stem_channels=32, widths=(32, 64, 128, 256))


@dataclass(frozen=True)
class ZooEntry:
    name: str
    kind: str  # "panoptic" or "depth"
    config: PanopticFPNConfig | DepthConfig
    description: str

    def create(self) -> nn.Module:
        if isinstance(self.config, PanopticFPNConfig):
            from edge.models.panoptic_fpn import PanopticFPN

            return PanopticFPN(self.config)
        from edge.models.depth import DepthNet

        return DepthNet(self.config)

    def config_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self.config)


_ZOO: dict[str, ZooEntry] = {
    e.name: e
    for e in (
        ZooEntry(
            "panoptic_fpn_r50",
            "panoptic",
            PanopticFPNConfig(backbone=R50),
            "Panoptic FPN, ResNet-50, paper scale",
        ),
        ZooEntry(
            "panoptic_fpn_r18",
            "panoptic",
            PanopticFPNConfig(
                backbone=R18,
                box_head_dim=512,
                rpn_pre_nms_topk=500,
                rpn_post_nms_topk=300,
                candidates_per_img=500,
                detections_per_img=50,
            ),
            "Panoptic FPN, ResNet-18, edge budget",
        ),
        ZooEntry(
            "panoptic_fpn_tiny",
            "panoptic",
            PanopticFPNConfig(
                backbone=TINY,
                fpn_channels=32,
                box_head_dim=128,
                mask_head_dims=(32, 32, 32, 32),
                mask_dim_reduced=32,
                sem_conv_dims=32,
                sem_norm_groups=8,
                # 200/64 left large near things without a proposal: PQ things +10 to +16 for
                # 1.10x the engine time (benchmarks/results/rpn_budget_cpu.json)
                rpn_pre_nms_topk=400,
                rpn_post_nms_topk=150,
                candidates_per_img=256,
                detections_per_img=20,
            ),
            "Panoptic FPN, tiny widths, for tests and the demo",
        ),
        ZooEntry(
            "panoptic_fpn_small",
            "panoptic",
            PanopticFPNConfig(
                backbone=SMALL,
                fpn_channels=64,
                box_head_dim=256,
                mask_head_dims=(64, 64, 64, 64),
                mask_dim_reduced=64,
                sem_conv_dims=64,
                sem_norm_groups=16,
                # as for tiny: PQ things +2.9 / +4.8 on the two val splits for 1.07x the engine
                # time (benchmarks/results/rpn_budget_small_cpu.json)
                rpn_pre_nms_topk=400,
                rpn_post_nms_topk=150,
                candidates_per_img=256,
                detections_per_img=20,
            ),
            "Panoptic FPN, small widths: the demo on a CPU, INT8 pays",
        ),
        ZooEntry(
            "depth_r18", "depth", DepthConfig(backbone=R18), "monodepth2-style depth, ResNet-18 encoder"
        ),
        ZooEntry(
            "depth_small",
            "depth",
            DepthConfig(backbone=SMALL),
            "monodepth2-style depth, small encoder: the demo on a CPU, INT8 pays",
        ),
        ZooEntry(
            "depth_tiny",
            "depth",
            DepthConfig(backbone=TINY, decoder_channels=(8, 16, 16, 32, 64)),
            "monodepth2-style depth, tiny widths, for tests and the demo",
        ),
    )
}


WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"


def bundled_weights(name: str) -> Path | None:
    """The checkpoint shipped with edge for ``name`` (trained on synthetic drives), if any."""
    get_entry(name)
    path = WEIGHTS_DIR / f"{name}.pt"
    return path if path.is_file() else None


def list_models() -> list[str]:
    return sorted(_ZOO)


def get_entry(name: str) -> ZooEntry:
    try:
        return _ZOO[name]
    except KeyError:
        raise UnknownModelError(f"unknown model {name!r}; known models: {', '.join(list_models())}") from None


def pools_rois(name: str) -> bool:
    """A model with RoIAlign in it: a panoptic one's RoI heads."""
    return get_entry(name).kind == "panoptic"


def create_model(name: str, *, seed: int | None = 0) -> nn.Module:
    """The named model in eval mode; with ``seed`` its random init is reproducible."""
    import torch

    entry = get_entry(name)
    if seed is None:
        model = entry.create()
    else:
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            model = entry.create()
    return model.eval()
