"""The synthetic drive: ground truth consistent with the image geometry, deterministic."""

from __future__ import annotations

import numpy as np

from edge.data.synthetic import (
    BUILDING,
    CAMERA_HEIGHT,
    CAR,
    ROAD,
    SKY,
    Billboard,
    SyntheticDrive,
    SyntheticScene,
)

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
