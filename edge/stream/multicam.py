"""Several cameras through one set of engines: ``edge run --camera front=/dev/video0
--camera rear=/dev/video2``.

Each camera is a Pipeline of its own (capture thread, queues, post stage, sinks, latency and
object trackers), so a camera that stalls or drops frames holds up no other, and each is
summed up apart. The engines are loaded once and the pipelines take turns at them, first
come first served (TurnLock): a GPU runs one inference at a time anyway, a TensorRT
execution context is not for two threads at once, and on a CPU each engine already has half
the cores. A camera ranked higher (``priorities``, --priority) goes before lower ones
whenever both wait, and keeps the engines while its next frame is ready as its turn ends
(TurnLock's Seat): when the engines cannot keep up with every camera it keeps its rate.
Cameras of one rank split the turns by their ``shares`` (--share), none starved. A sink
whose name holds ``{camera}`` is one per camera; a sink of what was found (objects.jsonl,
``-``) without it is shared, each line naming its camera.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from edge.errors import ConfigError
from edge.latency import LatencyTracker
from edge.latency.status import StatusLine
from edge.postprocess.panoptic import MIN_SCORE, check_min_score
from edge.stream.camera_sinks import SharedSink, say_viewers, split_sinks
from edge.stream.fit import check_fit
from edge.stream.flip import check_flip
from edge.stream.undistort import calibration_of
from edge.stream.watchdog import ServiceWatch
from edge.util.numbers import is_positive_number
from edge.util.turns import TurnLock

if TYPE_CHECKING:
    from edge.postprocess.tracks import ObjectTracker
    from edge.stream import StreamOptions
    from edge.stream.pipeline import Pipeline

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}")
_WAIT_S = 0.2
_DEVICES = ("/dev/video", "/dev/v4l/", "csi://")  # cameras a process opens once
T = TypeVar("T")
U = TypeVar("U")
V = TypeVar("V")


def parse_camera(text: str) -> tuple[str, str]:
    """``NAME=URI`` (``--camera front=/dev/video0``) as (name, uri)."""
    name, sep, uri = text.partition("=")
    if not sep or not uri or not _NAME.fullmatch(name):
        raise ConfigError(
            f"camera {text!r}: expected NAME=URI, e.g. front=/dev/video0 (NAME: up to 32 letters, "
            "digits, '.', '_' or '-', starting with a letter or digit)"
        )
    return name, uri


def check_cameras(cameras: Sequence[tuple[str, str]]) -> dict[str, str]:
    """The cameras by name, in the order given; a ConfigError for none, a name given twice,
    or one device given twice (a V4L2 or CSI camera opens once: the second open would fail
    after the engines loaded, or take the first one's frames)."""
    if not cameras:
        raise ConfigError("no camera given: expected one NAME=URI at least, e.g. front=/dev/video0")
    named: dict[str, str] = {}
    devices: dict[str, str] = {}
    for name, uri in cameras:
        if name in named:
            raise ConfigError(
                f"camera name {name!r} is given twice ({named[name]!r} and {uri!r}); give each its own"
            )
        named[name] = uri
        device = uri.partition("?")[0]
        if device.startswith(_DEVICES):
            # udev's stable links (/dev/v4l/by-id/...) as the node they lead to now
            node = os.path.realpath(device) if device.startswith("/dev/") else device
            if node in devices:
                same = device if node == device else f"{device} ({node})"
                raise ConfigError(
                    f"cameras {devices[node]!r} and {name!r} both open {same}, which opens once; "
                    "give each camera its own device"
                )
            devices[node] = name
    return named


def check_names(flag: str, given: Mapping[str, object], names: Sequence[str], what: str) -> None:
    """A ConfigError for a name in ``given`` (``flag``'s, by camera or stream) that ``names`` lacks."""
    for name in given:
        if name not in names:
            raise ConfigError(f"{flag} {name}: no {what} is named {name!r} (the {what}s: {', '.join(names)})")


def check_priorities(
    priorities: Mapping[str, int], names: Sequence[str], *, what: str = "camera"
) -> dict[str, int]:
    """Each camera's rank at the engines (TurnLock.seat; 0 where not given); a ConfigError
    for a name that is no camera's (``what``: or no stream's, of edge bench) or a rank that
    is not a whole number."""
    check_names("--priority", priorities, names, what)
    for name, rank in priorities.items():
        if isinstance(rank, bool) or not isinstance(rank, int):
            raise ConfigError(f"--priority {name}={rank!r}: expected a whole number (a higher one first)")
    return {name: priorities.get(name, 0) for name in names}


def check_shares(
    shares: Mapping[str, float], names: Sequence[str], *, what: str = "camera"
) -> dict[str, float]:
    """Each camera's share of the turns among its rank (TurnLock.seat; 1 where not given);
    a ConfigError for a name that is no camera's or a share that is not a number > 0."""
    check_names("--share", shares, names, what)
    for name, share in shares.items():
        if not is_positive_number(share):
            raise ConfigError(
                f"--share {name}={share!r}: expected a number > 0 (its turns against the others')"
            )
    return {name: float(shares.get(name, 1.0)) for name in names}


def check_start_offsets(offsets: Mapping[str, float], cameras: Mapping[str, str]) -> dict[str, float]:
    """Each camera's start offset (0 where not given): how many seconds after the drive's first
    camera's first frame its own came (edge.stream.pacing: a --realtime replay waits that long
    for it; one flat out adds it to its frames' drive times). A ConfigError for a name that is
    no camera's, an offset that is not a number of seconds >= 0, or one of a live source: a
    camera's frames come when it sends them."""
    from edge.stream.sources import is_live

    check_names("--start-offset", offsets, list(cameras), "camera")
    for name, seconds in offsets.items():
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 0 <= seconds < math.inf:
            raise ConfigError(
                f"--start-offset {name}={seconds!r}: expected a number of seconds >= 0 (how much later "
                "than the drive's first camera this one's first frame came)"
            )
        if seconds and is_live(cameras[name]):
            raise ConfigError(
                f"--start-offset {name}={seconds}: its source {cameras[name]!r} is live, and its frames "
                "come when it sends them; a start offset is a recorded camera's (edge record "
                "--replay-rig writes each one's)"
            )
    return {name: float(offsets.get(name, 0.0)) for name in cameras}


class CamerasStatus:
    """The cameras' status lines, each after its name: on a terminal one a line, in
    systemd's status and the heartbeat one line (``sep``)."""

    def __init__(self, trackers: Mapping[str, LatencyTracker], *, sep: str = "\n") -> None:
        self.trackers, self.sep = trackers, sep

    def status_line(self) -> str:
        return self.sep.join(f"{name}: {t.status_line()}" for name, t in self.trackers.items())


def run_all(pipelines: Mapping[str, Any], *, on_interrupt: Callable[[], object] | None = None) -> None:
    """Run each pipeline on a thread of its own until every one has ended. An error in one
    interrupts the others (Pipeline.interrupt: their stages get a while to finish, then their
    sinks are finished) and is raised once they have ended (the first, in the cameras'
    order); Ctrl-C interrupts them all and is raised likewise. ``on_interrupt`` is called
    first, at the error or the Ctrl-C (a benchmark's measurement ends there, not once the
    stages have drained)."""
    errors: dict[str, BaseException] = {}
    done = {name: threading.Event() for name in pipelines}

    def run(name: str) -> None:
        try:
            pipelines[name].run()
        except BaseException as exc:
            errors[name] = exc
            if on_interrupt is not None:
                on_interrupt()
            for other in pipelines.values():  # each bounds its wait for its stages
                other.interrupt()
        finally:
            done[name].set()

    for name in pipelines:
        threading.Thread(target=run, args=(name,), name=f"edge-camera-{name}", daemon=True).start()
    try:
        _wait(done)
    except KeyboardInterrupt:
        if on_interrupt is not None:
            on_interrupt()
        for pipeline in pipelines.values():
            pipeline.interrupt()
        _wait(done)  # each bounds its own wait; a second interrupt ends this one
        raise
    for name in pipelines:
        if name in errors:
            raise errors[name]


def _wait(done: Mapping[str, threading.Event]) -> None:
    # events with a timeout, not Thread.join: see Pipeline.run
    for event in done.values():
        while not event.wait(timeout=_WAIT_S):
            pass


def cameras_summary(trackers: Mapping[str, LatencyTracker]) -> dict[str, Any]:
    """The JSON --summary writes: each camera's latency summary, by name."""
    return {"cameras": {name: t.summary() for name, t in trackers.items()}}


def format_cameras_summary(trackers: Mapping[str, LatencyTracker], sources: Mapping[str, str]) -> str:
    """Each camera's summary table under its name and source ('' when none put a frame out:
    a run stopped before its engines loaded)."""
    if not any(t.frames_out for t in trackers.values()):
        return ""
    return "\n\n".join(
        f"camera {name} ({sources[name]}):\n"
        + (t.format_summary() if t.frames_out else f"no frame came out ({t.frames_in} taken in)")
        for name, t in trackers.items()
    )


def cameras_trace(trackers: Mapping[str, LatencyTracker]) -> dict[str, Any]:
    """One Chrome trace of every camera: a process each, named, on one clock."""
    t0 = min((t.t0_ns for t in trackers.values()), default=0)
    events: list[dict[str, Any]] = []
    for pid, (name, tracker) in enumerate(trackers.items(), start=1):
        events.append({"name": "process_name", "ph": "M", "pid": pid, "args": {"name": f"camera {name}"}})
        shift_us = (tracker.t0_ns - t0) / 1e3
        for event in tracker.chrome_trace()["traceEvents"]:
            events.append({**event, "pid": pid, "ts": event["ts"] + shift_us})
    return {"traceEvents": events, "displayTimeUnit": "ms"}


def cameras_spans(trackers: Mapping[str, LatencyTracker]) -> str:
    """The --latency-log JSON lines of every camera, each naming its camera."""
    lines = [line for name, tracker in trackers.items() for line in tracker.span_lines(camera=name)]
    return "\n".join(lines) + "\n"


def run_cameras(
    cameras: Mapping[str, str],
    *,
    engines: str | Path,
    sinks: Sequence[str] = ("null://",),
    backend: str = "auto",
    deadline_ms: float | None = None,
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
    trackers: Mapping[str, LatencyTracker] | None = None,
    status_every_s: float = 0.0,
    heartbeat: str | Path | None = None,
    skip_stuck_sinks: bool = False,
    overwrite: bool = False,
    fit: str | Mapping[str, str] = "stretch",
    flip: str | Mapping[str, str] = "none",
    undistort: str | Path | Mapping[str, str | Path | None] | None = None,
    object_tracker: ObjectTracker | Mapping[str, ObjectTracker] | None = None,
    options: StreamOptions | None = None,
    priorities: Mapping[str, int] | None = None,
    shares: Mapping[str, float] | None = None,
    min_score: float = MIN_SCORE,
    start_offsets: Mapping[str, float] | None = None,
) -> dict[str, LatencyTracker]:
    """Run each of ``cameras`` (name -> source URI, as run_stream's ``source``) through one
    set of engines into ``sinks`` (split_sinks: ``{camera}`` in a name makes one a camera);
    returns each camera's LatencyTracker. ``options``: how each camera is read and written,
    ``max_frames`` and ``duration_s`` each camera's own. ``object_tracker``: each camera's
    tracker by name (their fields of view differ), or the settings of each camera's own
    (ObjectTracker.fresh). ``fit``: how frames of another shape than the engines' go in,
    for every camera or each camera's by name (edge.stream.fit); ``flip``, how their frames are
    turned or mirrored as they are read, likewise (edge.stream.flip), and ``undistort``, the
    calibration file of each wide-angle camera's lens (edge.stream.undistort). Pass ``trackers`` (by
    name) to keep their numbers after Ctrl-C. The other arguments are run_stream's;
    ``summary_json``, ``trace`` and ``latency_log`` hold every camera (cameras_summary,
    cameras_trace, cameras_spans).
    ``priorities``: a camera's rank at the engines by name (others 0): a higher one's frame
    goes before a lower one's whenever both wait (TurnLock.seat). ``shares``: a camera's
    share of the turns among cameras of its rank, by name (others 1). ``min_score``: the
    lowest detection score an instance is kept at, every camera's (Pipeline). ``start_offsets``:
    by name, how many seconds after the others' a recorded camera's first frame came
    (check_start_offsets; edge.replay_rig writes them): with ``options.realtime`` it is replayed
    that much later; without, recordings are read in drive order (edge.stream.pacing.drive_order)."""
    from edge.stream import (
        StreamOptions,
        check_before_engines,
        open_pipeline,
        outputs_stopped,
        raise_failures,
    )
    from edge.stream.engines import EngineSet
    from edge.stream.pacing import StartLine, drive_order, unpaced_beside_live
    from edge.stream.sinks import open_sinks
    from edge.stream.sources import is_live
    from edge.stream.steps import end_road_plane
    from edge.viewer.around import share_around

    o = options or StreamOptions()
    check_min_score(min_score)
    names = list(check_cameras(list(cameras.items())))
    ranks = check_priorities(priorities or {}, names)
    weights = check_shares(shares or {}, names)
    offsets = check_start_offsets(start_offsets or {}, {name: cameras[name] for name in names})
    own, shared_uris = split_sinks(sinks, names)
    replace = check_before_engines(
        {name: (cameras[name], [*own[name], *shared_uris]) for name in names},
        logs={"trace": trace, "latency log": latency_log, "summary": summary_json, "heartbeat": heartbeat},
        post_workers=o.post_workers,
        segment_s=o.segment_s,
        delete_oldest=o.delete_oldest,
        overwrite=overwrite,
    )
    if trackers is None:
        trackers = {name: LatencyTracker(deadline_ms=deadline_ms) for name in names}
    trackers = _each_camera("trackers", trackers, names)
    followers = _object_trackers(object_tracker, names)
    fits = _each_chosen("fit", fit, names, check_fit)
    flips = _each_chosen("flip", flip, names, check_flip)
    calibrations = _each_chosen("undistort", undistort, names, calibration_of)  # read before the engines
    turn = TurnLock()
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
        )
        undo.callback(engine_set.close)
        live = any(is_live(source) for source in cameras.values())
        opened = open_sinks(
            shared_uris,
            fps=17.0,  # objects sinks keep no rate
            kinds=engine_set.kinds,
            timing="capture" if live or o.realtime else "frames",
            keep_free=o.keep_free,
            segment_s=o.segment_s,
            delete_oldest=o.delete_oldest,
            replace=all(replace.values()),
        )
        holds = [SharedSink.of(sink, len(names)) for sink in opened]
        for each in holds:
            for hold in each:
                undo.callback(hold.close)
        pipelines: dict[str, Pipeline] = {}
        for index, name in enumerate(names):
            pipeline = open_pipeline(
                cameras[name],
                engine_set=engine_set,
                sinks=own[name],
                tracker=trackers[name],
                options=o,
                replace=replace[name],
                object_tracker=followers[name],
                shared=[each[index] for each in holds],
                camera=name,
                engine_turn=turn.seat(ranks[name], weights[name]),
                fit=fits[name],
                flip=flips[name],
                undistort=calibrations[name],
                min_score=min_score,
                start_offset_s=offsets[name],
            )
            undo.callback(pipeline.abandon)
            pipelines[name] = pipeline
        undo.pop_all()  # each pipeline closes its source and sinks, and engine_set is closed below
    if drive_order(pipelines, realtime=o.realtime, loop=o.loop) is not None:
        print(
            "note: the cameras' recordings are read in the order of their capture times (each one's "
            "start offset added), as fast as the engines take them: what they saw at once is fused at "
            "once (--realtime replays them at the drive's pace)",
            file=sys.stderr,
        )
    elif any(offsets.values()) and not o.realtime:
        print(
            "note: the start offsets order nothing here (a camera, --loop, or a folder with no rate "
            "among the sources): each file's frames are read as fast as the engines take them",
            file=sys.stderr,
        )
    elif len(set(ranks.values())) > 1:
        warn_unpaced(pipelines)
    if said := unpaced_beside_live(pipelines, realtime=o.realtime):
        print(said, file=sys.stderr)
    say_viewers(pipelines)
    share_around(pipelines)
    try:
        watch = ServiceWatch.for_pipelines(
            pipelines,
            status=CamerasStatus(trackers, sep="  |  ").status_line,
            heartbeat=heartbeat,
            skip_stuck_sinks=skip_stuck_sinks,
        )
        with StatusLine(CamerasStatus(trackers), enabled=show_status, log_every_s=status_every_s), watch:
            start_line = StartLine(len(pipelines))  # paced files' offsets are to one start
            for pipeline in pipelines.values():
                pipeline.pace.start_line = start_line
            run_all(pipelines)
    except BaseException as exc:
        engine_set.close()
        if isinstance(exc, KeyboardInterrupt):  # how a camera's run ends
            for name, pipeline in pipelines.items():
                end_road_plane(trackers[name], pipeline.object_tracker, engine_set.kinds, name)
        for failure in write_cameras_logs(
            trackers, trace=trace, latency_log=latency_log, summary=summary_json
        ):
            print(f"warning: {failure}", file=sys.stderr)
        raise
    engine_set.close()
    for name, pipeline in pipelines.items():
        end_road_plane(trackers[name], pipeline.object_tracker, engine_set.kinds, name)
    stopped = outputs_stopped(pipelines)
    written = write_cameras_logs(trackers, trace=trace, latency_log=latency_log, summary=summary_json)
    raise_failures([*([stopped] if stopped else []), *written])
    return dict(trackers)


