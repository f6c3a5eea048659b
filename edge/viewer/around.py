"""The things around the vehicle on every camera's viewer of a run of several (``edge run
--camera ... --sink http://127.0.0.1:8080``): one fusion of every camera's newest frame, as
``?lines=fused`` writes it (edge.stream.object_sinks.FusedLines), updated as each camera's
frame reaches its viewer, and each viewer's ``/stats`` holding the newest (``around``), which
its ``/cameras`` page draws from above, with what each camera sees (``around_views``: its
place on the vehicle, which way it looks and how wide)."""

from __future__ import annotations

import sys
import threading
from collections.abc import Mapping
from typing import Any


class Around:
    """One fusion shared by a run's viewers: ``update`` with each camera's frame (from its
    viewer's thread), and every viewer's server given the line it makes, in the order made.
    ``views``: what each camera sees (camera_view), which every viewer's server shows."""

    def __init__(self, *, views: list[dict[str, Any]] | None = None, fusion: Any = None) -> None:
        """``fusion``: how the things are fused (FusionOptions; None: the defaults)."""
        from edge.stream.object_sinks import FusionOptions

        self.views = list(views or [])
        self.fusion = fusion or FusionOptions()
        self._lock = threading.Lock()
        self._lines = self.fusion.lines()
        self._servers: list[Any] = []

    def add(self, server: Any) -> None:
        """A viewer's server (ViewerServer.publish_around) that shows what is fused."""
        with self._lock:
            server.around_views = list(self.views)
            self._servers.append(server)

    def update(self, result: Any) -> None:
        """Fuse ``result``, a camera's newest frame, with the other cameras' newest."""
        with self._lock:  # a newer line is never replaced by an older one
            line = self._lines.record(result)
            for server in self._servers:
                server.publish_around(line)


def camera_view(name: str, tracker: Any) -> dict[str, Any]:
    """What camera ``name`` sees, from its ObjectTracker: ``yaw_deg`` (left of straight ahead),
    ``hfov_deg`` (None: not known), and its place, ``lateral_m`` right of the vehicle's middle
    and ``ahead_m`` ahead of its reference point."""
    from edge.postprocess.facing import yaw_deg

    return {
        "camera": name,
        "yaw_deg": yaw_deg(tracker.facing),
        "hfov_deg": tracker.hfov_deg,
        "lateral_m": tracker.mount_offset_m,
        "ahead_m": tracker.mount_ahead_m,
    }


def share_around(pipelines: Mapping[str, Any]) -> Around | None:
    """One Around for the web viewers of the cameras' Pipelines (edge run), where more than one
    camera has a viewer, fused as the first one's ``?gate=&max_age=`` say (said where another's
    say otherwise); None where fewer do."""
    viewers = [
        (name, sink) for name, p in pipelines.items() for sink in p.sinks if hasattr(sink, "show_around")
    ]
    if len({name for name, _ in viewers}) < 2:
        return None
    first, fusion = viewers[0][0], viewers[0][1].fusion
    if others := sorted({sink.uri for _, sink in viewers if sink.fusion != fusion}):
        print(
            f"warning: every viewer fuses the cameras' things one way, as the viewer of camera {first!r} "
            f"asks ({viewers[0][1].uri}); another way, asked by {', '.join(others)}, is not taken",
            file=sys.stderr,
        )
    views = [camera_view(name, p.object_tracker) for name, p in pipelines.items()]
    around = Around(views=views, fusion=fusion)
    for _, sink in viewers:
        sink.show_around(around)
    return around
