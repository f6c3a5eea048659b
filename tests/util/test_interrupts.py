"""StepBoundary with real signals sent to this process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import weakref
from typing import Any

import pytest

from edge.util.interrupts import OrderlyExit, StepBoundary, Terminated
from tests.conftest import ROOT


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


def test_orderly_exit_raises_once_then_lets_the_unwinding_finish(capsys: pytest.CaptureFixture[str]) -> None:
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    finished = False
    with OrderlyExit() as orderly, pytest.raises(KeyboardInterrupt):
        try:
            _send(signal.SIGINT)
            pytest.fail("the first Ctrl-C should have raised")
        finally:
            _send(signal.SIGTERM)  # a second signal while the outputs are being finalised
            finished = True
    assert finished and orderly.received == 2
    said = capsys.readouterr().err.splitlines()
    assert said == [
        "interrupted: finishing the outputs first",
        "still finishing the outputs (press Ctrl-C again to quit at once and leave them unfinished)",
    ]
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


def test_orderly_exit_turns_sigterm_into_terminated() -> None:
    with pytest.raises(Terminated), OrderlyExit():
        _send(signal.SIGTERM)


def test_orderly_exit_gives_a_step_boundary_its_first_signal() -> None:
    # edge train: the boundary holds the first Ctrl-C and raises it through OrderlyExit
    with pytest.raises(KeyboardInterrupt), OrderlyExit() as orderly, StepBoundary() as boundary:
        _send(signal.SIGINT)
        assert boundary.pending and orderly.received == 0
        boundary.check()
    assert orderly.received == 1


def _python(script: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)


def test_a_third_signal_quits_at_once() -> None:
    script = (
        "import os, signal, time\n"
        "from edge.util.interrupts import OrderlyExit\n"
        "with OrderlyExit():\n"
        "    try:\n"
        "        os.kill(os.getpid(), signal.SIGINT); time.sleep(5)\n"
        "    finally:\n"
        "        os.kill(os.getpid(), signal.SIGINT); time.sleep(0.1)\n"
        "        os.kill(os.getpid(), signal.SIGTERM); time.sleep(5)\n"
        "        print('finally ran to its end')\n"
    )
    done = _python(script)
    assert done.returncode == 128 + signal.SIGTERM, done.stderr
    assert "finally ran" not in done.stdout
    assert done.stderr.splitlines() == [
        "interrupted: finishing the outputs first",
        "still finishing the outputs (press Ctrl-C again to quit at once and leave them unfinished)",
        "quitting at once: outputs may be unfinished",
    ]


def test_orderly_exit_leaves_an_ignored_signal_ignored() -> None:
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # a background job of a script
    try:
        with OrderlyExit():
            assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) != signal.SIG_DFL
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


def test_once_settled_a_signal_changes_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    with OrderlyExit() as orderly:
        orderly.settled = True  # the command has finalised its outputs and says so
        _send(signal.SIGINT)
        _send(signal.SIGINT)
        _send(signal.SIGINT)  # not even a third quits: there is nothing left to cut short
    assert orderly.received == 3 and capsys.readouterr().err == ""


class _StderrMidWrite:
    """sys.stderr while the signal handler runs inside one of its writes."""

    def isatty(self) -> bool:
        return False

    def write(self, text: str) -> int:
        raise RuntimeError("reentrant call inside <_io.BufferedWriter name='<stderr>'>")

    def flush(self) -> None:
        pass


def test_a_signal_inside_a_write_to_stderr_still_raises_and_is_said(
    capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # print would raise RuntimeError there, in place of the KeyboardInterrupt
    monkeypatch.setattr(sys, "stderr", _StderrMidWrite())
    with pytest.raises(KeyboardInterrupt), OrderlyExit():
        _send(signal.SIGINT)
    assert capfd.readouterr().err == "interrupted: finishing the outputs first\n"


class _Watched:
    pass


def test_a_signal_whose_exception_python_drops_is_delivered_again(capsys: pytest.CaptureFixture[str]) -> None:
    # CI saw it: SIGTERM's handler ran inside importlib's weakref callback, Python printed
    # "Exception ignored in ..." and the build went on to exit 0
    hook = sys.unraisablehook
    dropped: list[BaseException | None] = []

    def in_a_callback(_: object) -> None:
        signal.raise_signal(signal.SIGTERM)  # its handler runs here, inside the callback
        dropped.append(sys.exc_info()[1])

    watched = _Watched()
    ref = weakref.ref(watched, in_a_callback)
    with pytest.raises(Terminated), OrderlyExit() as orderly:
        del watched  # the callback runs, its exception is dropped ...
        assert ref() is None and dropped == []
        for _ in range(2000):  # ... and the signal comes again out here
            time.sleep(0.001)
        pytest.fail("the dropped SIGTERM was not delivered again")
    assert orderly.received == 1 and sys.unraisablehook is hook
    assert capsys.readouterr().err == "terminated: finishing the outputs first\n"


def test_another_dropped_exception_goes_to_the_previous_hook() -> None:
    seen: list[BaseException | None] = []
    previous = sys.unraisablehook
    sys.unraisablehook = lambda unraisable: seen.append(unraisable.exc_value)
    try:

        def fails(_: object) -> None:
            raise ValueError("not ours")

        watched = _Watched()
        ref = weakref.ref(watched, fails)
        with OrderlyExit() as orderly:
            del watched
        assert ref() is None and orderly.received == 0
        assert [type(exc) for exc in seen] == [ValueError]
    finally:
        sys.unraisablehook = previous


def test_a_command_whose_sigterm_python_dropped_still_ends_terminated() -> None:
    # the CLI's path, as in CI's build: the signal's handler runs inside a weakref callback
    script = (
        "import os, signal, sys, time, weakref\n"
        "from edge.cli import exit_with, run_command\n"
        "class Watched: pass\n"
        "def command(args):\n"
        "    watched = Watched()\n"
        "    ref = weakref.ref(watched, lambda _: os.kill(os.getpid(), signal.SIGTERM))\n"
        "    del watched\n"
        "    time.sleep(5)\n"
        "    print('the command ran to its end')\n"
        "    return 0\n"
        "exit_with(run_command(command, None))\n"
    )
    done = _python(script)
    assert done.returncode == 128 + signal.SIGTERM, done.stderr
    assert "ran to its end" not in done.stdout
    assert done.stderr.splitlines() == [
        "terminated: finishing the outputs first",
        "terminated: outputs are finalised, nothing half-written was left behind",
    ]


def test_a_second_signal_python_dropped_is_not_held_when_sent_again() -> None:
    def in_a_callback(_: object) -> None:
        signal.raise_signal(signal.SIGINT)  # the second Ctrl-C, its exception dropped

    with pytest.raises(KeyboardInterrupt), OrderlyExit() as orderly, StepBoundary() as boundary:
        _send(signal.SIGINT)  # the first: held for the boundary
        assert boundary.pending
        watched = _Watched()
        ref = weakref.ref(watched, in_a_callback)
        del watched
        assert ref() is None
        for _ in range(2000):  # sent again: raised at once, not held
            time.sleep(0.001)
        pytest.fail("the second Ctrl-C, sent again, was held")
    assert orderly.received == 1 and not boundary.pending


def test_a_signal_during_another_dropped_exceptions_hook_is_sent_again() -> None:
    previous = sys.unraisablehook

    def busy_hook(unraisable: object) -> None:  # the signal comes while it reports another
        signal.raise_signal(signal.SIGTERM)

    def fails(_: object) -> None:
        raise ValueError("not ours")

    sys.unraisablehook = busy_hook
    try:
        watched = _Watched()
        ref = weakref.ref(watched, fails)
        with pytest.raises(Terminated), OrderlyExit() as orderly:
            del watched
            assert ref() is None
            for _ in range(2000):
                time.sleep(0.001)
            pytest.fail("the SIGTERM raised in the hook was not sent again")
        assert orderly.received == 1
    finally:
        sys.unraisablehook = previous


def test_a_signal_sent_again_as_the_command_ends_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """The helper thread has decided to send it, and the command leaves OrderlyExit before it
    does: the signal must not reach the handlers OrderlyExit gives back (by default SIGTERM
    would kill the process whose outputs were just finalised)."""
    got: list[int] = []

    def record(signum: int, frame: object) -> None:
        got.append(signum)

    previous = signal.signal(signal.SIGTERM, record)
    decided = threading.Event()
    frames_now = sys._current_frames
    main = threading.main_thread().ident

    def slow_frames() -> dict[int, Any]:
        frames = frames_now()
        frame = frames.get(main or 0)
        in_hook = False
        while frame is not None:
            in_hook, frame = in_hook or frame.f_code.co_name == "_unraisable", frame.f_back
        if threading.current_thread().name == "edge-signal" and not in_hook:
            decided.set()
            time.sleep(0.3)  # the command ends meanwhile
        return frames

    def in_a_callback(_: object) -> None:
        signal.raise_signal(signal.SIGTERM)

    monkeypatch.setattr(sys, "_current_frames", slow_frames)
    try:
        with OrderlyExit():
            watched = _Watched()
            ref = weakref.ref(watched, in_a_callback)
            del watched
            assert ref() is None and decided.wait(5)
        time.sleep(0.5)
        assert got == [] and signal.getsignal(signal.SIGTERM) is record
    finally:
        signal.signal(signal.SIGTERM, previous)
