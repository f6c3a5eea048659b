"""The headline lines of an evaluation's results (edge.eval.Evaluator.results): what
``edge replay`` prints, in percent like Cityscapes' leaderboards."""

from __future__ import annotations

from typing import Any

from edge.util.numbers import counted


def format_metrics(metrics: dict[str, Any]) -> str:
    """A short table of the headline numbers (percent, like Cityscapes' leaderboards)."""
    p, s, d = metrics["panoptic"], metrics["semantic"], metrics["depth"]
    lines = [f"evaluated frames: {metrics['frames']}"]
    for group in ("all", "things", "stuff"):
        g = p[group]
        lines.append(
            f"PQ {group:<7} {100 * g['pq']:6.1f}   SQ {100 * g['sq']:6.1f}   RQ {100 * g['rq']:6.1f}"
            f"   ({g['n']} classes)"
        )
    lines.append(f"mIoU          {100 * s['miou']:6.1f}")
    if d.get("pixels"):
        lines.append(
            f"depth AbsRel {d['abs_rel']:.3f}  SqRel {d['sq_rel']:.3f}  RMSE {d['rmse']:.2f} m  "
            f"d<1.25 {d['delta1']:.3f}  d<1.25^2 {d['delta2']:.3f}  d<1.25^3 {d['delta3']:.3f}"
        )
    o = metrics.get("object_distance") or {}
    if o.get("objects"):
        lines.append(
            f"object distance AbsRel {o['abs_rel']:.3f}  |error| p50 {o['abs_err_m_p50']:.2f} m  "
            f"p90 {o['abs_err_m_p90']:.2f} m  within 10% {100 * o['within_10pct']:.0f}%  "
            f"({counted(o['objects'], 'matched object')})"
        )
    lines += found_lines(metrics.get("found_by_distance") or {})
    for key, label, where in (
        ("ground_distance", "read from the road", "where their feet show"),
        ("scaled_distance", "scaled to the road", "where their feet hid"),
    ):
        r = (metrics.get("tracking") or {}).get(key) or {}
        if r.get("objects"):
            lines.append(
                f"  {label}: AbsRel {r['abs_rel']:.3f}  |error| p50 {r['abs_err_m_p50']:.2f} m  "
                f"p90 {r['abs_err_m_p90']:.2f} m  within 10% {100 * r['within_10pct']:.0f}%  "
                f"({counted(r['objects'], 'object')} over frames {where})"
            )
    lines += tracking_lines(metrics.get("tracking") or {})
    return "\n".join(lines)


def found_lines(found: dict[str, Any]) -> list[str]:
    """format_metrics' lines for the things found by true distance (eval.objects'
    RecallByDistance): all things, then people and cars where there were any."""
    if not any(r["things"] for r in found.get("all", ())):
        return []

    def line(label: str, rows: list[dict[str, Any]]) -> str:
        cells = [
            f"{r['band']:>7} {100 * r['recall']:3.0f}% of {r['things']:<5}"
            if r["recall"] is not None
            else " " * 21
            for r in rows
        ]
        return f"  {label:<7}" + " ".join(cells).rstrip()

    lines = ["things found, by true distance:", line("all", found["all"])]
    for name in ("person", "car"):
        if name in found["per_class"]:
            lines.append(line(name, found["per_class"][name]))
    return lines


def tracking_lines(t: dict[str, Any]) -> list[str]:
    """format_metrics' lines for the tracks (edge.eval.tracking's results), those it can say."""
    lines = []
    if t.get("gt_objects"):
        lines.append(
            f"tracking IDF1 {100 * t['idf1']:.1f}  MOTA {100 * t['mota']:.1f}  "
            f"identity switches {t['id_switches']}  "
            f"({t['matched']} of {counted(t['gt_objects'], 'object')} matched, {t['false_positives']} false)"
        )
    c = t.get("closing_speed") or {}
    if c.get("pairs"):
        agrees = f"  sign right {100 * c['sign_agrees']:.0f}%" if c["sign_agrees"] is not None else ""
        lines.append(
            f"closing speed |error| mean {c['abs_err_mps_mean']:.2f} m/s  p50 {c['abs_err_mps_p50']:.2f}  "
            f"p90 {c['abs_err_mps_p90']:.2f}{agrees}  ({counted(c['pairs'], 'object')} over frames)"
        )
    n = t.get("closing_speed_near") or {}
    if n.get("pairs"):
        lines.append(
            f"  within {n['within_m']:g} m: |error| mean {n['abs_err_mps_mean']:.2f} m/s  "
            f"p50 {n['abs_err_mps_p50']:.2f}  p90 {n['abs_err_mps_p90']:.2f}  ({n['pairs']})"
        )
    ttc = t.get("time_to_collision") or {}
    if ttc.get("pairs"):
        lines.append(
            f"time to collision (within {ttc['within_s']:g} s) |error| p50 {ttc['abs_err_s_p50']:.2f} s  "
            f"p90 {ttc['abs_err_s_p90']:.2f} s  relative p50 {100 * ttc['rel_err_p50']:.0f}%  "
            f"({ttc['pairs']}; none given {ttc['missed']})"
        )
    w = t.get("warnings") or {}  # since the warnings were scored
    if w.get("due") or w.get("said"):
        late = (
            f", p50 {w['delay_s_p50']:+.2f} s from when due (p90 {w['delay_s_p90']:+.2f})"
            if "delay_s_p50" in w
            else ""
        )
        missed = w["due"] - w["warned"]
        unfound = (  # since misses were told apart
            f"; of the {missed} missed, {w['never_found']} never found (no segment paired)"
            if missed and "never_found" in w
            else ""
        )
        lines.append(
            f"warnings (under {w['within_s']:g} s to arrive): {w['warned']} of {w['due']} things due warned "
            f"of{late}{unfound}; {w['false']} of {w['said']} warned of never due"
        )
    lat = t.get("lateral") or {}
    if lat.get("pairs"):
        path = lat["in_path"]
        said = [f"{k} {100 * path[k]:.0f}%" for k in ("recall", "precision") if path[k] is not None]
        width = f" ({path['path_width_m']:g} m wide)" if "path_width_m" in path else ""  # since --path-width
        lines.append(
            f"lateral position |error| p50 {lat['abs_err_m_p50']:.2f} m  p90 {lat['abs_err_m_p90']:.2f} m  "
            f"({lat['pairs']}); in the path{width}: {'  '.join(said) or 'none truly or said'}"
            f"  ({path['truly']} truly, {path['said']} said)"
        )
        speed = lat.get("lateral_speed") or {}  # since lateral_mps
        if speed.get("pairs"):
            cut = lat["cut_in"]
            lines.append(
                f"lateral speed |error| p50 {speed['abs_err_mps_p50']:.2f} m/s  "
                f"p90 {speed['abs_err_mps_p90']:.2f}  ({speed['pairs']}); cutting in, of {cut['beside']} "
                f"beside the path: {cut['said']} said, {cut['truly']} truly, {cut['false']} false, "
                f"{cut['missed']} missed"
            )
    events = lat.get("cut_in_events") or {}  # since the cut-ins were counted as events
    if events.get("truly") or events.get("false_things"):
        lead = f", the first {events['lead_s_p50']:.1f} s before it (p50)" if "lead_s_p50" in events else ""
        early = (
            f", {events['in_path_before']} more said to be in it before they were"
            if events.get("in_path_before")
            else ""
        )  # since in_path_before
        lines.append(
            f"cut-ins: {events['warned']} of {events['truly']} warned before they were in the path"
            f"{lead}{early}; {events['false_things']} false (things warned of that did not cut in)"
        )
    return lines
