"""Standard error as systemd's journal stream: levels on warnings and errors, whole lines
from every thread, and the status line without a second time stamp."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from edge.util.journal import JournalLevels, level_of, levels_on_stderr, stderr_is_journal
from tests.stream.test_pipeline import CLI_ENV, ROOT


def test_the_journal_is_the_stream_its_variable_names(monkeypatch: pytest.MonkeyPatch) -> None:
    st = os.fstat(2)
    monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}")
    assert stderr_is_journal()
    # inherited by a process whose stderr went elsewhere: not the journal
    monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino + 1}")
    assert not stderr_is_journal()
    for junk in ("", "12", "a:b"):
        monkeypatch.setenv("JOURNAL_STREAM", junk)
        assert not stderr_is_journal()
    monkeypatch.delenv("JOURNAL_STREAM")
    assert not stderr_is_journal()
    assert not levels_on_stderr() and not isinstance(sys.stderr, JournalLevels)


def test_levels_of_edges_lines() -> None:
    assert level_of("warning: sink 'a.mkv' is slower than the stream") == "<4>"
    assert level_of("error: the source 'x.mp4' does not exist") == "<3>"
    assert level_of("frame 12  17.0 fps") == level_of("  warning: indented") == ""


def test_lines_printed_from_threads_at_once_come_out_whole_with_their_levels() -> None:
    out = io.StringIO()
    stream = JournalLevels(out)

    def say(n: int) -> None:
        for i in range(200):
            # print() writes the text and its newline in two calls
            print(f"warning: thread {n} line {i}" if i % 2 else f"thread {n} line {i}", file=stream)

    threads = [threading.Thread(target=say, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = out.getvalue().splitlines()
    assert len(lines) == 800
    whole = r"(<4>warning: thread \d line \d*[13579]|thread \d line \d*[02468])"
    assert all(re.fullmatch(whole, x) for x in lines)
    for n in range(4):  # each thread's lines in its order
        mine = [int(x.rsplit(" ", 1)[1]) for x in lines if f"thread {n} " in x]
        assert mine == list(range(200))


def test_an_unfinished_line_goes_out_on_flush_with_its_level_once() -> None:
    out = io.StringIO()
    stream = JournalLevels(out)
    assert stream.write("warning: half") == len("warning: half")
    assert out.getvalue() == ""
    stream.flush()
    stream.write(" and the rest\nerror: next\n")
    stream.write("tail")
    stream.flush()
    assert out.getvalue() == "<4>warning: half and the rest\n<3>error: next\ntail"
    assert stream.getvalue() == out.getvalue()  # the rest is the stream's own


def test_a_traceback_is_an_error_through_its_exception_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """Python's own hooks, of the main thread, of another and of an exception it cannot
    raise, write the traceback to sys.stderr: every line of it is an error, and the line
    after it is not."""
    out = io.StringIO()
    monkeypatch.setattr(sys, "stderr", JournalLevels(out))
    monkeypatch.setattr(threading, "excepthook", threading.__excepthook__)  # not pytest's
    monkeypatch.setattr(sys, "unraisablehook", sys.__unraisablehook__)

    def fail() -> None:
        raise RuntimeError("the engine lost its GPU")

    try:
        fail()
    except RuntimeError:
        sys.excepthook(*sys.exc_info())
    print("frame 12  17.0 fps", file=sys.stderr)
    thread = threading.Thread(target=fail, name="edge-sink-0")
    thread.start()
    thread.join()
    print("frame 13  17.0 fps", file=sys.stderr)

    class Broken:
        def __del__(self) -> None:  # an exception Python cannot raise: its unraisable hook says it
            fail()

    Broken()
    print("frame 14  17.0 fps", file=sys.stderr)
    lines = out.getvalue().splitlines()
    ignored = lines.index("frame 13  17.0 fps") + 1
    assert (
        lines[ignored].startswith("<3>Exception ignored in: <function ") and lines[-1] == "frame 14  17.0 fps"
    )
    assert all(x.startswith("<3>") for x in lines[ignored:-1]), lines
    lines = lines[:ignored]
    assert lines[0] == "<3>Traceback (most recent call last):"
    at = lines.index("frame 12  17.0 fps")
    assert lines[at - 1] == "<3>RuntimeError: the engine lost its GPU"
    assert lines[at + 1].startswith("<3>Exception in thread edge-sink-0")
    assert lines[-2] == "<3>RuntimeError: the engine lost its GPU" and lines[-1] == "frame 13  17.0 fps"
    assert all(x.startswith("<3>") for x in lines[:at] + lines[at + 1 : -1]), lines
    assert any(x.startswith("<3>    raise RuntimeError") for x in lines)


def edge_into_journal(tmp_path: Path, *args: str, env: dict[str, str]) -> tuple[int, str]:
    """``edge ARGS`` with standard error a file named by $JOURNAL_STREAM, as systemd
    connects a service's; the exit status and what the file got."""
    said = tmp_path / f"stderr-{len(list(tmp_path.iterdir()))}.txt"
    with said.open("w") as err:
        st = os.fstat(err.fileno())
        env = {**CLI_ENV, **env, "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
        argv = [sys.executable, "-m", "edge.cli", *args]
        done = subprocess.run(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err, timeout=300, env=env)
    return done.returncode, said.read_text()


def test_edge_into_the_journal_gives_levels_and_leaves_the_stamping_to_it(
    tiny_engines: Path, tmp_path: Path
) -> None:
    run = ["run", "synthetic://?size=128x256&fps=20&frames=30", "--engines", str(tiny_engines), "--realtime"]
    # a watchdog period under 30 s is warned about
    short_watchdog = {"WATCHDOG_USEC": "1000000"}
    status, said = edge_into_journal(tmp_path, *run, "--status-every", "0.3", env=short_watchdog)
    assert status == 0, said
    lines = said.splitlines()
    assert any(x.startswith("<4>warning: the watchdog period is 1 s (WatchdogSec=)") for x in lines), said
    logged = [x for x in lines if re.match(r"frame \d+  ", x)]
    assert len(logged) >= 2 and all(x.endswith("(p50/p99 ms)") for x in logged), said
    assert not re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", said)
    assert not any(x.startswith("<") for x in lines if "warning:" not in x), said
    missing = ["run", str(tmp_path / "missing.mp4"), "--engines", str(tiny_engines)]
    status, said = edge_into_journal(tmp_path, *missing, env={})
    assert status != 0 and said.startswith("<3>error: "), said


def test_the_stacks_of_a_killed_run_go_to_the_journal_as_critical(tmp_path: Path) -> None:
    """A stream socket listening as journald's stdout socket does: a process that sends its
    faulthandler dump there, then is killed with SIGABRT (as by the watchdog), gives the
    header sd_journal_stream_fd sends (priority 2, no level prefix) and its stacks, every
    thread's. Where no journal listens, the dump stays on stderr."""
    import signal
    import socket

    path = str(tmp_path / "stdout")
    journal = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    journal.bind(path)
    journal.listen(1)
    journal.settimeout(60)
    child = (
        "import faulthandler, sys, threading, time; from edge.util.journal import stacks_to_journal; "
        "faulthandler.enable(); "  # as the edge command does first
        "print(stacks_to_journal(sys.argv[1]), flush=True); "
        "threading.Thread(target=time.sleep, args=(60,), name='edge-sink-0', daemon=True).start(); "
        "time.sleep(0.2); import os; os.abort()"
    )
    run = subprocess.Popen(
        [sys.executable, "-c", child, path],
        cwd=ROOT,
        env=CLI_ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    connection, _ = journal.accept()
    got = b""
    while chunk := connection.recv(65536):
        got += chunk
    out, err = run.communicate(timeout=60)
    journal.close()
    assert run.returncode == -signal.SIGABRT and out == "True\n"
    header, _, stacks = got.decode().partition("0\n0\n0\n0\n")
    assert header == "edge\n\n2\n", got
    assert stacks.startswith("Fatal Python error: Aborted"), stacks
    assert "Current thread 0x" in stacks and "Thread 0x" in stacks, "every thread's stack"
    assert "Fatal Python error" not in err, "the stacks went to the journal, not stderr"
    # no journal there: stderr keeps them
    gone = str(tmp_path / "missing")
    done = subprocess.run(
        [sys.executable, "-c", child, gone], cwd=ROOT, env=CLI_ENV, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == -signal.SIGABRT and done.stdout == "False\n"
    assert "Fatal Python error: Aborted" in done.stderr
