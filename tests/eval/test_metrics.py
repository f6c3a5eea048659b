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
    # a half-precision engine's depth is widened, not summed in float16: the same numbers
    # as its float32 copy's
    rng = np.random.default_rng(0)
    gt32 = rng.uniform(1, 79, (64, 64)).astype(np.float32)
    pred16 = (gt32 * rng.uniform(0.8, 1.2, gt32.shape)).astype(np.float16)
    half, single = DepthStats(), DepthStats()
    half.add(pred16, gt32)
    single.add(pred16.astype(np.float32), gt32)
    assert half.results() == single.results()
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
    matched = s.add(pred, gt)
    assert sorted(matched.pairs) == [(7, 7), (26001, 26005)]
    # the segments as matching saw them: the true ones without void, the predicted ones all
    assert matched.gt_areas == {7: 68, 26001: 16} and matched.gt_things == {26001}
    assert matched.pred_areas == {7: 72, 26005: 12, 24001: 16}
    assert matched.pred_things == {26005, 24001} and matched.thing_pairs == [(26001, 26005)]
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


def test_classes_not_evaluated_count_as_void() -> None:
    """A caravan (29), an ego-vehicle pixel (1), a negative and an unknown id in the truth score as the
    void they are, as if they had been set to 0: a prediction mostly on them is no false
    positive, and they are no segment of the truth."""
    rng = np.random.default_rng(4)
    gt = rng.choice([7, 8, 11, 26001, 26002, 24001, 24], (12, 16))
    gt[:5, :5] = 29001  # a caravan, not evaluated
    gt[8:, 12:] = 1  # ego vehicle
    gt[0, 10:] = -1  # license plate's id
    gt[11, :3] = 99001  # no class at all; its size makes the pairs' keys 64-bit
    pred = rng.choice([7, 8, 11, 26001, 26002, 24003], (12, 16))
    pred[:4, :4] = 26009  # a car predicted on the caravan
    voided = np.where((gt == 29001) | (gt == 1) | (gt < 0) | (gt == 99001), 0, gt)
    a, b = PanopticStats(), PanopticStats()
    matched, on_voided = a.add(pred, gt), b.add(pred, voided)
    assert matched == on_voided and 29001 not in matched.gt_areas and -1 not in matched.gt_areas
    assert a.per_class == b.per_class


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


def test_segment_medians_equal_a_mask_per_segment() -> None:
    from edge.eval.objects import segment_medians

    ids = np.array([[7, 26001, 26002, 26003], [26001, 26001, 26002, 24001], [26003, 0, 26001, 26002]])
    values = np.array([[1.0, 4.0, 9.0, 2.0], [6.0, 5.0, 8.0, 3.0], [7.0, 0.0, 1.0, 30.0]], np.float32)
    valid = values < 20
    # 26001: 4, 6, 5, 1 -> 4.5; 26003: 2, 7 -> 4.5; 26002 has 9, 8 (30 invalid) but is not asked
    # for; 25001 is nowhere; 24001 lies below the range asked for
    assert segment_medians(ids, values, [26003, 26001, 25001], valid) == {26001: 4.5, 26003: 4.5}
    assert segment_medians(ids, values, {26002}) == {26002: 9.0}
    assert segment_medians(ids, values, {26002}, np.zeros_like(valid)) == {}
    assert segment_medians(ids, values, []) == {}
    rng = np.random.default_rng(0)
    for _ in range(20):
        ids = rng.choice([0, 7, 24001, 24002, 26001, 26002, 26003, 33001], (64, 96))
        values = rng.uniform(0, 90, ids.shape).astype(np.float32)
        valid = rng.uniform(size=ids.shape) < 0.7
        wanted = set(rng.choice([24001, 24002, 26002, 26003, 33001, 33002], 3).tolist())
        slow = {
            int(g): float(np.median(values[(ids == g) & valid])) for g in wanted if ((ids == g) & valid).any()
        }
        assert segment_medians(ids, values, wanted, valid) == slow


