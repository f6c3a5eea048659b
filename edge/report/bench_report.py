"""Write an ``edge bench`` result as bench.json, report.md, report.html and three PNG plots.

Every file is written to a temporary name and renamed, so an interrupted report never
leaves a half file. The HTML page embeds its plots (base64), so it can be mailed or
attached to a CI run on its own.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

import numpy as np

from edge.bench_streams import KEEPS_UP_DROPPED
from edge.power import power_line
from edge.util.fs import atomic_write_bytes, atomic_write_json

E2E = "end_to_end"
PLOTS = {
    "cdf.png": "End-to-end latency CDF per configuration",
    "stages.png": "Mean time per stage (stacked)",
    "timeline.png": "End-to-end latency over the run",
}
# stages that make up a frame's latency, in order; engines run side by side, so the
# stacked bar uses the wall time of both together, with each engine listed in the table;
# multi-stream: turn, the wait for the engines the other streams share; sink; queues, the rest
# (the stacked bar is then the end-to-end mean)
STACKED = ("preprocess", "turn", "engines", "postprocess", "sink", "queues")
STAT_KEYS = ("mean", "p50", "p90", "p95", "p99", "max")


def write_report(data: dict[str, Any], out_dir: str | Path) -> dict[str, Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pngs = {name: _plot(name, data) for name in PLOTS}
    files = {
        "json": out / "bench.json",
        "markdown": out / "report.md",
        "html": out / "report.html",
    }
    atomic_write_json(files["json"], data)
    for name, png in pngs.items():
        atomic_write_bytes(out / name, png)
        files[name] = out / name
    atomic_write_bytes(files["markdown"], markdown(data).encode())
    atomic_write_bytes(files["html"], page(data, pngs).encode())
    return files


def _fmt(v: Any, digits: int = 2) -> str:
    return f"{v:.{digits}f}" if isinstance(v, (int, float)) else "-"


def result_label(r: dict[str, Any]) -> str:
    """A configuration's label; one that Ctrl-C stopped short of the minimums says so."""
    return str(r["config"]["label"]) + ("" if r.get("complete", True) else " (incomplete)")


def interrupted_line(data: dict[str, Any]) -> str:
    i = data["interrupted"]
    return (
        f"Interrupted (Ctrl-C) during {i['during']}: {i['complete_configurations']} of "
        f"{i['configurations']} configuration(s) complete; a row marked incomplete stopped short "
        "of the minimum frames and duration."
    )


def unfinished_line(data: dict[str, Any]) -> str:
    u = data["unfinished"]
    return (
        f"Unfinished: written after {u['complete_configurations']} of {u['configurations']} "
        "configuration(s) were measured, by a run that had not finished (it was killed, or is still running)."
    )


def status_lines(data: dict[str, Any]) -> list[str]:
    """What stopped the run short, if anything: Ctrl-C, or an end before the report's last write."""
    if data.get("interrupted"):
        return [interrupted_line(data)]
    return [unfinished_line(data)] if data.get("unfinished") else []


def system_lines(data: dict[str, Any]) -> list[str]:
    s = data["system"]
    gpu = s.get("gpu") or {}
    jetson = s.get("jetson") or {}
    versions = ", ".join(f"{k} {v}" for k, v in (s.get("versions") or {}).items() if v)
    lines = [
        f"CPU: {s.get('cpu')} ({s.get('cpu_cores')} cores{_extensions(s)}), {s.get('platform')}, "
        f"Python {s.get('python')}",
        "GPU: "
        + (
            f"{gpu.get('name')} (compute capability {gpu.get('compute_capability')}, CUDA {gpu.get('cuda')})"
            if gpu
            else "none"
        ),
        f"Versions: {versions}",
    ]
    if jetson:
        lines.append(
            f"Jetson: {jetson.get('model')}, L4T {jetson.get('l4t')}, "
            f"power mode {jetson.get('power_mode') or 'unknown'}"
        )
    return lines


