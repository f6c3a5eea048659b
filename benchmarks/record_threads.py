"""What `edge record` gains from writing each sink on a thread of its own.

- ``file``: a 1280x704 MJPG file of ``--frames`` frames recorded into a video (rec.mp4),
  into a folder of PNGs (dir://), and into both at once. Written one after the other the
  two took about as long as each alone, added; at once, about as long as the slower one.
- ``live``: the test MJPEG camera on 127.0.0.1 (tests/stream/test_capture.py: 30 fps,
  64x192 noise) recorded for ``--seconds`` into a video, without and with a window that
  takes ``--window-ms`` a frame (a stand-in sink marked for watching, as display:// is:
  no screen here), and with the same window waited for, as every sink was before (it is
  then marked as a sink that records). Waited for, the window sets the recording's pace;
  for watching, it skips frames.

Each case runs in this process through the Python API (edge.stream.record.record), and
ratios are taken within one run of the script (this machine's speed drifts between runs).

    python benchmarks/record_threads.py --out benchmarks/results/record_threads_cpu.json
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import write_runs  # noqa: E402
from edge.stream.record import record  # noqa: E402
from edge.stream.sinks import NullSink  # noqa: E402


class SlowWindow(NullSink):
    """A window that takes ``ms`` to show a frame (a sink for watching, as display:// is,
    unless ``waited_for``)."""

    def __init__(self, ms: float, *, waited_for: bool = False) -> None:
        super().__init__("display://")
        self._s = ms / 1e3
        self.for_watching = not waited_for

    def write(self, image: np.ndarray, seq: int, t_capture_ns: int | None = None) -> None:
        time.sleep(self._s)
        self.frames += 1


def write_source(path: Path, frames: int) -> None:
    """A 1280x704 MJPG file of moving noise (it compresses as little as a real scene)."""
    import cv2

    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (704, 1280, 3), np.uint8)
    out = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 17.0, (1280, 704))
    for i in range(frames):
        out.write(np.roll(base, 8 * i, axis=1))
    out.release()


FILE_SINKS = {
    "video": ["{d}/rec.mp4"],
    "folder": ["dir://{d}/frames"],
    "video+folder": ["{d}/rec.mp4", "dir://{d}/frames"],
}


def file_cases(frames: int, repeat: int) -> list[dict[str, Any]]:
    """Each set of sinks ``repeat`` times, the sets taking turns; the median of each."""
    seconds: dict[str, list[float]] = {name: [] for name in FILE_SINKS}
    with tempfile.TemporaryDirectory(prefix="edge-record-threads-") as tmp:
        root = Path(tmp)
        source = root / "in.avi"
        write_source(source, frames)
        for turn, (name, sinks) in itertools.product(range(repeat), FILE_SINKS.items()):
            out = root / f"{turn}_{name.replace('+', '_')}"
            out.mkdir()
            t0 = time.perf_counter()
            summary = record(str(source), [s.format(d=out) for s in sinks])
            seconds[name].append(time.perf_counter() - t0)
            if summary["frames"] != frames:
                raise SystemExit(f"{name}: {summary['frames']} frames recorded of {frames}")
            print(f"{name}: {seconds[name][-1]:.2f} s", flush=True)
    median = {name: float(np.median(times)) for name, times in seconds.items()}
    runs: list[dict[str, Any]] = [
        {"case": "file", "sinks": name, "frames": frames, "seconds": [round(t, 2) for t in seconds[name]]}
        for name in FILE_SINKS
    ]
    both, alone = median["video+folder"], [median["video"], median["folder"]]
    runs.append(
        {
            "case": "file",
            "medians_s": {name: round(t, 2) for name, t in median.items()},
            "both_over_sum_alone": round(both / sum(alone), 3),
            "both_over_slower_alone": round(both / max(alone), 3),
        }
    )
    return runs


def live_cases(seconds: float, window_ms: float) -> list[dict[str, Any]]:
    from tests.stream.test_capture import Camera

    runs = []
    for window in ("none", "waited for", "for watching"):
        with tempfile.TemporaryDirectory(prefix="edge-record-threads-") as tmp:
            camera = Camera(fps=30.0, noise=True)
            sinks: list[Any] = [str(Path(tmp) / "rec.avi")]
            if window != "none":
                sinks.append(SlowWindow(window_ms, waited_for=window == "waited for"))
            try:
                summary = record(camera.url, sinks, duration_s=seconds, fps=30.0)
            finally:
                camera.unplug()
        runs.append(
            {
                "case": "live",
                "window": window,
                "window_ms": window_ms if window != "none" else None,
                "video_frames": summary["frames"],
                "video_fps": round(summary["frames"] / summary["seconds"], 2),
                "dropped": summary["dropped"],
                "window_frames": summary["sinks_frames"].get("display://"),
                "window_skipped": summary["sinks_skipped"].get("display://", 0),
            }
        )
        print(runs[-1], flush=True)
    alone = runs[0]["video_frames"]
    runs.append(
        {
            "case": "live",
            "video_frames_over_without_window": {
                run["window"]: round(run["video_frames"] / alone, 3) for run in runs[1:]
            },
        }
    )
    return runs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", nargs="+", choices=("file", "live"), default=["file", "live"])
    ap.add_argument("--frames", type=int, default=60, help="the file case's frames")
    ap.add_argument("--repeat", type=int, default=3, help="the file case's turns (the median is taken)")
    ap.add_argument("--seconds", type=float, default=10.0, help="each live recording's length")
    ap.add_argument("--window-ms", type=float, default=100.0, help="the live case's window, ms a frame")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/record_threads_cpu.json")
    ap.add_argument(
        "--baseline", type=Path, help="a result file of this script from an earlier commit, kept in this one"
    )
    args = ap.parse_args()
    runs = []
    if "file" in args.cases:
        runs += file_cases(args.frames, args.repeat)
    if "live" in args.cases:
        runs += live_cases(args.seconds, args.window_ms)
    write_runs(
        args.out,
        what="edge record: a 1280x704 file into a video, a folder and both; a 30 fps camera into a video "
        "without and with a slow window",
        runs=runs,
        baseline=args.baseline,
        frames=args.frames,
        repeat=args.repeat,
        seconds=args.seconds,
        window_ms=args.window_ms,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
