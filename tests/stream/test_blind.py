"""A panoptic engine that finds no things while its semantic branch labels them, said once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge.stream import blind
from edge.stream.blind import say_blind, thing_shares
from edge.stream.engines import EngineSet
from tests.conftest import TEST_SIZE, source_images
from tests.stream.test_nonfinite import corrupted

CAR, PERSON, ROAD = 13, 11, 0  # Cityscapes train ids


def test_thing_shares_count_every_fourth_row_and_column() -> None:
    labels = np.full((1, 16, 32), ROAD, np.int32)
    labels[0, :8, :8] = CAR  # 2 of the 4 sampled rows, 2 of the 8 sampled columns: 4 of 32 samples
    labels[0, 1:4, 9:12] = PERSON  # between the sampled rows: not counted
    labels[0, 12, 16] = PERSON  # on a sampled row and column: 1 of 32
    assert thing_shares(labels) == {CAR: 4 / 32, PERSON: 1 / 32}
    assert thing_shares(np.full((8, 8), ROAD, np.int32)) == {}


def outputs(detections: int, thing_share: float) -> dict:
    labels = np.full((1, 64, 64), ROAD, np.int32)
    rows = round(16 * thing_share) * 4  # whole sampled rows of cars
    labels[0, :rows] = CAR
    return {"panoptic": {"num_detections": np.array([detections], np.int32), "sem_labels": labels}}


def said(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if "found no things" in line]


def test_a_streak_is_said_once_and_broken_by_a_detection_or_an_empty_scene(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(blind, "BLIND_FRAMES", 3)
    engines = EngineSet(panoptic=None, depth=None)
    frames = [
        outputs(0, 0.25),
        outputs(0, 0.25),
        outputs(2, 0.25),  # a detection: the streak starts again
        outputs(0, 0.25),
        outputs(0, 0.0),  # no things in the semantic map either: again
        outputs(0, 0.25),
        outputs(0, 0.5),
    ]
    for seq, out in enumerate(frames):
        say_blind(engines, out, seq, "front")
    assert said(capsys) == []
    say_blind(engines, outputs(0, 0.25), 7, "rear")  # another camera's streak is its own
    say_blind(engines, outputs(0, 0.25), 8, "front")
    (line,) = said(capsys)
    assert line.startswith(
        "warning: the panoptic engine found no things in 3 frames in a row (frames 5 to 8) while its "
        "semantic branch put 33.3% of their pixels in thing classes (car 33.3%): its instance branch "
        "may be giving nothing, as an RPN whose scores are NaN does"
    )
    for seq in range(9, 20):
        say_blind(engines, outputs(0, 0.25), seq, "front")
        say_blind(engines, outputs(0, 0.25), seq, "rear")
    assert said(capsys) == []  # once for the run


def test_a_panoptic_engine_whose_rpn_scores_are_nan_is_said_blind(
    demo_engines: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real tiny panoptic engine with its RPN's objectness bias NaN: every proposal is
    masked invalid, no output holds a NaN (nothing for the NaN check to say), no thing is
    found, and the semantic branch, whole, still labels the drive's cars: said once the
    frames in a row reach BLIND_FRAMES. The whole engine finds things in the same frames
    and says nothing."""
    from edge.perception import Perception

    monkeypatch.setattr(blind, "BLIND_FRAMES", 3)
    folder = corrupted(demo_engines, tmp_path / "engines", "rpn.head.cls_logits.bias")
    images = source_images(f"synthetic://?size={TEST_SIZE[0]}x{TEST_SIZE[1]}&frames=4&seed=2&lane=right")
    with Perception.open(demo_engines) as good:
        found = [len(good(image).objects) for image in images]
    assert min(found) > 0 and said(capsys) == []
    with Perception.open(folder) as broken:
        seen = [broken(image) for image in images]
    err = capsys.readouterr().err
    assert "NaN or inf" not in err
    assert [len(s.objects) for s in seen] == [0, 0, 0, 0]
    lines = [line for line in err.splitlines() if "found no things" in line]
    assert len(lines) == 1 and lines[0].startswith(
        f"warning: the panoptic engine (panoptic_fpn_tiny onnxruntime fp32 {TEST_SIZE[0]}x{TEST_SIZE[1]}) "
        "found no things in 3 frames in a row (frames 0 to 2) while its semantic branch put "
    )
    assert "(car " in lines[0]
