"""What ``?lines=fused`` costs a frame (edge.postprocess.fusion.fuse: every camera's newest
things at once), a class's pairs at once against pairs_reference thing by thing, on random
rigs of 2 and 4 cameras of 5, 15 and 30 things each (a car park: four cameras of thirty
things is seven thousand pairs); the ratio within one run, this machine's speed drifting.
The sink calls it once a frame of any camera: four cameras at 30 fps, 120 times a second.

    python benchmarks/fusion_trial.py --out benchmarks/results/fusion_cpu.json
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import write_runs  # noqa: E402
from edge.postprocess import fusion  # noqa: E402

CLASSES = ("car", "person", "truck", "bicycle")


def rig(cameras: int, things: int, seed: int) -> dict[str, list[dict[str, Any]]]:
    rng = random.Random(seed)
    return {
        f"cam{k}": [
            {
                "id": 26000 + i,
                "class": rng.choice(CLASSES),
                "score": 0.8,
                "track": i + 1,
                "lateral_m": rng.uniform(-20, 20),
                "ahead_m": rng.uniform(-40, 60),
                "range_m": 20.0,
                "in_path": None,
            }
            for i in range(things)
        ]
        for k in range(cameras)
    }


def median_ms(call: Any, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        call()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def one_run(cameras: int, things: int, repeats: int) -> dict[str, Any]:
    seen = rig(cameras, things, seed=cameras * 100 + things)
    fusion.fuse(seen)  # numpy's first call out of the way
    by_class = median_ms(lambda: fusion.fuse(seen), repeats)
    made = fusion._pairs
    try:  # the same fuse, its pairs found thing by thing
        fusion._pairs = lambda seen, keys, order, gate: fusion.pairs_reference(seen, gate)  # type: ignore[assignment]
        one_by_one = median_ms(lambda: fusion.fuse(seen), repeats)
    finally:
        fusion._pairs = made
    run = {
        "cameras": cameras,
        "things_each": things,
        "fuse_ms": round(by_class, 3),
        "fuse_thing_by_thing_ms": round(one_by_one, 3),
        "thing_by_thing_over_by_class": round(one_by_one / by_class, 2),
    }
    print(run, flush=True)
    return run


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=200, help="calls timed of each (their median)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/fusion_cpu.json")
    ap.add_argument(
        "--baseline", type=Path, help="a result file of this script from an earlier commit, kept in this one"
    )
    args = ap.parse_args()
    runs = [one_run(cameras, things, args.repeats) for cameras in (2, 4) for things in (5, 15, 30)]
    write_runs(
        args.out,
        what="fuse() of a rig's newest things a frame, a class's pairs at once and thing by thing",
        runs=runs,
        baseline=args.baseline,
        repeats=args.repeats,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
