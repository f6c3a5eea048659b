"""The streaming pipeline: capture -> preprocess -> engines (panoptic || depth) -> post -> sinks.

Threads joined by bounded queues, so capture, inference, postprocessing (fusion and
drawing) and the sinks' writing of consecutive frames overlap; each sink writes on a thread
of its own (edge.stream.writers). The two engines run
concurrently on a two-worker pool (ONNX Runtime releases the GIL while it computes). Live
sources never block: when the queue is full the oldest frame is dropped and counted.
Files block instead, so every frame is processed; ``realtime=True`` paces a file at its
own fps, like a camera. In live mode every queue holds one frame, so latency stays
bounded under overload.
"""

from __future__ import annotations

import contextlib
import queue
import sys
import threading
import time
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from edge.errors import ConfigError, SinkError
from edge.latency import LatencyTracker
from edge.postprocess.panoptic import MIN_SCORE, check_min_score
from edge.postprocess.tracks import ObjectTracker
from edge.stream.engines import EngineSet
from edge.stream.fit import check_fit
from edge.stream.frame import Frame, Result
from edge.stream.pacing import FilePace
from edge.stream.sinks import RENDERED_VIEWS, Sink, attach_sinks, views_shown
from edge.stream.sources import Source, nominal_rate, pace_period
from edge.stream.steps import (
    infer_prepared,
    load_frame_steps,
    prepare,
    render_result,
    stream_time_s,
    track_result,
    tracker_seeing,
)
from edge.stream.writers import SinkWriters, left_open_warning

_END = object()
_POLL_S = 0.05
_STOP_TIMEOUT_S = 10.0  # after Ctrl-C, how long the stages get to finish what they hold


def check_post_workers(post_workers: int) -> int:
    """``post_workers`` if it is a whole number >= 1; run_stream and replay check it before
    they open a source, engines or sinks."""
    if isinstance(post_workers, bool) or not isinstance(post_workers, int) or post_workers < 1:
        raise ConfigError(f"post_workers must be a whole number >= 1, got {post_workers!r}")
    return post_workers


