"""The object tracker's settings, tried on drives whose every object and distance is known.

    python benchmarks/tracking_trial.py --out benchmarks/results/tracking_trial_cpu.json
    python benchmarks/tracking_trial.py --cut-ins 4 --sequences 20 --frames 60 \
        --out benchmarks/results/tracking_trial_cut_ins_cpu.json

Synthetic drives with ground truth on every frame are run once through ONNX Runtime
engines of the bundled tiny weights (256x512); each frame's instances, distances and
ground truth are kept, and then the tracker is run over them again with each setting
(edge.postprocess.tracks.ObjectTracker), scored as edge replay scores it
(edge.eval.tracking: IDF1, MOTA, identity switches, closing-speed error against the speed
fitted to the true distances, and the time-to-collision). One trial fits the box's
growth by least squares instead of Theil–Sen, one reads the closing speed from the slope
of the distances alone. The synthetic world's objects keep their speeds, so the truth is
the same whatever the window. With ``--cut-ins N`` each drive also has N road users that
cross into the path (people crossing, cars pulling out), and the cut-in warnings are
scored as events: how many were warned of before they were in the path, and how long before.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import build_bundled, bundled_provenance, write_result
from edge.data.cityscapes import FrameRef, read_depth, read_ids
from edge.data.make_synthetic import write_dataset
from edge.data.synthetic import LANES
from edge.eval.evaluator import resize_nearest
from edge.eval.objects import true_cut_by_sides, true_distances, true_lateral, true_pixels
from edge.eval.panoptic import PanopticStats
from edge.eval.tracking import TrackingStats
from edge.perception import Perception
from edge.postprocess import slopes as slopes_module
from edge.postprocess import tracks as tracks_module
from edge.postprocess.ground import GroundPlane
from edge.postprocess.road_fit import fit_road
from edge.postprocess.tracks import ObjectTracker, TrackInfo, closing_speed
from edge.stream.sources import CityscapesSource

MODELS = ("panoptic_fpn_tiny", "depth_tiny")
RATE = 17.0
TRIALS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "min_iou_0.1": {"min_iou": 0.1},
    "min_iou_0.5": {"min_iou": 0.5},
    "max_gap_0.2s": {"max_gap_s": 0.2},
    "max_gap_1s": {"max_gap_s": 1.0},
    "speed_window_0.5s": {"speed_window_s": 0.5},
    "speed_window_1.5s": {"speed_window_s": 1.5},
    "speed_window_2s": {"speed_window_s": 2.0},
    "min_speed_samples_8": {"min_speed_samples": 8},
    "box_motion_unsmoothed": {"smoothing": 1.0},
    "box_motion_smoothed_0.2": {"smoothing": 0.2},
    "least_squares_speed": {"least_squares": True},
    "distance_slope_speed": {"distance_slope": True},
}


class DistanceSlopeTracker(ObjectTracker):
    """The closing speed as the slope of the distances alone (the tracker's first way, and
    still its way for a box two edges of the picture cut), for comparison."""

    def _info(self, track: Any, distance: Any, t_s: float, ground_m: float | None = None) -> TrackInfo:
        info = super()._info(track, distance, t_s, ground_m)
        if distance is None:
            return info
        closing = closing_speed(
            track.ranges, window_s=self.speed_window_s, min_samples=self.min_speed_samples
        )
        ttc = distance[0] / closing if closing is not None and closing >= self.min_closing_mps else None
        return dataclasses.replace(info, closing_mps=closing, ttc_s=ttc)


def least_squares_slope(times: Any, values: Any) -> float | None:
    t, v = np.asarray(times, float), np.asarray(values, float)
    if len(t) < 2 or np.ptp(t) <= 1e-9:
        return None
    return float(np.polyfit(t, v, 1)[0])


@contextmanager
def slope_fit(least_squares: bool) -> Iterator[None]:
    """The tracker's (and the truth's) closing-speed fit swapped for least squares: the box's
    growth (tracks) and the distances' slope (slopes.closing_speed, the truth's fit too)."""
    modules = (tracks_module, slopes_module)
    kept = [m.theil_sen_slope for m in modules]
    if least_squares:
        for m in modules:
            m.theil_sen_slope = least_squares_slope  # type: ignore[assignment]
    try:
        yield
    finally:
        for m, fit in zip(modules, kept, strict=True):
            m.theil_sen_slope = fit  # type: ignore[method-assign]


def seen_frames(data: Path, engines: Path) -> list[dict[str, Any]]:
    """Each frame's instances, distances and ground truth, from one pass of the engines."""
    src = CityscapesSource(f"cityscapes://{data}?fps=0")
    frames = []
    with Perception.open(engines, threads=1) as perception:
        while (frame := src.read()) is not None:
            meta = frame.meta
            t_s = meta["frame"] / RATE
            seen = perception(frame.image, stream_time_s=t_s)
            ref = FrameRef(src.root, src.split, meta["city"], meta["sequence"], meta["frame"])
            gt_ids = read_ids(ref.path("instanceIds"))
            assert seen.panoptic is not None
            pred_ids = resize_nearest(seen.panoptic, gt_ids.shape)
            frames.append(
                {
                    "instances": seen.instances,
                    "distances": seen.distances,
                    "gt_ids": gt_ids,
                    "gt_depth": (gt_depth := read_depth(ref)),
                    "matched": (matched := PanopticStats().add(pred_ids, gt_ids)),
                    "true_pixels": (pixels := true_pixels(gt_ids, gt_depth, matched.gt_things, 1e-3, 80.0)),
                    "true_distance": true_distances(pixels, gt_depth),
                    "t_s": t_s,
                    "scene": (meta["city"], meta["sequence"]),
                    "size": seen.image.shape[:2],
                    "road_fit": fit_road(seen.semantic, seen.depth)
                    if seen.semantic is not None and seen.depth is not None
                    else None,
                }
            )
    src.close()
    return frames


