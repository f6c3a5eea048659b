"""Objects followed from frame to frame: a track number each, and how fast each one closes in.

A planner reading ``objects.jsonl`` needs to know that the car 23 m ahead now is the one
that was 24 m ahead a frame ago, and that it is coming 8 m/s nearer. ``ObjectTracker``
gives every instance a track: boxes of the same class are paired with the tracks' boxes
moved on by their own speed across the image, or where they were last seen (greedy, best
overlap first, at least ``min_iou``); an instance no track takes starts a new one, and a
track that nothing takes for ``max_gap_s`` ends.

How fast a tracked object closes in is read from how fast its box grows: a thing at
distance d that closes at v grows at v / d of its size a second (looming), whatever its
size, so the growth rate of the box's height over the last ``speed_window_s`` (the
Theil–Sen slope of its logarithm: the median of the slopes between every two samples, so
a few frames where something hides part of it do not swing it; the box's steps taken out,
boxes.steady_part) times the object's median distance over that time is its
closing speed, and one over the rate, less the time since the window's middle (which the
rate stands for), its time-to-collision, which needs no distance. The box's width stands
in while the box touches the picture's top or bottom, and the distances' own slope while
it touches both a side and the top or bottom. The growth is the better reading: on synthetic drives
whose objects are all known, the distances' own slope missed the closing speed by 3.7 m/s
(median) where the growth misses it by 1.5 (benchmarks/tracking_trial.py), since a
monocular depth engine's distances wander from frame to frame more than a box's size.

Times are the stream's, in seconds: a camera's capture times, a recording's media times,
a file's frame index over its rate. The numbers are the engines' picture's (pixels) and
the depth engine's (metres); nothing here knows the camera.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import statistics
from collections import deque
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from edge.errors import ConfigError
from edge.postprocess.boxes import box_size, growth_samples, match_boxes
from edge.postprocess.drift import lateral_drift
from edge.postprocess.facing import Facing, check_facing, path_side, placed, turn
from edge.postprocess.ground import (
    FittedGround,
    GroundPlane,
    RoadReading,
    Scale,
    camera_plane,
    hiding_feet,
    reread,
    rescaled,
    road_distance,
    road_readings,
    take_reading,
)
from edge.postprocess.occlusion import hidden_sides
from edge.postprocess.panoptic import Instance
from edge.postprocess.slopes import closing_speed, slope_interval, theil_sen_slope
from edge.postprocess.track_info import TTC_WARN_S, TrackInfo, behind_the_thing_ahead

if TYPE_CHECKING:
    from edge.postprocess.ground import Range
    from edge.postprocess.road_fit import RoadFit

# a track under half the speed window old says a time to collision only where the slowest rate
# of its growth's interval at this z (Sen's; 1: 68%) still brings the thing within twice the
# warning time: its few samples of a far car's box, ten rows high, read 2 s for a car keeping
# its distance. On the ground trial's drives (the road's and the depth map's distances, at
# 256x512 and 128x256) the warnings of things never due went 117 -> 108; of the 649 due ones
# warned of, 15 came a frame later than they had after due, and one thing (warned of 2 s after
# due, in both arms at 128x256) was not (benchmarks/ground_trial.py)
YOUNG_TTC_Z = 1.0


@dataclass
class _Track:
    number: int
    train_id: int
    box: np.ndarray  # x1, y1, x2, y2 where last seen
    velocity: np.ndarray  # of each of the box's coordinates, pixels per second
    first_s: float
    last_s: float
    frames: int = 1
    ranges: deque[tuple[float, float]] = field(default_factory=deque)  # (t, distance)
    # (t, the row of its feet where the distance was read from the road, the depth engine's
    # median where it was scaled): to read them again over a fitted plane as it moves (reread)
    reads: deque[tuple[float, float | None, float | None]] = field(default_factory=deque)
    # (t, tan of the bearing right of the camera's axis): from where the box is alone
    bearings: deque[tuple[float, float]] = field(default_factory=deque)
    # (t, log height, log width, touches the top or bottom, touches a side)
    sizes: deque[tuple[float, float, float, bool, bool]] = field(default_factory=deque)
    # where both the road's and the depth engine's distance were read
    scales: deque[Scale] = field(default_factory=deque)

    def predicted(self, t_s: float) -> np.ndarray:
        return self.box + self.velocity * (t_s - self.last_s)


class ObjectTracker:
    """Gives each frame's instances their tracks; feed it the frames in order (``update``)."""

    def __init__(
        self,
        *,
        min_iou: float = 0.3,
        max_gap_s: float = 0.5,
        speed_window_s: float = 1.0,
        min_speed_samples: int = 5,
        min_closing_mps: float = 0.5,
        smoothing: float = 0.5,
        hfov_deg: float | None = None,
        path_half_width_m: float = 1.5,
        mount_offset_m: float = 0.0,
        mount_ahead_m: float = 0.0,
        facing: Facing = "front",
        min_lateral_mps: float = 1.0,
        cut_in_confidence: float = 0.95,
        warn_within_s: float = TTC_WARN_S,
        ground: GroundPlane | None = None,
        use_ground: bool = True,
        fit_ground: bool = True,
    ) -> None:
        """``min_iou``: the least overlap between an instance's box and a track's moved-on
        box that continues the track; ``max_gap_s``: how long a track waits for its object
        (hidden, missed) before it ends; ``speed_window_s`` and ``min_speed_samples``: the
        box sizes and distances a closing speed is read from; ``min_closing_mps``: the closing speed from
        which a time-to-collision is given; ``smoothing``: the weight of the newest box
        motion in a track's image velocity (1: the last motion alone). ``hfov_deg``: the
        camera's horizontal field of view (as the frames reach the engines, before any
        stretch): each object with a distance then gets its ``lateral_m`` (its middle's
        offset from the camera's axis, from where its box is in the picture and how far it
        is), and ``in_path`` when some of it is within ``path_half_width_m`` of the axis.
        ``mount_offset_m``: how far right of the vehicle's middle the camera is (left:
        negative): ``lateral_m`` and the path are then the vehicle's, not the camera's.
        ``mount_ahead_m``: how far ahead of the vehicle's reference point the camera is
        (behind: negative): ``ahead_m`` is then measured from that point, so that several
        cameras' objects share one frame; distances and closing speeds stay the camera's.
        ``facing`` (edge.postprocess.facing: a name, or a yaw in degrees, left positive):
        which way the camera looks. A rear camera's picture is
        mirrored to the vehicle (its right is the vehicle's left) and its path is the one
        behind; a side camera's depth is across the vehicle and its picture's columns along
        it, and it has no path (``in_path`` None), so its objects' times to collision are
        warned of wherever they are; a corner camera's are turned by its yaw, with a path
        within 45 degrees of ahead or behind (facing.path_side). ``cut_in_confidence``: a
        thing is said to cut in only where its lateral speed's interval of this confidence
        (Sen's, of the slopes it is read from; for distances read from the road, with the
        box's growth too: drift.drift_clear)
        keeps clear of standing still: few samples, or far things whose distances jump
        metres a row, give wide ones (0: the speed alone). ``warn_within_s``:
        the time to collision under which a thing is warned of (TrackInfo.warned).
        ``ground``: the camera over a flat road (edge.postprocess.ground): a thing whose feet
        are seen is then as far as the road there (TrackInfo.ground_m), not as far as the
        depth engine's median says, for its closing speed and its place; its nearest side
        keeps the depth map's shape. Feet only partly seen (RoadReading.partly_hidden) are
        read only by a track with no clean reading in its speed window; one that has gets
        the depth map's scaled to them.
        ``use_ground`` False: no ground plane is given, nor taken from a source that knows
        its camera's (edge.stream.steps.tracker_seeing): the depth engine's distances alone.
        ``fit_ground``: with no ``ground`` (and ``use_ground``), the road's plane is fitted to
        the depth map's road (``update``'s ``road_fit``; FittedGround, over its last 2 s),
        and a track's distances read from the road, or scaled to it, are read again over each
        frame's plane (``road_plane``: the latest, as camera_plane gives it)."""
        checks = {
            "min_iou": (min_iou, 0.0 < min_iou <= 1.0, "in (0, 1]"),
            "max_gap_s": (max_gap_s, max_gap_s >= 0, ">= 0"),
            "speed_window_s": (speed_window_s, speed_window_s > 0, "> 0"),
            "min_speed_samples": (min_speed_samples, min_speed_samples >= 2, ">= 2"),
            "min_closing_mps": (min_closing_mps, min_closing_mps > 0, "> 0"),
            "smoothing": (smoothing, 0.0 < smoothing <= 1.0, "in (0, 1]"),
            "hfov_deg": (hfov_deg, hfov_deg is None or 0.0 < hfov_deg < 180.0, "in (0, 180) degrees"),
            "path_half_width_m": (path_half_width_m, path_half_width_m >= 0, ">= 0"),
            "mount_offset_m": (mount_offset_m, math.isfinite(mount_offset_m), "a finite number of metres"),
            "mount_ahead_m": (mount_ahead_m, math.isfinite(mount_ahead_m), "a finite number of metres"),
            "min_lateral_mps": (min_lateral_mps, min_lateral_mps > 0, "> 0"),
            "cut_in_confidence": (cut_in_confidence, 0 <= cut_in_confidence < 1, "in [0, 1)"),
            "warn_within_s": (warn_within_s, warn_within_s > 0, "> 0 seconds"),
            "ground": (ground, ground is None or isinstance(ground, GroundPlane), "a GroundPlane or None"),
        }
        if ground is not None and not use_ground:
            checks["ground"] = (ground, False, "None with use_ground False")
        if isinstance(ground, GroundPlane) and ground.focal is None and hfov_deg is None:
            checks["ground"] = (ground, False, "given its focal length, or with hfov_deg (square pixels)")
        for name, (value, ok, expected) in checks.items():
            if not ok:
                raise ConfigError(f"ObjectTracker {name} must be {expected}, got {value!r}")
        try:
            facing = check_facing(facing)
        except ConfigError as exc:
            raise ConfigError(f"ObjectTracker {exc}") from None
        self.min_iou = min_iou
        self.max_gap_s = max_gap_s
        self.speed_window_s = speed_window_s
        self.min_speed_samples = min_speed_samples
        self.min_closing_mps = min_closing_mps
        self.smoothing = smoothing
        self.hfov_deg = hfov_deg
        self.path_half_width_m = path_half_width_m
        self.mount_offset_m = mount_offset_m
        self.mount_ahead_m = mount_ahead_m
        self.facing = facing
        self.min_lateral_mps = min_lateral_mps
        self.cut_in_confidence = cut_in_confidence
        self.warn_within_s = warn_within_s
        self.ground = ground
        self.use_ground = use_ground
        self.fit_ground = fit_ground
        self._fitted = FittedGround()
        self.road_plane: GroundPlane | None = None
        # the road's plane the last frame's distances were read over, its focal length set
        # (the given one, or the one fitted to the depth map); None where there was none
        self.frame_plane: GroundPlane | None = None
        self._tracks: list[_Track] = []
        self._numbers = itertools.count(1)
        self._scene: Hashable | None = None
        self._last_s: float | None = None

    def fresh(self, *, hfov_deg: float | None = None, ground: GroundPlane | None = None) -> ObjectTracker:
        """A tracker of the same settings with no tracks (for another camera); ``hfov_deg``
        and ``ground``: its field of view and ground plane, where not this one's."""
        return ObjectTracker(
            min_iou=self.min_iou,
            max_gap_s=self.max_gap_s,
            speed_window_s=self.speed_window_s,
            min_speed_samples=self.min_speed_samples,
            min_closing_mps=self.min_closing_mps,
            smoothing=self.smoothing,
            hfov_deg=self.hfov_deg if hfov_deg is None else hfov_deg,
            path_half_width_m=self.path_half_width_m,
            mount_offset_m=self.mount_offset_m,
            mount_ahead_m=self.mount_ahead_m,
            facing=self.facing,
            min_lateral_mps=self.min_lateral_mps,
            cut_in_confidence=self.cut_in_confidence,
            warn_within_s=self.warn_within_s,
            ground=self.ground if ground is None else ground,
            use_ground=self.use_ground,
            fit_ground=self.fit_ground,
        )

    @property
    def active(self) -> int:
        """Tracks alive: seen within the last ``max_gap_s``."""
        return len(self._tracks)

    @property
    def fits_ground(self) -> bool:
        """Whether ``update`` reads distances from the road fitted to the depth map (no ground
        plane given, and neither use_ground nor fit_ground turned off): it wants a road_fit."""
        return self.ground is None and self.use_ground and self.fit_ground

    def reset(self) -> None:
        """Forget every track (their numbers go on: a new scene's objects are new ones), and
        the road's fitted plane."""
        self._tracks = []
        self._last_s = None
        self._fitted.reset()
        self.road_plane = None
        self.frame_plane = None

    def update(
        self,
        instances: Sequence[Instance],
        distances: Sequence[tuple[float, float] | None] | None,
        t_s: float,
        *,
        scene: Hashable | None = None,
        size: tuple[int, int] | None = None,
        road_fit: RoadFit | None = None,
    ) -> list[TrackInfo]:
        """The tracks of one frame's ``instances`` (in their order), seen at stream time
        ``t_s``; ``distances`` as object_distances gives them (None: no depth); ``size``: the
        (height, width) of the boxes' picture, so that a box the picture's edge cuts does not
        pass for one that grows or shrinks (None: no box is taken as cut). A frame of another
        ``scene`` than the last (a sequence, a file played again) or earlier starts afresh.
        ``road_fit``: the road's plane in this frame's depth map (fit_road), for a tracker that
        ``fits_ground``."""
        if distances is not None and len(distances) != len(instances):
            raise ValueError(f"{len(distances)} distances for {len(instances)} instances")
        if scene != self._scene or (self._last_s is not None and t_s < self._last_s):
            self.reset()
            self._scene = scene
        self._last_s = t_s
        self._tracks = [tr for tr in self._tracks if t_s - tr.last_s <= self.max_gap_s]
        taken = self._associate(instances, t_s)
        hidden = hidden_sides(instances, size) if size is not None else [(False, False)] * len(instances)
        grounded: Sequence[RoadReading | None] = [None] * len(instances)
        plane = self._fitted.update(road_fit, t_s) if self.fits_ground else self.ground
        refits: tuple[GroundPlane, int] | None = None  # a fitted plane: readings are read again over it
        if plane is not None and size is not None:
            if self.fits_ground:
                self.road_plane = camera_plane(plane, self.hfov_deg, size)
            plane = plane.with_focal(self.hfov_deg or 0.0, size)
            grounded = road_readings(instances, plane, size)
            refits = (plane, size[0]) if self.fits_ground else None
        self.frame_plane = plane if size is not None else None
        infos = []
        for i, inst in enumerate(instances):
            box = np.asarray(inst.box, float)
            track = taken.get(i)
            if track is None:
                track = _Track(next(self._numbers), inst.train_id, box, np.zeros(4), t_s, t_s)
                self._tracks.append(track)
            else:
                self._follow(track, box, t_s)
            # the window's samples alone: a ratio older than it must not scale this distance
            for samples in (track.ranges, track.reads, track.sizes, track.bearings, track.scales):
                while samples and t_s - samples[0][0] > self.speed_window_s:
                    samples.popleft()
            depth = distances[i] if distances is not None else None
            if refits is not None:
                track.scales = rescaled(track.scales, *refits)
            ground_m = take_reading(grounded[i], depth, track.scales, t_s)
            distance = road_distance(depth, ground_m, [s.ratio for s in track.scales])
            if distance is not None:
                track.ranges.append((t_s, distance.distance_m))
                reading = grounded[i]
                row = reading.row if distance.source == "road" and reading else None
                scaled = depth[0] if distance.source == "scaled" and depth else None
                track.reads.append((t_s, row, scaled))
                if refits is not None:
                    track.ranges = reread(track.ranges, track.reads, track.scales, *refits)
            sized = box_size(box, t_s, size, hidden=any(hidden[i]))
            track.sizes.append(sized)
            info = self._info(track, distance, t_s, ground_m)
            if self.hfov_deg is not None and distance is not None and size is not None:
                where, gap = self._where(box, distance.distance_m, size[1])
                # a side of the picture, or a nearer thing, cuts the box: its middle is not its thing's
                if not sized[4]:
                    track.bearings.append((t_s, self._bearing(box, size[1])))
                # distances read from the road change as the thing moves, not as a depth map
                # wanders: their own rate, not the growth's, goes with their median (lateral_drift)
                closing = info.closing_mps if distance.source == "depth" else None
                lateral_mps, path_in_s = lateral_drift(
                    track.bearings,
                    track.ranges,
                    track.sizes,
                    closing_mps=closing,
                    lateral=where["lateral_m"],
                    gap=gap,
                    facing=self.facing,
                    window_s=self.speed_window_s,
                    min_samples=self.min_speed_samples,
                    min_lateral_mps=self.min_lateral_mps,
                    confidence=self.cut_in_confidence,
                )
                info = dataclasses.replace(info, **where, lateral_mps=lateral_mps, path_in_s=path_in_s)
            infos.append(info)
        if size is not None and any(i.range_from == "depth" and i.ttc_s is not None for i in infos):
            infos = behind_the_thing_ahead(infos, hiding_feet(instances, size[0]))
        return infos

    def _where(self, box: np.ndarray, distance: float, width: int) -> tuple[dict[str, Any], float | None]:
        """``lateral_m``, ``ahead_m`` and ``in_path`` of a box ``width`` pixels' picture shows
        at ``distance``: a pixel off the picture's middle column is tan(hfov / 2) / (width / 2)
        of the distance to the camera's right (a stretch or a pad scales the columns alike, so
        the picture's width is all it takes); then turned by the camera's facing, and the
        camera's own place on the vehicle added (beside its middle, along it). And how far its near side is
        from the path's edge (m; None for a side camera's, which has no path): the box's half-width
        lies across the camera's axis, so a corner camera's spans cos(yaw) of it across the vehicle."""
        across = self._bearing(box, width) * distance  # right of the camera's axis
        half = (
            (box[2] - box[0]) / 2 * math.tan(math.radians(self.hfov_deg or 0.0) / 2) / (width / 2) * distance
        )
        lateral, ahead = placed(self.facing, across, distance)
        lateral += self.mount_offset_m
        ahead += self.mount_ahead_m
        half *= abs(turn(self.facing)[0])
        gap = float(abs(lateral) - half - self.path_half_width_m) if path_side(self.facing) else None
        in_path = None if gap is None else gap <= 0
        return {"lateral_m": float(lateral), "ahead_m": float(ahead), "in_path": in_path}, gap

    def _bearing(self, box: np.ndarray, width: int) -> float:
        """tan of the angle between the camera's axis and the box's middle (right positive)."""
        return float(
            ((box[0] + box[2]) / 2 - width / 2)
            * math.tan(math.radians(self.hfov_deg or 0.0) / 2)
            / (width / 2)
        )

    def _associate(self, instances: Sequence[Instance], t_s: float) -> dict[int, _Track]:
        """Instance index -> the track it continues (boxes.match_boxes)."""
        if not self._tracks or not instances:
            return {}
        pairs = match_boxes(
            np.asarray([inst.box for inst in instances], float),
            [inst.train_id for inst in instances],
            np.stack([tr.predicted(t_s) for tr in self._tracks]),
            np.stack([tr.box for tr in self._tracks]),
            [tr.train_id for tr in self._tracks],
            self.min_iou,
        )
        return {i: self._tracks[k] for i, k in pairs.items()}

    def _follow(self, track: _Track, box: np.ndarray, t_s: float) -> None:
        dt = t_s - track.last_s
        if dt > 0:
            seen = (box - track.box) / dt
            a = 1.0 if track.frames == 1 else self.smoothing
            track.velocity = a * seen + (1 - a) * track.velocity
        track.box, track.last_s = box, t_s
        track.frames += 1

    def _info(self, track: _Track, distance: Range | None, t_s: float, ground_m: float | None) -> TrackInfo:
        closing = ttc = None
        if distance is not None and track.ranges:
            grown = growth_samples(track.sizes)
            growth = self._growth(grown)
            if grown is not None and growth is not None:
                rate, t_mid = growth
                # the rate is v / d halfway through the window, and so is the median distance
                closing = rate * statistics.median(d for _, d in track.ranges)
                if closing >= self.min_closing_mps and self._sure(grown, t_s - track.first_s, t_s - t_mid):
                    ttc = max(1.0 / rate - (t_s - t_mid), 0.0)  # from then to now, at v
            elif any(tb for *_, tb, _ in track.sizes) and any(lr for *_, lr in track.sizes):
                closing = closing_speed(
                    track.ranges, window_s=self.speed_window_s, min_samples=self.min_speed_samples
                )
                if closing is not None and closing >= self.min_closing_mps:
                    ttc = distance.distance_m / closing
        return TrackInfo(
            track.number,
            track.frames,
            t_s - track.first_s,
            closing,
            ttc,
            warn_within_s=self.warn_within_s,
            ground_m=ground_m,
            range_m=None if distance is None else distance.distance_m,
            range_from=None if distance is None else distance.source,
        )

    def _sure(self, grown: tuple[list[float], list[float]], age_s: float, since_mid_s: float) -> bool:
        """Whether a track ``age_s`` old whose growth is read from ``grown`` (growth_samples) may
        give a time to collision now: once it is half the speed window old, always; before,
        where the growth's interval (YOUNG_TTC_Z) puts the thing within twice ``warn_within_s``
        at its slowest, from the samples' median time (``since_mid_s`` ago) on."""
        if age_s >= self.speed_window_s / 2:
            return True
        bounds = slope_interval(*grown, z=YOUNG_TTC_Z)
        if bounds is None or bounds[0] <= 0:
            return False
        return 1.0 / bounds[0] - since_mid_s <= 2 * self.warn_within_s

    def _growth(self, grown: tuple[list[float], list[float]] | None) -> tuple[float, float] | None:
        """How fast the box grows, as a share of its size a second (the Theil–Sen slope of
        ``grown``, growth_samples: its log height, or width while the picture's top or bottom
        cut it; None while a side cuts it too, or without enough samples spanning enough
        time), and the time it stands for: the samples' median time."""
        if grown is None or len(grown[0]) < self.min_speed_samples:
            return None
        if grown[0][-1] - grown[0][0] < self.speed_window_s / 4:
            return None
        rate = theil_sen_slope(*grown)
        return None if rate is None else (rate, statistics.median(grown[0]))
