"""Each sink writes on a thread of its own, so one slow sink holds up no other.

A video on a slow SD card waits for its disk: when segments are finished more slowly than
they are recorded, or when the kernel makes the writes wait for dirty pages to reach the
card. Written one after another on one thread, every sink waited with it, and in a live run
so did the engines (benchmarks/sink_threads.py: on a real ext4 storing 128 KiB/s, the
objects a planner reads came at 17 frames a second instead of 28, with a 3.4 s gap). Now
the other sinks go on. In a live run the frames are handed over as soon as the fastest sink
has room (with a single sink, as before: the capture drops the frames nobody can take), and
a sink that falls behind the others skips frames of its own, the oldest it holds, counted
and said once. A file run not paced like a camera still gives every frame to every sink:
the slowest sets the rate.

A live sink's queue holds one frame, as between the other stages, so a frame waits for at
most one write when the sinks set the rate; and so no frame is skipped by every sink: the
first to skip one does so because another has taken it off its queue. A frame is done (its
end-to-end time, ``on_result``) once every sink has written or skipped it: in frame order,
but in a live run a frame that a slow sink skipped may be done before the one it is writing.
Its sink stage is its longest write, and each sink's writes are timed too (``sinks_ms``).

``edge record`` (edge.stream.record) writes its sinks on these threads too, with its own
rules: a sink that records (a video, a folder) takes every frame, as a recording with holes
is not one, so the recording waits for it; only a sink for watching (``for_watching``: a
window, the web viewer) skips frames when it falls behind a camera; and a failed write ends
the recording instead of being counted.
"""

from __future__ import annotations

import contextlib
import queue
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from edge.errors import SinkError, SinkStopped, StreamEnded
from edge.latency import LatencyTracker
from edge.stream.frame import Result
from edge.stream.sinks import Sink, sink_image

_END = object()
_POLL_S = 0.05


def _write_view(sink: Sink, result: Result) -> None:
    """``edge run``'s write: the whole result to a sink that takes one (the viewer, the
    objects), else the picture of the view the sink shows, at the frame's capture time."""
    write_result = getattr(sink, "write_result", None)
    if write_result is not None:
        write_result(result)
    else:
        image = sink_image(result, getattr(sink, "view", "composite"))
        sink.write(image, result.frame.seq, result.frame.t_capture_ns)


def _every_sink(sink: Sink) -> bool:
    return True


def left_open_warning(uri: str, at_work: tuple[int, float]) -> str:
    """What is said of a sink left open because its thread is still at work (at_work)."""
    seq, seconds = at_work
    inside = f"has been inside the write of frame {seq} for {seconds:.0f} s" if seq >= 0 else "is writing"
    return f"warning: sink {uri!r} {inside}; it is left open (a disk that stopped answering?)"


class _Handed:
    """A frame handed to the sinks: how many have yet to write or skip it."""

    __slots__ = ("left", "longest", "result")

    def __init__(self, result: Result, sinks: int) -> None:
        self.result = result
        self.left = sinks
        self.longest: tuple[int, int] | None = None  # its longest write: perf_counter_ns span


