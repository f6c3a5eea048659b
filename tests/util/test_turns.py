"""TurnLock: the lock the cameras sharing one set of engines take in turn."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable

import pytest

from edge.util.turns import TurnLock


def test_the_engines_are_taken_in_the_order_asked() -> None:
    """The holder takes its turn again only after those that asked before it: a thread that
    releases and asks at once does not jump the queue."""
    turn = TurnLock()
    order: list[str] = []
    asked = threading.Semaphore(0)

    def take(name: str) -> None:
        asked.release()
        with turn:
            order.append(name)

    with turn:
        threads = []
        for name in "abc":  # each asks once the one before is waiting
            threads.append(threading.Thread(target=take, args=(name,)))
            threads[-1].start()
            asked.acquire()
            time.sleep(0.05)
    with turn:  # after them, though it held the lock last
        order.append("again")
    for t in threads:
        t.join(timeout=10)
    assert order == ["a", "b", "c", "again"]


def _wait_until(ready: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not ready():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def test_a_higher_priority_goes_before_every_lower_one_waiting() -> None:
    """Seats of priority 1 go before those of 0, whenever they asked; each priority's in the
    order asked; and the plain lock is priority 0."""
    turn = TurnLock()
    order: list[str] = []
    threads = []

    def take(name: str, priority: int | None) -> None:
        with turn.seat(priority) if priority is not None else turn:
            order.append(name)

    with turn:
        for waiting, (name, priority) in enumerate((("a", 0), ("b", 1), ("c", None), ("d", 1), ("e", 0)), 1):
            threads.append(threading.Thread(target=take, args=(name, priority)))
            threads[-1].start()
            _wait_until(lambda n=waiting: turn.waiting == n)  # type: ignore[misc]
    for t in threads:
        t.join(timeout=10)
    assert order == ["b", "d", "a", "c", "e"]
    assert turn.waiting == 0


def test_a_wait_that_is_interrupted_holds_up_no_one() -> None:
    """The main thread's wait for its turn, interrupted (Ctrl-C in Perception's caller),
    leaves the line: the one behind it gets the lock when it is given back."""
    turn = TurnLock()
    inside, release, got = threading.Event(), threading.Event(), threading.Event()
    main = threading.get_ident()

    def hold() -> None:
        with turn:
            inside.set()
            release.wait(10)

    def behind() -> None:
        with turn:
            got.set()

    def interrupt_main_once_both_wait() -> None:
        _wait_until(lambda: turn.waiting == 1)  # the main thread
        later.start()
        _wait_until(lambda: turn.waiting == 2)  # and the thread behind it
        signal.pthread_kill(main, signal.SIGUSR1)

    holder, later = threading.Thread(target=hold), threading.Thread(target=behind)
    holder.start()
    assert inside.wait(10)
    previous = signal.signal(signal.SIGUSR1, _interrupt)
    try:
        threading.Thread(target=interrupt_main_once_both_wait).start()
        with pytest.raises(KeyboardInterrupt), turn:
            pytest.fail("the lock was held")
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert turn.waiting == 1
    release.set()
    holder.join(timeout=10)
    later.join(timeout=10)
    assert got.is_set(), "the caller behind the interrupted one never got its turn"


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
