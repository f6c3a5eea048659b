from __future__ import annotations

import numpy as np
import pytest

from edge.postprocess.labels import place_labels
from edge.postprocess.panoptic import Instance
from edge.postprocess.tracks import TrackInfo


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> int:
    w = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    h = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    return max(w, 0) * max(h, 0)


def test_a_label_sits_above_its_box_where_that_is_free_golden() -> None:
    # a 40 x 10 label for a box whose top is row 50: rows 40-49, from the box's left side
    assert place_labels([(100, 50, 180, 90)], [(40, 10)], (200, 300)) == [(100, 40, 40, 10)]
    # two boxes side by side wanting the same rows: the one first in the order keeps them,
    # the other goes inside its box's top (rows 50-59), where nothing is
    boxes, sizes = [(100, 50, 180, 90), (120, 50, 200, 90)], [(40, 10), (40, 10)]
    assert place_labels(boxes, sizes, (200, 300)) == [(100, 40, 40, 10), (120, 50, 40, 10)]
    assert place_labels(boxes, sizes, (200, 300), order=[1, 0]) == [(100, 50, 40, 10), (120, 40, 40, 10)]
    # a third there too: inside is taken by then, below the box (rows 90-99) is not
    three = place_labels([*boxes, (110, 50, 190, 90)], [*sizes, (40, 10)], (200, 300))
    assert three[2] == (110, 90, 40, 10)


def test_labels_stay_in_the_picture_golden() -> None:
    # at the top: above would be rows -6..3, so rows 0-9; at the right side: moved left
    assert place_labels([(10, 4, 30, 30)], [(40, 10)], (100, 200)) == [(10, 0, 40, 10)]
    assert place_labels([(180, 50, 199, 90)], [(40, 10)], (100, 200)) == [(160, 40, 40, 10)]
    # a label wider than the picture starts at its left side; one taller, at its top
    assert place_labels([(50, 50, 60, 60)], [(300, 10)], (100, 200)) == [(0, 40, 300, 10)]
    assert place_labels([(50, 50, 60, 60)], [(20, 150)], (100, 200)) == [(50, 0, 20, 150)]


def test_each_label_takes_its_first_free_place_or_the_least_overlapped() -> None:
    """Random crowded pictures against the rule checked by brute force: each label, in its
    turn, is at the first of its five places (above, inside, below, two and three heights
    above) that no label placed before it overlaps, or, where each is overlapped, at the
    one overlapped least; every label lies within the picture."""
    rng = np.random.default_rng(0)
    for _ in range(300):
        shape = (int(rng.integers(40, 200)), int(rng.integers(60, 300)))
        n = int(rng.integers(1, 12))
        x0 = rng.integers(0, shape[1], n)
        y0 = rng.integers(0, shape[0], n)
        boxes = [
            (float(x), float(y), float(x + rng.integers(1, 80)), float(y + rng.integers(1, 60)))
            for x, y in zip(x0, y0, strict=True)
        ]
        sizes = [(int(rng.integers(10, 60)), int(rng.integers(6, 14))) for _ in range(n)]
        order = [int(i) for i in rng.permutation(n)]
        rects = place_labels(boxes, sizes, shape, order)
        placed: list[tuple[int, int, int, int]] = []
        for i in order:
            x, y, w, h = rects[i]
            assert (w, h) == sizes[i]
            assert x >= 0 and (x + w <= shape[1] or x == 0)
            assert y >= 0 and (y + h <= shape[0] or y == 0)
            left, top, bottom = int(boxes[i][0]), int(boxes[i][1]), int(boxes[i][3])
            cx = min(max(left, 0), max(shape[1] - w, 0))
            places = [
                (cx, min(max(r, 0), max(shape[0] - h, 0)), w, h)
                for r in (top - h, top, bottom, top - 2 * h, top - 3 * h)
            ]
            cost = [sum(_overlap(p, q) for q in placed) for p in places]
            assert rects[i] == places[cost.index(min(cost))]
            placed.append(rects[i])


