from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from edge.errors import ConfigError, UnknownModelError
from edge.models import create_model, get_entry, list_models
from edge.models.configs import check_input_size
from edge.models.detection import anchors_for_level, decode_boxes
from edge.models.panoptic_fpn import OUTPUT_NAMES
from tests.conftest import ROOT


def test_zoo_lists_required_models() -> None:
    assert {"panoptic_fpn_r50", "panoptic_fpn_r18", "panoptic_fpn_tiny", "depth_tiny", "depth_r18"} <= set(
        list_models()
    )


def test_unknown_model_names_known_ones() -> None:
    with pytest.raises(UnknownModelError, match="unknown model 'nope'.*panoptic_fpn_tiny"):
        get_entry("nope")


def test_panoptic_tiny_outputs_fixed_shapes() -> None:
    model = create_model("panoptic_fpn_tiny")
    with torch.no_grad():
        out = model(torch.rand(1, 3, 128, 256) * 255)
    assert tuple(out) == OUTPUT_NAMES
    k = model.cfg.detections_per_img
    assert out["boxes"].shape == (1, k, 4)
    assert out["masks"].shape == (1, k, 28, 28)
    assert out["sem_logits"].shape == (1, 19, 32, 64)
    assert out["sem_labels"].shape == (1, 128, 256)
    n = int(out["num_detections"][0])
    assert 0 <= n <= k
    assert (out["labels"][0, n:] == -1).all() and (out["labels"][0, :n] >= 0).all()
    assert (out["labels"][0, :n] < 8).all()
    scores = out["scores"][0, :n]
    assert (scores[:-1] >= scores[1:]).all(), "detections sorted by score"
    b = out["boxes"][0, :n]
    assert (b[:, 0] >= 0).all() and (b[:, 2] <= 256).all() and (b[:, 3] <= 128).all()


def test_depth_within_configured_range() -> None:
    model = create_model("depth_tiny")
    with torch.no_grad():
        out = model(torch.rand(2, 3, 64, 128) * 255)
    depth = out["depth"]
    assert depth.shape == (2, 1, 64, 128)
    assert float(depth.min()) >= model.cfg.min_depth - 1e-5
    assert float(depth.max()) <= model.cfg.max_depth + 1e-3


def test_paper_scale_configs_have_the_published_structure() -> None:
    r50 = create_model("panoptic_fpn_r50")
    sd = r50.state_dict()
    assert sd["backbone.body.layer4.2.conv3.weight"].shape == (2048, 512, 1, 1)
    assert sd["backbone.fpn.layer_blocks.3.0.weight"].shape == (256, 256, 3, 3)
    assert sd["roi_heads.box_head.fc6.weight"].shape == (1024, 256 * 7 * 7)
    assert sd["roi_heads.box_predictor.cls_score.weight"].shape == (9, 1024)  # 8 things + bg
    assert sd["sem_seg_head.predictor.weight"].shape == (19, 128, 1, 1)
    assert len([k for k in sd if k.startswith("roi_heads.mask_head.")]) == 8  # 4 convs
    d18 = create_model("depth_r18")
    assert d18.state_dict()["encoder.encoder.layer4.1.conv2.weight"].shape == (512, 512, 3, 3)


def test_anchor_generator_matches_torchvision_layout() -> None:
    a = anchors_for_level(32.0, (0.5, 1.0, 2.0), (2, 3), (4, 4))
    assert a.shape == (2 * 3 * 3, 4)
    # ratio 1 anchor at the origin is a 32x32 box centred on (0,0)
    assert a[1].tolist() == [-16.0, -16.0, 16.0, 16.0]
    # ratio 0.5 (h/w): w = 32/sqrt(.5) = 45.25, h = 22.63 -> rounded half sizes 23, 11
    assert a[0].tolist() == [-23.0, -11.0, 23.0, 11.0]
    # next location shifts x by the stride
    assert a[4].tolist() == [-12.0, -16.0, 20.0, 16.0]


def test_box_decoding_identity_and_shift() -> None:
    boxes = torch.tensor([[10.0, 20.0, 30.0, 60.0]])
    assert decode_boxes(torch.zeros(1, 4), boxes, (1, 1, 1, 1))[0, 0].tolist() == boxes[0].tolist()
    # dx = 0.5 widths right, dw = log 2 doubles the width around the new centre
    d = torch.tensor([[0.5, 0.0, float(torch.log(torch.tensor(2.0))), 0.0]])
    torch.testing.assert_close(
        decode_boxes(d, boxes, (1, 1, 1, 1))[0, 0], torch.tensor([10.0, 20.0, 50.0, 60.0])
    )


@pytest.mark.parametrize("size", [(100, 256), (0, 256), (128, -32)])
def test_bad_input_size_is_refused(size: tuple[int, int]) -> None:
    with pytest.raises(ConfigError, match="multiples of 32"):
        check_input_size(*size)


def test_naming_a_model_does_not_import_torch() -> None:
    """The zoo and the size rule answer before torch loads (2.5 s on 2 cores), so a wrong
    model name or size on the command line is refused at once."""
    code = (
        "import sys\n"
        "from edge.build import BuildRequest, parse_size\n"
        "from edge.models.zoo import bundled_weights, get_entry, list_models\n"
        "list_models(); bundled_weights('depth_tiny'); get_entry('panoptic_fpn_tiny').config_dict()\n"
        "BuildRequest(model='depth_tiny', height=64, width=128).validate(); parse_size('256x512')\n"
        "print(sorted(m for m in ('torch', 'onnx', 'onnxruntime', 'cv2') if m in sys.modules))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stderr


@pytest.mark.parametrize("name", ["panoptic_fpn_tiny", "panoptic_fpn_r18", "depth_tiny", "depth_r18"])
def test_folding_the_frozen_norms_keeps_the_outputs(name: str) -> None:
    """Every frozen batch norm of the ResNet backbones is folded into the convolution
    before it (stem, blocks, downsample); with statistics far from the identity the
    outputs stay the same within float rounding, and a second fold finds none."""
    import copy

    from edge.models.layers import FrozenBatchNorm2d, fold_frozen_batchnorm

    model = create_model(name, seed=0)
    gen = torch.Generator().manual_seed(1)
    norms = [m for m in model.modules() if isinstance(m, FrozenBatchNorm2d)]
    for norm in norms:
        for buf, (lo, hi) in zip(
            (norm.weight, norm.bias, norm.running_mean, norm.running_var),
            ((0.5, 1.5), (-0.2, 0.2), (-0.3, 0.3), (0.5, 2.0)),
            strict=True,
        ):
            buf.copy_(torch.rand(buf.shape, generator=gen) * (hi - lo) + lo)
    folded = copy.deepcopy(model)
    assert fold_frozen_batchnorm(folded) == len(norms) > 0
    assert not any(isinstance(m, FrozenBatchNorm2d) for m in folded.modules())
    assert fold_frozen_batchnorm(folded) == 0
    image = torch.rand(1, 3, 64, 128, generator=gen) * 255
    with torch.inference_mode():
        want, got = model(image), folded(image)
    for key, value in want.items():
        if value.is_floating_point():
            torch.testing.assert_close(got[key], value, rtol=1e-5, atol=1e-4)  # boxes in pixels
        else:
            assert torch.equal(got[key], value), key
