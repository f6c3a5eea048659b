"""Checkpoint loaders, on state dicts laid out in each project's naming scheme."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import torch

from edge.errors import CheckpointError
from edge.models import create_model
from edge.models.checkpoints import (
    convert_detectron2_panoptic,
    load_checkpoint,
    load_detectron2_panoptic,
    load_torchvision_maskrcnn,
    read_state_dict,
)
from edge.models.panoptic_fpn import PanopticFPN
from edge.models.zoo import get_entry


def coco_tiny() -> PanopticFPN:
    """The tiny config with COCO's 90 thing classes, like torchvision's checkpoint."""
    cfg = dataclasses.replace(get_entry("panoptic_fpn_tiny").config, num_thing_classes=90)
    return PanopticFPN(cfg).eval()


# A few names as they appear in torchvision's maskrcnn_resnet50_fpn state dict (>= 0.13).
TORCHVISION_KEYS = [
    "backbone.body.conv1.weight",
    "backbone.body.bn1.running_var",
    "backbone.body.layer2.0.downsample.0.weight",
    "backbone.body.layer2.0.downsample.1.bias",
    "backbone.fpn.inner_blocks.0.0.weight",
    "backbone.fpn.layer_blocks.3.0.bias",
    "rpn.head.conv.0.0.weight",
    "rpn.head.cls_logits.weight",
    "rpn.head.bbox_pred.bias",
    "roi_heads.box_head.fc6.weight",
    "roi_heads.box_head.fc7.bias",
    "roi_heads.box_predictor.cls_score.weight",
    "roi_heads.box_predictor.bbox_pred.weight",
    "roi_heads.mask_head.0.0.weight",
    "roi_heads.mask_head.3.0.bias",
    "roi_heads.mask_predictor.conv5_mask.weight",
    "roi_heads.mask_predictor.mask_fcn_logits.weight",
]


def random_like(sd: dict[str, torch.Tensor], seed: int = 1) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(v.shape, generator=g) for k, v in sd.items()}


def torchvision_layout(model: PanopticFPN) -> dict[str, torch.Tensor]:
    sd = {k: v for k, v in model.state_dict().items() if not k.startswith("sem_seg_head.")}
    return random_like(sd)


def test_torchvision_names_are_ours() -> None:
    keys = set(coco_tiny().state_dict())
    assert set(TORCHVISION_KEYS) <= keys


def test_torchvision_state_dict_loads_strict_and_keeps_semantic_head(tmp_path: Path) -> None:
    model = coco_tiny()
    sem_before = {k: v.clone() for k, v in model.sem_seg_head.state_dict().items()}
    sd = torchvision_layout(model)
    sd["backbone.body.bn1.num_batches_tracked"] = torch.tensor(5)  # from a trainable BN
    torch.save(sd, tmp_path / "tv.pth")
    assert load_checkpoint(model, tmp_path / "tv.pth") == "torchvision"
    got = model.state_dict()
    for k in TORCHVISION_KEYS:
        torch.testing.assert_close(got[k], sd[k])
    for k, v in sem_before.items():
        torch.testing.assert_close(model.sem_seg_head.state_dict()[k], v)


def test_torchvision_pre_013_names_are_upgraded() -> None:
    model = coco_tiny()
    sd = torchvision_layout(model)
    old = {}
    for k, v in sd.items():
        k = re.sub(r"^(backbone\.fpn\.(inner|layer)_blocks\.\d+)\.0\.", r"\1.", k)
        k = k.replace("rpn.head.conv.0.0.", "rpn.head.conv.")
        k = re.sub(
            r"^roi_heads\.mask_head\.(\d)\.0\.", lambda m: f"roi_heads.mask_head.mask_fcn{int(m[1]) + 1}.", k
        )
        old[k] = v
    assert "rpn.head.conv.weight" in old and "roi_heads.mask_head.mask_fcn1.weight" in old
    load_torchvision_maskrcnn(model, old)
    torch.testing.assert_close(model.state_dict()["rpn.head.conv.0.0.weight"], sd["rpn.head.conv.0.0.weight"])


def test_partial_state_dict_names_missing_keys() -> None:
    model = coco_tiny()
    sd = torchvision_layout(model)
    del sd["rpn.head.cls_logits.weight"]
    del sd["roi_heads.box_head.fc6.bias"]
    with pytest.raises(
        CheckpointError, match=r"missing keys: .*roi_heads.box_head.fc6.bias.*rpn.head.cls_logits.weight"
    ):
        load_torchvision_maskrcnn(model, sd)


def test_wrong_class_count_names_shape_mismatch() -> None:
    model = create_model("panoptic_fpn_tiny")  # 8 things, checkpoint has 90
    with pytest.raises(
        CheckpointError, match=r"cls_score.weight: checkpoint \(91, 128\) vs model \(9, 128\)"
    ):
        load_torchvision_maskrcnn(model, torchvision_layout(coco_tiny()))


def d2_layout(model: PanopticFPN) -> dict[str, torch.Tensor]:
    """Build a detectron2 Panoptic FPN state dict from detectron2's own naming rules."""
    src = random_like(model.state_dict(), seed=3)
    out: dict[str, torch.Tensor] = {}
    body = "backbone.bottom_up."
    for k, v in src.items():
        if k == "backbone.body.conv1.weight":
            out[body + "stem.conv1.weight"] = v
        elif k.startswith("backbone.body.bn1."):
            out[body + "stem.conv1.norm." + k.rsplit(".", 1)[1]] = v
        elif m := re.match(r"backbone\.body\.layer(\d)\.(\d+)\.(.+)$", k):
            stage, blk, rest = int(m[1]) + 1, m[2], m[3]
            rest = re.sub(r"^conv(\d)\.weight$", r"conv\1.weight", rest)
            rest = re.sub(r"^bn(\d)\.(\w+)$", r"conv\1.norm.\2", rest)
            rest = rest.replace("downsample.0.", "shortcut.").replace("downsample.1.", "shortcut.norm.")
            out[f"{body}res{stage}.{blk}.{rest}"] = v
        elif m := re.match(r"backbone\.fpn\.inner_blocks\.(\d)\.0\.(\w+)$", k):
            out[f"backbone.fpn_lateral{int(m[1]) + 2}.{m[2]}"] = v
        elif m := re.match(r"backbone\.fpn\.layer_blocks\.(\d)\.0\.(\w+)$", k):
            out[f"backbone.fpn_output{int(m[1]) + 2}.{m[2]}"] = v
    c = model.cfg.num_thing_classes
    g = torch.Generator().manual_seed(4)
    for src_name, d2_name in [
        ("rpn.head.conv.0.0", "proposal_generator.rpn_head.conv"),
        ("rpn.head.cls_logits", "proposal_generator.rpn_head.objectness_logits"),
        ("rpn.head.bbox_pred", "proposal_generator.rpn_head.anchor_deltas"),
        ("roi_heads.box_head.fc6", "roi_heads.box_head.fc1"),
        ("roi_heads.box_head.fc7", "roi_heads.box_head.fc2"),
        ("roi_heads.mask_predictor.conv5_mask", "roi_heads.mask_head.deconv"),
    ]:
        for p in ("weight", "bias"):
            out[f"{d2_name}.{p}"] = src[f"{src_name}.{p}"]
    for i in range(4):
        for p in ("weight", "bias"):
            out[f"roi_heads.mask_head.mask_fcn{i + 1}.{p}"] = src[f"roi_heads.mask_head.{i}.0.{p}"]
    dim = model.cfg.box_head_dim
    out["roi_heads.box_predictor.cls_score.weight"] = torch.randn(c + 1, dim, generator=g)  # bg last
    out["roi_heads.box_predictor.cls_score.bias"] = torch.randn(c + 1, generator=g)
    out["roi_heads.box_predictor.bbox_pred.weight"] = torch.randn(c * 4, dim, generator=g)
    out["roi_heads.box_predictor.bbox_pred.bias"] = torch.randn(c * 4, generator=g)
    red = model.cfg.mask_dim_reduced
    out["roi_heads.mask_head.predictor.weight"] = torch.randn(c, red, 1, 1, generator=g)
    out["roi_heads.mask_head.predictor.bias"] = torch.randn(c, generator=g)
    for k, v in src.items():
        if k.startswith("sem_seg_head."):
            out[k] = v
    out["pixel_mean"] = torch.zeros(3, 1, 1)
    out["pixel_std"] = torch.ones(3, 1, 1)
    return out


