"""Our Panoptic FPN instance branch against torchvision's Mask R-CNN, same random weights.

torchvision's model is built as ``maskrcnn_resnet50_fpn`` builds it for pretrained
weights (ResNet-50 with FrozenBatchNorm2d, FPN on layers 1-4, 91 COCO classes), filled
with seeded random weights, and its state dict is loaded with our torchvision loader into
``PanopticFPN(num_thing_classes=90, roi_aligned=False)``. Both run the same image at the
size torchvision would resize it to, and their detections are compared.

Random weights need two adjustments to give a meaningful comparison, applied to
torchvision's model before its weights are copied (so both models see the same numbers):
- every FrozenBatchNorm2d gets the statistics of its input on the test image plus a
  random affine, so activations neither explode nor vanish through 50 layers (otherwise
  RPN scores saturate at 1.0 and ties make the order arbitrary);
- the box score threshold is set so that a few hundred class scores pass it, as trained
  weights would (random class logits are nearly uniform over 91 classes, all below 0.05).

Needs torchvision (not a dependency of edge). On the device machine:

    python benchmarks/torchvision_parity.py --device cuda \
        --out benchmarks/results/torchvision_maskrcnn_parity.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.data.synthetic import SyntheticScene
from edge.models.checkpoints import load_torchvision_maskrcnn
from edge.models.panoptic_fpn import PanopticFPN, PanopticFPNConfig
from edge.models.zoo import R50


def torchvision_maskrcnn(seed: int) -> Any:
    from torchvision.models import resnet50
    from torchvision.models.detection import MaskRCNN
    from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor
    from torchvision.ops.misc import FrozenBatchNorm2d

    torch.manual_seed(seed)
    body = resnet50(weights=None, norm_layer=FrozenBatchNorm2d)
    return MaskRCNN(_resnet_fpn_extractor(body, 3), num_classes=91).eval()


def calibrate_frozen_bn(model: Any, image01: torch.Tensor, seed: int) -> None:
    """Give each FrozenBatchNorm2d its input's statistics (one pass, in network order)."""
    from torchvision.ops.misc import FrozenBatchNorm2d

    g = torch.Generator().manual_seed(seed)

    def pre_hook(bn: Any, args: tuple[torch.Tensor, ...]) -> None:
        x = args[0]
        c = x.shape[1]
        bn.running_mean.copy_(x.mean(dim=(0, 2, 3)))
        bn.running_var.copy_(x.var(dim=(0, 2, 3)) + 1e-3)
        bn.weight.copy_(torch.empty(c).uniform_(0.5, 1.5, generator=g).to(x))
        bn.bias.copy_(torch.empty(c).normal_(0.0, 0.2, generator=g).to(x))

    handles = [
        m.register_forward_pre_hook(pre_hook) for m in model.modules() if isinstance(m, FrozenBatchNorm2d)
    ]
    try:
        with torch.no_grad():
            model.backbone(model.transform.normalize(image01))
    finally:
        for h in handles:
            h.remove()


def score_threshold_for(model: Any, image01: torch.Tensor, passing: int) -> float:
    """The class score that ``passing`` (proposal, class) pairs exceed in torchvision's run."""
    captured: list[torch.Tensor] = []
    handle = model.roi_heads.box_predictor.register_forward_hook(lambda m, i, o: captured.append(o[0]))
    try:
        run_torchvision(model, image01, 0.0)
    finally:
        handle.remove()
    probs = torch.softmax(captured[0], dim=-1)[:, 1:].flatten()
    return float(probs.topk(passing).values[-1])


def run_torchvision(model: Any, image01: torch.Tensor, score_thresh: float) -> dict[str, torch.Tensor]:
    from torchvision.models.detection.image_list import ImageList

    model.roi_heads.score_thresh = score_thresh
    h, w = image01.shape[-2:]
    with torch.no_grad():
        x = model.transform.normalize(image01)[None]
        images = ImageList(x, [(h, w)])
        feats = model.backbone(x)
        proposals, _ = model.rpn(images, feats)
        dets, _ = model.roi_heads(feats, proposals, images.image_sizes)
    return dets[0]


def compare(device: str, height: int, width: int, seed: int = 0, passing: int = 300) -> dict[str, Any]:
    if device == "cuda":
        # exact fp32 on both sides: TF32 convolutions would compare rounding, not code
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
    rgb = SyntheticScene(height=height, width=width, seed=seed).render(5)
    image255 = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1))).float().to(device)
    image01 = image255 / 255.0
    tv = torchvision_maskrcnn(seed).to(device)
    calibrate_frozen_bn(tv, image01[None], seed)
    thresh = score_threshold_for(tv, image01, passing)
    theirs = run_torchvision(tv, image01, thresh)

    cfg = PanopticFPNConfig(
        backbone=R50,
        num_thing_classes=90,
        roi_aligned=False,
        box_score_thresh=thresh,
        candidates_per_img=1000,
    )
    ours_model = PanopticFPN(cfg).eval()
    load_torchvision_maskrcnn(ours_model, {k: v.cpu() for k, v in tv.state_dict().items()})
    ours_model.to(device)
    with torch.inference_mode():
        out = ours_model(image255[None])
    n = int(out["num_detections"][0])
    ours = {
        "boxes": out["boxes"][0, :n],
        "scores": out["scores"][0, :n],
        "labels": out["labels"][0, :n].long() + 1,  # ours: thing index; torchvision: 1..90
        "masks": out["masks"][0, :n],
    }
    m = int(theirs["boxes"].shape[0])
    k = min(n, m)
    same_labels = bool(torch.equal(ours["labels"][:k].cpu(), theirs["labels"][:k].cpu()))
    result: dict[str, Any] = {
        "device": torch.cuda.get_device_name(0) if device == "cuda" else f"CPU ({platform.processor()})",
        "input": f"{height}x{width} synthetic frame (already torchvision's resized size: no resize)",
        "score_thresh": thresh,
        "detections": {"ours": n, "torchvision": m},
        "labels_equal": same_labels and n == m,
    }
    if k:
        result["max_box_diff_px"] = float((ours["boxes"][:k] - theirs["boxes"][:k]).abs().max())
        result["max_score_diff"] = float((ours["scores"][:k] - theirs["scores"][:k]).abs().max())
        result["max_mask_prob_diff"] = float((ours["masks"][:k] - theirs["masks"][:k, 0]).abs().max())
        a, b = ours["masks"][:k] > 0.5, theirs["masks"][:k, 0] > 0.5
        inter = (a & b).flatten(1).sum(1).float()
        union = (a | b).flatten(1).sum(1).float()
        iou = torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))
        result["min_mask_iou_at_0.5"] = float(iou.min())  # what the masks are used as
    result["passed"] = bool(
        n == m
        and k > 0
        and same_labels
        and result["max_box_diff_px"] <= 0.5
        and result["max_score_diff"] <= 1e-3
        and result["max_mask_prob_diff"] <= 1e-3
    )
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--size", default="800x1088", help="HxW (torchvision resizes to min side 800)")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    h, w = (int(v) for v in args.size.split("x"))
    import torchvision

    report = {
        "check": "edge PanopticFPN instance branch vs torchvision MaskRCNN (resnet50 fpn), random weights",
        "versions": {"torch": torch.__version__, "torchvision": torchvision.__version__},
        "targets": {"max_box_diff_px": 0.5, "max_score_diff": 1e-3, "max_mask_prob_diff": 1e-3},
        "config": dataclasses.asdict(
            PanopticFPNConfig(backbone=R50, num_thing_classes=90, roi_aligned=False)
        ),
        "result": compare(args.device, h, w),
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return 0 if report["result"]["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