def trial(frames: list[dict[str, Any]], settings: dict[str, Any]) -> dict[str, Any]:
    settings = dict(settings)
    least_squares = settings.pop("least_squares", False)
    slope_only = settings.pop("distance_slope", False)
    tracker = (DistanceSlopeTracker if slope_only else ObjectTracker)(**settings)
    stats = TrackingStats(speed_window_s=tracker.speed_window_s, min_speed_samples=tracker.min_speed_samples)
    spent = 0.0
    with slope_fit(least_squares):
        for f in frames:
            start = time.perf_counter()
            infos = tracker.update(
                f["instances"], f["distances"], f["t_s"], scene=f["scene"], size=f.get("size", (256, 512))
            )
            spent += time.perf_counter() - start
            by_id = {inst.panoptic_id: info for inst, info in zip(f["instances"], infos, strict=True)}
            stats.add(f["matched"], by_id, t_s=f["t_s"], scene=f["scene"], true_distance=f["true_distance"])
    return {
        "settings": settings | ({"least_squares": True} if least_squares else {}),
        "update_ms_mean": 1e3 * spent / len(frames),
        **stats.results(),
    }


def lateral_errors(
    frames: list[dict[str, Any]],
    min_lateral_mps: float = 1.0,
    speed_window_s: float = 1.0,
    warn_within_s: float = 3.0,
    ground: GroundPlane | None = None,
    cut_in_confidence: float = 0.95,
    fitted: bool = False,
) -> dict[str, Any]:
    """With the synthetic camera's field of view (focal length 1.1 x the width), each matched
    object's lateral_m and in_path against the truth, as edge replay --hfov scores them
    (edge.eval.objects.true_lateral: the median over its true pixels of their offset from
    the axis, (u + 0.5 - cx) / f x depth; in the path where some pixel is within 1.5 m); its
    lateral speed against the truth's own fit, and the cut-ins said at ``min_lateral_mps``
    (the synthetic drives' things keep their lanes, but for those added with --cut-ins).
    With ``ground`` (the synthetic camera's: Camera.ground) distances are read from the road
    where the things' feet show (edge.postprocess.ground), as edge replay reads them. The
    closing speeds and times to collision of this tracker (one with the field of view) are
    scored too. ``cut_in_confidence``: the tracker's (ObjectTracker's default: 0.95).
    ``fitted`` (without ``ground``): the road's plane fitted to each frame's depth map (the
    frames' ``road_fit``, seen_frames), as edge replay reads it from a camera nobody measured."""
    hfov = float(np.degrees(2 * np.arctan(1 / 2.2)))
    tracker = ObjectTracker(
        hfov_deg=hfov,
        min_lateral_mps=min_lateral_mps,
        speed_window_s=speed_window_s,
        warn_within_s=warn_within_s,
        ground=ground,
        cut_in_confidence=cut_in_confidence,
        fit_ground=fitted,
    )
    stats = TrackingStats(  # the truth's window is the default tracker's whatever the tracker's
        speed_window_s=1.0,
        min_speed_samples=tracker.min_speed_samples,
        min_lateral_mps=min_lateral_mps,
        warn_within_s=warn_within_s,
    )
    for f in frames:
        road_fit = f.get("road_fit") if fitted else None
        infos = tracker.update(
            f["instances"], f["distances"], f["t_s"], scene=f["scene"], size=f["size"], road_fit=road_fit
        )
        by_id = {inst.panoptic_id: info for inst, info in zip(f["instances"], infos, strict=True)}
        lateral = true_lateral(
            f["true_pixels"], f["gt_depth"], hfov_deg=hfov, path_half_width_m=tracker.path_half_width_m
        )
        stats.add(
            f["matched"],
            by_id,
            t_s=f["t_s"],
            scene=f["scene"],
            true_distance=f["true_distance"],
            true_lateral=lateral,
            true_cut_off=true_cut_by_sides(f["true_pixels"]),
        )
    results = stats.results()
    out = {"hfov_deg": hfov, **results["lateral"], "warnings": results["warnings"]}
    scores = ["closing_speed", "closing_speed_near", "time_to_collision"]
    scores += ["ground_distance", "scaled_distance"]
    for key in scores:
        out[key] = results[key]
    return out | ({"ground": ground.to_json()} if ground is not None else {})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sequences", type=int, default=6)
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--cut-ins", type=int, default=0, help="road users per drive that cross into the path")
    ap.add_argument("--lane", choices=LANES, default="centre", help="where the camera drives")
    ap.add_argument("--lead-brakes", action="store_true", help="the car ahead in the camera's lane brakes")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/tracking_trial_cpu.json"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data, engines = Path(tmp) / "drive", Path(tmp) / "engines"
        write_dataset(
            data,
            sequences=args.sequences,
            frames=args.frames,
            size=(256, 512),
            seed=args.seed,
            gt_every=1,
            cut_ins=args.cut_ins,
            lane=args.lane,
            lead_brakes=args.lead_brakes,
        )
        build_bundled(MODELS, 256, 512, engines)
        frames = seen_frames(data, engines)
    runs = {}
    for name, settings in TRIALS.items():
        runs[name] = trial(frames, settings)
        r, c, n = runs[name], runs[name]["closing_speed"], runs[name]["closing_speed_near"]
        print(
            f"{name:<24} IDF1 {r['idf1']:.3f}  MOTA {r['mota']:.3f}  switches {r['id_switches']:3d}  "
            f"closing |err| p50 {c.get('abs_err_mps_p50', float('nan')):.2f}  "
            f"mean {c.get('abs_err_mps_mean', float('nan')):.2f}  pairs {c['pairs']}  "
            f"near p50 {n.get('abs_err_mps_p50', float('nan')):.2f}  pairs {n['pairs']}  "
            f"ttc p50 {r['time_to_collision'].get('abs_err_s_p50', float('nan')):.2f} s"
        )
    lateral = lateral_errors(frames)
    print(
        f"lateral_m |err| p50 {lateral['abs_err_m_p50']:.2f} m, "
        f"within 30 m {lateral['near']['abs_err_m_p50']:.2f} m; in_path {lateral['in_path']}; "
        f"lateral speed {lateral['lateral_speed']}"
    )
    # how fast towards the path a thing must move to be said to cut in: false ones by threshold
    cut_ins = {f"{v:g}": lateral_errors(frames, v)["cut_in"] for v in (0.25, 0.5, 1.0, 1.5)}
    print(f"cut-ins by min_lateral_mps: {cut_ins}")
    events = {f"{v:g}": lateral_errors(frames, v)["cut_in_events"] for v in (0.25, 0.5, 1.0, 1.5)}
    print(f"cut-in events by min_lateral_mps: {events}")
    # a shorter window warns sooner and of more, and of more that do not cut in
    windows = {f"{w:g}": lateral_errors(frames, speed_window_s=w)["cut_in_events"] for w in (0.5, 0.75, 1.0)}
    print(f"cut-in events by speed_window_s: {windows}")
    # how soon things are warned of: the warnings' recall, lateness and false ones by that time
    warn_within = {
        f"{w:g}": lateral_errors(frames, warn_within_s=w)["warnings"] for w in (2.0, 2.5, 3.0, 4.0)
    }
    print(f"warnings by warn_within_s: {warn_within}")
    write_result(
        args.out,
        {
            "what": __doc__.split("\n\n")[0],
            "command": " ".join(sys.argv),
            "frames": f"{args.sequences} synthetic drives x {args.frames} at 256x512, seed {args.seed}, "
            f"{RATE:g} Hz"
            + (f", {args.cut_ins} cut-ins a drive" if args.cut_ins else "")
            + (f", the camera in the {args.lane} lane" if args.lane != "centre" else "")
            + (", the car ahead braking to a stop" if args.lead_brakes else ""),
            **bundled_provenance(),
            "runs": runs,
            "lateral": lateral,
            "cut_in_by_min_lateral_mps": cut_ins,
            "cut_in_events_by_min_lateral_mps": events,
            "cut_in_events_by_speed_window_s": windows,
            "warnings_by_warn_within_s": warn_within,
        },
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