class SinkWriters:
    """A thread and a queue per sink (``start``), fed in frame order by ``deliver``."""

    def __init__(
        self,
        sinks: list[Sink],
        *,
        tracker: LatencyTracker,
        live: bool,
        depth: int,
        stopping: threading.Event,
        stop: Callable[[], None],
        on_done: Callable[[Result], None] | None = None,
        on_error: Callable[[BaseException], None],
        end_when_sinks_stop: bool = False,
        may_skip: Callable[[Sink], bool] = _every_sink,
        end_on_failure: bool = False,
        write: Callable[[Sink, Result], None] = _write_view,
    ) -> None:
        """``live``: each sink's queue holds one frame, and a sink whose queue is full
        skips that frame when another sink had room for the new one; else ``depth``
        frames, and ``deliver`` waits for room. ``stop``: the pipeline's stop (its
        event ``stopping``), asked when a sink's reader has gone (StreamEnded) or, with
        ``end_when_sinks_stop``, once every sink has stopped for good. ``on_done``: each
        frame once every sink has written or skipped it. ``on_error``: an error
        that is no sink's failure (a bug), which ends the run.

        ``may_skip``: which sinks may skip frames in a live run (every one by default), asked
        as each frame is handed over; ``deliver`` waits for room in the others.
        ``end_on_failure``: a sink's failure (OSError, SinkError, SinkStopped) goes to
        ``on_error`` too, instead of being counted while the stream goes on, and neither the
        frame it failed on nor any later one is done. ``write``: how a sink is given a frame."""
        self.sinks = sinks
        self.tracker = tracker
        self._live = live
        self._queues: list[queue.Queue[Any]] = [queue.Queue(maxsize=1 if live else depth) for _ in sinks]
        self._stopping, self._stop = stopping, stop
        self._on_done, self._on_error = on_done, on_error
        self._end_when_sinks_stop = end_when_sinks_stop
        self._may_skip = may_skip  # asked at each frame: a sink may become one that skips
        self._end_on_failure, self._write_one = end_on_failure, write
        self._lock = threading.Lock()  # the bookkeeping below, shared by the sinks' threads
        self._room = threading.Condition()  # a sink took a frame off its queue
        self._stopped: set[int] = set()  # indexes of the sinks that stopped for good
        self._errors_seen: set[tuple[str, str]] = set()
        self._skip_said: set[int] = set()
        # per sink: (frame, time.perf_counter_ns()) of the write it is inside, None between writes
        self._writing: list[tuple[int, int] | None] = [None] * len(sinks)
        # set as each thread ends: waited on instead of Thread.join, which Ctrl-C can
        # interrupt (edge record waits on the main thread), marking a running thread ended
        self._ended = [threading.Event() for _ in sinks]
        self._threads = [
            threading.Thread(target=self._run, args=(i,), name=f"edge-sink-{i}", daemon=True)
            for i in range(len(sinks))
        ]

    @property
    def stopped_all(self) -> bool:
        """Whether every sink has stopped for good (there was one at least)."""
        with self._lock:
            return bool(self._stopped) and len(self._stopped) == len(self.sinks)

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def busy(self) -> list[tuple[str, int, float]]:
        """The sinks inside a write: uri, frame, seconds it has taken so far."""
        now = time.perf_counter_ns()
        return [
            (sink.uri, writing[0], (now - writing[1]) / 1e9)
            for sink, writing in zip(self.sinks, self._writing, strict=True)
            if writing is not None
        ]

    def finished(self, index: int) -> bool:
        """Whether sink ``index``'s thread has ended (it may be closed)."""
        return self._threads[index].ident is None or self._ended[index].is_set()

    def at_work(self, index: int) -> tuple[int, float] | None:
        """Sink ``index``'s thread still at work, so not to be closed: (the frame it is
        writing, seconds so far), frame -1 between writes; None once it has ended."""
        if self.finished(index):
            return None
        writing = self._writing[index]
        if writing is None:
            return -1, 0.0
        return writing[0], (time.perf_counter_ns() - writing[1]) / 1e9

    def deliver(self, result: Result, give_up: Callable[[], bool] | None = None) -> bool:
        """Hand ``result`` to every sink. Not live: waiting for room in each sink's queue.
        Live: waiting, as for a single sink, only while no sink has room (and while a sink
        that may not skip has none); then a sink still full skips the frame it holds for
        this one. False when the run stops, or ``give_up()``, while a sink it waits for has
        no room, or a sink's thread has ended (it cannot take the frame); the sinks that
        took it write it, and it is never done."""
        handed = _Handed(result, max(1, len(self.sinks)))
        if not self.sinks:
            self._settle(handed)
            return True

        def ends() -> bool:
            return self._stopping.is_set() or (give_up is not None and give_up())

        if not self._live:
            return all(self._put(index, handed, ends) for index in range(len(self.sinks)))
        full = self._offer(list(range(len(self.sinks))), handed)
        with self._room:
            while self._none_took(full) or self._waits_for(full):
                if ends() or not self._all_alive():
                    return False
                self._room.wait(timeout=_POLL_S)
                full = self._offer(full, handed)
        for index in full:  # behind the others: its oldest frame makes way
            self._put_skipping(index, handed)
        return True

    def _offer(self, indexes: list[int], handed: _Handed) -> list[int]:
        """Put ``handed`` in the queues of ``indexes`` that have room; those that had none."""
        full = []
        for index in indexes:
            try:
                self._queues[index].put_nowait(handed)
            except queue.Full:
                full.append(index)
        return full

    def _none_took(self, full: list[int]) -> bool:
        """Whether none of the sinks still writing (not stopped for good, which take any
        frame at once) had room: ``full`` holds every one of them."""
        with self._lock:
            writing = set(range(len(self.sinks))) - self._stopped
        return bool(writing) and writing <= set(full)

    def _waits_for(self, full: list[int]) -> bool:
        """Whether a sink among ``full`` may not skip frames: the frame waits for its room."""
        return any(not self._may_skip(self.sinks[index]) for index in full)

    def _all_alive(self) -> bool:
        return all(thread.is_alive() for thread in self._threads)

    def _put(self, index: int, handed: _Handed, ends: Callable[[], bool]) -> bool:
        while not ends() and self._threads[index].is_alive():
            with contextlib.suppress(queue.Full):
                self._queues[index].put(handed, timeout=_POLL_S)
                return True
        return False

    def _put_skipping(self, index: int, handed: _Handed) -> None:
        q = self._queues[index]
        while True:
            try:
                q.put_nowait(handed)
                return
            except queue.Full:
                with contextlib.suppress(queue.Empty):
                    self._skipped(index, q.get_nowait())

    def _skipped(self, index: int, handed: _Handed) -> None:
        uri = self.sinks[index].uri
        if index in self._stopped:  # it writes nothing any more: nothing to count
            self._settle(handed)
            return
        self.tracker.sink_skipped(uri)
        if index not in self._skip_said:
            self._skip_said.add(index)
            print(
                f"warning: sink {uri!r} is slower than the stream (frame {handed.result.frame.seq}): it "
                "skips the frames it cannot keep up with, so that nothing else waits for it (counted in "
                "the summary; said once)",
                file=sys.stderr,
            )
        self._settle(handed)

    def close(
        self,
        timeout_s: float | None = None,
        *,
        may_leave: Callable[[int], bool] = lambda index: False,
        leave_after_s: float = 0.0,
    ) -> None:
        """Let each sink write what its queue holds, then end its thread. The end is handed
        to each as soon as its queue has room, so a sink stuck inside a write (its queue
        full) keeps no other from ending, and being closed. ``timeout_s``: how long to wait
        at most (None: until every thread has ended); ``finished`` says which did. A sink
        for which ``may_leave(index)`` holds (one the run already skips, stuck in a write)
        is waited for ``leave_after_s`` at most, the others as long as ``timeout_s`` says."""
        start = time.monotonic()

        def waited_enough(index: int) -> bool:
            waited = time.monotonic() - start
            return (timeout_s is not None and waited >= timeout_s) or (
                waited >= leave_after_s and may_leave(index)
            )

        waiting = list(enumerate(self._queues))  # each thread keeps taking frames, even after an error
        while waiting:
            waiting = [(i, q) for i, q in waiting if not waited_enough(i) and not self._handed_end(q)]
            if waiting:
                with self._room:
                    self._room.wait(timeout=_POLL_S)
        for index, (thread, ended) in enumerate(zip(self._threads, self._ended, strict=True)):
            while thread.ident is not None and not ended.wait(timeout=_POLL_S) and not waited_enough(index):
                pass

    @staticmethod
    def _handed_end(q: queue.Queue[Any]) -> bool:
        try:
            q.put_nowait(_END)
            return True
        except queue.Full:
            return False

    def _run(self, index: int) -> None:
        try:
            self._take(index)
        finally:
            self._ended[index].set()

    def _take(self, index: int) -> None:
        sink, q = self.sinks[index], self._queues[index]
        failed = False  # after an error that ends the run, frames are only taken off the queue
        while (handed := q.get()) is not _END:
            with self._room:
                self._room.notify()
            span = None
            if not failed and index not in self._stopped:
                start = time.perf_counter_ns()
                self._writing[index] = (handed.result.frame.seq, start)
                try:
                    self._write(index, sink, handed.result)
                except BaseException as exc:
                    # q in a window ends a recording as Ctrl-C does: that frame was shown, and
                    # each frame handed over is still written everywhere (none is a failure)
                    failed = not (self._end_on_failure and isinstance(exc, KeyboardInterrupt))
                    self._on_error(exc)
                finally:
                    self._writing[index] = None
                span = (start, time.perf_counter_ns())
                self.tracker.sink_wrote(sink.uri, (span[1] - span[0]) / 1e6)
            if failed and self._end_on_failure:
                continue  # not written here, so never done: what is done was written by every sink
            self._settle(handed, span)

    def _write(self, index: int, sink: Sink, result: Result) -> None:
        """A failing output (full disk, removed folder) must not stop perception: count it,
        say it once per sink and kind of error, and keep going. A sink that stopped for
        good (SinkStopped) is said once, noted with its frame, and given no more frames.
        With ``end_on_failure`` every failure is raised, an OSError as a SinkError naming
        the sink and the frame."""
        seq = result.frame.seq
        if self._end_on_failure:
            try:
                self._write_one(sink, result)
            except OSError as exc:
                raise SinkError(f"sink {sink.uri!r} failed at frame {seq}: {exc}") from exc
            return
        try:
            self._write_one(sink, result)
        except StreamEnded as exc:  # its reader has gone: end the stream as if the source had
            if not self._stopping.is_set():
                print(f"{exc}; the stream ends", file=sys.stderr)
            self._stop()
        except SinkStopped as exc:
            with self._lock:
                self._stopped.add(index)
            self.tracker.sink_stopped(sink.uri, seq, str(exc))
            ends = self._end_when_sinks_stop and self.stopped_all
            goes_on = "every sink has stopped: the stream ends" if ends else "the stream goes on without it"
            print(f"warning: sink {sink.uri!r} stopped at frame {seq}: {exc}; {goes_on}", file=sys.stderr)
            if ends:
                self._stop()
        except (OSError, SinkError) as exc:
            self.tracker.sink_failed()
            key = (sink.uri, type(exc).__name__)
            with self._lock:
                said = key in self._errors_seen
                self._errors_seen.add(key)
            if not said:
                print(
                    f"warning: sink {sink.uri!r} failed at frame {seq}: {exc} (the stream continues; "
                    "further errors of this kind are counted, not shown)",
                    file=sys.stderr,
                )

    def _settle(self, handed: _Handed, span: tuple[int, int] | None = None) -> None:
        """One sink is done with ``handed`` (``span``: its write); once every sink is, the
        frame is done (under the lock, so ``on_done`` is called for one frame at a time).
        Not across frames: a sink stuck in one write would hold back every later frame, and
        keep them all."""
        with self._lock:
            if span is not None and (
                handed.longest is None or span[1] - span[0] > handed.longest[1] - handed.longest[0]
            ):
                handed.longest = span
            handed.left -= 1
            if handed.left == 0:
                self._close_frame(handed)

    def _close_frame(self, handed: _Handed) -> None:
        frame = handed.result.frame
        # the frame's writing: its longest write, the sinks writing at once (the wait for a
        # busy sink, like the waits between the other stages, is in the end-to-end time only)
        now = time.perf_counter_ns()
        self.tracker.record(frame.seq, "sink", *(handed.longest or (now, now)))
        self.tracker.frame_done(frame.seq, frame.t_capture_ns)
        if self._on_done is not None:
            try:
                self._on_done(handed.result)
            except BaseException as exc:
                self._on_error(exc)
