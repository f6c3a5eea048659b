"""``edge record --camera NAME=URI ...`` (or ``--rig``): a vehicle's cameras recorded at once,
each into its own sinks (``{camera}`` in a sink's name), for a drive to replay through the
same rig later (``edge run --rig car.toml --camera front=drives/front.mkv ... --realtime``).

Each camera is a Recording (edge.stream.record) on a thread of its own, so one that stalls
holds up no other; every source is opened before any file is made. One watch looks at them
all (under systemd: ready, the status of each, the watchdog fed only while none is held up;
``--heartbeat``), one status line holds each camera's, and the summary is each camera's by
name. An error in one (a failed write, a full disk) ends them all, each finished, as
Ctrl-C does.
"""

from __future__ import annotations

import contextlib
import functools
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge.errors import ConfigError, Interrupted, RecordingStopped
from edge.stream.disk import DEFAULT_KEEP_FREE
from edge.stream.record import Recording
from edge.stream.record_parts import format_summary, needs_engines, progress_bar

if TYPE_CHECKING:
    from edge.stream.sinks import Sink


class _Camera:
    """One camera's Recording as multicam.run_all runs it: ``run`` keeps the summary, also
    of a recording ``interrupt`` ended (which is not an error: whoever interrupted knows)."""

    def __init__(
        self,
        recording: Recording,
        max_frames: int | None,
        duration_s: float | None,
        on_frame: Callable[[int], object],
    ) -> None:
        self.recording, self._max_frames, self._duration_s = recording, max_frames, duration_s
        self._on_frame = on_frame
        self.summary: dict[str, Any] | None = None

    def run(self) -> None:
        try:
            self.summary = self.recording.run(
                max_frames=self._max_frames, duration_s=self._duration_s, on_frame=self._on_frame
            )
        except Interrupted as exc:
            self.summary = exc.data
        except RecordingStopped as exc:
            self.summary = exc.data
            raise

    def interrupt(self) -> None:
        self.recording.interrupt()


class _FirstFrames:
    """Each camera's on_frame: ``each(n)``, and ``then(firsts)`` once as the last camera to give
    its first frame gives it."""

    def __init__(
        self,
        recordings: Mapping[str, Recording],
        each: Callable[[int], object],
        then: Callable[[dict[str, int | None]], object] | None,
    ) -> None:
        self._recordings, self._each, self._then = recordings, each, then
        self._started: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, name: str, frames: int) -> None:
        self._each(frames)
        if self._then is None or name in self._started:
            return
        with self._lock:
            self._started.add(name)
            if len(self._started) < len(self._recordings):
                return
        self._then({each: rec.first_capture_ns for each, rec in self._recordings.items()})


def camera_sinks(sinks: Sequence[str], names: Sequence[str]) -> dict[str, list[str]]:
    """Each camera's sinks (edge.stream.camera_sinks.split_sinks: ``{camera}`` in a name, a
    viewer a camera on ports counted on); a ConfigError for a sink the cameras would share
    (a metrics endpoint, or what needs the engines)."""
    from edge.stream.camera_sinks import split_sinks
    from edge.stream.sinks import writes_mcap, writes_objects

    if not sinks:
        raise ConfigError(
            "edge record needs a sink to write each camera's frames to; got none. Name one with "
            "{camera} in it, e.g. 'drives/{camera}.mkv'"
        )
    own, shared = split_sinks(sinks, names)
    for uri in shared:
        if writes_objects(uri) or writes_mcap(uri) or uri.startswith("foxglove://"):
            raise needs_engines(uri)
        raise ConfigError(
            f"sink {uri!r} would serve one recording's statistics, and {len(names)} cameras record "
            f"({', '.join(names)}): leave it out, or record each camera with an edge record of its own"
        )
    return own


