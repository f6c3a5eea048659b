from __future__ import annotations

import json

import numpy as np
import pytest

from edge.postprocess.objects import describe_objects
from edge.postprocess.panoptic import Instance


def instance(
    mask: np.ndarray, offset: tuple[int, int], train_id: int = 13, score: float = 0.87654
) -> Instance:
    return Instance(
        panoptic_id=26000, train_id=train_id, score=score, box=(2.0, 1.0, 5.0, 3.0), mask=mask, offset=offset
    )


def test_distance_is_the_median_of_the_objects_own_pixels() -> None:
    depth = np.full((6, 8), 99.0, np.float32)  # everything else far away
    depth[1:3, 2:5] = [[1, 2, 3], [4, 5, 6]]
    mask = np.array([[True, True, True], [True, True, False]])  # 6 m is not the object's
    (obj,) = describe_objects([instance(mask, (1, 2))], depth)
    # median of 1..5 is 3; the 10th percentile interpolates 1 + 0.4 * (2 - 1)
    assert obj == {
        "id": 26000,
        "class": "car",
        "score": 0.8765,
        "box": [2.0, 1.0, 5.0, 3.0],
        "pixels": 5,
        "distance_m": 3.0,
        "nearest_m": 1.4,
    }
    json.dumps(obj)  # JSON-ready: plain Python numbers


def test_without_depth_or_pixels_there_is_no_distance() -> None:
    mask = np.ones((2, 3), bool)
    (obj,) = describe_objects([instance(mask, (0, 0), train_id=11)], None)
    assert obj["class"] == "person" and "distance_m" not in obj and obj["pixels"] == 6
    (empty,) = describe_objects([instance(np.zeros((2, 3), bool), (0, 0))], np.ones((4, 4), np.float32))
    assert empty["pixels"] == 0 and "distance_m" not in empty
    assert describe_objects([], None) == []


def test_pixels_a_depth_engine_gave_no_finite_depth_say_nothing() -> None:
    """NaN and inf (a depth engine that overflows) are left out of a thing's distance; a thing
    with no finite pixel has none, and its track no speed or place, rather than NaN: no JSON
    number, and a NaN lateral offset read as beside the path."""
    from edge.postprocess.objects import object_distances
    from edge.postprocess.tracks import ObjectTracker
    from edge.schemas import check_lines

    depth = np.full((6, 8), np.nan, np.float32)
    depth[1:3, 2:5] = [[1, np.inf, 3], [4, 5, np.nan]]
    (obj,) = describe_objects([instance(np.ones((2, 3), bool), (1, 2))], depth)
    # the finite 1, 3, 4, 5: median 3.5; the 10th percentile 1 + 0.3 * (3 - 1)
    assert (obj["distance_m"], obj["nearest_m"]) == (3.5, 1.6)
    blank = np.full((64, 128), np.nan, np.float32)
    blank[:, :8] = np.inf
    tracker, lines = ObjectTracker(hfov_deg=60.0), []
    for k in range(6):
        car = Instance(
            26000,
            13,
            0.9,
            (40.0 - k, 20.0 - k, 80.0 + k, 50.0 + k),
            np.ones((30 + 2 * k, 40 + 2 * k), bool),
            (20 - k, 40 - k),
        )
        distances = object_distances([car], blank)
        assert distances == [None]
        infos = tracker.update([car], distances, 0.06 * k, size=(64, 128))
        (obj,) = describe_objects([car], blank, distances, infos)
        assert not {"distance_m", "lateral_m", "in_path", "range_m"} & set(obj)
        assert obj["closing_mps"] is None and obj["warned"] is False
        lines.append(
            json.dumps(
                {
                    "frame": k,
                    "t_capture_ns": k,
                    "time_unix": 0.0,
                    "size": [64, 128],
                    "frame_size": [64, 128],
                    "objects": [obj],
                }
            )
        )
    assert check_lines("objects", lines) == (6, [])


