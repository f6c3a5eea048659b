"""Our PQ / SQ / RQ and mIoU equal the official cityscapesscripts evaluation, on the same
prediction files (a synthetic dataset with void and crowd regions, and predictions made
from its ground truth with shifted, relabelled, missing and spurious segments)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.data.cityscapes import list_frames, read_ids
from edge.data.make_synthetic import write_dataset
from edge.eval import ConfusionMatrix, PanopticStats

pytest.importorskip(
    "cityscapesscripts", reason="cityscapesscripts is a test dependency: pip install -e '.[dev]'"
)


def perturb(gt: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A plausible prediction: every kind of error the matching rules distinguish."""
    pred = gt.copy()
    things = [int(i) for i in np.unique(gt) if i >= 1000]
    rng.shuffle(things)
    for k, iid in enumerate(things):
        mask = gt == iid
        if k % 4 == 0:  # shifted: IoU may stay above or fall below 0.5
            shift = int(rng.integers(1, 6))
            pred[mask] = 7
            pred[np.roll(mask, shift, axis=1)] = iid
        elif k % 4 == 1:  # wrong class (car <-> truck, person -> bicycle ...)
            pred[mask] = {26: 27, 27: 26, 24: 33, 33: 24}.get(iid // 1000, 26) * 1000 + 900 + k
        elif k % 4 == 2:  # missed
            pred[mask] = 7
    h, w = gt.shape
    y, x = int(rng.integers(0, h // 2)), int(rng.integers(0, w - 20))
    pred[y : y + 8, x : x + 16] = 24999  # a spurious person
    pred[h // 3 : h // 3 + 6, :] = np.where(
        pred[h // 3 : h // 3 + 6, :] == 11, 21, pred[h // 3 : h // 3 + 6, :]
    )
    pred[rng.uniform(size=gt.shape) < 0.02] = 0  # unassigned pixels
    return pred


def encode_rgb(ids: np.ndarray) -> np.ndarray:
    return np.stack([ids % 256, ids // 256 % 256, ids // 65536], axis=-1).astype(np.uint8)


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory) -> dict:
    from cityscapesscripts.evaluation import evalPanopticSemanticLabeling as official_pq
    from cityscapesscripts.evaluation import evalPixelLevelSemanticLabeling as official_iou
    from cityscapesscripts.preparation.createPanopticImgs import convert2panoptic

    root = tmp_path_factory.mktemp("cs")
    write_dataset(root, sequences=2, frames=3, size=(128, 256), split="val", gt_every=1, seed=3)
    refs = [r for seq in list_frames(root, "val") for r in seq]
    rng = np.random.default_rng(0)
    # ground truth with a void band (label 0 and 3 = 'ego vehicle', not evaluated) and a crowd of cars
    for i, ref in enumerate(refs):
        inst = read_ids(ref.path("instanceIds"))
        lab = read_ids(ref.path("labelIds"))
        inst[-10:, :] = lab[-10:, :] = 1 if i % 2 else 0
        inst[60:70, 20:60] = lab[60:70, 20:60] = 26  # crowd: car pixels without an instance
        cv2.imwrite(str(ref.path("instanceIds")), inst.astype(np.uint16))
        cv2.imwrite(str(ref.path("labelIds")), lab.astype(np.uint8))
    out = root / "official"
    out.mkdir()
    convert2panoptic(cityscapesPath=str(root / "gtFine"), outputFolder=str(out), setNames=["val"])

    pred_dir = out / "pred"
    pred_dir.mkdir()
    ours_pq, ours_iou = PanopticStats(), ConfusionMatrix()
    annotations, pred_label_files, gt_label_files = [], [], []
    for ref in refs:
        gt_inst = read_ids(ref.path("instanceIds"))
        pred = perturb(gt_inst, rng)
        pred = np.where((pred > 0) & (pred < 1000) & ~np.isin(pred, [7, 8, 11, 17, 20, 21, 22, 23]), 7, pred)
        segments = [
            {"id": int(s), "category_id": int(s // 1000 if s >= 1000 else s)}
            for s in np.unique(pred)
            if s != 0
        ]
        cv2.imwrite(
            str(pred_dir / f"{ref.name}_panoptic.png"), cv2.cvtColor(encode_rgb(pred), cv2.COLOR_RGB2BGR)
        )
        annotations.append(
            {"image_id": ref.name, "file_name": f"{ref.name}_panoptic.png", "segments_info": segments}
        )
        ours_pq.add(pred, gt_inst)
        pred_labels = np.where(pred >= 1000, pred // 1000, pred).astype(np.uint8)
        label_file = pred_dir / f"{ref.name}_pred_labelIds.png"
        cv2.imwrite(str(label_file), pred_labels)
        pred_label_files.append(str(label_file))
        gt_label_files.append(str(ref.path("labelIds")))
        ours_iou.add(pred_labels, read_ids(ref.path("labelIds")))
    (out / "pred.json").write_text(json.dumps({"annotations": annotations}))
    official = official_pq.evaluatePanoptic(
        str(out / "cityscapes_panoptic_val.json"),
        str(out / "cityscapes_panoptic_val"),
        str(out / "pred.json"),
        str(pred_dir),
        str(out / "pq.json"),
    )
    args = official_iou.args
    args.quiet, args.JSONOutput, args.evalInstLevelScore = True, False, False
    official_miou = official_iou.evaluateImgLists(pred_label_files, gt_label_files, args)
    return {
        "pq": official,
        "ours_pq": ours_pq.results(),
        "iou": official_miou,
        "ours_iou": ours_iou.results(),
    }


def test_panoptic_quality_equals_official(evaluated: dict) -> None:
    official, ours = evaluated["pq"], evaluated["ours_pq"]
    for theirs_key, our_key in (("All", "all"), ("Things", "things"), ("Stuff", "stuff")):
        for metric in ("pq", "sq", "rq"):
            assert ours[our_key][metric] == pytest.approx(official[theirs_key][metric], abs=1e-12), (
                our_key,
                metric,
            )
        assert ours[our_key]["n"] == official[theirs_key]["n"]
    assert 0.2 < ours["all"]["pq"] < 0.95  # the perturbations really cost something
    from edge.eval.panoptic import EVAL_LABELS

    for label_id, scores in official["per_class"].items():
        mine = ours["per_class"][EVAL_LABELS[int(label_id)].name]
        for metric in ("pq", "sq", "rq"):
            assert mine[metric] == pytest.approx(scores[metric], abs=1e-12)


def test_miou_equals_official(evaluated: dict) -> None:
    official, ours = evaluated["iou"], evaluated["ours_iou"]
    assert ours["miou"] == pytest.approx(official["averageScoreClasses"], abs=1e-12)
    for name, iou in official["classScores"].items():
        if name in ours["per_class_iou"]:
            if np.isnan(iou):
                assert np.isnan(ours["per_class_iou"][name])
            else:
                assert ours["per_class_iou"][name] == pytest.approx(iou, abs=1e-12)


def test_replays_own_prediction_files_score_as_edge_says_officially(
    demo_engines: Path, tmp_path: Path
) -> None:
    """edge replay --out on frames twice the engines' size: the official evaluation takes its
    prediction files (at the frames' size, which it requires) and scores them as edge did."""
    from cityscapesscripts.evaluation import evalPanopticSemanticLabeling as official_pq
    from cityscapesscripts.evaluation import evalPixelLevelSemanticLabeling as official_iou
    from cityscapesscripts.preparation.createPanopticImgs import convert2panoptic

    from edge.replay import replay
    from tests.conftest import TEST_SIZE

    h, w = 2 * TEST_SIZE[0], 2 * TEST_SIZE[1]
    root = tmp_path / "cs"
    write_dataset(root, sequences=1, frames=3, size=(h, w), split="val", gt_every=1, seed=4)
    out = tmp_path / "preds"
    report = replay(f"cityscapes://{root}?fps=0", engines=demo_engines, threads=1, out_dir=out)
    metrics = report["metrics"]
    refs = [r for seq in list_frames(root, "val") for r in seq]
    for ref in refs:
        assert cv2.imread(str(out / "panoptic" / f"{ref.name}_panoptic.png")).shape == (h, w, 3)
        assert cv2.imread(str(out / "depth" / f"{ref.name}_depth.png"), -1).shape == (h, w)
    gt = tmp_path / "official"
    gt.mkdir()
    convert2panoptic(cityscapesPath=str(root / "gtFine"), outputFolder=str(gt), setNames=["val"])
    official = official_pq.evaluatePanoptic(
        str(gt / "cityscapes_panoptic_val.json"),
        str(gt / "cityscapes_panoptic_val"),
        str(out / "panoptic.json"),
        str(out / "panoptic"),
        str(tmp_path / "pq.json"),
    )
    assert metrics["panoptic"]["all"]["pq"] == pytest.approx(official["All"]["pq"], abs=1e-12)
    assert metrics["panoptic"]["all"]["pq"] > 0.3  # the bundled weights find the drive's things
    args = official_iou.args
    args.quiet, args.JSONOutput, args.evalInstLevelScore = True, False, False
    official_miou = official_iou.evaluateImgLists(
        [str(out / "semantic" / f"{r.name}_pred_labelIds.png") for r in refs],
        [str(r.path("labelIds")) for r in refs],
        args,
    )
    assert metrics["semantic"]["miou"] == pytest.approx(official_miou["averageScoreClasses"], abs=1e-12)