def record_cameras(
    cameras: Mapping[str, str],
    sinks: Sequence[str],
    *,
    max_frames: int | None = None,
    duration_s: float | None = None,
    fps: float | None = None,
    reconnect_timeout_s: float | None = None,
    show_progress: bool = False,
    keep_free: int = DEFAULT_KEEP_FREE,
    status_every_s: float = 0.0,
    segment_s: float | None = None,
    delete_oldest: bool = False,
    heartbeat: str | Path | None = None,
    skip_stuck_sinks: bool = False,
    overwrite: bool = False,
    flip: str | Mapping[str, str] = "none",
    sinks_of: Mapping[str, Sequence[Sink]] | None = None,
    on_started: Callable[[], object] | None = None,
    on_first_frames: Callable[[dict[str, int | None]], object] | None = None,
) -> dict[str, Any]:
    """Record each of ``cameras`` (name -> source URI) at once into its sinks of ``sinks``
    (camera_sinks) and of ``sinks_of`` (sinks opened by the caller, by camera, as record
    takes them); returns ``{"cameras": {name: summary}}``, each record's. ``max_frames``
    and ``duration_s`` are each camera's; ``flip``, every camera's or each one's by name; the
    other arguments are record's. Ctrl-C raises Interrupted and a failed write
    RecordingStopped (RecordingStoppedForGood: a sink stopped for good), naming its camera,
    each with every camera's summary as its ``data``. ``on_started`` is called once every
    source and sink is open, before the first frame (edge.replay_rig writes its file then);
    ``on_first_frames`` once every camera has handed its first frame to its sinks, on that last
    camera's thread, with each one's Recording.first_capture_ns (edge.replay_rig's start offsets)."""
    from edge.stream.camera_sinks import say_viewers
    from edge.stream.heartbeat import check_unshared
    from edge.stream.multicam import check_cameras, run_all
    from edge.stream.sinks import check_written_file
    from edge.stream.watchdog import ServiceWatch
    from edge.util.progress import PeriodicLog

    names = list(check_cameras(list(cameras.items())))
    given = dict(sinks_of or {})
    if unknown := sorted(set(given) - set(names)):
        raise ConfigError(f"sinks of {unknown[0]!r}: no camera is named so (the cameras: {', '.join(names)})")
    # URIs by camera ({camera} in a name); none needed where the caller gives each its sinks
    uris = camera_sinks(sinks, names) if sinks or not given else {name: [] for name in names}
    own: dict[str, list[str | Sink]] = {name: [*uris[name], *given.get(name, ())] for name in names}
    flips = {name: flip for name in names} if isinstance(flip, str) else dict(flip)
    if unknown := sorted(set(flips) - set(names)):
        raise ConfigError(
            f"--flip {unknown[0]}: no camera is named {unknown[0]!r} (the cameras: {', '.join(names)})"
        )
    if heartbeat is not None:
        for uri in cameras.values():
            check_written_file("heartbeat", heartbeat, uri)
        check_unshared(heartbeat)
    recordings = {  # each refuses what it would write over, before any source opens
        name: Recording(
            cameras[name],
            own[name],
            fps=fps,
            reconnect_timeout_s=reconnect_timeout_s,
            keep_free=keep_free,
            segment_s=segment_s,
            delete_oldest=delete_oldest,
            overwrite=overwrite,
            flip=flips.get(name, "none"),
            camera=name,
        )
        for name in names
    }
    with contextlib.ExitStack() as stack:
        for recording in recordings.values():
            stack.callback(recording.close)
            recording.open_source()
        for recording in recordings.values():
            recording.open_sinks()
        say_viewers(recordings)  # each viewer's page links to the others'
        if on_started is not None:
            on_started()
        total = None if max_frames is None else max_frames * len(names)
        bar = progress_bar(show_progress, total)
        stack.callback(bar.close)
        on_frame = _FirstFrames(recordings, bar.update, on_first_frames)
        runs = {
            name: _Camera(rec, max_frames, duration_s, functools.partial(on_frame, name))
            for name, rec in recordings.items()
        }

        def status() -> str:
            return " · ".join(f"{name}: {rec.status_line()}" for name, rec in recordings.items())

        if show_progress and status_every_s > 0 and not sys.stderr.isatty():  # a service's journal
            stack.callback(PeriodicLog(status, every_s=status_every_s).start().stop)
        watch = ServiceWatch.for_looks(
            {name: rec.progress() for name, rec in recordings.items()},
            recordings,
            status=status,
            heartbeat=heartbeat,
            skip_stuck_sinks=skip_stuck_sinks,
        )
        stack.enter_context(watch)
        try:
            run_all(runs)
        except KeyboardInterrupt as exc:
            raise Interrupted(_summaries(runs), exc) from None
        except RecordingStopped as exc:
            failed = next(name for name, run in runs.items() if run.summary is exc.data)
            raise type(exc)(f"camera {failed}: {exc}", _summaries(runs)) from exc
    return _summaries(runs)


def _summaries(runs: Mapping[str, _Camera]) -> dict[str, Any]:
    return {"cameras": {name: run.summary for name, run in runs.items() if run.summary is not None}}


def format_cameras_summary(summary: dict[str, Any]) -> str:
    """record's line for each camera, after its name."""
    return "\n".join(f"camera {name}: {format_summary(each)}" for name, each in summary["cameras"].items())
