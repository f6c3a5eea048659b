"""The synthetic drive: ground truth consistent with the image geometry, deterministic."""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pytest

from edge.data.billboards import Billboard
from edge.data.synthetic import (
    BUILDING,
    CAMERA_HEIGHT,
    CAR,
    ROAD,
    SKY,
    TRUCK,
    SyntheticDrive,
    SyntheticScene,
)
from edge.errors import ConfigError
from edge.eval.objects import true_lateral, true_pixels

THINGS = {24, 25, 26, 27, 28, 31, 32, 33}


def test_frames_are_deterministic_and_move() -> None:
    a = SyntheticDrive(height=128, width=256, seed=4)
    b = SyntheticDrive(height=128, width=256, seed=4)
    f0, f0b, f5 = a.render(0), b.render(0), a.render(5)
    assert np.array_equal(f0.image, f0b.image) and np.array_equal(f0.instance_ids, f0b.instance_ids)
    assert not np.array_equal(f0.image, f5.image)  # ego motion
    assert not np.array_equal(SyntheticDrive(height=128, width=256, seed=5).render(0).label_ids, f0.label_ids)
    assert SyntheticScene(height=128, width=256, seed=4).render(0).shape == (128, 256, 3)


def test_ground_truth_is_consistent() -> None:
    drive = SyntheticDrive(height=256, width=512, seed=1)
    gt = drive.render(3)
    assert gt.image.dtype == np.uint8 and gt.label_ids.dtype == np.uint8 and gt.depth.dtype == np.float32
    labels = set(np.unique(gt.label_ids).tolist())
    assert {ROAD, SKY, BUILDING, CAR} <= labels
    # instance ids: labelId*1000+n on things, the labelId on stuff
    inst, lab = gt.instance_ids, gt.label_ids.astype(np.int32)
    things = inst >= 1000
    assert np.array_equal(inst[things] // 1000, lab[things])
    assert np.array_equal(inst[~things], lab[~things])
    assert set(np.unique(lab[things]).tolist()) <= THINGS
    assert len(np.unique(inst[things])) >= 2
    # sky has no depth, everything else has
    assert np.all(gt.depth[gt.label_ids == SKY] == 0)
    assert np.all(gt.depth[gt.label_ids != SKY] > 0)


def test_road_depth_is_the_ground_plane() -> None:
    drive = SyntheticDrive(height=256, width=512, seed=2)
    gt = drive.render(0)
    cam = drive.camera
    v, u = np.nonzero(gt.label_ids == ROAD)
    # a pixel on the road at row v sees the ground at Z = f * h / (v + 0.5 - cy)... the
    # renderer samples pixel corners, so Z = f * h / (v - cy) exactly
    want = cam.f * CAMERA_HEIGHT / (v - cam.cy)
    np.testing.assert_allclose(gt.depth[v, u], want, rtol=1e-4)


def test_nearer_objects_occlude_farther_ones() -> None:
    """Two cars in one lane, listed far-first: the near one must still be drawn on top."""
    drive = SyntheticDrive(height=256, width=512, seed=0)
    drive.facades = []
    drive.objects = [
        Billboard(CAR, 2, 0.5, 20.0, 1.8, 1.5, (0, 0, 200)),  # far, listed first
        Billboard(CAR, 1, 0.0, 10.0, 1.8, 1.5, (200, 0, 0)),  # near
    ]
    gt = drive.render(0)
    near, far = gt.instance_ids == CAR * 1000 + 1, gt.instance_ids == CAR * 1000 + 2
    assert near.sum() > 1000 and 0 < far.sum() < 100
    np.testing.assert_allclose(gt.depth[near], 10.0)
    np.testing.assert_allclose(gt.depth[far], 20.0)
    # the far car's box lies inside the near car's box; it shows only through the near
    # car's cut-away upper corners (beside the cabin), i.e. in the top 35% of its rows
    cam = drive.camera
    near_top = cam.cy + cam.f * (CAMERA_HEIGHT - 1.5) / 10.0
    near_bottom = cam.cy + cam.f * CAMERA_HEIGHT / 10.0
    rows = np.nonzero(far)[0]
    assert rows.max() < near_top + 0.35 * (near_bottom - near_top) + 1


def test_frames_are_byte_for_byte_what_they_were() -> None:
    """The synthetic drives are the training data of the shipped weights and the ground
    truth of every recorded result: a renderer change (a speed-up, say) must leave them
    byte for byte the same, or be made on purpose with the records redone. Digests of
    image, labelIds, instanceIds and depth, taken before the ground was cached."""
    import hashlib

    drive = SyntheticDrive(height=64, width=128, seed=4)
    for index, want in ((0, "3593d9f521ffb057"), (40, "3af550029b19da62")):
        gt = drive.render(index)
        digest = hashlib.sha256()
        for a in (gt.image, gt.label_ids, gt.instance_ids, gt.depth):
            digest.update(a.tobytes())
        assert digest.hexdigest()[:16] == want, index


def test_cut_ins_join_the_same_world() -> None:
    """The road users that cut in are added with a seed of their own: the rest of the
    world, and so every frame without them, is what it was."""
    plain = SyntheticDrive(height=64, width=128, seed=4)
    drive = SyntheticDrive(height=64, width=128, seed=4, cut_ins=6)
    assert drive.objects[: len(plain.objects)] == plain.objects
    added = drive.objects[len(plain.objects) :]
    assert len(added) == 6 and all(ob.crossing is not None for ob in added)
    ids = [(ob.label, ob.instance) for ob in drive.objects if ob.instance]
    assert len(ids) == len(set(ids))  # instance numbers go on from the drive's own
    with pytest.raises(ConfigError, match="cut_ins must be >= 0, got -1"):
        SyntheticDrive(seed=4, cut_ins=-1)


def test_a_cut_in_is_beside_the_path_and_then_in_it() -> None:
    """Each added road user, alone on the road, read from the rendered ground truth as
    edge replay --hfov reads it: beside a 1.5 m half-width path before it sets off, in it
    once it has crossed, having moved towards the axis at 1 m/s or more on average."""
    drive = SyntheticDrive(height=256, width=512, seed=2, cut_ins=4)
    drive.facades = []
    hfov = math.degrees(2 * math.atan(1 / 2.2))  # the synthetic camera's f = 1.1 x width
    for ob in [ob for ob in drive.objects if ob.crossing]:
        drive.objects = [ob]
        gid = ob.label * 1000 + ob.instance
        assert ob.crossing is not None
        start, crossed = ob.crossing.start_s, ob.crossing.start_s + ob.crossing.duration_s
        if ob.label != CAR:  # a person is in the path halfway across the road
            crossed = ob.crossing.start_s + ob.crossing.duration_s / 2
        where = {}
        for t in (start, crossed):
            gt = drive.render(round(t * 17.0))
            pixels = true_pixels(gt.instance_ids, gt.depth, {gid}, 1e-3, 80.0)
            where[t] = true_lateral(pixels, gt.depth, hfov_deg=hfov, path_half_width_m=1.5)[gid]
        (before, beside_in, gap), (after, crossed_in, _) = where[start], where[crossed]
        assert not beside_in and crossed_in and gap > 0, (ob, where)
        assert abs(before - ob.x) < 0.3
        assert (before - after) * np.sign(before) / (crossed - start) >= 1.0


def test_in_the_right_lane_the_world_is_the_same_but_seen_from_its_middle() -> None:
    """lane="right": the camera drives half a road's width right of the centre line.
    The world is drawn from the same seed; only traffic in the camera's own lane is held
    to the camera's speed or more, so it is never driven through."""
    centre = SyntheticDrive(height=256, width=512, seed=3)
    right = SyntheticDrive(height=256, width=512, seed=3, lane="right")
    assert right.ego_x == pytest.approx(centre.road_half / 2) and centre.ego_x == 0.0
    assert right.facades == centre.facades
    assert len(right.objects) == len(centre.objects)
    for a, b in zip(centre.objects, right.objects, strict=True):
        own_lane = b.label in (CAR, TRUCK) and abs(b.x - right.ego_x) < 0.5
        assert b == (dataclasses.replace(a, speed=max(a.speed, right.ego_speed)) if own_lane else a)
    pairs = list(zip(centre.objects, right.objects, strict=True))
    assert any(a.speed < right.ego_speed <= b.speed for a, b in pairs)
    # the road's edges, read from the rendered labels on the row that sees the ground 20 m
    # ahead (nothing standing on the road), lie at -road_half and +road_half in the world
    cam = right.camera
    row = math.ceil(cam.cy + cam.f * CAMERA_HEIGHT / 20.0)
    z = cam.f * CAMERA_HEIGHT / (row - cam.cy)
    for drive in (centre, right):
        drive.objects = []
        road = np.nonzero(drive.render(0).label_ids[row] == ROAD)[0]
        x = (np.array([road[0], road[-1] + 1]) - cam.cx) / cam.f * z + drive.ego_x
        np.testing.assert_allclose(x, [-drive.road_half, drive.road_half], atol=z / cam.f)
    with pytest.raises(ConfigError, match="lane must be one of centre, right, got 'left'"):
        SyntheticDrive(seed=3, lane="left")


def test_in_the_right_lane_oncoming_traffic_is_beside_the_path() -> None:
    """From the right lane every oncoming car or truck is truly beside a 1.5 m half-width
    path, read as edge replay --hfov reads it; from the centre line some are in it."""
    hfov = math.degrees(2 * math.atan(1 / 2.2))
    in_path = {}
    for lane in ("centre", "right"):
        drive = SyntheticDrive(height=256, width=512, seed=5, lane=lane)
        oncoming = {ob.label * 1000 + ob.instance for ob in drive.objects if ob.speed < 0}
        in_path[lane] = []
        for index in (0, 17, 34):
            gt = drive.render(index)
            pixels = true_pixels(gt.instance_ids, gt.depth, oncoming, 1e-3, 80.0)
            seen = true_lateral(pixels, gt.depth, hfov_deg=hfov, path_half_width_m=1.5)
            in_path[lane] += [truth.in_path for truth in seen.values()]
    assert len(in_path["right"]) >= 3 and not any(in_path["right"])
    assert any(in_path["centre"])


def test_cut_in_cars_pull_into_the_cameras_lane() -> None:
    centre = SyntheticDrive(height=64, width=128, seed=4, cut_ins=6)
    right = SyntheticDrive(height=64, width=128, seed=4, cut_ins=6, lane="right")
    pairs = zip(centre.objects, right.objects, strict=True)
    cars = [(a, b) for a, b in pairs if a.crossing and a.label == CAR]
    assert cars
    for a, b in cars:
        assert a.crossing is not None and b.crossing is not None
        assert b.crossing.to_x - right.ego_x == pytest.approx(a.crossing.to_x)


def _alone(drive: SyntheticDrive, ob: Billboard, indexes: tuple[int, ...]) -> list[float]:
    """The gap to ``ob`` alone on the road in each frame where it is ahead, checked against
    its rendered depth."""
    drive.facades, drive.objects = [], [ob]
    gid, gaps = ob.label * 1000 + ob.instance, []
    for index in indexes:
        t = index / 17.0
        gt = drive.render(index)
        mask = gt.instance_ids == gid
        want = ob.z_at(t) - drive.ego_speed * t
        if want > 0.5:
            assert mask.any() and np.allclose(gt.depth[mask], want, rtol=1e-5)
            gaps.append(want)
    return gaps


def test_the_car_ahead_brakes_else_one_is_added() -> None:
    """From the right lane the nearest car ahead in it (within 60 m) is the one that brakes,
    at the camera's speed until then; on the centre line, where no traffic drives, a car is
    added. The rest of the world is the same; the gap, steady until it brakes, closes."""
    seen = set()
    for seed in range(12):
        for lane in ("centre", "right"):
            plain = SyntheticDrive(height=256, width=512, seed=seed, lane=lane, cut_ins=2)
            drive = SyntheticDrive(height=256, width=512, seed=seed, lane=lane, cut_ins=2, lead_brakes=True)
            changed = [
                i for i, (a, b) in enumerate(zip(plain.objects, drive.objects, strict=False)) if a != b
            ]
            (lead,) = [ob for ob in drive.objects if ob.braking is not None]
            assert lead.label in (CAR, TRUCK) and lead.speed == drive.ego_speed
            assert abs(lead.x - drive.ego_x) < 1.0 and lead.z < 60.0
            if len(drive.objects) > len(plain.objects):  # added: none was ahead
                assert not changed and drive.objects[: len(plain.objects)] == plain.objects
                assert 15.0 <= lead.z <= 40.0
                assert not any(
                    ob.label in (CAR, TRUCK) and ob.speed > 0 and abs(ob.x - drive.ego_x) < 1.0 and ob.z < 60
                    for ob in plain.objects
                )
                seen.add((lane, "added"))
            else:  # the nearest car ahead became the one that brakes
                (i,) = changed
                assert drive.objects[i] == dataclasses.replace(
                    plain.objects[i], speed=drive.ego_speed, braking=lead.braking
                )
                ahead = [
                    ob.z
                    for ob in plain.objects
                    if ob.label in (CAR, TRUCK) and ob.speed > 0 and abs(ob.x - drive.ego_x) < 1.0
                ]
                assert lead.z == min(ahead)
                seen.add((lane, "nearest"))
    assert seen == {("centre", "added"), ("right", "added"), ("right", "nearest")}
    drive = SyntheticDrive(height=256, width=512, seed=6, lane="right", lead_brakes=True)
    (lead,) = [ob for ob in drive.objects if ob.braking is not None]
    gaps = _alone(drive, lead, (0, 17, 34, 51, 68))
    assert len(gaps) >= 3 and gaps[-1] < gaps[0]
    assert all(b <= a + 1e-9 for a, b in itertools.pairwise(gaps))  # steady, then closing
