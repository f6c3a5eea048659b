from __future__ import annotations

import math

import numpy as np
import pytest

from edge.data.synthetic import SyntheticDrive
from edge.errors import ConfigError
from edge.postprocess.ground import (
    MAX_GROUND_M,
    MAX_ROW_SHARE,
    Feet,
    FittedGround,
    GroundPlane,
    RoadReading,
    Scale,
    camera_plane,
    feet,
    hiding_feet,
    reread,
    rescaled,
    road_distance,
    road_readings,
    take_reading,
)
from edge.postprocess.panoptic import Instance
from edge.postprocess.road_fit import RoadFit
from edge.postprocess.tracks import ObjectTracker

CAR = 13
# the synthetic camera at 256x512: 1.2 m up, no pitch, the principal row 0.45 of the height,
# focal length 1.1 x the width = 2.2 x the height
SYNTHETIC = GroundPlane(height_m=1.2, horizon=0.45, focal=2.2)


def solid(x1: int, y1: int, x2: int, y2: int, pid: int = 26001) -> Instance:
    """An instance filling its whole (whole-pixel) box."""
    return Instance(pid, CAR, 0.9, (x1, y1, x2, y2), np.ones((y2 - y1, x2 - x1), bool), (y1, x1))


# the tracker tests' car, seen by the synthetic camera at 256x512 (field of view HFOV): 1.8 m
# wide, its middle 2.6 m left of the axis, 40 m out, its feet on row (0.45 + 2.2 x 1.2 / 40)
# x 256 = 132.096; and a nearer car hiding them
HFOV = float(np.degrees(2 * np.arctan(1 / 2.2)))
W = 512
_PER_PX = (1 / 2.2) / 256 * 40.0
X1, X2 = W / 2 + (-2.6 - 0.9) / _PER_PX, W / 2 + (-2.6 + 0.9) / _PER_PX
CAR_40M = Instance(26001, CAR, 0.9, (X1, 110.0, X2, 132.096), np.ones((23, 10), bool), (110, int(X1)))
NEARER = solid(int(X1) - 5, 120, int(X1) + 40, 200, pid=26002)


def test_the_road_row_of_a_distance_golden() -> None:
    """At 20 m the road is 2.2 x 1.2 / 20 = 0.132 of the height below the horizon: row
    (0.45 + 0.132) x 256 = 148.992; at 10 m, 0.264: row 182.784."""
    assert SYNTHETIC.distance(148.992, 256) == pytest.approx(20.0)
    assert SYNTHETIC.distance(182.784, 256) == pytest.approx(10.0)
    # the same fractions of a picture stretched to twice the rows
    assert SYNTHETIC.distance(2 * 148.992, 512) == pytest.approx(20.0)
    # at or above the horizon, and beyond MAX_GROUND_M, the road says nothing
    assert SYNTHETIC.distance(0.45 * 256, 256) is None
    assert SYNTHETIC.distance(0.40 * 256, 256) is None
    far = (0.45 + 2.2 * 1.2 / (MAX_GROUND_M + 10)) * 256
    assert SYNTHETIC.distance(far, 256) is None

    # nor where a row is worth more than 16% of the distance: beyond 0.16 x 2.2 x 1.2 x 256
    # = 108.1 m at 256 rows, 54.1 m at 128
    def row(d: float, rows: int) -> float:
        return (0.45 + 2.2 * 1.2 / d) * rows

    assert SYNTHETIC.distance(row(100.0, 256), 256) == pytest.approx(100.0)
    assert SYNTHETIC.distance(row(110.0, 256), 256) is None
    assert SYNTHETIC.distance(row(110.0, 512), 512) == pytest.approx(110.0)
    assert SYNTHETIC.distance(row(50.0, 128), 128) == pytest.approx(50.0)
    assert SYNTHETIC.distance(row(60.0, 128), 128) is None
    assert MAX_ROW_SHARE * 2.2 * 1.2 * 1024 > MAX_GROUND_M  # a Cityscapes-sized picture: the 150 m


