"""Ctrl-C and SIGTERM: long loops finish the step in hand (StepBoundary), and the CLI's
unwinding, which finalises the outputs, is not cut short by a second press (OrderlyExit)."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _SignalScope:
    """Handlers for SIGINT and SIGTERM while a ``with`` block runs, then the previous ones.

    Only the main thread can set handlers; elsewhere nothing is installed.
    """

    def __init__(self) -> None:
        self._previous: dict[int, Any] = {}

    def _install(
        self, handler: Callable[[int, FrameType | None], None], replaces: Callable[[Any], bool]
    ) -> None:
        if threading.current_thread() is threading.main_thread():
            for sig in SIGNALS:
                if replaces(signal.getsignal(sig)):
                    self._previous[sig] = signal.signal(sig, handler)

    def _restore(self) -> dict[int, Any]:
        previous, self._previous = self._previous, {}
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        return previous


class StepBoundary(_SignalScope):
    """Holds SIGINT and SIGTERM back until :meth:`check`, which the loop calls between steps.

    A step interrupted half-way (an optimiser update applied to some tensors and not to
    others) leaves nothing worth saving; a held signal lets the step end first. A second
    signal while one is held is not held, nor any after it: whoever presses Ctrl-C twice
    wants out now.
    Signals are only held where they can be (the main thread) and only while their
    handler is a Python one (it raises: KeyboardInterrupt, or the CLI's SIGTERM); there
    :meth:`check` raises what that handler raises. ``holding``: a line said when a signal
    is held, for a step long enough that silence would look like a hang (a training step).
    """

    def __init__(self, *, holding: str | None = None) -> None:
        super().__init__()
        self._pending: int | None = None
        self._pending_at = 0.0
        self._urgent = False
        self._holding = holding

    def __enter__(self) -> StepBoundary:
        self._install(self._hold, replaces=callable)
        return self

    def _hold(self, signum: int, frame: FrameType | None) -> None:
        # after a second one, none is held: OrderlyExit sends again a signal whose
        # exception Python dropped, and that one must not wait for the boundary
        if self._pending is not None or self._urgent:
            self._pending, self._urgent = None, True
            self._previous[signum](signum, frame)  # the second one: raise now
        self._pending, self._pending_at = signum, time.monotonic()
        if self._holding is not None:
            _say(self._holding)

    @property
    def pending(self) -> bool:
        return self._pending is not None

    def held_for(self) -> float:
        """Seconds the signal held has waited (0.0 when none is held): a step that cannot
        end (a write to a disk that stopped answering) may give up after so long."""
        return time.monotonic() - self._pending_at if self._pending is not None else 0.0

    def check(self) -> None:
        """Raise what the held signal's handler raises, if one arrived since the last check."""
        signum, self._pending = self._pending, None
        if signum is not None:
            self._previous[signum](signum, None)

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        previous = self._restore()
        signum, self._pending = self._pending, None
        if signum is not None and exc is None:  # arrived after the last check: not swallowed
            previous[signum](signum, None)


class Terminated(KeyboardInterrupt):
    """SIGTERM, delivered like Ctrl-C so the same clean shutdown runs."""


def stop_by_signal(exc: KeyboardInterrupt) -> tuple[str, int]:
    """What a stop by a signal is called, and the exit status a shell gives a process it
    ended (128 + the signal): SIGTERM (Terminated) or SIGINT (any other KeyboardInterrupt)."""
    return ("terminated", 143) if isinstance(exc, Terminated) else ("interrupted", 130)


class OrderlyExit(_SignalScope):
    """The CLI's SIGINT and SIGTERM handlers (where it runs in the main thread).

    The first signal says so on stderr at once (finalising can take a while, and a
    silent terminal looks hung) and raises (KeyboardInterrupt, or Terminated for SIGTERM);
    the command unwinds through its ``finally`` blocks: the pipeline lets its stages end
    the frame in hand (bounded wait), videos are finalised, logs flushed, temporary files
    removed. A second signal during that unwinding is only acknowledged: raised there it
    would cut the finalising short and leave, say, an MP4 without its index, the thing a
    double tap on Ctrl-C must not cost. A third quits at once, without running what is left.
    """

    def __init__(self) -> None:
        super().__init__()
        self.received = 0
        self.settled = False  # set once the outputs are final: later signals change nothing
        self._raised: tuple[int, KeyboardInterrupt] | None = None
        self._said = False
        self._hook: Callable[[Any], object] | None = None
        self._open = False
        self._sending = threading.Lock()

    def __enter__(self) -> OrderlyExit:
        # an ignored signal stays ignored: a shell starts background jobs with SIGINT
        # ignored so that Ctrl-C in the terminal does not reach them
        self._install(self._handle, replaces=lambda handler: handler != signal.SIG_IGN)
        if self._previous:
            self._hook, sys.unraisablehook = sys.unraisablehook, self._unraisable
        self._open = True
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.received += 1
        if self.settled:
            return
        if self.received == 1:
            exc = Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()
            if not self._said:
                _say(f"{stop_by_signal(exc)[0]}: finishing the outputs first")
                self._said = True
            self._raised = (signum, exc)
            raise exc
        if self.received == 2:
            _say("still finishing the outputs (press Ctrl-C again to quit at once and leave them unfinished)")
            return
        _say("quitting at once: outputs may be unfinished")
        os._exit(128 + signum)

    def _unraisable(self, unraisable: Any) -> None:
        """Python runs a signal's handler wherever the main thread is, also inside code whose
        exceptions it only prints and drops (a weakref callback such as importlib's module
        locks', a ``__del__``): the command would go on as if no signal had come, and exit 0.
        The dropped exception is ours: the signal is sent again, once that code has returned."""
        if self._send_again_if_ours(unraisable.exc_value) or self._hook is None:
            return
        try:
            self._hook(unraisable)
        except KeyboardInterrupt as exc:  # a signal's, raised in a hook, is dropped as well
            if not self._send_again_if_ours(exc):
                raise

    def _send_again_if_ours(self, exc: BaseException | None) -> bool:
        if self._raised is None or exc is not self._raised[1]:
            return False
        signum, self._raised = self._raised[0], None
        self.received -= 1
        threading.Thread(target=self._send_again, args=(signum,), name="edge-signal", daemon=True).start()
        return True

    def _send_again(self, signum: int) -> None:
        """Send ``signum`` to the main thread once it has left the unraisable hook: sent from
        there, its handler would run in the hook (Python checks for signals after each call)
        and its exception be dropped once more. A command that has ended meanwhile (its
        outputs final) is left to exit as it would."""
        main = threading.main_thread().ident or 0
        hook = OrderlyExit._unraisable.__code__
        while True:
            with self._sending:  # none is sent once __exit__ has begun
                if not self._open or (frame := sys._current_frames().get(main)) is None:
                    return
                while frame is not None and frame.f_code is not hook:
                    frame = frame.f_back
                if frame is None:
                    signal.pthread_kill(main, signum)  # a real signal: it also cuts a sleep short
                    return
            time.sleep(0.001)

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.settled = True  # one sent again from here on arrives after the command's end
        with self._sending:
            self._open = False
        self._restore()
        if self._hook is not None and sys.unraisablehook == self._unraisable:
            sys.unraisablehook, self._hook = self._hook, None


def _say(line: str) -> None:
    """One line on stderr from a signal handler. On a terminal it starts a line of its own:
    the terminal has echoed ^C after whatever was there, often a progress bar. The handler
    can run inside a write to stderr (one interrupted by the signal), where print would
    raise instead of the handler's exception: the line then goes straight to the file."""
    text = f"{line}\n"
    try:
        if sys.stderr.isatty():
            text = f"\n{text}"
        sys.stderr.write(text)
        sys.stderr.flush()
    except (RuntimeError, OSError, ValueError):
        with contextlib.suppress(OSError):
            os.write(2, text.encode())


def end_at_once_on_signal(code: int) -> None:
    """For a process about to exit after an interrupted command: a late Ctrl-C ends it at
    once with ``code``, instead of a KeyboardInterrupt traceback from some exit handler
    (and a hung exit can still be cut short)."""

    def end(signum: int, frame: FrameType | None) -> None:
        for stream in (sys.stdout, sys.stderr):  # what was printed still reaches a pipe
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)

    for sig in SIGNALS:
        if signal.getsignal(sig) != signal.SIG_IGN:
            signal.signal(sig, end)
