"""Checkpoint readers: edge's own, torchvision Mask R-CNN, detectron2 Panoptic FPN, monodepth2.

Files are read with ``torch.load(..., weights_only=True)`` only: a checkpoint is data,
never code. Every loader is strict: a key the model needs that the checkpoint lacks, a
key the checkpoint has that the model cannot use, or a shape that differs is an error
that names the keys.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import cast

import torch
from torch import nn

from edge.errors import CheckpointError

StateDict = dict[str, torch.Tensor]

_MAX_LISTED = 8


def _listing(keys: Iterable[str]) -> str:
    keys = sorted(keys)
    head = ", ".join(keys[:_MAX_LISTED])
    more = f" (+{len(keys) - _MAX_LISTED} more)" if len(keys) > _MAX_LISTED else ""
    return head + more


def read_state_dict(path: str | Path) -> StateDict:
    """Tensors of a checkpoint file; unwraps ``{"model": ...}`` / ``{"state_dict": ...}``."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"checkpoint {str(p)!r} does not exist or is not a file")
    with open(p, "rb") as fh:
        head = fh.read(4)
    # torch.save writes a zip archive (legacy: a pickle); anything else fails inside torch.load
    # with an error that says nothing about the file, e.g. "KeyError: 174812789" for text
    if not (head.startswith(b"PK\x03\x04") or head.startswith(b"\x80")):
        raise CheckpointError(
            f"checkpoint {str(p)!r} is not a torch weights file: it starts with {head!r}, "
            "expected a zip archive or a pickle as torch.save writes"
        )
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(
            f"checkpoint {str(p)!r} cannot be read as a torch weights file "
            f"(torch.load with weights_only=True): {type(exc).__name__}: {exc}"
        ) from exc
    for wrapper in ("model", "state_dict"):
        if isinstance(obj, Mapping) and isinstance(obj.get(wrapper), Mapping):
            obj = obj[wrapper]
    if not isinstance(obj, Mapping):
        raise CheckpointError(
            f"checkpoint {str(p)!r} holds a {type(obj).__name__}, expected a state dict "
            "(a mapping of parameter names to tensors)"
        )
    sd = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not sd:
        raise CheckpointError(f"checkpoint {str(p)!r} contains no tensors")
    return sd


def load_strict(module: nn.Module, sd: Mapping[str, torch.Tensor], *, what: str) -> None:
    """Load ``sd`` into ``module`` requiring an exact match of names and shapes."""
    own = module.state_dict()
    sd = {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}
    missing = set(own) - set(sd)
    unexpected = set(sd) - set(own)
    problems = []
    if missing:
        problems.append(f"missing keys: {_listing(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_listing(unexpected)}")
    shapes = [
        f"{k}: checkpoint {tuple(sd[k].shape)} vs model {tuple(own[k].shape)}"
        for k in sorted(set(own) & set(sd))
        if tuple(sd[k].shape) != tuple(own[k].shape)
    ]
    if shapes:
        problems.append(f"shape mismatches: {'; '.join(shapes[:_MAX_LISTED])}")
    if problems:
        raise CheckpointError(f"{what} does not fit the model: " + " | ".join(problems))
    module.load_state_dict(dict(sd), strict=True)


INSTANCE_PARTS = ("backbone", "rpn", "roi_heads")


def load_torchvision_maskrcnn(model: nn.Module, sd: Mapping[str, torch.Tensor]) -> None:
    """Load a torchvision ``maskrcnn_resnet50_fpn``-style state dict into the instance branch.

    The semantic head is left as it is. The model's ``num_thing_classes`` must be the
    checkpoint's class count minus background (90 for COCO).
    """
    sd = _upgrade_torchvision_keys(sd)
    parts = nn.ModuleDict({name: getattr(model, name) for name in INSTANCE_PARTS})
    load_strict(parts, sd, what="torchvision Mask R-CNN state dict")


def _upgrade_torchvision_keys(sd: Mapping[str, torch.Tensor]) -> StateDict:
    # torchvision < 0.13 saved these convs without the Conv2dNormActivation wrapper
    out: StateDict = {}
    for k, v in sd.items():
        k = re.sub(r"^(backbone\.fpn\.(?:inner|layer)_blocks\.\d+)\.(weight|bias)$", r"\1.0.\2", k)
        k = re.sub(r"^rpn\.head\.conv\.(weight|bias)$", r"rpn.head.conv.0.0.\1", k)
        k = re.sub(
            r"^(roi_heads\.mask_head)\.mask_fcn(\d)\.(weight|bias)$",
            lambda m: f"{m[1]}.{int(m[2]) - 1}.0.{m[3]}",
            k,
        )
        out[k] = v
    return out


