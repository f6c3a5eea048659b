"""The JSON Schemas (edge.schemas) of the objects and warnings lines, of the --summary file and
of the --heartbeat file against what real runs write: every line and summary of runs that
between them give every field validates, every field the line schemas list is written by one
of them, and a line with a field the schema lacks, or without one it requires, is refused."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from edge.cli import main
from edge.errors import ConfigError
from edge.schemas import SCHEMA_NAMES, schema
from tests.conftest import engines_of_kind, strict_json

jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is not installed (pip install -e '.[dev]')")

# things cross into the path (warnings and clears) at the tests' engine size
CUT_INS = "synthetic://?size=128x256&frames=40&cut_ins=3&seed=2"
DRIVE = "synthetic://?size=128x256&frames={frames}&seed={seed}"


def validator(name: str) -> Any:
    return jsonschema.Draft202012Validator(schema(name))


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [strict_json(line) for line in path.read_text().splitlines()]


def errors(name: str, line: dict[str, Any]) -> list[str]:
    return [e.message for e in validator(name).iter_errors(line)]


@pytest.fixture(scope="module")
def lines(demo_engines: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    """The objects and warnings lines, and the --summary files ("summary"), of edge runs that
    between them give every field: a drive with cut-ins (warnings, clears, the road's distances
    and the scaled ones); a front and a side camera (named lines; a side camera's objects have
    no path); --no-ground (depth-map distances) of 4:3 frames padded into the engines
    (frame_size is not size); and a folder without a depth engine (no distances, speeds or
    warnings)."""
    out = tmp_path_factory.mktemp("schema_runs")
    runs: list[list[str]] = [
        [CUT_INS, "--sink", f"{out / 'a.jsonl'}", "--sink", f"{out / 'a_w.jsonl'}?lines=warnings"],
        [
            *("--camera", f"front={DRIVE.format(frames=6, seed=0)}"),
            *("--camera", f"left={DRIVE.format(frames=4, seed=1)}"),
            *("--hfov", "left=90", "--facing", "left=left", "--sink", str(out / "b.jsonl")),
            *("--sink", f"{out / 'b_w.jsonl'}?lines=warnings"),
        ],
        [
            "synthetic://?size=96x128&frames=4&seed=3",
            *("--fit", "pad", "--no-ground", "--sink", str(out / "c.jsonl")),
        ],
    ]
    for k, argv in enumerate(runs):
        summary = ["--summary", str(out / f"{k}.summary")]
        assert main(["run", *argv, *summary, "--engines", str(demo_engines)]) == 0, argv
    alone = engines_of_kind(demo_engines, "panoptic", out / "panoptic_alone")
    argv = ["run", DRIVE.format(frames=3, seed=4), "--sink", str(out / "d.jsonl")]
    argv += ["--summary", str(out / "3.summary")]
    assert main([*argv, "--engines", str(alone)]) == 0
    found: dict[str, list[dict[str, Any]]] = {"objects": [], "warnings": []}
    for path in sorted(out.glob("*.jsonl")):
        found["warnings" if path.stem.endswith("_w") else "objects"].extend(read_lines(path))
    found["summary"] = [strict_json(p.read_text()) for p in sorted(out.glob("*.summary"))]
    return found


def test_every_line_of_real_runs_is_valid(lines: dict[str, list[dict[str, Any]]]) -> None:
    assert len(lines["objects"]) == 40 + 6 + 4 + 4 + 3 and len(lines["summary"]) == 4
    # a live run's heartbeat: tests/stream/test_heartbeat.py; edge record's: tests/stream/test_record.py;
    # edge bench's reports: tests/test_bench.py and tests/test_bench_streams.py; the viewer's
    # /stats and /history: tests/viewer/test_viewer.py; edge replay's metrics.json: tests/test_replay.py
    # and tests/stream/test_fit.py; the engines' manifest.json
    # and edge calibrate's ranges JSON: tests/test_schema_manifest.py; edge lint --json's report:
    # tests/export/test_lint.py; the fused lines: tests/stream/test_fused_lines.py; edge rig
    # --json's: tests/test_rig_check.py; edge compare's compare.json: tests/test_compare.py; edge
    # profile --json's: tests/test_layer_profile.py
    others = {"fused", "heartbeat", "record", "bench", "stats", "history", "metrics", "manifest", "ranges"}
    others |= {"lint", "rig", "compare", "profile"}
    assert set(lines) == set(SCHEMA_NAMES) - others
    for name in lines:
        assert lines[name], name
        for line in lines[name]:
            assert errors(name, line) == [], (name, line)


def test_every_field_a_schema_lists_is_written(lines: dict[str, list[dict[str, Any]]]) -> None:
    """No field the schemas describe is one no run writes (a schema that fell behind a field
    taken out of the lines), and the runs give every kind of line and value a reader codes for."""
    objects = [o for line in lines["objects"] for o in line["objects"]]
    listed = schema("objects")
    assert {k for line in lines["objects"] for k in line} == set(listed["properties"])
    assert {k for o in objects for k in o} == set(listed["$defs"]["object"]["properties"])
    assert {o["range_from"] for o in objects if "range_from" in o} == {"road", "scaled", "depth"}
    assert {o["in_path"] for o in objects if "in_path" in o} == {True, False, None}
    assert any(line["size"] != line["frame_size"] for line in lines["objects"])
    assert any("distance_m" not in o for o in objects) and any("track" in o for o in objects)
    warnings = [w for w in lines["warnings"] if w["event"] == "warning"]
    clears = [w for w in lines["warnings"] if w["event"] == "clear"]
    assert warnings and clears and all(w["warned"] for w in warnings)
    assert {"in_path", "cut_in"} <= {w["why"] for w in warnings}


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (lambda o: o.update(colour="red"), "Additional properties are not allowed ('colour' was unexpected)"),
        (lambda o: o.pop("nearest_m"), "'nearest_m' is a dependency of 'distance_m'"),
        (lambda o: o.update({"class": "tree"}), "'tree' is not one of"),
        (lambda o: o.update(box=[1.0, 2.0, 3.0]), "[1.0, 2.0, 3.0] is too short"),
        (lambda o: o.update(range_from="radar"), "'radar' is not one of ['road', 'scaled', 'depth']"),
        (lambda o: o.update(ttc_s=-1.0), "-1.0 is less than the minimum of 0"),
        (lambda o: o.update(score=87.0), "87.0 is greater than the maximum of 1"),
    ],
)
def test_an_object_unlike_the_schema_is_refused(
    lines: dict[str, list[dict[str, Any]]], change: Any, said: str
) -> None:
    line = next(
        x for x in lines["objects"] if any("distance_m" in o and "range_m" in o for o in x["objects"])
    )
    line = json.loads(json.dumps(line))
    thing = next(o for o in line["objects"] if "distance_m" in o and "range_m" in o)
    thing["ttc_s"] = 1.0 if thing["ttc_s"] is None else thing["ttc_s"]
    assert errors("objects", line) == []
    change(thing)
    assert any(said in message for message in errors("objects", line)), errors("objects", line)


def test_a_warnings_line_unlike_the_schema_is_refused(lines: dict[str, list[dict[str, Any]]]) -> None:
    warning = next(w for w in lines["warnings"] if w["event"] == "warning")
    clear = next(w for w in lines["warnings"] if w["event"] == "clear")
    for line, key, value in (
        (warning, "why", "close"),
        (warning, "event", "alert"),
        (clear, "ended", False),
        (clear, "warned_s", -0.1),
    ):
        assert errors("warnings", line) == []
        assert errors("warnings", {**line, key: value}), (line["event"], key, value)
    assert errors("warnings", {k: v for k, v in warning.items() if k != "track"})  # a warning is a track's
    assert errors("warnings", {**clear, "objects": []})


def test_the_schemas_are_valid_json_schemas_and_the_cli_prints_them(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name in SCHEMA_NAMES:
        jsonschema.Draft202012Validator.check_schema(schema(name))
        assert main(["schema", name]) == 0
        assert json.loads(capsys.readouterr().out) == schema(name)
    with pytest.raises(
        ConfigError,
        match="no schema named 'alerts'; there are: objects, warnings, fused, summary, heartbeat, record, "
        "bench, stats, history",
    ):
        schema("alerts")
    with pytest.raises(SystemExit):
        main(["schema", "alerts"])
    assert "invalid choice: 'alerts'" in capsys.readouterr().err


def test_perceptions_objects_are_the_schemas_objects(demo_engines: Path) -> None:
    """The Python API's objects (Perception's results) are an objects line's."""
    from edge.perception import Perception
    from tests.conftest import source_images

    thing = jsonschema.Draft202012Validator(
        {**schema("objects")["$defs"]["object"], "$schema": schema("objects")["$schema"]}
    )
    seen = 0
    with Perception.open(demo_engines) as perception:
        for image in source_images(DRIVE.format(frames=3, seed=0)):
            for obj in perception(image).objects:
                assert list(thing.iter_errors(obj)) == [], obj
                seen += 1
    assert seen


