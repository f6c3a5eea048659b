"""The run's statistics for Prometheus: the text format read back by prometheus_client's own
parser, a real `edge run` serving them alone on a real port, and the viewer serving them too."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from edge.errors import SinkError
from edge.stream.camera_sinks import split_sinks
from edge.stream.sinks import open_sink
from edge.viewer.metrics import CONTENT_TYPE, MetricsSink, prometheus_text
from edge.viewer.sink import parse_viewer_uri
from tests.test_power import fake_sysfs
from tests.test_thermal import fake_thermal
from tests.viewer.helpers import EdgeRun, get, write_video


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample as Prometheus reads it: (name, sorted labels) -> value; and each family's
    type checked against its name's suffix."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
        if family.type == "counter":
            assert all(s.name.endswith("_total") for s in family.samples), family.name
    return out


SNAPSHOT: dict[str, Any] = {
    "t": 12.5,
    "camera": None,
    "frames_in": 40,
    "frames_out": 37,
    "drops": 3,
    "deadline_misses": 1,
    "deadline_ms": 250.0,
    "reconnects": 2,
    "source_gap_ms": 1500.0,
    "sink_errors": 0,
    "undecodable": 0,
    "warnings_total": 4,
    "fps": 16.75,
    "stages_ms": {
        "panoptic": {"count": 30, "mean": 50.0, "p50": 48.0, "p90": 60.0, "p99": 70.0, "max": 75.0},
        "depth": {"count": 0},
        "end_to_end": {"count": 30, "mean": 90.0, "p50": 88.0, "p90": 99.0, "p99": 120.0, "max": 130.0},
    },
    "engines": {"panoptic": 'panoptic_tiny onnxruntime fp32 128x256 "a\\b"\nx'},
}


HISTOGRAMS: dict[str, dict[str, Any]] = {
    "panoptic": {
        "buckets": [(0.025, 0), (0.05, 21), (0.075, 30), (float("inf"), 31)],
        "count": 31,
        "sum_s": 1.55,
    },
    "depth": {"buckets": [(float("inf"), 0)], "count": 0, "sum_s": 0.0},
}


def test_the_text_format_reads_back_as_prometheus_reads_it() -> None:
    text = prometheus_text([(SNAPSHOT, HISTOGRAMS)], uptime_s=12.5)
    got = samples(text)
    (histogram,) = [f for f in text_string_to_metric_families(text) if f.type == "histogram"]
    assert histogram.name == "edge_stage_duration_seconds"
    assert got[("edge_stage_duration_seconds_bucket", (("le", "0.05"), ("stage", "panoptic")))] == 21
    assert got[("edge_stage_duration_seconds_bucket", (("le", "+Inf"), ("stage", "panoptic")))] == 31
    assert got[("edge_stage_duration_seconds_count", (("stage", "panoptic"),))] == 31
    assert got[("edge_stage_duration_seconds_sum", (("stage", "panoptic"),))] == 1.55
    assert got[("edge_frames_out_total", ())] == 37 and got[("edge_drops_total", ())] == 3
    assert got[("edge_source_gap_seconds_total", ())] == 1.5
    assert got[("edge_warning_events_total", ())] == 4 and got[("edge_deadline_seconds", ())] == 0.25
    assert got[("edge_fps", ())] == 16.75 and got[("edge_uptime_seconds", ())] == 12.5
    assert got[("edge_stage_latency_seconds", (("quantile", "0.99"), ("stage", "end_to_end")))] == 0.12
    assert got[("edge_stage_latency_seconds", (("quantile", "1"), ("stage", "panoptic")))] == 0.075
    assert got[("edge_stage_window_frames", (("stage", "panoptic"),))] == 30
    assert not [k for k in got if ("stage", "depth") in k[1]], "a stage with no frames in its window"
    # quotes, a backslash and a newline in a label value survive the escaping
    (info,) = [k for k in got if k[0] == "edge_engine_info"]
    assert dict(info[1])["engine"] == SNAPSHOT["engines"]["panoptic"]


def test_each_cameras_samples_name_it_and_nothing_is_said_before_the_engines() -> None:
    rear = {**SNAPSHOT, "camera": "rear", "frames_out": 12}
    text = prometheus_text([({**SNAPSHOT, "camera": "front"}, HISTOGRAMS), (rear, None)], uptime_s=3.0)
    got = samples(text)
    assert got[("edge_frames_out_total", (("camera", "front"),))] == 37
    assert got[("edge_frames_out_total", (("camera", "rear"),))] == 12
    assert all(
        dict(labels).get("camera") in ("front", "rear")
        for name, labels in got
        if name != "edge_uptime_seconds"
    )
    # one family of each name, its cameras' samples together (as a scraper requires)
    names = [f.name for f in text_string_to_metric_families(text)]
    assert len(names) == len(set(names))
    # a viewer that has no tracker yet (the engines still loading): its uptime and warnings only
    early = samples(prometheus_text([({"camera": None, "warnings_total": 0}, None)], uptime_s=0.4))
    assert set(early) == {("edge_uptime_seconds", ()), ("edge_warning_events_total", ())}


def test_metrics_uris_and_their_defaults() -> None:
    assert parse_viewer_uri("http:///metrics") == ("127.0.0.1", 9464)
    assert parse_viewer_uri("http://0.0.0.0:9100/metrics") == ("0.0.0.0", 9100)
    with pytest.raises(SinkError, match=r"or http://HOST:PORT/metrics \(statistics for Prometheus alone\)"):
        parse_viewer_uri("http://127.0.0.1:9464/stats")
    # of several cameras: one endpoint they share (each sample names its camera), a viewer each
    own, shared = split_sinks(["http://127.0.0.1:9500/metrics", "http://127.0.0.1:0"], ["front", "rear"])
    assert own == {"front": ["http://127.0.0.1:0"], "rear": ["http://127.0.0.1:0"]}
    assert shared == ["http://127.0.0.1:9500/metrics"]


def test_a_metrics_sink_serves_its_statistics_and_nothing_else() -> None:
    sink = open_sink("http://127.0.0.1:0/metrics")
    assert isinstance(sink, MetricsSink) and sink.url.endswith("/metrics")
    try:
        assert sink.shows == frozenset()  # draws nothing for anyone
        status, headers, body = get(sink.url)
        assert status == 200 and headers["content-type"] == CONTENT_TYPE
        assert ("edge_uptime_seconds", ()) in samples(body.decode())
        base = sink.url.removesuffix("metrics")
        for path in ("", "stats", "history", "stream.mjpg", "frame/composite.jpg", "viewer.js"):
            assert get(base + path)[0] == 404, path
        assert get(sink.url, headers={"Host": "attacker.example:9464"})[0] == 403
    finally:
        sink.close()
    with pytest.raises(OSError):
        get(sink.url)


def test_a_live_run_serves_advancing_metrics(tiny_engines: Path, tmp_path: Path) -> None:
    """`edge run` with the metrics sink alone, as a service would run it: real frames counted."""
    write_video(tmp_path / "drive.mp4", 40)
    args = ["drive.mp4", "--engines", str(tiny_engines), "--loop", "--realtime"]
    run = EdgeRun([*args, "--sink", "http://127.0.0.1:0/metrics"], cwd=tmp_path, says="metrics: ")
    try:
        assert run.url.endswith("/metrics")
        first = _when(run, lambda got: got.get(("edge_frames_out_total", ()), 0) >= 2)
        later = _when(
            run,
            lambda got: got[("edge_frames_out_total", ())] > first[("edge_frames_out_total", ())],
        )
        for stage in ("preprocess", "panoptic", "depth", "postprocess", "end_to_end"):
            p50 = later[("edge_stage_latency_seconds", (("quantile", "0.5"), ("stage", stage)))]
            p99 = later[("edge_stage_latency_seconds", (("quantile", "0.99"), ("stage", stage)))]
            assert 0 < p50 <= p99, stage
        assert later[("edge_fps", ())] > 0
        # the run's histogram: every frame so far, each counted once, in cumulative buckets
        count = later[("edge_stage_duration_seconds_count", (("stage", "end_to_end"),))]
        assert count >= later[("edge_frames_out_total", ())] - 1  # scraped a frame apart at most
        buckets = sorted(
            (float(dict(k[1])["le"]), v)
            for k, v in later.items()
            if k[0] == "edge_stage_duration_seconds_bucket" and dict(k[1])["stage"] == "end_to_end"
        )
        assert [v for _, v in buckets] == sorted(v for _, v in buckets) and buckets[-1] == (
            float("inf"),
            count,
        )
        kinds = {dict(k[1])["kind"] for k in later if k[0] == "edge_engine_info"}
        assert kinds == {"panoptic", "depth"}
        # the run's watch reached the sink: its health is said, and edge_stuck with it
        assert get(run.url.removesuffix("metrics") + "healthz")[:3:2] == (200, b"ok\n")
        assert later[("edge_stuck", ())] == 0
    finally:
        code, out, err = run.stop()
    assert code == 130 and "Traceback" not in err, err
    assert "end_to_end" in out


def _when(
    run: EdgeRun, ready: Any, timeout: float = 90
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The run's samples once ``ready`` holds for them."""
    deadline = time.monotonic() + timeout
    while True:
        status, _, body = get(run.url)
        assert status == 200
        got = samples(body.decode())
        if ready(got):
            return got
        if run.proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"the run's metrics did not come to hold in {timeout} s: {got}")
        time.sleep(0.2)


