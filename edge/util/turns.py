"""A lock taken in turn: the cameras sharing one set of engines each get theirs."""

from __future__ import annotations

import threading
from types import TracebackType


class TurnLock:
    """A lock taken in the order it was asked for: the cameras' pipelines each get their
    turn at the engines (a plain lock lets the thread that released it take it again)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._next = 0  # the ticket the next to ask gets
        self._serving = 0  # the ticket whose turn it is

    def __enter__(self) -> TurnLock:
        with self._cond:
            ticket = self._next
            self._next += 1
            while ticket != self._serving:
                self._cond.wait()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        with self._cond:
            self._serving += 1
            self._cond.notify_all()


__all__ = ["TurnLock"]
