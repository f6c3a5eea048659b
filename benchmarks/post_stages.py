"""The pipeline's post stage when the engines are off the CPU: one thread, or two.

    python benchmarks/post_stages.py --out benchmarks/results/post_stages_cpu.json

On a GPU the engines take little CPU, and the frame rate is set by what follows them: the
panoptic fusion and drawing (the postprocess stage) and the sinks' writing (a video's
encoding). Those ran one after the other on one thread; now the sinks have their own, so
one frame is written while the next is fused and drawn. This machine has no GPU, so the
engines here are stand-ins for GPU engines: each returns the outputs the real engine
(the bundled tiny weights) computed for that frame, after sleeping for the time a GPU
took: by default the H100 record's torch CUDA panoptic_fpn_r18 and depth_r18 at 512x1024
(30 and 12.4 ms, benchmarks/results/gpu_pipeline_torch_cuda_panoptic_fpn_r18.json), then
8 and 4 ms, for engines as fast as TensorRT FP16 could make them (an assumption: no
TensorRT engine has been timed here). A sleep leaves the
cores to the other stages, as a GPU does. The frames are rendered once beforehand, so
capture costs nothing either; the sink is a real MP4 file of the composite view.
Runs alternate: the sinks on the post thread (as before), on their own (now), and with
several post workers (``--post-workers``: frames fused and drawn at once, written in
order), which needs cores the other stages leave free: on 2 cores an MP4's encoding
takes the second one. ``--sink null`` draws every view and writes nothing, which leaves
that core to the post workers.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from benchmarks.common import build_bundled, bundled_provenance, write_result
from edge.build import parse_size
from edge.stream.engines import EngineSet
from edge.stream.frame import Frame, Result
from edge.stream.pipeline import Pipeline
from edge.stream.sinks import RENDERED_VIEWS, open_sinks, sink_image
from edge.stream.sources import open_source
from edge.stream.steps import preprocess

MODELS = ("panoptic_fpn_tiny", "depth_tiny")


class RecordedEngine:
    """A stand-in for a GPU engine: the real engine's outputs for each frame, in turn,
    after ``ms`` of sleep."""

    def __init__(self, real: Any, outputs: list[dict[str, np.ndarray]], ms: float) -> None:
        self.name = f"recorded {real.name}"
        self.inputs = real.inputs
        self._outputs, self._ms, self._calls = outputs, ms, 0

    def infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        time.sleep(self._ms / 1e3)
        out = self._outputs[self._calls % len(self._outputs)]
        self._calls += 1
        return out

    def close(self) -> None:
        return None


class FramesSource:
    """Pre-rendered frames ``repeat`` times over, read as fast as asked (a file)."""

    def __init__(self, images: list[np.ndarray], repeat: int) -> None:
        self.uri, self.live = "frames://", False
        self.fps: float | None = None
        self._images, self._total, self._seq = images, len(images) * repeat, 0

    def read(self) -> Frame | None:
        if self._seq >= self._total:
            return None
        frame = Frame(
            self._seq, time.perf_counter_ns(), self._images[self._seq % len(self._images)], self.uri
        )
        self._seq += 1
        return frame

    def close(self) -> None:
        return None


class SinksOnPostThread(Pipeline):
    """The pipeline as it was: each frame's sinks written on the post thread, after its
    fusion and drawing."""

    def _pass_on(self, result: Result) -> bool:
        seq = result.frame.seq
        with self.tracker.stage(seq, "sink"):
            for sink in self.sinks:
                image = sink_image(result, getattr(sink, "view", "composite"))
                sink.write(image, seq, result.frame.t_capture_ns)
        self.tracker.frame_done(seq, result.frame.t_capture_ns)
        return True


def record_outputs(engines: EngineSet, images: list[np.ndarray]) -> dict[str, list[dict[str, np.ndarray]]]:
    out: dict[str, list[dict[str, np.ndarray]]] = {k: [] for k in engines.kinds}
    for image in images:
        _, tensor = preprocess(image, engines.input_hw)
        for kind in engines.kinds:
            out[kind].append(getattr(engines, kind).infer({"image": tensor}))
    return out


def one_run(
    cls: type[Pipeline],
    engines: EngineSet,
    images: list[np.ndarray],
    repeat: int,
    video: Path | None,
    post_workers: int = 1,
) -> dict[str, Any]:
    """One run into ``video``, or with every view drawn into null:// when it is None."""
    sinks = open_sinks([str(video) if video else "null://"], fps=17.0, kinds=engines.kinds)
    views = None if video else RENDERED_VIEWS
    source = FramesSource(images, repeat)
    s = cls(source=source, engines=engines, sinks=sinks, views=views, post_workers=post_workers).run()
    return {
        "fps": s["fps"],
        "frames": s["frames_out"],
        "postprocess_mean_ms": s["stages_ms"]["postprocess"]["mean"],
        "sink_mean_ms": s["stages_ms"]["sink"]["mean"],
        "end_to_end_p50_ms": s["end_to_end_ms"]["p50"],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", nargs="+", default=["512x1024"])
    ap.add_argument("--frames", type=int, default=20, help="distinct frames (recorded outputs)")
    ap.add_argument("--repeat", type=int, default=4, help="times the frames are played per run")
    ap.add_argument("--pairs", type=int, default=3, help="alternating pairs of runs per size")
    ap.add_argument(
        "--panoptic-ms", type=float, nargs="+", default=[30.0, 8.0], help="stand-in panoptic engine times"
    )
    ap.add_argument(
        "--depth-ms", type=float, nargs="+", default=[12.4, 4.0], help="stand-in depth engine times"
    )
    ap.add_argument("--post-workers", type=int, nargs="*", default=[2], help="post worker counts to try")
    ap.add_argument("--sink", choices=["mp4", "null"], default="mp4", help="null: draw all, write none")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/post_stages_cpu.json"))
    args = ap.parse_args()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for size in args.sizes:
            h, w = parse_size(size)
            build_bundled(MODELS, h, w, work / "engines")
            real = EngineSet.from_manifest(work / "engines", size=(h, w))
            src = open_source(f"synthetic://?size={size}&seed=3")
            images = [src.read().image for _ in range(args.frames)]  # type: ignore[union-attr]
            recorded = record_outputs(real, images)
            for p_ms, d_ms in zip(args.panoptic_ms, args.depth_ms, strict=True):
                ms = {"panoptic": p_ms, "depth": d_ms}
                engines = EngineSet(
                    **{k: RecordedEngine(getattr(real, k), recorded[k], ms[k]) for k in real.kinds},  # type: ignore[arg-type]
                    depth_range=real.depth_range,
                )
                configs = [("one_thread", SinksOnPostThread, 1), ("sink_thread", Pipeline, 1)]
                configs += [(f"post_workers_{n}", Pipeline, n) for n in args.post_workers]
                runs: dict[str, list[dict[str, Any]]] = {name: [] for name, _, _ in configs}
                for _ in range(args.pairs):
                    for name, cls, workers in configs:
                        video = work / f"{name}.mp4" if args.sink == "mp4" else None
                        runs[name].append(one_run(cls, engines, images, args.repeat, video, workers))
                        print(size, ms, name, runs[name][-1], file=sys.stderr)
                results[f"{size} panoptic {p_ms:g} ms, depth {d_ms:g} ms"] = {
                    "size": size,
                    "stand_in_engine_ms": ms,
                    "runs": runs,
                    **_ratios(runs, "sink_thread", "one_thread", "fps_ratio"),
                    **{
                        k: v
                        for name, _, n in configs[2:]
                        for k, v in _ratios(runs, name, "sink_thread", f"post_workers_{n}_fps_ratio").items()
                    },
                }
            real.close()
    into = "an MP4 of the composite" if args.sink == "mp4" else "null:// with every view drawn"
    report = {
        "benchmark": "pipeline fps with the engines off the CPU (recorded outputs after a GPU-like "
        f"sleep) into {into}: sinks on the post thread (before) vs on their own (now), and "
        "several post workers vs one",
        **bundled_provenance(),
        "models": list(MODELS),
        "sink": args.sink,
        "frames_per_run": args.frames * args.repeat,
        "results": results,
    }
    write_result(args.out, report)
    for size, r in results.items():
        line = f"{size}: fps sinks on their own thread / on the post thread {r['fps_ratio_median']:.2f}x"
        for n in args.post_workers:
            line += f"; {n} post workers / 1: {r[f'post_workers_{n}_fps_ratio_median']:.2f}x"
        print(line)
    return 0


def _ratios(runs: dict[str, list[dict[str, Any]]], num: str, den: str, key: str) -> dict[str, Any]:
    """fps of ``num`` over ``den`` per alternating pair, and their median."""
    ratios = [b["fps"] / a["fps"] for a, b in zip(runs[den], runs[num], strict=True)]
    return {f"{key}_per_pair": ratios, f"{key}_median": statistics.median(ratios)}


if __name__ == "__main__":
    sys.exit(main())
