"""What ``edge compare`` says and writes: compare.json, compare.md, the least agreeing frames'
pictures, and the lines it prints."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edge.util.numbers import counted

if TYPE_CHECKING:
    from collections.abc import Sequence

    from edge.compare import Agreement
    from edge.compare_bounds import Bound
    from edge.compare_truth import TruthScores
    from edge.perception import Perceived, Perception

PICTURE_GLOB = "least_agreeing_*.png"
DEPTH_SCALE = 0.2  # a depth 20% off the reference's or more is drawn at full heat


def _side(p: Perception) -> dict[str, Any]:
    summary = p.tracker.summary()
    return {
        "engines": p.engines.described,
        "end_to_end_ms": summary["end_to_end_ms"],
        "stages_ms": summary["stages_ms"],
    }


def report_of(
    source: str,
    reference: Perception,
    engines: Perception,
    agreement: Agreement,
    *,
    min_score: float,
    worst: int,
    bounds: Sequence[Bound] = (),
    truth: TruthScores | None = None,
    unfinished: bool = False,
    interrupted: bool = False,
) -> dict[str, Any]:
    """compare.json's content (``edge schema compare``); with ``bounds``, each checked."""
    from edge.compare import speed_ratio
    from edge.compare_bounds import check_bounds

    ref, ours = _side(reference), _side(engines)
    report: dict[str, Any] = {
        "source": source,
        "frames": len(agreement.frames),
        "min_score": min_score,
        "engines": ours,
        "reference": ref,
        "speedup": speed_ratio(ref["end_to_end_ms"].get("p50"), ours["end_to_end_ms"].get("p50")),
        "agreement": agreement.results(),
        "least_agreeing": [f.as_dict() for f in agreement.least_agreeing(worst)],
        "per_frame": [f.as_dict() for f in agreement.frames],
    }
    if truth is not None:
        report["truth"] = truth.results()
    if bounds:
        report["bounds"] = check_bounds(bounds, report)
    if interrupted:
        report["interrupted"] = True
    if unfinished:
        report["unfinished"] = True
    return report