def test_the_readme_names_every_metric_and_no_other() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    named = set(re.findall(r"`(edge_[a-z_]+)(?:\{[^`]*\})?`", readme))
    board = {"power_w": {"VDD_IN": 6.0}, "temperature_c": {"cpu-thermal": 45.5}}
    text = prometheus_text([(SNAPSHOT, HISTOGRAMS)], uptime_s=1.0, board=board, stuck=False)
    families = {f.name for f in text_string_to_metric_families(text)}
    # the parser names a counter without its _total, as Prometheus' data model does
    exported = {f"{name}_total" if f"{name}_total" in named else name for name in families}
    assert named == exported


def test_a_taken_port_is_said_as_the_metrics_sinks() -> None:
    sink = open_sink("http://127.0.0.1:0/metrics")
    try:
        port = sink.server.port
        with pytest.raises(SinkError) as caught:
            open_sink(f"http://127.0.0.1:{port}/metrics")
        said = str(caught.value)
        assert said.startswith(f"metrics sink cannot listen on 127.0.0.1:{port}: ")
        assert (
            f"is another metrics sink running? choose another port, e.g. http://127.0.0.1:{port + 1}/metrics"
            in said
        )
    finally:
        sink.close()


def test_the_boards_power_and_temperatures_are_read_at_each_scrape(tmp_path: Path) -> None:
    """A Jetson-like board's sysfs (a copy of its layout): each rail's watts and each zone's
    degrees, read again at every scrape, and never labelled with a camera."""
    ina = fake_sysfs(tmp_path)
    zones = fake_thermal(tmp_path)
    sink = MetricsSink("http://127.0.0.1:0/metrics", port=0, sysfs_root=tmp_path)
    sink.show_camera("front")
    try:
        got = samples(get(sink.url)[2].decode())
        assert got[("edge_board_power_watts", (("rail", "VDD_IN"),))] == pytest.approx(6.0)
        assert got[("edge_board_power_watts", (("rail", "VDD_SOC"),))] == pytest.approx(1.5)
        assert got[("edge_board_temperature_celsius", (("zone", "cpu-thermal"),))] == 45.5
        assert ("edge_board_temperature_celsius", (("zone", "cv0-thermal"),)) not in got  # its sensor is off
        assert got[("edge_uptime_seconds", ())] >= 0
        (ina / "curr1_input").write_text("2000\n")
        (zones / "thermal_zone0" / "temp").write_text("71250\n")
        again = samples(get(sink.url)[2].decode())
        assert again[("edge_board_power_watts", (("rail", "VDD_IN"),))] == pytest.approx(10.0)
        assert again[("edge_board_temperature_celsius", (("zone", "cpu-thermal"),))] == 71.25
    finally:
        sink.close()


