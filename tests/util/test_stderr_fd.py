"""edge.util.stderr_fd: what a C library writes to descriptor 2 is dropped by its lines;
everything else, from Python or other threads, comes through as it is written (a call that
hangs holds nothing back), and after an error too."""

from __future__ import annotations

import os
import sys
import threading
import time

import pytest

from edge.util.stderr_fd import dropping_stderr_lines


def _opencv(line: str) -> bool:
    return line.startswith("OpenCV:")


def test_the_matching_lines_are_dropped_and_the_rest_pass_on(capfd: pytest.CaptureFixture[str]) -> None:
    with dropping_stderr_lines(_opencv):
        os.write(2, b"OpenCV: FFMPEG: tag 0x30385056/'VP80' is not supported\n")
        print("a warning of edge's", file=sys.stderr)
        os.write(2, b"a library's own line\nno newline at the end")
    os.write(2, b"\nafter\n")
    assert (
        capfd.readouterr().err == "a warning of edge's\na library's own line\nno newline at the end\nafter\n"
    )


def test_an_error_in_the_block_loses_no_line_and_restores_stderr(capfd: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(RuntimeError, match="the writer failed"), dropping_stderr_lines(_opencv):
        os.write(2, b"OpenCV: dropped\nkept\n")
        raise RuntimeError("the writer failed")
    os.write(2, b"stderr is itself again\n")
    assert capfd.readouterr().err == "kept\nstderr is itself again\n"


def test_threads_take_turns_and_leave_stderr_where_it_was(capfd: pytest.CaptureFixture[str]) -> None:
    """Two sinks opening at once: had both redirected together, the second would put back the
    first's file, and stderr would stay in it."""
    started = threading.Barrier(4)

    def opening(n: int) -> None:
        started.wait()
        for i in range(20):
            with dropping_stderr_lines(_opencv):
                os.write(2, f"OpenCV: {n}.{i}\n{n}.{i}\n".encode())

    threads = [threading.Thread(target=opening, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    os.write(2, b"end\n")
    lines = capfd.readouterr().err.splitlines()
    assert sorted(lines[:-1]) == sorted(f"{n}.{i}" for n in range(4) for i in range(20))
    assert lines[-1] == "end"


def _stderr_until(capfd: pytest.CaptureFixture[str], text: str) -> str:
    """What reaches stderr until ``text`` has (10 s at most), read while the block still runs."""
    seen = ""
    deadline = time.monotonic() + 10
    while text not in seen and time.monotonic() < deadline:
        time.sleep(0.01)
        seen += capfd.readouterr().err
    return seen


def test_lines_pass_on_while_the_call_still_runs(capfd: pytest.CaptureFixture[str]) -> None:
    """A writer that hangs on a disk that does not answer: the watchdog's warning, written
    meanwhile, is on stderr before the call returns."""
    with dropping_stderr_lines(_opencv):
        os.write(2, b"OpenCV: FFMPEG: tag 0x30385056\nwarning: sink 'drive.webm' is stuck\n")
        seen = _stderr_until(capfd, "stuck")
    assert seen == "warning: sink 'drive.webm' is stuck\n"


def test_a_status_line_ending_in_a_carriage_return_passes_on_as_it_comes(
    capfd: pytest.CaptureFixture[str],
) -> None:
    with dropping_stderr_lines(_opencv):
        os.write(2, b"\r 12 fps  frame 300")  # no end yet: held until the line is whole
        os.write(2, b"\r 12 fps  frame 301\r")
        seen = _stderr_until(capfd, "301")
    assert seen == "\r 12 fps  frame 300\r 12 fps  frame 301\r"
