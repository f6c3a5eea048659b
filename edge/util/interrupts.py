"""Ctrl-C at a step boundary: long loops finish the step in hand, save, then stop."""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType
from typing import Any


class StepBoundary:
    """Holds SIGINT and SIGTERM back until :meth:`check`, which the loop calls between steps.

    A step interrupted half-way (an optimiser update applied to some tensors and not to
    others) leaves nothing worth saving; a held signal lets the step end first. A second
    signal while one is held is not held: whoever presses Ctrl-C twice wants out now.
    Signals are only held where they can be (the main thread) and only while their
    handler is a Python one (it raises: KeyboardInterrupt, or the CLI's SIGTERM); there
    :meth:`check` raises what that handler raises.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self._previous: dict[int, Any] = {}
        self._pending: int | None = None

    def __enter__(self) -> StepBoundary:
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                handler = signal.getsignal(sig)
                if callable(handler):
                    self._previous[sig] = handler
                    signal.signal(sig, self._hold)
        return self

    def _hold(self, signum: int, frame: FrameType | None) -> None:
        if self._pending is not None:
            self._pending = None
            self._previous[signum](signum, frame)  # the second one: raise now
        self._pending = signum

    @property
    def pending(self) -> bool:
        return self._pending is not None

    def check(self) -> None:
        """Raise what the held signal's handler raises, if one arrived since the last check."""
        signum, self._pending = self._pending, None
        if signum is not None:
            self._previous[signum](signum, None)

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        previous, self._previous = self._previous, {}
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        signum, self._pending = self._pending, None
        if signum is not None and exc is None:  # arrived after the last check: not swallowed
            previous[signum](signum, None)
