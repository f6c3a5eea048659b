"""A lock taken in turn: the cameras sharing one set of engines each get theirs."""

from __future__ import annotations

import threading
from types import TracebackType


class TurnLock:
    """A lock taken in the order it was asked for: the cameras' pipelines each get their
    turn at the engines (a plain lock lets the thread that released it take it again).
    A seat of a higher priority (``seat``) goes before every lower one waiting, whenever
    they asked; seats of one priority go in the order they asked."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._next = 0  # the ticket the next to ask gets
        self._held = False
        # (-priority, ticket) of each caller waiting: the least goes next
        self._waiting: set[tuple[int, int]] = set()

    @property
    def waiting(self) -> int:
        """How many callers are waiting for their turn."""
        with self._cond:
            return len(self._waiting)

    def seat(self, priority: int = 0) -> Seat:
        """A context manager that takes this lock at ``priority`` (higher goes first)."""
        return Seat(self, priority)

    def _take(self, priority: int) -> None:
        with self._cond:
            key = (-priority, self._next)
            self._next += 1
            self._waiting.add(key)
            try:
                while self._held or min(self._waiting) != key:
                    self._cond.wait()
            finally:
                self._waiting.discard(key)  # also when the wait is interrupted
                # a caller interrupted while first in line lets the next one see it is theirs
                self._cond.notify_all()
            self._held = True

    def _give(self) -> None:
        with self._cond:
            self._held = False
            self._cond.notify_all()

    def __enter__(self) -> TurnLock:
        self._take(0)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._give()


class Seat:
    """A place at a TurnLock of one priority (a camera's): ``with seat:`` takes the lock."""

    def __init__(self, lock: TurnLock, priority: int) -> None:
        self.lock, self.priority = lock, priority

    def __enter__(self) -> Seat:
        self.lock._take(self.priority)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.lock._give()


__all__ = ["Seat", "TurnLock"]
