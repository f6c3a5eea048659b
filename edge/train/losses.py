"""Panoptic FPN and depth training losses (Mask R-CNN's recipe, small batches).

The inference graph has fixed shapes for export; training uses the same modules but its
own steps: anchors and proposals are matched to ground-truth boxes, sampled, and the
heads are trained on the samples. RoIAlign in training is the differentiable torch
reference (the fused custom op has no backward).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from edge.data.cityscapes import THING_TRAIN_IDS
from edge.models.detection import anchors_for_level, box_size_ok
from edge.models.ops import box_iou_torch
from edge.train.data import Batch, Targets
from plugins.roi_align.torch_op import assign_fpn_levels, roi_align_reference

RPN_FG_IOU, RPN_BG_IOU, RPN_SAMPLES = 0.7, 0.3, 256
ROI_FG_IOU, ROI_SAMPLES, ROI_FG_FRACTION = 0.5, 256, 0.25


def encode_boxes(
    gt: torch.Tensor, ref: torch.Tensor, weights: tuple[float, float, float, float]
) -> torch.Tensor:
    """The inverse of edge.models.detection.decode_boxes (torchvision's BoxCoder.encode)."""
    wx, wy, ww, wh = weights
    rw, rh = ref[:, 2] - ref[:, 0], ref[:, 3] - ref[:, 1]
    rx, ry = ref[:, 0] + 0.5 * rw, ref[:, 1] + 0.5 * rh
    gw, gh = gt[:, 2] - gt[:, 0], gt[:, 3] - gt[:, 1]
    gx, gy = gt[:, 0] + 0.5 * gw, gt[:, 1] + 0.5 * gh
    return torch.stack(
        [wx * (gx - rx) / rw, wy * (gy - ry) / rh, ww * torch.log(gw / rw), wh * torch.log(gh / rh)], dim=1
    )


def sample(
    labels: torch.Tensor, num: int, fg_fraction: float, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices of sampled foreground (label > 0) and background (label == 0); -1 is ignored."""
    fg = torch.nonzero(labels > 0).flatten()
    bg = torch.nonzero(labels == 0).flatten()
    n_fg = min(fg.numel(), int(num * fg_fraction))
    n_bg = min(bg.numel(), num - n_fg)
    fg = fg[torch.randperm(fg.numel(), generator=gen)[:n_fg]]
    bg = bg[torch.randperm(bg.numel(), generator=gen)[:n_bg]]
    return fg, bg


def rpn_loss(model: Any, feats: list[torch.Tensor], batch: Batch, gen: torch.Generator) -> torch.Tensor:
    rpn = model.rpn
    h, w = batch.images.shape[-2:]
    logits_all, deltas_all, anchors_all = [], [], []
    for f, size in zip(feats, rpn.anchor_sizes, strict=True):
        b, _, fh, fw = f.shape
        logits, deltas = rpn.head(f)
        a = len(rpn.aspect_ratios)
        logits_all.append(logits.permute(0, 2, 3, 1).reshape(b, -1))
        deltas_all.append(deltas.reshape(b, a, 4, fh, fw).permute(0, 3, 4, 1, 2).reshape(b, -1, 4))
        anchors_all.append(anchors_for_level(size, rpn.aspect_ratios, (fh, fw), (h // fh, w // fw)))
    logits, deltas, anchors = torch.cat(logits_all, 1), torch.cat(deltas_all, 1), torch.cat(anchors_all)
    cls_losses, box_losses = [], []
    for i, t in enumerate(batch.instances):
        labels = torch.zeros(anchors.shape[0])
        target = torch.zeros_like(anchors)
        if t.boxes.numel():
            iou = box_iou_torch(anchors, t.boxes)
            best, idx = iou.max(dim=1)
            labels = torch.where(best >= RPN_FG_IOU, 1.0, torch.where(best < RPN_BG_IOU, 0.0, -1.0))
            # every box gets its best anchors, even below the threshold
            top = iou.max(dim=0).values
            labels[((iou == top[None]) & (top[None] > 0)).any(dim=1)] = 1.0
            target = t.boxes[idx]
        fg, bg = sample(labels, RPN_SAMPLES, 0.5, gen)
        chosen = torch.cat([fg, bg])
        cls_losses.append(
            F.binary_cross_entropy_with_logits(logits[i, chosen], labels[chosen], reduction="sum")
        )
        if fg.numel():
            enc = encode_boxes(target[fg], anchors[fg], (1.0, 1.0, 1.0, 1.0))
            box_losses.append(F.smooth_l1_loss(deltas[i, fg], enc, beta=1 / 9, reduction="sum"))
        norm = max(chosen.numel(), 1)
        cls_losses[-1] = cls_losses[-1] / norm
        if fg.numel():
            box_losses[-1] = box_losses[-1] / norm
    return torch.stack(cls_losses).mean() + (
        torch.stack(box_losses).sum() / len(batch.instances) if box_losses else 0.0
    )


def pool(
    feats: list[torch.Tensor], rois: torch.Tensor, bidx: torch.Tensor, size: int, image_w: int, aligned: bool
) -> torch.Tensor:
    levels = assign_fpn_levels(rois, 2, 2 + len(feats) - 1)
    out = feats[0].new_zeros((rois.shape[0], feats[0].shape[1], size, size))
    for lvl, f in enumerate(feats):
        idx = torch.nonzero(levels == lvl).flatten()
        if idx.numel():
            out = out.index_put(
                (idx,), roi_align_reference(f, rois[idx], bidx[idx], size, f.shape[-1] / image_w, 2, aligned)
            )
    return out


def roi_losses(
    model: Any, feats: list[torch.Tensor], batch: Batch, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    heads = model.roi_heads
    h, w = batch.images.shape[-2:]
    with torch.no_grad():  # proposals from the current RPN, as Mask R-CNN trains end to end
        proposals, valid = model.rpn([f.detach() for f in feats], (h, w))
    rois, bidx, labels, targets, mask_gt = [], [], [], [], []
    for i, t in enumerate(batch.instances):
        props = proposals[i][valid[i]]
        props = torch.cat([props, t.boxes])  # the ground truth itself is always a good proposal
        props = props[box_size_ok(props, 1.0)]
        lab = torch.zeros(props.shape[0], dtype=torch.int64)
        tgt = torch.zeros_like(props)
        gt_idx = torch.zeros(props.shape[0], dtype=torch.int64)
        if t.boxes.numel():
            best, idx = box_iou_torch(props, t.boxes).max(dim=1)
            lab = torch.where(best >= ROI_FG_IOU, t.classes[idx] + 1, 0)
            tgt, gt_idx = t.boxes[idx], idx
        fg, bg = sample(lab, ROI_SAMPLES, ROI_FG_FRACTION, gen)
        chosen = torch.cat([fg, bg])
        rois.append(props[chosen])
        bidx.append(torch.full((chosen.numel(),), i, dtype=torch.int64))
        labels.append(lab[chosen])
        targets.append(tgt[chosen])
        mask_gt.append((t, gt_idx[fg], props[fg], fg.numel()))
    rois_t, bidx_t, labels_t, targets_t = (
        torch.cat(rois),
        torch.cat(bidx),
        torch.cat(labels),
        torch.cat(targets),
    )
    x = heads.box_head(pool(feats[:4], rois_t, bidx_t, 7, w, heads.aligned))
    logits, deltas = heads.box_predictor(x)
    cls_loss = F.cross_entropy(logits, labels_t)
    fg = torch.nonzero(labels_t > 0).flatten()
    box_loss = logits.sum() * 0.0
    if fg.numel():
        d = deltas.reshape(deltas.shape[0], -1, 4)[fg, labels_t[fg]]
        enc = encode_boxes(targets_t[fg], rois_t[fg], (10.0, 10.0, 5.0, 5.0))
        box_loss = F.smooth_l1_loss(d, enc, beta=1.0, reduction="sum") / max(labels_t.numel(), 1)
    return cls_loss + box_loss, mask_loss(model, feats, mask_gt, w)


def mask_loss(model: Any, feats: list[torch.Tensor], per_image: list, image_w: int) -> torch.Tensor:
    heads = model.roi_heads
    rois, bidx, classes, targets = [], [], [], []
    for i, (t, gt_idx, props, n) in enumerate(per_image):
        if n == 0:
            continue
        rois.append(props)
        bidx.append(torch.full((n,), i, dtype=torch.int64))
        classes.append(t.classes[gt_idx] + 1)
        # the matched instance's mask, cut out by the proposal at the head's 28x28 output
        m = t.masks[gt_idx][:, None]
        targets.append(roi_align_reference(m, props, torch.arange(n), 28, 1.0, 2, True)[:, 0] >= 0.5)
    if not rois:
        return sum(p.sum() for p in heads.mask_predictor.parameters()) * 0.0
    rois_t, bidx_t = torch.cat(rois), torch.cat(bidx)
    logits = heads.mask_predictor(
        heads.mask_head(pool(feats[:4], rois_t, bidx_t, 14, image_w, heads.aligned))
    )
    cls = torch.cat(classes)
    picked = logits[torch.arange(cls.numel()), cls]
    return F.binary_cross_entropy_with_logits(picked, torch.cat(targets).float())


def semantic_loss(model: Any, feats: list[torch.Tensor], batch: Batch) -> torch.Tensor:
    logits = model.sem_seg_head(feats[:4])
    logits = F.interpolate(logits, size=batch.sem.shape[-2:], mode="bilinear", align_corners=False)
    return F.cross_entropy(logits, batch.sem, ignore_index=255)


def depth_loss(model: Any, batch: Batch, *, object_weight: float = 1.0) -> torch.Tensor:
    """L1 on log depth over pixels with ground truth inside the model's range.

    ``object_weight`` counts each pixel of a thing (car, person, ...) that many times: they
    are a few percent of a frame, so an unweighted loss barely notices a car put at the
    depth of the road behind it (replay's object distance error shows it)."""
    out = model(batch.images)["depth"][:, 0]
    cfg = model.cfg
    valid = (batch.depth > cfg.min_depth) & (batch.depth < cfg.max_depth)
    err = (torch.log(out[valid]) - torch.log(batch.depth[valid])).abs()
    if object_weight == 1.0:
        return err.mean()
    things = torch.zeros_like(batch.sem, dtype=torch.bool)
    for t in THING_TRAIN_IDS:
        things |= batch.sem == t
    weight = 1.0 + (object_weight - 1.0) * things[valid].to(err.dtype)
    return (err * weight).sum() / weight.sum()


def panoptic_loss(model: Any, batch: Batch, gen: torch.Generator) -> dict[str, torch.Tensor]:
    x = (batch.images - model.pixel_mean) / model.pixel_std
    feats = model.backbone(x)
    box, mask = roi_losses(model, feats, batch, gen)
    return {
        "rpn": rpn_loss(model, feats, batch, gen),
        "box": box,
        "mask": mask,
        "semantic": semantic_loss(model, feats, batch),
    }


__all__ = ["Targets", "depth_loss", "encode_boxes", "panoptic_loss"]
