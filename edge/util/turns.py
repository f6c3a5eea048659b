"""A lock taken in turn: the cameras sharing one set of engines each get theirs."""

from __future__ import annotations

import threading
from collections.abc import Callable
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

    def _give(self, priority: int | None = None) -> bool:
        """Give the lock back; True where it is kept instead: a seat of ``priority`` whose
        next frame is ready, while only lower seats wait (each of those would lose to it)."""
        with self._cond:
            if priority is not None and self._waiting and all(-rank < priority for rank, _ in self._waiting):
                return True
            self._held = False
            self._cond.notify_all()
            return False

    def __enter__(self) -> TurnLock:
        self._take(0)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._give()


class Seat:
    """A place at a TurnLock of one priority (a camera's): ``with seat:`` takes the lock.

    A priority only counts where a higher seat and a lower one wait together, and a
    camera's thread asks again only once it has handed on its result and taken its next
    frame: the lower seat waiting would always be given the lock in between. So a seat told
    when its next frame is ready (``follow``) keeps the lock over a release where that frame
    is ready and only lower seats wait, and its next ``with`` has it at once; ``close`` gives
    back a lock kept for a next turn that will not come (the camera stopped)."""

    def __init__(self, lock: TurnLock, priority: int) -> None:
        self.lock, self.priority = lock, priority
        self._ready: Callable[[], bool] | None = None
        self._kept = False

    def follow(self, ready: Callable[[], bool]) -> None:
        """``ready()``: whether the next frame is ready, asked as each turn ends."""
        self._ready = ready

    def __enter__(self) -> Seat:
        if self._kept:  # the turn was kept for this
            self._kept = False
            return self
        self.lock._take(self.priority)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        ready = exc_type is None and self._ready is not None and self._ready()
        self._kept = self.lock._give(self.priority if ready else None)

    def close(self) -> None:
        """Give back a lock kept for a next turn (the seat's owner ends)."""
        if self._kept:
            self._kept = False
            self.lock._give()


__all__ = ["Seat", "TurnLock"]
