"""``edge bench --compare``: B/A ratios of two bench results, and what the ratios do not show."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edge.bench import E2E, FORMAT
from edge.errors import ConfigError
from edge.report.bench_report import dropped_text


def compare_notes(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """What the ratios of :func:`compare` do not show: configurations measured in one file
    only, configurations whose engines differ, runs with other settings (warm-up, minimums,
    drawing), runs on different machines or versions; and of several streams, the frames
    each run dropped and whether it kept up (a ratio of drops says nothing where A had none)."""
    notes = []
    in_a = {r["config"]["label"]: r for r in a["results"]}
    in_b = {r["config"]["label"]: r for r in b["results"]}
    for name, mine, other in (("A", in_a, in_b), ("B", in_b, in_a)):
        only = [label for label in mine if label not in other]
        if only:
            notes.append(f"only in {name} (not compared): {', '.join(only)}")
    for label, ra in in_a.items():
        rb = in_b.get(label)
        if rb is not None and ra.get("engines") != rb.get("engines"):
            notes.append(
                f"{label}: other engines (A: {_engines_text(ra)}; B: {_engines_text(rb)}), so the "
                "ratios compare models as well as runs"
            )
    for label, ra in in_a.items():
        rb = in_b.get(label)
        if rb is not None and "streams" in ra and "streams" in rb:
            notes.append(f"{label}: dropped {dropped_text(ra)} -> {dropped_text(rb)}")
    ta, tb = a.get("settings", {}), b.get("settings", {})
    # files from before a setting existed measured its default; before the frames were held
    # in memory, the source was read between frames, and fps counted that
    defaults = {
        "draw": True,
        "samples": "none (the source read between frames, counted in fps)",
        "fit": "stretch",
    }
    differ = [
        f"{k} {ta.get(k, defaults.get(k))} -> {tb.get(k, defaults.get(k))}"
        for k in sorted(set(ta) | set(tb))
        if ta.get(k, defaults.get(k)) != tb.get(k, defaults.get(k))
    ]
    if differ:
        notes.append("other settings: " + ", ".join(differ))
    sa, sb = a.get("system", {}), b.get("system", {})
    for key, what in (("cpu", "CPU"), ("cpu_extensions", "CPU extensions"), ("gpu", "GPU")):
        if sa.get(key) != sb.get(key):
            notes.append(f"other {what}: A {_show_value(sa.get(key))}, B {_show_value(sb.get(key))}")
    va, vb = sa.get("versions", {}), sb.get("versions", {})
    changed = [f"{k} {va.get(k)} -> {vb.get(k)}" for k in sorted(set(va) | set(vb)) if va.get(k) != vb.get(k)]
    if changed:
        notes.append("other versions: " + ", ".join(changed))
    return notes


def _engines_text(result: dict[str, Any]) -> str:
    return ", ".join(f"{kind} {name}" for kind, name in sorted((result.get("engines") or {}).items())) or "?"


def _show_value(value: Any) -> str:
    if isinstance(value, list):
        return " ".join(map(str, value)) or "none"
    if isinstance(value, dict):
        return str(value.get("name") or value)
    return str(value) if value else "none"


def compare(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    """Per configuration present in both: B/A ratios of latency (lower is better) and fps."""
    rows = []
    by_label = {r["config"]["label"]: r for r in a["results"]}
    for rb in b["results"]:
        ra = by_label.get(rb["config"]["label"])
        if ra is None:
            continue
        row: dict[str, Any] = {"config": rb["config"]["label"]}
        ea, eb = ra[E2E + "_ms"], rb[E2E + "_ms"]
        for key in ("mean", "p50", "p90", "p99", "max"):
            if ea.get(key) and key in eb:
                row[f"{E2E}_{key}_ratio"] = eb[key] / ea[key]
        for stage, sb in rb["stages_ms"].items():
            sa = ra["stages_ms"].get(stage)
            if sa and sa.get("p50") and "p50" in sb:
                row[f"{stage}_p50_ratio"] = sb["p50"] / sa["p50"]
        if ra.get("throughput_fps"):
            row["throughput_ratio"] = rb["throughput_fps"] / ra["throughput_fps"]
        rows.append(row)
    if not rows:
        raise ConfigError(
            "the two bench results share no configuration "
            f"(A: {sorted(by_label)}, B: {[r['config']['label'] for r in b['results']]})"
        )
    return rows


def load_result(path: str | Path) -> dict[str, Any]:
    """A bench JSON written by edge bench, checked enough to compare."""
    import json

    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except FileNotFoundError:
        raise ConfigError(f"bench result {str(p)!r} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"bench result {str(p)!r} is not readable JSON: {exc}") from None
    if (
        not isinstance(data, dict)
        or data.get("format") != FORMAT
        or not isinstance(data.get("results"), list)
    ):
        raise ConfigError(f"{str(p)!r} is not an edge bench result (expected format {FORMAT!r})")
    return data
