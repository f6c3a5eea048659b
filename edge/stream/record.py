"""``edge record``: a source's frames into picture sinks, without engines.

A camera recorded this way keeps every frame it delivers (``edge run``'s ``?view=input``
sinks keep only those the engines processed), and a video of it gets the frames' capture
times beside it (``drive.mp4.timestamps.txt``, edge.stream.timestamps), so the drive can be
replayed later as it was captured with ``edge run drive.mp4 --realtime``. Like
jetson-utils' video-viewer: any source URI in, any picture sink out (a video, ``dir://``
for exact pixels, ``display://`` to watch).
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge.errors import (
    ConfigError,
    Interrupted,
    RecordingStopped,
    RecordingStoppedForGood,
    SinkError,
    SinkStopped,
)
from edge.latency import LatencyTracker
from edge.stream.disk import DEFAULT_KEEP_FREE
from edge.stream.frame import Result
from edge.stream.record_parts import (
    DEPTH,
    RATE_TOLERANCE,
    Closing,
    RecordWriters,
    Tally,
    capture_time,
    check_records_pictures,
    format_summary,
    needs_engines,
    progress_bar,
    status_of,
    summary_of,
)
from edge.stream.watchdog import ServiceWatch
from edge.util.interrupts import StepBoundary
from edge.util.progress import PeriodicLog

if TYPE_CHECKING:
    from edge.stream.sinks import Sink
    from edge.stream.watchdog import Progress

__all__ = ["DEPTH", "RATE_TOLERANCE", "STOP_TIMEOUT_S", "Recording", "format_summary", "record"]

STOP_TIMEOUT_S = 10.0  # after Ctrl-C, how long the sinks get to write what they were handed


def record(
    source: str,
    sinks: Sequence[str | Sink],
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
    flip: str = "none",
) -> dict[str, Any]:
    """Write each frame of ``source`` to every sink of ``sinks`` until the source ends,
    ``max_frames`` were written or ``duration_s`` has passed; returns what was recorded.

    ``fps`` is the rate a video sink is written at (default: the source's own, else 17).
    ``flip``: each frame turned or mirrored as it is read (edge.stream.flip), and so recorded.
    Videos and dir:// folders of a camera, or of a recording that has capture times, get
    those times (edge.stream.timestamps: beside a video, timestamps.txt in a folder).
    A failed write ends the recording with RecordingStopped, a SinkError holding the summary
    of what was recorded before (a recording with holes is not one; RecordingStoppedForGood
    when the sink stopped for good, as for a full or failed disk);
    what was written before it, like what was written before Ctrl-C (Interrupted), is
    finalised. So is a recording whose disk would have less than ``keep_free`` bytes free
    after the next frame (edge.stream.disk): it stops at the last frame that fits.
    With ``show_progress`` off a terminal, a line says how far it is every
    ``status_every_s`` seconds (0: never). ``segment_s``: video sinks start a new file
    every that many seconds of video (edge.stream.segments); ``delete_oldest`` deletes the
    oldest when the disk would keep less than ``keep_free``. ``heartbeat``: a file rewritten
    every few seconds while frames are written, for a health check (edge.stream.heartbeat).

    ``sinks`` are URIs, or sinks opened by the caller (e.g. a publisher of its own), which
    are closed with the others: whatever ends the recording, each sink is closed. Each
    writes on a thread of its own (edge.stream.writers). A sink for watching (a window,
    the web viewer: ``for_watching``) that falls behind a camera skips frames, counted in
    ``sinks_skipped``; the recording waits for every other sink, unless it is stuck inside a
    write (a card that stopped answering) and ``skip_stuck_sinks``: a camera's recording then
    goes on in the other sinks, and that one skips the frames meanwhile (edge.stream.watchdog).
    A video sink whose file exists is refused before anything is written, unless
    ``overwrite``: an earlier recording is not replaced by a repeated command. That, and the
    other refusals of what a sink would write over, are said before the source is opened.
    """
    from edge.stream.heartbeat import check_unshared
    from edge.stream.sinks import check_written_file

    if heartbeat is not None:
        check_written_file("heartbeat", heartbeat, source)
        check_unshared(heartbeat)
    recording = Recording(
        source,
        sinks,
        fps=fps,
        reconnect_timeout_s=reconnect_timeout_s,
        keep_free=keep_free,
        segment_s=segment_s,
        delete_oldest=delete_oldest,
        overwrite=overwrite,
        flip=flip,
    )
    with recording, contextlib.ExitStack() as stack:
        progress = progress_bar(show_progress, max_frames)
        stack.callback(progress.close)
        if show_progress and status_every_s > 0 and not sys.stderr.isatty():  # a service's journal
            stack.callback(PeriodicLog(recording.status_line, every_s=status_every_s).start().stop)
        # under systemd (Type=notify): ready, the status, the watchdog; anywhere, what is stuck
        watch = ServiceWatch.of(
            status=recording.status_line,
            tracker=None,
            sinks_busy=recording.sinks_busy,
            source=recording.source,
            heartbeat=heartbeat,
            skip_stuck_sinks=skip_stuck_sinks,
            sinks_aside=recording.sinks_aside,  # said when stuck, skipped all along
        )
        recording.stuck_skipped = lambda: watch.skipping  # with skip_stuck_sinks, those it skips
        watch.tell(recording.sinks)
        stack.enter_context(watch)
        return recording.run(max_frames=max_frames, duration_s=duration_s, on_frame=progress.update)


class Recording:
    """One source's recording (record's, without its progress bar, status lines and
    watch): ``with`` opens the source and the sinks and starts their writers; ``run``
    records until the end, returning the summary or raising as record does;
    ``interrupt``, from another thread, ends it as Ctrl-C would (a rig's cameras recorded
    at once, edge.stream.record_cameras). What a watch looks at: ``sinks_busy``,
    ``sinks_aside``, ``source`` and ``sinks``; ``stuck_skipped``, the uris of the stuck
    sinks it skips (set by the watch)."""

    def __init__(
        self,
        source: str,
        sinks: Sequence[str | Sink],
        *,
        fps: float | None = None,
        reconnect_timeout_s: float | None = None,
        keep_free: int = DEFAULT_KEEP_FREE,
        segment_s: float | None = None,
        delete_oldest: bool = False,
        overwrite: bool = False,
        flip: str = "none",
        camera: str | None = None,
    ) -> None:
        """What record refuses before the source is opened, refused here (as record's).
        ``camera``: its name, of several recorded at once (a viewer's page names it)."""
        from edge.stream.flip import check_flip
        from edge.stream.segments import check_delete_oldest
        from edge.stream.sinks import refuse_earlier_outputs, writes_objects
        from edge.stream.sources import source_file

        check_delete_oldest(delete_oldest, segment_s)
        check_flip(flip)
        if not sinks:
            raise ConfigError(
                "edge record needs at least one sink to write to, e.g. drive.mp4 or dir://frames/"
            )
        self._uris = [sink for sink in sinks if isinstance(sink, str)]
        for uri in self._uris:  # before it would be refused for a file that exists
            if writes_objects(uri):
                raise needs_engines(uri)
        if segment_s is None:  # said before the source opens (a network camera can take its connect timeout)
            refuse_earlier_outputs(self._uris, replace=overwrite, source=source_file(source))
        self.uri, self._given, self._camera = source, list(sinks), camera
        self._fps, self._reconnect_timeout_s, self._keep_free = fps, reconnect_timeout_s, keep_free
        self._segment_s, self._delete_oldest, self._overwrite, self._flip = (
            segment_s,
            delete_oldest,
            overwrite,
            flip,
        )
        self.stuck_skipped: Callable[[], Any] = dict
        self._stack = contextlib.ExitStack()
        self._stop = threading.Event()
        self._stopped_at: float | None = None
        self._t0 = time.perf_counter()
        # a camera's first frame's capture time (its clock is every camera's); None till then,
        # and for a recording's frames, timed by its own media clock
        self.first_capture_ns: int | None = None

    def __enter__(self) -> Recording:
        try:
            self.open_source()
            self.open_sinks()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close what was opened, the sinks' writers first (unforeseen ends; ``run`` finishes
        them itself)."""
        self._stack.close()

    def open_source(self) -> None:
        """Open the source (once): a rig opens every camera before any file is made."""
        from edge.stream.flip import flipped
        from edge.stream.sources import open_source

        if hasattr(self, "source"):
            return
        self._closing = Closing([sink for sink in self._given if not isinstance(sink, str)])
        self._stack.callback(self._closing.close)  # when something unforeseen ends the recording
        self.source = src = flipped(
            open_source(self.uri, reconnect_timeout_s=self._reconnect_timeout_s), self._flip
        )
        self._stack.callback(src.close)
        self._stamped = src.live or getattr(src, "timestamps", None) is not None

    def open_sinks(self) -> None:
        """Open the sinks and start their writers (the source opened first)."""
        from edge.stream.sinks import attach_sinks, open_sinks
        from edge.stream.sources import nominal_rate, source_file
        from edge.stream.video import warn_of_live_videos

        self.open_source()
        src, closing, stack = self.source, self._closing, self._stack
        from_uris = open_sinks(
            self._uris,
            fps=self._fps or nominal_rate(src) or 17.0,
            kinds=(),
            timing="stamped" if self._stamped else "frames",
            keep_free=self._keep_free,
            source=source_file(self.uri),
            segment_s=self._segment_s,
            delete_oldest=self._delete_oldest,
            replace=self._overwrite,
            exact_size=True,  # a recording keeps its frames as they came
        )
        closing.add(from_uris)
        by_uri = iter(from_uris)  # in the order given
        self.sinks = opened = [next(by_uri) if isinstance(sink, str) else sink for sink in self._given]
        for sink in opened:
            check_records_pictures(sink)
        if src.live:
            warn_of_live_videos(opened)
        self.tracker = tracker = LatencyTracker()  # each sink's writes and skips; the viewer charts it
        self._tally = Tally(tracker)
        self._writers = writers = RecordWriters(
            opened, live=src.live, tracker=tracker, on_done=self._tally.done, leave_after_s=STOP_TIMEOUT_S
        )
        attach_sinks(opened, tracker, self._camera)  # the viewer charts the writes, names its camera
        for sink in opened:  # and shows the pictures alone
            pictures_only = getattr(sink, "pictures_only", None)
            if pictures_only is not None:
                pictures_only()
        writers.stuck = lambda: self.stuck_skipped()
        writers.start()
        closing.left_open = writers.at_work  # a sink is not closed under a write in progress
        stack.callback(writers.finish, STOP_TIMEOUT_S)  # before the sinks are closed
        self._t0 = time.perf_counter()

    def sinks_busy(self) -> list[tuple[str, int, float]]:
        return self._writers.busy()

    def sinks_aside(self) -> list[tuple[str, int, float]]:
        return self._writers.busy_watching()

    def progress(self) -> Progress:
        """What a watch looks at (edge.stream.watchdog.Progress): the sinks and the source."""
        from edge.stream.watchdog import Progress

        return Progress(
            tracker=None, sinks_busy=self.sinks_busy, source=self.source, sinks_aside=self.sinks_aside
        )

    def status_line(self) -> str:
        return status_of(self._tally.stats, self._t0)

    def interrupt(self) -> None:
        """End the recording as Ctrl-C would, from another thread: no frame is read after
        it, a read waiting for a camera's frame ends, and the sinks get STOP_TIMEOUT_S to
        write what they were handed."""
        if self._stopped_at is None:
            self._stopped_at = time.monotonic()
        self._stop.set()
        interrupt = getattr(self.source, "interrupt", None)
        if interrupt is not None:
            interrupt()

    def _interrupted_for(self) -> float:
        return 0.0 if self._stopped_at is None else time.monotonic() - self._stopped_at

    def run(
        self,
        *,
        max_frames: int | None = None,
        duration_s: float | None = None,
        on_frame: Callable[[int], object] = lambda n: None,
    ) -> dict[str, Any]:
        """Record until the source ends, ``max_frames`` were handed to the sinks, ``duration_s``
        has passed, Ctrl-C or ``interrupt``; the summary (record's), or record's errors.
        ``on_frame(1)`` after each frame handed over."""
        from edge.stream.steps import frame_rgb

        src, writers, tally = self.source, self._writers, self._tally
        ended: BaseException | None = None
        handed_over = 0
        t0 = self._t0
        try:
            while max_frames is None or handed_over < max_frames:
                if writers.failures or (duration_s is not None and time.perf_counter() - t0 >= duration_s):
                    break
                if self._stop.is_set():
                    ended = KeyboardInterrupt()
                    break
                frame = src.read()
                if frame is None:
                    if self._stop.is_set():  # the read that interrupt ended
                        ended = KeyboardInterrupt()
                    break
                self.tracker.frame_captured()  # the viewer's and /metrics' frames in
                image = frame_rgb(frame)
                t_ns = capture_time(frame, live=src.live) if self._stamped else None
                handed = Result(
                    frame=dataclasses.replace(frame, seq=handed_over, image=image),
                    rendered=image,
                    extras={"t_ns": t_ns},
                )
                # Ctrl-C ends a camera recording, at any moment: a frame goes to every sink
                # (a video and its capture times) and is counted once written, or goes nowhere;
                # but not after STOP_TIMEOUT_S for a sink stuck in a write (a dead disk)
                with StepBoundary() as boundary:
                    if not writers.deliver(
                        handed,
                        give_up=lambda: max(boundary.held_for(), self._interrupted_for()) > STOP_TIMEOUT_S,
                    ):
                        break
                if not handed_over and src.live:
                    self.first_capture_ns = t_ns
                handed_over += 1
                on_frame(1)
        except KeyboardInterrupt as exc:
            ended = exc
        # what was handed to the sinks is written before the summary, which names the files
        # they became (after Ctrl-C, for STOP_TIMEOUT_S at most: a sink stuck inside a write
        # is left open, and the others finished); a sink that cannot be finished (its disk
        # failed) is said, after why the recording ended
        cut_short = writers.finish(STOP_TIMEOUT_S if isinstance(ended, KeyboardInterrupt) else None)
        ended = ended or cut_short
        seconds = time.perf_counter() - t0
        if ended is None and writers.failures:
            ended = writers.failures[0]  # a failed write, or q in a window (KeyboardInterrupt)
        if ended is not None and not isinstance(ended, (KeyboardInterrupt, SinkError)):
            raise ended  # a bug in a sink: the sinks are closed on the way out
        unfinished = self._closing.close()
        interrupted = isinstance(ended, KeyboardInterrupt)
        captured = (tally.first_ns, tally.last_ns)
        skipped = self.tracker.sinks_skipped
        summary = summary_of(
            tally.stats, seconds, self.sinks, captured, skipped=skipped, interrupted=interrupted
        )
        for failure in unfinished[1 if ended is None else 0 :]:
            print(f"warning: {failure}", file=sys.stderr)
        if isinstance(ended, KeyboardInterrupt):
            raise Interrupted(summary, ended) from None
        if ended is not None:
            stopped = RecordingStoppedForGood if isinstance(ended, SinkStopped) else RecordingStopped
            raise stopped(str(ended), summary) from ended
        if unfinished:
            raise RecordingStopped(unfinished[0], summary)
        return summary
