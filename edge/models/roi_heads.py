"""Mask R-CNN box and mask heads with torchvision's names, static output shapes."""

from __future__ import annotations

import torch
from torch import nn

from edge.models.detection import (
    INVALID_SCORE,
    batched_nms_keep,
    box_size_ok,
    clip_boxes,
    decode_boxes,
    gather_rows,
    select_topk,
)
from plugins.roi_align.torch_op import multilevel_roi_align


class TwoMLPHead(nn.Module):
    def __init__(self, in_features: int, dim: int) -> None:
        super().__init__()
        self.fc6 = nn.Linear(in_features, dim)
        self.fc7 = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.fc7(torch.relu(self.fc6(x.flatten(start_dim=1)))))


class FastRCNNPredictor(nn.Module):
    def __init__(self, in_features: int, num_classes: int) -> None:
        super().__init__()
        self.cls_score = nn.Linear(in_features, num_classes)
        self.bbox_pred = nn.Linear(in_features, num_classes * 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.cls_score(x), self.bbox_pred(x)


class MaskRCNNHeads(nn.Sequential):
    """4 x (conv3x3 + ReLU); names mask_head.{i}.0.*."""

    def __init__(self, in_channels: int, dims: tuple[int, ...]) -> None:
        layers = []
        for d in dims:
            layers.append(nn.Sequential(nn.Conv2d(in_channels, d, 3, padding=1), nn.ReLU(inplace=True)))
            in_channels = d
        super().__init__(*layers)


class MaskRCNNPredictor(nn.Module):
    def __init__(self, in_channels: int, dim_reduced: int, num_classes: int) -> None:
        super().__init__()
        self.conv5_mask = nn.ConvTranspose2d(in_channels, dim_reduced, 2, 2, 0)
        self.mask_fcn_logits = nn.Conv2d(dim_reduced, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mask_fcn_logits(torch.relu(self.conv5_mask(x)))


class RoIHeads(nn.Module):
    """Box head -> per-class decoding -> NMS -> fixed top-K detections -> masks.

    ``num_classes`` includes the background at index 0, as in torchvision.
    """

    def __init__(
        self,
        *,
        channels: int,
        num_classes: int,
        box_head_dim: int,
        mask_head_dims: tuple[int, ...],
        mask_dim_reduced: int,
        score_thresh: float,
        nms_thresh: float,
        detections_per_img: int,
        candidates_per_img: int,
        sampling_ratio: int,
        aligned: bool,
        min_size: float = 1e-2,
    ) -> None:
        super().__init__()
        self.box_head = TwoMLPHead(channels * 7 * 7, box_head_dim)
        self.box_predictor = FastRCNNPredictor(box_head_dim, num_classes)
        self.mask_head = MaskRCNNHeads(channels, mask_head_dims)
        self.mask_predictor = MaskRCNNPredictor(mask_head_dims[-1], mask_dim_reduced, num_classes)
        self.num_classes = num_classes
        self.score_thresh = score_thresh
        self.nms_thresh = nms_thresh
        self.detections_per_img = detections_per_img
        self.candidates_per_img = candidates_per_img
        self.sampling_ratio = sampling_ratio
        self.aligned = aligned
        self.min_size = min_size

    def _pool(self, feats: list[torch.Tensor], boxes: torch.Tensor, size: int, image_w: int) -> torch.Tensor:
        b, n = boxes.shape[:2]
        batch_idx = torch.arange(b, dtype=torch.int64, device=boxes.device).repeat_interleave(n)
        scales = [f.shape[-1] / image_w for f in feats]
        return multilevel_roi_align(
            feats,
            boxes.reshape(-1, 4),
            batch_idx,
            size,
            scales,
            self.sampling_ratio,
            self.aligned,
            2,
        )

    def forward(
        self,
        feats: list[torch.Tensor],
        proposals: torch.Tensor,
        proposal_valid: torch.Tensor,
        image_hw: tuple[int, int],
    ) -> dict[str, torch.Tensor]:
        h, w = image_hw
        b, r = proposals.shape[:2]
        c = self.num_classes - 1
        x = self.box_head(self._pool(feats, proposals, 7, w))
        logits, deltas = self.box_predictor(x)
        probs = torch.softmax(logits, dim=-1).reshape(b, r, self.num_classes)[..., 1:]
        deltas = deltas.reshape(b, r, -1)
        boxes = clip_boxes(decode_boxes(deltas, proposals, (10.0, 10.0, 5.0, 5.0)), h, w)[:, :, 1:]
        boxes = boxes.reshape(b, r * c, 4)
        scores = probs.reshape(b, r * c)
        labels = torch.arange(c, dtype=torch.int64, device=scores.device).repeat(r)[None].expand(b, -1)
        ok = (
            (scores > self.score_thresh)
            & box_size_ok(boxes, self.min_size)
            & proposal_valid[:, :, None].expand(b, r, c).reshape(b, r * c)
        )
        # a fixed candidate budget keeps NMS bounded; torchvision keeps every candidate,
        # which is the same whenever fewer than candidates_per_img pass the score threshold
        k = min(self.candidates_per_img, r * c)
        cand_scores, cand_idx, cand_ok = select_topk(scores, ok, k)
        cand_boxes = gather_rows(boxes, cand_idx)
        cand_labels = labels.gather(1, cand_idx)
        keep = batched_nms_keep(cand_boxes, cand_scores, cand_labels, self.nms_thresh) & cand_ok
        k = min(self.detections_per_img, k)
        det_scores, idx, valid = select_topk(cand_scores, keep, k)
        det_boxes = gather_rows(cand_boxes, idx) * valid[..., None].to(boxes.dtype)
        det_labels = torch.where(valid, cand_labels.gather(1, idx), torch.full_like(idx, -1))
        det_scores = torch.where(valid, det_scores, torch.zeros_like(det_scores))

        mask_logits = self.mask_predictor(self.mask_head(self._pool(feats, det_boxes, 14, w)))
        m = mask_logits.shape[-1]
        mask_logits = mask_logits.reshape(b, k, self.num_classes, m, m)
        # empty slots carry label -1, so label + 1 picks the background channel; no
        # clamp, which would put a Clip on INT64 (TensorRT's Clip is float-only)
        pick = (det_labels + 1).reshape(b, k, 1, 1, 1).expand(b, k, 1, m, m)
        masks = torch.sigmoid(mask_logits.gather(2, pick)[:, :, 0])
        return {
            "boxes": det_boxes,
            "scores": det_scores,
            "labels": det_labels.to(torch.int32),
            "masks": masks,
            "num_detections": valid.sum(dim=1).to(torch.int32),
        }


__all__ = ["INVALID_SCORE", "RoIHeads"]
