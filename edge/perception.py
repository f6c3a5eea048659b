"""One image in, panoptic segmentation and depth out: edge's runtime inside your own loop.

``edge run`` pulls frames from a source through a threaded pipeline. An application
that already has its frames (a ROS node, a robot's control loop, a notebook) calls a
``Perception`` instead. Both run the same steps (``run_engines``: frame conversion,
preprocessing, panoptic and depth side by side; then panoptic fusion and the objects'
tracks), so one frame gives the same result either way, and both track latency per stage.

    from edge.perception import Perception

    with Perception.open("engines/") as perception:
        seen = perception(rgb)          # HxWx3 uint8 RGB, any size
        seen.panoptic, seen.depth       # Cityscapes panoptic ids, metres
"""

from __future__ import annotations

import time
from collections.abc import Hashable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from edge.errors import BackendError, ConfigError
from edge.latency import LatencyTracker
from edge.postprocess.panoptic import MIN_SCORE, Instance, check_min_score
from edge.postprocess.tracks import ObjectTracker, TrackInfo
from edge.stream.engines import EngineSet
from edge.stream.frame import Frame, Result
from edge.util.turns import TurnLock


@dataclass(frozen=True)
class Perceived:
    """What the engines made of one image, at the engines' scale (``image.shape``: their
    input size, or with ``fit="pad"`` the image's part of it).

    ``panoptic`` holds Cityscapes panoptic ids (0 void, a stuff class's label id, a thing's
    ``label_id * 1000 + k``), ``semantic`` the 19 train ids per pixel, ``depth`` metres;
    each is None when that engine is absent. ``latency_ms`` gives this frame's stages
    (preprocess, panoptic, depth, postprocess, tracks, and end_to_end from ``t_capture_ns``).
    """

    seq: int
    t_capture_ns: int
    image: np.ndarray
    panoptic: np.ndarray | None
    instances: tuple[Instance, ...]
    semantic: np.ndarray | None
    depth: np.ndarray | None
    outputs: dict[str, dict[str, np.ndarray]]  # the engines' raw outputs, by kind
    latency_ms: dict[str, float]
    # (distance, nearest) in metres of each instance (None without depth, or for an instance
    # with no pixels), and each instance's track (edge.postprocess.tracks)
    distances: tuple[tuple[float, float] | None, ...] = ()
    tracks: tuple[TrackInfo, ...] = ()

    @property
    def objects(self) -> list[dict[str, Any]]:
        """Each thing found, JSON-ready: id, class, score, box, pixels, its track, and with
        depth its distance (median over its pixels), nearest part in metres, closing speed
        and time-to-collision; what an ``objects.jsonl`` sink writes."""
        from edge.postprocess.objects import describe_objects

        return describe_objects(self.instances, self.depth, self.distances, self.tracks or None)