def _object_trackers(
    given: ObjectTracker | Mapping[str, ObjectTracker] | None, names: Sequence[str]
) -> dict[str, ObjectTracker | None]:
    """Each camera's ObjectTracker: its own of ``given`` by name, or a fresh one of its settings."""
    if isinstance(given, Mapping):
        return dict(_each_camera("object_tracker", given, names))
    return {name: given.fresh() if given is not None else None for name in names}


def _each_camera(what: str, given: Mapping[str, T], names: Sequence[str]) -> dict[str, T]:
    """``given``'s entry for each camera of ``names``; a ConfigError naming those it lacks."""
    if missing := [name for name in names if name not in given]:
        raise ConfigError(f"{what} has none for camera(s) {', '.join(missing)} (it has: {', '.join(given)})")
    return {name: given[name] for name in names}


def _each_chosen(
    what: str, given: V | Mapping[str, V], names: Sequence[str], check: Callable[[V], U]
) -> dict[str, U]:
    """``given`` (every camera's, or each camera's by name) for each camera of ``names``, as
    ``check`` gives it back (checked, or read: a calibration file), before anything opens."""
    chosen = _each_camera(what, given, names) if isinstance(given, Mapping) else dict.fromkeys(names, given)
    return {name: check(value) for name, value in chosen.items()}


