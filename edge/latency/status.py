"""A live one-line status (rich) while a stream runs on a terminal; off a terminal (a
service's journal, a log file) the same line every ``log_every_s`` seconds instead, so a
run that lasts days still says how it is doing."""

from __future__ import annotations

from types import TracebackType
from typing import Any, Protocol

from edge.util.progress import PeriodicLog

DEFAULT_LOG_EVERY_S = 60.0


class HasStatus(Protocol):
    """What the line is read from: a LatencyTracker, or several cameras' (edge.stream.multicam)."""

    def status_line(self) -> str: ...


class StatusLine:
    """``enabled``: on a terminal, the live line; elsewhere a PeriodicLog of it every
    ``log_every_s`` seconds (0: none)."""

    def __init__(
        self,
        tracker: HasStatus,
        *,
        enabled: bool = True,
        refresh_per_second: float = 4,
        log_every_s: float = 0.0,
    ) -> None:
        self.tracker = tracker
        self._live: Any = None
        self._log: PeriodicLog | None = None
        if enabled:
            from rich.console import Console
            from rich.live import Live
            from rich.text import Text

            console = Console(stderr=True)
            if console.is_terminal:
                self._live = Live(
                    get_renderable=lambda: Text(tracker.status_line()),
                    console=console,
                    refresh_per_second=refresh_per_second,
                    transient=True,
                )
            elif log_every_s > 0:
                self._log = PeriodicLog(tracker.status_line, every_s=log_every_s)

    @property
    def active(self) -> bool:
        """Whether the live line is shown (a terminal)."""
        return self._live is not None

    @property
    def logging(self) -> bool:
        """Whether the line is printed every ``log_every_s`` seconds instead."""
        return self._log is not None

    def __enter__(self) -> StatusLine:
        if self._live is not None:
            self._live.start()
        if self._log is not None:
            self._log.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._live is not None:
            self._live.stop()
        if self._log is not None:
            self._log.stop()
