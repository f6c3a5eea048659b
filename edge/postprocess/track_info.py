"""What the tracker says of one instance's track (TrackInfo), and when it warns of it.

Kept apart from edge.postprocess.tracks, which works these out, for the readers of a
track: the overlay, the objects log, the viewer and the evaluation.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

# a thing that would reach the camera within this many seconds is warned of (outlined red,
# the warnings log), unless it is known to pass beside the path: ObjectTracker's default
TTC_WARN_S = 3.0


@dataclass(frozen=True)
class TrackInfo:
    """What one instance's track says of it: ``track`` (its number, from 1, for the run),
    ``frames`` (the frames it was seen in), ``age_s`` (since it was first seen),
    ``closing_mps`` (how fast its distance shrinks, m/s; negative: it draws away; None
    without depth, or until the track has enough frames) and ``ttc_s`` (seconds until
    it comes level with the camera at that speed; None unless it closes at the tracker's
    ``min_closing_mps``, and, while the track is under half the speed window old, unless its
    growth's interval brings it within twice ``warn_within_s``: tracks.YOUNG_TTC_Z)."""

    track: int
    frames: int
    age_s: float
    closing_mps: float | None
    ttc_s: float | None
    # with the camera's field of view (ObjectTracker's hfov_deg) and a distance: how far
    # right of the vehicle's middle its middle is and how far ahead of the camera (behind:
    # negative), metres, and whether it reaches into the path (None: a side camera's)
    lateral_m: float | None = None
    in_path: bool | None = None
    ahead_m: float | None = None
    # and over the speed window: how fast it moves right (m/s, left negative), and, beside
    # the path and moving towards it, in how many seconds it reaches it (a cut-in)
    lateral_mps: float | None = None
    path_in_s: float | None = None
    # the time to collision under which the tracker warns of a thing (its warn_within_s)
    warn_within_s: float = TTC_WARN_S
    # with the tracker's ground plane, the distance read from where the thing stands (m),
    # where its feet are seen
    ground_m: float | None = None
    # the distance its closing speed and place were worked out from (m) and what it was read
    # from: "road" (ground_m), "scaled" (its feet hidden: the depth map's, times its track's
    # recent road / depth ratios) or "depth" (the depth map's); None without a distance
    range_m: float | None = None
    range_from: str | None = None

    @property
    def warned(self) -> bool:
        """Whether the thing is warned of (outlined red, the warnings log, the viewer's
        marks): it would reach the camera within ``warn_within_s``, unless it is known to
        pass beside the path (``in_path`` False) and stay there (no ``path_in_s``, a
        cut-in, before that)."""
        ttc = self.ttc_s
        if ttc is None or ttc >= self.warn_within_s:
            return False
        cutting_in = self.path_in_s is not None and self.path_in_s <= ttc
        return self.in_path is not False or cutting_in

    def to_json(self) -> dict[str, float | int | bool | str | None]:
        out: dict[str, float | int | bool | str | None] = {
            "track": self.track,
            "track_frames": self.frames,
            "track_age_s": round(self.age_s, 3),
            "closing_mps": None if self.closing_mps is None else round(self.closing_mps, 2),
            "ttc_s": None if self.ttc_s is None else round(self.ttc_s, 2),
            "warned": self.warned,
        }
        if self.lateral_m is not None:
            out["lateral_m"] = round(self.lateral_m, 2)
            out["in_path"] = self.in_path
            out["lateral_mps"] = None if self.lateral_mps is None else round(self.lateral_mps, 2)
            out["path_in_s"] = None if self.path_in_s is None else round(self.path_in_s, 2)
        if self.ahead_m is not None:
            out["ahead_m"] = round(self.ahead_m, 2)
        if self.ground_m is not None:
            out["ground_m"] = round(self.ground_m, 2)
        if self.range_m is not None:
            out["range_m"] = round(self.range_m, 2)
            out["range_from"] = self.range_from
        return out


def behind_the_thing_ahead(infos: Sequence[TrackInfo], hiders: Sequence[tuple[int, ...]]) -> list[TrackInfo]:
    """``infos`` (one frame's, in its instances' order), where a thing whose distance is the
    depth map's alone stands behind a thing in the path (``hiders``: for each, the nearer
    things hiding its feet, ground.hiding_feet) is given no time to collision sooner than
    that thing's, and none where that thing has none: it cannot reach the camera before
    the thing in front of it does.

    The depth map's distance of a thing seen over the shoulder of the car ahead is the
    car's as much as its own (the tiny engine's: a person 46 m away read at 16 m), and its
    box grows as more of it shows; the thing it stands behind is the one to warn of."""
    out = list(infos)
    for i, info in enumerate(infos):
        if info.range_from != "depth" or info.ttc_s is None:
            continue
        ahead = [infos[j].ttc_s for j in hiders[i] if infos[j].in_path]
        if ahead:
            ttc = None if None in ahead else max(info.ttc_s, *(t for t in ahead if t is not None))
            out[i] = dataclasses.replace(info, ttc_s=ttc)
    return out
