from __future__ import annotations

import math

import numpy as np
import pytest

from edge.errors import ConfigError
from edge.postprocess.boxes import box_iou
from edge.postprocess.panoptic import Instance
from edge.postprocess.tracks import YOUNG_TTC_Z, ObjectTracker, TrackInfo

CAR, PERSON = 13, 11


def inst(box: tuple[float, float, float, float], train_id: int = CAR, pid: int = 26001) -> Instance:
    return Instance(pid, train_id, 0.9, box, np.ones((1, 1), bool), (int(box[1]), int(box[0])))


def shifted(box: tuple[float, float, float, float], dx: float) -> tuple[float, float, float, float]:
    return (box[0] + dx, box[1], box[2] + dx, box[3])


def test_a_moving_object_keeps_its_track_and_a_new_one_gets_the_next_number() -> None:
    tracker = ObjectTracker()
    car = (100.0, 50.0, 140.0, 80.0)  # 40 px wide, 15 px on, then 25 px a frame
    xs = [0, 15, 40, 65, 90, 115]
    steps = box_iou(np.array([shifted(car, 15)]), np.array([shifted(car, 40)]))
    assert steps[0, 0] < tracker.min_iou, "unmoved, the track's box would lose the car"
    seen = []
    for k, x in enumerate(xs):
        instances = [inst(shifted(car, x))]
        if k == 3:
            instances.append(inst((300.0, 60.0, 320.0, 100.0), PERSON, 24001))
        seen.append(tracker.update(instances, None, k / 10))
    assert [frame[0].track for frame in seen] == [1] * 6
    assert [frame[0].frames for frame in seen] == [1, 2, 3, 4, 5, 6]
    assert seen[5][0].age_s == pytest.approx(0.5)
    assert seen[3][1].track == 2 and seen[3][1].frames == 1
    assert tracker.active == 2  # the person, unseen for 0.2 s, still waits
    assert all(info.closing_mps is None and info.ttc_s is None for frame in seen for info in frame)


def test_a_hidden_object_keeps_its_track_for_max_gap_s() -> None:
    tracker = ObjectTracker(max_gap_s=0.5)
    car = (100.0, 50.0, 140.0, 80.0)
    assert tracker.update([inst(car)], None, 0.0)[0].track == 1
    assert tracker.update([inst(shifted(car, 2))], None, 0.1)[0].track == 1
    assert tracker.update([], None, 0.2) == []
    # hidden 0.4 s, found where its motion (20 px/s) puts it
    back = tracker.update([inst(shifted(car, 10))], None, 0.5)[0]
    assert (back.track, back.frames) == (1, 3)
    gone = tracker.update([inst(shifted(car, 22))], None, 1.1)[0]  # 0.6 s later: a new object
    assert (gone.track, gone.frames) == (2, 1)


def test_classes_do_not_continue_each_others_tracks() -> None:
    tracker = ObjectTracker()
    box = (10.0, 10.0, 50.0, 50.0)
    tracker.update([inst(box, CAR)], None, 0.0)
    assert tracker.update([inst(box, PERSON)], None, 0.1)[0].track == 2


def test_best_overlap_wins_when_two_objects_compete() -> None:
    tracker = ObjectTracker()
    left, right = (0.0, 0.0, 40.0, 40.0), (30.0, 0.0, 70.0, 40.0)
    tracker.update([inst(left), inst(right)], None, 0.0)
    # listed the other way round, each box still continues the track it overlaps most
    infos = tracker.update([inst(shifted(right, 1)), inst(shifted(left, 1))], None, 0.1)
    assert [i.track for i in infos] == [2, 1]


def centred(height: float, width: float, cx: float = 256.0, cy: float = 128.0) -> tuple[float, ...]:
    return (cx - width / 2, cy - height / 2, cx + width / 2, cy + height / 2)


PICTURE = (256, 512)


