"""Distances read from the road against the depth engine's, for the tracker's warnings.

    python benchmarks/ground_trial.py --out benchmarks/results/ground_trial_cpu.json

The tiny depth engine puts far things short (oncoming cars 40-70 m off at half that), and
their offsets from the axis with them, so from the right lane oncoming cars were placed in
the path and warned of. With the camera's height over the road, its horizon and focal
length (edge.postprocess.ground), a thing's distance is read from the row its feet stand
on instead. Synthetic drives with ground truth on every frame (the tracking trial's four
sets: from the right lane plain, with cut-ins and with the car ahead braking, and the
centre line with cut-ins) are run once through ONNX Runtime engines of the bundled tiny
weights (256x512; --engine-size 128x256 for engines that see half the rows, where a
row of the picture is worth twice the distance), and the tracker with the synthetic
camera's field of view is run over them twice, reading distances from the depth map
alone and from the road, scored as edge replay scores it (benchmarks/tracking_trial.py's
lateral_errors). Where a thing's feet hide, the tracker scales the depth engine's
distance by the track's recent road / depth ratios: those distances are scored against
the depth engine's own on the same frames (hidden_feet_distance). Both arms are run again
with a cut-in said on the lateral speed alone and at lower confidences than the tracker's
default 0.95 (by_cut_in_confidence: what its interval costs and saves). A third arm,
"fitted", reads the distances from the road's plane fitted to each frame's depth map
(edge.postprocess.road_fit), as the tracker does for a camera nobody gave a height: what
the road arm's plane is worth where nobody measured the camera.

With --frames-cache DIR the frames the engines saw are kept there (benchmarks/frames_cache.py)
and a rerun with only the tracker changed takes them from there: a minute, not ten.
"""

from __future__ import annotations

import argparse
import functools
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import build_bundled, bundled_provenance, write_result
from benchmarks.frames_cache import cached_frames, frames_key
from benchmarks.tracking_trial import MODELS, lateral_errors, seen_frames
from edge.data.make_synthetic import write_dataset
from edge.data.synthetic import Camera
from edge.eval.objects import distance_errors
from edge.postprocess.ground import GroundPlane
from edge.postprocess.tracks import ObjectTracker

SETS: dict[str, dict[str, Any]] = {
    "lane": {"lane": "right", "sequences": 20, "frames": 80},
    "lane_cut_ins": {"lane": "right", "sequences": 20, "frames": 60, "cut_ins": 4},
    "lane_lead_brakes": {"lane": "right", "sequences": 20, "frames": 80, "lead_brakes": True},
    "centre_cut_ins": {"lane": "centre", "sequences": 20, "frames": 60, "cut_ins": 4},
}


# the modules that only read the frames the engines saw: a change to them keeps a --frames-cache
# (not slopes.py: the frames' road fits are made with its Theil-Sen line)
AFTER_FRAMES = (
    "edge/postprocess/tracks.py",
    "edge/postprocess/drift.py",
    "edge/postprocess/track_info.py",
    "edge/postprocess/ground.py",
    "edge/postprocess/occlusion.py",
    "edge/postprocess/boxes.py",
    "edge/eval/tracking.py",
    "benchmarks/ground_trial.py",
    "benchmarks/frames_cache.py",
)

# besides the tracker's default, 0.95: 0 is the lateral speed alone
CUT_IN_CONFIDENCES = (0.0, 0.8, 0.9)


def depth_map_distances(frames: list[dict[str, Any]]) -> dict[str, Any]:
    """The depth engine's distances (median over each thing's mask) of every matched thing
    against the truth, in every frame: what the road's readings are to be compared with."""
    pred, true = [], []
    for f in frames:
        by_id = {inst.panoptic_id: d for inst, d in zip(f["instances"], f["distances"], strict=True)}
        for g, p in f["matched"].thing_pairs:
            if by_id.get(p) is not None and g in f["true_distance"]:
                pred.append(by_id[p][0])
                true.append(f["true_distance"][g])
    return distance_errors(pred, true)


def hidden_feet_distances(frames: list[dict[str, Any]], ground: GroundPlane) -> dict[str, Any]:
    """Where a matched thing's feet were hidden and its track scaled the depth engine's
    distance to its recent road readings (TrackInfo.range_from "scaled"): that distance, and
    the depth engine's own on the same frames, against the truth; with the synthetic
    camera's field of view and ``ground``, as lateral_errors' tracker reads them."""
    tracker = ObjectTracker(hfov_deg=float(np.degrees(2 * np.arctan(1 / 2.2))), ground=ground)
    scaled, depth, true = [], [], []
    for f in frames:
        infos = tracker.update(f["instances"], f["distances"], f["t_s"], scene=f["scene"], size=f["size"])
        by_id = {
            inst.panoptic_id: (info, d)
            for inst, info, d in zip(f["instances"], infos, f["distances"], strict=True)
        }
        for g, p in f["matched"].thing_pairs:
            info, d = by_id.get(p, (None, None))
            if info is not None and info.range_from == "scaled" and d is not None and g in f["true_distance"]:
                scaled.append(info.range_m)
                depth.append(d[0])
                true.append(f["true_distance"][g])
    return {"scaled": distance_errors(scaled, true), "depth_map": distance_errors(depth, true)}


