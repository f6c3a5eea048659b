"""The steps one frame goes through: its picture checked (frame_rgb), resized into the
engines' tensor (preprocess), the engines run side by side (run_engines), and the panoptic
outputs fused, the instances given their tracks in frame order (track_result) and drawn
(render_result). Pipeline runs them on its threads; Perception (the Python API) and
edge bench call them directly."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import Executor
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from edge.backends import Engine
from edge.errors import SourceError
from edge.latency import LatencyTracker
from edge.postprocess.panoptic import MIN_SCORE
from edge.stream.blind import say_blind
from edge.stream.engines import EngineSet
from edge.stream.fit import fitted_hw, input_tensor, unpad_outputs
from edge.stream.frame import Frame, Result
from edge.stream.nonfinite import say_nonfinite
from edge.stream.sinks import RENDERED_VIEWS

if TYPE_CHECKING:
    from edge.postprocess.tracks import ObjectTracker


def preprocess(image: np.ndarray, hw: tuple[int, int], fit: str = "stretch") -> tuple[np.ndarray, np.ndarray]:
    """The frame resized into engines of input ``hw`` as ``fit`` says (fit.py), and their
    tensor [1, 3, H, W] float32 0..255."""
    import cv2

    h, w = fitted_hw((image.shape[0], image.shape[1]), hw, fit)
    resized = (
        image if image.shape[:2] == (h, w) else cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)
    )
    return resized, input_tensor(resized, hw)


STRETCH_SAID = 0.05  # aspect ratios further apart than this are said: 16:9 into 2:1 is 12.5%


def stretch_note(
    frame_hw: tuple[int, int],
    input_hw: tuple[int, int],
    entries: Sequence[Mapping[str, Any]] = (),
    engines_dir: str | Path | None = None,
) -> str | None:
    """What preprocess's resize does to frames of ``frame_hw`` where their shape is not the
    engines' ``input_hw`` (a 16:9 camera into engines built 2:1, as Cityscapes' frames are),
    and how to build engines of their shape: from the engines' manifest ``entries`` and
    folder (EngineSet.entries, .root), the build they had at the frames' shape. None where
    the shapes match."""
    fh, fw = frame_hw
    ih, iw = input_hw
    frame_aspect, input_aspect = fw / fh, iw / ih
    if abs(input_aspect / frame_aspect - 1) <= STRETCH_SAID:
        return None
    # relative to the other side: what a picture keeps of its height (or width) in the engines
    kept, side = (
        (frame_aspect / input_aspect, "height")
        if frame_aspect < input_aspect
        else (input_aspect / frame_aspect, "width")
    )
    fit_h = max(32, round(iw / frame_aspect / 32) * 32)  # the engines' width, the frames' shape
    if entries and engines_dir is not None:
        from edge.compat import build_command

        build = build_command(entries, engines_dir, size=(fit_h, iw))
    else:
        build = f"edge build --size {fit_h}x{iw} (with the models and weights these were built from)"
    return (
        f"frames {fw} wide and {fh} high ({frame_aspect:.2f}:1) go into engines of {ih}x{iw} "
        f"({input_aspect:.2f}:1): each is squashed to {kept:.0%} of its {side}, which costs detections "
        f"and distances; engines of their shape: {build}, chosen with --size {fit_h}x{iw} where the "
        "folder holds other sizes too; or --fit pad or --fit crop, which keep their shape in these "
        "engines (padded whole, or their middle cropped to fill them)"
    )


def load_frame_steps() -> None:
    """Import what the frame steps load on first use (OpenCV, the fusion, the drawing), so
    that the first frame's latency is the frame's own: in a fresh install (no bytecode yet,
    a cold disk) loading them took 0.4-0.8 s of the demo's first frame."""
    import cv2  # noqa: F401

    import edge.postprocess.objects
    import edge.postprocess.panoptic
    import edge.postprocess.render
    import edge.postprocess.tracks  # noqa: F401