def _extensions(system: dict[str, Any]) -> str:
    # older result files have no cpu_extensions; they still render
    ext = system.get("cpu_extensions")
    return f"; {' '.join(ext)}" if ext else ""


def _engines(result: dict[str, Any]) -> dict[str, str]:
    """The engines a configuration ran (results written before they were recorded have none)."""
    engines = result.get("engines")
    return {str(k): str(v) for k, v in engines.items()} if isinstance(engines, dict) else {}


def postprocess_line(settings: dict[str, Any]) -> str:
    """What the postprocess stage measured (results before --no-draw existed all drew), and
    how frames of another shape went into the engines where they were padded or cropped
    (--fit pad, --fit crop)."""
    padded = {
        "pad": " Frames of another shape than the engines' were padded into them (--fit pad).",
        "crop": " Frames of another shape than the engines' were cropped to their middle (--fit crop).",
    }.get(settings.get("fit", "stretch"), "")
    if settings.get("draw", True):
        return (
            "Postprocess: panoptic fusion, overlay and depth colours (a run with a video or the viewer)."
            + padded
        )
    return "Postprocess: panoptic fusion only (--no-draw: a run into objects.jsonl or -)." + padded


def _frames(n: int) -> str:
    return f"{n} frame" if n == 1 else f"{n} frames"


def samples_line(data: dict[str, Any]) -> str:
    """Which of the source's frames were issued, and that reading them was not measured
    (results from before the frames were held read the source between frames)."""
    held = data.get("samples")
    if not held:
        return "Its frames were read as they were issued (fps includes reading them, listed as capture)."
    read = held["read_ms"]
    sizes = ", ".join(held.get("sizes") or ())  # recorded since --fit
    return (
        f"Its first {held['frames']} frames ({sizes + ', ' if sizes else ''}{held['megabytes']} MB) were "
        "read into memory first "
        f"({read['mean']:.1f} ms each, mean; not measured) and issued in turn."
    )


def scenario_line(data: dict[str, Any]) -> str:
    """How the frames were issued, and what a frame's latency then counts."""
    rate = data["settings"].get("rate_fps")
    if data["scenario"] != "multi-stream" or rate is None:
        return "Scenario: single-stream (one frame at a time, the next issued when it is done)."
    moments = (
        "spread evenly over a frame's period"
        if data["settings"].get("arrival") == "spread"
        else "all at the same moments"
    )
    differ = rates_text(data["settings"].get("rates_fps"))
    return (
        f"Scenario: multi-stream: each configuration's streams (cameras) get a frame {rate:g} times a "
        f"second{differ}, {moments}, and take turns at one set of engines; a frame the engines "
        "cannot take before its stream's next one arrives is dropped. A frame's latency runs from its "
        "arrival to the end of its sink, its wait for a turn (stage turn) and in the queues between "
        "the stages (queues) included; engines is the longer of the two, which run side by side. A stream "
        f"kept up where it dropped at most {KEEPS_UP_DROPPED:.0%} of its frames."
        + ranks_text(data["settings"].get("priorities"), data["settings"].get("shares"))
    )


def rates_text(rates: dict[str, float] | None) -> str:
    """The streams whose rate differs from the run's (--rate NAME=FPS), where given."""
    if not rates:
        return ""
    return " (" + ", ".join(f"{name} {fps:g}" for name, fps in rates.items()) + ": --rate NAME=FPS)"


def ranks_text(priorities: dict[str, int] | None, shares: dict[str, float] | None = None) -> str:
    """The streams' ranks at the engines (--priority) and shares of the turns (--share),
    where given."""
    text = ""
    if priorities:
        ranked = ", ".join(f"{name} {rank}" for name, rank in priorities.items())
        text += (
            f" Ranks at the engines (--priority; a higher one goes first, every other stream 0): {ranked}."
        )
    if shares:
        shared = ", ".join(f"{name} {share:g}" for name, share in shares.items())
        text += f" Shares of the turns among a rank (--share; every other stream 1): {shared}."
    return text