def test_closing_speed_from_how_fast_the_box_grows_golden() -> None:
    """An object whose distance shrinks by a quarter of itself a second: its box grows at
    0.25 a second exactly, one frame's box half hidden (a pole) notwithstanding."""
    tracker = ObjectTracker(speed_window_s=1.0, min_speed_samples=5, min_closing_mps=0.5)
    infos = []
    for k in range(11):
        t = k / 10
        d = 30.0 * np.exp(-0.25 * t)
        height = 750.0 / d / (2 if k == 7 else 1)
        box = centred(height, 900.0 / d)
        infos.append(tracker.update([inst(box)], [(d, d - 1)], t, size=PICTURE)[0])
    assert [i.closing_mps is None for i in infos[:5]] == [True] * 4 + [False]  # min_speed_samples
    last = infos[-1]
    # the hidden frame is left out (boxes.steady_part: it stepped, and back), and the other
    # ten's slopes are all 0.25; the rate stands for their median time, t = 0.45, and the
    # median distance for t = 0.5, the same rate times it
    assert last.closing_mps == pytest.approx(0.25 * 30.0 * np.exp(-0.125))
    assert last.ttc_s == pytest.approx(1 / 0.25 - (1.0 - 0.45))  # from t = 0.45 on to now, at that speed
    assert last.to_json() == {
        "track": 1,
        "track_frames": 11,
        "track_age_s": 1.0,
        "closing_mps": 6.62,
        "ttc_s": 3.45,
        "warned": False,  # 3.45 s to arrive: not under the 3 s warned of by default
        "range_m": 23.36,  # 30 e^-0.25, the depth map's (no ground plane)
        "range_from": "depth",
    }


def test_a_steady_approach_gives_its_speed_and_time_to_collision() -> None:
    tracker = ObjectTracker()
    for k in range(11):
        d = 30.0 - 8.0 * k / 10  # 8 m/s nearer
        info = tracker.update([inst(centred(750.0 / d, 900.0 / d))], [(d, d)], k / 10, size=PICTURE)[0]
    assert info.closing_mps == pytest.approx(8.0, rel=0.01)
    assert info.ttc_s == pytest.approx(22.0 / 8.0, rel=0.01)
    # drawing away: a negative closing speed, and no time-to-collision
    away = ObjectTracker()
    for k in range(8):
        d = 10.0 + k
        info = away.update([inst(centred(750.0 / d, 900.0 / d))], [(d, d)], k / 10, size=PICTURE)[0]
    assert info.closing_mps == pytest.approx(-10.0, rel=0.05) and info.ttc_s is None


def test_a_box_whose_hidden_bottom_steps_lower_is_not_read_as_closing_in() -> None:
    """A truck 15 m ahead keeping its distance, its bottom hidden behind the car ahead: from
    one frame on the detector puts the box's bottom 24 rows lower (57 -> 81 rows tall). Half
    a second of growth was read from that step (a time to collision, a warning); the step is
    taken out of the growth (boxes.steady_part), and the truck is read as keeping its distance."""
    tracker = ObjectTracker()
    infos = []
    for k in range(34):
        bottom = 116.0 if k < 17 else 140.0
        box = (222.0, 59.0, 287.0, bottom)
        infos.append(tracker.update([inst(box)], [(15.0, 14.0)], k / 17, size=PICTURE)[0])
    assert all(i.ttc_s is None and not i.warned for i in infos)
    closing = [i.closing_mps for i in infos[17:]]
    assert all(c is not None and abs(c) < 1e-9 for c in closing), closing


def test_a_young_tracks_time_to_collision_needs_its_growths_interval() -> None:
    """A car 80 m off keeping its distance, its box 10 or 11 rows high as the detector rounds
    it: from six frames (0.29 s) its growth read 2.9 s to collision, and it was warned of.
    Under half the speed window old, a track says a time to collision only where its
    growth's 68% interval (YOUNG_TTC_Z) brings the thing within twice the warning time at
    its slowest: here never. A car truly closing, its box growing smoothly, is warned of as
    soon as before."""
    assert YOUNG_TTC_Z == 1.0
    tracker = ObjectTracker()
    infos = []
    for k, h in enumerate([10, 10, 11, 10, 11, 11, 10, 11, 11, 10]):
        box = (250.0, 120.0, 264.0, 120.0 + h)
        infos.append(tracker.update([inst(box)], [(80.0, 79.0)], k / 17, size=PICTURE)[0])
    assert infos[5].closing_mps is not None and infos[5].closing_mps > 20  # the growth's reading stands
    assert all(i.ttc_s is None and not i.warned for i in infos)
    closing = ObjectTracker()
    for k in range(6):
        d = 32.0 - 15.0 * k / 17
        info = closing.update([inst(centred(750.0 / d, 900.0 / d))], [(d, d - 1)], k / 17, size=PICTURE)[0]
    assert info.age_s < 0.5 and info.warned and 1.5 < info.ttc_s < 2.5  # type: ignore[operator]