def frame_rgb(frame: Frame) -> np.ndarray:
    """The frame as HxWx3 uint8 RGB: grey and RGBA are converted (any size is fine, the
    engines' input size is made by preprocess); anything else is refused, by name."""
    import cv2

    image = frame.image
    where = f"frame {frame.seq} from {frame.source!r}"
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        got = f"{image.dtype} array" if isinstance(image, np.ndarray) else type(image).__name__
        raise SourceError(f"{where} is a {got}; expected a uint8 RGB image HxWx3")
    if image.ndim in (2, 3) and min(image.shape[:2]) < 2:  # nothing to convert or resize from
        raise SourceError(
            f"{where} is {image.shape[0]}x{image.shape[1]} pixels; expected an image of at least 2x2"
        )
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_RGBA2RGB)
    if image.ndim != 3 or image.shape[2] != 3:
        raise SourceError(
            f"{where} has shape {tuple(frame.image.shape)}; expected HxWx3 RGB (grey HxW and RGBA HxWx4 "
            "are converted)"
        )
    return image


def render_result(
    result: Result,
    depth_range: tuple[float, float],
    views: Collection[str] = RENDERED_VIEWS,
    track: Callable[[Result], None] | None = None,
    min_score: float = MIN_SCORE,
) -> np.ndarray | None:
    """Fuse the panoptic outputs (``panoptic_ids`` and ``instances`` in result.extras),
    give the instances their tracks (``track``, e.g. track_result, called once they and,
    with the overlay and a depth map, their distances are in result.extras; its tracks go
    into the overlay's labels), then draw ``views``: ``panoptic`` (the overlay) and
    ``depth`` (in colour) go to result.extras["views"]; ``composite``, the two side by side
    (either alone when one engine is absent), is returned (None when not asked for).
    ``min_score``: instances scored lower are left out (edge.postprocess.panoptic.fuse)."""
    from edge.postprocess.objects import object_distances
    from edge.postprocess.panoptic import fuse
    from edge.postprocess.render import compose_views, render_views

    ids, instances = (
        fuse(result.panoptic, score_thresh=min_score) if result.panoptic is not None else (None, [])
    )
    if ids is not None:
        result.extras["panoptic_ids"] = ids
        result.extras["instances"] = instances
    depth = result.depth["depth"][0, 0] if result.depth is not None else None
    halves = {"panoptic", "depth"} if "composite" in views else set(views)
    if ids is not None and depth is not None and "panoptic" in halves:
        # the overlay's labels need them; the tracks and an objects sink take them from extras
        result.extras["distances"] = object_distances(instances, depth)
    if ids is not None and track is not None:
        track(result)
    drawn = render_views(
        result.extras["resized"],
        ids,
        instances,
        depth,
        depth_range,
        views=halves,
        distances=result.extras.get("distances"),
        tracks=result.extras.get("tracks"),
    )
    result.extras["views"] = drawn  # each half on its own, for the live viewer
    return compose_views(drawn) if "composite" in views and drawn else None


def stream_time_s(frame: Frame, *, live: bool, rate: float | None) -> float:
    """When ``frame`` was taken, in seconds of the stream, for the objects' speeds: a
    recording's capture time (meta["media_ms"]), a file's frame index over its ``rate``,
    else (a camera, a folder of images without a rate) when it was read."""
    media_ms = frame.meta.get("media_ms")
    if media_ms is not None:
        return float(media_ms) / 1e3
    if not live and rate:
        return frame.seq / rate
    return frame.t_capture_ns / 1e9


