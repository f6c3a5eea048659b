"""Lines a C library prints straight to file descriptor 2, dropped by what they say.

OpenCV's FFmpeg writer prints a line to stderr for every WebM file it opens (no four-character
code is "supported" by that container; the VP8 encoder is used all the same), and OpenCV's log
level does not reach it. While such a call runs, descriptor 2 is a pipe that a thread reads:
every other line, from any thread, goes on to stderr as it comes, so a call that hangs (a disk
that does not answer) holds back no warning of the watchdog's.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
from collections.abc import Callable, Iterator

_LOCK = threading.Lock()  # one redirection at a time, or a second would put back the first's pipe
_LINE_END = re.compile(rb"(?<=[\n\r])")  # a status line ends in \r


@contextlib.contextmanager
def dropping_stderr_lines(drop: Callable[[str], bool]) -> Iterator[None]:
    """Within the block, descriptor 2's lines that ``drop`` matches are dropped and the rest
    passed on as they come. Where descriptor 2 is not open (or no pipe can be made), the block
    just runs."""
    with _LOCK:
        try:
            saved = os.dup(2)
        except OSError:
            saved = None
        pipe = None
        if saved is not None:
            try:
                pipe = os.pipe()
            except OSError:
                os.close(saved)
        if saved is None or pipe is None:
            yield
            return
        read_end, write_end = pipe
        # the relay owns read_end and saved and closes them when the pipe ends: a child process
        # started meanwhile keeps the pipe open for as long as it lives, and is not waited for
        relay = threading.Thread(
            target=_relay, args=(read_end, saved, drop), name="edge-stderr-relay", daemon=True
        )
        relay.start()
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        os.dup2(write_end, 2)
        os.close(write_end)
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                sys.stderr.flush()
            os.dup2(saved, 2)  # the pipe's last write end closed: the relay reads to its end
            relay.join(timeout=2.0)


def _relay(read_end: int, out: int, drop: Callable[[str], bool]) -> None:
    """Pass the pipe's lines on to ``out`` until the pipe ends; it is read to its end whatever
    happens to ``out``, so a writer never waits on a full pipe."""
    rest = b""
    try:
        while chunk := os.read(read_end, 65536):
            *lines, rest = _LINE_END.split(rest + chunk)
            _write(out, lines, drop)
        _write(out, [rest], drop)
    finally:
        os.close(read_end)
        os.close(out)


def _write(out: int, lines: list[bytes], drop: Callable[[str], bool]) -> None:
    kept = b"".join(line for line in lines if line and not drop(line.decode(errors="replace")))
    with contextlib.suppress(OSError):  # stderr closed, or its disk full: as without the relay
        while kept:
            kept = kept[os.write(out, kept) :]
