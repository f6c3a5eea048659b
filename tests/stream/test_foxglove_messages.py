"""A frame's Foxglove messages built by hand (edge.stream.foxglove_messages): the warnings
lines as Foxglove's Log panel shows them."""

from __future__ import annotations

import json

import jsonschema

from edge.stream.foxglove_messages import LOG_SCHEMA, log_line, warning_messages


def test_warnings_read_as_log_lines() -> None:
    begun = {"event": "warning", "why": "in_path", "class": "car", "track": 3, "range_m": 32.2, "ttc_s": 2.78}
    cut_in = {"event": "warning", "why": "cut_in", "class": "bicycle", "track": 9, "distance_m": 12.0}
    cut_in |= {"ttc_s": None, "path_in_s": 1.24, "camera": "front"}
    cleared = {"event": "clear", "class": "car", "track": 3, "warned_s": 1.588}
    ended = {"event": "clear", "class": "person", "track": 4, "warned_s": 0.4, "ended": True}
    lines = [log_line(line, 1_000_000_007) for line in (begun, cut_in, cleared, ended)]
    for line in lines:
        jsonschema.validate(line, json.loads(LOG_SCHEMA[1]))
    assert [(x["level"], x["message"], x["name"]) for x in lines] == [
        (3, "car #3 in the path, 32 m, 2.8 s to reach", "edge camera"),
        (3, "bicycle #9 cutting in, 12 m, in the path in 1.2 s", "edge front"),
        (2, "car #3 clear after 1.6 s", "edge camera"),
        (2, "person #4 clear after 0.4 s as the run ended", "edge camera"),
    ]
    assert lines[0]["timestamp"] == {"sec": 1, "nsec": 7}
    (warnings_topic, _, body), (log_topic, schema, log) = warning_messages(cut_in, 5)
    assert (warnings_topic, log_topic, schema[0]) == ("/front/warnings", "/front/log", "foxglove.Log")
    assert body() == cut_in and log()["message"].startswith("bicycle #9")


def test_how_far_a_thing_is_falls_back_to_the_depth_maps_reading() -> None:
    """range_m where it was placed from, else distance_m (a key there but null counts as not)."""
    from edge.stream.foxglove_messages import how_far

    assert how_far({"range_m": 12.5, "distance_m": 10.0}) == 12.5
    assert how_far({"range_m": None, "distance_m": 10.0}) == 10.0
    assert how_far({"range_m": None, "distance_m": None}) is None and how_far({}) is None
    line = {
        "event": "warning",
        "why": "no_path",
        "class": "car",
        "track": 2,
        "range_m": None,
        "distance_m": 9.4,
    }
    assert log_line(line, 0)["message"] == "car #2 closing in, 9 m"