def test_a_box_the_pictures_edge_cuts_is_read_by_what_it_does_not_cut() -> None:
    d_at = [30.0 * np.exp(-0.25 * k / 10) for k in range(11)]
    # the top cuts it: its height says nothing, its width grows at 0.25 a second
    top = ObjectTracker()
    for k, d in enumerate(d_at):
        info = top.update([inst((200.0, 0.0, 200.0 + 900.0 / d, 60.0))], [(d, d)], k / 10, size=PICTURE)[0]
    assert info.closing_mps == pytest.approx(0.25 * 30.0 * np.exp(-0.125))
    # the top and a side: the box says nothing; the distances' own slope does (8 m/s)
    corner = ObjectTracker()
    for k in range(11):
        d = 30.0 - 0.8 * k
        info = corner.update([inst((0.0, 0.0, 80.0, 60.0))], [(d, d)], k / 10, size=PICTURE)[0]
    assert info.closing_mps == pytest.approx(8.0) and info.ttc_s == pytest.approx(22.0 / 8.0)
    # without a picture size no box is taken as cut: this one does not grow
    blind = ObjectTracker()
    for k in range(11):
        d = 30.0 - 0.8 * k
        info = blind.update([inst((0.0, 0.0, 80.0, 60.0))], [(d, d)], k / 10)[0]
    assert info.closing_mps == 0.0 and info.ttc_s is None


def test_a_new_scene_or_time_going_back_starts_afresh() -> None:
    tracker = ObjectTracker()
    car = (100.0, 50.0, 140.0, 80.0)
    tracker.update([inst(car)], None, 1.0, scene=("a", 1))
    assert tracker.update([inst(car)], None, 1.1, scene=("a", 1))[0].track == 1
    assert tracker.update([inst(car)], None, 1.2, scene=("a", 2))[0].track == 2
    assert tracker.update([inst(car)], None, 0.0, scene=("a", 2))[0].track == 3  # a loop: time went back
    assert tracker.update([inst(car)], None, 0.1, scene=("a", 2))[0].track == 3


