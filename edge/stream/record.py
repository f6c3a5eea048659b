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
from collections.abc import Callable, Collection, Sequence
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
from edge.stream.watchdog import ServiceWatch
from edge.util.interrupts import StepBoundary
from edge.util.progress import PeriodicLog

if TYPE_CHECKING:
    from edge.stream.sinks import Sink

# how far the capture rate may be from a video's before the summary says how fast it plays
RATE_TOLERANCE = 0.1
# frames each sink's queue holds when recording a file (a camera's: one, edge.stream.writers)
DEPTH = 2
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
    from edge.stream.flip import check_flip, flipped
    from edge.stream.heartbeat import check_unshared
    from edge.stream.segments import check_delete_oldest
    from edge.stream.sinks import check_written_file, open_sinks, refuse_earlier_outputs, writes_objects
    from edge.stream.sources import nominal_rate, open_source, source_file
    from edge.stream.steps import frame_rgb
    from edge.stream.video import warn_if_mp4

    check_delete_oldest(delete_oldest, segment_s)
    check_flip(flip)
    if heartbeat is not None:
        check_written_file("heartbeat", heartbeat, source)
        check_unshared(heartbeat)
    if not sinks:
        raise ConfigError("edge record needs at least one sink to write to, e.g. drive.mp4 or dir://frames/")
    uris = [sink for sink in sinks if isinstance(sink, str)]
    for uri in uris:  # before it would be refused for a file that exists
        if writes_objects(uri):
            raise _needs_engines(uri)
    if segment_s is None:  # said before the source opens (a network camera can take its connect timeout)
        refuse_earlier_outputs(uris, replace=overwrite, source=source_file(source))
    given = [sink for sink in sinks if not isinstance(sink, str)]
    closing = _Closing(given)  # videos renamed into place, last opened first
    with contextlib.ExitStack() as stack:
        stack.callback(closing.close)  # when something unforeseen ends the recording
        src = flipped(open_source(source, reconnect_timeout_s=reconnect_timeout_s), flip)
        stack.callback(src.close)
        stamped = src.live or getattr(src, "timestamps", None) is not None
        from_uris = open_sinks(
            uris,
            fps=fps or nominal_rate(src) or 17.0,
            kinds=(),
            timing="stamped" if stamped else "frames",
            keep_free=keep_free,
            source=source_file(source),
            segment_s=segment_s,
            delete_oldest=delete_oldest,
            replace=overwrite,
            exact_size=True,  # a recording keeps its frames as they came
        )
        closing.add(from_uris)
        by_uri = iter(from_uris)  # in the order given
        opened = [next(by_uri) if isinstance(sink, str) else sink for sink in sinks]
        for sink in opened:
            _check_records_pictures(sink)
        if src.live:
            warn_if_mp4(opened)
        tracker = LatencyTracker()  # each sink's writes and skips; the viewer charts it
        tally = _Tally(tracker)
        stats = tally.stats
        writers = _RecordWriters(opened, live=src.live, tracker=tracker, on_done=tally.done)
        for sink in opened:  # the viewer shows the pictures alone, and charts the writes
            attach, pictures_only = getattr(sink, "attach", None), getattr(sink, "pictures_only", None)
            if attach is not None:
                attach(tracker)
            if pictures_only is not None:
                pictures_only()
        writers.start()
        closing.left_open = writers.at_work  # a sink is not closed under a write in progress
        stack.callback(writers.finish, STOP_TIMEOUT_S)  # before the sinks are closed
        progress = _progress(show_progress, max_frames)
        stack.callback(progress.close)
        t0 = time.perf_counter()
        if show_progress and status_every_s > 0 and not sys.stderr.isatty():  # a service's journal
            stack.callback(PeriodicLog(lambda: _status(stats, t0), every_s=status_every_s).start().stop)
        # under systemd (Type=notify): ready, the status, the watchdog; anywhere, what is stuck
        watch = ServiceWatch.of(
            status=lambda: _status(stats, t0),
            tracker=None,
            sinks_busy=writers.busy,
            source=src,
            heartbeat=heartbeat,
            skip_stuck_sinks=skip_stuck_sinks,
            sinks_aside=writers.busy_watching,  # said when stuck, skipped all along
        )
        writers.stuck = lambda: watch.skipping  # with skip_stuck_sinks, those it skips
        watch.tell(opened)
        stack.enter_context(watch)
        ended: BaseException | None = None
        handed_over = 0
        try:
            while max_frames is None or handed_over < max_frames:
                if writers.failures or (duration_s is not None and time.perf_counter() - t0 >= duration_s):
                    break
                frame = src.read()
                if frame is None:
                    break
                tracker.frame_captured()  # the viewer's and /metrics' frames in
                image = frame_rgb(frame)
                t_ns = _capture_time(frame, live=src.live) if stamped else None
                handed = Result(
                    frame=dataclasses.replace(frame, seq=handed_over, image=image),
                    rendered=image,
                    extras={"t_ns": t_ns},
                )
                # Ctrl-C ends a camera recording, at any moment: a frame goes to every sink
                # (a video and its capture times) and is counted once written, or goes nowhere;
                # but not after STOP_TIMEOUT_S for a sink stuck in a write (a dead disk)
                with StepBoundary() as boundary:
                    if not writers.deliver(handed, give_up=lambda: boundary.held_for() > STOP_TIMEOUT_S):
                        break
                handed_over += 1
                progress.update(1)
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
        unfinished = closing.close()
        interrupted = isinstance(ended, KeyboardInterrupt)
        captured = (tally.first_ns, tally.last_ns)
        skipped = tracker.sinks_skipped
        summary = _summary(stats, seconds, opened, captured, skipped=skipped, interrupted=interrupted)
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