def _multi_stream(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in data["results"] if "streams" in r]


def dropped_text(result: dict[str, Any]) -> str:
    """A multi-stream configuration's share of frames dropped, and whether it kept up."""
    kept = "kept up" if result["keeps_up"] else "did not keep up"
    return f"{result['dropped_fraction']:.1%} ({kept})"


def kept_up_line(data: dict[str, Any]) -> str | None:
    """Which multi-stream configurations kept up with their cameras (None: single-stream)."""
    rows = _multi_stream(data)
    if not rows:
        return None
    kept = [result_label(r) for r in rows if r["keeps_up"]]
    lost = [f"{result_label(r)} ({r['dropped_fraction']:.1%} dropped)" for r in rows if not r["keeps_up"]]
    return f"Kept up: {', '.join(kept) or 'none'}." + (f" Did not: {', '.join(lost)}." if lost else "")


STREAM_COLUMNS = ("stream", "rate", "frames", "fps", "arrived", "drops", "dropped", "p50", "p99", "max")


def _stream_label(name: str, stream: dict[str, Any]) -> str:
    """A stream's name, and what edge bench --rig made of its camera's frames: the size it
    asks, its lens file, flip and fit (``rear (720x1280, lens rear.yaml, flip rotate-180)``)."""
    said = [stream["size"]] if "size" in stream else []
    if "lens" in stream:
        said.append(f"lens {Path(stream['lens']).name}")
    said += [f"{key} {stream[key]}" for key in ("flip", "fit") if key in stream]
    return name + (f" ({', '.join(said)})" if said else "")


def stream_rows(result: dict[str, Any]) -> list[list[str]]:
    """A multi-stream configuration's streams, one row each (STREAM_COLUMNS)."""
    return [
        [
            _stream_label(name, s),
            _fmt(s.get("rate_fps", result["rate_fps"]), 1),  # reports before --rate NAME=FPS: the run's
            str(s["frames"]),
            _fmt(s["fps"], 1),
            str(s["arrived"]),
            str(s["drops"]),
            f"{s['dropped_fraction']:.1%}",
            *(_fmt(s[E2E + "_ms"].get(k)) for k in ("p50", "p99", "max")),
        ]
        for name, s in result["streams"].items()
    ]


def evenness_line(result: dict[str, Any], shared: bool = False) -> str:
    """How evenly the streams were served; ``shared``: with shares of the turns (--share)."""
    by = "by its share" if shared else "alike"
    rates = {s.get("rate_fps", result["rate_fps"]) for s in result["streams"].values()}
    at = f"at {result['rate_fps']:g} fps a stream" if len(rates) == 1 else "at the streams' rates"
    return (
        f"Evenness {result['evenness']:.2f} (each stream's frames over its fair part: all it asked for "
        f"where the engines had room, else a part of those served {by}; the least over the most); "
        f"{result['throughput_fps']:.1f} fps together {at}."
    )


