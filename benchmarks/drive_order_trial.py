"""Two cameras' recordings read in drive order (edge.stream.pacing.DriveOrder) against read in
turns: how far apart in the drive the frames fused at once are, and what the order costs.

    python benchmarks/drive_order_trial.py --out benchmarks/results/drive_order_cpu.json

ONNX Runtime engines of the bundled tiny weights (256x512), two synthetic recordings of one
drive's length: a front camera at 30 fps and a side camera at 10 fps, read as fast as the
engines take them through one set of engines (TurnLock, as ``edge run --camera`` does), the
two arms alternating in one process so their ratios share the machine's state:

- ``ordered``: each camera's reader waits until no other camera's next frame was captured
  earlier (what ``edge run`` does with several recordings and no ``--realtime``);
- ``turns``: each reads its next frame as soon as the engines took its last (before the
  order: the cameras take turns frame by frame).

``apart_s``: at each frame done, how far in the drive it is from the other camera's newest
frame done (what ``?lines=fused`` fuses it with): p50, p90, max. ``fps``: both cameras'
frames over the run's wall time.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import build_bundled, bundled_provenance, write_result
from edge.stream.engines import EngineSet
from edge.stream.multicam import TurnLock, run_all
from edge.stream.pacing import drive_order
from edge.stream.pipeline import Pipeline
from edge.stream.sinks import NullSink
from edge.stream.sources import open_source

MODELS = ("panoptic_fpn_tiny", "depth_tiny")
SIZE = (256, 512)
RATES = {"front": 30.0, "side": 10.0}


def run(engines: EngineSet, *, seconds: float, ordered: bool) -> dict[str, Any]:
    """The two recordings, ``seconds`` of drive each, through ``engines``: how far apart the
    frames fused at once are, and the frames per second of both."""
    lock = threading.Lock()
    newest: dict[str, float] = {}
    apart: list[float] = []

    def done(name: str) -> Any:
        def on_result(result: Any) -> None:
            drive_s = result.frame.seq / RATES[name]
            with lock:
                newest[name] = drive_s
                if len(newest) == len(RATES):
                    apart.append(max(abs(drive_s - t) for t in newest.values()))

        return on_result

    turn = TurnLock()
    pipelines = {
        name: Pipeline(
            source=open_source(
                f"synthetic://?size={SIZE[0]}x{SIZE[1]}&fps={rate:g}&frames={round(seconds * rate)}&seed={i}"
            ),
            engines=engines,
            sinks=[NullSink()],
            camera=name,
            engine_turn=turn,
            on_result=done(name),
        )
        for i, (name, rate) in enumerate(RATES.items())
    }
    if ordered and drive_order(pipelines, realtime=False, loop=False) is None:
        raise RuntimeError("the two recordings were not put in drive order")
    began = time.perf_counter()
    run_all(pipelines)
    wall_s = time.perf_counter() - began
    frames = sum(p.tracker.summary()["frames_out"] for p in pipelines.values())
    a = np.asarray(apart)
    return {
        "frames": frames,
        "fps": round(frames / wall_s, 2),
        "apart_s": {
            "p50": round(float(np.percentile(a, 50)), 3),
            "p90": round(float(np.percentile(a, 90)), 3),
            "max": round(float(a.max()), 3),
            "count": int(a.size),
        },
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--seconds", type=float, default=4.0, help="seconds of drive each recording holds")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()

    runs: dict[str, list[dict[str, Any]]] = {"ordered": [], "turns": []}
    with tempfile.TemporaryDirectory() as tmp:
        build_bundled(MODELS, *SIZE, Path(tmp))
        engines = EngineSet.from_manifest(Path(tmp))
        try:
            run(engines, seconds=0.5, ordered=False)  # warm-up
            for r in range(args.repeats):
                for key in ("ordered", "turns") if r % 2 == 0 else ("turns", "ordered"):
                    got = run(engines, seconds=args.seconds, ordered=key == "ordered")
                    runs[key].append(got)
                    print(r, key, got, flush=True)
        finally:
            engines.close()

    report = {
        "what": "two cameras' recordings (30 and 10 fps) read in drive order against in turns: how far "
        "apart in the drive the frames fused at once are, and the frames per second of both",
        "command": " ".join(sys.argv),
        **bundled_provenance(),
        "size": list(SIZE),
        "rates_fps": RATES,
        "seconds": args.seconds,
        "runs": runs,
        "summary": {
            "ordered_apart_p90_s": [got["apart_s"]["p90"] for got in runs["ordered"]],
            "turns_apart_p90_s": [got["apart_s"]["p90"] for got in runs["turns"]],
            "ordered_apart_max_s": [got["apart_s"]["max"] for got in runs["ordered"]],
            "turns_apart_max_s": [got["apart_s"]["max"] for got in runs["turns"]],
            "ordered_over_turns_fps": [
                round(o["fps"] / t["fps"], 3) for o, t in zip(runs["ordered"], runs["turns"], strict=True)
            ],
        },
    }
    write_result(args.out, report)
    print(report["summary"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