def test_distances_must_match_the_instances() -> None:
    with pytest.raises(ValueError, match="1 distances for 2 instances"):
        ObjectTracker().update([inst((0, 0, 1, 1)), inst((2, 2, 3, 3))], [None], 0.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_iou": 0.0}, "min_iou must be in \\(0, 1\\], got 0.0"),
        ({"max_gap_s": -1}, "max_gap_s must be >= 0, got -1"),
        ({"min_speed_samples": 1}, "min_speed_samples must be >= 2, got 1"),
        ({"smoothing": 1.5}, "smoothing must be in \\(0, 1\\], got 1.5"),
    ],
)
def test_settings_out_of_range_are_refused(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ObjectTracker(**kwargs)


def test_a_fresh_tracker_has_the_settings_and_none_of_the_tracks() -> None:
    tracker = ObjectTracker(
        min_iou=0.2, max_gap_s=1.5, speed_window_s=2.0, min_speed_samples=7, smoothing=0.3
    )
    tracker.update([inst((0.0, 0.0, 10.0, 10.0))], None, 0.0)
    fresh = tracker.fresh()
    settings = ("min_iou", "max_gap_s", "speed_window_s", "min_speed_samples", "min_closing_mps", "smoothing")
    assert all(getattr(fresh, k) == getattr(tracker, k) for k in settings)
    assert (tracker.active, fresh.active) == (1, 0)
    assert fresh.update([inst((0.0, 0.0, 10.0, 10.0))], None, 0.1)[0].track == 1


def test_with_the_cameras_field_of_view_an_object_says_where_it_is_beside_the_axis() -> None:
    """The synthetic drives' camera: focal length 1.1 x the width, so tan(hfov / 2) = 1 / 2.2.
    A car 1.8 m wide whose middle is 2 m right of the axis at 20 m: its middle is 0.11 of the
    width right of the picture's middle, and it spans 0.099 of the width."""
    hfov = float(np.degrees(2 * np.arctan(1 / 2.2)))
    tracker = ObjectTracker(hfov_deg=hfov, path_half_width_m=1.5)
    w = 512
    x1, x2 = w / 2 + 0.11 * w - 0.0495 * w, w / 2 + 0.11 * w + 0.0495 * w
    (info,) = tracker.update([inst((x1, 100.0, x2, 130.0))], [(20.0, 19.0)], 0.0, size=(256, w))
    assert info.lateral_m == pytest.approx(2.0) and info.in_path  # its left side is 1.1 m right
    beside = ObjectTracker(hfov_deg=hfov, path_half_width_m=1.0)
    (info,) = beside.update([inst((x1, 100.0, x2, 130.0))], [(20.0, 19.0)], 0.0, size=(256, w))
    assert info.in_path is False and info.to_json()["lateral_m"] == 2.0
    assert info.to_json()["in_path"] is False
    # without depth, or without the field of view, nothing is said of it
    assert tracker.update([inst((x1, 100.0, x2, 130.0))], None, 0.1, size=(256, w))[0].lateral_m is None
    plain = ObjectTracker().update([inst((x1, 100.0, x2, 130.0))], [(20.0, 19.0)], 0.0, size=(256, w))[0]
    assert plain.lateral_m is None and "lateral_m" not in plain.to_json()
    assert tracker.fresh().hfov_deg == hfov
    with pytest.raises(ConfigError, match="hfov_deg must be in \\(0, 180\\) degrees, got 180"):
        ObjectTracker(hfov_deg=180)


def test_a_camera_off_the_vehicles_middle_places_objects_from_the_vehicles_middle() -> None:
    """The car of the test above, 2 m right of the axis of a camera mounted 0.6 m left of the
    vehicle's middle (-0.6): 1.4 m right of the vehicle's middle, its left side 0.5 m right
    of it, so in a 1 m half-width path that the camera alone would have put it out of."""
    hfov = float(np.degrees(2 * np.arctan(1 / 2.2)))
    w = 512
    x1, x2 = w / 2 + 0.11 * w - 0.0495 * w, w / 2 + 0.11 * w + 0.0495 * w
    tracker = ObjectTracker(hfov_deg=hfov, path_half_width_m=1.0, mount_offset_m=-0.6)
    (info,) = tracker.update([inst((x1, 100.0, x2, 130.0))], [(20.0, 19.0)], 0.0, size=(256, w))
    assert info.lateral_m == pytest.approx(1.4) and info.in_path is True
    assert tracker.fresh().mount_offset_m == -0.6
    with pytest.raises(ConfigError, match="mount_offset_m must be a finite number of metres, got inf"):
        ObjectTracker(mount_offset_m=float("inf"))


@pytest.mark.parametrize(
    ("facing", "offset", "along", "lateral", "ahead", "in_path"),
    [
        # the car of the tests above: 2 m right of the camera's axis, 20 m out, 0.9 m half-wide
        ("front", 0.0, 0.0, 2.0, 20.0, False),
        # behind, looking back: the camera's right is the vehicle's left; its near side 1.1 m
        # left of the middle, out of the 1 m half-width path behind
        ("rear", 0.0, 0.0, -2.0, -20.0, False),
        ("rear", 0.4, 0.0, -1.6, -20.0, True),  # a rear camera 0.4 m right of the middle: 0.7 m, in it
        # a side camera's depth is across the vehicle, its picture's right along it
        ("left", -0.9, 0.0, -20.9, 2.0, None),  # the left mirror's: its right is ahead
        ("right", 0.9, 0.0, 20.9, -2.0, None),  # the right mirror's: its right is behind
        # cameras at the windscreen (2.1 m ahead of the vehicle's reference point), on the boot
        # lid (2.5 m behind it) and on the left mirror (1.2 m ahead): measured from that point
        ("front", 0.0, 2.1, 2.0, 22.1, False),
        ("rear", 0.0, -2.5, -2.0, -22.5, False),
        ("left", -0.9, 1.2, -20.9, 3.2, None),
    ],
)
def test_a_cameras_facing_turns_where_its_objects_are(
    facing: str, offset: float, along: float, lateral: float, ahead: float, in_path: bool | None
) -> None:
    hfov = float(np.degrees(2 * np.arctan(1 / 2.2)))
    w = 512
    x1, x2 = w / 2 + 0.11 * w - 0.0495 * w, w / 2 + 0.11 * w + 0.0495 * w
    tracker = ObjectTracker(
        hfov_deg=hfov, path_half_width_m=1.0, mount_offset_m=offset, mount_ahead_m=along, facing=facing
    )
    (info,) = tracker.update([inst((x1, 100.0, x2, 130.0))], [(20.0, 19.0)], 0.0, size=(256, w))
    assert info.lateral_m == pytest.approx(lateral)
    assert info.ahead_m == pytest.approx(ahead)
    assert info.in_path is in_path
    assert info.range_m == pytest.approx(20.0)  # the camera's distance, wherever it is mounted
    said = info.to_json()
    assert said["ahead_m"] == round(ahead, 2) and said["in_path"] is in_path
    assert (tracker.fresh().facing, tracker.fresh().mount_ahead_m) == (facing, along)
    with pytest.raises(ConfigError, match="mount_ahead_m must be a finite number of metres, got nan"):
        ObjectTracker(mount_ahead_m=float("nan"))


def test_an_unknown_facing_is_refused() -> None:
    for bad in ("up", 200.0, -180.0, float("nan"), True):
        with pytest.raises(
            ConfigError, match=f"facing must be one of front, rear, left, right or a yaw.*got {bad!r}"
        ):
            ObjectTracker(facing=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("facing", "lateral", "ahead", "in_path"),
    [
        # the car of the tests above, 2 m right of the camera's axis and 20 m out, seen by a
        # camera turned 30 degrees left of ahead: 20 cos 30 + 2 sin 30 = 18.32 m ahead,
        # 2 cos 30 - 20 sin 30 = -8.27 m (left of the vehicle's middle): out of the path
        (30.0, 2 * math.cos(math.radians(30)) - 20 * math.sin(math.radians(30)), 18.32, False),
        # a rear corner, 150 degrees round: behind and to the left
        (150.0, -1.73 - 10.0, -17.32 + 1.0, False),
        # a camera 70 degrees round sees across the vehicle: no path
        (
            70.0,
            2 * math.cos(math.radians(70)) - 20 * math.sin(math.radians(70)),
            20 * math.cos(math.radians(70)) + 2 * math.sin(math.radians(70)),
            None,
        ),
        # yaws of the four names place as the names do
        (0.0, 2.0, 20.0, False),
        (-90.0, 20.0, -2.0, None),
    ],
)
def test_a_corner_camera_turns_its_objects_by_its_yaw(
    facing: float, lateral: float, ahead: float, in_path: bool | None
) -> None:
    hfov = float(np.degrees(2 * np.arctan(1 / 2.2)))
    w = 512
    x1, x2 = w / 2 + 0.11 * w - 0.0495 * w, w / 2 + 0.11 * w + 0.0495 * w
    tracker = ObjectTracker(hfov_deg=hfov, path_half_width_m=1.0, facing=facing)
    (info,) = tracker.update([inst((x1, 100.0, x2, 130.0))], [(20.0, 19.0)], 0.0, size=(256, w))
    assert info.lateral_m == pytest.approx(lateral, abs=0.01)
    assert info.ahead_m == pytest.approx(ahead, abs=0.01)
    assert info.in_path is in_path
    assert info.range_m == pytest.approx(20.0)


@pytest.mark.parametrize(("facing", "in_path"), [(0.0, True), (40.0, False), (-40.0, False), (180.0, True)])
def test_a_corner_cameras_thing_spans_its_width_turned_across_the_vehicle(
    facing: float, in_path: bool
) -> None:
    """A thing 0.9 m half-wide on the camera's axis, its middle 1.8 m beside the vehicle's:
    across a front or rear camera's axis its width is across the vehicle (near side 0.9 m out,
    in a 1 m half-width path); across a 40 degree camera's it spans 0.9 cos 40 = 0.69 m across
    the vehicle (near side 1.11 m out, beside the path)."""
    hfov = float(np.degrees(2 * np.arctan(1 / 2.2)))
    w = 512
    turned = abs(math.sin(math.radians(facing))) > 0.5
    distance = 1.8 / math.sin(math.radians(abs(facing))) if turned else 20.0
    offset = 0.0 if turned else 1.8 * (1 if facing == 0 else -1)
    half_px = 0.9 * (w / 2) / (distance / 2.2)
    box = (w / 2 - half_px, 100.0, w / 2 + half_px, 140.0)
    tracker = ObjectTracker(hfov_deg=hfov, path_half_width_m=1.0, facing=facing, mount_offset_m=offset)
    (info,) = tracker.update([inst(box)], [(distance, distance - 1.0)], 0.0, size=(256, w))
    assert abs(info.lateral_m) == pytest.approx(1.8)
    assert info.in_path is in_path


def test_a_car_moving_towards_the_path_says_when_it_reaches_it() -> None:
    """A car 20 m ahead, its middle 4 m right of the axis and moving left at 1 m/s, seen at
    10 fps (the synthetic camera of the tests above: 0.0355 m a pixel at 20 m): after a
    second it is 3 m right, its near side 0.6 m from a 1.5 m half-width path, so it reaches
    it in 0.6 s. One keeping its lane, or drawing away, is given no such time."""
    hfov = float(np.degrees(2 * np.arctan(1 / 2.2)))
    w = 512
    per_px = (1 / 2.2) / (w / 2) * 20.0
    half = 0.9 / per_px

    def box(lateral: float) -> tuple[float, float, float, float]:
        x = w / 2 + lateral / per_px
        return (x - half, 100.0, x + half, 130.0)

    for drift, want_mps, want_in in ((-1.0, -1.0, 0.6), (0.0, 0.0, None), (1.0, 1.0, None)):
        tracker = ObjectTracker(hfov_deg=hfov, path_half_width_m=1.5, min_lateral_mps=0.5)
        for i in range(11):
            t = i / 10
            (info,) = tracker.update([inst(box(4.0 + drift * t))], [(20.0, 19.0)], t, size=(256, w))
            if i < 4:  # fewer than min_speed_samples: no speed yet
                assert info.lateral_mps is None and info.path_in_s is None
        assert info.lateral_m == pytest.approx(4.0 + drift)
        assert info.lateral_mps == pytest.approx(want_mps, abs=1e-6)
        assert info.path_in_s == (None if want_in is None else pytest.approx(want_in, abs=1e-6))
        said = info.to_json()
        assert said["lateral_mps"] == round(want_mps, 2) + 0.0 and said["path_in_s"] == (
            None if want_in is None else round(want_in, 2)
        )
    # slower than min_lateral_mps: drifting, not cutting in
    slow = ObjectTracker(hfov_deg=hfov, path_half_width_m=1.5, min_lateral_mps=2.0)
    for i in range(11):
        (info,) = slow.update([inst(box(4.0 - i / 10))], [(20.0, 19.0)], i / 10, size=(256, w))
    assert info.lateral_mps == pytest.approx(-1.0) and info.path_in_s is None
    assert slow.fresh().min_lateral_mps == 2.0
    with pytest.raises(ConfigError, match="min_lateral_mps must be > 0, got 0"):
        ObjectTracker(min_lateral_mps=0)


def test_a_jittering_box_beside_the_path_is_not_said_to_cut_in() -> None:
    """A car keeping its lane 4 m right of the axis, 20 m ahead, its box's middle jittering
    by up to a metre (a mask's edge coming and going). The bearings' median slope makes it
    1.2 m/s towards the path, which alone says a cut-in; their interval at 95% holds
    standing still, so by default it is not said to cut in, though its lateral speed is given."""
    hfov = float(np.degrees(2 * np.arctan(1 / 2.2)))
    w = 512
    per_px = (1 / 2.2) / (w / 2) * 20.0
    jitter = [0.08, -0.21, -0.17, -0.98, 0.72, 0.46, -0.13, 0.31, 0.11, -0.22, 0.39]  # metres
    said = {}
    for confidence in (0.95, 0.0):
        tracker = ObjectTracker(
            hfov_deg=hfov, path_half_width_m=1.5, min_lateral_mps=0.5, cut_in_confidence=confidence
        )
        for i, off in enumerate(jitter):
            x = w / 2 + (4.0 + off) / per_px
            (info,) = tracker.update(
                [inst((x - 25, 100, x + 25, 130))], [(20.0, 19.0)], i / 10, size=(256, w)
            )
        said[confidence] = (info.lateral_mps, info.path_in_s)
    assert said[0.0][0] == said[0.95][0] == pytest.approx(-1.17, abs=0.01)
    assert said[0.0][1] is not None and said[0.95][1] is None
    assert ObjectTracker(cut_in_confidence=0.8).fresh().cut_in_confidence == 0.8
    with pytest.raises(ConfigError, match=r"cut_in_confidence must be in \[0, 1\), got 1"):
        ObjectTracker(cut_in_confidence=1)


def test_how_soon_a_thing_is_warned_of_is_the_trackers_setting() -> None:
    """A thing 2.5 s from arriving, nothing placing it: warned of under 3 s (the default), not
    under 2 s; the setting is each TrackInfo's, and a fresh tracker keeps it."""
    from edge.errors import ConfigError

    def last(tracker: ObjectTracker) -> TrackInfo:
        info = None
        for k in range(8):
            d = 32.0 - 10.0 * k / 10
            info = tracker.update([inst(centred(750.0 / d, 900.0 / d))], [(d, d - 1)], k / 10, size=PICTURE)[
                0
            ]
        assert info is not None
        return info

    default, strict = last(ObjectTracker()), last(ObjectTracker(warn_within_s=2.0).fresh())
    assert default.ttc_s == strict.ttc_s and 2.0 < default.ttc_s < 3.0  # type: ignore[operator]
    assert default.warned and default.to_json()["warned"] is True
    assert not strict.warned and strict.warn_within_s == 2.0
    with pytest.raises(ConfigError, match="warn_within_s must be > 0 seconds, got 0"):
        ObjectTracker(warn_within_s=0)


def test_a_box_a_side_of_the_picture_cuts_gives_no_lateral_speed() -> None:
    """A car 20 m ahead at the picture's right side, the side cutting its box: as more of it
    shows, the box's middle moves left, towards the axis, though the car need not. Those
    frames give no bearing, so no lateral speed and no cut-in. The same boxes a pixel
    inside the picture (a car that is all there, moving left) give both."""
    hfov = float(np.degrees(2 * np.arctan(1 / 2.2)))
    w = 512
    per_px = (1 / 2.2) / (w / 2) * 20.0

    def cut(t: float) -> tuple[float, float, float, float]:
        return (w - 60.0 - 50.0 * t, 100.0, float(w), 130.0)

    def inside(t: float) -> tuple[float, float, float, float]:
        x1, y1, x2, y2 = cut(t)
        return (x1 - 1.0, y1, x2 - 1.0, y2)

    said = {}
    for name, box in (("cut", cut), ("inside", inside)):
        tracker = ObjectTracker(hfov_deg=hfov, path_half_width_m=1.5, min_lateral_mps=0.5)
        for i in range(11):
            (said[name],) = tracker.update([inst(box(i / 10))], [(20.0, 19.0)], i / 10, size=(256, w))
    assert said["cut"].lateral_m is not None and said["cut"].lateral_mps is None
    assert said["cut"].path_in_s is None
    assert said["inside"].lateral_mps == pytest.approx(-25.0 * per_px, abs=1e-6)  # the middle: -25 px/s
    assert said["inside"].path_in_s is not None


def test_behind_the_thing_ahead_golden() -> None:
    """Only a thing read from the depth map alone, behind a thing in the path, is held to
    that thing's time to collision: none where it has none, the later of the two where it
    has one; things read from the road, or behind a thing beside the path, keep their own."""
    from edge.postprocess.track_info import behind_the_thing_ahead

    def info(ttc: float | None, *, in_path: bool = True, source: str = "depth") -> TrackInfo:
        return TrackInfo(
            1, 20, 1.0, 5.0, ttc, lateral_m=0.0, in_path=in_path, range_m=16.0, range_from=source
        )

    still, closing, beside = info(None), info(2.5), info(1.0, in_path=False)
    hidden = [info(1.5), info(1.5), info(1.5), info(1.5, source="road"), info(None), info(1.5)]
    hiders = [(6,), (7,), (8,), (6,), (6,), ()]
    got = behind_the_thing_ahead([*hidden, still, closing, beside], [*hiders, (), (), ()])
    assert [g.ttc_s for g in got[:6]] == [None, 2.5, 1.5, 1.5, None, 1.5]
    assert not got[0].warned and got[1].warned and got[2].warned
    assert got[6:] == [still, closing, beside]
    assert got[0].closing_mps == 5.0  # how fast it closes is still said
