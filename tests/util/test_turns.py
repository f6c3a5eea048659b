"""TurnLock: the lock the cameras sharing one set of engines take in turn."""

from __future__ import annotations

import threading
import time

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
