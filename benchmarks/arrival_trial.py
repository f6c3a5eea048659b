"""Cameras whose frames arrive together against cameras spread over a frame's period.

    python benchmarks/arrival_trial.py --out benchmarks/results/arrival_trial_cpu.json

The bundled tiny weights on ONNX Runtime at 256x512, ``edge bench --streams``'s measurement
(priority_trial.one), every camera at ``--rate`` taking turns at the engines: their frames
arriving at the same moments (cameras triggered as one, ``--arrival together``) and spread
evenly over a period (free-running cameras at their best, ``--arrival spread``), one after
the other, repeated: how long a frame waits for its turn, and each stream's latency.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import build_bundled, bundled_provenance, write_result
from benchmarks.priority_trial import MODELS, SIZE, one

SUMMED = ("fps_together", "dropped_fraction", "turn_p50_ms", "end_to_end_p50_ms", "end_to_end_p99_ms")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--streams", type=int, default=3)
    p.add_argument("--rate", type=float, default=6.0, help="each camera's fps")
    p.add_argument("--seconds", type=float, default=20.0, help="measured, each run")
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args()

    runs: dict[str, list[dict[str, Any]]] = {"together": [], "spread": []}
    with tempfile.TemporaryDirectory() as tmp:
        build_bundled(MODELS, *SIZE, Path(tmp))
        for r in range(args.repeats):
            for arrival in runs:
                got = one(
                    Path(tmp),
                    streams=args.streams,
                    rate=args.rate,
                    seconds=args.seconds,
                    ranked=False,
                    arrival=arrival,
                )
                runs[arrival].append(got)
                print(r, arrival, got, flush=True)
    report = {
        "what": "cameras' frames arriving together against spread over a period: the wait for a turn",
        "command": " ".join(sys.argv),
        **bundled_provenance(),
        "size": list(SIZE),
        "streams": args.streams,
        "rate_fps": args.rate,
        "runs": runs,
        "summary": {
            arrival: {key: [got[key] for got in got_runs] for key in SUMMED}
            | {
                "p50_ms_by_stream": [
                    [s["end_to_end_p50_ms"] for s in got["streams"].values()] for got in got_runs
                ]
            }
            for arrival, got_runs in runs.items()
        },
    }
    write_result(args.out, report)
    print(report["summary"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
