"""Cameras whose frames arrive together against cameras spread over a frame's period.

    python benchmarks/arrival_trial.py --out benchmarks/results/arrival_trial_cpu.json

The bundled tiny weights on ONNX Runtime at 256x512, ``edge bench --streams``'s measurement
(priority_trial.one), every camera at ``--rate`` taking turns at the engines: their frames
arriving at the same moments (cameras triggered as one, ``--arrival together``) and spread
evenly over a period (free-running cameras at their best, ``--arrival spread``), one after
the other, repeated: how long a frame waits for its turn, and each stream's latency.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import write_result
from benchmarks.priority_trial import alternate, trial_arguments, trial_report

SUMMED = ("fps_together", "dropped_fraction", "turn_p50_ms", "end_to_end_p50_ms", "end_to_end_p99_ms")


def main() -> int:
    args = trial_arguments(__doc__, streams=3, rate=6.0)
    runs = alternate(args, {"together": {"arrival": "together"}, "spread": {"arrival": "spread"}})
    report = trial_report(
        args,
        "cameras' frames arriving together against spread over a period: the wait for a turn",
        runs,
        {
            arrival: {key: [got[key] for got in got_runs] for key in SUMMED}
            | {
                "p50_ms_by_stream": [
                    [s["end_to_end_p50_ms"] for s in got["streams"].values()] for got in got_runs
                ]
            }
            for arrival, got_runs in runs.items()
        },
    )
    write_result(args.out, report)
    print(report["summary"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
