"""What each video sink's format costs a frame, and what a browser can play: a .webm (VP8)
against .mp4 and .mkv (MPEG-4 part 2) and .avi (Motion JPEG), on the pictures `edge run`
writes (the overlay beside the depth map).

For each engine size, the bundled tiny engines run a synthetic drive once (`edge run
synthetic://?frames=N --sink composite.avi`); its pictures, decoded, go through a VideoSink
of each format in turn, timed frame by frame on one thread (the sink's own, in a run). Reported:
ms a frame (median, p90), frames a second, the file's bytes a frame, and its PSNR against the
pictures it was given; the ratios to .mp4 are of one run.

    python benchmarks/video_formats.py --sizes 256x512 512x1024 --frames 60 \\
        --out benchmarks/results/video_formats_cpu.json
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import build_bundled, write_runs  # noqa: E402

MODELS = ("panoptic_fpn_tiny", "depth_tiny")
FORMATS = (".mp4", ".mkv", ".avi", ".webm")


def composites(engines: Path, frames: int, work: Path) -> list[Any]:
    """The pictures a run of the synthetic drive writes (BGR), decoded from a Motion JPEG file."""
    import cv2

    from edge.cli import main

    video = work / "composite.avi"
    argv = ["run", f"synthetic://?frames={frames}", "--engines", str(engines), "--sink", str(video)]
    if main([*argv, "--overwrite"]) != 0:
        raise SystemExit("edge run failed")
    cap = cv2.VideoCapture(str(video))
    pictures = []
    while (read := cap.read())[0]:
        pictures.append(read[1])
    cap.release()
    return pictures


def measure(pictures: list[Any], suffix: str, work: Path, fps: float) -> dict[str, Any]:
    import cv2

    from edge.stream.sinks import VideoSink

    path = work / f"clip{suffix}"
    sink = VideoSink(str(path), path, fps)
    rgb = [cv2.cvtColor(p, cv2.COLOR_BGR2RGB) for p in pictures]  # what a sink is given
    times = []
    for seq, picture in enumerate(rgb):
        start = time.perf_counter()
        sink.write(picture, seq)
        times.append((time.perf_counter() - start) * 1e3)
    start = time.perf_counter()
    sink.close()
    close_ms = (time.perf_counter() - start) * 1e3
    cap = cv2.VideoCapture(str(path))
    psnr = []
    for picture in pictures:
        ok, back = cap.read()
        if not ok:
            break
        psnr.append(cv2.PSNR(back, picture))
    cap.release()
    ms = sorted(times[1:])  # the first opens the writer
    return {
        "format": suffix,
        "frames": len(times),
        "frames_read_back": len(psnr),
        "ms_p50": statistics.median(ms),
        "ms_p90": ms[int(0.9 * (len(ms) - 1))],
        "fps": 1e3 / statistics.fmean(ms),
        "close_ms": close_ms,
        "bytes_per_frame": path.stat().st_size / len(times),
        "psnr_db_mean": statistics.fmean(psnr) if psnr else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", default=["256x512", "512x1024"], help="engine sizes HxW")
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/video_formats_cpu.json")
    args = parser.parse_args()
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for size in args.sizes:
            h, w = (int(v) for v in size.split("x"))
            engines = work / f"engines_{size}"
            build_bundled(MODELS, h, w, engines)
            pictures = composites(engines, args.frames, work)
            rows = [measure(pictures, suffix, work, 17.0) for suffix in FORMATS]
            mp4 = rows[0]["ms_p50"]
            for row in rows:
                row["ms_p50_vs_mp4"] = row["ms_p50"] / mp4
                print(
                    f"{size} {row['format']:5} {row['ms_p50']:6.2f} ms ({row['ms_p50_vs_mp4']:.1f}x mp4) "
                    f"{row['fps']:6.0f} fps  {row['bytes_per_frame'] / 1024:6.1f} KiB/frame  "
                    f"PSNR {row['psnr_db_mean']:.1f} dB"
                )
            height, width = pictures[0].shape[:2]
            runs.append({"engines": size, "picture": f"{height}x{width}", "rows": rows})
    write_runs(
        args.out,
        what="a video sink's time a frame by format, on the pictures edge run writes (one thread)",
        runs=runs,
        baseline=None,
        frames=args.frames,
        browsers_play=".webm only (Chromium refuses MPEG-4 part 2: tests/stream/test_webm.py)",
    )


if __name__ == "__main__":
    main()