def test_things_found_by_distance_golden() -> None:
    """Each ground-truth thing with a true distance counts once in its class and band;
    found where panoptic matching paired it. Band edges belong to the farther band."""
    from edge.eval.objects import RecallByDistance, band_names

    gt = np.full((4, 8), 7)  # road
    gt[:, 0:2] = 24001  # a person, 8 px, at 5 m: found
    gt[:, 2:4] = 24002  # a person at 10 m (the edge): missed, predicted a car
    gt[0:2, 4:6] = 26001  # a car at 25 m: found
    gt[2:4, 4:6] = 26002  # a car at 60 m: missed, predicted road
    gt[:, 6:8] = 26003  # a car without depth: not counted
    pred = gt.copy()
    pred[gt == 24002] = 26009
    pred[gt == 26002] = 7
    depth = np.zeros((4, 8), np.float32)
    depth[:, 0:2], depth[:, 2:4], depth[0:2, 4:6], depth[2:4, 4:6] = 5.0, 10.0, 25.0, 60.0
    ev = Evaluator()
    for _ in range(2):  # the same image twice: counts add up
        ev.add(
            gt_label_ids=gt // 1000 * (gt >= 1000) + gt * (gt < 1000),
            gt_instance_ids=gt,
            gt_depth=depth,
            panoptic_ids=pred,
        )
    found = ev.results()["found_by_distance"]
    assert found["bands"] == band_names() == ["<10 m", "10-20 m", "20-40 m", ">=40 m"]

    def cells(rows: list[dict]) -> list[tuple[int, int, float | None]]:
        return [(r["things"], r["found"], r["recall"]) for r in rows]

    assert cells(found["all"]) == [(2, 2, 1.0), (2, 0, 0.0), (2, 2, 1.0), (2, 0, 0.0)]
    assert cells(found["per_class"]["person"]) == [(2, 2, 1.0), (2, 0, 0.0), (0, 0, None), (0, 0, None)]
    assert cells(found["per_class"]["car"]) == [(0, 0, None), (0, 0, None), (2, 2, 1.0), (2, 0, 0.0)]
    assert set(found["per_class"]) == {"person", "car"}
    assert band_names((5.0, 30.0)) == ["<5 m", "5-30 m", ">=30 m"]
    assert RecallByDistance().results()["all"] == [
        {"band": b, "things": 0, "found": 0, "recall": None} for b in band_names()
    ]


def test_things_found_by_distance_in_the_replay_summary() -> None:
    from edge.eval.report import format_metrics

    ev = Evaluator()
    gt = np.full((4, 8), 7)
    gt[:, 0:2] = 24001
    gt[:, 4:6] = 26001
    depth = np.full((4, 8), 30.0, np.float32)
    depth[:, 0:2] = 5.0
    ev.add(
        gt_label_ids=np.where(gt >= 1000, gt // 1000, gt),
        gt_instance_ids=gt,
        gt_depth=depth,
        panoptic_ids=np.where(gt == 26001, 7, gt),
        sem_train_ids=np.zeros((4, 8), np.int32),
    )
    text = format_metrics(ev.results())
    assert "things found, by true distance:" in text
    lines = {line.split()[0]: " ".join(line.split()) for line in text.splitlines() if line.startswith("  ")}
    assert lines["all"].split() == ["all", "<10", "m", "100%", "of", "1", "20-40", "m", "0%", "of", "1"]
    assert "<10 m 100% of 1" in lines["person"] and "20-40 m 0% of 1" in lines["car"]
    # no things with a true distance: no such lines
    road = np.full((4, 8), 7)
    ev2 = Evaluator()
    ev2.add(gt_label_ids=road, gt_instance_ids=road, gt_depth=depth, panoptic_ids=road)
    assert "found, by true distance" not in format_metrics(ev2.results())
