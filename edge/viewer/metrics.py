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
import threading
from collections.abc import Sequence
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


Run = tuple[dict[str, Any], "dict[str, dict[str, Any]] | None"]  # (snapshot, histograms)


def prometheus_text(
    runs: Sequence[Run],
    *,
    uptime_s: float | None = None,
    board: dict[str, dict[str, float]] | None = None,
    stuck: bool | None = None,
) -> str:
    """The exposition of ``runs``: each a viewer snapshot (ViewerServer.snapshot: the tracker's
    rolling statistics, the counts, the camera) and the tracker's ``histograms``
    (LatencyTracker.histograms), each sample labelled with its run's camera where it has one
    (edge run --camera); then the server's uptime, whether the run's watch finds it ``stuck``
    (None: no watch yet) and the ``board``'s sensors (BoardSensors.read), which are no camera's."""
    families: dict[str, tuple[str, str, list[_Sample]]] = {}

    def family(name: str, kind: str, help_text: str, samples: list[_Sample], base: dict[str, str]) -> None:
        """Samples of one metric family; a sample's name is the family's and its suffix (a
        histogram's _bucket, _sum and _count)."""
        entry = families.setdefault(name, (kind, help_text, []))
        entry[2].extend((suffix, {**base, **labels}, v) for suffix, labels, v in samples)

    for snapshot, histograms in runs:
        _run_samples(family, snapshot, histograms)
    family("edge_uptime_seconds", "gauge", "Seconds since the server started.", _if(uptime_s), {})
    family(
        "edge_stuck",
        "gauge",
        "1 while the run's watch finds it stuck (a sink inside a write, the camera inside a read, "
        "no frame out for too long; /healthz says what), else 0.",
        _if(None if stuck is None else float(stuck)),
        {},
    )
    sensors = board or {}
    family(
        "edge_board_power_watts",
        "gauge",
        "A power monitor's rail (Jetson: VDD_IN is the whole module's input).",
        [("", {"rail": rail}, w) for rail, w in (sensors.get("power_w") or {}).items()],
        {},
    )
    family(
        "edge_board_temperature_celsius",
        "gauge",
        "A thermal zone's temperature.",
        [("", {"zone": zone}, c) for zone, c in (sensors.get("temperature_c") or {}).items()],
        {},
    )
    out: list[str] = []
    for name, (kind, help_text, samples) in families.items():
        if samples:
            out.append(f"# HELP {name} {_escape_help(help_text)}")
            out.append(f"# TYPE {name} {kind}")
            out.extend(f"{name}{suffix}{_labels(labels)} {_number(v)}" for suffix, labels, v in samples)
    return "\n".join(out) + "\n"


def _run_samples(family: Any, snapshot: dict[str, Any], histograms: dict[str, dict[str, Any]] | None) -> None:
    """One run's families (prometheus_text's ``family``), labelled with its camera."""
    camera = {"camera": snapshot["camera"]} if snapshot.get("camera") else {}
    for key, name, help_text, scale in _COUNTERS:
        if snapshot.get(key) is not None:
            family(name, "counter", help_text, [("", {}, float(snapshot[key]) * scale)], camera)
    family("edge_fps", "gauge", "Frames a second over the rolling window.", _if(snapshot.get("fps")), camera)
    deadline = snapshot.get("deadline_ms")
    family(
        "edge_deadline_seconds",
        "gauge",
        "The end-to-end deadline (--deadline-ms).",
        _if(None if deadline is None else deadline / 1e3),
        camera,
    )
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
        camera,
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
        camera,
    )
    family(
        "edge_stage_window_frames",
        "gauge",
        "Frames in a stage's rolling window.",
        [("", {"stage": name}, float(st["count"])) for name, st in stages.items()],
        camera,
    )
    family(
        "edge_engine_info",
        "gauge",
        "The engines the run uses: kind, and model, backend, precision and size.",
        [
            ("", {"kind": kind, "engine": str(what)}, 1.0)
            for kind, what in (snapshot.get("engines") or {}).items()
        ],
        camera,
    )


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


class _Camera:
    """One camera's statistics as the metrics sink serves them."""

    def __init__(self, tracker: Any) -> None:
        from edge.stream.object_sinks import WarningLines

        self.tracker = tracker
        self.warnings = WarningLines()
        self.warning_events = 0


class MetricsSink:
    """``http://HOST:PORT/metrics``: the run's statistics for a scraper, and nothing else.

    Draws nothing (``shows`` is empty) and keeps no frame; it counts the warnings log's lines.
    Of several cameras it is one sink they share (camera_sinks.SharedSink), each camera's
    statistics added under its name (``add_camera``) and its samples labelled with it.
    """

    for_watching = True  # holds no recording (edge.stream.writers)
    shows: frozenset[str] = frozenset()

    def __init__(
        self, uri: str, *, host: str = "127.0.0.1", port: int = PORT, sysfs_root: str | Path = "/"
    ) -> None:
        self.uri = uri
        self.frames = 0
        self._lock = threading.Lock()
        self._cameras: dict[str | None, _Camera] = {}  # None: a run of one camera, unnamed
        self.server = ViewerServer(host=host, port=port, metrics_only=True, sysfs_root=sysfs_root)
        self.server.runs = self.runs
        url = self.server.start()
        where = "" if host in LOOPBACK else " (statistics only: no picture is served)"
        print(f"metrics: {url.rstrip('/')}{PATH}{where}", file=sys.stderr, flush=True)

    @property
    def url(self) -> str:
        return self.server.url.rstrip("/") + PATH

    def attach(self, tracker: Any) -> None:
        with self._lock:
            self._cameras[None] = _Camera(tracker)

    def show_camera(self, name: str) -> None:
        """Its samples carry the camera's name."""
        with self._lock:
            if None in self._cameras:
                self._cameras[name] = self._cameras.pop(None)

    def show_watch(self, watch: Any) -> None:
        """The run's watch (edge.stream.watchdog): /healthz and edge_stuck say what it finds."""
        self.server.watch = watch

    def add_camera(self, name: str, tracker: Any) -> None:
        """Camera ``name``'s statistics too, its samples labelled with its name."""
        with self._lock:
            self._cameras[name] = _Camera(tracker)

    def runs(self) -> list[Run]:
        """Each camera's snapshot and histograms, for prometheus_text."""
        with self._lock:
            cameras = list(self._cameras.items())
        return [
            (
                {"camera": name, "warnings_total": c.warning_events, **c.tracker.rolling()},
                c.tracker.histograms(),
            )
            for name, c in cameras
        ]

    def pictures_only(self) -> None:
        """edge record: nothing to change (it serves no picture)."""

    def write(self, image: Any, seq: int, t_capture_ns: int | None = None) -> None:
        self.frames += 1

    def write_result(self, result: Any) -> None:
        name = result.frame.meta.get("camera")
        with self._lock:
            camera = self._cameras.get(name) or self._cameras.get(None)
        if camera is not None:
            camera.warning_events += len(camera.warnings.events(result))
        self.frames += 1

    def close(self) -> None:
        self.server.close()