def write_report(
    out_dir: Path, report: dict[str, Any], *, pictures: list[tuple[int, np.ndarray]] | None
) -> None:
    """compare.json and compare.md in ``out_dir``, and with ``pictures`` (frame, RGB) those,
    replacing any an earlier comparison left there. Each file whole or not at all; compare.json,
    which names the others, last."""
    import cv2

    from edge.util.fs import atomic_write_bytes, atomic_write_json

    out_dir.mkdir(parents=True, exist_ok=True)
    names: list[str] = []
    if pictures is not None:
        for old in out_dir.glob(PICTURE_GLOB):
            old.unlink()
        for rank, (frame, picture) in enumerate(pictures, 1):
            name = f"least_agreeing_{rank}_frame_{frame:06d}.png"
            ok, png = cv2.imencode(".png", cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
            if ok:
                atomic_write_bytes(out_dir / name, png.tobytes())
                names.append(name)
        report["pictures"] = names
    atomic_write_bytes(out_dir / "compare.md", markdown(report).encode())
    atomic_write_json(out_dir / "compare.json", report)


def labelled(picture: np.ndarray, text: str) -> np.ndarray:
    """``picture`` under a black band that says ``text``."""
    import cv2

    band = np.zeros((22, picture.shape[1], 3), np.uint8)
    cv2.putText(band, text, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
    return np.concatenate([band, picture], axis=0)


def difference_picture(
    reference: Perceived, engines: Perceived, *, width: int, max_depth: float = 80.0
) -> np.ndarray:
    """Where the two differ, at the reference's size: the picture in grey with the pixels whose
    semantic class differs in red, beside the depth's difference relative to the reference's
    (black: none; DEPTH_SCALE or more: the hottest; grey where the reference's depth is past
    ``max_depth``, the sky, which the metrics leave out too), ``width`` wide in all."""
    import cv2

    from edge.eval.evaluator import resize_bilinear, resize_nearest

    grey = cv2.cvtColor(cv2.cvtColor(reference.image, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    hw = grey.shape[:2]
    parts = []
    if reference.semantic is not None and engines.semantic is not None:
        ours = resize_nearest(engines.semantic, reference.semantic.shape)
        differs = resize_nearest((ours != reference.semantic).astype(np.uint8), hw).astype(bool)
        shown = (grey // 2).copy()
        shown[differs] = (230, 40, 40)
        parts.append(labelled(shown, "semantic class differs (red)"))
    if reference.depth is not None and engines.depth is not None:
        ref = resize_bilinear(reference.depth, hw)
        ours_d = resize_bilinear(engines.depth, hw)
        rel = np.abs(ours_d - ref) / np.maximum(ref, 1e-3)
        heat = np.clip(rel / DEPTH_SCALE * 255, 0, 255).astype(np.uint8)
        coloured = cv2.cvtColor(cv2.applyColorMap(heat, cv2.COLORMAP_INFERNO), cv2.COLOR_BGR2RGB)
        coloured[~((ref > 1e-3) & (ref < max_depth))] = (96, 96, 96)
        parts.append(labelled(coloured, f"depth differs: 0 to {DEPTH_SCALE:.0%} or more"))
    row = np.concatenate(parts, axis=1) if parts else labelled(grey, "nothing to compare")
    height = max(1, round(row.shape[0] * width / row.shape[1]))
    return cv2.resize(row, (width, height), interpolation=cv2.INTER_AREA)


def _pct(value: float | None) -> str:
    return "-" if value is None or value != value else f"{100 * value:.1f}"


def _ms(side: dict[str, Any], key: str = "end_to_end") -> str:
    stats = side["end_to_end_ms"] if key == "end_to_end" else side["stages_ms"].get(key, {})
    return f"{stats['p50']:.1f}" if stats.get("p50") is not None else "-"


def headline(report: dict[str, Any]) -> list[str]:
    """The lines edge compare prints and compare.md opens with (after the metrics)."""
    ours, ref = report["engines"], report["reference"]
    a = report["agreement"]
    lines = [
        f"compared {report['frames']} frames of {report['source']}"
        + (" (stopped early)" if report.get("interrupted") else ""),
        f"  engines:   {'; '.join(ours['engines'].values())}",
        f"  reference: {'; '.join(ref['engines'].values())}",
    ]
    if a.get("pixels_agree") is not None:
        lines.append(f"semantic class the same on {_pct(a['pixels_agree'])}% of the pixels")
    speed = report["speedup"]
    lines.append(
        f"end to end p50 {_ms(ours)} ms against the reference's {_ms(ref)} ms"
        + (f": {speed:.2f}x as fast" if speed is not None else "")
    )
    worst = report["least_agreeing"]
    if worst:
        said = ", ".join(_frame_said(f) for f in worst)
        lines.append(f"least agreeing frames: {said}")
    return lines


def _frame_said(f: dict[str, Any]) -> str:
    if f["pq"] is not None:
        return f"{f['frame']} (PQ {_pct(f['pq'])})"
    if f["pixels_agree"] is not None:
        return f"{f['frame']} ({_pct(f['pixels_agree'])}% pixels agree)"
    return f"{f['frame']} (depth AbsRel {f['depth_abs_rel'] or 0:.3f})"


def format_comparison(report: dict[str, Any]) -> str:
    """What edge compare prints: the metrics of the engines against the reference as the truth,
    against the ground truth where the frames have it, then the pixels agreeing, the speed and
    the least agreeing frames."""
    from edge.compare_truth import truth_lines
    from edge.eval.report import format_metrics

    lines = headline(report)
    # its frame count is said above; its truth here is the reference's
    metrics = [
        m.replace("by true distance", "by the reference's distance")
        for m in format_metrics(report["agreement"]).splitlines()[1:]
        if not (m.startswith(("PQ ", "mIoU")) and "nan" in m)  # depth engines alone: none of those
    ]
    return "\n".join(
        [
            *lines[:3],
            "against the reference's outputs as the ground truth:",
            *("  " + m for m in metrics),
            *truth_lines(report.get("truth") or {"frames": 0}),
            *lines[3:],
        ]
    )


def markdown(report: dict[str, Any]) -> str:
    """compare.md: the comparison for people, with the pictures."""
    ours, ref, a = report["engines"], report["reference"], report["agreement"]
    p, s, d, o = a["panoptic"], a["semantic"], a["depth"], a.get("object_distance") or {}
    out = [
        "# edge compare",
        "",
        f"{report['frames']} frames of `{report['source']}`"
        + (", stopped early (Ctrl-C)" if report.get("interrupted") else "")
        + (", still running" if report.get("unfinished") else "")
        + f"; things kept from a score of {report['min_score']:g}.",
        "",
        "| | engines | reference |",
        "|---|---|---|",
    ]
    for kind in ("panoptic", "depth"):
        if kind in ours["engines"] or kind in ref["engines"]:
            out.append(f"| {kind} | {ours['engines'].get(kind, '-')} | {ref['engines'].get(kind, '-')} |")
    out.append(f"| end to end p50 (ms) | {_ms(ours)} | {_ms(ref)} |")
    for stage in ("panoptic", "depth"):
        if stage in ours["stages_ms"] or stage in ref["stages_ms"]:
            out.append(f"| {stage} stage p50 (ms) | {_ms(ours, stage)} | {_ms(ref, stage)} |")
    if report["speedup"] is not None:
        out += ["", f"The engines ran {report['speedup']:.2f}x as fast as the reference (end to end, p50)."]
    out += [
        "",
        "## Agreement (the reference's outputs as the ground truth)",
        "",
        "| metric | value |",
        "|---|---|",
    ]
    for group in ("all", "things", "stuff"):
        if p[group]["n"]:
            g = p[group]
            out.append(f"| PQ {group} | {_pct(g['pq'])} (SQ {_pct(g['sq'])}, RQ {_pct(g['rq'])}) |")
    if s.get("miou") is not None and s["miou"] == s["miou"]:
        out.append(f"| mIoU | {_pct(s['miou'])} |")
    if a.get("pixels_agree") is not None:
        out.append(f"| pixels of the same semantic class | {_pct(a['pixels_agree'])}% |")
    if d.get("pixels"):
        out.append(
            f"| depth AbsRel | {d['abs_rel']:.4f} (d<1.25: {_pct(d['delta1'])}%, RMSE {d['rmse']:.3f} m) |"
        )
    if o.get("objects"):
        out.append(
            f"| object distance AbsRel | {o['abs_rel']:.4f} (p90 {o['abs_err_m_p90']:.2f} m, "
            f"{counted(o['objects'], 'object')}) |"
        )
    found = a.get("found_by_distance") or {}
    rows = [r for r in found.get("all", ()) if r["things"]]
    if rows:
        out += ["", "Of the reference's things, the engines found (by the reference's distance):", ""]
        out += ["| band | things | found |", "|---|---|---|"]
        out += [f"| {r['band']} | {r['things']} | {_pct(r['recall'])}% |" for r in rows]
    if report["least_agreeing"]:
        out += ["", "## Least agreeing frames", ""]
        out.append(
            "| frame | name | time (s) | PQ | pixels agree (%) | depth AbsRel | "
            "things (reference / engines / matched) |"
        )
        out.append("|---|---|---|---|---|---|---|")
        for f in report["least_agreeing"]:
            t = f["things"]
            depth = "-" if f["depth_abs_rel"] is None else f"{f['depth_abs_rel']:.4f}"
            out.append(
                f"| {f['frame']} | {f['name'] or '-'} | {f['time_s']:.2f} | {_pct(f['pq'])} | "
                f"{_pct(f['pixels_agree'])} | {depth} | {t['reference']} / {t['engines']} / {t['matched']} |"
            )
    truth = report.get("truth") or {"frames": 0}
    if truth["frames"]:
        out += [
            "",
            f"## Against the ground truth ({truth['frames']} frames)",
            "",
            "| | reference | engines | change |",
        ]
        out.append("|---|---|---|---|")
        for name in ("pq", "pq_things", "pq_stuff", "miou", "depth_abs_rel", "object_distance_abs_rel"):
            cells = [truth[side][name] for side in ("reference", "engines")] + [truth["change"][name]]
            shown = [
                "-" if v is None else (f"{v:+.4g}" if k == 2 else f"{v:.4g}") for k, v in enumerate(cells)
            ]
            out.append(f"| {name} | {' | '.join(shown)} |")
    if report.get("bounds"):
        from edge.compare_bounds import bound_lines

        out += ["", "## Bounds", ""] + [f"- {line}" for line in bound_lines(report["bounds"])]
    for name in report.get("pictures", ()):
        out += ["", f"![{name}]({name})"]
    return "\n".join(out) + "\n"