def markdown(data: dict[str, Any]) -> str:
    st = data["settings"]
    kept_up = kept_up_line(data)
    lines = [
        "# edge bench report",
        "",
        f"Created {data['created']}. {scenario_line(data)} "
        f"Source `{data['source']}`. {samples_line(data)} {_frames(st['warmup'])} of warm-up, then at "
        f"least {_frames(st['min_frames'])} and {st['min_duration_s']} s. {postprocess_line(st)}",
        *[part for line in status_lines(data) for part in ("", f"**{line}**")],
        *(["", kept_up] if kept_up else []),
        "",
        "## System",
        "",
        *[f"- {line}" for line in system_lines(data)],
        "",
        "## End-to-end latency (ms)",
        "",
        "| configuration | frames | fps | " + " | ".join(STAT_KEYS) + " | drops |",
        "|---|---:|---:|" + "---:|" * len(STAT_KEYS) + "---:|",
    ]
    for r in data["results"]:
        e = r[E2E + "_ms"]
        lines.append(
            f"| {result_label(r)} | {r['frames']} | {_fmt(r['throughput_fps'], 1)} | "
            + " | ".join(_fmt(e.get(k)) for k in STAT_KEYS)
            + f" | {r['drops']} |"
        )
    if kept_up:
        lines += ["", "## Streams (end-to-end ms)", ""]
        for r in _multi_stream(data):
            lines += [
                f"### {result_label(r)}",
                "",
                "| " + " | ".join(STREAM_COLUMNS) + " |",
                "|---|" + "---:|" * (len(STREAM_COLUMNS) - 1),
                *["| " + " | ".join(row) + " |" for row in stream_rows(r)],
                "",
                evenness_line(r, shared=bool(st.get("shares"))),
                "",
            ]
    lines += ["", "## Per stage (ms)", ""]
    for r in data["results"]:
        lines += [
            f"### {result_label(r)}",
            "",
            *[f"- {kind}: `{what}`" for kind, what in _engines(r).items()],
            *([""] if _engines(r) else []),
            "| stage | " + " | ".join(STAT_KEYS) + " |",
            "|---|" + "---:|" * len(STAT_KEYS),
        ]
        for stage, s in r["stages_ms"].items():
            lines.append(f"| {stage} | " + " | ".join(_fmt(s.get(k)) for k in STAT_KEYS) + " |")
        gpu = {k: v for k, v in r["stages_ms"].items() if k.endswith("_gpu")}
        if gpu:
            total = sum(v["mean"] for v in gpu.values())
            lines += [
                "",
                f"GPU compute (CUDA events, sum of engines) {total:.2f} ms mean vs end-to-end "
                f"{r[E2E + '_ms']['mean']:.2f} ms.",
            ]
        if r.get("power"):
            lines += ["", power_line(r["power"])]
        lines.append("")
    lines += ["## Plots", ""]
    lines += [f"![{title}]({name})" for name, title in PLOTS.items()]
    return "\n".join(lines) + "\n"


