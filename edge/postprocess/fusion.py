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
any warns. A thing a camera does not place (no field of view) is its own. Fusion numbers
the things of one frame after another, a thing keeping its number as it passes from one
camera's view into another's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

GATE_MIN_M = 1.5
GATE_FRACTION = 0.15
# a class of this many placed things or more is paired by numpy at once; fewer, one by one
# (numpy's own cost a call is more than theirs: benchmarks/results/fusion_cpu.json)
VECTOR_FROM = 24


def _placed(obj: Mapping[str, Any]) -> bool:
    return obj.get("lateral_m") is not None and obj.get("ahead_m") is not None


def _from_vehicle(obj: Mapping[str, Any]) -> float:
    return math.hypot(obj["lateral_m"], obj["ahead_m"])


def gate_m(a: Mapping[str, Any], b: Mapping[str, Any], minimum_m: float = GATE_MIN_M) -> float:
    """How far apart two cameras may place one thing (the farther of the two's distance):
    ``minimum_m`` at least."""
    return max(minimum_m, GATE_FRACTION * max(_from_vehicle(a), _from_vehicle(b)))


def _pairs(
    seen: Mapping[str, Sequence[Mapping[str, Any]]],
    keys: list[tuple[str, int]],
    order: Mapping[str, int],
    gate_min_m: float,
) -> list[tuple[float, tuple[str, int], tuple[str, int]]]:
    """Each pair of two cameras' placed things of one class within the gate of each other:
    (how far apart, one's key, the other's), a class at a time, many at once (a car park seen
    by four cameras of thirty things each is seven thousand pairs a frame)."""
    import numpy as np

    by_class: dict[object, list[tuple[str, int]]] = {}
    for key in keys:
        thing = seen[key[0]][key[1]]
        if _placed(thing):
            by_class.setdefault(thing.get("class"), []).append(key)
    pairs = []
    for members in by_class.values():
        if len(members) < 2:
            continue
        if len(members) < VECTOR_FROM:
            pairs += _pairs_of(seen, members, gate_min_m)
            continue
        things = [seen[c][i] for c, i in members]
        xy = np.array([(t["lateral_m"], t["ahead_m"]) for t in things], dtype=np.float64)
        camera = np.array([order[c] for c, _ in members])
        far = np.hypot(xy[:, 0], xy[:, 1])
        apart = np.hypot(xy[:, None, 0] - xy[None, :, 0], xy[:, None, 1] - xy[None, :, 1])
        gate = np.maximum(gate_min_m, GATE_FRACTION * np.maximum(far[:, None], far[None, :]))
        near = (apart <= gate) & (camera[:, None] != camera[None, :])
        for a, b in zip(*np.nonzero(np.triu(near, k=1)), strict=True):
            pairs.append((float(apart[a, b]), members[a], members[b]))
    return pairs


def _pairs_of(
    seen: Mapping[str, Sequence[Mapping[str, Any]]], members: list[tuple[str, int]], gate_min_m: float
) -> list[tuple[float, tuple[str, int], tuple[str, int]]]:
    """_pairs of one class's few placed things, one pair at a time."""
    pairs = []
    for a, (ca, ia) in enumerate(members):
        x = seen[ca][ia]
        for cb, ib in members[a + 1 :]:
            y = seen[cb][ib]
            if ca != cb:
                apart = math.hypot(x["lateral_m"] - y["lateral_m"], x["ahead_m"] - y["ahead_m"])
                if apart <= gate_m(x, y, gate_min_m):
                    pairs.append((apart, (ca, ia), (cb, ib)))
    return pairs


def pairs_reference(
    seen: Mapping[str, Sequence[Mapping[str, Any]]], gate_min_m: float = GATE_MIN_M
) -> list[tuple[float, tuple[str, int], tuple[str, int]]]:
    """_pairs thing by thing, as the gate says it (for the tests, and the benchmark's ratio)."""
    keys = [(name, i) for name, things in seen.items() for i in range(len(things))]
    pairs = []
    for a, (ca, ia) in enumerate(keys):
        for cb, ib in keys[a + 1 :]:
            x, y = seen[ca][ia], seen[cb][ib]
            if ca == cb or x.get("class") != y.get("class") or not (_placed(x) and _placed(y)):
                continue
            apart = math.hypot(x["lateral_m"] - y["lateral_m"], x["ahead_m"] - y["ahead_m"])
            if apart <= gate_m(x, y, gate_min_m):
                pairs.append((apart, (ca, ia), (cb, ib)))
    return pairs