_D2_RULES: list[tuple[str, str]] = [
    (r"^backbone\.bottom_up\.stem\.conv1\.weight$", "backbone.body.conv1.weight"),
    (r"^backbone\.bottom_up\.stem\.conv1\.norm\.(\w+)$", r"backbone.body.bn1.\1"),
    (r"^backbone\.bottom_up\.res(\d)\.(\d+)\.conv(\d)\.weight$", "RES_CONV"),
    (r"^backbone\.bottom_up\.res(\d)\.(\d+)\.conv(\d)\.norm\.(\w+)$", "RES_BN"),
    (r"^backbone\.bottom_up\.res(\d)\.(\d+)\.shortcut\.weight$", "RES_SC"),
    (r"^backbone\.bottom_up\.res(\d)\.(\d+)\.shortcut\.norm\.(\w+)$", "RES_SC_BN"),
    (r"^backbone\.fpn_lateral(\d)\.(weight|bias)$", "FPN_LAT"),
    (r"^backbone\.fpn_output(\d)\.(weight|bias)$", "FPN_OUT"),
    (r"^proposal_generator\.rpn_head\.conv\.(weight|bias)$", r"rpn.head.conv.0.0.\1"),
    (r"^proposal_generator\.rpn_head\.objectness_logits\.(weight|bias)$", r"rpn.head.cls_logits.\1"),
    (r"^proposal_generator\.rpn_head\.anchor_deltas\.(weight|bias)$", r"rpn.head.bbox_pred.\1"),
    (r"^roi_heads\.box_head\.fc1\.(weight|bias)$", r"roi_heads.box_head.fc6.\1"),
    (r"^roi_heads\.box_head\.fc2\.(weight|bias)$", r"roi_heads.box_head.fc7.\1"),
    (r"^roi_heads\.box_predictor\.cls_score\.(weight|bias)$", "CLS"),
    (r"^roi_heads\.box_predictor\.bbox_pred\.(weight|bias)$", "BBOX"),
    (r"^roi_heads\.mask_head\.mask_fcn(\d)\.(weight|bias)$", "MASK_FCN"),
    (r"^roi_heads\.mask_head\.deconv\.(weight|bias)$", r"roi_heads.mask_predictor.conv5_mask.\1"),
    (r"^roi_heads\.mask_head\.predictor\.(weight|bias)$", "MASK_PRED"),
    (r"^sem_seg_head\.(.+)$", r"sem_seg_head.\1"),
]
_D2_IGNORED = re.compile(r"^(pixel_mean|pixel_std)$|num_batches_tracked$")


def convert_detectron2_panoptic(sd: Mapping[str, torch.Tensor]) -> StateDict:
    """Rename a detectron2 Panoptic FPN state dict to edge's names.

    detectron2 puts the background class last and has no background box/mask outputs;
    torchvision (and edge) put it first, so those rows are moved or zero-filled.
    """
    out: StateDict = {}
    unknown = []
    for key, v in sd.items():
        if _D2_IGNORED.search(key):
            continue
        for pattern, target in _D2_RULES:
            m = re.match(pattern, key)
            if m is None:
                continue
            out.update(_d2_convert(target, m, key, v))
            break
        else:
            unknown.append(key)
    if unknown:
        raise CheckpointError(f"detectron2 checkpoint has keys edge cannot map: {_listing(unknown)}")
    return out


