"""TurnLock: the lock the cameras sharing one set of engines take in turn."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable

import pytest

from edge.util.turns import Seat, TurnLock


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


def _turns_of(turn: TurnLock, high: Seat, low: Seat, rounds: int) -> list[str]:
    """``high``'s thread takes ``rounds`` turns, a moment apart (a camera handing on its
    result and taking its next frame), while ``low`` waits from the first: the order."""
    order: list[str] = []
    low_asked = threading.Event()

    def take_low() -> None:
        low_asked.set()
        with low:
            order.append("low")

    lower = threading.Thread(target=take_low)
    with high:
        order.append("high")
        lower.start()
        assert low_asked.wait(10)
        _wait_until(lambda: turn.waiting == 1)
    for _ in range(rounds - 1):
        time.sleep(0.01)  # between turns: the lower seat, waiting, would be given the lock here
        with high:
            order.append("high")
    high.close()
    lower.join(timeout=10)
    return order


def test_a_seat_whose_next_frame_is_ready_keeps_its_turn_over_lower_ones() -> None:
    """Between two of its turns a camera's thread is not waiting, so a priority alone would
    never count against one other camera: told its next frame is ready, the higher seat
    keeps the lock over the lower one waiting; a frame not ready, or a seat of the same
    rank waiting, and it is given on."""
    turn = TurnLock()
    high, low = turn.seat(1), turn.seat(0)
    high.follow(lambda: True)
    assert _turns_of(turn, high, low, 3) == ["high", "high", "high", "low"]
    turn = TurnLock()
    high, low = turn.seat(1), turn.seat(0)
    high.follow(lambda: False)
    assert _turns_of(turn, high, low, 3) == ["high", "low", "high", "high"]
    turn = TurnLock()
    first, second = turn.seat(0), turn.seat(0)
    first.follow(lambda: True)
    assert _turns_of(turn, first, second, 3) == ["high", "low", "high", "high"]  # in the order asked


def test_a_turn_kept_for_a_frame_that_does_not_come_is_given_back_on_close() -> None:
    turn = TurnLock()
    high, low = turn.seat(2), turn.seat(1)
    high.follow(lambda: True)
    got = threading.Event()

    def take_low() -> None:
        with low:
            got.set()

    lower = threading.Thread(target=take_low)
    with high:
        lower.start()
        _wait_until(lambda: turn.waiting == 1)
    assert not got.wait(0.1), "kept for the higher seat's next frame"
    high.close()  # its camera stopped instead
    lower.join(timeout=10)
    assert got.is_set()
