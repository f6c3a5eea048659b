"""benchmarks/roi_align_cpu_ab.py on a small problem, against this checkout's own commit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_roi_align_cpu_ab_writes_both_samplings(tmp_path: Path) -> None:
    if subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True).returncode:
        pytest.skip("needs the git checkout the benchmark reads its 'before' from")
    out = tmp_path / "ab.json"
    subprocess.run(
        [
            sys.executable,
            "benchmarks/roi_align_cpu_ab.py",
            "--before",
            "HEAD",
            "--rois",
            "12",
            "--size",
            "128x256",
            "--channels",
            "8",
            "--repeats",
            "2",
            "--out",
            str(out),
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=120,
    )
    report = json.loads(out.read_text())
    assert [row["sampling_ratio"] for row in report["results"]] == [2, 0]
    for row in report["results"]:
        assert len(row["before_ms"]["samples"]) == len(row["after_ms"]["samples"]) == 2
        assert row["speedup"] > 0 and row["max_abs_diff"] < 1e-4
    assert report["problem"] == {"rois": 12, "image": "128x256", "channels": 8, "levels": 4}
    assert not list(tmp_path.glob("*.partial"))
