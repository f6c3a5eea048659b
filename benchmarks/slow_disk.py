"""A camera recorded in segments onto a disk that stores only so many bytes a second (a slow
or worn SD card): the frames kept and dropped, the frames of each segment, the longest gap
between frames kept, and whether edge said the disk was slower than the recording.

Each rate gets a fresh disk: a real ext4 on a loop device whose writes its blkio cgroup
throttles (tests/disks.py; root and cgroup v1's blkio controller), and a child process in
that cgroup running ``edge.stream.record.record`` from the test MJPEG camera on 127.0.0.1
(tests/stream/test_capture.py: 30 fps, 64x192 noise, ~210 KB/s as MJPEG-in-AVI).

    python benchmarks/slow_disk.py --rates 128K 512K 4M --seconds 16 --segment 2 \\
        --out benchmarks/results/slow_disk_cpu.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import write_runs  # noqa: E402
from edge.cli_args import byte_size  # noqa: E402
from tests.disks import DiskUnavailable, ext4_on_loop, in_group, throttled  # noqa: E402


def child(folder: Path, seconds: float, segment_s: float) -> dict[str, Any]:
    """Record the test camera into ``folder`` (on the slow disk, this process in its
    cgroup); what was kept, as JSON-able numbers."""
    import contextlib
    import io

    from edge.stream.record import record
    from edge.stream.timestamps import read_timestamps, timestamps_path
    from edge.util.fs import natural_key
    from tests.stream.test_capture import Camera

    camera = Camera(fps=30.0, noise=True)
    said = io.StringIO()
    try:
        with contextlib.redirect_stderr(said):
            summary = record(
                camera.url,
                [str(folder / "drive.avi")],
                segment_s=segment_s,
                duration_s=seconds,
                keep_free=1 << 20,
            )
    finally:
        camera.unplug()
    segments = sorted(folder.glob("drive-*.avi"), key=natural_key)
    times = [read_timestamps(timestamps_path(p), frames=None) for p in segments]
    gaps = [b - a for ms in times for a, b in itertools.pairwise(ms)]
    return {
        "frames": summary["frames"],
        "dropped": summary["dropped"],
        "segment_frames": [len(ms) for ms in times],
        "longest_gap_within_a_segment_ms": round(max(gaps, default=0.0), 1),
        "slow_disk_said": "slower than the recording" in said.getvalue(),
        "bytes_written": sum(p.stat().st_size for p in segments),
    }


def one_rate(rate: int, seconds: float, segment_s: float) -> dict[str, Any]:
    """A fresh slow disk at ``rate`` bytes/s, and the child's recording onto it."""
    with tempfile.TemporaryDirectory(prefix="edge-slow-disk-") as tmp:
        root = Path(tmp)
        disk = root / "disk"
        disk.mkdir()
        with (
            ext4_on_loop(root / "disk.img", disk, size="256M") as loop,
            throttled(loop, rate, f"edge-bench-{rate}-{root.name}") as group,
        ):
            argv = [sys.executable, __file__, "--child", str(disk), str(seconds), str(segment_s)]
            started = time.monotonic()
            done = subprocess.run(in_group(group, argv), capture_output=True, text=True, cwd=ROOT)
            if done.returncode != 0:
                raise SystemExit(f"the recording at {rate} B/s failed:\n{done.stderr[-3000:]}")
            result = json.loads(done.stdout.strip().splitlines()[-1])
            result["wall_s"] = round(time.monotonic() - started, 1)
    return {"bytes_per_s": rate, **result}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rates", nargs="+", type=byte_size, default=[128 << 10, 512 << 10, 4 << 20])
    ap.add_argument("--seconds", type=float, default=16.0, help="each recording's length")
    ap.add_argument("--segment", type=float, default=2.0, help="segment length, seconds")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/slow_disk_cpu.json")
    ap.add_argument(
        "--baseline", type=Path, help="a result file of this script from an earlier commit, kept in this one"
    )
    ap.add_argument("--child", nargs=3, metavar=("FOLDER", "SECONDS", "SEGMENT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        folder, seconds, segment_s = args.child
        print(json.dumps(child(Path(folder), float(seconds), float(segment_s))))
        return 0
    runs = []
    for rate in args.rates:
        try:
            runs.append(one_rate(rate, args.seconds, args.segment))
        except DiskUnavailable as exc:
            print(f"error: a slow disk cannot be made here: {exc}", file=sys.stderr)
            return 2
        print(json.dumps(runs[-1]), flush=True)
    write_runs(
        args.out,
        what="a 30 fps MJPEG camera recorded with edge record in segments onto a throttled ext4",
        runs=runs,
        baseline=args.baseline,
        seconds=args.seconds,
        segment_s=args.segment,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
