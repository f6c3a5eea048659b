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
Runs alternate: the sinks on the post thread (as before) and on their own (now).
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
from edge.stream.pipeline import Pipeline, preprocess
from edge.stream.sinks import open_sinks
from edge.stream.sources import open_source

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
    fusion and drawing (the sink thread only sees the end)."""

    def _pass_on(self, result: Result) -> bool:
        self._deliver(result)
        return True


def record_outputs(engines: EngineSet, images: list[np.ndarray]) -> dict[str, list[dict[str, np.ndarray]]]:
    out: dict[str, list[dict[str, np.ndarray]]] = {k: [] for k in engines.kinds}
    for image in images:
        _, tensor = preprocess(image, engines.input_hw)
        for kind in engines.kinds:
            out[kind].append(getattr(engines, kind).infer({"image": tensor}))
    return out


def one_run(
    cls: type[Pipeline], engines: EngineSet, images: list[np.ndarray], repeat: int, video: Path
) -> dict[str, Any]:
    sinks = open_sinks([str(video)], fps=17.0, kinds=engines.kinds)
    s = cls(source=FramesSource(images, repeat), engines=engines, sinks=sinks).run()
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
                runs: dict[str, list[dict[str, Any]]] = {"one_thread": [], "sink_thread": []}
                for _ in range(args.pairs):
                    for name, cls in (("one_thread", SinksOnPostThread), ("sink_thread", Pipeline)):
                        runs[name].append(one_run(cls, engines, images, args.repeat, work / f"{name}.mp4"))
                        print(size, ms, name, runs[name][-1], file=sys.stderr)
                ratios = [
                    b["fps"] / a["fps"] for a, b in zip(runs["one_thread"], runs["sink_thread"], strict=True)
                ]
                results[f"{size} panoptic {p_ms:g} ms, depth {d_ms:g} ms"] = {
                    "size": size,
                    "stand_in_engine_ms": ms,
                    "runs": runs,
                    "fps_ratio_per_pair": ratios,
                    "fps_ratio_median": statistics.median(ratios),
                }
            real.close()
    report = {
        "benchmark": "pipeline fps with the engines off the CPU (recorded outputs after a GPU-like "
        "sleep) into an MP4 of the composite: sinks on the post thread (before) vs on their own (now)",
        **bundled_provenance(),
        "models": list(MODELS),
        "frames_per_run": args.frames * args.repeat,
        "results": results,
    }
    write_result(args.out, report)
    for size, r in results.items():
        print(f"{size}: fps sinks on their own thread / on the post thread {r['fps_ratio_median']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
