"""The steps one frame goes through: its picture checked (frame_rgb), resized into the
engines' tensor (preprocess), the engines run side by side (run_engines), and the panoptic
outputs fused and drawn (render_result). Pipeline runs them on its threads; Perception
(the Python API) and edge bench call them directly."""

from __future__ import annotations

import time
from collections.abc import Collection
from concurrent.futures import Executor

import numpy as np

from edge.backends import Engine
from edge.errors import SourceError
from edge.latency import LatencyTracker
from edge.stream.engines import EngineSet
from edge.stream.frame import Frame, Result
from edge.stream.sinks import RENDERED_VIEWS


def preprocess(image: np.ndarray, hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Resized RGB frame and its engine tensor [1, 3, H, W] float32 0..255."""
    import cv2

    h, w = hw
    resized = (
        image if image.shape[:2] == (h, w) else cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)
    )
    tensor = np.ascontiguousarray(resized.transpose(2, 0, 1)[None], dtype=np.float32)
    return resized, tensor


def load_frame_steps() -> None:
    """Import what the frame steps load on first use (OpenCV, the fusion, the drawing), so
    that the first frame's latency is the frame's own: in a fresh install (no bytecode yet,
    a cold disk) loading them took 0.4-0.8 s of the demo's first frame."""
    import cv2  # noqa: F401

    import edge.postprocess.objects
    import edge.postprocess.panoptic
    import edge.postprocess.render  # noqa: F401


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
    result: Result, depth_range: tuple[float, float], views: Collection[str] = RENDERED_VIEWS
) -> np.ndarray | None:
    """Fuse the panoptic outputs (``panoptic_ids`` and ``instances`` in result.extras),
    then draw ``views`` (with the overlay and a depth map, the instances' distances go to
    result.extras["distances"]): ``panoptic`` (the overlay) and ``depth`` (in colour) go to
    result.extras["views"]; ``composite``, the two side by side (either alone when one
    engine is absent), is returned (None when not asked for)."""
    from edge.postprocess.objects import object_distances
    from edge.postprocess.panoptic import fuse
    from edge.postprocess.render import compose_views, render_views

    ids, instances = fuse(result.panoptic) if result.panoptic is not None else (None, [])
    if ids is not None:
        result.extras["panoptic_ids"] = ids
        result.extras["instances"] = instances
    depth = result.depth["depth"][0, 0] if result.depth is not None else None
    halves = {"panoptic", "depth"} if "composite" in views else set(views)
    distances = None
    if ids is not None and depth is not None and "panoptic" in halves:
        # the overlay's labels need them; an objects sink then takes them from extras
        distances = result.extras["distances"] = object_distances(instances, depth)
    drawn = render_views(
        result.extras["resized"], ids, instances, depth, depth_range, views=halves, distances=distances
    )
    result.extras["views"] = drawn  # each half on its own, for the live viewer
    return compose_views(drawn) if "composite" in views and drawn else None


def run_engines(engines: EngineSet, frame: Frame, tracker: LatencyTracker, pool: Executor) -> Result:
    """Preprocess one frame and run its engines, panoptic and depth side by side on
    ``pool``; each step is a stage of ``tracker``. The inference step of Pipeline,
    Perception and edge bench."""
    seq = frame.seq
    with tracker.stage(seq, "preprocess"):
        resized, tensor = preprocess(frame_rgb(frame), engines.input_hw)
    futures = {
        kind: pool.submit(_run_engine, engine, kind, seq, tensor, tracker)
        for kind in ("panoptic", "depth")
        if (engine := getattr(engines, kind)) is not None
    }
    outputs = {k: f.result() for k, f in futures.items()}
    return Result(frame, outputs.get("panoptic"), outputs.get("depth"), extras={"resized": resized})


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
