"""edge record's parts: the sinks closed once (Closing), their writers with the recording's
rules (RecordWriters), what every sink has written (Tally), and the summary and its line."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Collection, Sequence
from typing import Any

from edge.errors import SinkError
from edge.latency import LatencyTracker
from edge.stream.frame import Result

# how far the capture rate may be from a video's before the summary says how fast it plays
RATE_TOLERANCE = 0.1
# frames each sink's queue holds when recording a file (a camera's: one, edge.stream.writers)
DEPTH = 2


class Closing:
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


class RecordWriters:
    """The sinks' threads (edge.stream.writers) with edge record's rules, and the failures
    that end the recording: the first is why."""

    def __init__(
        self,
        sinks: Sequence[Any],
        *,
        live: bool,
        tracker: LatencyTracker,
        on_done: Callable[[Result], None],
        leave_after_s: float,
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
            write=write_picture,
        )
        self.start, self.deliver = self._writers.start, self._writers.deliver
        self._sinks, self._live = list(sinks), live
        self._leave_after_s = leave_after_s
        self._finished = False

    def finish(self, timeout_s: float | None = None) -> KeyboardInterrupt | None:
        """Let the sinks write what they were handed, waiting ``timeout_s`` at most (once:
        later calls return at once), and ``leave_after_s`` at most for a sink the recording
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
                leave_after_s=self._leave_after_s,
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


def write_picture(sink: Any, result: Result) -> None:
    # the frame's capture time, or the recorded one (None: a file without capture times)
    sink.write(result.rendered, result.frame.seq, result.extras["t_ns"])


class Tally:
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


def capture_time(frame: Any, *, live: bool) -> int | None:
    """When a frame was captured: now for a camera, the recorded time for a recording."""
    if live:
        return int(frame.t_capture_ns)
    media_ms = frame.meta.get("media_ms")
    return None if media_ms is None else round(float(media_ms) * 1e6)


def check_records_pictures(sink: Any) -> None:
    # a panoptic or depth view was refused by open_sinks already: no engine runs here; the
    # viewer, which takes results in edge run, shows the pictures alone
    if hasattr(sink, "write_result") and not getattr(sink, "for_watching", False):
        raise needs_engines(sink.uri)


def needs_engines(uri: str) -> SinkError:
    return SinkError(
        f"sink {uri!r} needs what the engines found (use edge run); edge record writes pictures: "
        "a video file, dir://FOLDER, display://, http://HOST:PORT (the viewer) or null://"
    )


def progress_bar(enabled: bool, total: int | None) -> Any:
    from tqdm import tqdm

    # disable=None: shown on a terminal only, so a log or a pipe gets the summary alone
    return tqdm(total=total, unit="frame", desc="recording", disable=None if enabled else True, leave=False)


def status_of(stats: dict[str, Any], t0: float) -> str:
    seconds = time.perf_counter() - t0
    fps = stats["frames"] / max(seconds, 1e-9)
    return (
        f"recording: {stats['frames']} frames in {seconds:.0f} s ({fps:.1f} fps)"
        f"  dropped {stats['dropped']}  reconnects {stats['reconnects']}"
    )


def summary_of(
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
