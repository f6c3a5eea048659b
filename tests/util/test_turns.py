"""TurnLock: the lock the cameras sharing one set of engines take in turn."""

from __future__ import annotations

import queue
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


def _grants(
    turn: TurnLock, seats: dict[str, Seat], count: int, late: dict[str, int] | None = None
) -> list[str]:
    """The first ``count`` turns of ``seats``, each a camera that always has its next frame
    ready (``follow``) and asks again as soon as a turn ends, in a lockstep that makes the
    order certain: a turn ends only once every other seat is waiting. The seats ask in the
    order given, while the lock is held; one in ``late`` starts after that many turns."""
    late = late or {}
    order: list[str] = []
    granted: queue.Queue[str] = queue.Queue()
    go = {name: threading.Semaphore(0) for name in seats}
    stop = threading.Event()

    def camera(name: str) -> None:
        seat = seats[name]
        seat.follow(lambda: not stop.is_set())
        while not stop.is_set():
            with seat:
                granted.put(name)
                go[name].acquire()
        seat.close()

    threads = {name: threading.Thread(target=camera, args=(name,), daemon=True) for name in seats}
    started = 0

    def start(name: str, holding: int) -> None:
        """Start ``name``'s camera; ``holding``: 1 where one of them has the lock."""
        nonlocal started
        threads[name].start()
        started += 1
        _wait_until(lambda: turn.waiting == started - holding)

    with turn:
        for name in seats:
            if name not in late:
                start(name, 0)
    while len(order) < count:
        holder = granted.get(timeout=10)
        order.append(holder)
        for name, after in late.items():
            if after == len(order):
                start(name, 1)
        _wait_until(lambda: turn.waiting == started - 1)  # every other seat asks again
        if len(order) == count:
            stop.set()
            for sem in go.values():
                sem.release(count)
        else:
            go[holder].release()
    for t in threads.values():
        if t.is_alive():
            t.join(timeout=10)
    return order


def test_seats_of_one_priority_get_turns_by_their_shares() -> None:
    """Two seats that always wait: the one of share 2 gets two turns to the other's one,
    keeping the lock over the other where its place in line (pass) is ahead; ties go to
    the seat waiting. A turn's pass steps: 1/2 for the share of 2, 1 for the other."""
    turn = TurnLock()
    order = _grants(turn, {"front": turn.seat(0, 2.0), "rear": turn.seat(0)}, 12)
    assert order == [
        "front",
        "rear",
        "front",
        "rear",
        "front",
        "front",
        "rear",
        "front",
        "front",
        "rear",
        "front",
        "front",
    ]
    turn = TurnLock()  # equal shares: in turn, as without them
    assert _grants(turn, {"a": turn.seat(0), "b": turn.seat(0), "c": turn.seat(0)}, 7) == list("abcabca")


def test_a_priority_goes_before_shares_and_shares_split_the_rest() -> None:
    turn = TurnLock()
    seats = {"low": turn.seat(0), "high": turn.seat(1, 0.5), "low2": turn.seat(0, 3.0)}
    # high, always ready, keeps every turn: ranks come before shares
    assert _grants(turn, seats, 5) == ["high"] * 5


def test_a_seat_that_asks_late_does_not_bank_the_turns_it_missed() -> None:
    """A camera that starts (or was slow) is brought up to the line's last pass when it
    asks: it gets its turn soon, then takes turns evenly, not one turn for each it missed."""
    turn = TurnLock()
    seats = {"a": turn.seat(0), "b": turn.seat(0), "late": turn.seat(0)}
    order = _grants(turn, seats, 16, late={"late": 10})
    assert order[:10] == list("ababababab")
    after = order[10:]
    assert {name: after.count(name) for name in seats} == {"a": 2, "b": 2, "late": 2}, after


@pytest.mark.parametrize("share", [0, -1.0, float("inf"), float("nan"), True, "2"])
def test_a_share_must_be_a_number_above_zero(share: object) -> None:
    with pytest.raises(ValueError, match="a seat's share must be a number > 0"):
        TurnLock().seat(0, share)  # type: ignore[arg-type]
