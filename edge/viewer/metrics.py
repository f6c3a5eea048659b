"""The run's statistics in Prometheus' text format, for a scraper (Prometheus, VictoriaMetrics,
Grafana Agent, a Telegraf input): the viewer's ``/metrics``, and a sink,
``http://HOST:PORT/metrics``, that serves it and nothing else (no picture, no page: one a
fleet's monitoring may reach on 0.0.0.0 without reaching the camera).

Counters are the run's totals since it started. Each stage's latency is there twice: as a
histogram over the whole run (``edge_stage_duration_seconds``: what a scraper rates over an
interval, and adds across runs and cameras, for histogram_quantile), and as gauges of the
rolling window the viewer charts (the last frames' p50 / p90 / p99 / max, with how many frames
the window holds): what the page shows.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from edge.viewer.server import LOOPBACK, ViewerServer

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PATH = "/metrics"
# OpenTelemetry's specification gives a Prometheus exporter 9464 unless told otherwise
PORT = 9464

# (snapshot key, metric, help, scale): the run's totals
_COUNTERS = (
    ("frames_in", "edge_frames_in_total", "Frames the source delivered.", 1.0),
    ("frames_out", "edge_frames_out_total", "Frames through the engines and the sinks.", 1.0),
    ("drops", "edge_drops_total", "Frames dropped because the engines were busy.", 1.0),
    ("deadline_misses", "edge_deadline_misses_total", "Frames over --deadline-ms end to end.", 1.0),
    ("reconnects", "edge_reconnects_total", "Times the source was opened again after it failed.", 1.0),
    (
        "source_gap_ms",
        "edge_source_gap_seconds_total",
        "Time the source delivered nothing while reopened.",
        1e-3,
    ),
    ("sink_errors", "edge_sink_errors_total", "Sink writes that failed.", 1.0),
    ("undecodable", "edge_undecodable_frames_total", "Frames the source could not decode.", 1.0),
    (
        "warnings_total",
        "edge_warning_events_total",
        "Lines of the warnings log: a warning began or cleared.",
        1.0,
    ),
)
_QUANTILES = (("p50", "0.5"), ("p90", "0.9"), ("p99", "0.99"))
_Sample = tuple[str, dict[str, str], float]  # (name suffix, labels, value)


def prometheus_text(
    snapshot: dict[str, Any],
    *,
    histograms: dict[str, dict[str, Any]] | None = None,
    board: dict[str, dict[str, float]] | None = None,
) -> str:
    """The exposition of a viewer ``snapshot`` (ViewerServer.snapshot), the tracker's
    ``histograms`` (LatencyTracker.histograms) and the ``board``'s sensors (BoardSensors.read);
    every sample of the run labelled with its camera where the run has several (edge run
    --camera), the board's not (they are no camera's)."""
    camera = {"camera": snapshot["camera"]} if snapshot.get("camera") else {}
    out: list[str] = []

    def family(
        name: str, kind: str, help_text: str, samples: list[_Sample], *, base: dict[str, str] = camera
    ) -> None:
        """One metric family; a sample's name is the family's and its suffix (a histogram's
        _bucket, _sum and _count)."""
        if not samples:
            return
        out.append(f"# HELP {name} {_escape_help(help_text)}")
        out.append(f"# TYPE {name} {kind}")
        out.extend(
            f"{name}{suffix}{_labels({**base, **labels})} {_number(v)}" for suffix, labels, v in samples
        )

    for key, name, help_text, scale in _COUNTERS:
        if snapshot.get(key) is not None:
            family(name, "counter", help_text, [("", {}, float(snapshot[key]) * scale)])
    family("edge_fps", "gauge", "Frames a second over the rolling window.", _if(snapshot.get("fps")))
    deadline = snapshot.get("deadline_ms")
    family(
        "edge_deadline_seconds",
        "gauge",
        "The end-to-end deadline (--deadline-ms).",
        _if(None if deadline is None else deadline / 1e3),
    )
    family("edge_uptime_seconds", "gauge", "Seconds since the viewer started.", _if(snapshot.get("t")))
    stages = {name: st for name, st in (snapshot.get("stages_ms") or {}).items() if st.get("count")}
    family(
        "edge_stage_latency_seconds",
        "gauge",
        "A stage's latency over the rolling window (end_to_end: the whole frame).",
        [
            ("", {"stage": name, "quantile": q}, st[key] / 1e3)
            for name, st in stages.items()
            for key, q in (*_QUANTILES, ("max", "1"))
        ],
    )
    family(
        "edge_stage_duration_seconds",
        "histogram",
        "A stage's latency over the whole run (end_to_end: the whole frame).",
        [
            sample
            for name, h in (histograms or {}).items()
            if h["count"]
            for sample in (
                *[("_bucket", {"stage": name, "le": _number(le)}, float(n)) for le, n in h["buckets"]],
                ("_sum", {"stage": name}, float(h["sum_s"])),
                ("_count", {"stage": name}, float(h["count"])),
            )
        ],
    )
    family(
        "edge_stage_window_frames",
        "gauge",
        "Frames in a stage's rolling window.",
        [("", {"stage": name}, float(st["count"])) for name, st in stages.items()],
    )
    family(
        "edge_engine_info",
        "gauge",
        "The engines the run uses: kind, and model, backend, precision and size.",
        [
            ("", {"kind": kind, "engine": str(what)}, 1.0)
            for kind, what in (snapshot.get("engines") or {}).items()
        ],
    )
    sensors = board or {}
    family(
        "edge_board_power_watts",
        "gauge",
        "A power monitor's rail (Jetson: VDD_IN is the whole module's input).",
        [("", {"rail": rail}, w) for rail, w in (sensors.get("power_w") or {}).items()],
        base={},
    )
    family(
        "edge_board_temperature_celsius",
        "gauge",
        "A thermal zone's temperature.",
        [("", {"zone": zone}, c) for zone, c in (sensors.get("temperature_c") or {}).items()],
        base={},
    )
    return "\n".join(out) + "\n"


def _if(value: Any) -> list[_Sample]:
    return [] if value is None else [("", {}, float(value))]


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape_value(v)}"' for k, v in labels.items()) + "}"


def _escape_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _number(value: float) -> str:
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


class BoardSensors:
    """The board's power rails (edge.power) and thermal zones (edge.thermal) under ``root``:
    found at the first reading, read at each (a scrape's, on the server's executor: a slow
    sysfs read holds neither the frames nor the viewer's streams)."""

    def __init__(self, root: str | Path = "/") -> None:
        self.root = root
        self._found: tuple[list[Any], list[Any]] | None = None

    def read(self) -> dict[str, dict[str, float]]:
        from edge.power import find_rails
        from edge.thermal import find_zones

        if self._found is None:
            self._found = (find_rails(self.root), find_zones(self.root))
        rails, zones = self._found
        return {
            "power_w": {r.name: w for r in rails if (w := r.read_w()) is not None},
            "temperature_c": {z.name: c for z in zones if (c := z.read_c()) is not None},
        }


class MetricsSink:
    """``http://HOST:PORT/metrics``: the run's statistics for a scraper, and nothing else.

    Draws nothing (``shows`` is empty) and keeps no frame; it counts the warnings log's lines.
    """

    for_watching = True  # holds no recording (edge.stream.writers)
    shows: frozenset[str] = frozenset()

    def __init__(
        self, uri: str, *, host: str = "127.0.0.1", port: int = PORT, sysfs_root: str | Path = "/"
    ) -> None:
        from edge.stream.object_sinks import WarningLines

        self.uri = uri
        self.frames = 0
        self._warnings = WarningLines()
        self.server = ViewerServer(host=host, port=port, metrics_only=True, sysfs_root=sysfs_root)
        url = self.server.start()
        where = "" if host in LOOPBACK else " (statistics only: no picture is served)"
        print(f"metrics: {url.rstrip('/')}{PATH}{where}", file=sys.stderr, flush=True)

    @property
    def url(self) -> str:
        return self.server.url.rstrip("/") + PATH

    def attach(self, tracker: Any) -> None:
        self.server.tracker = tracker

    def show_camera(self, name: str) -> None:
        """Its samples carry the camera's name, of several (edge run --camera)."""
        self.server.camera = name

    def pictures_only(self) -> None:
        """edge record: nothing to change (it serves no picture)."""

    def write(self, image: Any, seq: int, t_capture_ns: int | None = None) -> None:
        self.frames += 1

    def write_result(self, result: Any) -> None:
        events = self._warnings.events(result)
        if events:
            self.server.publish_warnings(events)
        self.frames += 1

    def close(self) -> None:
        self.server.close()