def _d2_convert(target: str, m: re.Match[str], key: str, v: torch.Tensor) -> StateDict:
    if target == "RES_CONV":
        return {f"backbone.body.layer{int(m[1]) - 1}.{m[2]}.conv{m[3]}.weight": v}
    if target == "RES_BN":
        return {f"backbone.body.layer{int(m[1]) - 1}.{m[2]}.bn{m[3]}.{m[4]}": v}
    if target == "RES_SC":
        return {f"backbone.body.layer{int(m[1]) - 1}.{m[2]}.downsample.0.weight": v}
    if target == "RES_SC_BN":
        return {f"backbone.body.layer{int(m[1]) - 1}.{m[2]}.downsample.1.{m[3]}": v}
    if target == "FPN_LAT":
        return {f"backbone.fpn.inner_blocks.{int(m[1]) - 2}.0.{m[2]}": v}
    if target == "FPN_OUT":
        return {f"backbone.fpn.layer_blocks.{int(m[1]) - 2}.0.{m[2]}": v}
    if target == "MASK_FCN":
        return {f"roi_heads.mask_head.{int(m[1]) - 1}.0.{m[2]}": v}
    if target == "CLS":  # [K+1 (bg last), ...] -> [bg first, K, ...]
        return {f"roi_heads.box_predictor.cls_score.{m[1]}": torch.cat([v[-1:], v[:-1]])}
    if target == "BBOX":  # [K*4, ...] -> [(K+1)*4, ...] with a zero background block
        return {f"roi_heads.box_predictor.bbox_pred.{m[1]}": torch.cat([v.new_zeros((4, *v.shape[1:])), v])}
    if target == "MASK_PRED":  # [K, ...] -> [K+1, ...] with a zero background channel
        return {
            f"roi_heads.mask_predictor.mask_fcn_logits.{m[1]}": torch.cat([v.new_zeros((1, *v.shape[1:])), v])
        }
    return {m.expand(target): v}


def load_detectron2_panoptic(model: nn.Module, sd: Mapping[str, torch.Tensor]) -> None:
    """Load a detectron2 Panoptic FPN checkpoint (the ``model`` dict of model_final.pth).

    The config must match the checkpoint: ``stride_in_1x1=True`` for MSRA backbones,
    ``pixel_mean``/``pixel_std`` and class counts as trained.
    """
    load_strict(model, convert_detectron2_panoptic(sd), what="detectron2 Panoptic FPN checkpoint")


_MD2_EXTRA = ("height", "width", "use_stereo")


def load_monodepth2(
    model: nn.Module, encoder_sd: Mapping[str, torch.Tensor], depth_sd: Mapping[str, torch.Tensor]
) -> None:
    """Load monodepth2's encoder.pth and depth.pth into a DepthNet."""
    enc = {k: v for k, v in encoder_sd.items() if k not in _MD2_EXTRA and not k.startswith("encoder.fc.")}
    load_strict(cast(nn.Module, model.encoder), enc, what="monodepth2 encoder.pth")
    load_strict(cast(nn.Module, model.decoder), depth_sd, what="monodepth2 depth.pth")


def detect_format(sd: Mapping[str, torch.Tensor]) -> str:
    """'edge', 'torchvision', 'detectron2' or 'monodepth2-encoder' from the key names."""
    keys = set(sd)
    if any(k.startswith("backbone.bottom_up.") for k in keys):
        return "detectron2"
    if any(k.startswith("backbone.body.") for k in keys):
        return "edge" if any(k.startswith("sem_seg_head.") for k in keys) else "torchvision"
    if any(k.startswith("encoder.encoder.") for k in keys):
        return "edge"
    if any(k.startswith("encoder.") for k in keys):
        return "monodepth2-encoder"
    raise CheckpointError(
        "cannot tell the checkpoint's layout from its keys "
        f"(first keys: {_listing(list(keys)[:_MAX_LISTED])}); expected edge, torchvision, "
        "detectron2 or monodepth2 names"
    )


def load_checkpoint(model: nn.Module, path: str | Path) -> str:
    """Load weights from a file, or a monodepth2 folder (encoder.pth + depth.pth).

    Returns the detected format.
    """
    p = Path(path)
    if p.is_dir():
        enc, dep = p / "encoder.pth", p / "depth.pth"
        if not (enc.is_file() and dep.is_file()):
            raise CheckpointError(
                f"checkpoint folder {str(p)!r} must contain encoder.pth and depth.pth (monodepth2)"
            )
        load_monodepth2(model, read_state_dict(enc), read_state_dict(dep))
        return "monodepth2"
    sd = read_state_dict(p)
    fmt = detect_format(sd)
    if fmt == "edge":
        load_strict(model, sd, what=f"checkpoint {str(p)!r}")
    elif fmt == "torchvision":
        load_torchvision_maskrcnn(model, sd)
    elif fmt == "detectron2":
        load_detectron2_panoptic(model, sd)
    else:
        raise CheckpointError(
            f"checkpoint {str(p)!r} is a monodepth2 encoder alone; pass the folder that holds "
            "both encoder.pth and depth.pth"
        )
    return fmt