def test_tracks_join_each_objects_record() -> None:
    from edge.postprocess.tracks import TrackInfo

    mask = np.ones((2, 3), bool)
    depth = np.full((4, 8), 12.5, np.float32)
    track = TrackInfo(track=4, frames=9, age_s=0.5294, closing_mps=6.251, ttc_s=1.99968)
    (obj,) = describe_objects([instance(mask, (1, 2))], depth, tracks=[track])
    assert {k: obj[k] for k in ("track", "track_frames", "track_age_s", "closing_mps", "ttc_s")} == {
        "track": 4,
        "track_frames": 9,
        "track_age_s": 0.529,
        "closing_mps": 6.25,
        "ttc_s": 2.0,
    }
    fresh = TrackInfo(track=5, frames=1, age_s=0.0, closing_mps=None, ttc_s=None)
    (obj,) = describe_objects([instance(mask, (1, 2))], depth, tracks=[fresh])
    assert obj["closing_mps"] is None and obj["ttc_s"] is None  # known once it has distances enough
    json.dumps(obj)
    # no depth: nothing to close in with, so no such keys
    (obj,) = describe_objects([instance(mask, (1, 2))], None, tracks=[fresh])
    assert obj["track"] == 5 and "closing_mps" not in obj and "ttc_s" not in obj
    with pytest.raises(ValueError, match="2 tracks for 1 instances"):
        describe_objects([instance(mask, (1, 2))], None, tracks=[fresh, fresh])


def test_object_distance_golden_and_overlay_labels_say_it() -> None:
    import cv2

    from edge.postprocess.objects import object_distance
    from edge.postprocess.render import overlay

    depth = np.full((40, 160), 50.0, np.float32)  # wide enough for the label in OpenCV 4.x's wider font
    depth[10:20, 30:50] = np.arange(200, dtype=np.float32).reshape(10, 20) / 10 + 3  # 3.0 .. 22.9
    car = Instance(26000, 13, 0.88, (30.0, 10.0, 50.0, 20.0), np.ones((10, 20), bool), (10, 30))
    median, near = object_distance(car, depth)  # type: ignore[misc]
    # hand-computed: the values are float32, whose last bits NumPy 1.x and 2.x round apart
    assert (median, near) == (pytest.approx(3 + 9.95, rel=1e-6), pytest.approx(3 + 1.99, rel=1e-6))
    assert object_distance(Instance(1, 13, 0.5, (0, 0, 1, 1), np.zeros((1, 1), bool), (0, 0)), depth) is None

    image = np.full((40, 160, 3), 90, np.uint8)
    ids = np.full((40, 160), 7, np.int32)
    ids[10:20, 30:50] = 26000
    plain = overlay(image, ids, [car])
    with_depth = overlay(image, ids, [car], depth=depth)
    changed = np.nonzero((plain != with_depth).any(axis=2))
    # only the label changes, and only after its common prefix "car 0.88": " 13 m" is appended;
    # its band (text and baseline, a pixel round) has no room above the box: from the top row
    (prefix_w, text_h), baseline = cv2.getTextSize("car 0.88", cv2.FONT_HERSHEY_SIMPLEX, 0.35, 1)
    assert changed[0].size > 0
    assert changed[0].max() < text_h + baseline + 2 and changed[1].min() >= 30 + prefix_w - 1


def test_the_overlay_labels_a_thing_by_its_tracks_distance_where_it_has_one() -> None:
    """A track's distance (range_m: read from the road, or scaled to it while the feet hide)
    labels the thing, not the depth map's: the same picture as one drawn with that distance
    given."""
    from edge.postprocess.render import overlay
    from edge.postprocess.tracks import TrackInfo

    image = np.full((40, 160, 3), 90, np.uint8)
    ids = np.full((40, 160), 7, np.int32)
    ids[10:20, 30:50] = 26000
    car = Instance(26000, 13, 0.88, (30.0, 10.0, 50.0, 20.0), np.ones((10, 20), bool), (10, 30))
    plain = TrackInfo(1, 1, 0.0, None, None)
    road = TrackInfo(1, 1, 0.0, None, None, ground_m=40.0, range_m=40.0, range_from="road")
    drawn = overlay(image, ids, [car], distances=[(13.0, 5.0)], tracks=[road])
    assert np.array_equal(drawn, overlay(image, ids, [car], distances=[(40.0, 40.0)], tracks=[plain]))
    hidden = TrackInfo(1, 2, 0.1, None, None, range_m=26.0, range_from="scaled")
    drawn = overlay(image, ids, [car], distances=[(13.0, 5.0)], tracks=[hidden])
    assert np.array_equal(drawn, overlay(image, ids, [car], distances=[(26.0, 26.0)], tracks=[plain]))
    assert not np.array_equal(drawn, overlay(image, ids, [car], distances=[(13.0, 5.0)], tracks=[plain]))


