"""Anchors, box coding and the region proposal network, with static output shapes.

Follows torchvision's Mask R-CNN inference step by step; where torchvision drops boxes
(small, low score, suppressed), these functions mask them instead, and a fixed top-K
picks the survivors. With fewer survivors than K the tail is marked invalid.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from edge.models.ops import nms_keep

BBOX_XFORM_CLIP = math.log(1000.0 / 16)
INVALID_SCORE = -1.0  # below every probability; NMS ignores scores <= -0.5


def anchors_for_level(
    size: float,
    aspect_ratios: tuple[float, ...],
    grid: tuple[int, int],
    stride: tuple[int, int],
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """torchvision AnchorGenerator anchors: [H*W*A, 4], location-major, ratio-minor."""
    ratios = torch.tensor(aspect_ratios, dtype=dtype, device=device)
    h_ratios = torch.sqrt(ratios)
    w_ratios = 1.0 / h_ratios
    ws = w_ratios * size
    hs = h_ratios * size
    base = (torch.stack([-ws, -hs, ws, hs], dim=1) / 2).round()
    gh, gw = grid
    sx = torch.arange(gw, dtype=dtype, device=device) * stride[1]
    sy = torch.arange(gh, dtype=dtype, device=device) * stride[0]
    yy, xx = torch.meshgrid(sy, sx, indexing="ij")
    shifts = torch.stack([xx.reshape(-1), yy.reshape(-1), xx.reshape(-1), yy.reshape(-1)], dim=1)
    return (shifts[:, None, :] + base[None, :, :]).reshape(-1, 4)


def decode_boxes(
    deltas: torch.Tensor, boxes: torch.Tensor, weights: tuple[float, float, float, float]
) -> torch.Tensor:
    """deltas [..., K*4] relative to boxes [..., 4] -> [..., K, 4] (torchvision BoxCoder)."""
    wx, wy, ww, wh = weights
    widths = boxes[..., 2] - boxes[..., 0]
    heights = boxes[..., 3] - boxes[..., 1]
    ctr_x = boxes[..., 0] + 0.5 * widths
    ctr_y = boxes[..., 1] + 0.5 * heights
    d = deltas.reshape(*deltas.shape[:-1], -1, 4)
    dx = d[..., 0] / wx
    dy = d[..., 1] / wy
    dw = (d[..., 2] / ww).clamp(max=BBOX_XFORM_CLIP)
    dh = (d[..., 3] / wh).clamp(max=BBOX_XFORM_CLIP)
    pcx = dx * widths[..., None] + ctr_x[..., None]
    pcy = dy * heights[..., None] + ctr_y[..., None]
    half_w = 0.5 * torch.exp(dw) * widths[..., None]
    half_h = 0.5 * torch.exp(dh) * heights[..., None]
    return torch.stack([pcx - half_w, pcy - half_h, pcx + half_w, pcy + half_h], dim=-1)


def clip_boxes(boxes: torch.Tensor, height: int, width: int) -> torch.Tensor:
    x = boxes[..., 0::2].clamp(0, width)
    y = boxes[..., 1::2].clamp(0, height)
    return torch.stack([x[..., 0], y[..., 0], x[..., 1], y[..., 1]], dim=-1)


def box_size_ok(boxes: torch.Tensor, min_size: float) -> torch.Tensor:
    return ((boxes[..., 2] - boxes[..., 0]) >= min_size) & ((boxes[..., 3] - boxes[..., 1]) >= min_size)


def batched_nms_keep(
    boxes: torch.Tensor, scores: torch.Tensor, groups: torch.Tensor, iou_threshold: float
) -> torch.Tensor:
    """NMS within each group: offset boxes per group so groups never overlap (torchvision)."""
    offsets = groups.to(boxes.dtype) * (boxes.amax(dim=(1, 2), keepdim=True)[..., 0] + 1.0)
    return nms_keep(boxes + offsets[..., None], scores, iou_threshold, -0.5)


def select_topk(
    scores: torch.Tensor, keep: torch.Tensor, k: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Top-k of the kept scores: (scores [B,k], indices [B,k], valid [B,k])."""
    masked = torch.where(keep, scores, torch.full_like(scores, INVALID_SCORE))
    top, idx = masked.topk(k, dim=1)
    return top, idx, top > INVALID_SCORE


def gather_rows(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """x [B, N, ...] indexed by idx [B, K] along dim 1."""
    shape = idx.shape + x.shape[2:]
    expand = idx.reshape(*idx.shape, *([1] * (x.dim() - 2))).expand(shape)
    return x.gather(1, expand)


class RPNHead(nn.Module):
    """torchvision's RPNHead names: conv.0.0, cls_logits, bbox_pred."""

    def __init__(self, channels: int, num_anchors: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1)))
        self.cls_logits = nn.Conv2d(channels, num_anchors, 1)
        self.bbox_pred = nn.Conv2d(channels, num_anchors * 4, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        t = torch.relu(self.conv(x))
        return self.cls_logits(t), self.bbox_pred(t)


class RPN(nn.Module):
    def __init__(
        self,
        *,
        channels: int,
        anchor_sizes: tuple[float, ...],
        aspect_ratios: tuple[float, ...],
        pre_nms_topk: int,
        post_nms_topk: int,
        nms_thresh: float,
        min_size: float = 1e-3,
    ) -> None:
        super().__init__()
        self.head = RPNHead(channels, len(aspect_ratios))
        self.anchor_sizes = anchor_sizes
        self.aspect_ratios = aspect_ratios
        self.pre_nms_topk = pre_nms_topk
        self.post_nms_topk = post_nms_topk
        self.nms_thresh = nms_thresh
        self.min_size = min_size

    def forward(
        self, feats: list[torch.Tensor], image_hw: tuple[int, int]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Proposals [B, post_nms_topk, 4] and their validity [B, post_nms_topk]."""
        h, w = image_hw
        all_boxes, all_logits, all_levels = [], [], []
        for lvl, (f, size) in enumerate(zip(feats, self.anchor_sizes, strict=True)):
            b, _, fh, fw = f.shape
            logits, deltas = self.head(f)
            a = len(self.aspect_ratios)
            logits = logits.permute(0, 2, 3, 1).reshape(b, -1)
            deltas = deltas.reshape(b, a, 4, fh, fw).permute(0, 3, 4, 1, 2).reshape(b, -1, 4)
            anchors = anchors_for_level(
                size, self.aspect_ratios, (fh, fw), (h // fh, w // fw), device=f.device
            )
            k = min(self.pre_nms_topk, logits.shape[1])
            top_logits, idx = logits.topk(k, dim=1)
            boxes = decode_boxes(gather_rows(deltas, idx), anchors[idx], (1.0, 1.0, 1.0, 1.0))
            all_boxes.append(clip_boxes(boxes[..., 0, :], h, w))
            all_logits.append(top_logits)
            all_levels.append(torch.full_like(idx, lvl))
        boxes = torch.cat(all_boxes, dim=1)
        scores = torch.sigmoid(torch.cat(all_logits, dim=1))
        levels = torch.cat(all_levels, dim=1)
        ok = box_size_ok(boxes, self.min_size)
        scores = torch.where(ok, scores, torch.full_like(scores, INVALID_SCORE))
        keep = batched_nms_keep(boxes, scores, levels, self.nms_thresh)
        k = min(self.post_nms_topk, scores.shape[1])
        _, idx, valid = select_topk(scores, keep, k)
        return gather_rows(boxes, idx), valid
