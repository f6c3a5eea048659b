"""Lines a C library prints straight to file descriptor 2, held back by what they say.

OpenCV's FFmpeg writer prints a line to stderr for every WebM file it opens (no four-character
code is "supported" by that container, the VP8 encoder is used all the same); OpenCV's log level
does not reach it. Everything else written to stderr meanwhile, by any thread, is passed on
after, so nothing is lost, only delayed by the few milliseconds the call takes.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from typing import IO

_LOCK = threading.Lock()  # one redirection at a time, or a second would keep the first's file


@contextlib.contextmanager
def dropping_stderr_lines(drop: Callable[[str], bool]) -> Iterator[None]:
    """Within the block, descriptor 2 goes to a file; after it, its lines that ``drop`` does
    not match go on to stderr. Where descriptor 2 is not open (or no file can be made), the
    block just runs."""
    with _LOCK, contextlib.ExitStack() as stack:
        try:
            saved = os.dup(2)
            stack.callback(os.close, saved)
            held = stack.enter_context(tempfile.TemporaryFile())
        except OSError:  # no stderr, or no room for a file: the lines go where they would
            held = None
        if held is None:
            yield
            return
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                sys.stderr.flush()
            os.dup2(saved, 2)
            _pass_on(held, drop)


def _pass_on(held: IO[bytes], drop: Callable[[str], bool]) -> None:
    held.seek(0)
    kept = b"".join(
        line for line in held.read().splitlines(keepends=True) if not drop(line.decode(errors="replace"))
    )
    while kept:
        kept = kept[os.write(2, kept) :]
