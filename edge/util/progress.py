"""Progress of long work (a build, a benchmark, training, calibration) on standard error.

On a terminal, a tqdm bar redrawn in place. Off one (a log file, a pipe, a CI job, a
service's journal) a redrawn bar is a stream of carriage returns, one line of kilobytes
that nothing reads well: there the same bar's text is printed as a line of its own every
``log_every_s`` seconds instead, so a long job in a log still says how far it is.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from tqdm import tqdm

from edge.util.journal import stderr_is_journal

# off a terminal, a progress line this often: a 60 s benchmark says twice how far it is
LOG_EVERY_S = 30.0


class PeriodicLog:
    """Print ``line()`` to standard error every ``every_s`` seconds (the first after
    ``every_s``), stamped with the local time unless the journal stamps it, from a thread,
    until stopped."""

    def __init__(self, line: Callable[[], str], *, every_s: float) -> None:
        if not every_s > 0:
            raise ValueError(f"every_s is {every_s}; expected > 0")
        self._line, self._every_s = line, every_s
        self._stamped = not stderr_is_journal()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="edge-status-log", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self._every_s):
            stamp = f"{time.strftime('%Y-%m-%d %H:%M:%S')} " if self._stamped else ""
            print(f"{stamp}{self._line()}", file=sys.stderr, flush=True)

    def start(self) -> PeriodicLog:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)


class _Nowhere:
    """Where an off-terminal bar draws: nowhere (its text is logged by a PeriodicLog)."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


class LoggedBar(tqdm):
    """A tqdm bar that draws nowhere and prints its text every ``log_every_s`` seconds,
    until closed. It counts, sets totals and postfixes as any bar does."""

    def __init__(self, *args: Any, log_every_s: float = LOG_EVERY_S, **kwargs: Any) -> None:
        kwargs["file"] = _Nowhere()
        super().__init__(*args, **kwargs)
        self._log = PeriodicLog(self._line, every_s=log_every_s).start()

    def _line(self) -> str:
        # the bar's own text (count, rate, postfix) without the drawn bar itself
        return self.format_meter(**{**self.format_dict, "ncols": 0})

    def close(self) -> None:
        log = getattr(self, "_log", None)
        if log is not None:
            log.stop()
        super().close()


def progress_bar(
    *, enabled: bool = True, log_every_s: float = LOG_EVERY_S, file: Any = None, **kwargs: Any
) -> tqdm:
    """A tqdm bar (``kwargs``: total, desc, unit, ...) on standard error: drawn in place
    on a terminal, a LoggedBar anywhere else, a bar that does nothing when not ``enabled``
    (--quiet). A ``file`` of the caller's own is drawn on as it is."""
    if not enabled:
        return tqdm(disable=True, **kwargs)
    if file is not None or sys.stderr.isatty():
        return tqdm(file=file or sys.stderr, **kwargs)
    return LoggedBar(log_every_s=log_every_s, **kwargs)