def groups(
    seen: Mapping[str, Sequence[Mapping[str, Any]]], gate_min_m: float = GATE_MIN_M
) -> list[list[tuple[str, int]]]:
    """``seen`` (each camera's things by name) as the things around the vehicle: each a list
    of (camera, index) of the cameras' things that are it, in ``seen``'s camera order (two
    cameras' things within ``gate_min_m``, or the gate's fraction of their distance, one)."""
    order = {name: n for n, name in enumerate(seen)}
    keys = [(name, i) for name, things in seen.items() for i in range(len(things))]
    group_of: dict[tuple[str, int], int] = {key: n for n, key in enumerate(keys)}
    members: dict[int, list[tuple[str, int]]] = {n: [key] for n, key in enumerate(keys)}
    for _, ka, kb in sorted(_pairs(seen, keys, order, gate_min_m)):
        ga, gb = group_of[ka], group_of[kb]
        if ga == gb or {c for c, _ in members[ga]} & {c for c, _ in members[gb]}:
            continue  # one already, or a camera would give the thing two of its own
        for key in members[gb]:
            group_of[key] = ga
        members[ga] += members.pop(gb)
    return [sorted(m, key=lambda key: (order[key[0]], key[1])) for m in members.values()]


def fuse(
    seen: Mapping[str, Sequence[Mapping[str, Any]]], gate_min_m: float = GATE_MIN_M
) -> list[dict[str, Any]]:
    """The things around the vehicle of each camera's things in ``seen`` (by name, as the
    objects lines give them; grouped as groups(``gate_min_m``) says), nearest the vehicle
    first (those no camera places last): each with ``class``, ``score`` (the highest), its
    place (``lateral_m``, ``ahead_m``, ``from_vehicle_m``; None where unplaced), ``in_path``,
    ``ttc_s``, ``warned``, and ``seen_by``: each camera's thing (camera, track, place, range
    from that camera)."""
    out = []
    for members in groups(seen, gate_min_m):
        things = [(camera, seen[camera][i]) for camera, i in members]
        placed = [(camera, t) for camera, t in things if _placed(t)]
        # the nearest camera's reading: that camera's range to it, where it has one
        _, best = min(
            placed, key=lambda ct: ct[1].get("range_m") or _from_vehicle(ct[1]), default=(None, None)
        )
        paths = [t.get("in_path") for _, t in things if t.get("in_path") is not None]
        ttcs = [t["ttc_s"] for _, t in things if t.get("ttc_s") is not None]
        out.append(
            {
                "class": things[0][1].get("class"),
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


class Fusion:
    """fuse() of one frame after another (each camera's newest things each time), each thing
    numbered from 1 for the run: a thing keeps its number while any camera that sees it keeps
    its track, so one passing from a camera's view into another's, where both see it at once,
    keeps it. Where two things claim one number (what was one thing is two), the nearer keeps
    it. A thing no camera tracks gets a new number each frame."""

    def __init__(self, *, gate_min_m: float = GATE_MIN_M) -> None:
        """``gate_min_m``: the least distance apart two cameras' things may be and be one (fuse's)."""
        self.gate_min_m = gate_min_m
        self._numbers: dict[tuple[str, int], int] = {}  # (camera, track) -> its thing's number
        self._next = 1

    def update(self, seen: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[dict[str, Any]]:
        """fuse(``seen``), each thing with its ``id`` first."""
        numbered: list[dict[str, Any]] = []
        taken: set[int] = set()
        numbers: dict[tuple[str, int], int] = {}
        for thing in fuse(seen, self.gate_min_m):
            keys = [(s["camera"], s["track"]) for s in thing["seen_by"] if s["track"] is not None]
            known = sorted({self._numbers[key] for key in keys if key in self._numbers} - taken)
            if known:
                number = known[0]  # the oldest of its numbers
            else:
                number, self._next = self._next, self._next + 1
            taken.add(number)
            numbers.update(dict.fromkeys(keys, number))
            numbered.append({"id": number, **thing})
        self._numbers = numbers
        return numbered
