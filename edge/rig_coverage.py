"""How much of the way round the vehicle a rig's cameras see, from each one's facing and
field of view (``edge rig`` says it before any camera is opened): the bearings no camera
sees, and those two cameras share (where ``?lines=fused`` makes one thing of what both see).

Bearings are degrees left of straight ahead (as --facing's yaw: ahead 0, left 90, behind
180, right -90), each camera's view the arc of its field of view about its facing. There the
cameras' places on the vehicle are left out (a camera's view is measured from itself), which
holds far from the vehicle; near it, a gap or an overlap is wider or narrower by the cameras'
spacing, so ``near`` reads the bearings of a ring round the vehicle's reference point each
camera sees from where it is mounted (a side camera on the mirror sees nothing straight
ahead at 3 m, however wide it sees).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from edge.postprocess.facing import Facing, yaw_deg

_TURN = 360.0


def _arc(facing: Facing, hfov_deg: float) -> tuple[float, float]:
    """The camera's view as [start, start + width) degrees, start in [0, 360)."""
    return (yaw_deg(facing) - hfov_deg / 2) % _TURN, min(hfov_deg, _TURN)


def _pieces(start: float, width: float) -> list[tuple[float, float]]:
    """An arc as one or two intervals within [0, 360)."""
    end = start + width
    return [(start, end)] if end <= _TURN else [(start, _TURN), (0.0, end - _TURN)]


