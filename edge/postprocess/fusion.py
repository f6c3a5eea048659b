"""The things around the vehicle, of every camera at once: a car that the front camera and a
corner camera both see is one thing, not two.

Each camera places its things on the vehicle (``lateral_m``, ``ahead_m``: its facing and
mounting taken in, edge.postprocess.tracks). Things of one class that two cameras place
within a gate of each other are one: the gate is GATE_MIN_M, or GATE_FRACTION of the
thing's distance from the vehicle where that is more (a monocular camera's distance is
read to a few percent, and its error grows with it). Pairs are taken nearest first, and a
thing holds at most one of each camera's (two things one camera tells apart stay two). It
is placed as the camera nearest to it places it (the nearest reading is the best); it is
in the path if any camera says so, its time to collision the least any gives, warned of if
any warns. A thing a camera does not place (no field of view) is its own.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

GATE_MIN_M = 1.5
GATE_FRACTION = 0.15


def _placed(obj: Mapping[str, Any]) -> bool:
    return obj.get("lateral_m") is not None and obj.get("ahead_m") is not None


def _from_vehicle(obj: Mapping[str, Any]) -> float:
    return math.hypot(obj["lateral_m"], obj["ahead_m"])


def gate_m(a: Mapping[str, Any], b: Mapping[str, Any]) -> float:
    """How far apart two cameras may place one thing (the farther of the two's distance)."""
    return max(GATE_MIN_M, GATE_FRACTION * max(_from_vehicle(a), _from_vehicle(b)))


def groups(seen: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[list[tuple[str, int]]]:
    """``seen`` (each camera's things by name) as the things around the vehicle: each a list
    of (camera, index) of the cameras' things that are it, in ``seen``'s camera order."""
    order = {name: n for n, name in enumerate(seen)}
    keys = [(name, i) for name, things in seen.items() for i in range(len(things))]
    group_of: dict[tuple[str, int], int] = {key: n for n, key in enumerate(keys)}
    members: dict[int, list[tuple[str, int]]] = {n: [key] for n, key in enumerate(keys)}
    pairs = []
    for a, (ca, ia) in enumerate(keys):
        for cb, ib in keys[a + 1 :]:
            x, y = seen[ca][ia], seen[cb][ib]
            if ca == cb or x.get("class") != y.get("class") or not (_placed(x) and _placed(y)):
                continue
            apart = math.hypot(x["lateral_m"] - y["lateral_m"], x["ahead_m"] - y["ahead_m"])
            if apart <= gate_m(x, y):
                pairs.append((apart, (ca, ia), (cb, ib)))
    for _, ka, kb in sorted(pairs):
        ga, gb = group_of[ka], group_of[kb]
        if ga == gb or {c for c, _ in members[ga]} & {c for c, _ in members[gb]}:
            continue  # one already, or a camera would give the thing two of its own
        for key in members[gb]:
            group_of[key] = ga
        members[ga] += members.pop(gb)
    return [sorted(m, key=lambda key: (order[key[0]], key[1])) for m in members.values()]


def fuse(seen: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """The things around the vehicle of each camera's things in ``seen`` (by name, as the
    objects lines give them), nearest the vehicle first (those no camera places last): each
    with ``id`` (``camera:track`` of its first camera's in ``seen``'s order), ``class``,
    ``score`` (the highest), its place (``lateral_m``, ``ahead_m``, ``from_vehicle_m``; None
    where unplaced), ``in_path``, ``ttc_s``, ``warned``, and ``seen_by``: each camera's
    thing (camera, track, place, range from that camera)."""
    out = []
    for members in groups(seen):
        things = [(camera, seen[camera][i]) for camera, i in members]
        placed = [(camera, t) for camera, t in things if _placed(t)]
        # the nearest camera's reading: that camera's range to it, where it has one
        _, best = min(
            placed, key=lambda ct: ct[1].get("range_m") or _from_vehicle(ct[1]), default=(None, None)
        )
        paths = [t.get("in_path") for _, t in things if t.get("in_path") is not None]
        ttcs = [t["ttc_s"] for _, t in things if t.get("ttc_s") is not None]
        first_camera, first = things[0]
        out.append(
            {
                "id": f"{first_camera}:{first['id'] if first.get('track') is None else first['track']}",
                "class": first.get("class"),
                "score": max(float(t.get("score", 0.0)) for _, t in things),
                "lateral_m": None if best is None else best["lateral_m"],
                "ahead_m": None if best is None else best["ahead_m"],
                "from_vehicle_m": None if best is None else round(_from_vehicle(best), 2),
                "in_path": any(paths) if paths else None,
                "ttc_s": min(ttcs) if ttcs else None,
                "warned": any(bool(t.get("warned")) for _, t in things),
                "seen_by": [
                    {
                        "camera": camera,
                        "track": t.get("track"),
                        "lateral_m": t.get("lateral_m"),
                        "ahead_m": t.get("ahead_m"),
                        "range_m": t.get("range_m"),
                    }
                    for camera, t in things
                ],
            }
        )
    return sorted(out, key=lambda t: (t["from_vehicle_m"] is None, t["from_vehicle_m"] or 0.0))
