"""``edge replay``: run a Cityscapes-layout folder through the engines, evaluate, save predictions.

Every frame goes through the normal streaming pipeline (so latency is measured as in a
live run); frames that have ground truth are evaluated (PQ/SQ/RQ, mIoU, depth) and, with
``out_dir``, written in Cityscapes' result formats, at the frames' size:
  panoptic/{name}_panoptic.png + panoptic.json   (COCO panoptic: id = R + 256 G + 65536 B)
  semantic/{name}_pred_labelIds.png              (labelIds, for evalPixelLevelSemanticLabeling)
  depth/{name}_depth.png                          (uint16, metres * 256)
Metrics and the latency summary go to ``out_dir/metrics.json``, with panoptic.json rewritten
every ``checkpoint_s`` while the replay runs (marked unfinished), so a replay killed outright
keeps the metrics of the frames evaluated until then.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edge.errors import ConfigError, DatasetError, Interrupted, ReplayNotSaved, SinkStopped, SourceError
from edge.postprocess.panoptic import MIN_SCORE, check_min_score
from edge.stream.disk import DEFAULT_KEEP_FREE, DiskRoom
from edge.util.fs import atomic_write_bytes, atomic_write_json, require_writable

if TYPE_CHECKING:
    from edge.postprocess.tracks import ObjectTracker
    from edge.stream.frame import Result


def replay(
    source: str,
    *,
    engines: str | Path,
    backend: str = "auto",
    evaluate: bool = True,
    out_dir: str | Path | None = None,
    threads: int | None = None,
    device: str | None = None,
    panoptic: str | None = None,
    depth: str | None = None,
    precision: str | None = None,
    size: tuple[int, int] | None = None,
    max_frames: int | None = None,
    sinks: tuple[str, ...] = (),
    show_status: bool = False,
    post_workers: int = 1,
    keep_free: int = DEFAULT_KEEP_FREE,
    status_every_s: float = 0.0,
    checkpoint_s: float = 60.0,
    fit: str = "stretch",
    object_tracker: ObjectTracker | None = None,
    min_score: float = MIN_SCORE,
) -> dict[str, Any]:
    """Replay ``source`` (cityscapes://DIR) through the engines in ``engines``; evaluate the
    frames with ground truth and, with ``out_dir``, write predictions and metrics.json there.
    ``post_workers``: frames fused and drawn at once (Pipeline); the evaluation stays on
    the sink thread, which gets the frames in order. ``keep_free``: bytes the ``sinks`` that
    write files leave free on their disk (edge.stream.disk). ``status_every_s``: with
    ``show_status`` off a terminal, print the status line that often. ``checkpoint_s``: how
    often, at most, metrics.json and panoptic.json are rewritten with what was evaluated so
    far (marked ``unfinished``), for a replay killed outright (out of memory, the power).
    ``fit``: how frames of another shape than the engines' go in (edge.stream.fit).
    ``object_tracker``: what follows the objects (edge.postprocess.tracks; default: its
    defaults); the true closing speeds are fitted over its window. ``min_score``: the lowest
    detection score an instance is kept at (Pipeline); the report says it."""
    from edge.data.cityscapes import FrameRef, read_depth, read_ids
    from edge.eval import Evaluator
    from edge.eval.evaluator import resize_bilinear, resize_nearest
    from edge.latency import LatencyTracker
    from edge.latency.status import StatusLine
    from edge.postprocess.facing import yaw_deg
    from edge.stream.engines import EngineSet
    from edge.stream.fit import seen_part
    from edge.stream.pipeline import Pipeline, check_post_workers
    from edge.stream.sinks import open_sinks
    from edge.stream.sources import CityscapesSource, open_source
    from edge.stream.steps import end_road_plane

    check_post_workers(post_workers)
    check_min_score(min_score)
    if object_tracker is not None and yaw_deg(object_tracker.facing) != 0.0:
        # the truth's objects are placed as a front camera's (eval.objects.true_lateral)
        raise ConfigError(
            f"--facing {object_tracker.facing}: edge replay scores recordings of a front camera "
            "(Cityscapes, synthetic drives); a camera facing elsewhere is for edge run"
        )
    if out_dir is not None:  # checked now: predictions are written as the replay goes
        require_writable(out_dir, folder=True, what="predictions folder")
    with contextlib.ExitStack() as undo:  # what is open is closed if a later part fails
        src = open_source(source)
        undo.callback(src.close)
        if not isinstance(src, CityscapesSource):
            raise SourceError(
                f"edge replay reads a Cityscapes-layout folder: cityscapes://DIR, got {source!r}"
            )
        engine_set = EngineSet.open(
            engines,
            backend=backend,
            panoptic=panoptic,
            depth=depth,
            precision=precision,
            size=size,
            threads=threads,
            device=device,
            fit=fit,
        )
        undo.callback(engine_set.close)
        writer = PredictionWriter(Path(out_dir), keep_free=keep_free) if out_dir is not None else None
        opened = open_sinks(sinks, fps=src.fps or 17.0, kinds=engine_set.kinds, keep_free=keep_free)
        undo.pop_all()  # the pipeline closes the source and sinks, and engine_set is closed below
    errors: list[BaseException] = []
    gt_frames = 0
    tracker = LatencyTracker()
    seen: dict[tuple[int, int], tuple[int, int, int, int]] = {}  # by frame size: the part scored

    def report_so_far() -> dict[str, Any]:
        report: dict[str, Any] = {
            "source": source,
            "frames": tracker.frames_out,
            "gt_frames": gt_frames,
            "min_score": min_score,
            "metrics": evaluator.results() if evaluate else None,
            "latency": tracker.summary(),
            "errors": [str(e) for e in errors],
        }
        if writer is not None:
            report["predictions"] = {"frames": writer.frames, "stopped": writer.stopped}
        if fit == "crop":  # the metrics are of the frames' middles the engines saw
            report["scored_part"] = {
                f"{h}x{w}": {"box": list(box), "share": (box[2] - box[0]) * (box[3] - box[1]) / (h * w)}
                for (h, w), box in seen.items()
            }
        return report

    saved_at = time.monotonic()

    def on_result(result: Result) -> None:
        nonlocal gt_frames, saved_at
        meta = result.frame.meta
        if not meta.get("has_gt"):
            return
        gt_frames += 1
        ref = FrameRef(src.root, src.split, meta["city"], meta["sequence"], meta["frame"])
        # at the frame's size, once, for the evaluation and the prediction files alike (the
        # official cityscapesscripts evaluation refuses files of another size than the ground
        # truth's): nearest for ids and labels, bilinear for depth
        hw = result.frame.image.shape[:2]
        ids = result.extras.get("panoptic_ids")
        ids = resize_nearest(ids, hw) if ids is not None else None
        sem = resize_nearest(result.panoptic["sem_labels"][0], hw) if result.panoptic is not None else None
        depth = resize_bilinear(result.depth["depth"][0, 0], hw) if result.depth is not None else None
        try:
            if evaluate:
                evaluator.add(
                    **seen_truth(
                        read_ids(ref.path("labelIds")),
                        read_ids(ref.path("instanceIds")),
                        read_depth(ref),
                        seen.setdefault(hw, seen_part(hw, engine_set.input_hw, fit)),
                    ),
                    panoptic_ids=ids,
                    sem_train_ids=sem,
                    depth=depth,
                    **_tracked(result),
                )
            if writer is not None:
                writer.add(ref.name, ids, sem, depth)
        except DatasetError as exc:  # reported after the run; the replay itself goes on
            errors.append(exc)
        except SinkStopped as exc:  # once: a full disk costs the predictions after, not the metrics
            print(
                f"warning: the predictions in {str(out_dir)!r} stopped at frame {result.frame.seq}: {exc}; "
                "the replay goes on evaluating",
                file=sys.stderr,
            )
        if writer is not None and time.monotonic() - saved_at >= checkpoint_s:
            saved_at = time.monotonic()
            # on the sink thread, between frames: the evaluator and the annotations hold this
            # frame whole; a write the system refuses now is tried again at the end, and said then
            with contextlib.suppress(OSError):
                writer.finish({**report_so_far(), "unfinished": True})

    pipeline = Pipeline(
        source=src,
        engines=engine_set,
        sinks=opened,
        tracker=tracker,
        max_frames=max_frames,
        on_result=on_result,
        post_workers=post_workers,
        object_tracker=object_tracker,
        min_score=min_score,
    )
    # the pipeline's tracker: the field of view and road of the source's camera files, said once
    objects = pipeline.object_tracker
    evaluator = Evaluator(
        max_depth=min(80.0, engine_set.depth_range[1]),
        speed_window_s=objects.speed_window_s,
        min_speed_samples=objects.min_speed_samples,
        hfov_deg=objects.hfov_deg,
        path_half_width_m=objects.path_half_width_m,
        mount_offset_m=objects.mount_offset_m,
        min_lateral_mps=objects.min_lateral_mps,
        warn_within_s=objects.warn_within_s,
    )
    stopped: KeyboardInterrupt | None = None
    try:
        with StatusLine(tracker, enabled=show_status, log_every_s=status_every_s):
            pipeline.run()
    except KeyboardInterrupt as exc:
        if not tracker.frames_out:
            raise  # nothing replayed: nothing to report
        stopped = exc  # a long replay stopped by Ctrl-C keeps what it evaluated and wrote
    finally:
        engine_set.close()
    # as edge run's end says it: where the source's camera has no height, the plane fitted
    # to the depth map, kept in the latency summary (metrics.json's too)
    end_road_plane(tracker, objects, engine_set.kinds)
    report = report_so_far()
    if stopped is not None:
        report["interrupted"] = True  # the metrics cover the frames replayed before it
    if writer is not None:
        try:
            writer.finish(report)
        except OSError as exc:  # the metrics are still printed, then this error
            raise ReplayNotSaved(f"{exc}; the metrics were not saved", report) from exc
    if stopped is not None:
        raise Interrupted(report, stopped) from stopped
    if errors:
        raise DatasetError(f"{len(errors)} ground-truth frame(s) could not be evaluated; first: {errors[0]}")
    return report


def seen_truth(
    labels: np.ndarray, instances: np.ndarray, depth: np.ndarray | None, part: tuple[int, int, int, int]
) -> dict[str, Any]:
    """The ground truth of the frame's ``part`` the engines saw (edge.stream.fit.seen_part):
    outside it, a cropped frame's cut edges, unlabelled and without depth, so that the
    metrics are of what was seen (metrics.json says how much of the frame that was)."""
    top, left, bottom, right = part
    if (top, left) == (0, 0) and (bottom, right) == labels.shape[:2]:
        return {"gt_label_ids": labels, "gt_instance_ids": instances, "gt_depth": depth}
    keep = np.zeros(labels.shape[:2], bool)
    keep[top:bottom, left:right] = True
    return {
        "gt_label_ids": np.where(keep, labels, 0).astype(labels.dtype),
        "gt_instance_ids": np.where(keep, instances, 0).astype(instances.dtype),
        "gt_depth": None if depth is None else np.where(keep, depth, 0).astype(depth.dtype),
    }


def _tracked(result: Result) -> dict[str, Any]:
    """The evaluator's tracking arguments for a replayed frame: its instances' tracks by
    panoptic id, its stream time and its sequence (nothing without a panoptic engine)."""
    tracks = result.extras.get("tracks")
    if tracks is None:
        return {}
    instances = result.extras["instances"]
    meta = result.frame.meta
    return {
        "tracks": {inst.panoptic_id: track for inst, track in zip(instances, tracks, strict=True)},
        "t_s": result.extras["t_stream_s"],
        "scene": (meta.get("city"), meta.get("sequence")),
    }


class PredictionWriter:
    """The prediction files of each ground-truth frame, and panoptic.json and metrics.json
    at the end. A frame's files are written whole or not at all, and only while they and the
    closing JSON files leave ``keep_free`` bytes on the disk (edge.stream.disk); when not,
    or when the system refuses a write, the predictions stop for good (``stopped`` says
    why) and the replay goes on evaluating: the metrics still reach metrics.json."""

    def __init__(self, out: Path, *, keep_free: int = DEFAULT_KEEP_FREE) -> None:
        self.out = out
        self.annotations: list[dict[str, Any]] = []
        self.frames = 0  # frames whose predictions were written
        self.stopped: str | None = None
        self._room = DiskRoom(uri=str(out), path=out, keep_free=keep_free, stops="the predictions stop")
        self._index_bytes = 0  # what panoptic.json will take

    def add(
        self, name: str, ids: np.ndarray | None, sem: np.ndarray | None, depth: np.ndarray | None
    ) -> None:
        """Write frame ``name``'s predictions, at the size given (replay gives the frame's);
        SinkStopped when they stop (once)."""
        from edge.data.cityscapes import label_ids_of

        if self.stopped is not None:
            return
        files: list[tuple[Path, bytes]] = []
        annotation = None
        if ids is not None:
            rgb = np.stack([ids % 256, ids // 256 % 256, ids // 65536], axis=-1).astype(np.uint8)
            files.append((self.out / "panoptic" / f"{name}_panoptic.png", _png(rgb[..., ::-1], name)))
            segments = [
                {"id": int(s), "category_id": int(s // 1000 if s >= 1000 else s)}
                for s in np.unique(ids)
                if s != 0
            ]
            annotation = {"image_id": name, "file_name": f"{name}_panoptic.png", "segments_info": segments}
        if sem is not None:
            labels = label_ids_of(sem).astype(np.uint8)
            files.append((self.out / "semantic" / f"{name}_pred_labelIds.png", _png(labels, name)))
        if depth is not None:
            metres = np.clip(depth * 256.0, 0, 65535).astype(np.uint16)
            files.append((self.out / "depth" / f"{name}_depth.png", _png(metres, name)))
        index = len(json.dumps(annotation)) + 2 if annotation is not None else 0
        # metrics.json is a few KiB at most; what the disk must still take after this frame
        closing = self._index_bytes + index + _METRICS_BYTES
        try:
            self._room.check(sum(len(data) for _, data in files) + closing, kept=self.frames)
        except SinkStopped as exc:
            self.stopped = str(exc)
            raise
        self._write_whole(files)
        if annotation is not None:
            self.annotations.append(annotation)
            self._index_bytes += index
        self.frames += 1

    def _write_whole(self, files: list[tuple[Path, bytes]]) -> None:
        written: list[Path] = []
        try:
            for path, data in files:
                atomic_write_bytes(path, data)
                written.append(path)
        except OSError as exc:
            for path in written:  # a frame's predictions are all there or none are
                with contextlib.suppress(OSError):
                    path.unlink()
            stop = self._room.stop(
                f"writing the predictions failed ({exc}); the {self.frames} frame(s) written before are kept"
            )
            self.stopped = str(stop)
            raise stop from exc

    def finish(self, report: dict[str, Any]) -> None:
        if self.annotations:
            atomic_write_bytes(
                self.out / "panoptic.json", (json.dumps({"annotations": self.annotations}) + "\n").encode()
            )
        atomic_write_json(self.out / "metrics.json", report)  # strict: a class unseen is null, not NaN


_METRICS_BYTES = 64 << 10


def _png(image: np.ndarray, name: str) -> bytes:
    import cv2

    ok, data = cv2.imencode(".png", np.ascontiguousarray(image))
    if not ok:
        raise DatasetError(f"could not encode the predictions of {name}")
    return bytes(data.tobytes())