def test_check_says_each_refused_line_and_exits_1(
    lines: dict[str, list[dict[str, Any]]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "good.jsonl"
    good.write_text("".join(json.dumps(x) + "\n" for x in lines["objects"][:5]))
    assert main(["schema", "objects", "--check", str(good)]) == 0
    assert capsys.readouterr().out == f"{good}: 5 objects lines, all valid\n"
    odd = json.loads(json.dumps(lines["objects"][:3]))
    odd[1]["frame"] = -1
    text = "".join(json.dumps(x) + "\n" for x in odd) + '{"frame": 3, "t_cap'  # a run killed mid-line
    bad = tmp_path / "bad.jsonl"
    bad.write_text(text)
    assert main(["schema", "objects", "--check", str(good), str(bad)]) == 1
    said = capsys.readouterr().out.splitlines()
    assert said[1:] == [
        f"{bad}:2: frame: -1 is less than the minimum of 0",
        f"{bad}:4: not JSON (Unterminated string starting at: line 1 column 14 (char 13))",
        f"{bad}: 4 objects lines, 2 refused",
    ]
    assert main(["schema", "warnings", "--check", str(good), "--show", "1"]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"{good}:1: the line: 'event' is a required property",
        f"{good}: ... and 4 more",
        f"{good}: 5 warnings lines, 5 refused",
    ]
    nan = tmp_path / "nan.jsonl"  # what Python's json writes of a NaN, and reads back
    nan.write_text(json.dumps({**lines["objects"][0], "time_unix": float("nan")}) + "\n")
    assert main(["schema", "objects", "--check", str(nan)]) == 1
    assert capsys.readouterr().out.splitlines()[0] == f"{nan}:1: not JSON (NaN is no JSON number)"
    assert main(["schema", "objects", "--check", str(tmp_path / "none.jsonl")]) == 2
    assert "error: --check: cannot read" in capsys.readouterr().err


def test_a_runs_lines_are_checked_as_they_come_through_a_pipe(demo_engines: Path) -> None:
    import subprocess

    run = [
        sys.executable,
        "-m",
        "edge",
        "run",
        DRIVE.format(frames=5, seed=6),
        "--engines",
        str(demo_engines),
    ]
    with subprocess.Popen([*run, "--sink", "-"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as edge:
        check = subprocess.run(
            [sys.executable, "-m", "edge", "schema", "objects", "--check", "-"],
            stdin=edge.stdout,
            capture_output=True,
            text=True,
        )
    assert edge.returncode == 0 and check.returncode == 0, check.stderr
    assert check.stdout == "-: 5 objects lines, all valid\n"


def test_check_without_jsonschema_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from edge.errors import DependencyError
    from edge.schemas import check_lines

    monkeypatch.setitem(sys.modules, "jsonschema", None)  # import jsonschema raises ImportError
    with pytest.raises(
        DependencyError, match=r"checking against a schema needs jsonschema: pip install 'jsonschema>=4.18'"
    ):
        check_lines("objects", ["{}"])


def test_summaries_of_a_stopped_sink_and_segments_are_valid(
    demo_engines: Path, small_disk: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run whose video on a full disk stops, beside a segmented one, and each camera's
    summary of a run of two: their summaries are the schema's, with the stopped sink's and
    the segments' entries as it says; and --check says so of the files, as of a broken one."""
    runs = {
        "one": ["synthetic://?size=128x256&frames=12", "--sink", str(small_disk / "o.mkv")],
        "two": [
            "--camera",
            f"a={DRIVE.format(frames=3, seed=0)}",
            "--camera",
            f"b={DRIVE.format(frames=2, seed=1)}",
        ],
    }
    for name, argv in runs.items():
        video = f"{tmp_path / name}{'-{camera}' if name == 'two' else ''}.mkv?view=input"
        sinks = ["--keep-free", "768K", "--sink", video, "--segment", "0.1s"]
        summary = ["--summary", str(tmp_path / f"{name}.json"), "--engines", str(demo_engines)]
        assert main(["run", *argv, *sinks, *summary]) == 0, name
    one = strict_json((tmp_path / "one.json").read_text())
    (stopped,) = one["sinks_stopped"]
    assert stopped["sink"] == str(small_disk / "o.mkv") and isinstance(stopped["frame"], int)
    assert "the sink stops" in stopped["reason"]
    segments = one["segments"][f"{tmp_path / 'one'}.mkv?view=input"]
    assert len(segments["files"]) > 1 and segments["deleted"] == 0
    two = strict_json((tmp_path / "two.json").read_text())
    assert set(two) == {"cameras"} and set(two["cameras"]) == {"a", "b"}
    for summary in (one, two, *two["cameras"].values()):
        assert errors("summary", summary) == []
    capsys.readouterr()
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({**one, "fps": "fast"}))
    files = [str(tmp_path / "one.json"), str(tmp_path / "two.json"), str(broken)]
    assert main(["schema", "summary", "--check", *files]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"{files[0]}: summary valid",
        f"{files[1]}: summary valid",
        f"{broken}: summary refused: fps: 'fast' is not of type 'number'",
    ]
    assert errors(
        "summary", {**one, "stages_ms": {"panoptic": {"count": 2, "mean": 1.0}}}
    )  # a half-told stage
    assert errors("summary", {"cameras": {"a": {**one, "colour": 1}}})


def test_a_summary_with_the_road_plane_fitted_is_valid(capsys: pytest.CaptureFixture[str]) -> None:
    """The road_plane a run keeps (steps.end_road_plane), with a field of view and without."""
    from edge.latency import LatencyTracker
    from edge.postprocess.road_fit import RoadFit
    from edge.postprocess.tracks import ObjectTracker
    from edge.stream.steps import end_road_plane

    for hfov in (48.9, None):
        tracker, latency = ObjectTracker(hfov_deg=hfov), LatencyTracker()
        tracker.update(
            [], None, 0.0, size=(256, 512), road_fit=RoadFit(horizon=0.45, reach=2.64, rows=60, bend=0.0)
        )
        end_road_plane(latency, tracker, ("panoptic", "depth"))
        summary = latency.summary()
        assert summary["road_plane"] is not None and errors("summary", summary) == []
    assert capsys.readouterr().err.count("note: the road's plane fitted") == 2


def test_a_heartbeat_is_checked_whole(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A file Heartbeat writes, stuck or not, is valid; one that lost a field or took a
    string for a time is refused, naming the field (a live run's files:
    tests/stream/test_heartbeat.py)."""
    from edge.stream.heartbeat import Heartbeat

    path = tmp_path / "alive.json"
    beats = Heartbeat(path)
    beats.beat(fed=True, status="frame 12  17.0 fps")
    assert main(["schema", "heartbeat", "--check", str(path)]) == 0
    beats.beat(fed=False, status="frame 13", stuck="sink 'a.mkv' has been writing frame 13 for 31 s")
    assert main(["schema", "heartbeat", "--check", str(path)]) == 0
    assert capsys.readouterr().out.splitlines() == [f"{path}: heartbeat valid"] * 2
    content = json.loads(path.read_text())
    beats.close()
    lost = tmp_path / "lost.json"
    lost.write_text(json.dumps({k: v for k, v in content.items() if k != "boot_id"}))
    odd = tmp_path / "odd.json"
    odd.write_text(json.dumps({**content, "fed_at": "12:00"}))
    assert main(["schema", "heartbeat", "--check", str(lost), str(odd)]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"{lost}: heartbeat refused: the document: 'boot_id' is a required property",
        f"{odd}: heartbeat refused: fed_at: '12:00' is not of type 'number'",
    ]


def test_an_edge_record_summary_is_checked_whole(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """edge record --summary's file, of a video and a folder, is valid; one with a field it
    does not write, or a count below zero, is refused, naming the field (after Ctrl-C and a
    full disk: tests/stream/test_record.py)."""
    summary = tmp_path / "s.json"
    argv = [
        "record",
        "synthetic://?size=64x96&frames=3",
        str(tmp_path / "rec.mkv"),
        f"dir://{tmp_path / 'f'}",
    ]
    assert main([*argv, "--summary", str(summary)]) == 0
    capsys.readouterr()
    assert main(["schema", "record", "--check", str(summary)]) == 0
    assert capsys.readouterr().out == f"{summary}: record valid\n"
    content = json.loads(summary.read_text())
    extra = tmp_path / "extra.json"
    extra.write_text(json.dumps({**content, "gps": [52.5, 13.4]}))
    negative = tmp_path / "negative.json"
    negative.write_text(json.dumps({**content, "dropped": -1}))
    assert main(["schema", "record", "--check", str(extra), str(negative)]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"{extra}: record refused: the document: Additional properties are not allowed "
        "('gps' was unexpected)",
        f"{negative}: record refused: dropped: -1 is less than the minimum of 0",
    ]