class _Closing:
    """Closes the sinks once, last opened first, and keeps what could not be finished (a
    video whose disk failed) instead of raising it, so that every sink is closed and the
    reason the recording ended is not replaced by it."""

    def __init__(self, sinks: Sequence[Any]) -> None:
        self._sinks = list(sinks)
        self.failures: list[str] = []
        # a sink's thread still at work, as (frame, seconds inside it): it is left open
        self.left_open: Callable[[Any], tuple[int, float] | None] = lambda sink: None

    def add(self, sinks: Sequence[Any]) -> None:
        """Sinks opened later, to be closed first."""
        self._sinks.extend(sinks)

    def close(self) -> list[str]:
        """Close the sinks not closed yet; every failure so far, as messages."""
        while self._sinks:
            sink = self._sinks.pop()
            at_work = self.left_open(sink)
            if at_work is not None:  # closing a video under a write crashes inside OpenCV
                from edge.stream.writers import left_open_warning

                print(left_open_warning(sink.uri, at_work), file=sys.stderr)
                continue
            try:
                sink.close()
            except SinkError as exc:
                self.failures.append(str(exc))
            except OSError as exc:
                self.failures.append(f"sink {sink.uri!r} could not be finished: {exc}")
        return self.failures


class _RecordWriters:
    """The sinks' threads (edge.stream.writers) with edge record's rules, and the failures
    that end the recording: the first is why."""

    def __init__(
        self, sinks: Sequence[Any], *, live: bool, tracker: LatencyTracker, on_done: Callable[[Result], None]
    ) -> None:
        from edge.stream.writers import SinkWriters

        self.failures: list[BaseException] = []
        self.stuck: Callable[[], Collection[str]] = tuple  # the uris of the stuck sinks skipped
        self._stopping = threading.Event()
        self._writers = SinkWriters(
            list(sinks),
            tracker=tracker,
            live=live,
            depth=DEPTH,
            stopping=self._stopping,
            stop=self._stopping.set,
            on_done=on_done,
            on_error=self._failed,
            # a recording with holes is not one: only a window or the viewer skips frames, and
            # a sink stuck in a write once the watch skips it (--stuck-sink skip)
            may_skip=lambda sink: bool(getattr(sink, "for_watching", False)) or sink.uri in self.stuck(),
            end_on_failure=True,
            write=_write_picture,
        )
        self.start, self.deliver = self._writers.start, self._writers.deliver
        self._sinks, self._live = list(sinks), live
        self._finished = False

    def finish(self, timeout_s: float | None = None) -> KeyboardInterrupt | None:
        """Let the sinks write what they were handed, waiting ``timeout_s`` at most (once:
        later calls return at once), and STOP_TIMEOUT_S at most for a sink the recording
        already skips (``stuck``: stuck inside a write, --stuck-sink skip): a recording that
        ends by itself finishes the others, which a dead disk would otherwise hold for ever.
        An interrupt that cut the wait short is returned."""
        if self._finished:
            return None
        self._finished = True
        try:
            self._writers.close(
                timeout_s,
                may_leave=lambda index: self._sinks[index].uri in self.stuck(),
                leave_after_s=STOP_TIMEOUT_S,
            )
        except KeyboardInterrupt as exc:
            return exc
        return None

    def at_work(self, sink: Any) -> tuple[int, float] | None:
        """SinkWriters.at_work of ``sink``: None once its thread has ended (it may be closed)."""
        return self._writers.at_work(next(i for i, s in enumerate(self._sinks) if s is sink))

    def busy(self) -> list[tuple[str, int, float]]:
        """The sinks inside a write that hold the recording: not one for watching behind a
        camera, which skips its frames (a window that hangs stops only itself)."""
        watching = self._watching()
        return [b for b in self._writers.busy() if b[0] not in watching]

    def busy_watching(self) -> list[tuple[str, int, float]]:
        """The sinks for watching inside a write, behind a camera: they hold nothing."""
        watching = self._watching()
        return [b for b in self._writers.busy() if b[0] in watching]

    def _watching(self) -> set[str]:
        if not self._live:  # a file's recording waits for every sink
            return set()
        return {s.uri for s in self._sinks if getattr(s, "for_watching", False)}

    def _failed(self, exc: BaseException) -> None:
        self.failures.append(exc)
        self._stopping.set()


