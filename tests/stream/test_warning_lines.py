"""The warnings log (``objects.jsonl?lines=warnings``, ``-?lines=warnings``): a line when a
tracked thing comes to be warned of, one when it no longer is."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.postprocess.tracks import TrackInfo
from edge.stream.frame import Frame, Result
from edge.stream.object_sinks import WarningLines


def result(t_s: float, tracks: dict[int, TrackInfo], camera: str | None = None) -> Result:
    """A frame at stream time ``t_s`` whose objects are ``tracks``' (one a track)."""
    meta = {"camera": camera} if camera else {}
    frame = Frame(round(t_s * 10), int(t_s * 1e9), np.zeros((4, 4, 3), np.uint8), meta=meta)
    objects = [{"id": 26000 + n, "class": "car", "track": n, "ttc_s": t.ttc_s} for n, t in tracks.items()]
    extras = {"resized": frame.image, "objects": objects, "tracks": list(tracks.values()), "t_stream_s": t_s}
    return Result(frame, extras=extras)


def track(
    n: int, ttc: float | None, in_path: bool | None = True, path_in_s: float | None = None
) -> TrackInfo:
    return TrackInfo(n, 5, 0.3, 6.0, ttc, lateral_m=0.0, in_path=in_path, path_in_s=path_in_s)


def events(lines: str) -> list[tuple[Any, ...]]:
    return [
        (x["event"], x.get("camera"), x["track"], x.get("why") or x.get("warned_s"))
        for x in map(json.loads, lines.splitlines())
    ]


def test_a_warning_starts_once_survives_a_flicker_and_clears_after_the_hold() -> None:
    """Car 1 is in the path and closing (warned), not warned at 0.2 s, warned again at 0.4 s
    (within the 0.5 s hold: the same warning), then gone; car 2 cuts in from 0.1 s to 0.2 s
    (cleared at 0.8 s);
    car 3 is warned where nothing places it. A second camera's car 1 is another thing."""
    warn = WarningLines()
    said = [
        warn(result(0.0, {1: track(1, 2.0)})),
        warn(result(0.1, {1: track(1, 1.9), 2: track(2, 2.5, in_path=False, path_in_s=0.5)})),
        warn(result(0.2, {1: track(1, 4.0), 2: track(2, 2.4, in_path=False, path_in_s=0.4)})),
        warn(result(0.4, {1: track(1, 2.2), 3: track(3, 1.0, in_path=None)})),
        warn(result(0.5, {1: track(1, 2.0, in_path=False)}, camera="rear")),  # beside, staying
        warn(result(0.6, {1: track(1, 1.5)}, camera="rear")),
        warn(result(0.8, {})),
        warn(result(1.0, {})),
    ]
    assert [events(x) for x in said] == [
        [("warning", None, 1, "in_path")],
        [("warning", None, 2, "cut_in")],
        [],
        [("warning", None, 3, "no_path")],
        [],
        [("warning", "rear", 1, "in_path")],
        [("clear", None, 2, 0.1)],
        [("clear", None, 1, 0.4), ("clear", None, 3, 0.0)],
    ]
    # the run ends: the rear camera's warning is still on
    ended = [json.loads(x) for x in warn.finish().splitlines()]
    assert [(x["event"], x["camera"], x["track"], x["ended"], x["frame"]) for x in ended] == [
        ("clear", "rear", 1, True, 6)  # its camera's last frame
    ]
    assert warn.finish() == ""
    first = json.loads(said[0])
    assert first["frame"] == 0 and first["class"] == "car" and first["ttc_s"] == 2.0 and "time_unix" in first


