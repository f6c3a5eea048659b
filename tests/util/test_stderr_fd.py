"""edge.util.stderr_fd: what a C library writes to descriptor 2 is held back by its lines;
everything else, from Python or other threads, comes through after, even past an error."""

from __future__ import annotations

import os
import sys
import threading

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
