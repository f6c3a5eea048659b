"""The things around the vehicle on each camera's viewer of a run of several (edge.viewer.around):
a real `edge run` of two cameras into their viewers, read over real HTTP."""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from edge.schemas import check_document
from tests.viewer.helpers import EdgeRun, get_json

# two cameras mounted alike and given one endless drive: each thing seen by both
DRIVE = "synthetic://?size=128x256&fps=10&seed=2&lane=right"
CAMERAS = ["--camera", f"a={DRIVE}", "--camera", f"b={DRIVE}", "--hfov", "48.9", "--realtime"]


def seen_by_both(url: str, timeout: float = 90, *, within_m: float = float("inf")) -> dict[str, Any]:
    """The viewer's /stats once its ``around`` holds a thing both cameras see, ``within_m`` of
    the vehicle."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        snap = get_json(url + "stats")
        things = (snap["around"] or {}).get("things", [])
        if any(len(t["seen_by"]) == 2 and (t["from_vehicle_m"] or 0) < within_m for t in things):
            return snap
        time.sleep(0.1)
    raise AssertionError(f"no thing seen by both cameras within {within_m} m in {timeout} s")


def test_each_cameras_viewer_holds_the_things_of_every_camera_at_once(
    demo_engines: Path, tmp_path: Path
) -> None:
    """Both viewers' /stats hold one fusion of the two cameras, as ?lines=fused writes it: a
    thing both see is one, seen by each, numbered; the line is of either camera's frame. The
    cameras 4 m apart across the vehicle place each thing 4 m apart, fused as one by the
    viewer's ?gate=5 (the default gate's 15% of a thing's distance is 4 m only at 27 m)."""
    apart = ["--mount-offset", "a=-2", "--mount-offset", "b=2"]
    argv = [*CAMERAS, *apart, "--engines", str(demo_engines), "--sink", "http://127.0.0.1:0?gate=5"]
    run = EdgeRun(argv, cwd=tmp_path)
    try:
        # nearer than 25 m, 4 m apart is past the default gate: one thing only within ?gate=5
        first = seen_by_both(run.url, within_m=20)
        ports = {camera["name"]: camera["port"] for camera in first["cameras"]}
        other = seen_by_both(f"http://127.0.0.1:{ports['b']}/", within_m=20)
    finally:
        code, _out, err = run.stop()
    assert code == 130 and "Traceback" not in err, err
    for snap in (first, other):
        assert check_document("stats", json.dumps(snap)) is None
        assert snap["around_views"] == [
            {"camera": name, "yaw_deg": 0.0, "hfov_deg": 48.9, "lateral_m": lateral, "ahead_m": 0.0}
            for name, lateral in (("a", -2.0), ("b", 2.0))
        ], "each camera's place, facing and field of view, for the page to draw what it sees"
        line = snap["around"]
        assert line["camera"] in ("a", "b") and set(line["cameras"]) == {"a", "b"}
        both = [thing for thing in line["things"] if len(thing["seen_by"]) == 2]
        for thing in both:
            assert [seen["camera"] for seen in thing["seen_by"]] == ["a", "b"] and thing["id"] >= 1
            assert thing["lateral_m"] is not None and thing["ahead_m"] is not None


def test_one_camera_has_no_fusion_to_show(tiny_engines: Path, tmp_path: Path) -> None:
    """A run of one camera, a source or one --camera, shares none: its /stats says null."""
    for source in ([DRIVE], ["--camera", f"a={DRIVE}"]):
        argv = [*source, "--realtime", "--engines", str(tiny_engines), "--sink", "http://127.0.0.1:0"]
        run = EdgeRun(argv, cwd=tmp_path)
        try:
            run.wait_for_frames(2)
            snap = get_json(run.url + "stats")
            assert snap["around"] is None and snap["around_views"] == []
        finally:
            run.stop()


def test_viewers_asking_for_other_fusions_are_told_which_is_taken(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Two cameras' viewers whose addresses ask for other fusions (a rig's own sinks): the run's
    one fusion is the first camera's, and the other's is said not to be taken."""
    from edge.postprocess.tracks import ObjectTracker
    from edge.viewer import ViewerSink
    from edge.viewer.around import share_around

    sinks = {
        "a": ViewerSink("http://127.0.0.1:0?max_age=0.5", port=0),
        "b": ViewerSink("http://127.0.0.1:0?max_age=2", port=0),
    }
    try:
        pipelines = {
            name: SimpleNamespace(sinks=[sink], object_tracker=ObjectTracker())
            for name, sink in sinks.items()
        }
        around = share_around(pipelines)
        assert around is not None and around.fusion.max_age_s == 0.5
    finally:
        for sink in sinks.values():
            sink.close()
    err = capsys.readouterr().err
    assert (
        "warning: every viewer fuses the cameras' things one way, as the viewer of camera 'a' asks "
        "(http://127.0.0.1:0?max_age=0.5); another way, asked by http://127.0.0.1:0?max_age=2, is not taken"
    ) in err, err
