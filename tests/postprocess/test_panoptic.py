from __future__ import annotations

import numpy as np

from edge.data.cityscapes import PALETTE
from edge.postprocess.panoptic import fuse, paste_mask, resample_mask_crop, semantic_from_panoptic
from edge.postprocess.render import colorize_depth, depth_levels, overlay


def outputs(
    scores: list[float], boxes: list[list[float]], labels: list[int], h: int = 32, w: int = 64
) -> dict:
    k = len(scores)
    sem = np.zeros((1, h, w), np.int32)  # road everywhere
    sem[0, : h // 4] = 10  # sky on top
    return {
        "sem_labels": sem,
        "num_detections": np.array([k], np.int32),
        "scores": np.array([scores], np.float32),
        "boxes": np.array([boxes], np.float32),
        "labels": np.array([labels], np.int32),
        "masks": np.ones((1, k, 28, 28), np.float32),
    }


def test_paste_mask_fills_box_clipped_to_image() -> None:
    m = paste_mask(np.ones((28, 28)), np.array([60.0, 10.0, 70.0, 20.0]), 32, 64)
    assert m[10:20, 60:64].all() and m.sum() == 40


def test_resample_mask_crop_golden_grids() -> None:
    mask = np.arange(16, dtype=np.float32).reshape(4, 4)
    # a box exactly 4x4 pixels: crop pixels land on mask cell centres, the mask comes back as is
    same = resample_mask_crop(mask, np.array([10.0, 20.0, 14.0, 24.0]), (slice(20, 24), slice(10, 14)))
    np.testing.assert_array_equal(same, mask)
    # a box twice as large: pixel x reads the mask at (x + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75, ...
    # so inner pixels are 3:1 blends of neighbouring cells and the outer ones replicate the edge
    big = resample_mask_crop(mask, np.array([0.0, 0.0, 8.0, 8.0]), (slice(0, 8), slice(0, 8)))
    np.testing.assert_allclose(big[0], [0, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3], atol=1e-6)
    np.testing.assert_allclose(big[:, 0], 4 * big[0], atol=1e-6)
    # a crop clipped by the image edge samples the same grid, shifted
    clipped = resample_mask_crop(mask, np.array([-2.0, 0.0, 6.0, 8.0]), (slice(0, 8), slice(0, 6)))
    np.testing.assert_array_equal(clipped, big[:, 2:])


def test_fusion_ids_overlap_and_stuff() -> None:
    out = outputs(
        [0.9, 0.8, 0.7, 0.3],
        [[0, 16, 10, 26], [2, 16, 10, 26], [20, 16, 30, 26], [40, 16, 50, 26]],
        [2, 2, 0, 2],
    )
    ids, inst = fuse(out, score_thresh=0.5, overlap_thresh=0.5)
    # car (thing 2 -> train 13, label 26) first instance, person (label 24); the second car
    # overlaps the first by 80% and is dropped; the 0.3 car is under the score threshold
    assert [i.panoptic_id for i in inst] == [26000, 24000]
    assert ids[20, 5] == 26000 and ids[20, 25] == 24000
    assert ids[2, 2] == 23  # sky (label id 23)
    assert ids[30, 45] == 7  # road (label id 7)
    train = semantic_from_panoptic(ids)
    assert train[20, 5] == 13 and train[2, 2] == 10


def test_instance_boxes_reaching_past_the_picture_are_clipped_to_it() -> None:
    """A padded frame's boxes (fit.py) may reach into the padding: the mask is pasted with
    the box as given, the instance's box is the part within the picture."""
    out = outputs([0.9], [[-8.0, 20.0, 8.0, 40.0]], [2])  # the picture is 32x64
    ids, (inst,) = fuse(out)
    assert inst.box == (0.0, 20.0, 8.0, 32.0)
    assert inst.offset == (20, 0) and inst.mask.shape == (12, 8)
    assert (ids[20:32, 0:8] == inst.panoptic_id).all() and (ids == inst.panoptic_id).sum() == 96


def test_detections_an_overflowing_engine_gives_nan_or_inf_are_left_out() -> None:
    """A NaN score sorts anywhere and compares false with the threshold, and a NaN or inf box
    has no pixels to paste on: such detections are left out, the others kept as before."""
    nan, inf = float("nan"), float("inf")
    out = outputs(
        [nan, 0.9, 0.85, 0.8, 0.7],
        [[0, 16, 10, 26], [0, 16, nan, 26], [0, -inf, 10, inf], [20, 16, 30, 26], [40, 16, 50, 26]],
        [2, 2, 2, 0, 2],
    )
    ids, inst = fuse(out, score_thresh=0.5)
    assert [(i.panoptic_id, i.score, i.box) for i in inst] == [
        (24000, np.float32(0.8), (20.0, 16.0, 30.0, 26.0)),
        (26000, np.float32(0.7), (40.0, 16.0, 50.0, 26.0)),
    ]
    assert ids[20, 5] == 7  # road: the NaN detections took no pixels
    assert ids[20, 25] == 24000 and ids[20, 45] == 26000


def test_semantic_from_panoptic_ids() -> None:
    ids = np.array([[7, 23, 26000, 26999], [24003, 0, 5, -1], [999, 34000, 2**31 - 1, 1_000_000]], np.int32)
    # road, sky, two cars, a person; unlabeled (0), "dynamic" (5, no train id), a negative id,
    # an unknown label id (999) and ids past the table: all void
    expected = [[0, 10, 13, 13], [11, 255, 255, 255], [255, 255, 255, 255]]
    np.testing.assert_array_equal(semantic_from_panoptic(ids), expected)


def test_small_stuff_regions_become_void() -> None:
    out = outputs([], np.zeros((0, 4)).tolist(), [])
    out["boxes"] = np.zeros((1, 0, 4), np.float32)
    out["sem_labels"][0, 0, 0] = 5  # one pole pixel
    ids, _ = fuse(out, stuff_area=4)
    assert ids[0, 0] == 0


def test_stuff_area_counts_only_pixels_no_instance_took() -> None:
    out = outputs([0.9], [[0, 0, 8, 8]], [2])
    out["sem_labels"][0, 0:8, 0:10] = 8  # vegetation: 80 pixels, 64 of them under the car
    ids, _ = fuse(out, stuff_area=20)
    assert ids[0, 0] == 26000 and ids[0, 9] == 0  # 16 free vegetation pixels < 20: void
    ids, _ = fuse(out, stuff_area=16)
    assert ids[0, 9] == 21  # vegetation (label id 21) at exactly the area


def test_overlay_blends_classes_and_keeps_void_pixels() -> None:
    out = outputs([0.9], [[0, 16, 10, 26]], [2])
    out["sem_labels"][0, 0:2, 60:64] = 13  # car class without an instance: void in the panoptic map
    ids, inst = fuse(out, stuff_area=1)
    image = np.full((32, 64, 3), 200, np.uint8)
    img = overlay(image, ids, inst, alpha=0.5)
    np.testing.assert_array_equal(img[0, 63], [200, 200, 200])  # void: the image untouched
    expected_sky = np.round(0.5 * 200 + 0.5 * PALETTE[10].astype(float))
    # sky, far from outlines and above the car's label (OpenCV 4.8 draws it from row 2, 5.1 from 4)
    np.testing.assert_allclose(img[1, 30], expected_sky, atol=1)
    np.testing.assert_array_equal(img[16, 0], [255, 255, 255])  # the car's outline


def test_render_shapes() -> None:
    out = outputs([0.9], [[0, 16, 10, 26]], [2])
    ids, inst = fuse(out)
    img = overlay(np.full((32, 64, 3), 100, np.uint8), ids, inst)
    assert img.shape == (32, 64, 3) and img.dtype == np.uint8
    assert not np.array_equal(img[20, 5], [100, 100, 100])
    depth = np.linspace(1, 50, 32 * 64, dtype=np.float32).reshape(32, 64)
    col = colorize_depth(depth)
    assert col.shape == (32, 64, 3)
    assert col[0, 0].sum() > col[-1, -1].sum()  # near is brighter


def _levels_reference(depth: np.ndarray, min_depth: float = 0.1, max_depth: float = 100.0) -> np.ndarray:
    """depth_levels' rule in float64 numpy."""
    inv = 1.0 / np.clip(depth.astype(np.float64), min_depth, max_depth)
    lo, hi = np.percentile(inv[::4, ::4], [1, 99])
    return np.floor(255 * np.clip((inv - lo) / max(hi - lo, 1e-9), 0, 1)).astype(np.uint8)


def test_depth_levels_follow_the_rule_within_one_level() -> None:
    rng = np.random.default_rng(0)
    maps = {
        "ramp": np.linspace(1, 80, 64 * 128, dtype=np.float32).reshape(64, 128),
        "flat": np.full((64, 128), 7.3, np.float32),  # no stretch: all at the far end
        "almost flat": (7.3 + rng.normal(0, 1e-3, (64, 128))).astype(np.float32),  # +-1 mm
        "outside the range": rng.uniform(-5, 300, (64, 128)).astype(np.float32),
        "float64 input": rng.uniform(1, 50, (64, 128)),
    }
    for name, depth in maps.items():
        got, want = depth_levels(depth).astype(int), _levels_reference(depth).astype(int)
        assert got.shape == depth.shape, name
        assert np.abs(got - want).max() <= 1 and (got == want).mean() > 0.95, name
    assert depth_levels(maps["flat"]).max() == 0
    # hand-made: 1/d is 1, 1/2, 1/4 and 1/8 in equal parts, so the stretch runs from 1/8 to 1
    depth = np.repeat(np.array([1.0, 2.0, 4.0, 8.0], np.float32), 64).reshape(16, 16)
    assert sorted(set(depth_levels(depth).ravel().tolist())) == [0, 36, 109, 255]
    # the colours are MAGMA's at those levels
    import cv2

    bgr = cv2.applyColorMap(depth_levels(depth), cv2.COLORMAP_MAGMA)
    np.testing.assert_array_equal(colorize_depth(depth), cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
