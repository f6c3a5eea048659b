"""The things around the vehicle of every camera at once (edge.postprocess.fusion): golden
groupings of things placed by hand."""

from __future__ import annotations

import math
from typing import Any

import pytest

from edge.postprocess.fusion import GATE_FRACTION, GATE_MIN_M, fuse, gate_m, groups


def thing(cls: str, lateral: float | None, ahead: float | None, *, track: int, **more: Any) -> dict[str, Any]:
    placed = {} if lateral is None else {"lateral_m": lateral, "ahead_m": ahead, "in_path": None}
    return {"id": 26000 + track, "class": cls, "score": 0.8, "track": track, **placed, **more}


def test_a_car_two_cameras_see_is_one_thing_placed_by_the_nearer() -> None:
    """The front camera places a car 20.0 m ahead, 3.0 m left; the front-left corner camera,
    nearer to it, 19.4 m ahead and 3.5 m left (0.78 m apart, within 1.5 m): one car, placed
    as the corner camera places it, in the path as the front camera says, its time to
    collision the lesser, and each camera's reading kept."""
    seen = {
        "front": [thing("car", -3.0, 20.0, track=4, range_m=20.2, in_path=True, ttc_s=4.0, score=0.7)],
        "front-left": [thing("car", -3.5, 19.4, track=9, range_m=18.0, ttc_s=3.5, warned=True)],
    }
    (car,) = fuse(seen)
    assert "id" not in car and car["class"] == "car" and car["score"] == 0.8
    assert (car["lateral_m"], car["ahead_m"]) == (-3.5, 19.4)
    assert car["from_vehicle_m"] == pytest.approx(19.71, abs=0.005)
    assert (car["in_path"], car["ttc_s"], car["warned"]) == (True, 3.5, True)
    assert [(s["camera"], s["track"], s["range_m"]) for s in car["seen_by"]] == [
        ("front", 4, 20.2),
        ("front-left", 9, 18.0),
    ]


@pytest.mark.parametrize(
    ("other", "together"),
    [
        (thing("car", -1.0, 6.4, track=2), True),  # 1.4 m apart, under the 1.5 m gate
        (thing("car", -1.0, 6.6, track=2), False),  # 1.6 m: two cars
        (thing("truck", -1.0, 5.0, track=2), False),  # another class where the car is
        (thing("car", None, None, track=2), False),  # not placed: its own
    ],
)
def test_the_gate_and_the_class_decide(other: dict[str, Any], together: bool) -> None:
    seen = {"a": [thing("car", -1.0, 5.0, track=1)], "b": [other]}
    assert (len(groups(seen)) == 1) is together


def test_the_gate_grows_with_distance() -> None:
    """15% of the farther reading's distance from the vehicle, 1.5 m at least: things 60 m
    out may be read 9 m apart and be one; 2 m apart 5 m out, not."""
    near, far = thing("car", 0.0, 5.0, track=1), thing("car", 0.0, 60.0, track=1)
    assert gate_m(near, near) == GATE_MIN_M and gate_m(far, far) == pytest.approx(GATE_FRACTION * 60.0)
    assert len(groups({"a": [far], "b": [thing("car", 0.0, 68.9, track=2)]})) == 1
    assert len(groups({"a": [near], "b": [thing("car", 0.0, 7.0, track=2)]})) == 2


def test_one_cameras_things_stay_apart_and_the_nearest_pairs_first() -> None:
    """Two cars one camera tells apart, 1 m from each other, stay two though another camera's
    car lies within the gate of both: it joins the nearer. The things come nearest the
    vehicle first, those no camera places last."""
    seen = {
        "a": [thing("car", 0.0, 10.0, track=1), thing("car", 1.0, 10.0, track=2)],
        "b": [thing("car", 0.8, 10.0, track=7), thing("person", None, None, track=8)],
        "c": [thing("bicycle", 0.0, 3.0, track=1)],
    }
    assert sorted(groups(seen)) == [[("a", 0)], [("a", 1), ("b", 0)], [("b", 1)], [("c", 0)]]
    fused = fuse(seen)
    firsts = [(t["seen_by"][0]["camera"], t["seen_by"][0]["track"]) for t in fused]
    assert firsts == [("c", 1), ("a", 1), ("a", 2), ("b", 8)]
    assert fused[-1]["lateral_m"] is None and fused[-1]["from_vehicle_m"] is None
    assert fused[-1]["seen_by"] == [
        {"camera": "b", "track": 8, "lateral_m": None, "ahead_m": None, "range_m": None}
    ]


def test_a_thing_never_takes_two_of_one_cameras() -> None:
    """a's car and c's car are each within the gate of b's, and of each other's: the nearest
    pair (a, b) goes first; c joins them (it is a third camera); a second car of c's, as near,
    cannot."""
    seen = {
        "a": [thing("car", 0.0, 10.0, track=1)],
        "b": [thing("car", 0.2, 10.0, track=1)],
        "c": [thing("car", 0.5, 10.0, track=1), thing("car", -0.5, 10.0, track=2)],
    }
    assert sorted(groups(seen)) == [[("a", 0), ("b", 0), ("c", 0)], [("c", 1)]]
    assert fuse({}) == [] and fuse({"a": []}) == []