def warn_unpaced(pipelines: Mapping[str, Pipeline]) -> None:
    """Ranks among cameras read as fast as the engines take them (files without --realtime)
    are said to starve the lower ones: a higher-ranked one always has its next frame ready."""
    unpaced = [
        name
        for name, p in pipelines.items()
        if not (p.source.live or p.realtime or getattr(p.source, "keeps_rate", False))
    ]
    if unpaced:
        print(
            f"warning: --priority ranks cameras of which {', '.join(unpaced)} read frames as fast as "
            "the engines take them: a higher-ranked one always has its next frame ready, so the lower "
            "ones get the engines only once it has ended; --realtime paces files as cameras",
            file=sys.stderr,
        )


def write_cameras_logs(
    trackers: Mapping[str, LatencyTracker],
    *,
    trace: str | Path | None,
    latency_log: str | Path | None,
    summary: str | Path | None,
) -> list[OSError]:
    """As edge.stream.write_logs, of every camera."""
    import json

    from edge.stream import write_each
    from edge.util.fs import atomic_write_bytes, atomic_write_json

    def text(make: Callable[[], str]) -> Callable[[str | Path], None]:
        return lambda path: atomic_write_bytes(path, make().encode())

    return write_each(
        (
            (trace, text(lambda: json.dumps(cameras_trace(trackers)))),
            (latency_log, text(lambda: cameras_spans(trackers))),
            (summary, lambda path: atomic_write_json(path, cameras_summary(trackers))),
        )
    )