def headline(scored: dict[str, Any]) -> dict[str, Any]:
    warnings, events, in_path = scored["warnings"], scored["cut_in_events"], scored["in_path"]
    return {
        "warnings_due": warnings["due"],
        "warned_of_due": warnings["warned"],
        "warned_of_never_due": warnings["false"],
        "due_never_found": warnings["never_found"],
        "cut_ins_truly": events["truly"],
        "cut_ins_warned": events["warned"],
        "cut_ins_false_things": events["false_things"],
        "cut_ins_lead_s_p50": events.get("lead_s_p50"),
        "warning_delay_s_p90": warnings.get("delay_s_p90"),
        "in_path_precision": in_path["precision"],
        "in_path_recall": in_path["recall"],
        "lateral_abs_err_m_p50": scored.get("abs_err_m_p50"),
        "closing_abs_err_mps_p50": scored["closing_speed"].get("abs_err_mps_p50"),
        "ttc_abs_err_s_p50": scored["time_to_collision"].get("abs_err_s_p50"),
        "road_distance_abs_rel": scored["ground_distance"].get("abs_rel"),
        "road_distance_objects": scored["ground_distance"]["objects"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--sets", nargs="+", choices=sorted(SETS), default=list(SETS))
    ap.add_argument(
        "--engine-size",
        type=lambda text: tuple(int(v) for v in text.split("x")),
        default=(256, 512),
        metavar="HxW",
        help="the engines' input size (default 256x512)",
    )
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/ground_trial_cpu.json"))
    ap.add_argument(
        "--frames-cache",
        type=Path,
        metavar="DIR",
        help="keep the frames the engines saw here, and take them from here when nothing they "
        "depend on changed (about 1 GB a set; default: none kept)",
    )
    args = ap.parse_args()
    ground = Camera(256, 512).ground
    provenance = bundled_provenance()
    runs = {}
    frames_from = {}
    with tempfile.TemporaryDirectory() as tmp:
        engines = Path(tmp) / "engines"

        def see(name: str) -> list[dict[str, Any]]:
            if not engines.exists():
                build_bundled(MODELS, *args.engine_size, engines)
            data = Path(tmp) / name
            write_dataset(data, size=(256, 512), seed=args.seed, gt_every=1, **SETS[name])
            frames = seen_frames(data, engines)
            for f in frames:  # the truth's instance ids: nothing here reads them, and they are half a cache
                f.pop("gt_ids", None)
            return frames

        for name in args.sets:
            parts = {"drives": SETS[name], "seed": args.seed, "engine_size": args.engine_size}
            parts |= {"weights": provenance["weights_sha256"], "versions": provenance["versions"]}
            key = frames_key(parts, after=AFTER_FRAMES)
            frames, frames_from[name] = cached_frames(
                args.frames_cache, name, key, functools.partial(see, name)
            )
            depth, road = lateral_errors(frames), lateral_errors(frames, ground=ground)
            fitted = lateral_errors(frames, fitted=True)
            runs[name] = {
                "drives": SETS[name],
                "depth_map": headline(depth),
                "road": headline(road),
                "fitted": headline(fitted),
                "depth_map_scored": depth,
                "road_scored": road,
                "fitted_scored": fitted,
                "depth_map_distance": depth_map_distances(frames),
                "hidden_feet_distance": hidden_feet_distances(frames, ground),
                "by_cut_in_confidence": {
                    f"{c:g}": {
                        "depth_map": headline(lateral_errors(frames, cut_in_confidence=c)),
                        "road": headline(lateral_errors(frames, ground=ground, cut_in_confidence=c)),
                    }
                    for c in CUT_IN_CONFIDENCES
                },
            }
            print(f"{name}:\n  depth map {runs[name]['depth_map']}", flush=True)
            print(f"  road      {runs[name]['road']}", flush=True)
            print(f"  fitted    {runs[name]['fitted']}", flush=True)
            print(f"  feet hidden {runs[name]['hidden_feet_distance']}", flush=True)
            del frames
    write_result(
        args.out,
        {
            "what": __doc__.split("\n\n")[0],
            "command": " ".join(sys.argv),
            "frames": f"drives at 256x512, seed {args.seed}, 17 Hz; the sets as `drives` says",
            "engine_size": "x".join(map(str, args.engine_size)),
            "frames_from": frames_from,
            "ground": ground.to_json(),
            **provenance,
            "runs": runs,
        },
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
