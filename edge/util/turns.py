"""A lock taken in turn: the cameras sharing one set of engines each get theirs."""

from __future__ import annotations

import threading
from collections.abc import Callable
from fractions import Fraction
from types import TracebackType

from edge.util.numbers import is_positive_number


class TurnLock:
    """A lock taken in the order it was asked for: the cameras' pipelines each get their
    turn at the engines (a plain lock lets the thread that released it take it again).
    A seat of a higher priority (``seat``) goes before every lower one waiting, whenever
    they asked. Among seats of one priority the turns go by share: each turn moves a seat's
    place in line (its pass) on by 1/share, and the seat whose pass is least goes next, so
    seats that always wait get turns in proportion to their shares; with equal shares,
    in the order they asked (stride scheduling). A seat that waited for nothing does not
    bank turns: its pass is brought up to that of the last turn given at its priority when it
    asks."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._next = 0  # the ticket the next to ask gets
        self._held = False
        self._passes: dict[int, Fraction] = {}  # the pass of the last turn given, by priority
        # (-priority, pass, ticket) of each caller waiting: the least goes next
        self._waiting: set[tuple[int, Fraction, int]] = set()

    @property
    def waiting(self) -> int:
        """How many callers are waiting for their turn."""
        with self._cond:
            return len(self._waiting)

    def seat(self, priority: int = 0, share: float = 1.0) -> Seat:
        """A context manager that takes this lock at ``priority`` (higher goes first) and
        ``share`` (of the turns among its priority, against the others' shares)."""
        return Seat(self, priority, share)

    def _take(self, priority: int, seat: Seat | None = None) -> None:
        with self._cond:
            line = self._passes.get(priority, Fraction(0))
            mine = max(seat._pass, line) if seat is not None else line
            key = (-priority, mine, self._next)
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
            self._charge(priority, mine, seat)

    def _charge(self, priority: int, mine: Fraction, seat: Seat | None) -> None:
        self._passes[priority] = mine
        if seat is not None:
            seat._pass = mine + seat._stride

    def _give(self, seat: Seat | None = None) -> bool:
        """Give the lock back; True where it is kept instead for ``seat`` (whose next frame
        is ready), which would go next were it waiting: every seat waiting is of a lower
        priority, or of its own with a greater pass (ties go to those waiting)."""
        with self._cond:
            if seat is not None and self._waiting and (-seat.priority, seat._pass) < min(self._waiting)[:2]:
                self._charge(seat.priority, seat._pass, seat)
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
    is ready and it would go next were it waiting (only lower seats wait, or seats of its
    priority that are further behind by share), and its next ``with`` has it at once;
    ``close`` gives back a lock kept for a next turn that will not come (the camera stopped)."""

    def __init__(self, lock: TurnLock, priority: int, share: float = 1.0) -> None:
        if not is_positive_number(share):
            raise ValueError(f"a seat's share must be a number > 0, got {share!r}")
        self.lock, self.priority, self.share = lock, priority, share
        self._stride = 1 / Fraction(share)  # exact: passes that tie stay tied
        self._pass = Fraction(0)
        self._ready: Callable[[], bool] | None = None
        self._kept = False

    def follow(self, ready: Callable[[], bool]) -> None:
        """``ready()``: whether the next frame is ready, asked as each turn ends."""
        self._ready = ready

    def __enter__(self) -> Seat:
        if self._kept:  # the turn was kept for this
            self._kept = False
            return self
        self.lock._take(self.priority, self)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        ready = exc_type is None and self._ready is not None and self._ready()
        self._kept = self.lock._give(self if ready else None)

    def close(self) -> None:
        """Give back a lock kept for a next turn (the seat's owner ends)."""
        if self._kept:
            self._kept = False
            self.lock._give()


__all__ = ["Seat", "TurnLock"]
