"""The instance branch against torchvision's Mask R-CNN with the same (random) weights.

torchvision is not a dependency (its PyPI wheel does not load with the CPU torch used
here), so this runs where it is installed: the device machine. Results of the full-size
run are kept in benchmarks/results/torchvision_maskrcnn_parity.json.
"""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("torchvision", reason="torchvision is not installed (only needed for this check)")

from benchmarks.torchvision_parity import compare

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
def test_detections_match_torchvision(device: str) -> None:
    result = compare(device, 320, 448, passing=200)
    assert result["detections"]["ours"] > 0, result
    assert result["passed"], result
