"""Pipelined runtime vs a sequential loop on the same engines (both models, CPU).

Not a test: run it by hand and commit the JSON it writes.

    python benchmarks/bench_pipeline.py --sizes 256x512 512x1024 --frames 60

Reports throughput of both (same engines, same frames, one process) and the share of a
frame's sequential time spent outside the models (video decode, preprocess, fusion +
overlay, sink). The frames are synthetic drives written once to an H.264/MP4V file, so
the source cost measured is decoding, as with a camera recording, not the renderer.
The engines carry the demo weights, so fusion works on real detections.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_engines import cpu_name, write_report
from edge.build import BuildRequest, build_all, parse_size
from edge.build_key import tool_versions
from edge.data.synthetic import SyntheticDrive
from edge.latency import LatencyTracker
from edge.models.zoo import bundled_weights
from edge.stream.engines import EngineSet
from edge.stream.frame import Result
from edge.stream.pipeline import Pipeline
from edge.stream.sinks import RENDERED_VIEWS, NullSink, open_sink
from edge.stream.sources import open_source
from edge.stream.steps import preprocess, render_result

MODEL_STAGES = ("panoptic", "depth")


def write_video(path: str, h: int, w: int, frames: int) -> None:
    sink = open_sink(path, fps=17.0)
    drive = SyntheticDrive(height=h, width=w, seed=0)
    for i in range(frames):
        sink.write(drive.render(i).image, i)
    sink.close()


def sequential(engines: EngineSet, uri: str, frames: int) -> dict[str, Any]:
    tr = LatencyTracker()
    src, sink = open_source(uri), NullSink()
    hw = engines.input_hw
    t0 = time.perf_counter()
    for _ in range(frames):
        start = time.perf_counter_ns()
        frame = src.read()
        assert frame is not None
        tr.record(frame.seq, "source", start, time.perf_counter_ns())
        with tr.stage(frame.seq, "preprocess"):
            resized, tensor = preprocess(frame.image, hw)
        outs = {}
        for kind in MODEL_STAGES:
            with tr.stage(frame.seq, kind):
                outs[kind] = getattr(engines, kind).infer({"image": tensor})
        result = Result(frame, outs["panoptic"], outs["depth"], extras={"resized": resized})
        with tr.stage(frame.seq, "postprocess"):
            result.rendered = render_result(result, engines.depth_range)
        with tr.stage(frame.seq, "sink"):
            sink.write(result.rendered, frame.seq)
        tr.frame_done(frame.seq, start)
    wall = time.perf_counter() - t0
    s = tr.summary()
    means = {k: v["mean"] for k, v in s["stages_ms"].items()}
    total = sum(means.values())
    non_model = sum(v for k, v in means.items() if k not in MODEL_STAGES)
    return {"fps": frames / wall, "stage_mean_ms": means, "non_model_share": non_model / total}


def pipelined(engines: EngineSet, uri: str, frames: int) -> dict[str, Any]:
    tr = LatencyTracker()
    pipe = Pipeline(
        source=open_source(uri),
        engines=engines,
        sinks=[NullSink()],
        tracker=tr,
        max_frames=frames,
        views=RENDERED_VIEWS,  # the sequential loop draws them too
    )
    t0 = time.perf_counter()
    s = pipe.run()
    wall = time.perf_counter() - t0
    return {
        "fps": s["frames_out"] / wall,
        "end_to_end_ms": s["end_to_end_ms"],
        "stage_mean_ms": {k: v["mean"] for k, v in s["stages_ms"].items()},
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", nargs="+", default=["256x512", "512x1024"])
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument(
        "--threads",
        nargs="+",
        type=int,
        default=[0, 1],
        help="ONNX Runtime intra-op threads per engine to try (0 = all cores)",
    )
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/cpu_pipeline.json"))
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            h, w = parse_size(size)
            build_all(
                [
                    BuildRequest(model=m, height=h, width=w, checkpoint=bundled_weights(m))
                    for m in ("panoptic_fpn_tiny", "depth_tiny")
                ],
                tmp,
                verify_samples=0,
                show_progress=False,
            )
            uri = str(Path(tmp) / f"drive_{h}x{w}.mp4")
            write_video(uri, h, w, args.frames)
            for threads in args.threads:
                engines = EngineSet.from_manifest(tmp, engine_options={"intra_op_threads": threads})
                engines.panoptic.infer(
                    {"image": preprocess(open_source(uri).read().image, (h, w))[1]}
                )  # warm-up
                seq = sequential(engines, uri, args.frames)
                pipe = pipelined(engines, uri, args.frames)
                engines.close()
                row = {
                    "size": size,
                    "intra_op_threads": threads or torch.get_num_threads(),
                    "sequential": seq,
                    "pipelined": pipe,
                    "speedup": pipe["fps"] / seq["fps"],
                }
                print(
                    f"{size:>9s} threads={row['intra_op_threads']}  sequential {seq['fps']:5.1f} fps  "
                    f"pipelined {pipe['fps']:5.1f} fps  speedup {row['speedup']:.2f}  "
                    f"non-model share {seq['non_model_share']:.0%}",
                    flush=True,
                )
                rows.append(row)
    report = {
        "benchmark": "pipelined vs sequential, panoptic_fpn_tiny + depth_tiny (demo weights), "
        "ONNX Runtime CPU, source: an MP4 of synthetic drives (decode timed)",
        "device": {"cpu": cpu_name(), "cores": torch.get_num_threads(), "gpu": None},
        "frames": args.frames,
        "versions": tool_versions(),
        "targets": {"speedup": ">= 1.5", "non_model_share_at_512x1024": "<= 0.15"},
        "results": rows,
    }
    write_report(args.out, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
