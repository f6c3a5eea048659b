"""Panoptic FPN (Kirillov et al. 2019): Mask R-CNN instance branch + semantic FPN branch.

Input ``image``: float32 [B, 3, H, W], RGB, 0..255, H and W multiples of 32.
Outputs (all fixed shapes, K = detections_per_img):
  boxes [B,K,4] (x1,y1,x2,y2 pixels), scores [B,K], labels [B,K] int32 (thing index, -1 = empty),
  masks [B,K,28,28] (probabilities in the box), num_detections [B] int32,
  sem_logits [B,C,H/4,W/4], sem_labels [B,H,W] int32 (train ids).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from edge.models.configs import PanopticFPNConfig
from edge.models.detection import RPN
from edge.models.fpn import BackboneWithFPN
from edge.models.layers import Conv2dNorm
from edge.models.roi_heads import RoIHeads

OUTPUT_NAMES = ("boxes", "scores", "labels", "masks", "num_detections", "sem_logits", "sem_labels")


class SemSegFPNHead(nn.Module):
    """detectron2's SemSegFPNHead: per level conv-GN-ReLU (+2x up) to stride 4, sum, 1x1."""

    def __init__(self, channels: int, conv_dims: int, num_classes: int, norm_groups: int) -> None:
        super().__init__()
        self.in_features = ("p2", "p3", "p4", "p5")
        for i, name in enumerate(self.in_features):
            n_up = i  # stride 4 * 2**i -> stride 4
            layers: list[nn.Module] = []
            for k in range(max(1, n_up)):
                layers.append(
                    Conv2dNorm(
                        channels if k == 0 else conv_dims,
                        conv_dims,
                        3,
                        padding=1,
                        bias=False,
                        norm=nn.GroupNorm(norm_groups, conv_dims),
                        activation=nn.ReLU(),
                    )
                )
                if n_up:
                    layers.append(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False))
            self.add_module(name, nn.Sequential(*layers))
        self.predictor = nn.Conv2d(conv_dims, num_classes, 1)

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        x = None
        for name, f in zip(self.in_features, feats, strict=False):
            y = getattr(self, name)(f)
            x = y if x is None else x + y
        return self.predictor(x)


class PanopticFPN(nn.Module):
    pixel_mean: torch.Tensor
    pixel_std: torch.Tensor

    def __init__(self, cfg: PanopticFPNConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.backbone = BackboneWithFPN(cfg.backbone, cfg.fpn_channels)
        self.rpn = RPN(
            channels=cfg.fpn_channels,
            anchor_sizes=cfg.anchor_sizes,
            aspect_ratios=cfg.aspect_ratios,
            pre_nms_topk=cfg.rpn_pre_nms_topk,
            post_nms_topk=cfg.rpn_post_nms_topk,
            nms_thresh=cfg.rpn_nms_thresh,
        )
        self.roi_heads = RoIHeads(
            channels=cfg.fpn_channels,
            num_classes=cfg.num_thing_classes + 1,
            box_head_dim=cfg.box_head_dim,
            mask_head_dims=cfg.mask_head_dims,
            mask_dim_reduced=cfg.mask_dim_reduced,
            score_thresh=cfg.box_score_thresh,
            nms_thresh=cfg.box_nms_thresh,
            detections_per_img=cfg.detections_per_img,
            candidates_per_img=cfg.candidates_per_img,
            sampling_ratio=cfg.roi_sampling_ratio,
            aligned=cfg.roi_aligned,
        )
        self.sem_seg_head = SemSegFPNHead(
            cfg.fpn_channels, cfg.sem_conv_dims, cfg.num_sem_classes, cfg.sem_norm_groups
        )
        self.register_buffer("pixel_mean", torch.tensor(cfg.pixel_mean).reshape(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(cfg.pixel_std).reshape(1, 3, 1, 1), persistent=False)

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        h, w = int(image.shape[-2]), int(image.shape[-1])
        x = (image - self.pixel_mean) / self.pixel_std
        feats = self.backbone(x)  # P2..P6
        proposals, valid = self.rpn(feats, (h, w))
        out = self.roi_heads(feats[:4], proposals, valid, (h, w))
        sem = self.sem_seg_head(feats[:4])
        full = F.interpolate(sem, size=(h, w), mode="bilinear", align_corners=False)
        out["sem_logits"] = sem
        out["sem_labels"] = full.argmax(dim=1).to(torch.int32)
        return {k: out[k] for k in OUTPUT_NAMES}
