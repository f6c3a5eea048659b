"""Two cameras' frames in one engine call (batch 2) against one call each: is it worth it here?

    python benchmarks/batch_trial.py --out benchmarks/results/batch_trial_cpu.json
    python benchmarks/batch_trial.py --backend torch --device cuda --out OUT/batch_trial_cuda.json

Several cameras through one set of engines (edge run --camera) take turns, a frame a call.
An engine built for batch 2 could take two cameras' frames in one call, as a GPU would
want; whether a CPU gains too is what this measures before any of it is built. The
bundled tiny weights are built for ONNX Runtime at 256x512 for batch 1 and batch 2, and
each engine is run on the same frames, alternating, ``--repeats`` times: two calls of
batch 1 against one of batch 2, with 1 and 2 intra-op threads. Recorded: the median time
for two frames each way, and the ratio (batch 2 over two batch-1 calls; below 1, batching
gains). Also the two models side by side, as the runtime runs them, a thread each. With
``--backend torch --device cuda`` the same on a GPU (threads do not apply there).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import bundled_provenance, write_result
from edge.backends import open_engine
from edge.build import BuildRequest, build_all
from edge.models.zoo import bundled_weights

MODELS = ("panoptic_fpn_tiny", "depth_tiny")


def build(folder: Path, batch: int, h: int, w: int, backend: str) -> dict[str, Path]:
    reqs = [
        BuildRequest(model=m, height=h, width=w, batch=batch, backend=backend, checkpoint=bundled_weights(m))
        for m in MODELS
    ]
    built = build_all(reqs, folder, show_progress=False)
    return {r.request.model: folder / r.entry["artifact"]["path"] for r in built}


def two_frames_ms(engines: dict[int, Any], frames: np.ndarray, repeats: int) -> dict[int, float]:
    """Median ms for two frames: two calls of the batch-1 engine, one of the batch-2 one,
    alternating so that the machine's drift falls on both alike."""
    times: dict[int, list[float]] = {1: [], 2: []}
    for _ in range(repeats):
        for batch, engine in engines.items():
            t0 = time.perf_counter()
            if batch == 1:
                engine.infer({"image": frames[:1]})
                engine.infer({"image": frames[1:]})
            else:
                engine.infer({"image": frames})
            times[batch].append((time.perf_counter() - t0) * 1e3)
    return {b: statistics.median(v) for b, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="256x512")
    ap.add_argument("--repeats", type=int, default=40)
    ap.add_argument("--backend", choices=["onnxruntime", "torch"], default="onnxruntime")
    ap.add_argument("--device", default="cpu", help="torch: cpu or cuda")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/batch_trial_cpu.json"))
    args = ap.parse_args()
    h, w = (int(v) for v in args.size.split("x"))
    rng = np.random.default_rng(0)
    frames = rng.uniform(0, 255, (2, 3, h, w)).astype(np.float32)
    runs: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        paths = {b: build(Path(tmp), b, h, w, args.backend) for b in (1, 2)}

        def opened_engine(path: Path, threads: int) -> Any:
            if args.backend == "torch":
                return open_engine(path, backend="torch", device=args.device, threads=threads)
            return open_engine(path, backend="onnxruntime", intra_op_threads=threads)

        for threads in (1, 2) if args.device == "cpu" else (1,):
            for model in MODELS:
                engines = {b: opened_engine(paths[b][model], threads) for b in (1, 2)}
                try:
                    for e in engines.values():  # warm up
                        e.infer({"image": frames[: 1 if e is engines[1] else 2]})
                    ms = two_frames_ms(engines, frames, args.repeats)
                finally:
                    for e in engines.values():
                        e.close()
                runs[f"{model}/threads={threads}"] = {
                    "two_frames_batch1_ms": ms[1],
                    "two_frames_batch2_ms": ms[2],
                    "batch2_over_batch1": ms[2] / ms[1],
                }
                print(model, threads, runs[f"{model}/threads={threads}"])
        # both models side by side, a thread each, as edge run runs them on two cores
        opened = {(m, b): opened_engine(paths[b][m], 1) for m in MODELS for b in (1, 2)}
        try:
            with ThreadPoolExecutor(2) as pool:

                def frame_pair(batch: int) -> float:
                    t0 = time.perf_counter()
                    chunks = [frames[:1], frames[1:]] if batch == 1 else [frames]
                    for chunk in chunks:
                        futures = [pool.submit(opened[m, batch].infer, {"image": chunk}) for m in MODELS]
                        for f in futures:
                            f.result()
                    return (time.perf_counter() - t0) * 1e3

                for b in (1, 2):
                    frame_pair(b)  # warm up
                times: dict[int, list[float]] = {1: [], 2: []}
                for _ in range(args.repeats):
                    for b in (1, 2):
                        times[b].append(frame_pair(b))
            side = {b: statistics.median(v) for b, v in times.items()}
        finally:
            for e in opened.values():
                e.close()
        runs["both_side_by_side/threads=1_each"] = {
            "two_frames_batch1_ms": side[1],
            "two_frames_batch2_ms": side[2],
            "batch2_over_batch1": side[2] / side[1],
        }
        print("side by side", runs["both_side_by_side/threads=1_each"])
    write_result(
        args.out,
        {
            "what": __doc__.split("\n\n")[0],
            "command": " ".join(sys.argv),
            "size": args.size,
            "repeats": args.repeats,
            "backend": args.backend,
            "device": args.device,
            **bundled_provenance(),
            "runs": runs,
        },
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
