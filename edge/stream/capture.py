"""A capture thread for live sources: always the newest frame, reconnects when lost.

Cameras and network streams keep producing whether or not we keep up. Reading them
on the consumer's thread would hand over frames that waited in driver and decoder
buffers; instead a thread reads continuously, stamps each frame when it arrives and
keeps only the newest (latest-frame-wins; the frames it replaced are counted as drops).
When the source fails (camera unplugged, stream server gone) the thread reopens it
with exponential backoff, and the first frame after the gap says how long it was.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from edge.errors import SourceError
from edge.stream.frame import Frame


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class LiveCapture:
    """A Source over ``open_reader()``: anything with ``read() -> (ok, bgr)`` and ``release()``.

    The first open happens here, so a wrong URI fails at once with the opener's error;
    later failures reconnect. ``reconnect_timeout_s=None`` retries for ever (a car's
    camera should come back); otherwise ``read`` raises SourceError after that long.
    """

    MAX_BAD_READS = 5
    BAD_READ_WINDOW_S = 0.5
    CLOSE_WAIT_S = 10.0  # for the capture thread to finish the read it is in

    def __init__(
        self,
        *,
        uri: str,
        open_reader: Callable[[], Any],
        fps: float | None = None,
        reconnect_initial_s: float = 0.25,
        reconnect_max_s: float = 5.0,
        reconnect_timeout_s: float | None = None,
        log: Callable[[str], None] = _stderr,
    ) -> None:
        self.uri = uri
        self.live = True
        self._open = open_reader
        self._log = log
        self._backoff = (reconnect_initial_s, reconnect_max_s)
        self._timeout = reconnect_timeout_s
        reader = open_reader()
        self.fps = fps if fps is not None else _reader_fps(reader)
        self._cond = threading.Condition()
        self._slot: tuple[np.ndarray, int] | None = None
        self._dropped = 0  # replaced before read, since the last hand-over
        self._undecodable = 0  # failed reads the stream recovered from, since the last hand-over
        self._gap_ms: float | None = None  # pending report for the next hand-over
        self._closed = False
        self._interrupted = False
        self._failure: SourceError | None = None
        self._seq = 0
        self._call_since: float | None = None  # time.monotonic() the thread's read or open began
        self.frames_captured = 0
        self.drops = 0
        self.undecodable = 0
        self.reconnects = 0
        self.gap_ms_total = 0.0
        self._thread = threading.Thread(
            target=self._run, args=(reader,), name="edge-live-capture", daemon=True
        )
        self._thread.start()

    # consumer side -----------------------------------------------------------------

    def read(self) -> Frame | None:
        """The newest frame not yet handed over; waits for one. None once closed or interrupted."""
        with self._cond:
            while self._slot is None and not (self._closed or self._interrupted) and self._failure is None:
                self._cond.wait(0.1)
            if self._closed or self._interrupted:
                return None
            if self._slot is None:
                if self._failure is not None:
                    raise self._failure
                return None
            bgr, t_ns = self._slot
            self._slot = None
            meta: dict[str, Any] = {"dropped_before": self._dropped}
            if self._gap_ms is not None:
                meta["gap_ms"] = self._gap_ms
            if self._undecodable:
                meta["undecodable_before"] = self._undecodable
            self._dropped, self._gap_ms, self._undecodable = 0, None, 0
        frame = Frame(self._seq, t_ns, _to_rgb(bgr), self.uri, meta=meta)
        self._seq += 1
        return frame

    def in_call_s(self) -> float:
        """How long the capture thread has been inside a read or an open of the camera (0
        between calls): a driver or stream that holds one past its own timeouts has hung."""
        since = self._call_since
        return 0.0 if since is None else time.monotonic() - since

    def _in_call(self, call: Callable[..., Any], *args: Any) -> Any:
        """``call(*args)``, timed for in_call_s while it runs."""
        self._call_since = time.monotonic()
        try:
            return call(*args)
        finally:
            self._call_since = None

    def _read(self, reader: Any) -> tuple[bool, Any]:
        result: tuple[bool, Any] = self._in_call(_safe_read, reader)
        return result

    def interrupt(self) -> None:
        """End a ``read`` that is waiting, and every later one, without touching the reader:
        a stalled camera delivers nothing, and its reader is the capture thread's to release."""
        with self._cond:
            self._interrupted = True
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout=self.CLOSE_WAIT_S)
        if self._thread.is_alive():
            # the driver or stream holds the read past its own timeouts; the thread releases
            # the camera when the read returns, and being a daemon it does not hold up exit
            self._log(
                f"warning: camera {self.uri!r} is still inside a read {self.CLOSE_WAIT_S:g} s after "
                "it was closed; it will be released when that read returns"
            )

    # capture thread ----------------------------------------------------------------

    def _run(self, reader: Any) -> None:
        try:
            while not self._closed:
                ok, bgr = self._read(reader)
                if not (ok and bgr is not None):
                    ok, bgr = self._retry(reader)
                t_ns = time.perf_counter_ns()
                if ok and bgr is not None:
                    self._deliver(bgr, t_ns)
                    continue
                _release(reader)
                reader = None
                if self._closed:
                    return
                reader = self._reconnect(t_ns)
                if reader is None:
                    return
        finally:
            if reader is not None:
                _release(reader)

    def _retry(self, reader: Any) -> tuple[bool, Any]:
        """After a failed read: a stream with a damaged frame delivers again at once (the
        failures were undecodable frames, counted); a lost one keeps failing."""
        start = time.monotonic()
        for bad in range(1, self.MAX_BAD_READS):
            if self._closed or time.monotonic() - start > self.BAD_READ_WINDOW_S:
                break
            ok, bgr = self._read(reader)
            if ok and bgr is not None:
                with self._cond:
                    self.undecodable += bad
                    self._undecodable += bad
                return True, bgr
        return False, None

    def _deliver(self, bgr: np.ndarray, t_ns: int) -> None:
        with self._cond:
            if self._slot is not None:
                self._dropped += 1
                self.drops += 1
            self._slot = (bgr, t_ns)
            self.frames_captured += 1
            self._cond.notify_all()

    def _reconnect(self, lost_ns: int) -> Any:
        """Reopen with backoff; the reader, or None when closed or out of time."""
        self._log(f"warning: source {self.uri!r} stopped delivering frames; reconnecting")
        delay, max_delay = self._backoff
        attempts = 0
        last_error = ""
        while not self._closed:
            waited = (time.perf_counter_ns() - lost_ns) / 1e9
            if self._timeout is not None and waited > self._timeout:
                with self._cond:
                    self._failure = SourceError(
                        f"source {self.uri!r} was lost and did not come back within "
                        f"{self._timeout:g} s ({attempts} attempts; last: {last_error or 'no frames'})"
                    )
                    self._cond.notify_all()
                return None
            with self._cond:
                self._cond.wait(delay)
            if self._closed:
                return None
            attempts += 1
            try:
                reader = self._in_call(self._open)
            except SourceError as exc:
                last_error = str(exc)
                delay = min(delay * 2, max_delay)
                continue
            ok, bgr = self._read(reader)
            if not (ok and bgr is not None):
                _release(reader)
                last_error = "opened but delivered no frame"
                delay = min(delay * 2, max_delay)
                continue
            t_ns = time.perf_counter_ns()
            gap_ms = (t_ns - lost_ns) / 1e6
            with self._cond:
                self.reconnects += 1
                self.gap_ms_total += gap_ms
                self._gap_ms = gap_ms + (self._gap_ms or 0.0)
            self._log(f"source {self.uri!r} is back after {gap_ms / 1e3:.1f} s ({attempts} attempts)")
            self._deliver(bgr, t_ns)
            return reader
        return None


def _safe_read(reader: Any) -> tuple[bool, Any]:
    try:
        ok, image = reader.read()
    except Exception:  # a backend that throws on a dead device is a lost source, like one that returns False
        return False, None
    return bool(ok), image


def _release(reader: Any) -> None:
    try:
        reader.release()
    except Exception:  # releasing a dead device may fail too; there is nothing left to free
        return


def _reader_fps(reader: Any) -> float | None:
    try:
        import cv2

        fps = float(reader.get(cv2.CAP_PROP_FPS))
    except Exception:  # not an OpenCV capture, or a backend that cannot say
        return None
    return fps if 0 < fps < 1000 else None


def _to_rgb(bgr: np.ndarray) -> np.ndarray:
    import cv2

    if bgr.ndim == 2:
        return cv2.cvtColor(bgr, cv2.COLOR_GRAY2RGB)
    if bgr.shape[2] == 4:
        return cv2.cvtColor(bgr, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