def test_percentiles_are_numpys_to_the_last_bit() -> None:
    from edge.postprocess.objects import percentiles

    rng = np.random.default_rng(0)
    for n in [1, 2, 3, 10, 11, 101, 997, 2500]:
        for dtype in (np.float32, np.float64):
            values = (rng.random(n) * rng.choice([1.0, 80.0])).astype(dtype)
            want = [float(v) for v in np.percentile(values, [50, 10])]
            assert percentiles(values, (50, 10)) == want, (n, dtype)
    assert percentiles(np.array([4.0, 1.0, 3.0, 2.0], np.float32), (50, 10, 0, 100)) == [2.5, 1.3, 1.0, 4.0]
    grid = np.arange(12, dtype=np.float32).reshape(3, 4)  # any shape, as numpy takes it
    assert percentiles(grid, (50, 10)) == [float(v) for v in np.percentile(grid, [50, 10])]
    with pytest.raises(ValueError, match="no values"):
        percentiles(np.zeros(0, np.float32), (50,))


def test_the_overlay_says_when_a_thing_would_arrive_and_outlines_the_near_ones_red() -> None:
    import cv2

    from edge.postprocess.render import TTC_LABEL_S, TTC_WARN_S, overlay
    from edge.postprocess.tracks import TrackInfo

    image = np.full((40, 160, 3), 90, np.uint8)
    ids = np.full((40, 160), 7, np.int32)
    ids[10:30, 60:100] = 26000
    car = Instance(26000, 13, 0.88, (60.0, 10.0, 100.0, 30.0), np.ones((20, 40), bool), (10, 60))

    def drawn(ttc: float | None) -> np.ndarray:
        track = TrackInfo(track=1, frames=9, age_s=0.5, closing_mps=None if ttc is None else 5.0, ttc_s=ttc)
        return overlay(image, ids, [car], tracks=[track])

    plain = overlay(image, ids, [car])
    red = np.array([255, 48, 48], np.uint8)
    assert np.array_equal(drawn(None), plain) and np.array_equal(drawn(TTC_LABEL_S + 1), plain)
    later = drawn(TTC_WARN_S + 1)  # labelled, outlined as ever
    assert not np.array_equal(later, plain) and not (later == red).all(axis=2).any()
    # the label's band at the picture's top, as tall as OpenCV draws its text (OpenCV 4.8's
    # font is two rows taller than 5.1's)
    (_, text_h), baseline = cv2.getTextSize(
        f"car 0.88 {TTC_WARN_S + 1:.1f} s", cv2.FONT_HERSHEY_SIMPLEX, 0.35, 1
    )
    band = text_h + baseline + 2
    assert np.array_equal(later[band:], plain[band:]), "only the label changes"
    soon = drawn(TTC_WARN_S - 1)
    outline = (soon == red).all(axis=2)
    assert outline[10:30, 60:100].any() and not outline[:, :55].any(), "the thing itself is outlined red"
    # one known to pass beside the path is labelled, not outlined red
    beside = TrackInfo(track=1, frames=9, age_s=0.5, closing_mps=5.0, ttc_s=TTC_WARN_S - 1, in_path=False)
    passing = overlay(image, ids, [car], tracks=[beside])
    assert not (passing == red).all(axis=2).any() and not np.array_equal(passing, plain)
    # one beside the path that reaches it before it reaches the camera is cutting in: red
    cutting = TrackInfo(
        track=1, frames=9, age_s=0.5, closing_mps=5.0, ttc_s=TTC_WARN_S - 1, in_path=False, path_in_s=0.5
    )
    assert np.array_equal(overlay(image, ids, [car], tracks=[cutting]), soon)
    later_in = TrackInfo(1, 9, 0.5, 5.0, TTC_WARN_S - 1, in_path=False, path_in_s=TTC_WARN_S)
    assert np.array_equal(overlay(image, ids, [car], tracks=[later_in]), passing)
    with pytest.raises(ValueError, match="2 tracks for 1 instances"):
        overlay(image, ids, [car], tracks=[TrackInfo(1, 1, 0.0, None, None)] * 2)
