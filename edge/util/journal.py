"""Standard error as systemd's journal: levels it can filter on, and no second time stamp.

A service's standard error is a stream into the journal, which stamps each line itself and
reads a kernel-style level prefix (``<4>`` a warning, ``<3>`` an error) at its start, so
that ``journalctl -u edge-dashcam -p warning`` shows a run's warnings without the status
line it logs every minute for days; a traceback is an error, and faulthandler's stacks (the
watchdog's kill) go in as ``crit`` over a connection of their own. systemd says the stream
is the journal through ``$JOURNAL_STREAM`` (its device and inode); anywhere else nothing
changes.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any, TextIO

WARNING, ERROR = "<4>", "<3>"
# how Python's hooks begin a traceback: the main thread's, another's, an unraisable one's
TRACEBACK_STARTS = ("Traceback (most recent call last):", "Exception in thread ", "Exception ignored in")


def stderr_is_journal() -> bool:
    """Whether file descriptor 2 is the journal stream systemd connected (not merely a
    descendant's inherited variable with stderr redirected elsewhere)."""
    device, _, inode = os.environ.get("JOURNAL_STREAM", "").partition(":")
    try:
        st = os.fstat(2)
        return (st.st_dev, st.st_ino) == (int(device), int(inode))
    except (OSError, ValueError):
        return False


def level_of(line: str) -> str:
    """The journal's level prefix for one of edge's lines ('' for information)."""
    if line.startswith("warning:"):
        return WARNING
    if line.startswith("error:"):
        return ERROR
    return ""


class JournalLevels:
    """A text stream that writes whole lines to ``stream``, each starting with its level.
    Lines are gathered per thread, since print() writes a line and its newline in two
    calls, and threads (the sinks, the watch, the status) print at once."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self._local = threading.local()

    def write(self, text: str) -> int:
        pending: str = getattr(self._local, "pending", "") + text
        *lines, self._local.pending = pending.split("\n")
        if lines:
            self._emit("".join(self._start(line) + line + "\n" for line in lines))
        return len(text)

    def _start(self, line: str) -> str:
        # a line whose beginning went out with an earlier flush already has its level
        if getattr(self._local, "midline", False):
            self._local.midline = False
            return ""
        # a crash's traceback is an error through its exception's line, the first not
        # indented: an unexpected failure, of a thread too, is found with -p err
        if line.startswith(TRACEBACK_STARTS):
            self._local.traceback = True
            return ERROR
        if getattr(self._local, "traceback", False):
            self._local.traceback = line.startswith((" ", "\t"))
            return ERROR
        return level_of(line)

    def _emit(self, text: str) -> None:
        with self._lock:
            self._stream.write(text)
            self._stream.flush()

    def flush(self) -> None:
        """Out with this thread's unfinished line too; the journal joins it to the rest."""
        pending = getattr(self._local, "pending", "")
        if pending:
            self._local.pending = ""
            self._emit(self._start(pending) + pending)
            self._local.midline = True
        else:
            with self._lock:
                self._stream.flush()

    def __getattr__(self, name: str) -> Any:  # fileno, isatty, encoding, buffer, …
        return getattr(self._stream, name)


def levels_on_stderr() -> bool:
    """Where standard error is the journal, give sys.stderr's lines their levels; whether
    it is (the ``edge`` command's start)."""
    if isinstance(sys.stderr, JournalLevels):
        return True
    if not stderr_is_journal():
        return False
    sys.stderr = JournalLevels(sys.stderr)
    return True


JOURNAL_STDOUT = "/run/systemd/journal/stdout"  # journald's stream socket, as systemd gives stderr
CRITICAL = 2


def stacks_to_journal(path: str = JOURNAL_STDOUT, *, identifier: str = "edge") -> bool:
    """Send faulthandler's dump (each thread's stack, at the watchdog's SIGABRT or a crash)
    over a connection of its own to journald, whose every line has the level ``crit``: it
    writes straight to its file from the signal handler, where no level can be added to a
    line, and on standard error it would sit among the status lines. The header is the one
    sd_journal_stream_fd(3) sends. Whether it is sent there (else it stays on stderr)."""
    import faulthandler
    import socket

    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        connection.connect(path)
        connection.shutdown(socket.SHUT_RD)
        # identifier, unit (journald finds it), priority, level prefix, then no forwarding
        connection.sendall(f"{identifier}\n\n{CRITICAL}\n0\n0\n0\n0\n".encode())
    except OSError:
        connection.close()
        return False
    faulthandler.enable(file=connection, all_threads=True)
    _kept.append(connection)  # faulthandler holds its descriptor, not the object
    return True


_kept: list[Any] = []
