"""``edge engines``: what an engines folder holds, and whether each engine can run here.

The runtime picks engines by backend, model, precision and size (edge.stream.engines
.choose_entries); this lists the same facts per engine, with the build's accuracy check
and the compatibility verdict the runtime would give on this machine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edge.build_plan import UP_TO_DATE, entry_plan
from edge.compat import current_machine, differences
from edge.errors import ManifestError
from edge.manifest import Manifest


def inventory(root: str | Path, *, verify_hashes: bool = False) -> list[dict[str, Any]]:
    """One row per manifest entry, oldest build first.

    ``files`` is "ok", "missing" or, with ``verify_hashes`` (reads every file), "changed"
    when a file no longer hashes to what the build recorded. ``runs_here`` is "yes" or the
    reasons it would be refused. ``current``, with ``verify_hashes``: "up to date", or why
    ``edge build`` would make it again (edge.build_plan); None without.
    """
    manifest = Manifest.load(root, must_exist=True)
    machines: dict[str, dict[str, Any]] = {}
    saturates: list[bool] = []  # read from /proc/cpuinfo once, when an INT8 row asks
    rows = []
    for key, entry in manifest.engines.items():
        backend = str(entry.get("backend"))
        files = _files_state(manifest, entry, verify_hashes)
        if backend not in machines:
            machines[backend] = current_machine(backend)
        shape = ((entry.get("inputs") or [{}])[0] or {}).get("shape") or []
        check = entry.get("accuracy_check") or {}
        try:
            diffs = differences(entry, machines[backend])
        except ManifestError as exc:
            diffs = [str(exc)]
        rows.append(
            {
                "id": entry.get("id", key),
                "model": entry.get("model"),
                "kind": entry.get("kind"),
                "backend": backend,
                "precision": entry.get("precision"),
                "size": f"{shape[2]}x{shape[3]}" if len(shape) == 4 else "?",
                "batch": shape[0] if len(shape) == 4 else None,
                "mb": (entry.get("artifact") or {}).get("bytes", 0) / 1e6,
                "built_at": str(entry.get("built_at", "")),
                "check": "-" if "passed" not in check else ("passed" if check["passed"] else "FAILED"),
                "calibrated": bool(entry.get("calibration")),
                "held_out_scores_db": (entry.get("calibration") or {}).get("held_out_scores_db"),
                "poorly_calibrated": _poor(entry),
                "weights": _weights(entry),
                "files": files,
                "runs_here": "; ".join(diffs) if diffs else _runs_note(backend, entry, saturates),
                # the files were hashed for "files": a large engine is not read twice
                "current": entry_plan(entry, manifest.root, intact=files == "ok") if verify_hashes else None,
            }
        )
    return sorted(rows, key=lambda r: r["built_at"])


def _poor(entry: dict[str, Any]) -> list[str]:
    """The outputs an INT8 engine's calibration scored poorly on its held-out frames, as its
    build warned (calib.api.poor_under); none for an engine without the score."""
    scores = (entry.get("calibration") or {}).get("held_out_scores_db")
    if not scores:
        return []
    from calib.api import poor_scores

    return sorted(poor_scores(scores))


def _weights(entry: dict[str, Any]) -> str:
    """Where the engine's weights came from: "random" (an engine that finds nothing, for
    timing), "edge's" (the bundled demo weights), or the checkpoint's file name."""
    source = str((entry.get("weights") or {}).get("source") or "?")
    if source.startswith("random-init"):
        return "random"
    path = Path(source)
    # edge/weights/ of whichever checkout built it: the folder may have come from elsewhere
    if path.parent.name == "weights" and path.parent.parent.name == "edge":
        return "edge's"
    return path.name or source


def _runs_note(backend: str, entry: dict[str, Any], saturates: list[bool]) -> str:
    """ "yes", and for INT8 ONNX Runtime engines on an x86 CPU without VNNI, what that costs."""
    if backend != "onnxruntime" or entry.get("precision") != "int8":
        return "yes"
    if not saturates:
        from edge.platform_info import int8_pairs_saturate

        saturates.append(int8_pairs_saturate())
    return "yes, on 7-bit weights: little faster than fp32 on this CPU (no VNNI)" if saturates[0] else "yes"


def _files_state(manifest: Manifest, entry: dict[str, Any], verify_hashes: bool) -> str:
    for key in ("onnx", "artifact"):
        info = entry.get(key)
        try:
            path = manifest.resolve(str((info or {}).get("path", "")))
        except ManifestError:
            return "missing"
        if not isinstance(info, dict) or not path.is_file():
            return "missing"
    from edge.backends.tensorrt_folder import plugin_library_problem

    # a TensorRT engine cannot load without the plugin libraries it was built with
    if plugin_library_problem(entry, manifest.root, verify_hashes=False):
        return "missing"
    if verify_hashes and not manifest.artifact_intact(entry):
        return "changed"
    if verify_hashes and plugin_library_problem(entry, manifest.root):
        return "changed"
    return "ok"


def format_inventory(rows: list[dict[str, Any]], root: str | Path) -> str:
    if not rows:
        return f"{root}: the manifest lists no engines"
    head = (
        "model",
        "kind",
        "backend",
        "precision",
        "size",
        "weights",
        "MB",
        "built",
        "check",
        "files",
        *(["current"] if any(r["current"] for r in rows) else []),
        "runs here",
    )
    table = [
        (
            str(r["model"]),
            str(r["kind"]),
            r["backend"],
            str(r["precision"]) + (" (calibrated)" if r["calibrated"] else ""),
            r["size"] + (f" b{r['batch']}" if r["batch"] not in (None, 1) else ""),
            r["weights"],
            f"{r['mb']:.1f}",
            r["built_at"][:16].replace("T", " "),
            r["check"],
            r["files"],
            *([_current_said(r["current"])] if r["current"] else []),
            r["runs_here"],
        )
        for r in rows
    ]
    widths = [max(len(head[i]), *(len(t[i]) for t in table)) for i in range(len(head) - 1)]
    lines = []
    for t in (head, *table):
        lines.append("  ".join(c.ljust(w) for c, w in zip(t[:-1], widths, strict=True)) + "  " + t[-1])
    stale = [f"note: {r['id']}: {r['current']}" for r in rows if r["current"] not in (None, UP_TO_DATE)]
    return "\n".join([*lines, *stale, *_poor_notes(rows, root)])


def _current_said(current: str) -> str:
    return "yes" if current == UP_TO_DATE else "?" if current.startswith("cannot tell") else "no"


def _poor_notes(rows: list[dict[str, Any]], root: str | Path) -> list[str]:
    """A line for each poorly calibrated INT8 engine: its held-out score, and the command
    that measures what it changed on the deployer's own frames."""
    from calib.api import bounds_said, scores_said

    notes = []
    for r in rows:
        if not r["poorly_calibrated"]:
            continue
        poor = {k: r["held_out_scores_db"][k] for k in r["poorly_calibrated"]}
        notes.append(
            f"note: {r['id']}'s calibration scores {scores_said(poor)} against the float model on its "
            f"held-out frames (poor: {bounds_said(list(poor))}); how far it is from FP32 on your own "
            f"frames: edge compare FRAMES --engines {root} --backend {r['backend']} --size {r['size']} "
            "--precision int8 --reference-precision fp32"
        )
    return notes
