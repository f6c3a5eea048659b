"""What ``edge compare``'s agreement says beside what the ground truth says: for builds a
deployment would weigh against the FP32 engines, how far they agree with them (edge compare,
no labels) and how much each one's own scores against the truth moved (edge replay --eval).

    python benchmarks/compare_trial.py --out benchmarks/results/compare_trial_cpu.json

ONNX Runtime engines of the bundled weights; a synthetic val split of drives from the right
lane with ground truth on every frame; three pairs, the candidate against its reference:

- ``tiny_int8``: panoptic_fpn_tiny + depth_tiny INT8 (``edge build --precision int8``, its
  defaults, calibrated on a train split) against their FP32 build, 256x512;
- ``small_int8``: the same for panoptic_fpn_small + depth_small, the INT8 pair of
  ``int8_report.py`` (which adds a sensitivity pass, ``--int8-min-snr 34``; here none);
- ``tiny_half_size``: the tiny FP32 engines at 128x256 against 256x512.

Each pair: the agreement (PQ, mIoU, pixels of the same class, depth AbsRel and the objects'
distances, with the reference as the truth), the speed-up on the same frames, and both builds'
PQ, mIoU and depth AbsRel against the ground truth (in percent, as edge compare gives them; the
first record ran edge replay --eval for them, in fractions), with the change.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import bundled_provenance, compared_drives, write_result
from edge.build import BuildRequest, build_all
from edge.compare import EngineChoice, compare
from edge.data.make_synthetic import write_dataset
from edge.models.zoo import bundled_weights

TINY = ("panoptic_fpn_tiny", "depth_tiny")
SMALL = ("panoptic_fpn_small", "depth_small")
FULL, HALF = (256, 512), (128, 256)


def builds(calib_uri: str) -> list[BuildRequest]:
    def request(model: str, size: tuple[int, int], precision: str = "fp32") -> BuildRequest:
        return BuildRequest(
            model=model,
            height=size[0],
            width=size[1],
            precision=precision,
            checkpoint=bundled_weights(model),
            calib_data=calib_uri if precision == "int8" else None,
        )

    out = [request(m, FULL, p) for m in (*TINY, *SMALL) for p in ("fp32", "int8")]
    return out + [request(m, HALF) for m in TINY]


def pair(source: str, candidate: EngineChoice, reference: EngineChoice) -> dict[str, Any]:
    """edge compare on the val split: the agreement, and (its frames having ground truth) both
    builds' scores against the truth, which edge compare gives as edge replay --eval does."""
    report = compare(source, engines=candidate, reference=reference, threads=1, worst=3, show_progress=False)
    a, truth = report["agreement"], report["truth"]
    return {
        "engines": report["engines"]["engines"],
        "reference": report["reference"]["engines"],
        "frames": report["frames"],
        "agreement": {
            "pq": a["panoptic"]["all"]["pq"],
            "pq_things": a["panoptic"]["things"]["pq"],
            "miou": a["semantic"]["miou"],
            "pixels_agree": a["pixels_agree"],
            "depth_abs_rel": a["depth"]["abs_rel"],
            "depth_delta1": a["depth"]["delta1"],
            "object_distance_abs_rel": a["object_distance"].get("abs_rel"),
        },
        "least_agreeing": report["least_agreeing"],
        "speedup_end_to_end_p50": report["speedup"],
        "truth": {
            "frames": truth["frames"],
            "engines": truth["engines"],
            "reference": truth["reference"],
            "pq_drop": -truth["change"]["pq"],
            "miou_drop": -truth["change"]["miou"],
            "depth_abs_rel_rise": truth["change"]["depth_abs_rel"],
        },
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--sequences", type=int, default=4)
    ap.add_argument("--frames", type=int, default=20)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data, engines = Path(tmp, "synth"), Path(tmp, "engines")
        write_dataset(
            data, sequences=6, frames=30, size=FULL, split="train", gt_every=30, seed=11, lane="right"
        )
        source = compared_drives(data, sequences=args.sequences, frames=args.frames, size=FULL)
        build_all(builds(f"cityscapes://{data}?split=train&fps=0"), engines, show_progress=True)
        pairs: dict[str, Any] = {}
        for name, models in (("tiny_int8", TINY), ("small_int8", SMALL)):
            chosen = EngineChoice(
                engines=engines, backend="onnxruntime", panoptic=models[0], depth=models[1], size=FULL
            )
            pairs[name] = pair(source, chosen.but(precision="int8"), chosen.but(precision="fp32"))
            print(name, pairs[name]["agreement"], pairs[name]["truth"], flush=True)
        tiny = EngineChoice(
            engines=engines, backend="onnxruntime", panoptic=TINY[0], depth=TINY[1], precision="fp32"
        )
        pairs["tiny_half_size"] = pair(source, tiny.but(size=HALF), tiny.but(size=FULL))
        print("tiny_half_size", pairs["tiny_half_size"]["agreement"], pairs["tiny_half_size"]["truth"])
    write_result(
        args.out,
        {
            "what": "edge compare's agreement (no labels, the reference as the truth) beside each build's "
            "own scores against the ground truth",
            "command": " ".join(sys.argv),
            **bundled_provenance(),
            "source": f"synthetic val split, {args.sequences} drives x {args.frames} frames from the right "
            "lane (seed 1), ground truth on every frame; INT8 calibrated on 6 x 30 train frames (seed 11)",
            "pairs": pairs,
        },
    )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