def _write_picture(sink: Any, result: Result) -> None:
    # the frame's capture time, or the recorded one (None: a file without capture times)
    sink.write(result.rendered, result.frame.seq, result.extras["t_ns"])


class _Tally:
    """What every sink has written: the frames, what the source lost before them, and the
    first and the last capture times. A frame counts once done (edge.stream.writers), so
    the one a sink failed to write, and those after it, do not."""

    def __init__(self, tracker: LatencyTracker) -> None:
        self._tracker = tracker  # the losses go there too, for the viewer
        self.stats: dict[str, Any] = {
            "frames": 0,
            "dropped": 0,
            "undecodable": 0,
            "reconnects": 0,
            "seconds_without_frames": 0.0,
        }
        self.first_ns: int | None = None
        self.last_ns: int | None = None

    def done(self, result: Result) -> None:
        """``result`` was written by every sink (one frame at a time, not always in order)."""
        dropped, undecodable, gap_ms = result.frame.losses()
        stats = self.stats
        stats["frames"] += 1
        stats["dropped"] += dropped
        stats["undecodable"] += undecodable
        self._tracker.frame_dropped(dropped)
        self._tracker.frames_undecodable(undecodable)
        if gap_ms is not None:
            stats["reconnects"] += 1
            stats["seconds_without_frames"] += gap_ms / 1e3
            self._tracker.source_gap(gap_ms)
        t_ns = result.extras["t_ns"]
        if t_ns is not None:
            self.first_ns = t_ns if self.first_ns is None else min(self.first_ns, t_ns)
            self.last_ns = t_ns if self.last_ns is None else max(self.last_ns, t_ns)


def _capture_time(frame: Any, *, live: bool) -> int | None:
    """When a frame was captured: now for a camera, the recorded time for a recording."""
    if live:
        return int(frame.t_capture_ns)
    media_ms = frame.meta.get("media_ms")
    return None if media_ms is None else round(float(media_ms) * 1e6)


def _check_records_pictures(sink: Any) -> None:
    # a panoptic or depth view was refused by open_sinks already: no engine runs here; the
    # viewer, which takes results in edge run, shows the pictures alone
    if hasattr(sink, "write_result") and not getattr(sink, "for_watching", False):
        raise _needs_engines(sink.uri)


def _needs_engines(uri: str) -> SinkError:
    return SinkError(
        f"sink {uri!r} needs what the engines found (use edge run); edge record writes pictures: "
        "a video file, dir://FOLDER, display://, http://HOST:PORT (the viewer) or null://"
    )


def _progress(enabled: bool, total: int | None) -> Any:
    from tqdm import tqdm

    # disable=None: shown on a terminal only, so a log or a pipe gets the summary alone
    return tqdm(total=total, unit="frame", desc="recording", disable=None if enabled else True, leave=False)


def _status(stats: dict[str, Any], t0: float) -> str:
    seconds = time.perf_counter() - t0
    fps = stats["frames"] / max(seconds, 1e-9)
    return (
        f"recording: {stats['frames']} frames in {seconds:.0f} s ({fps:.1f} fps)"
        f"  dropped {stats['dropped']}  reconnects {stats['reconnects']}"
    )