def _union(intervals: list[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: list[tuple[float, float]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _signed(angle: float) -> float:
    """A bearing in (-180, 180]."""
    angle %= _TURN
    return angle - _TURN if angle > 180.0 else angle


def _as_arcs(intervals: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Intervals within [0, 360) as (from, to) signed bearings, the one across straight ahead
    (0 and 360) joined."""
    if len(intervals) > 1 and intervals[0][0] == 0.0 and intervals[-1][1] == _TURN:
        intervals = [(intervals[-1][0], intervals[0][1] + _TURN), *intervals[1:-1]]
    return [(round(_signed(s), 1), round(_signed(e), 1)) for s, e in intervals]


def _overlap(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Degrees two arcs share."""
    return sum(max(0.0, min(e1, e2) - max(s1, s2)) for s1, e1 in _pieces(*a) for s2, e2 in _pieces(*b))


def coverage(views: Mapping[str, tuple[Facing, float | None]]) -> dict[str, Any]:
    """What the cameras ``views`` (name -> (facing, horizontal field of view in degrees, or
    None where unknown)) see round the vehicle: ``seen_deg`` of 360, ``unseen`` (from, to)
    bearings no camera sees, ``shared`` [a, b, degrees] for each two cameras whose views
    overlap, and ``unknown``, the cameras of no known field of view (not counted)."""
    arcs = {name: _arc(facing, hfov) for name, (facing, hfov) in views.items() if hfov is not None}
    unknown = [name for name, (_, hfov) in views.items() if hfov is None]
    if not arcs:
        return {"seen_deg": 0.0, "unseen": [[-180.0, 180.0]], "shared": [], "unknown": unknown}
    seen = _union([piece for arc in arcs.values() for piece in _pieces(*arc)])
    covered = sum(end - start for start, end in seen)
    gaps, at = [], 0.0
    for start, end in seen:
        if start > at:
            gaps.append((at, start))
        at = end
    if at < _TURN:
        gaps.append((at, _TURN))
    names = list(arcs)
    shared = [
        [a, b, round(degrees, 1)]
        for i, a in enumerate(names)
        for b in names[i + 1 :]
        if (degrees := _overlap(arcs[a], arcs[b])) > 0
    ]
    return {
        "seen_deg": round(covered, 1),
        "unseen": [list(arc) for arc in _as_arcs(gaps)] if covered < _TURN else [],
        "shared": shared,
        "unknown": unknown,
    }


NEAR_STEP_DEG = 0.5  # the ring is read at the middle of each step of bearing
NEAR_M = 5.0  # edge rig's ring: a thing in the next lane, a person beside the car


def near(
    views: Mapping[str, tuple[Facing, float | None]],
    places: Mapping[str, tuple[float, float]],
    range_m: float,
) -> dict[str, Any]:
    """What the cameras ``views`` (as coverage's) see of the ring ``range_m`` round the
    vehicle's reference point, each from its place in ``places`` (name -> (metres right of the
    vehicle's middle, metres ahead of the reference point); 0, 0 where not given):
    ``range_m``, ``seen_deg`` of 360 and ``unseen`` (from, to) bearings, to NEAR_STEP_DEG."""
    import numpy as np

    steps = round(_TURN / NEAR_STEP_DEG)
    bearing = np.radians((np.arange(steps) + 0.5) * NEAR_STEP_DEG)
    ahead, left = range_m * np.cos(bearing), range_m * np.sin(bearing)
    seen = np.zeros(steps, dtype=bool)
    for name, (facing, hfov) in views.items():
        if hfov is None:
            continue
        lateral_m, ahead_m = places.get(name, (0.0, 0.0))
        # the ring's bearing from the camera against where it looks: within half its view
        from_camera = np.degrees(np.arctan2(left + lateral_m, ahead - ahead_m))
        off = (from_camera - yaw_deg(facing) + 180.0) % _TURN - 180.0
        seen |= np.abs(off) <= hfov / 2
    cells = [(i * NEAR_STEP_DEG, (i + 1) * NEAR_STEP_DEG) for i in np.flatnonzero(~seen).tolist()]
    gaps = _union(cells)
    unseen = [[-180.0, 180.0]] if gaps == [(0.0, _TURN)] else [list(arc) for arc in _as_arcs(gaps)]
    return {"range_m": range_m, "seen_deg": round(float(seen.sum()) * NEAR_STEP_DEG, 1), "unseen": unseen}


def _side(bearing: float) -> str:
    """A bearing's way from the vehicle, in words."""
    names = ("ahead", "front-left", "left", "rear-left", "behind", "rear-right", "right", "front-right")
    return names[math.floor(((bearing % _TURN) + 22.5) / 45.0) % 8]


def rig_views(args: Any) -> dict[str, tuple[Facing, float | None]]:
    """Each camera's facing and field of view of edge run's ``args`` (a rig's, taken in): its
    --hfov, else its lens file's (one that cannot be read: unknown, as edge rig says why)."""
    from edge.cli_tracking import facings, fields_of_view, lens_files
    from edge.errors import EdgeError
    from edge.stream.undistort import read_calibration

    turned, views, lenses = facings(args), fields_of_view(args), lens_files(args)
    out: dict[str, tuple[Facing, float | None]] = {}
    for name, _ in args.camera:
        hfov, lens = views.get(name), lenses.get(name)
        if hfov is None and lens:
            try:
                hfov = read_calibration(lens).hfov_deg
            except EdgeError:
                hfov = None
        out[name] = (turned[name], hfov)
    return out


def rig_places(args: Any) -> dict[str, tuple[float, float]]:
    """Each camera's place on the vehicle of edge run's ``args`` (a rig's, taken in): metres
    right of its middle (--mount-offset) and ahead of its reference point (--mount-ahead)."""
    from edge.cli_tracking import mount_aheads, mount_offsets

    offsets, aheads = mount_offsets(args), mount_aheads(args)
    return {name: (offsets[name], aheads[name]) for name, _ in args.camera}


def _unseen_lines(unseen: list[list[float]], where: str) -> list[str]:
    lines = []
    for start, end in unseen:
        middle = start + ((end - start) % _TURN) / 2
        way = "all round" if end - start >= _TURN else _side(middle)  # the whole ring has no middle
        lines.append(f"  not seen{where}: {start:g} to {end:g} degrees ({way})")
    return lines


def coverage_lines(said: dict[str, Any]) -> list[str]:
    """coverage's reading for people (with ``near``'s, where ``said`` holds it)."""
    lines = [f"coverage: the cameras see {said['seen_deg']:g} of 360 degrees round the vehicle"]
    lines += _unseen_lines(said["unseen"], "")
    for a, b, degrees in said["shared"]:
        lines.append(f"  {a} and {b} share {degrees:g} degrees (what both see there is fused as one)")
    if said["unknown"]:
        lines.append(f"  not counted (no field of view: hfov or a lens file): {', '.join(said['unknown'])}")
    ring = said.get("near")
    if ring is not None:
        at = f" at {ring['range_m']:g} m"
        lines.append(
            f"  {ring['range_m']:g} m from the vehicle's reference point, each camera from its place: "
            f"{ring['seen_deg']:g} of 360 degrees seen"
        )
        lines += _unseen_lines(ring["unseen"], at)
    return lines
