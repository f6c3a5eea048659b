"""deploy/: the Grafana dashboard's queries parse as PromQL and ask only for metrics edge's
/metrics serves; the Prometheus scrape job points at the metrics sink's path and port."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import promql_parser
import pytest

from edge.viewer.metrics import PATH, PORT, prometheus_text
from tests.viewer.test_metrics import HISTOGRAMS, SNAPSHOT, samples

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


def served() -> set[str]:
    """Every sample name /metrics serves (a histogram's _bucket, _sum and _count, a counter's
    _total) for a run with every part: stages, histograms, engines and the board."""
    board = {"power_w": {"VDD_IN": 6.0}, "temperature_c": {"cpu-thermal": 45.5}}
    text = prometheus_text(
        [({**SNAPSHOT, "camera": "front"}, HISTOGRAMS)], uptime_s=1.0, board=board, stuck=False
    )
    return {name for name, _ in samples(text)}


def queries(dashboard: dict[str, Any]) -> list[str]:
    return [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]


def test_the_dashboards_queries_parse_and_ask_for_served_metrics() -> None:
    dashboard = json.loads((DEPLOY / "grafana/edge.json").read_text())
    names = served()
    exprs = queries(dashboard)
    assert len(exprs) >= 8
    for expr in exprs:
        # Grafana's own interval variable is a duration to Prometheus
        promql_parser.parse(expr.replace("$__rate_interval", "5m"))
        asked = set(re.findall(r"\bedge_[a-z_]+", expr))
        assert asked and asked <= names, (expr, asked - names)
    # every family the run serves is on a panel but the engines' description and the windows' sizes
    shown = {n for e in exprs for n in re.findall(r"\bedge_[a-z_]+", e)}
    bare = {re.sub(r"_(bucket|sum|count)$", "", n) for n in names}
    left = {n for n in bare if not any(s.startswith(n) for s in shown)}
    assert left == {
        "edge_engine_info",
        "edge_stage_window_frames",
        "edge_uptime_seconds",
        "edge_fps",
        "edge_frames_in_total",
        "edge_deadline_seconds",
        "edge_source_gap_seconds_total",
        "edge_undecodable_frames_total",
    }
    variable = next(v for v in dashboard["templating"]["list"] if v["name"] == "instance")
    assert re.search(r"label_values\((edge_[a-z_]+), instance\)", variable["definition"]).group(1) in names
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_a_query_that_does_not_parse_is_caught() -> None:
    with pytest.raises(ValueError):
        promql_parser.parse("rate(edge_frames_out_total[5m]")


def test_the_scrape_job_points_at_the_metrics_sink() -> None:
    text = (DEPLOY / "prometheus/edge.yml").read_text()
    assert f"metrics_path: {PATH}" in text
    targets = re.findall(r"^\s+- ([\w.-]+):(\d+)$", text, re.M)
    assert targets and all(int(port) == PORT for _, port in targets)


def test_the_example_rig_is_one_edge_run_takes() -> None:
    """deploy/rig/car.toml reads, and edge run's checks of every camera's settings pass on it
    (all but its lens file, which is the user's to make)."""
    from edge.cli_args import camera_shares, run_cameras_of
    from edge.cli_frames import fits_of, flips_of, undistorts_of
    from edge.cli_rig import run_of
    from edge.cli_tracking import object_tracker

    rig = DEPLOY / "rig/car.toml"
    args = run_of(rig)
    cameras = run_cameras_of(args)
    assert cameras is not None and list(cameras) == ["front", "rear"]
    trackers = object_tracker(args)
    assert (trackers["rear"].facing, trackers["rear"].mount_ahead_m) == ("rear", -1.0)
    assert trackers["front"].path_half_width_m == 1.3
    assert camera_shares(args, cameras) == {"front": 2.0}
    assert fits_of(args) == {"front": "crop", "rear": "stretch"}
    assert flips_of(args) == {"front": "none", "rear": "rotate-180"}
    assert undistorts_of(args) == {"front": None, "rear": str(rig.parent / "rear.yaml")}
