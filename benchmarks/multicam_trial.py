"""Several cameras through one set of engines (edge run --camera): what each gets.

    python benchmarks/multicam_trial.py --out benchmarks/results/multicam_trial_cpu.json

ONNX Runtime engines of the bundled tiny weights (256x512), synthetic drives. Four runs,
each repeated, measured in one process so their ratios share the machine's state:

- ``one_file``: one camera's drive read as fast as the engines take it (its fps is the
  engines' rate here);
- ``two_files``: two cameras' drives at once, each read as fast as the engines take it:
  the frames per second of both together, against one's;
- ``two_live_turns``: two cameras at 17 fps each (``realtime``: paced, dropping what the
  engines cannot take, as cameras), taking turns at the engines as edge run does (TurnLock);
- ``two_live_lock``: the same with a plain lock, which the thread that released it may take
  again at once: how evenly the two cameras are served.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import build_bundled, bundled_provenance, write_result
from edge.stream.engines import EngineSet
from edge.stream.multicam import TurnLock, run_all
from edge.stream.pipeline import Pipeline
from edge.stream.sinks import NullSink
from edge.stream.sources import open_source

MODELS = ("panoptic_fpn_tiny", "depth_tiny")
SIZE = (256, 512)
RATE = 17.0


def run(
    engines: EngineSet, cameras: int, *, frames: int | None, duration_s: float | None, turn: Any
) -> dict[str, Any]:
    """``cameras`` synthetic drives through ``engines`` at once: each camera's summary."""
    live = duration_s is not None
    pipelines = {
        f"cam{i}": Pipeline(
            source=open_source(f"synthetic://?size={SIZE[0]}x{SIZE[1]}&fps={RATE:g}&seed={i}"),
            engines=engines,
            sinks=[NullSink()],
            max_frames=frames,
            duration_s=duration_s,
            realtime=live,
            camera=f"cam{i}",
            engine_turn=turn,
        )
        for i in range(cameras)
    }
    run_all(pipelines)
    out = {}
    for name, pipeline in pipelines.items():
        s = pipeline.tracker.summary()
        out[name] = {
            "frames_out": s["frames_out"],
            "drops": s["drops"],
            "fps": round(s["fps"], 2),
            "end_to_end_p50_ms": round(s["end_to_end_ms"]["p50"], 1),
            "end_to_end_p99_ms": round(s["end_to_end_ms"]["p99"], 1),
        }
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--frames", type=int, default=80, help="frames a camera, the file runs")
    p.add_argument("--duration", type=float, default=12.0, help="seconds, the live runs")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()

    runs: dict[str, list[dict[str, Any]]] = {
        k: [] for k in ("one_file", "two_files", "two_live_turns", "two_live_lock")
    }
    with tempfile.TemporaryDirectory() as tmp:
        build_bundled(MODELS, *SIZE, Path(tmp))
        engines = EngineSet.from_manifest(Path(tmp))
        try:
            run(engines, 1, frames=8, duration_s=None, turn=TurnLock())  # warm-up
            for r in range(args.repeats):
                for key, cameras, live, turn in (
                    ("one_file", 1, False, TurnLock()),
                    ("two_files", 2, False, TurnLock()),
                    ("two_live_turns", 2, True, TurnLock()),
                    ("two_live_lock", 2, True, threading.Lock()),
                ):
                    got = run(
                        engines,
                        cameras,
                        frames=None if live else args.frames,
                        duration_s=args.duration if live else None,
                        turn=turn,
                    )
                    runs[key].append(got)
                    print(r, key, got, flush=True)
        finally:
            engines.close()

    def total_fps(key: str) -> list[float]:
        return [round(sum(c["fps"] for c in got.values()), 2) for got in runs[key]]

    def evenness(key: str) -> list[float]:  # the fewer frames a camera got over the more
        return [
            round(min(c["frames_out"] for c in got.values()) / max(c["frames_out"] for c in got.values()), 3)
            for got in runs[key]
        ]

    one = total_fps("one_file")
    report = {
        "what": "several cameras through one set of engines: throughput and how evenly they are served",
        "command": " ".join(sys.argv),
        **bundled_provenance(),
        "size": list(SIZE),
        "rate_fps": RATE,
        "runs": runs,
        "summary": {
            "one_file_fps": one,
            "two_files_total_fps": total_fps("two_files"),
            "two_over_one": [round(t / o, 3) for t, o in zip(total_fps("two_files"), one, strict=True)],
            "two_live_turns_total_fps": total_fps("two_live_turns"),
            "two_live_turns_evenness": evenness("two_live_turns"),
            "two_live_lock_total_fps": total_fps("two_live_lock"),
            "two_live_lock_evenness": evenness("two_live_lock"),
        },
    }
    write_result(args.out, report)
    print(report["summary"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
