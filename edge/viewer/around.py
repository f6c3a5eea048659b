"""The things around the vehicle on every camera's viewer of a run of several (``edge run
--camera ... --sink http://127.0.0.1:8080``): one fusion of every camera's newest frame, as
``?lines=fused`` writes it (edge.stream.object_sinks.FusedLines), updated as each camera's
frame reaches its viewer, and each viewer's ``/stats`` holding the newest (``around``), which
its ``/cameras`` page draws from above."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any


class Around:
    """One fusion shared by a run's viewers: ``update`` with each camera's frame (from its
    viewer's thread), and every viewer's server given the line it makes, in the order made."""

    def __init__(self) -> None:
        from edge.stream.object_sinks import FusedLines

        self._lock = threading.Lock()
        self._lines = FusedLines()
        self._servers: list[Any] = []

    def add(self, server: Any) -> None:
        """A viewer's server (ViewerServer.publish_around) that shows what is fused."""
        with self._lock:
            self._servers.append(server)

    def update(self, result: Any) -> None:
        """Fuse ``result``, a camera's newest frame, with the other cameras' newest."""
        with self._lock:  # a newer line is never replaced by an older one
            line = self._lines.record(result)
            for server in self._servers:
                server.publish_around(line)


def share_around(pipelines: Mapping[str, Any]) -> Around | None:
    """One Around for the web viewers of the cameras' Pipelines (edge run), where more than one
    camera has a viewer; None where fewer do."""
    viewers = [
        (name, sink) for name, p in pipelines.items() for sink in p.sinks if hasattr(sink, "show_around")
    ]
    if len({name for name, _ in viewers}) < 2:
        return None
    around = Around()
    for _, sink in viewers:
        sink.show_around(around)
    return around
