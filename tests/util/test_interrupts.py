"""StepBoundary with real signals sent to this process."""

from __future__ import annotations

import signal
import threading
import time

import pytest

from edge.util.interrupts import StepBoundary


class Term(KeyboardInterrupt):
    pass


def _raise_term(signum: int, frame: object) -> None:
    raise Term()


def _send(sig: int) -> None:
    # to the main thread itself: its sleep is cut short and the handler runs in it
    signal.pthread_kill(threading.main_thread().ident or 0, sig)
    time.sleep(0.05)


def test_a_signal_waits_for_the_step_boundary() -> None:
    before = signal.getsignal(signal.SIGINT)
    with StepBoundary() as boundary:
        _send(signal.SIGINT)  # mid-step: held
        assert boundary.pending
        with pytest.raises(KeyboardInterrupt):
            boundary.check()
        assert not boundary.pending
        boundary.check()  # nothing pending: nothing raised
    assert signal.getsignal(signal.SIGINT) is before


def test_a_second_signal_is_not_held() -> None:
    with StepBoundary() as boundary, pytest.raises(KeyboardInterrupt):
        _send(signal.SIGINT)
        _send(signal.SIGINT)
        pytest.fail("the second Ctrl-C should have raised")
    assert not boundary.pending


def test_sigterm_raises_what_its_handler_raises() -> None:
    previous = signal.signal(signal.SIGTERM, _raise_term)
    try:
        with StepBoundary() as boundary:
            _send(signal.SIGTERM)
            with pytest.raises(Term):
                boundary.check()
        assert signal.getsignal(signal.SIGTERM) is _raise_term
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_a_signal_after_the_last_check_is_not_swallowed() -> None:
    with pytest.raises(KeyboardInterrupt), StepBoundary():
        _send(signal.SIGINT)
    # and SIGTERM with its default action (no Python handler) is left alone
    with StepBoundary() as boundary:
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
        assert signal.SIGTERM not in boundary._previous