def test_a_cameras_pitch_raises_its_horizon_golden() -> None:
    """Cityscapes-like: fy 2262.52, principal row 513.5 of 1024, pitched 0.05 rad down: the
    horizon is 2262.52 x tan 0.05 = 113.22 px above the principal row."""
    plane = GroundPlane.of_camera(height_m=1.22, pitch_rad=0.05, fy=2262.52, v0=513.5, rows=1024)
    assert plane.horizon == pytest.approx((513.5 - 113.2204) / 1024, abs=1e-6)
    assert plane.focal == pytest.approx(2262.52 / 1024)
    assert plane.height_m == 1.22
    assert plane.to_json() == {"height_m": 1.22, "horizon": plane.horizon, "focal": plane.focal}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"height_m": 0.0, "horizon": 0.45, "focal": 2.2}, "height_m must be > 0 metres, got 0.0"),
        ({"height_m": 1.2, "horizon": math.nan, "focal": 2.2}, "horizon must be a finite fraction"),
        ({"height_m": 1.2, "horizon": 0.45, "focal": -1.0}, "focal must be > 0"),
    ],
)
def test_a_bad_ground_plane_is_refused(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        GroundPlane(**kwargs)


def test_feet_are_read_where_some_of_them_show() -> None:
    far = solid(100, 80, 140, 130)
    # a nearer car covering the row below the far one's feet in every column: hidden
    hiding = solid(90, 120, 200, 200, pid=26002)
    assert feet(0, [far, hiding], 256) is None
    # covering only some of its columns: the rest show where it stands
    partly = solid(120, 120, 200, 200, pid=26002)
    assert feet(0, [far, partly], 256) == Feet(130.0, 0.5, False)
    # more than half of them: seen, but maybe not its feet (partly hidden)
    most = solid(110, 120, 200, 200, pid=26002)
    assert feet(0, [far, most], 256) == Feet(130.0, 0.75, True)
    assert feet(0, [far], 256) == Feet(130.0, 0.0, False)
    # its box reaching 20 rows below its mask (over 2 rows and a tenth of its 50): a guess
    guessed = Instance(26001, CAR, 0.9, (100, 80, 140, 130), np.ones((30, 40), bool), (80, 100))
    assert feet(0, [guessed], 256) == Feet(130.0, 0.0, True)
    barely = Instance(26001, CAR, 0.9, (100, 80, 140, 130), np.ones((45, 40), bool), (80, 100))
    assert feet(0, [barely], 256) == Feet(130.0, 0.0, False)
    ground = GroundPlane(height_m=1.2, horizon=0.45, focal=2.2)
    (half,), (three_quarters,) = (
        road_readings([far, other], ground, (256, 512))[:1] for other in (partly, most)
    )
    d = ground.distance(130.0, 256)
    assert d is not None and half == RoadReading(d, False, 130.0)
    assert three_quarters == RoadReading(d, True, 130.0)
    # the nearer car's own feet show
    assert feet(1, [far, hiding], 256) == Feet(200.0, 0.0, False)
    # the picture's bottom cuts it, or it has no pixels: nothing to read
    assert feet(0, [solid(10, 200, 50, 256)], 256) is None
    empty = Instance(26003, CAR, 0.9, (0, 0, 4, 4), np.zeros((4, 4), bool), (0, 0))
    assert feet(0, [empty], 256) is None


def test_road_readings_of_the_synthetic_drives_things_golden() -> None:
    """The renderer's truth: every car, truck and person whose feet show, read from its true
    mask's lowest row with the synthetic camera's ground plane, is within 0.6 of a row's
    worth of distance (d^2 / (focal x height x rows)) of its true depth; a bicycle within
    2.5 (its round wheels leave the box's lowest rows nearly empty: the lowest pixel centres
    inside them are a row or two up)."""
    drive = SyntheticDrive(height=256, width=512, seed=3, lane="right")
    assert drive.camera.ground == SYNTHETIC
    checked = 0
    for index in (0, 20, 40):
        gt = drive.render(index)
        ids = [int(i) for i in np.unique(gt.instance_ids) if i >= 1000]
        instances = []
        for iid in ids:
            ys, xs = np.nonzero(gt.instance_ids == iid)
            y1, x1, y2, x2 = ys.min(), xs.min(), ys.max() + 1, xs.max() + 1
            mask = gt.instance_ids[y1:y2, x1:x2] == iid
            instances.append(Instance(iid, CAR, 0.9, (x1, y1, x2, y2), mask, (int(y1), int(x1))))
        for iid, reading in zip(ids, road_readings(instances, SYNTHETIC, (256, 512)), strict=True):
            if reading is None:
                continue
            d = reading.distance_m
            true = float(np.median(gt.depth[gt.instance_ids == iid]))
            rows = abs(d - true) / (true**2 / (2.2 * 1.2 * 256))
            assert rows <= (2.5 if iid // 1000 == 33 else 0.6), (index, iid, d, true)
            checked += 1
    assert checked >= 10


def test_with_a_ground_plane_the_tracker_reads_distances_from_the_road() -> None:
    """A car 1.8 m wide whose middle is 2.6 m left of the axis, 40 m out, feet on row
    (0.45 + 2.2 x 1.2 / 40) x 256 = 132.096: a depth engine that says 20 m puts it 1.3 m
    left, its near side 0.85 m from the axis and in a 1.5 m half-width path; the road puts it
    where it is, 1.7 m beside its near side and out of the path."""
    depth_only = ObjectTracker(hfov_deg=HFOV)
    (info,) = depth_only.update([CAR_40M], [(20.0, 19.0)], 0.0, size=(256, W))
    assert info.lateral_m == pytest.approx(-1.3) and info.in_path and info.ground_m is None
    assert (info.range_m, info.range_from) == (20.0, "depth")
    grounded = ObjectTracker(hfov_deg=HFOV, ground=SYNTHETIC)
    (info,) = grounded.update([CAR_40M], [(20.0, 19.0)], 0.0, size=(256, W))
    assert info.ground_m == pytest.approx(40.0)
    assert info.lateral_m == pytest.approx(-2.6) and info.in_path is False
    assert info.to_json()["ground_m"] == 40.0
    assert info.range_m == pytest.approx(40.0) and info.range_from == "road"
    assert (info.to_json()["range_m"], info.to_json()["range_from"]) == (40.0, "road")
    # its feet hidden behind a nearer car: the depth engine's reading stands
    a, _ = ObjectTracker(hfov_deg=HFOV, ground=SYNTHETIC).update(
        [CAR_40M, NEARER], [(20.0, 19.0), (8.0, 7.5)], 0.0, size=(256, W)
    )
    assert a.ground_m is None and a.lateral_m == pytest.approx(-1.3)
    assert (a.range_m, a.range_from) == (20.0, "depth")  # no road reading of its yet to scale by
    # without depth, the road alone gives the distance
    (alone,) = ObjectTracker(hfov_deg=HFOV, ground=SYNTHETIC).update([CAR_40M], None, 0.0, size=(256, W))
    assert alone.ground_m == pytest.approx(40.0) and alone.lateral_m == pytest.approx(-2.6)
    assert grounded.fresh().ground == SYNTHETIC
    with pytest.raises(ConfigError, match="ground must be a GroundPlane or None, got 1.2"):
        ObjectTracker(ground=1.2)  # type: ignore[arg-type]


def test_a_thing_closing_on_the_road_gives_its_speed_and_no_lateral_one() -> None:
    """An oncoming car 3.6 m left of the axis closing at 20 m/s from 60 m, seen at 17 fps,
    whose depth engine reads it at half its distance (as the tiny one did the far oncoming
    cars that it put in the path). The growth gives the closing speed whatever the distance
    (the box grows as 1 / d), so times its median distance a speed half the true one; the
    road's distances are right, and their slope says it keeps its lane (no lateral speed,
    no cut-in), where the depth engine's would have it drift."""
    hfov = float(np.degrees(2 * np.arctan(1 / 2.2)))
    w, f = 512, 1.1 * 512

    def car(d: float) -> Instance:
        u1, u2 = 256 + f * (-3.6 - 0.9) / d, 256 + f * (-3.6 + 0.9) / d
        v1, v2 = 115.2 + f * (1.2 - 1.5) / d, 115.2 + f * 1.2 / d
        return Instance(26001, CAR, 0.9, (u1, v1, u2, v2), np.ones((2, 2), bool), (int(v2) - 2, int(u1)))

    grounded = ObjectTracker(hfov_deg=hfov, ground=SYNTHETIC)
    depth_only = ObjectTracker(hfov_deg=hfov)
    for i in range(18):
        t = i / 17
        d = 60.0 - 20.0 * t
        (g,) = grounded.update([car(d)], [(d / 2, d / 2)], t, size=(256, w))
        (o,) = depth_only.update([car(d)], [(d / 2, d / 2)], t, size=(256, w))
    assert g.ground_m == pytest.approx(d, rel=1e-6)
    assert g.closing_mps == pytest.approx(20.0, rel=0.05)
    assert o.closing_mps == pytest.approx(10.0, rel=0.05)
    assert g.lateral_m == pytest.approx(-3.6, abs=0.01) and g.in_path is False
    assert abs(g.lateral_mps) < 0.05 and g.path_in_s is None
    assert o.lateral_m == pytest.approx(-1.8, abs=0.01) and o.in_path is True


def test_a_things_distance_from_the_road_and_the_depth_map_golden() -> None:
    # feet seen: the road's distance, the near side as much nearer as the depth map has it
    assert road_distance((20.0, 18.0), 40.0, []) == (40.0, 36.0, "road")
    assert road_distance(None, 40.0, []) == (40.0, 40.0, "road")
    # hidden: the depth engine's, times its track's median road / depth ratio
    assert road_distance((20.0, 18.0), None, [1.9, 2.0, 2.5]) == (40.0, 36.0, "scaled")
    assert road_distance((20.0, 18.0), None, []) == (20.0, 18.0, "depth")
    assert road_distance(None, None, [2.0]) is None


def test_a_track_takes_partly_hidden_feet_only_without_clean_ones_golden() -> None:
    scales: list[Scale] = []
    # partly hidden, and nothing better: the reading stands, but gives no ratio
    assert take_reading(RoadReading(40.0, True, 120.0), (20.0, 19.0), scales, 0.0) == 40.0 and scales == []
    # whole feet: taken, and their ratio to the depth engine's kept
    assert take_reading(RoadReading(30.0, False, 120.0), (20.0, 19.0), scales, 0.1) == 30.0
    assert scales == [Scale(t_s=0.1, ratio=1.5, row=120.0, depth_m=20.0)]
    # partly hidden with a clean ratio to go by: not taken (road_distance scales the depth)
    assert take_reading(RoadReading(66.0, True, 120.0), (20.0, 19.0), scales, 0.2) is None
    assert road_distance((20.0, 19.0), None, [s.ratio for s in scales]) == (30.0, 28.5, "scaled")
    # no feet, or no depth to take a ratio against
    assert take_reading(None, (20.0, 19.0), scales, 0.3) is None
    assert take_reading(RoadReading(30.0, False, 120.0), None, scales, 0.4) == 30.0 and len(scales) == 1


def test_a_tracks_distances_read_again_over_a_plane_golden() -> None:
    """Over the synthetic plane row 148.992 of 256 is 20 m (the test above): a ratio taken
    there against a depth of 5 m is 4 again; one taken above the horizon, which the plane
    does not read, keeps its 1.5. Then a road distance is read again at its row (20 m), a
    scaled one goes by the depth engine's 10 m times the ratios' median (2.75), and one from
    the depth map alone stands."""
    scales = rescaled([Scale(0.0, 2.0, 148.992, 5.0), Scale(0.1, 1.5, 100.0, 8.0)], SYNTHETIC, 256)
    assert [s.ratio for s in scales] == [pytest.approx(4.0), 1.5]
    ranges = [(0.0, 19.0), (0.1, 33.0), (0.2, 7.0)]
    reads = [(0.0, 148.992, None), (0.1, None, 10.0), (0.2, None, None)]
    again = reread(ranges, reads, list(scales), SYNTHETIC, 256)
    assert [t for t, _ in again] == [0.0, 0.1, 0.2]
    assert [d for _, d in again] == [pytest.approx(20.0), pytest.approx(27.5), 7.0]
    # no ratios left in the window: a scaled distance keeps what it was
    assert [d for _, d in reread(ranges[1:], reads[1:], [], SYNTHETIC, 256)] == [33.0, 7.0]


def test_a_track_whose_feet_hide_for_a_frame_keeps_the_roads_scale() -> None:
    """The car of the test above, its feet seen for three frames (the depth engine at half
    the road's distance), then hidden behind a nearer car for one: its distance is the depth
    engine's doubled, and its place stays where the road put it."""
    tracker = ObjectTracker(hfov_deg=HFOV, ground=SYNTHETIC)
    for i in range(3):
        (info,) = tracker.update([CAR_40M], [(20.0, 19.0)], i / 17, size=(256, W))
        assert info.ground_m == pytest.approx(40.0)
    hidden, _ = tracker.update([CAR_40M, NEARER], [(20.0, 19.0), (8.0, 7.5)], 3 / 17, size=(256, W))
    assert hidden.track == info.track and hidden.ground_m is None
    assert hidden.lateral_m == pytest.approx(-2.6) and hidden.ahead_m == pytest.approx(40.0)
    assert hidden.in_path is False
    # what the overlay's label and the viewer say: the tracker's distance, not the depth map's
    assert hidden.range_m == pytest.approx(40.0) and hidden.range_from == "scaled"
    assert hidden.to_json()["range_from"] == "scaled" and "ground_m" not in hidden.to_json()
    # no distance at all: none said
    (blind,) = ObjectTracker(hfov_deg=HFOV).update([CAR_40M], None, 0.0, size=(256, W))
    assert blind.range_m is None and "range_m" not in blind.to_json()


def test_a_tracks_scale_lasts_its_speed_window_and_says_so() -> None:
    """The same car, its feet seen whole once and then hidden behind the nearer car: the
    ratio read then scales the depth engine's distance for the speed window (1 s), and the
    first frame after it the distance is the depth map's own, said as such: never the
    road's scale under the depth map's name."""
    tracker = ObjectTracker(hfov_deg=HFOV, ground=SYNTHETIC)
    (seen,) = tracker.update([CAR_40M], [(20.0, 19.0)], 0.0, size=(256, W))
    assert seen.range_from == "road"
    said = []
    for i in range(1, 20):
        hidden, _ = tracker.update([CAR_40M, NEARER], [(20.0, 19.0), (8.0, 7.5)], i / 17, size=(256, W))
        assert hidden.track == seen.track
        said.append((hidden.range_from, round(hidden.range_m, 6)))
    assert said == [("scaled", 40.0)] * 17 + [("depth", 20.0)] * 2  # 17 / 17 s: still within 1 s


def test_partly_hidden_feet_are_taken_only_by_a_track_without_clean_ones() -> None:
    """The car of the tests above, its feet seen whole for three frames (the depth engine
    at half the road's distance); then the car ahead covers most of the row below it and
    its box ends 7 rows short, on row 125.4, read as 66 m: the track goes by its ratios,
    40 m; a track seeing it so first has nothing better than the 66 m."""
    short = Instance(26001, CAR, 0.9, (X1, 110.0, X2, 125.4), np.ones((15, 10), bool), (110, int(X1)))
    ahead = solid(int(X1) + 4, 125, int(X1) + 60, 200, pid=26002)  # 6 of its 10 columns
    assert feet(0, [short, ahead], 256) == Feet(125.4, 0.6, True)
    tracker = ObjectTracker(hfov_deg=HFOV, ground=SYNTHETIC)
    for i in range(3):
        (info,) = tracker.update([CAR_40M], [(20.0, 19.0)], i / 17, size=(256, W))
    seen, _ = tracker.update([short, ahead], [(20.0, 19.0), (8.0, 7.5)], 3 / 17, size=(256, W))
    assert seen.track == info.track and seen.ground_m is None
    assert seen.range_m == pytest.approx(40.0) and seen.range_from == "scaled"
    first, _ = ObjectTracker(hfov_deg=HFOV, ground=SYNTHETIC).update(
        [short, ahead], [(20.0, 19.0), (8.0, 7.5)], 0.0, size=(256, W)
    )
    assert first.ground_m == pytest.approx(2.2 * 1.2 / (125.4 / 256 - 0.45)) and first.range_from == "road"


def test_feet_are_those_every_other_mask_leaves_free() -> None:
    """Random blobs: feet's row is the box's bottom exactly where, below the lowest row
    of the mask, some column is in no other mask (each mask looked at, none passed over),
    and feet's ``covered`` is the share of that row, across the mask's window, in others."""
    rng = np.random.default_rng(1)
    for _ in range(200):
        instances = []
        for k in range(int(rng.integers(1, 7))):
            y0, x0 = int(rng.integers(0, 40)), int(rng.integers(0, 56))
            h, w = int(rng.integers(1, 48 - y0 + 1)), int(rng.integers(1, 64 - x0 + 1))
            mask = rng.random((h, w)) < 0.8
            instances.append(Instance(26000 + k, CAR, 0.9, (x0, y0, x0 + w, y0 + h), mask, (y0, x0)))
        taken = np.zeros((48, 64), int)
        for inst in instances:
            (y0, x0), m = inst.offset, inst.mask
            taken[y0 : y0 + m.shape[0], x0 : x0 + m.shape[1]] += m
        for i, inst in enumerate(instances):
            (y0, x0), m = inst.offset, inst.mask
            rows = np.flatnonzero(m.any(axis=1))
            if not rows.size or y0 + rows[-1] + 1 >= 48 or inst.box[3] >= 47.5:
                assert feet(i, instances, 48) is None
                continue
            below, cols = y0 + rows[-1] + 1, x0 + np.flatnonzero(m[rows[-1]])
            own = np.zeros(64, int)
            if below < y0 + m.shape[0]:
                own[x0 : x0 + m.shape[1]] = m[below - y0]
            free = (taken[below, cols] - own[cols]) == 0
            if not free.any():
                assert feet(i, instances, 48) is None
            else:
                span = np.arange(x0, x0 + m.shape[1])
                covered = np.mean((taken[below, span] - own[span]) > 0)
                unseen = inst.box[3] - below > max(2.0, 0.1 * (inst.box[3] - inst.box[1]))
                partly = bool(covered > 0.5 or unseen)
                assert feet(i, instances, 48) == Feet(float(inst.box[3]), pytest.approx(covered), partly)


def test_a_new_tracks_settling_road_readings_are_not_a_cut_in() -> None:
    """A person at the kerb 2.5 m right of the axis, from a ground trial drive (boxes and
    depth as the tiny engines gave them): as the track begins its feet's row settles, so
    the road reads 32.8, 28.6, 25.1, 22.7, 22.1, 22.1 m (the truth 26 -> 23). From those six
    the distances' slope is 39.5 m/s, and the lateral speed that goes with it 3.8 m/s
    towards the path: the speed alone says a cut-in in 0.23 s. The six readings' interval
    holds standing still, so at 0.95 none is said. (Two frames later, the readings settled,
    it is said at 0.95 too: the interval answers for scatter, not for a trend.)"""
    hfov = float(np.degrees(2 * np.arctan(1 / 2.2)))
    seen = [
        ((315.5, 110.1, 321.0, 135.8), 15.7),
        ((315.4, 109.0, 321.5, 138.8), 15.5),
        ((315.3, 107.6, 322.0, 142.1), 13.4),
        ((315.8, 104.8, 322.5, 145.0), 12.5),
        ((316.1, 105.9, 323.8, 145.8), 12.0),
        ((316.5, 104.6, 325.8, 145.8), 11.9),
    ]

    def person(box: tuple[float, float, float, float]) -> Instance:
        top, left = int(box[1]), int(box[0])
        mask = np.ones((math.ceil(box[3]) - top, math.ceil(box[2]) - left), bool)
        return Instance(24001, 11, 0.9, box, mask, (top, left))

    said = {}
    for confidence in (0.0, 0.95):
        tracker = ObjectTracker(hfov_deg=hfov, ground=SYNTHETIC, cut_in_confidence=confidence)
        for k, (box, depth) in enumerate(seen):
            (info,) = tracker.update([person(box)], [(depth, depth - 0.5)], (13 + k) / 17, size=(256, 512))
        said[confidence] = info
    for info in said.values():
        assert info.range_from == "road" and info.ground_m == pytest.approx(22.1, abs=0.05)
        assert info.closing_mps == pytest.approx(39.5, abs=0.1)
        assert info.lateral_m == pytest.approx(2.55, abs=0.01) and info.in_path is False
        assert info.lateral_mps == pytest.approx(-3.79, abs=0.01)
    assert said[0.0].path_in_s == pytest.approx(0.23, abs=0.01)
    assert said[0.95].path_in_s is None


def test_the_fitted_plane_is_the_median_of_the_windows_fits() -> None:
    fitted = FittedGround(window_s=1.0)
    assert fitted.update(None, 0.0) is None  # nothing fitted yet
    plane = fitted.update(RoadFit(0.45, 2.64, 60, 0.0), 0.1)
    assert plane == GroundPlane(height_m=2.64, horizon=0.45, focal=1.0)
    # it reads a distance as the camera's own plane does: 40 m on row 132.096 of 256
    assert plane.distance(132.096, 256) == pytest.approx(40.0)
    assert SYNTHETIC.distance(132.096, 256) == pytest.approx(40.0)
    fitted.update(RoadFit(0.40, 2.0, 60, 0.0), 0.2)
    plane = fitted.update(RoadFit(0.47, 2.7, 60, 0.0), 0.3)
    assert plane is not None and (plane.horizon, plane.height_m) == (0.45, 2.64)  # the middle of three
    # a frame without a fit keeps those within the window; older ones go
    plane = fitted.update(None, 1.25)
    assert plane is not None and (plane.horizon, plane.height_m) == (0.47, 2.7)
    # none within the window: the last plane taken stands (the camera has not moved)
    assert fitted.update(None, 2.0) == plane
    fitted.update(RoadFit(0.45, 2.64, 60, 0.0), 2.1)
    fitted.reset()
    assert fitted.update(None, 2.2) is None


def test_without_a_ground_plane_the_tracker_reads_the_road_fitted_to_the_depth_map() -> None:
    """No camera height given: the road's plane in the depth map (fit_road; here the
    synthetic camera's own, as it gives it) puts the 40 m car where the given plane does,
    where the depth engine's 20 m put it in the path."""
    fit = RoadFit(horizon=0.45, reach=2.64, rows=60, bend=0.0)
    tracker = ObjectTracker(hfov_deg=HFOV)
    assert tracker.fits_ground
    (info,) = tracker.update([CAR_40M], [(20.0, 19.0)], 0.0, size=(256, W), road_fit=fit)
    assert info.ground_m == pytest.approx(40.0) and (info.range_m, info.range_from) == (info.ground_m, "road")
    assert info.lateral_m == pytest.approx(-2.6) and info.in_path is False
    (info,) = tracker.update([CAR_40M], [(20.0, 19.0)], 0.05, size=(256, W))  # a frame with no fit
    assert info.ground_m == pytest.approx(40.0)
    (info,) = tracker.update([CAR_40M], [(20.0, 19.0)], 0.1, scene="next", size=(256, W))
    assert info.ground_m is None and info.range_from == "depth"  # another scene: fitted afresh
    # without a field of view: the distance alone
    (info,) = ObjectTracker().update([CAR_40M], [(20.0, 19.0)], 0.0, size=(256, W), road_fit=fit)
    assert info.ground_m == pytest.approx(40.0) and info.lateral_m is None
    # not where asked not to, nor where a plane is given (a camera twice as high: 80 m)
    for off in ({"fit_ground": False}, {"use_ground": False}):
        kept = ObjectTracker(hfov_deg=HFOV, **off)
        assert not kept.fits_ground
        (info,) = kept.update([CAR_40M], [(20.0, 19.0)], 0.0, size=(256, W), road_fit=fit)
        assert info.ground_m is None and info.range_m == 20.0
    given = ObjectTracker(hfov_deg=HFOV, ground=GroundPlane(height_m=2.4, horizon=0.45, focal=2.2))
    assert not given.fits_ground
    (info,) = given.update([CAR_40M], [(20.0, 19.0)], 0.0, size=(256, W), road_fit=fit)
    assert info.ground_m == pytest.approx(80.0)
    assert ObjectTracker(fit_ground=False).fresh().fit_ground is False


def test_no_plane_from_fits_whose_road_bends() -> None:
    """The window's median bend decides: a frame that bends among straight ones does not
    change the plane, most of the window bending takes none from it (the last one taken
    stands); a fit whose halves gave no line counts as bent. A camera whose road bends from
    the start has none."""
    fitted = FittedGround(window_s=1.0, max_bend=0.03)
    first = fitted.update(RoadFit(0.45, 2.64, 60, 0.01), 0.0)
    assert first is not None
    assert fitted.update(RoadFit(0.44, 2.7, 60, 0.09), 0.1) == first  # of two, the median is 0.05
    plane = fitted.update(RoadFit(0.45, 2.64, 60, 0.005), 0.2)
    assert plane is not None and plane.horizon == 0.45  # median bend 0.01
    fitted.update(RoadFit(0.42, 2.6, 60, 0.08), 0.3)
    assert fitted.update(RoadFit(0.42, 2.6, 60, None), 0.4) == plane  # 3 of 5 over 0.03: held
    bent = FittedGround(max_bend=0.03)
    assert bent.update(RoadFit(0.45, 2.64, 60, None), 0.0) is None
    assert bent.update(RoadFit(0.41, 2.8, 60, 0.09), 0.1) is None


def test_the_things_hiding_a_things_feet() -> None:
    """The nearer things (box bottom lower) whose masks hold some of the row under a
    thing's lowest pixels; not those beside it, nor farther ones, nor where the picture's
    bottom cuts it."""
    far = solid(100, 80, 140, 130)  # the row under its mask: 130
    ahead = solid(120, 130, 200, 200, pid=26002)  # holds row 130 under columns 120-139
    also = solid(60, 130, 105, 140, pid=26003)  # and under 100-104
    beside = solid(141, 90, 160, 135, pid=26004)  # nearer, not under it; its own feet on the one ahead
    assert hiding_feet([far, ahead, also, beside], 256) == [(1, 2), (), (), (1,)]
    # the picture's bottom cuts the nearer one: nothing under it in the picture
    assert hiding_feet([far, solid(90, 130, 200, 256, pid=26002)], 256) == [(1,), ()]
    empty = Instance(26003, CAR, 0.9, (0, 0, 4, 4), np.zeros((4, 4), bool), (0, 0))
    assert hiding_feet([empty, ahead], 256) == [(), ()]


def _behind_the_car_ahead(with_car: bool, car_closes: bool = False) -> list:
    """A thin thing seen over the car ahead's shoulder, its feet hidden by the car, read at
    16 m by the depth map while its box grows by two thirds in a second (more of it
    showing); the car ahead in the path, 8 m out, its box still or growing."""
    tracker = ObjectTracker(hfov_deg=HFOV)  # no plane: the depth map's distances
    out = []
    for i in range(18):
        t = i / 17
        top = 112 - 12 * t
        thin = Instance(
            24001, 11, 0.9, (290, top, 300, 130), np.ones((130 - int(top), 10), bool), (int(top), 290)
        )
        grow = 1 + 0.5 * t if car_closes else 1.0
        car = solid(int(248 - 58 * grow), int(200 - 70 * grow), int(248 + 58 * grow), 200, pid=26002)
        things, depths = ([thin, car], [(16.0, 15.0), (8.0, 7.8)]) if with_car else ([thin], [(16.0, 15.0)])
        out.append(tracker.update(things, depths, t, size=(256, W)))
    return out[-1]


def test_a_thing_behind_the_car_ahead_is_not_warned_of_before_it() -> None:
    """Its depth-map distance and growing box make it close at several m/s, a warning of a
    thing in the path; standing behind the car ahead, it cannot reach the camera before
    the car does: no time to collision while the car has none, and none sooner than the
    car's while it closes."""
    (alone,) = _behind_the_car_ahead(False)
    assert alone.range_from == "depth" and alone.closing_mps > 4 and alone.in_path
    assert alone.ttc_s is not None and alone.ttc_s < 3.0 and alone.warned
    thin, car = _behind_the_car_ahead(True)
    assert car.in_path and car.ttc_s is None
    assert thin.range_from == "depth" and thin.closing_mps == pytest.approx(alone.closing_mps)
    assert thin.ttc_s is None and not thin.warned
    thin, car = _behind_the_car_ahead(True, car_closes=True)
    assert car.ttc_s is not None and thin.ttc_s == pytest.approx(max(alone.ttc_s, car.ttc_s))


def test_a_fitted_plane_as_a_cameras_height_and_horizon_golden() -> None:
    """FittedGround's plane of the synthetic camera's road: focal length 1 and height its
    reach, 2.2 x 1.2 = 2.64. With the 48.9 degree field of view at 256x512 the focal length
    is (512 / 256) / (2 tan(hfov / 2)) = 2.2 of the height, so the camera is 2.64 / 2.2 =
    1.2 m up; those options give the same distances. Without a field of view it stays."""
    fitted = GroundPlane(height_m=2.64, horizon=0.45, focal=1.0)
    plane = camera_plane(fitted, HFOV, (256, W))
    assert plane.height_m == pytest.approx(1.2) and plane.focal == pytest.approx(2.2)
    assert plane.horizon == 0.45
    pinned = GroundPlane(height_m=plane.height_m, horizon=plane.horizon).with_focal(HFOV, (256, W))
    for row in (120.0, 148.992, 200.0, 255.0):
        assert pinned.distance(row, 256) == pytest.approx(fitted.distance(row, 256))
    assert camera_plane(fitted, None, (256, W)) is fitted


def _walker(d: float, x: float, feet_d: float) -> Instance:
    """A person 0.6 m wide and 1.7 m tall ``d`` m out, ``x`` m right of the axis, whose box's
    bottom (its feet row) is the road's row at ``feet_d`` m."""
    f = 1.1 * W
    u1, u2 = W / 2 + f * (x - 0.3) / d, W / 2 + f * (x + 0.3) / d
    v2 = 0.45 * 256 + f * 1.2 / feet_d
    v1 = v2 - f * 1.7 / d
    mask = np.ones((math.ceil(v2) - int(v1), math.ceil(u2) - int(u1)), bool)
    return Instance(24001, 11, 0.9, (u1, v1, u2, v2), mask, (int(v1), int(u1)))


def test_a_cut_in_read_from_the_road_needs_the_boxs_growth_to_agree() -> None:
    """A person standing 4 m left of the axis, approached at 10 m/s from 30 m, whose feet
    row sinks as if it neared 6 m/s faster than its box grows (a box's bottom a row or two
    off, row after row). The road distances' own slope then closes 16 m/s, and beside the
    axis that reads as 1.0-1.3 m/s towards the path, sure within the distances' interval:
    said to cut in. Its box's growth says 10 m/s and no lateral speed, so it is not. A
    person walking in at 2 m/s, feet and box agreeing, is said to cut in as before; so is
    one a rear camera sees so (its picture's left is the vehicle's right)."""
    for facing, walk, sink, cuts_in in (
        ("front", 0.0, 6.0, False),
        ("front", 2.0, 0.0, True),
        ("rear", 2.0, 0.0, True),
    ):
        tracker = ObjectTracker(hfov_deg=HFOV, ground=SYNTHETIC, facing=facing)
        said = []
        for i in range(19):
            t = i / 17
            d = 30.0 - 10.0 * t
            (info,) = tracker.update([_walker(d, -4.0 + walk * t, d - sink * t)], [(d, d)], t, size=(256, W))
            said.append((info.lateral_mps, info.path_in_s))
        speeds = [s for s, _ in said[-7:]]  # the speed window's last 7 frames, 0.7-1.1 s
        if facing == "rear":  # the vehicle's right is the picture's left: moving left
            speeds = [-s if s is not None else s for s in speeds]
        assert all(s is not None and 1.0 <= s <= 2.1 for s in speeds), speeds
        assert all((p is not None) == cuts_in for _, p in said[-7:]), said