def test_detectron2_checkpoint_maps_names_and_class_order(tmp_path: Path) -> None:
    model = create_model("panoptic_fpn_tiny")
    d2 = d2_layout(model)
    torch.save({"model": d2, "iteration": 90000}, tmp_path / "model_final.pth")
    assert load_checkpoint(model, tmp_path / "model_final.pth") == "detectron2"
    sd = model.state_dict()
    torch.testing.assert_close(
        sd["backbone.body.layer1.0.conv2.weight"], d2["backbone.bottom_up.res2.0.conv2.weight"]
    )
    torch.testing.assert_close(
        sd["backbone.body.layer3.0.downsample.1.running_mean"],
        d2["backbone.bottom_up.res4.0.shortcut.norm.running_mean"],
    )
    torch.testing.assert_close(sd["backbone.fpn.inner_blocks.0.0.weight"], d2["backbone.fpn_lateral2.weight"])
    cls = d2["roi_heads.box_predictor.cls_score.weight"]
    torch.testing.assert_close(sd["roi_heads.box_predictor.cls_score.weight"][0], cls[-1])  # background
    torch.testing.assert_close(sd["roi_heads.box_predictor.cls_score.weight"][1:], cls[:-1])
    bbox = sd["roi_heads.box_predictor.bbox_pred.weight"]
    assert torch.count_nonzero(bbox[:4]) == 0
    torch.testing.assert_close(bbox[4:], d2["roi_heads.box_predictor.bbox_pred.weight"])
    mask = sd["roi_heads.mask_predictor.mask_fcn_logits.weight"]
    assert torch.count_nonzero(mask[0]) == 0
    torch.testing.assert_close(sd["sem_seg_head.p5.4.weight"], d2["sem_seg_head.p5.4.weight"])