def _summary(
    stats: dict[str, Any],
    seconds: float,
    sinks: Sequence[Any],
    captured: tuple[int | None, int | None],
    *,
    skipped: dict[str, int],
    interrupted: bool,
) -> dict[str, Any]:
    from edge.stream.segments import SegmentedSink, SegmentedVideoSink
    from edge.stream.sinks import VideoSink

    videos = [sink for sink in sinks if isinstance(sink, (VideoSink, SegmentedVideoSink))]
    first_ns, last_ns = captured
    span_s = (last_ns - first_ns) / 1e9 if first_ns is not None and last_ns is not None else 0.0
    return {
        **stats,
        "seconds": seconds,
        "fps": stats["frames"] / seconds if seconds > 0 else 0.0,
        # the rate a video plays at, and the rate its frames were captured at
        "video_fps": videos[0].fps if videos else None,
        "captured_fps": (stats["frames"] - 1) / span_s if span_s > 0 else None,
        "sinks": [sink.uri for sink in sinks],
        "timestamps": [
            str(p)
            for sink in sinks
            if sink.frames and (p := getattr(sink, "timestamps_path", None)) and p.exists()
        ]
        + [str(p) for sink in sinks for p in getattr(sink, "timestamps_paths", ())],
        # the files (folders) of each segmented sink, in order
        "segments": {s.uri: [str(p) for p in s.files] for s in sinks if isinstance(s, SegmentedSink)},
        "deleted_segments": sum(len(s.deleted) for s in sinks if isinstance(s, SegmentedSink)),
        # the frames a window or the viewer skipped, slower than the camera, or a sink stuck
        # in a write (--stuck-sink skip): {uri: count}
        "sinks_skipped": dict(skipped),
        "sinks_for_watching": [s.uri for s in sinks if getattr(s, "for_watching", False)],
        # what each sink holds: more than "frames" where others wrote on after one failed
        "sinks_frames": {s.uri: s.frames for s in sinks if isinstance(getattr(s, "frames", None), int)},
        "interrupted": interrupted,
    }


def format_summary(summary: dict[str, Any]) -> str:
    """One line for people: what was recorded, how fast, and what the source lost."""
    line = (
        f"recorded {summary['frames']} frames in {summary['seconds']:.1f} s ({summary['fps']:.1f} fps) "
        f"to {', '.join(summary['sinks'])}"
    )
    lost = [
        f"{summary[key]} {what}"
        for key, what in (("dropped", "dropped by the camera"), ("undecodable", "undecodable"))
        if summary[key]
    ]
    if summary["reconnects"]:
        lost.append(
            f"{summary['reconnects']} reconnect(s), {summary['seconds_without_frames']:.1f} s without frames"
        )
    line += f"; {', '.join(lost)}" if lost else ""
    video, captured = summary.get("video_fps"), summary.get("captured_fps")
    if video and captured and abs(video / captured - 1) > RATE_TOLERANCE:
        # a player shows the frames at the video's rate, not at the capture times beside it
        matching = f"{captured:.0f}" if captured >= 1 else f"{captured:.2g}"  # --fps takes no 0
        line += (
            f"; the video plays at {video:g} fps but its frames were captured at {captured:.1f} fps, so "
            f"a player shows it at {video / captured:.2g}x speed (edge run --realtime keeps the capture "
            f"times; --fps {matching} writes the video at their rate)"
        )
    for uri, files in (summary.get("segments") or {}).items():
        names = files if len(files) <= 2 else [files[0], "…", files[-1]]
        line += f"; {uri} in {len(files)} segment(s): {', '.join(names)}"
    held = summary.get("sinks_frames") or {}
    if any(count > summary["frames"] for count in held.values()):  # the others went on past a failed one
        line += f"; the sinks hold {', '.join(f'{uri} {count}' for uri, count in held.items())}"
    for uri, count in (summary.get("sinks_skipped") or {}).items():
        why = "slower than the camera (the recording has them)"
        if uri not in summary.get("sinks_for_watching", ()):
            why = "while stuck inside a write (--stuck-sink skip)"
        line += f"; {uri} skipped {count} frame(s), {why}"
    if summary.get("deleted_segments"):
        line += f"; {summary['deleted_segments']} oldest segment(s) deleted for room (--delete-oldest)"
    if summary.get("timestamps"):
        shown = summary["timestamps"]
        shown = shown if len(shown) <= 2 else [*shown[:1], f"… ({len(shown)} files)"]
        line += f"; capture times in {', '.join(shown)}"
    return line
