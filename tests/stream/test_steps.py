"""The frame steps: what stretching a frame into engines of another shape is said to do."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge.perception import Perception
from edge.stream.steps import stretch_note
from tests.conftest import TEST_SIZE

TINY = {
    "panoptic": "panoptic_fpn_tiny onnxruntime fp32 256x512",
    "depth": "depth_tiny onnxruntime fp32 256x512",
}


def test_a_16_9_camera_into_2_1_engines_is_said_with_the_engines_of_its_shape() -> None:
    assert stretch_note((720, 1280), (256, 512), TINY) == (
        "frames 1280 wide and 720 high (1.78:1) go into engines of 256x512 (2.00:1): each is squashed "
        "to 89% of its height, which costs detections and distances; engines of their shape: edge build "
        "--models panoptic_fpn_tiny depth_tiny --backend onnxruntime --precision fp32 --size 288x512 "
        "(with the --checkpoint these were built from, if any), chosen with --size 288x512 where the "
        "folder holds other sizes too; or --fit pad, which keeps their shape in these engines"
    )


@pytest.mark.parametrize(
    ("frame_hw", "said"),
    [
        ((1024, 2048), None),  # Cityscapes' shape: only scaled
        ((256, 512), None),
        ((1000, 2048), None),  # 2.05:1, within 5% of 2:1
        ((480, 640), "squashed to 67% of its height"),
        ((300, 1200), "squashed to 50% of its width"),  # wider than the engines
    ],
)
def test_what_is_said_of_each_shape(frame_hw: tuple[int, int], said: str | None) -> None:
    note = stretch_note(frame_hw, (256, 512))
    if said is None:
        assert note is None
    else:
        assert note is not None and said in note
        assert "engines of their shape: edge build --size" in note  # no engines described: size alone


def test_each_stretched_size_is_said_once(demo_engines: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """Through the real steps (Perception runs run_engines, as the pipeline and edge bench
    do): a 4:3 frame is said once however often it comes, a frame of the engines' shape not
    at all, and another stretched size again."""
    h, w = TEST_SIZE
    with Perception.open(demo_engines) as perception:
        for _ in range(2):
            perception(np.zeros((96, 128, 3), np.uint8))
        perception(np.zeros((2 * h, 2 * w, 3), np.uint8))
        perception(np.zeros((64, 64, 3), np.uint8))
    said = [line for line in capfd.readouterr().err.splitlines() if line.startswith("warning: frames")]
    assert [line.split(" go into")[0] for line in said] == [
        "warning: frames 128 wide and 96 high (1.33:1)",
        "warning: frames 64 wide and 64 high (1.00:1)",
    ]
    assert f"--size {(w * 96 // 128) // 32 * 32}x{w}" in said[0]