class Pipeline:
    def __init__(
        self,
        *,
        source: Source,
        engines: EngineSet,
        sinks: list[Sink],
        tracker: LatencyTracker | None = None,
        max_frames: int | None = None,
        duration_s: float | None = None,
        queue_size: int = 2,
        realtime: bool = False,
        fps: float | None = None,
        on_result: Callable[[Result], None] | None = None,
        views: Collection[str] | None = None,
        post_workers: int = 1,
        end_when_sinks_stop: bool = False,
        object_tracker: ObjectTracker | None = None,
        camera: str | None = None,
        engine_turn: AbstractContextManager[Any] | None = None,
        fit: str | None = None,
        min_score: float = MIN_SCORE,
        start_offset_s: float = 0.0,
    ) -> None:
        """``realtime`` paces a file or folder at ``fps`` (default: the source's own rate)
        and drops frames like a camera; a source without a rate needs ``fps``. ``views``:
        the pictures drawn for each frame (of RENDERED_VIEWS), by default those the sinks
        show at that frame (views_shown; the viewer's only while someone watches): a run
        whose sinks only write what was found, or nothing, draws none (the panoptic fusion
        is always done; ``on_result`` gets ``rendered`` None then). ``post_workers``:
        frames fused and drawn at once, on threads of their own (the sinks still get them
        in order); more than one pays where the engines leave the CPU free (a GPU) and the
        post stage sets the rate. ``end_when_sinks_stop``: the stream ends once every sink
        has stopped for good (``sinks_stopped_all`` then says so): it would write nothing.
        ``duration_s``: no frame is read once that long has passed since the first read (the
        stream then ends as at the source's end; a camera's read in progress is waited for).
        ``on_result``: each frame once every sink has written it (or, live, skipped it:
        edge.stream.writers), on a sink's thread, one frame at a time. ``object_tracker``: what
        gives the instances their tracks, in frame order (default: an ObjectTracker of its
        defaults); a file's frames are timed by its own rate (else ``fps``). ``camera``: the
        name each frame carries (``frame.meta["camera"]``; the objects' lines say it), when
        several cameras run at once; ``engine_turn``: held around each frame's engines, so
        that the pipelines sharing one EngineSet take turns at it (edge.stream.multicam); the wait
        for it is the stage ``turn``. ``fit``: how this source's frames go into the engines
        if not as the engines' ``fit`` says (edge.stream.fit), one camera's of several.
        ``min_score``: the lowest detection score a thing is kept at (0 to 1). ``start_offset_s``:
        how much later than another camera's this recording began (edge.stream.pacing)."""
        self._post_workers = check_post_workers(post_workers)
        period = pace_period(source, realtime=realtime, fps=fps)
        # a recording with its capture times is replayed at them, unless --fps sets a rate
        self.paced_by_timestamps = (
            bool(period) and fps is None and getattr(source, "timestamps", None) is not None
        )
        self.source = source
        self.engines = engines
        self.sinks = sinks
        self.tracker = tracker or LatencyTracker()
        self.fit = check_fit(fit) if fit is not None else engines.fit
        self.min_score = check_min_score(min_score)
        self.tracker.describe(engines, fit=self.fit)
        self.max_frames = max_frames
        self.duration_s = duration_s
        self.realtime = realtime
        self.on_result = on_result
        self.object_tracker = tracker_seeing(object_tracker or ObjectTracker(), source, engines.kinds)
        self.camera = camera
        self._engine_turn: AbstractContextManager[Any] = engine_turn or nullcontext()
        self._shares_engines = engine_turn is not None
        follow = getattr(engine_turn, "follow", None)
        if follow is not None:  # a seat of a rank keeps its turn for a frame already waiting
            follow(self._next_frame_ready)
        # the objects' speeds are the recording's, whatever rate it is read or paced at
        # (cityscapes://DIR?fps=0 has no pace, but was recorded at 17 Hz); --fps gives a
        # folder of images the rate it has not
        self._rate = getattr(source, "media_fps", None) or nominal_rate(source) or fps
        # how a file's frames are handed on: paced, or in drive order with other cameras' (set
        # before ``run`` by edge.stream.pacing.drive_order), or as read
        self.pace = FilePace(
            period=period, by_timestamps=self.paced_by_timestamps, offset_s=start_offset_s, rate=self._rate
        )
        # None: asked of the sinks for each frame (the viewer draws only while watched)
        self.views = None if views is None else frozenset(views)
        if self.views is not None and not self.views <= set(RENDERED_VIEWS):
            raise ConfigError(f"views {sorted(self.views)} are not among {RENDERED_VIEWS}")
        # live: one waiting frame at most, always the newest, so a frame waits for at most one
        # inference (benchmarks/results/overload_cpu.json: p99 1.9x -> 1.6x one frame's time)
        self._live = source.live or realtime
        keeps_rate = getattr(source, "keeps_rate", False)
        self.tracker.pacing = (
            "live" if source.live else "realtime" if realtime else "source" if keeps_rate else "file"
        )
        self.tracker.pace_fps = source.fps if keeps_rate and not realtime else None
        self.tracker.pace_hint = getattr(source, "pace_hint", None)
        self._frames: queue.Queue[Any] = queue.Queue(maxsize=1 if self._live else queue_size)
        # live: a frame waits at most one frame's time between any two stages
        later = 1 if self._live else queue_size
        self._results: queue.Queue[Any] = queue.Queue(maxsize=later)
        # with several post workers the frames they hold wait here, in order, for the sink stage
        self._posted: queue.Queue[Any] = queue.Queue(maxsize=max(later, post_workers))
        self._stop = threading.Event()
        self._deadline: float | None = None  # once interrupted: until when the stages are waited for
        self._errors: list[BaseException] = []
        # the uris of the sinks stuck in a write that the run skips (--stuck-sink skip; set by
        # ServiceWatch.for_pipeline): the stream's end waits _STOP_TIMEOUT_S at most for them
        self.stuck_skipped: Callable[[], Collection[str]] = tuple
        self._writers = SinkWriters(
            sinks,
            tracker=self.tracker,
            live=self._live,
            depth=queue_size,
            stopping=self._stop,
            stop=self.stop,
            on_done=self._done,
            on_error=self._fail,
            end_when_sinks_stop=end_when_sinks_stop,
        )
        attach_sinks(sinks, self.tracker, camera)

    @property
    def sinks_stopped_all(self) -> bool:
        """Whether every sink has stopped for good (there was one at least)."""
        return self._writers.stopped_all

    def sinks_busy(self) -> list[tuple[str, int, float]]:
        """The sinks inside a write: uri, frame, seconds it has taken so far."""
        return self._writers.busy()

    def stop(self) -> None:
        """Ask the stages to end. A live source waiting for a frame is woken too: a stalled
        camera would otherwise hold the capture stage until it delivers again."""
        self._stop.set()
        interrupt = getattr(self.source, "interrupt", None)
        if interrupt is not None:
            interrupt()

    def interrupt(self) -> None:
        """Ctrl-C's stop, from another thread (the run of several cameras): the stages get
        _STOP_TIMEOUT_S to finish what they hold, then ``run`` finishes the sinks that are not
        inside a write and returns."""
        self.stop()
        if self._deadline is None:
            self._deadline = time.monotonic() + _STOP_TIMEOUT_S

    def _put(self, q: queue.Queue[Any], item: Any) -> bool:
        while not self._stop.is_set():
            with contextlib.suppress(queue.Full):
                q.put(item, timeout=_POLL_S)
                return True
        return False

    def _get(self, q: queue.Queue[Any]) -> Any:
        while True:
            with contextlib.suppress(queue.Empty):
                return q.get(timeout=_POLL_S)
            if self._stop.is_set() and q.empty():
                return _END

    def _done(self, result: Result) -> None:
        """A frame every sink has written (or skipped): to ``on_result``, read at each frame."""
        if self.on_result is not None:
            self.on_result(result)

    def _fail(self, exc: BaseException) -> None:
        """An error that ends the run (raised by ``run``)."""
        self._errors.append(exc)
        self.stop()

    def _guard(self, fn: Callable[[], None], done: threading.Event) -> Callable[[], None]:
        def run() -> None:
            try:
                fn()
            except BaseException as exc:
                self._fail(exc)
            finally:
                done.set()

        return run

    def _capture(self) -> None:
        count = 0
        start = time.perf_counter()
        self.pace.begin()
        try:
            while not self._stop.is_set() and (self.max_frames is None or count < self.max_frames):
                if self.duration_s is not None and time.perf_counter() - start >= self.duration_s:
                    break
                self.pace.reading()  # in drive order, the other cameras wait for this read: not for ever
                frame = self.source.read()
                if frame is None:
                    self.tracker.frames_undecodable(int(getattr(self.source, "undecodable_at_end", 0)))
                    break
                if self.camera is not None:
                    frame.meta["camera"] = self.camera
                # a paced file's frame arrives when a camera would send it; one in drive order, in turn
                if not self.source.live and not self.pace.hand_on(frame, self._stop):
                    break
                count += 1
                self._account(frame)
                if self._live:
                    self._put_latest(frame)
                elif not self._put(self._frames, frame):
                    break
        finally:
            self.pace.end()
            self._put_end(self._frames)

    def _account(self, frame: Frame) -> None:
        # a live capture thread reports what it replaced before we read, and outages
        dropped, undecodable, gap_ms = frame.losses()
        self.tracker.frame_captured(dropped + 1)
        if dropped:
            self.tracker.frame_dropped(dropped)
        if undecodable:
            self.tracker.frames_undecodable(undecodable)
        if gap_ms is not None:
            self.tracker.source_gap(gap_ms)

    def _put_latest(self, frame: Frame) -> None:
        """Hand over without blocking: a full queue loses its oldest frame."""
        while True:
            try:
                self._frames.put_nowait(frame)
                return
            except queue.Full:
                with contextlib.suppress(queue.Empty):
                    self._frames.get_nowait()
                    self.tracker.frame_dropped()

    def _put_end(self, q: queue.Queue[Any]) -> None:
        while True:  # the end marker must arrive even when stopping
            try:
                q.put(_END, timeout=_POLL_S)
                return
            except queue.Full:
                with contextlib.suppress(queue.Empty):
                    if self._stop.is_set():
                        q.get_nowait()

    def _next_frame_ready(self) -> bool:
        """Whether, as a turn at shared engines ends, this camera would start its next one at
        once: a frame waits, and the post stage has room for the result in hand (else the
        engines would sit idle, kept, while this camera waits for its own post stage)."""
        return not self._stop.is_set() and not self._frames.empty() and not self._results.full()

    def _infer(self) -> None:
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="edge-engine") as pool:
            try:
                while (frame := self._get(self._frames)) is not _END:
                    # before the turn: the other cameras' frames use the engines meanwhile
                    prepared = prepare(self.engines, frame, self.tracker, self.fit)
                    asked = time.perf_counter_ns()
                    with self._engine_turn:
                        if self._shares_engines:  # how long the other cameras held them
                            self.tracker.record(frame.seq, "turn", asked, time.perf_counter_ns())
                        result = infer_prepared(self.engines, prepared, self.tracker, pool)
                    if not self._put(self._results, result):
                        break
            finally:
                close = getattr(self._engine_turn, "close", None)
                if close is not None:  # a turn kept for a next frame that will not come
                    close()
                self._put_end(self._results)

    def _render(
        self, result: Result, after: threading.Event | None = None, tracked: threading.Event | None = None
    ) -> Result:
        """Fuse, track and draw a frame: its tracks once the frame before has its own
        (``after``), then ``tracked`` is set, so that the frame after goes on."""
        with self.tracker.stage(result.frame.seq, "postprocess"):
            views = self.views if self.views is not None else views_shown(self.sinks)
            result.rendered = render_result(
                result,
                self.engines.depth_range,
                views,
                track=lambda r: self._track(r, after, tracked),
                min_score=self.min_score,
            )
        return result

    def _track(self, result: Result, after: threading.Event | None, tracked: threading.Event | None) -> None:
        if after is not None:
            after.wait()  # the tracks go on from frame to frame, in order
        frame = result.frame
        try:
            with self.tracker.stage(frame.seq, "tracks"):
                t_s = stream_time_s(frame, live=self.source.live, rate=self._rate)
                track_result(result, self.object_tracker, t_s)
        finally:
            if tracked is not None:
                tracked.set()

    def _post(self) -> None:
        if self._post_workers > 1:
            self._post_on_workers()
            return
        try:
            while (result := self._get(self._results)) is not _END:
                if not self._pass_on(self._render(result)):
                    break
        finally:
            self._close_writers()

    def _post_on_workers(self) -> None:
        """Each frame fused and drawn on a worker, its tracks given in turn (each worker
        waits for the frame before's, which a worker took earlier); its future goes to the
        sink stage in frame order, so the sinks wait for the frames in the order they came."""
        with ThreadPoolExecutor(self._post_workers, thread_name_prefix="edge-post") as pool:
            before: threading.Event | None = None
            try:
                while (result := self._get(self._results)) is not _END:
                    tracked = threading.Event()
                    future = pool.submit(self._render_in_turn, result, before, tracked)
                    before = tracked
                    if not self._put(self._posted, future):
                        break
            finally:
                self._put_end(self._posted)

    def _render_in_turn(
        self, result: Result, after: threading.Event | None, tracked: threading.Event
    ) -> Result:
        try:
            return self._render(result, after, tracked)
        finally:
            tracked.set()  # also when the frame failed, or had nothing to track

    def _close_writers(self) -> None:
        """The sinks write what they were handed; one stuck in a write that the run skips is
        left to it (and open) after _STOP_TIMEOUT_S, so the others are finished."""
        self._writers.close(
            may_leave=lambda index: self.sinks[index].uri in self.stuck_skipped(),
            leave_after_s=_STOP_TIMEOUT_S,
        )

    def _pass_on(self, result: Result) -> bool:
        """Hand a postprocessed frame to the sinks; False when stopping. Each sink writes on
        a thread of its own (edge.stream.writers): a video's encoding (or a replay's
        evaluation in on_result) overlaps the next frame's fusion and drawing, which is
        what sets the rate when the engines run on a GPU, and a slow sink holds up no
        other. Handed over here, by the post stage itself, a frame waits in no queue more
        than it did when one thread wrote every sink."""
        return self._writers.deliver(result)

    def _sink(self) -> None:
        """With several post workers: their frames to the sinks, in order."""
        try:
            while (item := self._get(self._posted)) is not _END:
                # a worker's error is raised here, and ends the run as a post stage error would
                if not self._pass_on(item.result()):
                    break
        finally:
            self._close_writers()

    def run(self) -> dict[str, Any]:
        """Process the source to its end (or max_frames, duration_s); returns the latency summary."""
        # the main thread waits on events, not Thread.join: a join that Ctrl-C interrupts
        # marks a running thread as stopped (CPython 3.11), so the source was closed under a
        # capture still inside OpenCV, and the interpreter aborted on exit
        # ("FATAL: exception not rethrown") when that daemon thread woke up
        load_frame_steps()  # before the source starts: it is not the first frame's time
        stages: list[Callable[[], None]] = [self._capture, self._infer, self._post]
        if self._post_workers > 1:  # the workers' frames in order to the sinks
            stages.append(self._sink)
        done = {fn.__name__.strip("_"): threading.Event() for fn in stages}
        threads = [
            threading.Thread(target=self._guard(fn, done[name]), name=f"edge-{name}", daemon=True)
            for fn, name in zip(stages, done, strict=True)
        ]
        self._writers.start()
        for t in threads:
            t.start()
        try:
            self._wait(done)
        except KeyboardInterrupt:
            self.interrupt()
            self._wait(done)  # a second interrupt ends this wait; the CLI holds it back
            raise
        finally:
            self._finish(done, self._deadline)
        if self._errors:
            raise self._errors[0]
        return self.tracker.summary()

    def _wait(self, done: dict[str, threading.Event]) -> None:
        """Until every stage is done, or, once interrupted, the deadline has passed."""
        for event in done.values():
            while not event.wait(timeout=0.2):
                if self._deadline is not None and time.monotonic() >= self._deadline:
                    return

    def abandon(self) -> None:
        """Close the sinks and the source of a pipeline that will not run (a later camera's
        failed to open)."""
        for sink in self.sinks:
            with contextlib.suppress(Exception):
                sink.close()
        self.source.close()

    def _close(self, sink: Sink) -> None:
        """Finish ``sink``; one that cannot be finished (a video whose disk filled) is said
        and counted, as a failed write is, and the others are still finished."""
        from edge.stream.segments import SegmentedSink

        try:
            sink.close()
        except Exception as exc:
            self.tracker.sink_failed()
            what = f"sink {sink.uri!r}: {type(exc).__name__}: {exc}"
            if isinstance(exc, SinkError):
                what = str(exc)
            self.tracker.sink_unfinished(sink.uri, what)  # in the summary, after the warning scrolled by
            print(f"warning: {what}", file=sys.stderr)
        # a sink several cameras share is finished by the last of them (SharedSink.finished)
        written = getattr(sink, "finished", sink)
        if isinstance(written, SegmentedSink):  # the summary names the files it became
            self.tracker.segments_written(written.uri, [str(p) for p in written.files], len(written.deleted))

    def _finish(self, done: dict[str, threading.Event], deadline: float | None) -> None:
        # sinks are finalised even after an error or Ctrl-C, so the video stays playable;
        # a stage that has not stopped keeps what it is using: closing a video under a
        # read or a write in progress crashes inside OpenCV
        stuck = [name for name, event in done.items() if not event.is_set()]
        if stuck:
            cut_short = deadline is not None and time.monotonic() < deadline
            waited = "before a second interrupt" if cut_short else f"within {_STOP_TIMEOUT_S:g} s"
            print(
                f"warning: pipeline stage(s) {', '.join(stuck)} did not stop {waited}; "
                "what they hold is left open",
                file=sys.stderr,
            )
        for index, sink in enumerate(self.sinks):
            at_work = self._writers.at_work(index)
            if at_work is None:  # not one still inside a write
                self._close(sink)
            elif at_work[0] >= 0:
                print(left_open_warning(sink.uri, at_work), file=sys.stderr)
        if done["capture"].is_set():
            self.source.close()