def track_result(result: Result, objects: ObjectTracker, t_s: float) -> None:
    """Give the result's instances their tracks (result.extras["tracks"], and the stream
    time ``t_s`` as "t_stream_s"; nothing without a panoptic engine), with their distances
    where a depth map has them (worked out here if the drawing did not need them). Called
    in frame order: a Cityscapes sequence, a loop of a file, or a playlist's next video
    that is not the next segment of a recording (meta) starts the tracks afresh. A tracker
    that fits the road's plane (ObjectTracker.fits_ground) gets this frame's (fit_road)."""
    from edge.postprocess.objects import object_distances

    instances = result.extras.get("instances")
    if instances is None:
        return
    distances = result.extras.get("distances")
    if distances is None and result.depth is not None:
        distances = result.extras["distances"] = object_distances(instances, result.depth["depth"][0, 0])
    meta = result.frame.meta
    # a playlist's next video is another scene, unless the videos are one recording's
    # segments, laid end to end on their capture times
    clip = meta.get("file") if meta.get("media_ms") is None else None
    scene = (meta.get("city"), meta.get("sequence"), meta.get("loop"), clip)
    size = result.extras["resized"].shape[:2]
    road_fit = None
    if objects.fits_ground and result.depth is not None and result.panoptic is not None:
        from edge.postprocess.road_fit import fit_road

        road_fit = fit_road(result.panoptic["sem_labels"][0], result.depth["depth"][0, 0])
    result.extras["tracks"] = objects.update(
        instances, distances, t_s, scene=scene, size=size, road_fit=road_fit
    )
    result.extras["road_fit"] = road_fit  # the frame's, where fitted: the point cloud's scale reads it
    result.extras["t_stream_s"] = t_s
    # with a field of view the objects are placed around the vehicle (ahead_m, lateral_m): the
    # Foxglove sinks then send its scene every frame, an empty one clearing the last
    plane = objects.frame_plane
    result.extras["placed"] = (
        None
        if objects.hfov_deg is None
        else {
            "facing": objects.facing,
            "path_half_width_m": objects.path_half_width_m,
            "hfov_deg": objects.hfov_deg,
            "mount_offset_m": objects.mount_offset_m,
            "mount_ahead_m": objects.mount_ahead_m,
            "ground": None if plane is None else plane.to_json(),  # the camera's height and horizon
        }
    )


def tracker_seeing(tracker: ObjectTracker, source: object, kinds: Collection[str] = ()) -> ObjectTracker:
    """``tracker``, or where it has no field of view or no ground plane and ``source`` knows
    its camera's (``hfov_deg``, ``ground``: synthetic://, cityscapes://DIR with camera
    files), a fresh one with them, said on standard error: the objects are then placed
    (lateral_m, in_path), and their distances read from where they stand (ground_m).
    Where neither has a ground plane, the tracker fits the road's to the depth map: said
    too, where the engines' ``kinds`` hold both a panoptic and a depth engine."""
    view = getattr(source, "hfov_deg", None) if tracker.hfov_deg is None else None
    ground = getattr(source, "ground", None) if tracker.ground is None and tracker.use_ground else None
    uri = getattr(source, "uri", "?")
    if ground is None and fits_road(tracker, kinds):
        print(
            "note: objects' distances are read from the road where they stand, its plane fitted to "
            f"the depth map's road (the camera of {uri!r} has no height given: --camera-height and "
            "--horizon give it; --no-ground: the depth map's alone)",
            file=sys.stderr,
        )
    if view is None and ground is None:
        return tracker
    if view is not None:
        print(
            f"note: objects are placed with the field of view of the camera of {uri!r}, "
            f"{view:.1f} degrees (--hfov gives another)",
            file=sys.stderr,
        )
    if ground is not None:
        print(
            f"note: objects' distances are read from the road where they stand, {ground.height_m:g} m "
            f"below the camera of {uri!r} (where their feet are hidden, the depth map's scaled to "
            "their recent road readings; "
            "--no-ground: the depth map's alone)",
            file=sys.stderr,
        )
    return tracker.fresh(hfov_deg=view, ground=ground)


def fits_road(tracker: ObjectTracker, kinds: Collection[str]) -> bool:
    """Whether ``tracker`` fits the road's plane to the depth map in a run of engines of
    ``kinds``: it was given no plane nor told not to fit one, and both engines are there."""
    return tracker.fits_ground and {"panoptic", "depth"} <= set(kinds)


