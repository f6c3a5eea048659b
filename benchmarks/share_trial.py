"""Cameras sharing the engines' turns by share (edge run --share) against equal turns and a rank.

    python benchmarks/share_trial.py --out benchmarks/results/share_trial_cpu.json

Two cameras at 30 fps, twice what the engines take (the bundled tiny weights on
ONNX Runtime at 256x512, ``edge bench --streams``, frames arriving together), run in turn
in one process: taking equal turns, stream0 of share 2 and of share 3, and stream0 ranked
first. Shares should split the frames the engines give about 2:1 and 3:1 where both
cameras always wait, the rank all to stream0 that it asks for, and equal turns 1:1.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import write_result
from benchmarks.priority_trial import alternate, trial_arguments, trial_report


def main() -> int:
    args = trial_arguments(__doc__, streams=2, rate=30.0)
    runs = alternate(
        args,
        {
            "turns": {},
            "stream0_share_2": {"shares": {"stream0": 2.0}},
            "stream0_share_3": {"shares": {"stream0": 3.0}},
            "stream0_ranked": {"ranked": True},
        },
    )
    summary = {
        key: {
            "fps_together": [got["fps_together"] for got in got_runs],
            "stream0_to_stream1_frames": [
                round(got["streams"]["stream0"]["frames"] / max(1, got["streams"]["stream1"]["frames"]), 2)
                for got in got_runs
            ],
            "fps_each": [{n: s["fps"] for n, s in got["streams"].items()} for got in got_runs],
            "dropped_each": [
                {n: s["dropped_fraction"] for n, s in got["streams"].items()} for got in got_runs
            ],
        }
        for key, got_runs in runs.items()
    }
    report = trial_report(
        args,
        "two cameras more than the engines keep up with: equal turns, stream0 of share 2 and 3, "
        "stream0 ranked first",
        runs,
        summary,
    )
    write_result(args.out, report)
    print(summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
