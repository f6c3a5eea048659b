"""A live one-line status (rich) while a stream runs; silent when stderr is not a terminal."""

from __future__ import annotations

from types import TracebackType
from typing import Any

from edge.latency.tracker import LatencyTracker


class StatusLine:
    def __init__(
        self, tracker: LatencyTracker, *, enabled: bool = True, refresh_per_second: float = 4
    ) -> None:
        self.tracker = tracker
        self._live: Any = None
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

    @property
    def active(self) -> bool:
        return self._live is not None

    def __enter__(self) -> StatusLine:
        if self._live is not None:
            self._live.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._live is not None:
            self._live.stop()