def test_the_pairs_are_those_the_gate_gives_thing_by_thing() -> None:
    """The pairs worked out a class at a time are those pairs_reference finds one by one,
    on random rigs of 2 to 5 cameras of up to 40 things, gates' edges included."""
    import random

    from edge.postprocess.fusion import _pairs, pairs_reference

    rng = random.Random(7)
    for _ in range(60):
        seen = {
            f"c{k}": [
                thing(
                    rng.choice(("car", "person", "truck")),
                    None if rng.random() < 0.1 else round(rng.uniform(-15, 15), 1),
                    round(rng.uniform(-30, 50), 1),
                    track=i + 1,
                )
                for i in range(rng.randint(0, 40))
            ]
            for k in range(rng.randint(2, 5))
        }
        keys = [(name, i) for name, things in seen.items() for i in range(len(things))]
        order = {name: n for n, name in enumerate(seen)}
        for gate in (1.5, 4.0):  # the default's least gate, and a wider one (a sink's ?gate=4)
            got = sorted((round(d, 9), a, b) for d, a, b in _pairs(seen, keys, order, gate))
            assert got == sorted((round(d, 9), a, b) for d, a, b in pairs_reference(seen, gate))


def test_every_cameras_thing_is_in_one_thing_of_its_class_at_most_once_a_camera() -> None:
    """Random rigs: each camera's thing is in exactly one fused thing, which holds one class,
    at most one thing of each camera, and is placed as one of its members places it; two
    things of one class whose members are within the gate of each other are kept apart only
    because a camera has a thing in each."""
    import random

    rng = random.Random(11)
    for _ in range(80):
        seen = {
            f"c{k}": [
                thing(
                    rng.choice(("car", "person")),
                    None if rng.random() < 0.1 else rng.uniform(-6, 6),
                    rng.uniform(-10, 20),
                    track=i + 1,
                )
                for i in range(rng.randint(0, 12))
            ]
            for k in range(rng.randint(1, 4))
        }
        fused = fuse(seen)
        members = [(s["camera"], s["track"]) for t in fused for s in t["seen_by"]]
        assert sorted(members) == sorted((c, t["track"]) for c, ts in seen.items() for t in ts)
        for t in fused:
            cameras = [s["camera"] for s in t["seen_by"]]
            assert len(cameras) == len(set(cameras))
            own = [seen[s["camera"]][s["track"] - 1] for s in t["seen_by"]]
            assert {o["class"] for o in own} == {t["class"]}
            assert t["lateral_m"] is None or (t["lateral_m"], t["ahead_m"]) in {
                (o.get("lateral_m"), o.get("ahead_m")) for o in own
            }
        for a, b in ((a, b) for i, a in enumerate(fused) for b in fused[i + 1 :]):
            if a["class"] != b["class"]:
                continue
            close = any(
                x["lateral_m"] is not None
                and y["lateral_m"] is not None
                and x["camera"] != y["camera"]
                and math.hypot(x["lateral_m"] - y["lateral_m"], x["ahead_m"] - y["ahead_m"]) <= gate_m(x, y)
                for x in a["seen_by"]
                for y in b["seen_by"]
            )
            if close:
                assert {s["camera"] for s in a["seen_by"]} & {s["camera"] for s in b["seen_by"]}


def test_a_thing_keeps_its_number_as_it_passes_from_one_cameras_view_into_anothers() -> None:
    """A car overtaking on the left: the front camera's track 3 alone, then the front and the
    front-left corner camera's track 7 at once, then the corner camera's alone: one number
    throughout. A person the front camera then sees is numbered on; a thing no camera tracks
    is numbered anew each frame."""
    from edge.postprocess.fusion import Fusion

    fusion = Fusion()
    car, corner_car = thing("car", -2.0, 6.0, track=3), thing("car", -2.3, 5.5, track=7)
    (first,) = fusion.update({"front": [car], "corner": []})
    (both,) = fusion.update({"front": [car], "corner": [corner_car]})
    (corner_only,) = fusion.update({"front": [], "corner": [corner_car]})
    assert first["id"] == both["id"] == corner_only["id"] == 1
    assert [s["camera"] for s in both["seen_by"]] == ["front", "corner"]
    person = thing("person", 1.0, 4.0, track=4)
    numbers = {t["class"]: t["id"] for t in fusion.update({"front": [person], "corner": [corner_car]})}
    assert numbers == {"car": 1, "person": 2}
    untracked = {**thing("bicycle", 5.0, 9.0, track=1), "track": None}
    assert [t["id"] for t in fusion.update({"front": [untracked]})] == [3]
    assert [t["id"] for t in fusion.update({"front": [untracked]})] == [4]


def test_two_things_claiming_one_number_the_nearer_keeps_it() -> None:
    """Two cameras' cars taken for one (within the gate), then apart: the nearer keeps the
    number, the other is numbered on."""
    from edge.postprocess.fusion import Fusion

    fusion = Fusion()
    (one,) = fusion.update({"a": [thing("car", 0.0, 10.0, track=1)], "b": [thing("car", 0.5, 10.0, track=2)]})
    apart = fusion.update({"a": [thing("car", 0.0, 10.0, track=1)], "b": [thing("car", 4.0, 12.0, track=2)]})
    assert one["id"] == 1 and [(t["id"], t["seen_by"][0]["camera"]) for t in apart] == [(1, "a"), (2, "b")]
