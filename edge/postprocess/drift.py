"""How fast a tracked thing moves across the camera's axis, and whether it is cutting into
the path: from its track's bearings (where its box is), distances and box sizes
(edge.postprocess.tracks keeps them)."""

from __future__ import annotations

import functools
import statistics
from collections.abc import Sequence
from statistics import NormalDist

from edge.postprocess.boxes import growth_samples
from edge.postprocess.facing import Facing, moving_aside
from edge.postprocess.slopes import closing_interval, closing_speed, slope_interval

Samples = Sequence[tuple[float, float]]  # (t, value)
Sizes = Sequence[tuple[float, float, float, bool, bool]]  # (t, log height, log width, touches)


def lateral_drift(
    bearings: Samples,
    ranges: Samples,
    sizes: Sizes,
    *,
    closing_mps: float | None,
    lateral: float,
    gap: float | None,
    facing: Facing,
    window_s: float,
    min_samples: int,
    min_lateral_mps: float,
    confidence: float,
) -> tuple[float | None, float | None]:
    """``lateral_mps`` over the speed window (``window_s``, ``min_samples``) and, for a thing
    ``lateral`` m off the axis and ``gap`` m beside the path moving towards it at
    ``min_lateral_mps`` or more, ``path_in_s``: its gap over that speed. A thing at distance d
    and bearing tan b is tan b x d right of the axis, so it moves right at d x (tan b)' +
    tan b x d': the bearing's Theil–Sen slope (where the box is, which a depth engine's
    frame-to-frame wander does not move) times the window's median distance, plus the
    median bearing times the distance's rate (minus ``closing_mps``, read from the box's
    growth; None: the distances' own slope, which for distances read from the road agrees
    with their median where the growth times it need not). A camera ``facing`` a side sees
    things move across the vehicle at the distance's rate alone, a corner camera at both,
    turned by its yaw (facing.moving_aside). A cut-in is said only
    where the speed's intervals at ``confidence`` (drift_clear) do not hold zero."""
    turn = closing_speed(bearings, window_s=window_s, min_samples=min_samples)
    growth_closing = closing_mps is not None
    if closing_mps is None:
        closing_mps = closing_speed(ranges, window_s=window_s, min_samples=min_samples)
    if turn is None or closing_mps is None or not ranges:
        return None, None
    distance = statistics.median(d for _, d in ranges)
    bearing = statistics.median(b for _, b in bearings)
    across = -turn * distance - bearing * closing_mps  # right of the camera's axis, m/s
    speed = moving_aside(facing, across, closing_mps)
    towards = gap is not None and gap > 0 and speed * lateral < 0 and abs(speed) >= min_lateral_mps
    if towards and confidence > 0:
        towards = drift_clear(
            bearings,
            ranges,
            sizes,
            growth_closing=growth_closing,
            distance=distance,
            bearing=bearing,
            speed=speed,
            facing=facing,
            window_s=window_s,
            min_samples=min_samples,
            confidence=confidence,
        )
    return speed, (gap / abs(speed) if towards and gap is not None else None)


def drift_clear(
    bearings: Samples,
    ranges: Samples,
    sizes: Sizes,
    *,
    growth_closing: bool,
    distance: float,
    bearing: float,
    speed: float,
    facing: Facing = "front",
    window_s: float,
    min_samples: int,
    confidence: float,
) -> bool:
    """Whether lateral_drift's ``speed`` aside on the vehicle (across the camera's axis, and
    for a corner camera's ``facing`` its closing speed's part too) keeps to its side of zero
    over the intervals (slope_interval at ``confidence``) of its bearing's rate and of the
    closing speed: the box's growth times ``distance``, and where the speed took the
    distances' own slope (read from the road, or scaled to it), theirs as well: a feet row's
    step moves them as the box's growth does not. On the ground trial's drives the others
    said to cut in went 47 -> 25 (road and fitted arms, 256x512 and 128x256), never due
    72 -> 67, true cut-ins warned of 265 -> 261."""
    z = NormalDist().inv_cdf((1 + confidence) / 2)
    interval = functools.partial(closing_interval, window_s=window_s, min_samples=min_samples, z=z)
    turns = interval(bearings)
    grown = growth_samples(sizes)
    rates = None if grown is None else slope_interval(*grown, z=z)
    closings: list[tuple[float, float] | None] = []
    if rates is not None:
        closings.append((rates[0] * distance, rates[1] * distance))
    if not growth_closing or not closings:
        closings.append(interval(ranges))
    if turns is None:
        return False
    for bounds in closings:
        if bounds is None:
            return False
        corners = [
            moving_aside(facing, -turn * distance - bearing * closing, closing)
            for turn in turns
            for closing in bounds
        ]
        if min(corners) * speed <= 0 or max(corners) * speed <= 0:
            return False
    return True
