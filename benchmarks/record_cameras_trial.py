"""What a camera keeps when `edge record` records a rig's cameras at once (edge.stream.
record_cameras: a Recording a camera, each on a thread of its own), against it recorded alone.

Each camera is the test MJPEG camera on 127.0.0.1 (tests/stream/test_capture.py: 30 fps,
64x192 noise, which compresses as little as a real scene), recorded for ``--seconds`` into a
video (MJPG .avi) of its own; 1 camera through edge.stream.record.record, then 2, 3 and 4 at
once through record_cameras. Each camera's frames and drops are kept, and the frames a camera
kept at once over those it kept alone, within one run of the script (this machine's speed
drifts between runs).

    python benchmarks/record_cameras_trial.py --out benchmarks/results/record_cameras_cpu.json
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import write_runs  # noqa: E402
from edge.stream.record import record  # noqa: E402
from edge.stream.record_cameras import record_cameras  # noqa: E402


def one_run(count: int, seconds: float) -> dict[str, Any]:
    """``count`` cameras recorded for ``seconds``: each one's frames, fps and drops."""
    from tests.stream.test_capture import Camera

    cameras = [Camera(fps=30.0, noise=True, start_seq=1000 * i) for i in range(count)]
    try:
        with tempfile.TemporaryDirectory(prefix="edge-record-cameras-") as tmp:
            if count == 1:
                each = {"cam0": record(cameras[0].url, [f"{tmp}/cam0.avi"], duration_s=seconds, fps=30.0)}
            else:
                summary = record_cameras(
                    {f"cam{i}": c.url for i, c in enumerate(cameras)},
                    [f"{tmp}/{{camera}}.avi"],
                    duration_s=seconds,
                    fps=30.0,
                )
                each = summary["cameras"]
    finally:
        for camera in cameras:
            camera.unplug()
    run = {
        "cameras": count,
        "frames": {name: s["frames"] for name, s in each.items()},
        "fps": {name: round(s["frames"] / s["seconds"], 2) for name, s in each.items()},
        "dropped": {name: s["dropped"] for name, s in each.items()},
    }
    print(run, flush=True)
    return run


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--counts", nargs="+", type=int, default=[1, 2, 3, 4], help="cameras at once (1 first)")
    ap.add_argument("--seconds", type=float, default=10.0, help="each recording's length")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/record_cameras_cpu.json")
    ap.add_argument(
        "--baseline", type=Path, help="a result file of this script from an earlier commit, kept in this one"
    )
    args = ap.parse_args()
    if args.counts[0] != 1:
        raise SystemExit("--counts: the first must be 1, the camera alone the others are measured against")
    runs = [one_run(count, args.seconds) for count in args.counts]
    alone = runs[0]["frames"]["cam0"]
    runs.append(
        {
            "median_frames_over_alone": {
                str(run["cameras"]): round(statistics.median(run["frames"].values()) / alone, 3)
                for run in runs[1:]
            },
            "least_frames_over_alone": {
                str(run["cameras"]): round(min(run["frames"].values()) / alone, 3) for run in runs[1:]
            },
        }
    )
    write_runs(
        args.out,
        what="edge record of a rig: 30 fps cameras recorded at once, each into a video, against one alone",
        runs=runs,
        baseline=args.baseline,
        counts=args.counts,
        seconds=args.seconds,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
