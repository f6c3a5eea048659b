"""Golden values for the depth metrics and the panoptic/semantic rules on tiny hand-made maps."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edge.eval import ConfusionMatrix, DepthStats, Evaluator, PanopticStats
from edge.eval.objects import ObjectDistanceStats


def test_depth_metrics_golden() -> None:
    s = DepthStats(max_depth=80.0)
    gt = np.array([[10.0, 20.0, 0.0, 90.0]])  # 0 and 90 (beyond max) are not evaluated
    pred = np.array([[12.0, 15.0, 5.0, 5.0]])
    s.add(pred, gt)
    r = s.results()
    assert r["pixels"] == 2
    assert r["abs_rel"] == pytest.approx((0.2 + 0.25) / 2)
    assert r["sq_rel"] == pytest.approx((4 / 10 + 25 / 20) / 2)
    assert r["rmse"] == pytest.approx(math.sqrt((4 + 25) / 2))
    assert r["rmse_log"] == pytest.approx(math.sqrt((math.log(1.2) ** 2 + math.log(0.75) ** 2) / 2))
    # ratios 1.2 and 1.333: one below 1.25, both below 1.5625
    assert (r["delta1"], r["delta2"], r["delta3"]) == (0.5, 1.0, 1.0)
    assert DepthStats().results() == {"pixels": 0}
    with pytest.raises(ValueError):
        DepthStats(min_depth=5, max_depth=1)


def test_panoptic_rules_on_hand_made_maps() -> None:
    gt = np.full((10, 10), 7)  # road
    gt[0:4, 0:4] = 26001  # a car (16 px)
    gt[6:10, 6:10] = 0  # void (16 px)
    pred = np.full((10, 10), 7)
    pred[0:4, 0:3] = 26005  # 12 px, IoU 12/16 = 0.75: a match
    pred[6:10, 6:10] = 24001  # a person entirely on void: ignored, not a false positive
    s = PanopticStats()
    assert sorted(s.add(pred, gt)) == [(7, 7), (26001, 26005)]  # the matched pairs
    car, road, person = (s.per_class[k] for k in (26, 7, 24))
    assert (car.tp, car.fp, car.fn) == (1, 0, 0) and car.iou == pytest.approx(0.75)
    assert (person.tp, person.fp, person.fn) == (0, 0, 0)
    # road: gt 100-16-16 = 68 px; pred road 100-12-16 = 72 px; overlap 68-0 ... the car's
    # 4 unpredicted px are road in pred: intersection 68, union 72 + 68 - 68 - 0 = 72
    assert road.tp == 1 and road.iou == pytest.approx(68 / 72)
    r = s.results()
    assert r["things"]["pq"] == pytest.approx(0.75) and r["stuff"]["pq"] == pytest.approx(68 / 72)
    with pytest.raises(ValueError, match="not evaluated"):
        s.add(np.full((10, 10), 5), gt)


def test_miou_rules() -> None:
    cm = ConfusionMatrix()
    gt = np.array([[7, 7, 26, 0]])  # 0 is not evaluated
    pred = np.array([[7, 26, 26, 26]])
    cm.add(pred, gt)
    r = cm.results()["per_class_iou"]
    assert r["road"] == pytest.approx(1 / 2)  # tp 1, fn 1
    assert r["car"] == pytest.approx(1 / 2)  # tp 1, fp 1 (the prediction on void is not counted)
    assert math.isnan(r["sky"])
    assert cm.results()["miou"] == pytest.approx(0.5)


def test_evaluator_resizes_predictions_to_the_ground_truth() -> None:
    ev = Evaluator()
    gt_labels = np.full((8, 16), 7, np.int32)
    gt_inst = gt_labels.copy()
    ev.add(
        gt_label_ids=gt_labels,
        gt_instance_ids=gt_inst,
        gt_depth=np.full((8, 16), 10.0, np.float32),
        panoptic_ids=np.full((4, 8), 7, np.int32),
        sem_train_ids=np.zeros((4, 8), np.int32),  # train id 0 = road
        depth=np.full((4, 8), 11.0, np.float32),
    )
    r = ev.results()
    assert r["frames"] == 1 and r["semantic"]["miou"] == 1.0 and r["panoptic"]["all"]["pq"] == 1.0
    assert r["depth"]["abs_rel"] == pytest.approx(0.1)
    assert r["object_distance"] == {"objects": 0}  # road only: no things


def test_object_distance_golden() -> None:
    gt = np.full((4, 6), 7)  # road
    gt[:, 0:3] = 26001  # a car, 12 px
    gt[0:2, 3:6] = 26002  # another car, 6 px
    pred = gt.copy()
    pred[gt == 26001] = 26000
    pred[gt == 26002] = 33000  # a bicycle where the second car is: no match, no distance
    gt_depth = np.full((4, 6), 30.0)
    gt_depth[:, 0:3] = [[8, 9, 10], [10, 11, 12], [10, 10, 10], [0, 10, 10]]  # 0: no measurement
    pred_depth = np.full((4, 6), 12.0)
    s = ObjectDistanceStats(max_depth=80.0)
    matches = PanopticStats().add(pred, gt)
    s.add(matches, pred, pred_depth, gt, gt_depth)  # car: true median 10 (11 valid px), predicted 12
    # second image: the same car predicted at 10.5 m; a car with no valid depth is skipped
    gt2 = gt.copy()
    gt2[0:2, 3:6] = 26003
    depth2 = gt_depth.copy()
    depth2[0:2, 3:6] = 0.0
    pred2 = gt2.copy()
    pred2[gt2 == 26001] = 26000
    s.add(PanopticStats().add(pred2, gt2), pred2, np.full((4, 6), 10.5), gt2, depth2)
    # errors 2 m (rel 0.2) and 0.5 m (rel 0.05)
    assert s.results() == pytest.approx(
        {
            "objects": 2,
            "abs_rel": 0.125,
            "abs_err_m_p50": 1.25,
            "abs_err_m_p90": 0.5 + 0.9 * 1.5,
            "within_10pct": 0.5,
        }
    )
    assert ObjectDistanceStats().results() == {"objects": 0}