def test_edge_run_writes_a_warnings_log_beside_the_objects(demo_engines: Path, tmp_path: Path) -> None:
    """A drive where things cross into the path: every warning line is the object of that
    track in that frame of objects.jsonl, about to arrive (under 3 s); tracks are warned of
    once until cleared, and every warning is cleared by the end; standard output takes the
    same log, nothing else."""
    from edge.postprocess.render import TTC_WARN_S

    drive = "synthetic://?size=128x256&frames=40&cut_ins=3&seed=2"
    log, objects = tmp_path / "warnings.jsonl", tmp_path / "objects.jsonl"
    cmd = [sys.executable, "-m", "edge", "run", drive, "--engines", str(demo_engines)]
    # standard output's options need the = form: argparse takes "-?..." for a flag
    sinks = ["--sink", f"{log}?lines=warnings", "--sink", str(objects), "--sink=-?lines=warnings"]
    done = subprocess.run([*cmd, *sinks], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    # the same lines (each sink derives the wall-clock time from the capture stamp itself)
    printed = [json.loads(x) for x in done.stdout.splitlines()]
    assert [{**x, "time_unix": 0} for x in printed] == [{**x, "time_unix": 0} for x in lines]
    frames = {x["frame"]: {o["track"]: o for o in x["objects"]} for x in map(json.loads, objects.open())}
    started = [x for x in lines if x["event"] == "warning"]
    assert started, "the drive's things are warned of"
    on: set[int] = set()
    for x in lines:
        if x["event"] == "warning":
            assert x["track"] not in on
            on.add(x["track"])
            seen = frames[x["frame"]][x["track"]]
            assert {k: x[k] for k in seen} == seen and seen["ttc_s"] <= TTC_WARN_S  # rounded to 2 places
        else:
            on.remove(x["track"])
            assert x["warned_s"] >= 0 and x["class"] in {"car", "truck", "person", "bicycle"}
    assert not on, "the warnings still on at the end are cleared, as ended"


@pytest.mark.parametrize(
    ("option", "said"),
    [
        ("lines=alerts", "lines='alerts'; expected one of objects, warnings"),
        ("every=1", "unknown option 'every'; it takes lines=objects|warnings|fused (with fused: "),
        ("lines=warnings&gate=2", "gate= fuse several cameras' things, and this sink writes lines=warnings"),
        ("lines=fused&gate=0", "gate='0'; expected a number of metres > 0"),
        ("lines=fused&max_age=soon", "max_age='soon'; expected a number of seconds > 0"),
        ("gate=2&gate=3", "gate= is given twice"),
        ("lines=objects&lines=warnings", "lines= is given twice"),
    ],
)
def test_a_bad_lines_option_is_refused(tmp_path: Path, option: str, said: str) -> None:
    from edge.errors import SinkError
    from edge.stream.sinks import open_sink

    for uri in (f"{tmp_path / 'o.jsonl'}?{option}", f"-?{option}"):
        with pytest.raises(SinkError, match=re.escape(said)):
            open_sink(uri)
    with pytest.raises(SinkError, match=re.escape("has no view= (that is for video")):
        open_sink(f"{tmp_path / 'o.jsonl'}?view=depth")
    assert not any(tmp_path.iterdir())


def test_a_segmented_warnings_log_clears_what_is_on_once_at_the_end(tmp_path: Path) -> None:
    """Segments of 0.3 s: one warning goes on in the first and stays on; it is cleared,
    as ended, once, in the last segment written."""
    from edge.stream.sinks import open_sink

    sink = open_sink(f"{tmp_path / 'w.jsonl'}?lines=warnings", segment_s=0.3)
    for t in (0.0, 0.1, 0.4, 0.7):
        sink.write_result(result(t, {1: track(1, 2.0)}))
    sink.close()
    files = sorted(tmp_path.glob("w-*.jsonl"))
    said = [
        [(x["event"], x.get("ended", False)) for x in map(json.loads, f.read_text().splitlines())]
        for f in files
    ]
    assert said[0] == [("warning", False)] and said[-1] == [("clear", True)]
    assert sum(len(x) for x in said) == 2


@settings(max_examples=200, deadline=None)
@given(
    frames=st.lists(
        st.tuples(
            st.floats(0.01, 0.8),
            st.sampled_from([None, "front", "rear"]),
            st.dictionaries(
                st.integers(1, 4),
                st.tuples(st.sampled_from([None, 0.5, 2.9, 3.0, 8.0]), st.sampled_from([None, True, False])),
                max_size=4,
            ),
        ),
        max_size=30,
    )
)
def test_each_things_lines_alternate_and_all_are_cleared_by_the_end(
    frames: list[tuple[float, str | None, dict[int, tuple[float | None, bool | None]]]],
) -> None:
    """Whatever the frames: a thing's lines go warning, clear, warning, ... (by camera), a
    warning only in a frame where it is warned of, a clear never in one; after finish()
    every warning has its clear."""
    warn, t, events = WarningLines(), 0.0, {}
    for dt, camera, things in frames:
        t += dt
        tracks = {n: track(n, ttc, in_path=in_path) for n, (ttc, in_path) in things.items()}
        for line in map(json.loads, warn(result(t, tracks, camera)).splitlines()):
            key = (line.get("camera"), line["track"])
            assert tracks.get(line["track"]) is None or tracks[line["track"]].warned == (
                line["event"] == "warning"
            )
            events.setdefault(key, []).append(line["event"])
    for line in map(json.loads, warn.finish().splitlines()):
        assert line["ended"] is True
        events[(line.get("camera"), line["track"])].append(line["event"])
    for said in events.values():
        assert said == ["warning", "clear"] * (len(said) // 2) and len(said) % 2 == 0


def test_a_run_without_warnings_leaves_an_empty_log(tmp_path: Path) -> None:
    """Frames came and nothing was warned of: the log is there, empty (no frame at all: no
    log, as an objects file)."""
    from edge.stream.sinks import open_sink

    quiet = open_sink(f"{tmp_path / 'quiet.jsonl'}?lines=warnings")
    for t in (0.0, 0.1):
        quiet.write_result(result(t, {1: track(1, 8.0)}))
    quiet.close()
    open_sink(f"{tmp_path / 'none.jsonl'}?lines=warnings").close()
    assert (tmp_path / "quiet.jsonl").read_text() == "" and not (tmp_path / "none.jsonl").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["quiet.jsonl"]  # no partial file left
