"""Streaming runtime: sources, sinks, the pipeline, and a one-call run API."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge.latency import LatencyTracker
from edge.latency.status import StatusLine
from edge.postprocess.panoptic import MIN_SCORE, check_min_score

if TYPE_CHECKING:
    from edge.postprocess.tracks import ObjectTracker
    from edge.stream.engines import EngineSet
    from edge.stream.pipeline import Pipeline
    from edge.stream.sinks import Sink
    from edge.stream.undistort import Calibration
from edge.stream.disk import DEFAULT_KEEP_FREE
from edge.stream.watchdog import ServiceWatch
from edge.util.fs import atomic_write_json

# in the right lane, as a car drives: from the centre line oncoming cars pass through the path
DEMO_SOURCE = "synthetic://?fps=17&seed=0&size=256x512&lane=right"
DEMO_FRAMES = 68  # four seconds of the synthetic drive at 17 fps


def default_engine_options(backend: str, threads: int | None, device: str | None = None) -> dict[str, Any]:
    """Panoptic and depth run side by side, so by default each gets half the cores.

    Measured in benchmarks/results/cpu_pipeline.json: on 2 cores, one thread per engine
    makes the pipeline 1.6x faster than a sequential loop; two threads each oversubscribe.
    """
    from edge.errors import ConfigError

    per_engine = threads or max(1, (os.cpu_count() or 2) // 2)
    if backend == "torch":
        return {"threads": per_engine, "device": device or "cpu"}
    if backend == "tensorrt":
        if device is not None and not device.startswith("cuda"):
            raise ConfigError(f"the TensorRT backend runs on a CUDA device, got --device {device!r}")
        return {"device": device or "cuda:0"}
    if device not in (None, "cpu"):
        raise ConfigError(f"--device {device!r} applies to the torch backend only; got backend {backend!r}")
    if backend != "onnxruntime":
        return {}
    return {"intra_op_threads": per_engine}


def run_stream(
    source: str,
    *,
    engines: str | Path,
    sinks: Sequence[str] = ("null://",),
    backend: str = "auto",
    max_frames: int | None = None,
    duration_s: float | None = None,
    deadline_ms: float | None = None,
    realtime: bool = False,
    fps: float | None = None,
    trace: str | Path | None = None,
    latency_log: str | Path | None = None,
    summary_json: str | Path | None = None,
    show_status: bool = False,
    threads: int | None = None,
    device: str | None = None,
    panoptic: str | None = None,
    depth: str | None = None,
    precision: str | None = None,
    size: tuple[int, int] | None = None,
    loop: bool = False,
    reconnect_timeout_s: float | None = None,
    tracker: LatencyTracker | None = None,
    post_workers: int = 1,
    keep_free: int = DEFAULT_KEEP_FREE,
    status_every_s: float = 0.0,
    segment_s: float | None = None,
    delete_oldest: bool = False,
    heartbeat: str | Path | None = None,
    skip_stuck_sinks: bool = False,
    overwrite: bool = False,
    fit: str = "stretch",
    object_tracker: ObjectTracker | None = None,
    min_score: float = MIN_SCORE,
    flip: str = "none",
    undistort: str | Path | Calibration | None = None,
) -> LatencyTracker:
    """Run ``source`` through the engines in ``engines`` into ``sinks``; returns the tracker.

    ``loop`` plays a file or folder again from the start each time it ends (stop with
    Ctrl-C, ``max_frames`` or ``duration_s``: seconds from the first read); ``fps`` is the
    rate ``realtime`` paces a file or folder at and a video sink is written at (default:
    the source's own; image folders have none);
    ``reconnect_timeout_s`` bounds how long a lost camera or stream may stay away (None:
    wait for ever). Pass a ``tracker`` to keep its numbers when the run ends with Ctrl-C
    (which is re-raised). ``post_workers``: frames fused and drawn at once (Pipeline).
    ``keep_free``: bytes the file sinks leave free on their disk (edge.stream.disk).
    ``status_every_s``: with ``show_status`` off a terminal, print the status line that often.
    ``segment_s``: video sinks start a new file every that many seconds (edge.stream.segments);
    ``delete_oldest``: the oldest are deleted when the disk would keep less than ``keep_free``.
    ``heartbeat``: a file rewritten every few seconds while the run makes progress, for a
    health check (edge.stream.heartbeat). ``skip_stuck_sinks``: a sink stuck in a write is
    said and skipped, not a hold of the run (edge.stream.watchdog). A camera's or stream's
    run refuses a video or .jsonl sink whose file exists (its frames cannot be had again)
    unless ``overwrite``; a file's run replaces it. ``fit``: how frames of another shape than
    the engines' go in, stretched, padded or cropped (edge.stream.fit). ``object_tracker``: what
    follows the objects from frame to frame (edge.postprocess.tracks; default: its defaults).
    ``min_score``: the lowest detection score an instance is kept at (Pipeline). ``flip``: a
    camera mounted on its side or upside down, or mirroring: its frames turned or mirrored as
    they are read (edge.stream.flip). ``undistort``: a wide-angle camera's calibration (or its
    file), its frames undistorted as they are read and its field of view given the objects
    (edge.stream.undistort).
    """
    from edge.stream.engines import EngineSet
    from edge.stream.flip import check_flip
    from edge.stream.steps import end_road_plane
    from edge.stream.undistort import calibration_of

    check_min_score(min_score)
    check_flip(flip)
    calibration = calibration_of(undistort)
    replace = check_before_engines(
        {None: (source, sinks)},
        logs={"trace": trace, "latency log": latency_log, "summary": summary_json, "heartbeat": heartbeat},
        post_workers=post_workers,
        segment_s=segment_s,
        delete_oldest=delete_oldest,
        overwrite=overwrite,
    )[None]

    tracker = tracker or LatencyTracker(deadline_ms=deadline_ms)
    with contextlib.ExitStack() as undo:  # what is open is closed if a later part fails
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
        pipeline = open_pipeline(
            source,
            engine_set=engine_set,
            sinks=sinks,
            tracker=tracker,
            object_tracker=object_tracker,
            replace=replace,
            min_score=min_score,
            flip=flip,
            undistort=calibration,
            options=StreamOptions(
                max_frames=max_frames,
                duration_s=duration_s,
                realtime=realtime,
                fps=fps,
                loop=loop,
                reconnect_timeout_s=reconnect_timeout_s,
                post_workers=post_workers,
                keep_free=keep_free,
                segment_s=segment_s,
                delete_oldest=delete_oldest,
            ),
        )
        undo.pop_all()  # the pipeline closes the source and sinks, and engine_set is closed below
    logs = {"trace": trace, "latency_log": latency_log, "summary": summary_json}
    try:
        # under systemd (Type=notify): ready, the status, and a watchdog fed while frames come
        # out; anywhere, a run that has hung says what is stuck
        watch = ServiceWatch.for_pipeline(pipeline, heartbeat=heartbeat, skip_stuck_sinks=skip_stuck_sinks)
        with StatusLine(tracker, enabled=show_status, log_every_s=status_every_s), watch:
            pipeline.run()
    except BaseException as exc:
        engine_set.close()
        if isinstance(exc, KeyboardInterrupt):  # how a camera's run ends
            end_road_plane(tracker, pipeline.object_tracker, engine_set.kinds)
        # logs are written even after Ctrl-C or an error: they explain what happened
        for failure in write_logs(tracker, **logs):
            print(f"warning: {failure}", file=sys.stderr)
        raise
    engine_set.close()
    end_road_plane(tracker, pipeline.object_tracker, engine_set.kinds)
    stopped = outputs_stopped({None: pipeline})
    raise_failures([*([stopped] if stopped else []), *write_logs(tracker, **logs)])
    return tracker


def check_before_engines(
    runs: Mapping[Any, tuple[str, Sequence[str]]],
    *,
    logs: Mapping[str, str | Path | None],
    post_workers: int,
    segment_s: float | None,
    delete_oldest: bool,
    overwrite: bool,
) -> dict[Any, bool]:
    """What a run (each camera's: its source and sinks, by name) is refused for before its
    engines load: the settings, each file it writes besides its sinks (``logs``, by what it
    is; the heartbeat's also unshared), and a sink that would write over what an earlier
    run finished. Whether each camera's sinks replace their files: a file makes its outputs
    again, a camera does not, unless ``overwrite``."""
    from edge.stream.heartbeat import check_unshared
    from edge.stream.pipeline import check_post_workers
    from edge.stream.segments import check_delete_oldest
    from edge.stream.sinks import check_written_file, refuse_earlier_outputs
    from edge.stream.sources import is_live, source_file

    check_post_workers(post_workers)
    check_delete_oldest(delete_oldest, segment_s)
    for what, path in logs.items():
        for source, _ in runs.values():
            if path is not None:  # checked now: they are written when the run ends, or as it goes
                check_written_file(what, path, source)
    if (heartbeat := logs.get("heartbeat")) is not None:
        check_unshared(heartbeat)
    replace = {name: overwrite or not is_live(source) for name, (source, _) in runs.items()}
    if segment_s is None:  # said now, not after the engines load
        for name, (source, sinks) in runs.items():
            refuse_earlier_outputs(sinks, replace=replace[name], source=source_file(source))
    return replace


def outputs_stopped(pipelines: Mapping[Any, Pipeline]) -> Exception | None:
    """OutputsStopped (exit status 3: a service shows it failed) when every sink of every
    camera stopped for good; None otherwise."""
    from edge.errors import OutputsStopped

    if not pipelines or not all(p.sinks_stopped_all for p in pipelines.values()):
        return None
    last = [
        f"camera {name}'s at frame {p.tracker.sinks_stopped[-1]['frame']}"
        if name is not None
        else f"at frame {p.tracker.sinks_stopped[-1]['frame']}"
        for name, p in pipelines.items()
    ]
    return OutputsStopped(f"every sink stopped for good (the last {', '.join(last)}), so the run ended")


def raise_failures(failures: Sequence[Exception]) -> None:
    """Raise the first of ``failures`` after warning of the others."""
    for later in failures[1:]:
        print(f"warning: {later}", file=sys.stderr)
    if failures:
        raise failures[0]


@dataclass(frozen=True)
class StreamOptions:
    """How each camera's stream is read and written (run_stream's arguments of those names)."""

    max_frames: int | None = None
    duration_s: float | None = None
    realtime: bool = False
    fps: float | None = None
    loop: bool = False
    reconnect_timeout_s: float | None = None
    post_workers: int = 1
    keep_free: int = DEFAULT_KEEP_FREE
    segment_s: float | None = None
    delete_oldest: bool = False


def open_pipeline(
    source: str,
    *,
    engine_set: EngineSet,
    sinks: Sequence[str],
    tracker: LatencyTracker,
    options: StreamOptions,
    replace: bool,
    object_tracker: ObjectTracker | None = None,
    shared: Sequence[Sink] = (),
    camera: str | None = None,
    engine_turn: AbstractContextManager[Any] | None = None,
    fit: str | None = None,
    min_score: float = MIN_SCORE,
    flip: str = "none",
    undistort: Calibration | None = None,
    start_offset_s: float = 0.0,
) -> Pipeline:
    """A Pipeline of ``source`` into ``sinks`` (opened here; ``shared``: sinks already open,
    written by other cameras too) on ``engine_set``; what it opened is closed if a part fails.
    ``camera``, ``engine_turn``, ``fit``: as Pipeline's; ``flip``: how each frame is turned or
    mirrored as it is read (edge.stream.flip), after it is ``undistort``ed (edge.stream.undistort);
    ``start_offset_s``: as Pipeline's."""
    from edge.errors import ConfigError
    from edge.stream.flip import flipped
    from edge.stream.pipeline import Pipeline
    from edge.stream.sinks import open_sinks
    from edge.stream.sources import LoopingSource, nominal_rate, open_source, pace_period, source_file
    from edge.stream.undistort import undistorted
    from edge.stream.video import warn_of_live_videos

    o = options
    with contextlib.ExitStack() as undo:
        src = open_source(source, reconnect_timeout_s=o.reconnect_timeout_s)
        undo.callback(src.close)
        if o.loop:
            src = LoopingSource(src)
        # after the loop, which opens the source again; the lens's calibration is of its own picture
        src = flipped(undistorted(src, undistort), flip)
        if undistort is not None:
            print(
                f"note: the frames of {source!r} are undistorted with {undistort.path!r}: a pinhole camera "
                f"{undistort.hfov_deg:.1f} degrees across",
                file=sys.stderr,
            )
        if o.fps is not None and src.live:
            raise ConfigError(
                f"--fps sets the rate of files and folders; camera {source!r} has its own "
                "(ask a camera for one in its URI, e.g. /dev/video0?fps=30)"
            )
        # a folder without a rate fails before the sinks open
        pace_period(src, realtime=o.realtime, fps=o.fps)
        opened = open_sinks(
            sinks,
            fps=o.fps or nominal_rate(src) or 17.0,
            kinds=engine_set.kinds,
            timing="capture" if src.live or o.realtime else "frames",
            keep_free=o.keep_free,
            source=source_file(source),
            segment_s=o.segment_s,
            delete_oldest=o.delete_oldest,
            replace=replace,
        )
        for sink in opened:
            undo.callback(sink.close)
        pipeline = Pipeline(
            source=src,
            engines=engine_set,
            sinks=[*opened, *shared],
            tracker=tracker,
            max_frames=o.max_frames,
            duration_s=o.duration_s,
            realtime=o.realtime,
            fps=o.fps,
            post_workers=o.post_workers,
            end_when_sinks_stop=True,  # a run whose every output has stopped would produce nothing
            object_tracker=object_tracker,
            camera=camera,
            engine_turn=engine_turn,
            fit=fit,
            min_score=min_score,
            start_offset_s=start_offset_s,
        )
        undo.pop_all()  # the pipeline closes them
    if src.live:
        warn_of_live_videos(opened)
    if pipeline.paced_by_timestamps:
        where = getattr(src, "timestamps_file", None) or "the files beside its videos"
        print(f"--realtime: replaying {source} at the capture times in {where}", file=sys.stderr)
    return pipeline


def write_logs(
    tracker: LatencyTracker,
    *,
    trace: str | Path | None,
    latency_log: str | Path | None,
    summary: str | Path | None,
) -> list[OSError]:
    """Write each log asked for (None: not asked); what the system refused (write_each)."""
    return write_each(
        (
            (trace, tracker.write_trace),
            (latency_log, tracker.write_jsonl),
            (summary, lambda p: atomic_write_json(p, tracker.summary())),
        )
    )


def write_each(writers: Iterable[tuple[str | Path | None, Callable[[str | Path], None]]]) -> list[OSError]:
    """Each (path, write) asked for (a path; None: not asked) written; what the system
    refused, each naming its file. One that does not fit on the disk (a day's trace) does
    not keep the others out."""
    failures = []
    for path, write in writers:
        if path is not None:
            try:
                write(path)
            except OSError as exc:
                failures.append(exc)
    return failures


def demo(
    *,
    out_dir: str | Path = "out",
    engines: str | Path = "engines",
    frames: int = DEMO_FRAMES,
    realtime: bool = False,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Build the default engines if needed, run the synthetic drive (``realtime``: at its
    17 fps, as a camera gives it), write out/demo.mp4 and the drive's warnings log,
    out/demo_warnings.jsonl."""
    from edge.build import DEFAULT_MODELS, DEFAULT_SIZE, BuildRequest, build_all
    from edge.models.zoo import bundled_weights

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    h, w = DEFAULT_SIZE
    build_all(
        [BuildRequest(model=m, height=h, width=w, checkpoint=bundled_weights(m)) for m in DEFAULT_MODELS],
        engines,
        show_progress=show_progress,
    )
    tracker = run_stream(
        DEMO_SOURCE,
        engines=engines,
        sinks=[str(out / "demo.mp4"), f"{out / 'demo_warnings.jsonl'}?lines=warnings"],
        max_frames=frames,
        realtime=realtime,
        trace=out / "demo_trace.json",
        summary_json=out / "demo_latency.json",
        show_status=show_progress,
    )
    return {
        "video": str(out / "demo.mp4"),
        "warnings": str(out / "demo_warnings.jsonl"),
        "trace": str(out / "demo_trace.json"),
        "summary": tracker.summary(),
        "table": tracker.format_summary(),
    }
