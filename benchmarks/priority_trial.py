"""Cameras ranked at the engines (edge run --priority) against cameras taking turns.

    python benchmarks/priority_trial.py --out benchmarks/results/priority_trial_cpu.json

The bundled tiny weights on ONNX Runtime at 256x512, ``edge bench --streams`` (its frames
held in memory, each stream a pipeline paced at ``--rate``, all arriving together), with
stream0 ranked first and with no ranks, one after the other, repeated: each stream's frames,
drops and end-to-end latency, measured in one process so their ratios share the machine's
state. With more cameras than the engines keep up with, the ranked one should keep its rate.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import build_bundled, bundled_provenance, write_result
from edge.bench import BenchConfig, run_bench

MODELS = ("panoptic_fpn_tiny", "depth_tiny")
SIZE = (256, 512)


def one(
    engines: Path,
    *,
    streams: int,
    rate: float,
    seconds: float,
    ranked: bool = False,
    arrival: str = "together",
    shares: dict[str, float] | None = None,
) -> dict[str, Any]:
    """One run of ``streams`` cameras at ``rate``: what each got (stream0 ranked first or not;
    ``shares``: edge bench --share's)."""
    data = run_bench(
        [BenchConfig(size=SIZE, streams=streams)],
        engines=engines,
        source=f"synthetic://?size={SIZE[0]}x{SIZE[1]}",
        warmup=20,
        min_frames=1,
        min_duration_s=seconds,
        build_missing=False,
        show_progress=False,
        rate=rate,
        priorities={"stream0": 1} if ranked else None,
        shares=shares,
        power_root=None,
        arrival=arrival,
    )
    (r,) = data["results"]
    return {
        "fps_together": round(r["throughput_fps"], 2),
        "turn_p50_ms": round(r["stages_ms"]["turn"]["p50"], 1),
        "end_to_end_p50_ms": round(r["end_to_end_ms"]["p50"], 1),
        "end_to_end_p99_ms": round(r["end_to_end_ms"]["p99"], 1),
        "dropped_fraction": round(r["dropped_fraction"], 4),
        "streams": {
            name: {
                "frames": s["frames"],
                "fps": round(s["fps"], 2),
                "arrived": s["arrived"],
                "drops": s["drops"],
                "dropped_fraction": round(s["dropped_fraction"], 4),
                "end_to_end_p50_ms": round(s["end_to_end_ms"].get("p50", float("nan")), 1),
                "end_to_end_p99_ms": round(s["end_to_end_ms"].get("p99", float("nan")), 1),
            }
            for name, s in r["streams"].items()
        },
    }


def trial_arguments(doc: str, *, streams: int, rate: float) -> argparse.Namespace:
    """The command line of a trial of ``streams`` cameras at ``rate`` (this one's, arrival_trial's)."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--streams", type=int, default=streams)
    p.add_argument("--rate", type=float, default=rate, help="each camera's fps")
    p.add_argument("--seconds", type=float, default=20.0, help="measured, each run")
    p.add_argument("--repeats", type=int, default=2)
    return p.parse_args()


def alternate(
    args: argparse.Namespace, variants: dict[str, dict[str, Any]]
) -> dict[str, list[dict[str, Any]]]:
    """Each of ``variants`` (one's keyword arguments by name) run in turn, ``args.repeats``
    times, on the bundled tiny engines built once: what each run got, by name."""
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory() as tmp:
        build_bundled(MODELS, *SIZE, Path(tmp))
        for r in range(args.repeats):
            for name, kw in variants.items():
                got = one(Path(tmp), streams=args.streams, rate=args.rate, seconds=args.seconds, **kw)
                runs[name].append(got)
                print(r, name, got, flush=True)
    return runs


def trial_report(
    args: argparse.Namespace, what: str, runs: dict[str, list[dict[str, Any]]], summary: dict[str, Any]
) -> dict[str, Any]:
    """A trial's result file: what it compared, how it was run, each run and the summary."""
    return {
        "what": what,
        "command": " ".join(sys.argv),
        **bundled_provenance(),
        "size": list(SIZE),
        "streams": args.streams,
        "rate_fps": args.rate,
        "runs": runs,
        "summary": summary,
    }


def main() -> int:
    args = trial_arguments(__doc__, streams=4, rate=8.0)
    runs = alternate(args, {"turns": {"ranked": False}, "stream0_ranked": {"ranked": True}})

    def of(key: str, stream: str, field: str) -> list[float]:
        return [got["streams"][stream][field] for got in runs[key]]

    others = [f"stream{i}" for i in range(1, args.streams)]
    report = trial_report(
        args,
        "one camera ranked first at the engines against all taking turns, "
        "more cameras than they keep up with",
        runs,
        {
            key: {
                "fps_together": [got["fps_together"] for got in runs[key]],
                "stream0_dropped_fraction": of(key, "stream0", "dropped_fraction"),
                "stream0_p50_ms": of(key, "stream0", "end_to_end_p50_ms"),
                "stream0_p99_ms": of(key, "stream0", "end_to_end_p99_ms"),
                "others_dropped_fraction": [
                    round(
                        sum(g["streams"][o]["drops"] for o in others)
                        / max(1, sum(g["streams"][o]["arrived"] for o in others)),
                        4,
                    )
                    for g in runs[key]
                ],
                "others_p99_ms": [
                    max(g["streams"][o]["end_to_end_p99_ms"] for o in others) for g in runs[key]
                ],
            }
            for key in runs
        },
    )
    write_result(args.out, report)
    print(report["summary"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
