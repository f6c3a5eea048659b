"""What the benchmark scripts' result files share: the machine and the writing."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def machine() -> dict[str, Any]:
    """The CPU a result was measured on, as the result files record it."""
    from edge.platform_info import cpu_model, cpu_vector_extensions

    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "vector_extensions": cpu_vector_extensions(),
        "python": platform.python_version(),
    }


def compared_drives(data: Path, *, sequences: int, frames: int, size: tuple[int, int]) -> str:
    """The frames compare_trial.py and calib_warning_trial.py compare builds on: a val split of
    drives from the right lane (seed 1) with ground truth on every frame; its URI."""
    from edge.data.make_synthetic import write_dataset

    write_dataset(
        data, sequences=sequences, frames=frames, size=size, split="val", gt_every=1, seed=1, lane="right"
    )
    return f"cityscapes://{data}?split=val&fps=0"


def write_result(path: Path, report: dict[str, Any]) -> None:
    """The result file, its folder made if needed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1) + "\n")


def write_runs(
    path: Path, *, what: str, runs: list[dict[str, Any]], baseline: Path | None, **settings: Any
) -> None:
    """The result file of a script that measures ``runs`` at ``settings``, with the command,
    the commit and the machine; ``baseline``: that script's result file from an earlier
    commit, kept inside this one for comparison."""
    root = Path(__file__).resolve().parents[1]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=root)
    report: dict[str, Any] = {
        "what": what,
        "command": " ".join(sys.argv),
        "commit": commit.stdout.strip() or None,
        "machine": machine(),
        **settings,
        "runs": runs,
    }
    if baseline is not None:
        report["baseline"] = json.loads(baseline.read_text())
    write_result(path, report)
    print(f"wrote {path}")


def bundled_provenance() -> dict[str, Any]:
    """The machine, the tool versions and the weights of a run with the bundled weights (their
    files' SHA-256: the tiny ones were fine-tuned again on 2026-12-04, so a file's name alone
    does not say which weights a result was measured with)."""
    from edge.build_key import tool_versions
    from edge.models.zoo import bundled_weights
    from edge.util.fs import sha256_file

    digests = {}
    for model in ("panoptic_fpn_tiny", "depth_tiny", "panoptic_fpn_small", "depth_small"):
        path = bundled_weights(model)
        if path is not None:
            digests[path.name] = sha256_file(path)
    return {
        "machine": machine(),
        "versions": tool_versions(),
        "weights": "bundled (edge/weights)",
        "weights_sha256": digests,
    }


def build_bundled(
    models: Sequence[str], height: int, width: int, folder: Path, *, weights: Path | None = None
) -> dict[str, Path]:
    """The zoo's ``models`` with their bundled (demo) weights, or those named ``MODEL.pt`` in
    the folder ``weights``, built for ONNX Runtime at ``height`` x ``width`` into
    ``folder``; each model's float ONNX export there."""
    from edge.build import BuildRequest, build_all
    from edge.models.zoo import bundled_weights

    reqs = [
        BuildRequest(
            model=m,
            height=height,
            width=width,
            checkpoint=bundled_weights(m) if weights is None else weights / f"{m}.pt",
        )
        for m in models
    ]
    built = build_all(reqs, folder, show_progress=False)
    return {r.request.model: folder / r.entry["onnx"]["path"] for r in built}