def test_edge_record_serves_its_metrics(tmp_path: Path) -> None:
    """A recording's frames read and written, scraped while it records (edge record counted
    no frame in until 2026-12-06: its tracker charted the writes alone)."""
    args = ["synthetic://?size=128x256", "drive.mkv", "http://127.0.0.1:0/metrics", "--max-frames", "100000"]
    run = EdgeRun(args, cwd=tmp_path, command="record", says="metrics: ")
    try:
        got = _when(run, lambda got: got.get(("edge_frames_out_total", ()), 0) >= 5)
        assert got[("edge_frames_in_total", ())] >= got[("edge_frames_out_total", ())]
        assert got[("edge_stage_duration_seconds_count", (("stage", "sink"),))] >= 5
        assert get(run.url.removesuffix("metrics") + "healthz")[:3:2] == (200, b"ok\n")
    finally:
        code, _, err = run.stop()
    assert code == 130 and "Traceback" not in err, err


def test_healthz_says_what_the_runs_watch_finds() -> None:
    """The run's own watch (edge.stream.watchdog.ServiceWatch, fed what holds the run up):
    /healthz 200 before it and while the run moves, 503 and the hold while it is stuck; and
    edge_stuck says the same to a scraper."""
    from edge.stream.watchdog import Hold, ServiceWatch

    holds: list[Hold] = []
    watch = ServiceWatch(
        status=lambda: "frame 12", progress=lambda: holds, watchdog_s=None, send=lambda *a: True
    )
    sink = MetricsSink("http://127.0.0.1:0/metrics", port=0)
    health = sink.url.removesuffix("metrics") + "healthz"
    try:
        assert get(health)[0] == 200 and get(health)[2] == b"starting\n"
        assert ("edge_stuck", ()) not in samples(get(sink.url)[2].decode())  # no watch yet: not said
        watch.tell([sink])
        watch.tick()
        assert get(health)[:3:2] == (200, b"ok\n")
        assert samples(get(sink.url)[2].decode())[("edge_stuck", ())] == 0
        holds.append(
            Hold(seconds=95.0, what="sink 'drive.mkv' has been writing frame 7 for 95 s", sink="drive.mkv")
        )
        watch.tick()
        status, _, body = get(health)
        assert status == 503 and body == b"stuck: sink 'drive.mkv' has been writing frame 7 for 95 s\n"
        assert samples(get(sink.url)[2].decode())[("edge_stuck", ())] == 1
        holds.clear()
        watch.tick()
        assert get(health)[:3:2] == (200, b"ok\n")
    finally:
        sink.close()