def page(data: dict[str, Any], pngs: dict[str, bytes]) -> str:
    """The Markdown's content as HTML, with the plots inline."""
    esc = html.escape
    kept_up = kept_up_line(data)
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>edge bench report</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;"
        "text-align:right}td:first-child,th:first-child{text-align:left}img{max-width:100%}</style>",
        "</head><body><h1>edge bench report</h1>",
        f"<p>Created {esc(data['created'])}. {esc(scenario_line(data))} Source "
        f"<code>{esc(data['source'])}</code>. {esc(samples_line(data))} "
        f"{esc(postprocess_line(data['settings']))}</p>",
        *[f"<p><strong>{esc(line)}</strong></p>" for line in status_lines(data)],
        *([f"<p>{esc(kept_up)}</p>"] if kept_up else []),
        "<h2>System</h2><ul>",
        *[f"<li>{esc(line)}</li>" for line in system_lines(data)],
        "</ul><h2>End-to-end latency (ms)</h2>",
        "<table><tr><th>configuration</th><th>frames</th><th>fps</th>"
        + "".join(f"<th>{k}</th>" for k in STAT_KEYS)
        + "<th>drops</th></tr>",
    ]
    for r in data["results"]:
        e = r[E2E + "_ms"]
        parts.append(
            f"<tr><td>{esc(result_label(r))}</td><td>{r['frames']}</td>"
            f"<td>{_fmt(r['throughput_fps'], 1)}</td>"
            + "".join(f"<td>{_fmt(e.get(k))}</td>" for k in STAT_KEYS)
            + f"<td>{r['drops']}</td></tr>"
        )
    parts.append("</table>")
    if kept_up:
        parts.append("<h2>Streams (end-to-end ms)</h2>")
        for r in _multi_stream(data):
            parts.append(
                f"<h3>{esc(result_label(r))}</h3><table><tr>"
                + "".join(f"<th>{k}</th>" for k in STREAM_COLUMNS)
                + "</tr>"
                + "".join(
                    "<tr>" + "".join(f"<td>{esc(cell)}</td>" for cell in row) + "</tr>"
                    for row in stream_rows(r)
                )
                + f"</table><p>{esc(evenness_line(r, shared=bool(data['settings'].get('shares'))))}</p>"
            )
    parts.append("<h2>Per stage (ms)</h2>")
    for r in data["results"]:
        engines = "".join(f"<li>{esc(k)}: <code>{esc(v)}</code></li>" for k, v in _engines(r).items())
        parts.append(
            f"<h3>{esc(result_label(r))}</h3>"
            + (f"<ul>{engines}</ul>" if engines else "")
            + "<table><tr><th>stage</th>"
            + "".join(f"<th>{k}</th>" for k in STAT_KEYS)
            + "</tr>"
        )
        for stage, s in r["stages_ms"].items():
            parts.append(
                f"<tr><td>{esc(stage)}</td>"
                + "".join(f"<td>{_fmt(s.get(k))}</td>" for k in STAT_KEYS)
                + "</tr>"
            )
        parts.append("</table>")
        if r.get("power"):
            parts.append(f"<p>{esc(power_line(r['power']))}</p>")
    parts.append("<h2>Plots</h2>")
    for name, title in PLOTS.items():
        b64 = base64.b64encode(pngs[name]).decode()
        parts.append(f"<h3>{esc(title)}</h3><img alt='{esc(title)}' src='data:image/png;base64,{b64}'>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _plot(name: str, data: dict[str, Any]) -> bytes:
    import matplotlib

    matplotlib.use("Agg", force=True)  # never a GUI: reports are written on headless machines
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 4.5), dpi=100)
    ax = fig.add_subplot()
    results = data["results"]
    if name == "cdf.png":
        for r in results:
            v = np.sort(np.asarray(r["samples_ms"].get(E2E, []), dtype=float))
            if v.size:
                ax.plot(v, np.arange(1, v.size + 1) / v.size, label=result_label(r))
        ax.set_xlabel("end-to-end latency (ms)")
        ax.set_ylabel("fraction of frames")
    elif name == "stages.png":
        labels = [result_label(r) for r in results]
        bottom = np.zeros(len(results))
        for stage in [s for s in STACKED if any(s in r["stages_ms"] for r in results)]:
            vals = np.array([r["stages_ms"].get(stage, {}).get("mean", 0.0) for r in results])
            ax.bar(labels, vals, bottom=bottom, label=stage)
            bottom += vals
        ax.set_ylabel("mean time (ms)")
        ax.tick_params(axis="x", labelrotation=20)
    else:
        for r in results:
            v = r["samples_ms"].get(E2E, [])
            ax.plot(np.arange(len(v)), v, linewidth=0.8, label=result_label(r))
        ax.set_xlabel("frame")
        ax.set_ylabel("end-to-end latency (ms)")
    ax.set_title(PLOTS[name])
    if results:
        ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def compare_markdown(rows: list[dict[str, Any]], a_name: str, b_name: str) -> str:
    """The ratios B/A as a table: below 1 means B is faster (or, for throughput, slower)."""
    keys = sorted({k for r in rows for k in r if k != "config"}, key=lambda k: (not k.startswith(E2E), k))
    lines = [
        f"B/A ratios, A = {a_name}, B = {b_name} "
        "(latency: < 1 means B is faster; throughput: > 1 means B is faster)",
        "",
        "| configuration | " + " | ".join(keys) + " |",
        "|---|" + "---:|" * len(keys),
    ]
    for r in rows:
        lines.append(f"| {r['config']} | " + " | ".join(_fmt(r.get(k), 3) for k in keys) + " |")
    return "\n".join(lines) + "\n"