class Perception:
    """Runs an EngineSet on one image per call; calls from several threads take turns.

    ``tracker`` accumulates every call's stage times (``tracker.summary()``, as ``edge run``
    prints them); pass one to share it, or to set a deadline. ``object_tracker`` follows the
    instances from call to call (their tracks, closing speeds); call its ``reset()`` when
    the images stop following on from each other (a cut). Images of several cameras
    through one Perception name their camera (``stream=``): each has trackers of its own,
    of ``object_tracker``'s settings (``object_tracker_for(stream)``), or the one given it in
    ``object_trackers`` by name (a rig's cameras, each looking its own way: edge.cli_rig's
    rig_trackers reads them from a rig file). ``min_score``: the
    lowest detection score an instance is kept at (0 to 1; detectron2's
    instances_confidence_threshold), in the panoptic map, the instances and their tracks.
    """

    def __init__(
        self,
        *,
        engines: EngineSet,
        tracker: LatencyTracker | None = None,
        object_tracker: ObjectTracker | None = None,
        object_trackers: Mapping[Hashable, ObjectTracker] | None = None,
        min_score: float = MIN_SCORE,
    ) -> None:
        from edge.stream.steps import load_frame_steps

        load_frame_steps()  # here, not in the first call's latency
        self.engines = engines
        self.min_score = check_min_score(min_score)
        self.tracker = tracker or LatencyTracker()
        self.tracker.describe(engines)
        self.object_tracker = object_tracker or ObjectTracker()
        # a camera of a rig its own tracker (its field of view, facing, place on the vehicle)
        self._stream_trackers: dict[Hashable, ObjectTracker] = dict(object_trackers or {})
        self._pool: ThreadPoolExecutor | None = ThreadPoolExecutor(
            max_workers=2, thread_name_prefix="edge-perception"
        )
        # in turn, as asked: a camera's thread that calls again at once does not starve another's
        self._lock = TurnLock()
        self._seq = 0

    @classmethod
    def open(
        cls,
        engines_dir: str | Path = "engines",
        *,
        backend: str = "auto",
        panoptic: str | None = None,
        depth: str | None = None,
        precision: str | None = None,
        size: tuple[int, int] | None = None,
        threads: int | None = None,
        device: str | None = None,
        deadline_ms: float | None = None,
        fit: str = "stretch",
        min_score: float = MIN_SCORE,
        object_trackers: Mapping[Hashable, ObjectTracker] | None = None,
    ) -> Perception:
        """The engines of a folder that build_engines.py wrote, chosen as ``edge run`` chooses
        (the newest build of each kind that fits the arguments). ``fit``: how images of another
        shape than the engines' go in, ``"stretch"``, ``"pad"`` or ``"crop"`` (edge.stream.fit).
        ``min_score``, ``object_trackers``: as Perception's."""
        check_min_score(min_score)  # before the engines load

        engines = EngineSet.open(
            engines_dir,
            backend=backend,
            panoptic=panoptic,
            depth=depth,
            precision=precision,
            size=size,
            threads=threads,
            device=device,
            fit=fit,
        )
        return cls(
            engines=engines,
            tracker=LatencyTracker(deadline_ms=deadline_ms),
            min_score=min_score,
            object_trackers=object_trackers,
        )

    @property
    def input_size(self) -> tuple[int, int]:
        """(height, width) the engines run at; every image is resized to it (stretched, or
        padded where ``fit="pad"``)."""
        return self.engines.input_hw

    def object_tracker_for(self, stream: Hashable | None) -> ObjectTracker:
        """The tracker of the images of ``stream`` (a camera's name): ``object_tracker`` for
        None, the one ``object_trackers`` gave it, else one of ``object_tracker``'s settings
        made on first use."""
        if stream is None:
            return self.object_tracker
        tracker = self._stream_trackers.get(stream)
        if tracker is None:
            tracker = self._stream_trackers[stream] = self.object_tracker.fresh()
        return tracker

    def __call__(
        self,
        image: np.ndarray,
        *,
        t_capture_ns: int | None = None,
        stream_time_s: float | None = None,
        stream: Hashable | None = None,
    ) -> Perceived:
        """Panoptic segmentation and depth of ``image`` (HxWx3 uint8 RGB; grey HxW and RGBA
        are converted). ``t_capture_ns`` is when the image was taken, on the
        ``time.perf_counter_ns()`` clock (default: now), so end_to_end counts from there.
        ``stream_time_s``: when it was taken on its stream's own clock, in seconds (a
        recording's time, for images fed faster or slower than they were taken), which
        the objects' closing speeds are measured in; default: ``t_capture_ns``. ``stream``:
        which camera it is from, when several take turns (their objects are followed
        apart); default: the one camera."""
        from edge.stream.steps import render_result, run_engines, track_result

        t0 = time.perf_counter_ns() if t_capture_ns is None else t_capture_ns
        t_s = t0 / 1e9 if stream_time_s is None else stream_time_s
        with self._lock:
            if self._pool is None:
                raise BackendError("this Perception is closed (its engines were released); open a new one")
            seq = self._seq
            self._seq += 1
            self.tracker.frame_captured()
            # the camera, as edge run's frames carry it: each one's health is followed apart
            meta = {} if stream is None else {"camera": stream}
            frame = Frame(seq=seq, t_capture_ns=t0, image=image, source="Perception", meta=meta)
            result = run_engines(self.engines, frame, self.tracker, self._pool)

            def track(r: Result) -> None:
                with self.tracker.stage(seq, "tracks"):
                    track_result(r, self.object_tracker_for(stream), t_s)

            # the steps edge run takes, drawing nothing (render() draws on demand)
            with self.tracker.stage(seq, "postprocess"):
                render_result(result, self.engines.depth_range, (), track=track, min_score=self.min_score)
            self.tracker.frame_done(seq, t0)
        ids: np.ndarray | None = result.extras.get("panoptic_ids")
        instances: list[Instance] = result.extras.get("instances", [])
        depth = result.depth["depth"][0, 0] if result.depth is not None else None
        measured = result.extras.get("distances")
        return Perceived(
            seq=seq,
            t_capture_ns=t0,
            image=result.extras["resized"],
            panoptic=ids,
            instances=tuple(instances),
            semantic=result.panoptic["sem_labels"][0] if result.panoptic is not None else None,
            depth=depth,
            outputs={
                k: v for k, v in (("panoptic", result.panoptic), ("depth", result.depth)) if v is not None
            },
            latency_ms=self.tracker.frame_ms(seq),
            distances=tuple(measured) if measured is not None else (None,) * len(instances),
            tracks=tuple(result.extras.get("tracks", ())),
        )

    def render(self, seen: Perceived, *, view: str = "composite") -> np.ndarray:
        """The picture ``edge run`` writes for a frame (RGB, uint8): by default the panoptic
        overlay and the depth in colour side by side; ``view="panoptic"`` or ``"depth"`` one of
        them alone, as a sink's ``?view=`` does."""
        from edge.postprocess.render import compose_views, render_views

        if view not in ("composite", "panoptic", "depth"):
            raise ConfigError(f"render(view={view!r}): expected 'composite', 'panoptic' or 'depth'")
        wanted = ("panoptic", "depth") if view == "composite" else (view,)
        distances = seen.distances if "panoptic" in wanted and seen.depth is not None else None
        views = render_views(
            seen.image,
            seen.panoptic,
            seen.instances,
            seen.depth,
            self.engines.depth_range,
            views=wanted,
            distances=distances,
            tracks=seen.tracks or None,
        )
        if view == "composite":
            return compose_views(views)
        if view not in views:
            kinds = ", ".join(self.engines.kinds)
            raise ConfigError(f"render(view={view!r}): no {view} engine runs here (engines: {kinds})")
        return views[view]

    def close(self) -> None:
        """Release the engines; later calls raise BackendError. Closing twice is harmless."""
        with self._lock:
            if self._pool is None:
                return
            self._pool.shutdown()
            self._pool = None
            self.engines.close()

    def __enter__(self) -> Perception:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        what = ", ".join(f"{k}={v!r}" for k, v in self.engines.described.items())
        fit = f", fit={self.engines.fit!r}" if self.engines.fit != "stretch" else ""
        return f"Perception({what}, input_size={self.input_size}{fit})"


__all__ = ["Perceived", "Perception"]
