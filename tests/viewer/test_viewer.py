"""The live viewer against a real `edge run` on a real video file, with a real HTTP client."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge.errors import SinkError
from edge.schemas import check_document
from edge.stream.sinks import open_sink
from edge.viewer import ViewerSink, parse_viewer_uri
from edge.viewer.server import ViewerServer
from tests.viewer.helpers import EdgeRun, get, get_json, mjpeg_frames, viewer_pipeline


@pytest.fixture(scope="module")
def running_viewer(tiny_engines: Path, tmp_path_factory: pytest.TempPathFactory) -> EdgeRun:
    run = EdgeRun.looping_video(
        tmp_path_factory.mktemp("viewer"), tiny_engines, deadline_ms=500, sinks=("out.mp4",)
    )
    run.wait_for_frames()  # each test may be the first (-k, or pytest-xdist's order)
    yield run
    run.stop()


def test_stream_delivers_successive_jpeg_frames(running_viewer: EdgeRun) -> None:
    frames = mjpeg_frames(running_viewer.url + "stream.mjpg", 4)
    seqs = [s for s, _ in frames]
    assert seqs == sorted(set(seqs)), f"each part is a newer frame: {seqs}"
    h, w = frames[0][1].shape[:2]
    assert (h, w) == (128, 512), "composite: overlay | depth, each at the engines' 128x256"
    assert any(not np.array_equal(frames[0][1], img) for _, img in frames[1:]), "the picture moves"
    for view in ("panoptic", "depth"):
        (seq, image), *_ = mjpeg_frames(running_viewer.url + f"stream/{view}.mjpg", 1)
        assert image.shape[:2] == (128, 256) and seq >= 0


def test_long_poll_returns_a_newer_frame(running_viewer: EdgeRun) -> None:
    status, headers, _ = get(running_viewer.url + "frame/panoptic.jpg")
    assert status == 200 and headers["content-type"] == "image/jpeg"
    seq = int(headers["x-frame-seq"])
    status, headers, _ = get(running_viewer.url + f"frame/panoptic.jpg?after={seq}")
    assert status == 200 and int(headers["x-frame-seq"]) > seq


def test_stats_advance(running_viewer: EdgeRun) -> None:
    a = get_json(running_viewer.url + "stats")
    time.sleep(1.5)
    b = get_json(running_viewer.url + "stats")
    assert b["frames_out"] > a["frames_out"] and b["t"] > a["t"] and b["seq"] > a["seq"]
    for stage in ("preprocess", "panoptic", "depth", "postprocess", "end_to_end"):
        st = b["stages_ms"][stage]
        assert st["count"] > 0 and 0 < st["p50"] <= st["p99"]
    assert b["fps"] > 0 and b["deadline_ms"] == 500 and b["drops"] >= 0
    assert b["engines"]["depth"].startswith("depth_tiny onnxruntime fp32 ")
    history = get_json(running_viewer.url + "history")
    assert len(history) >= 2 and history[-1]["t"] > history[0]["t"]
    assert "panoptic" in history[-1]["stages_ms"]
    # edge schema stats / history take what the page reads; a stage's p50 without its p99, not
    assert check_document("stats", json.dumps(b)) is None
    assert check_document("history", json.dumps(history)) is None
    b["stages_ms"]["panoptic"] = {"count": 3, "p50": 1.0}
    assert "stages_ms/panoptic: 'mean' is a dependency of 'p50'" in (
        check_document("stats", json.dumps(b)) or ""
    )
    history[0]["stages_ms"]["panoptic"] = {"p50": 1.0}
    assert "0/stages_ms/panoptic: 'p99' is a required property" in (
        check_document("history", json.dumps(history)) or ""
    )


def test_the_viewer_serves_its_statistics_for_prometheus_too(running_viewer: EdgeRun) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    before = get_json(running_viewer.url + "stats")
    status, headers, body = get(running_viewer.url + "metrics")
    after = get_json(running_viewer.url + "stats")
    assert status == 200 and headers["content-type"].startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    (frames,) = families["edge_frames_out"].samples  # the parser drops a counter's _total
    assert before["frames_out"] <= frames.value <= after["frames_out"]
    assert families["edge_deadline_seconds"].samples[0].value == 0.5


def test_serves_only_its_own_files(running_viewer: EdgeRun) -> None:
    url = running_viewer.url
    status, headers, page = get(url)
    assert status == 200 and b"/viewer.js" in page
    assert "default-src 'self'" in headers["content-security-policy"]
    for path in ("viewer.js", "viewer.css"):
        assert get(url + path)[0] == 200
    for path in (
        "../pyproject.toml",
        "static/viewer.js",
        "server.py",
        "%2e%2e/%2e%2e/etc/passwd",
        "frame/x.jpg",
    ):
        assert get(url + path)[0] == 404, path
    assert get(url + "frame/panoptic.jpg?after=x")[0] == 400
    assert get(url + "stats", method="POST")[0] == 405
    # a page on another site that rebinds its name to 127.0.0.1 must get nothing
    assert get(url + "stats", headers={"Host": "attacker.example:8080"})[0] == 403


def test_run_ends_cleanly_and_frees_the_port(running_viewer: EdgeRun) -> None:
    code, out, err = running_viewer.stop()
    assert code == 130 and "Traceback" not in err, err
    assert "frames in" in out and "end_to_end" in out
    with pytest.raises(OSError):
        get(running_viewer.url + "stats")
    assert (running_viewer.work / "out.mp4").is_file()


def test_binds_loopback_by_default_and_reports_a_taken_port() -> None:
    assert parse_viewer_uri("http://") == ("127.0.0.1", 8080)
    assert parse_viewer_uri("http://0.0.0.0:9000") == ("0.0.0.0", 9000)
    assert parse_viewer_uri("http://[::1]:0") == ("::1", 0)
    sink = open_sink("http://127.0.0.1:0")
    assert isinstance(sink, ViewerSink)
    try:
        host, port = sink.server.host, sink.server.port
        assert host == "127.0.0.1" and port
        with pytest.raises(SinkError, match=f"cannot listen on 127.0.0.1:{port}.*another port"):
            ViewerSink(f"http://127.0.0.1:{port}", port=port)
    finally:
        sink.close()


@pytest.mark.parametrize(
    "uri,match",
    [
        ("http://127.0.0.1:8080/page", "only http://HOST:PORT"),
        ("http://127.0.0.1:99999", "not a valid"),
        ("http://127.0.0.1:8080?x=1", "unknown option 'x'; it takes gate=M and max_age=S"),
        ("http://127.0.0.1:8080?gate=-1", "gate='-1'; expected a number of metres > 0"),
        ("http://127.0.0.1:8080?max_age=1&max_age=2", "max_age= is given twice"),
        ("http://127.0.0.1:8080?&", "option '&' names none; it takes gate=M"),
        ("http://127.0.0.1:9464/metrics?gate=1", "only http://HOST:PORT"),
    ],
)
def test_bad_viewer_uris(uri: str, match: str) -> None:
    with pytest.raises(SinkError, match=match):
        open_sink(uri)


def test_no_frame_yet_and_views() -> None:
    server = ViewerServer(port=0)
    url = server.start()
    try:
        assert get(url + "frame/composite.jpg")[0] == 503
        assert get_json(url + "stats")["seq"] is None
        server.publish(
            7, {"composite": np.zeros((32, 64, 3), np.uint8), "panoptic": np.zeros((32, 32, 3), np.uint8)}
        )
        status, headers, _ = get(url + "frame/composite.jpg")
        assert status == 200 and headers["x-frame-seq"] == "7"
        assert get(url + "frame/depth.jpg")[0] == 503, "a view this run does not produce"
    finally:
        server.close()


def test_stats_and_history_are_json_a_browser_parses() -> None:
    """A number that is not finite in what the page reads (an engine's NaN in a thing's
    distance) is null: a browser's JSON.parse refuses NaN and Infinity, and the page would
    stop updating."""
    from tests.conftest import strict_json

    server = ViewerServer(port=0, sample_period_s=0.02)
    url = server.start()
    try:
        server.publish_objects(
            3, [{"track": 1, "class": "car", "distance_m": float("nan"), "ttc_s": float("inf")}]
        )
        status, _, body = get(url + "stats")
        assert status == 200
        stats = strict_json(body.decode())
        assert stats["objects_seq"] == 3
        # a viewer without a run's tracker has none of its figures, and its schema says so
        assert "engines" not in stats and "fps" not in stats
        assert stats["objects"] == [{"track": 1, "class": "car", "distance_m": None, "ttc_s": None}]
        time.sleep(0.1)
        status, _, body = get(url + "history")
        assert status == 200 and len(strict_json(body.decode())) >= 1
    finally:
        server.close()


def test_a_viewer_draws_only_while_someone_watches(tiny_engines: Path) -> None:
    """Drawing is most of the post stage's time: a run whose only sink is a viewer nobody
    watches draws nothing; a client that comes gets a freshly drawn frame, and some time
    after it leaves the drawing stops again."""
    with viewer_pipeline(tiny_engines, "synthetic://?size=128x256&fps=20") as (viewer, seen, run):
        viewer.server.watch_grace_s = 0.5

        def wait_until(done: Callable[[], bool]) -> None:
            deadline = time.monotonic() + 60
            while not done():
                assert time.monotonic() < deadline and run.is_alive(), f"{len(seen)} frames"
                time.sleep(0.05)

        def wait_for(count: int) -> None:
            wait_until(lambda: len(seen) >= count)

        wait_for(3)
        assert all(r.rendered is None and not r.extras["views"] for r in seen), "drawn for nobody"
        assert get(viewer.url + "frame/composite.jpg")[0] == 503  # nothing drawn to show yet
        status, headers, body = get(viewer.url + "frame/depth.jpg?after=-1")  # waits for one
        assert status == 200 and body[:2] == b"\xff\xd8"
        seq = int(headers["x-frame-seq"])
        wait_until(lambda: seen[-1].frame.seq >= seq)  # results are handed on after the sinks
        shown = next(r for r in seen if r.frame.seq == seq)
        assert shown.rendered is not None and set(shown.extras["views"]) == {"panoptic", "depth"}
        time.sleep(viewer.server.watch_grace_s + 0.3)  # the client has gone
        wait_for(len(seen) + 3)
        assert seen[-1].rendered is None and seen[-2].rendered is None
        assert get_json(viewer.url + "stats")["seq"] is None  # no stale frame kept


def test_the_page_gets_the_newest_frames_objects_marked_as_the_overlay_marks_them(demo_engines: Path) -> None:
    """A run with the bundled weights (things to find) and a field of view: while watched,
    /stats carries the newest drawn frame's objects as objects.jsonl has them (with where
    they are beside the path), each marked ``warn`` exactly where render.warned outlines it."""
    from edge.postprocess.render import warned
    from edge.postprocess.tracks import ObjectTracker
    from edge.stream.object_sinks import frame_objects

    source = "synthetic://?size=128x256&fps=20&seed=1"
    tracker = ObjectTracker(hfov_deg=48.9)
    with viewer_pipeline(demo_engines, source, object_tracker=tracker) as (viewer, seen, run):
        assert get_json(viewer.url + "stats")["objects"] == []  # nothing drawn yet
        deadline = time.monotonic() + 60
        while True:
            get(viewer.url + "frame/panoptic.jpg?after=-1")  # watching
            snap = get_json(viewer.url + "stats")
            if snap["objects"] and any("lateral_m" in o for o in snap["objects"]):
                break
            assert time.monotonic() < deadline and run.is_alive(), snap["objects"]
            time.sleep(0.1)
        while not any(r.frame.seq == snap["objects_seq"] for r in list(seen)):  # handed on after the sinks
            assert time.monotonic() < deadline and run.is_alive()
            time.sleep(0.05)
        shown = next(r for r in list(seen) if r.frame.seq == snap["objects_seq"])
        tracks = shown.extras["tracks"]
        assert [{k: v for k, v in o.items() if k != "warn"} for o in snap["objects"]] == frame_objects(shown)
        assert [o["warn"] for o in snap["objects"]] == [warned(t) for t in tracks]
        assert {"track", "class", "distance_m", "ttc_s", "lateral_m", "in_path", "path_in_s"} <= set(
            snap["objects"][0]
        )
    assert check_document("stats", json.dumps(snap)) is None  # edge schema stats: the marked objects
    unmarked = {**snap, "objects": [{k: v for k, v in o.items() if k != "warn"} for o in snap["objects"]]}
    assert "'warn' is a required property" in (check_document("stats", json.dumps(unmarked)) or "")


def test_display_sink_without_gui_is_a_clear_error() -> None:
    from edge.stream.sinks import has_gui

    if has_gui():
        pytest.skip("this OpenCV has a GUI; the error path is for headless builds")
    with pytest.raises(SinkError, match="display://.*needs OpenCV with a GUI.*http://127.0.0.1:8080"):
        open_sink("display://")


def test_the_page_lists_the_warnings_log_watched_or_not(demo_engines: Path) -> None:
    """A drive where things cross into the path, nobody watching (no frame drawn): /stats
    lists the newest lines of the run's warnings log all the same, the lines a warnings
    log gives for the same results, newest first, with how many there were in all."""
    from edge.stream.object_sinks import WarningLines

    source = "synthetic://?size=128x256&fps=20&seed=2&cut_ins=3"
    with viewer_pipeline(demo_engines, source) as (viewer, seen, run):
        deadline = time.monotonic() + 60
        while not (snap := get_json(viewer.url + "stats"))["warnings"]:
            assert time.monotonic() < deadline and run.is_alive()
            time.sleep(0.1)
    assert snap["seq"] is None and snap["objects"] == []  # nothing was drawn
    log = WarningLines()
    expected = [line for r in seen for line in log.events(r)]
    total, listed = snap["warnings_total"], list(reversed(snap["warnings"]))

    def unclocked(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:  # each derives its own
        return [{k: v for k, v in x.items() if k != "time_unix"} for x in lines]

    assert 1 <= len(listed) == min(total, 20)
    assert check_document("stats", json.dumps(snap)) is None  # the warnings lines, by their schema
    assert unclocked(listed) == unclocked(expected[total - len(listed) : total])
    assert listed[0]["event"] == "warning" or total > 20


def test_every_cameras_page_may_show_the_other_viewers_pictures_alone() -> None:
    """/cameras' policy lets it show images from the other cameras' viewers, on the host the
    browser reached this one by, and from nowhere else; every other answer keeps the strict
    one."""
    from edge.viewer.server import _hostname

    server = ViewerServer(port=0)
    url = server.start()
    try:
        server.cameras = [("front", server.port), ("rear", 50001), ("left", 50002)]
        status, headers, body = get(url + "cameras")
        assert status == 200 and b"/cameras.js" in body
        policy = headers["content-security-policy"]
        assert "img-src 'self' blob: http://127.0.0.1:50001 http://127.0.0.1:50002;" in policy
        assert f":{server.port}" not in policy and "default-src 'self'" in policy
        by_name = get(url + "cameras", headers={"Host": f"localhost:{server.port}"})[1]
        assert "http://localhost:50001 http://localhost:50002" in by_name["content-security-policy"]
        assert get(url + "stats")[1]["content-security-policy"] == (
            "default-src 'self'; img-src 'self' blob:; frame-ancestors 'none'"
        )
        assert get(url + "cameras.js")[0] == 200
    finally:
        server.close()
    assert [_hostname(h) for h in ("127.0.0.1:8080", "[::1]:8080", "localhost", "[::1]")] == [
        "127.0.0.1",
        "[::1]",
        "localhost",
        "[::1]",
    ]