def test_bad_label_lists_are_refused() -> None:
    with pytest.raises(ValueError, match="1 label sizes for 2 boxes"):
        place_labels([(0, 0, 1, 1)] * 2, [(5, 5)], (10, 10))
    with pytest.raises(ValueError, match=r"order must hold each of the 2 labels once, got \[0, 0\]"):
        place_labels([(0, 0, 1, 1)] * 2, [(5, 5)] * 2, (10, 10), order=[0, 0])
    assert place_labels([], [], (10, 10)) == []


def test_the_overlays_labels_do_not_cover_each_other_and_the_warned_one_is_on_red() -> None:
    """Two cars side by side, the right one nearer and warned of: each label is drawn where
    place_labels puts it, the warned one first (above its box, on a red band), the other
    inside its own box's top, on a dark one; before, the two were written over each other."""
    import cv2

    from edge.postprocess.render import overlay

    image = np.full((60, 200, 3), 90, np.uint8)
    ids = np.zeros((60, 200), np.int32)  # void: the picture as it is, but for the cars
    ids[20:40, 40:100] = 26000
    ids[20:40, 60:120] = 26001
    cars = [
        Instance(26000, 13, 0.88, (40.0, 20.0, 100.0, 40.0), np.ones((20, 60), bool), (20, 40)),
        Instance(26001, 13, 0.91, (60.0, 20.0, 120.0, 40.0), np.ones((20, 60), bool), (20, 60)),
    ]
    far = TrackInfo(1, 9, 0.5, None, None, range_m=30.0, range_from="road")
    near = TrackInfo(2, 9, 0.5, 8.0, 1.5, range_m=12.0, range_from="road")
    drawn = overlay(image, ids, cars, tracks=[far, near])
    texts = ["car 0.88 30 m", "car 0.91 12 m 1.5 s"]
    sizes = []
    for text in texts:
        (w, h), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.35, 1)
        sizes.append((w + 2, h + baseline + 2))
    rects = place_labels([c.box for c in cars], sizes, (60, 200), order=[1, 0])
    (x0, y0, _, _), (x1, y1, _, h1) = rects
    assert (y1, y0) == (20 - h1, 20)  # the warned one above its box, the other inside its own
    assert _overlap(rects[0], rects[1]) == 0
    # each band's top row holds no text: what is under it, darkened or reddened (the far
    # car's white outline; the grey picture)
    np.testing.assert_allclose(drawn[y0, x0], np.full(3, 0.4 * 255), atol=1)
    np.testing.assert_allclose(drawn[y1, x1], 0.4 * 90 + 0.6 * np.array([255, 48, 48]), atol=1)
    # and the text is in them: white pixels on each band
    for x, y, w, h in rects:
        assert (drawn[y : y + h, x : x + w] > 200).all(axis=2).any()


def test_labels_grow_with_the_picture_but_less_than_it() -> None:
    """The same car and label in pictures of 128, 256 and 1024 rows: the label's band is as
    at 256 rows in the smaller picture (not smaller: 256 rows is the default engines' size),
    and about twice as wide and tall in one four times the size (the square root)."""
    from edge.postprocess.render import overlay

    drawn = {}
    for rows in (128, 256, 1024):
        k = rows / 256
        box = (int(200 * k), int(100 * k), int(260 * k), int(140 * k))
        ids = np.zeros((rows, 2 * rows), np.int32)
        ids[box[1] : box[3], box[0] : box[2]] = 26000
        mask = np.ones((box[3] - box[1], box[2] - box[0]), bool)
        car = Instance(26000, 13, 0.88, tuple(float(v) for v in box), mask, (box[1], box[0]))
        out = overlay(np.full((rows, 2 * rows, 3), 90, np.uint8), ids, [car])
        above = (out[: box[1] - 2] != 90).any(axis=2)  # the label alone is drawn there
        ys, xs = np.nonzero(above)
        drawn[rows] = (xs.max() - xs.min() + 1, box[1] - ys.min())
    assert drawn[128] == drawn[256]
    for now, before in zip(drawn[1024], drawn[256], strict=True):
        assert 1.6 * before <= now <= 2.4 * before, drawn
