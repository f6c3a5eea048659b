"""The weights on drives seen from the right lane, against the centre line the bundled ones were trained on.

    python benchmarks/lane_trial.py --out benchmarks/results/lane_trial_cpu.json
    python benchmarks/lane_trial.py --weights DIR [DIR ...] --out ...   # DIR/panoptic_fpn_tiny.pt, ...
    python benchmarks/lane_trial.py --cut-ins 4 --weights DIR --out ...  # people crossing, cars pulling out

The synthetic camera drives on the road's centre line (``lane=centre``), as the drives
the bundled weights were trained on did, so oncoming cars pass within a 3 m wide path
and are warned of as if in it. ``lane=right`` drives in the right lane with the
traffic. The same worlds (seeds) are written both ways, with ground truth on every
frame, and replayed through ONNX Runtime engines of the bundled tiny weights (256x512),
and of those in ``--weights`` (``edge train --lanes centre right``), with the camera's
field of view from its files: whether the view from the lane costs accuracy (PQ, mIoU,
depth, object distance, tracking), and what it does to what is in the path and warned of.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import build_bundled, bundled_provenance, write_result
from edge.data.make_synthetic import write_dataset
from edge.data.synthetic import LANES
from edge.replay import replay
from edge.util.fs import sha256_file

MODELS = ("panoptic_fpn_tiny", "depth_tiny")


def headline(metrics: dict[str, Any]) -> dict[str, Any]:
    tracking = metrics["tracking"]
    lateral = tracking["lateral"]
    pan, depth, objects = metrics["panoptic"], metrics["depth"], metrics["object_distance"]
    return {
        "pq": pan["all"]["pq"],
        "pq_things": pan["things"]["pq"],
        "pq_stuff": pan["stuff"]["pq"],
        "sq": pan["all"]["sq"],
        "rq": pan["all"]["rq"],
        "miou": metrics["semantic"]["miou"],
        "depth_abs_rel": float(depth["abs_rel"]),
        "depth_rmse": float(depth["rmse"]),
        "depth_sq_rel": float(depth["sq_rel"]),
        "depth_delta1": float(depth["delta1"]),
        "depth_delta2": float(depth["delta2"]),
        "depth_delta3": float(depth["delta3"]),
        "object_distance_abs_rel": objects.get("abs_rel"),
        "object_distance_abs_err_m_p50": objects.get("abs_err_m_p50"),
        "object_distance_within_10pct": objects.get("within_10pct"),
        "objects": objects.get("objects"),
        "found_by_distance": metrics["found_by_distance"],
        "idf1": tracking["idf1"],
        "lateral_abs_err_m_p50": lateral.get("abs_err_m_p50"),
        "in_path": lateral["in_path"],
        "warnings": tracking["warnings"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sequences", type=int, default=6)
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--gt-every", type=int, default=1, help="ground truth on every Nth frame")
    ap.add_argument(
        "--cut-ins", type=int, default=0, help="road users a drive crossing into the path (make-synthetic's)"
    )
    ap.add_argument(
        "--weights",
        type=Path,
        nargs="*",
        default=[],
        help="folders of MODEL.pt to try beside the bundled weights",
    )
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/lane_trial_cpu.json"))
    args = ap.parse_args()
    weight_sets: dict[str, Path | None] = {"bundled": None}
    for folder in args.weights:
        weight_sets[str(folder)] = folder
    runs: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for lane in LANES:
            write_dataset(
                Path(tmp) / lane,
                sequences=args.sequences,
                frames=args.frames,
                size=(256, 512),
                seed=args.seed,
                gt_every=args.gt_every,
                lane=lane,
                cut_ins=args.cut_ins,
            )
        for name, weights in weight_sets.items():
            engines = Path(tmp) / f"engines_{len(runs)}"
            build_bundled(MODELS, 256, 512, engines, weights=weights)
            runs[name] = {}
            for lane in LANES:
                report = replay(f"cityscapes://{Path(tmp) / lane}?fps=0", engines=engines, threads=1)
                runs[name][lane] = {"frames": report["gt_frames"], **headline(report["metrics"])}
                print(name, lane, runs[name][lane])
    digests = {
        str(w / f"{m}.pt"): sha256_file(w / f"{m}.pt")
        for w in weight_sets.values()
        if w is not None
        for m in MODELS
    }
    write_result(
        args.out,
        {
            "what": __doc__.split("\n\n")[0],
            "command": " ".join(sys.argv),
            "frames": f"{args.sequences} synthetic drives x {args.frames} at 256x512, seed {args.seed}, "
            f"ground truth on every {args.gt_every}, each written from the centre line and from the "
            "right lane" + (f", {args.cut_ins} cut-ins a drive" if args.cut_ins else ""),
            **bundled_provenance(),
            **({"other_weights_sha256": digests} if digests else {}),
            "runs": runs,
        },
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