def end_road_plane(
    latency: LatencyTracker, tracker: ObjectTracker, kinds: Collection[str], camera: str | None = None
) -> None:
    """At a run's end, or its Ctrl-C (how a camera's run ends): the road's plane ``tracker``
    fitted to the depth map kept in ``latency``'s summary (``road_plane``) and said on
    standard error, with the options that give it from the first frame (``camera``: whose,
    with --camera): a camera's height that is not its mount's says the depth engine's
    metres are off. Nothing where no plane was to be fitted (fits_road)."""
    if not fits_road(tracker, kinds):
        return
    plane, whose = tracker.road_plane, "" if camera is None else f"{camera}="
    said = "" if camera is None else f" ({camera})"
    if plane is None:
        said += " no road's plane was fitted to the depth map: its road bent, or too little of it showed"
    elif tracker.hfov_deg is None:
        said += f" the road's plane fitted to the depth map puts the horizon {plane.horizon:.3f} of the "
        said += "picture's height down (with --hfov it gives the camera's height)"
    else:
        said += (
            f" the road's plane fitted to the depth map: the camera {plane.height_m:.2f} m over the road "
            f"(in the depth engine's metres), the horizon {plane.horizon:.3f} of the picture's height "
            f"down; --camera-height {whose}{plane.height_m:.2f} --horizon {whose}{plane.horizon:.3f} "
            "give it from the first frame"
        )
    if plane is not None:
        latency.road_plane = plane.to_json()
    print(f"note:{said}", file=sys.stderr)


def run_engines(engines: EngineSet, frame: Frame, tracker: LatencyTracker, pool: Executor) -> Result:
    """Preprocess one frame and run its engines, panoptic and depth side by side on
    ``pool``; each step is a stage of ``tracker``. The inference step of Pipeline,
    Perception and edge bench."""
    return infer_prepared(engines, prepare(engines, frame, tracker), tracker, pool)


def prepare(engines: EngineSet, frame: Frame, tracker: LatencyTracker, fit: str | None = None) -> Prepared:
    """The preprocess stage of one frame: its picture resized into the engines' tensor as
    ``fit`` says (default: the engines' fit; fit.py). No engine is used, so a camera sharing
    the engines does it before its turn at them."""
    seq = frame.seq
    fit = fit or engines.fit
    with tracker.stage(seq, "preprocess"):
        image = frame_rgb(frame)
        resized, tensor = preprocess(image, engines.input_hw, fit)
    if fit == "stretch" and (hw := (image.shape[0], image.shape[1])) not in engines.stretched_sizes:
        engines.stretched_sizes.add(hw)  # said once a size: a playlist's videos can differ
        note = stretch_note(hw, engines.input_hw, list(engines.entries.values()), engines.root)
        if note is not None:
            print(f"warning: {note}", file=sys.stderr)
    return Prepared(frame, resized, tensor)


def infer_prepared(engines: EngineSet, prepared: Prepared, tracker: LatencyTracker, pool: Executor) -> Result:
    """A prepared frame's engines, panoptic and depth side by side on ``pool``."""
    frame, resized, tensor = prepared.frame, prepared.resized, prepared.tensor
    seq = frame.seq
    futures = {
        kind: pool.submit(_run_engine, engine, kind, seq, tensor, tracker)
        for kind in ("panoptic", "depth")
        if (engine := getattr(engines, kind)) is not None
    }
    outputs = {k: f.result() for k, f in futures.items()}
    if (part := resized.shape[:2]) != engines.input_hw:  # padded or cropped: back to the frame
        outputs = {k: unpad_outputs(v, (part[0], part[1]), engines.input_hw) for k, v in outputs.items()}
    say_nonfinite(engines, outputs, seq)
    say_blind(engines, outputs, seq, frame.meta.get("camera"))
    return Result(frame, outputs.get("panoptic"), outputs.get("depth"), extras={"resized": resized})


class Prepared(NamedTuple):
    """A frame with its picture as the engines take it: resized, and as their tensor."""

    frame: Frame
    resized: np.ndarray
    tensor: np.ndarray


def _run_engine(
    engine: Engine, kind: str, seq: int, tensor: np.ndarray, tracker: LatencyTracker
) -> dict[str, np.ndarray]:
    with tracker.stage(seq, kind):
        out = engine.infer({"image": tensor})
    # GPU backends time their own work with CUDA events; record it beside the host span
    device_ms = getattr(engine, "last_device_ms", None)
    if device_ms is not None:
        end = time.perf_counter_ns()
        tracker.record(seq, f"{kind}_gpu", end - int(device_ms * 1e6), end)
    return out