def test_detectron2_unknown_key_is_named() -> None:
    model = create_model("panoptic_fpn_tiny")
    d2 = d2_layout(model)
    d2["roi_heads.keypoint_head.conv1.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError, match="keypoint_head"):
        load_detectron2_panoptic(model, d2)
    assert "pixel_mean" not in convert_detectron2_panoptic(d2_layout(model))


def monodepth2_files(model: torch.nn.Module, folder: Path) -> dict[str, torch.Tensor]:
    """encoder.pth / depth.pth as monodepth2's trainer writes them."""
    folder.mkdir()
    enc = random_like(model.encoder.state_dict(), seed=5)
    for k in list(enc):
        if k.endswith("running_var"):
            enc[k] = enc[k].abs() + 0.5
            enc[k.replace("running_var", "num_batches_tracked")] = torch.tensor(100)
    enc["encoder.fc.weight"] = torch.zeros(1000, model.encoder.num_ch_enc[-1])
    enc["encoder.fc.bias"] = torch.zeros(1000)
    torch.save({**enc, "height": 192, "width": 640, "use_stereo": False}, folder / "encoder.pth")
    dec = random_like(model.decoder.state_dict(), seed=6)
    assert "decoder.0.conv.conv.weight" in dec and "decoder.10.conv.weight" in dec
    torch.save(dec, folder / "depth.pth")
    return dec


def test_monodepth2_folder_loads(tmp_path: Path) -> None:
    model = create_model("depth_tiny")
    dec = monodepth2_files(model, tmp_path / "mono")
    assert load_checkpoint(model, tmp_path / "mono") == "monodepth2"
    torch.testing.assert_close(
        model.decoder.state_dict()["decoder.10.conv.weight"], dec["decoder.10.conv.weight"]
    )


def test_monodepth2_folder_missing_file(tmp_path: Path) -> None:
    (tmp_path / "mono").mkdir()
    with pytest.raises(CheckpointError, match="encoder.pth and depth.pth"):
        load_checkpoint(create_model("depth_tiny"), tmp_path / "mono")


def test_edge_checkpoint_round_trip(tmp_path: Path) -> None:
    src = create_model("depth_tiny", seed=7)
    torch.save(src.state_dict(), tmp_path / "d.pth")
    dst = create_model("depth_tiny", seed=8)
    assert load_checkpoint(dst, tmp_path / "d.pth") == "edge"
    x = torch.rand(1, 3, 64, 128) * 255
    with torch.no_grad():
        torch.testing.assert_close(dst(x)["depth"], src(x)["depth"])


def test_unreadable_checkpoint(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a zip or pickle")
    with pytest.raises(CheckpointError, match="starts with b'not ', expected a zip archive or a pickle"):
        read_state_dict(bad)
    # a zip cut short (an interrupted download) gets past the magic; torch's error is kept
    good = tmp_path / "good.pth"
    torch.save({"w": torch.ones(3)}, good)
    bad.write_bytes(good.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="cannot be read as a torch weights file"):
        read_state_dict(bad)
    with pytest.raises(CheckpointError, match="does not exist"):
        read_state_dict(tmp_path / "missing.pth")


class NotWeights:
    pass


def test_pickled_objects_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "code.pth"
    torch.save({"model": NotWeights()}, path)  # would need weights_only=False to unpickle
    with pytest.raises(CheckpointError, match="weights_only=True"):
        read_state_dict(path)
