"""What a slow recording disk costs the other outputs of a live `edge run`: the objects a
planner reads (objects.jsonl on a fast disk) while a video of the camera is recorded in
segments onto a disk that stores only so many bytes a second (a slow or worn SD card).

For each case a fresh disk: a real ext4 on a loop device whose writes its blkio cgroup
throttles (tests/disks.py; root and cgroup v1's blkio controller), and `edge run` in that
cgroup on the test MJPEG camera on 127.0.0.1 (tests/stream/test_capture.py: 30 fps, 64x192
noise) with the bundled tiny engines at 256x512 on ONNX Runtime, stopped by SIGINT after
``--seconds``. Reported: the frames the objects file holds and their rate, the longest gap
between two of them (capture times), the frames dropped, and each sink's skipped frames.

    python benchmarks/sink_threads.py --rates 128K 512K --seconds 16 \\
        --out benchmarks/results/sink_threads_cpu.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import build_bundled, write_runs  # noqa: E402
from edge.cli_args import byte_size  # noqa: E402
from tests.disks import DiskUnavailable, ext4_on_loop, in_group, throttled  # noqa: E402

MODELS = ("panoptic_fpn_tiny", "depth_tiny")


def objects_read(folder: Path) -> dict[str, Any]:
    """What the objects files (segments) in ``folder`` hold: frames, rate, longest gap."""
    from edge.util.fs import natural_key

    lines = [
        json.loads(line)
        for path in sorted(folder.glob("objects*.jsonl"), key=natural_key)
        for line in path.read_text().splitlines()
    ]
    times = [line["t_capture_ns"] / 1e6 for line in lines]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    seconds = (times[-1] - times[0]) / 1e3 if len(times) > 1 else 0.0
    return {
        "objects_frames": len(lines),
        "objects_fps": round((len(lines) - 1) / seconds, 2) if seconds else 0.0,
        "objects_longest_gap_ms": round(max(gaps, default=0.0), 1),
    }


def one_case(engines: Path, rate: int, video: bool, seconds: float, segment_s: float) -> dict[str, Any]:
    """A fresh slow disk at ``rate`` bytes/s; `edge run` from the camera into objects.jsonl
    (on a fast disk) and, with ``video``, the camera's frames onto the slow disk."""
    from tests.stream.test_capture import Camera

    with tempfile.TemporaryDirectory(prefix="edge-sink-threads-") as tmp:
        root = Path(tmp)
        disk = root / "disk"
        disk.mkdir()
        with (
            ext4_on_loop(root / "disk.img", disk, size="256M") as loop,
            throttled(loop, rate, f"edge-bench-{rate}-{root.name}") as group,
        ):
            camera = Camera(fps=30.0, noise=True)
            sinks = ["--sink", str(root / "objects.jsonl")]
            if video:
                sinks += ["--sink", f"{disk / 'drive.avi'}?view=input"]
            argv = [sys.executable, "-m", "edge", "run", camera.url, "--engines", str(engines), *sinks]
            argv += ["--segment", f"{segment_s:g}", "--summary", str(root / "summary.json")]
            argv += ["--status-every", "0"]
            try:
                child = in_group(group, argv)
                quiet = subprocess.DEVNULL  # the summary: it is read from --summary
                run = subprocess.Popen(child, stdout=quiet, stderr=subprocess.PIPE, text=True, cwd=ROOT)
                time.sleep(seconds)  # the engines' loading included: the same in every case
                run.send_signal(signal.SIGINT)
                _, said = run.communicate(timeout=120)
            finally:
                camera.unplug()
            if run.returncode != 130:
                raise SystemExit(f"edge run at {rate} B/s ended with {run.returncode}:\n{said[-3000:]}")
            summary = json.loads((root / "summary.json").read_text())
            return {
                "bytes_per_s": rate,
                "video_on_slow_disk": video,
                **objects_read(root),
                "frames_in": summary["frames_in"],
                "dropped": summary["drops"],
                "sinks_skipped": {
                    Path(uri.split("?")[0]).name: n for uri, n in summary.get("sinks_skipped", {}).items()
                },
                "slow_disk_said": "slower than the recording" in said,
            }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rates", nargs="+", type=byte_size, default=[128 << 10, 512 << 10])
    ap.add_argument("--seconds", type=float, default=22.0, help="a run's length, loading included")
    ap.add_argument("--segment", type=float, default=2.0, help="segment length, seconds")
    ap.add_argument("--engines", type=Path, help="an engines folder with the tiny models (default: built)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/sink_threads_cpu.json")
    ap.add_argument(
        "--baseline", type=Path, help="a result file of this script from an earlier commit, kept in this one"
    )
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="edge-sink-threads-engines-") as built:
        engines = args.engines
        if engines is None:
            engines = Path(built)
            build_bundled(MODELS, 256, 512, engines)
        cases = [(args.rates[0], False)] + [(rate, True) for rate in args.rates]
        runs = []
        for rate, video in cases:
            try:
                runs.append(one_case(engines, rate, video, args.seconds, args.segment))
            except DiskUnavailable as exc:
                print(f"error: a slow disk cannot be made here: {exc}", file=sys.stderr)
                return 2
            print(json.dumps(runs[-1]), flush=True)
    write_runs(
        args.out,
        what="a live edge run from a 30 fps camera: objects.jsonl on a fast disk, and a video of the "
        "camera in segments on a throttled ext4",
        runs=runs,
        baseline=args.baseline,
        seconds=args.seconds,
        segment_s=args.segment,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
