"""``drive.mcap``: a run's pictures and what was found, in one MCAP file (the log format
Foxglove opens, and ROS 2 records in), every message at its frame's capture time.

Its channels, JSON-encoded, each with its JSON Schema in the file:

- ``/camera/image``: the frame as the camera gave it, JPEG (``foxglove.CompressedImage``),
  and ``/camera/annotations``: each thing's box and label over it
  (``foxglove.ImageAnnotations``; red where it is warned of);
- ``/camera/panoptic`` and ``/camera/depth``: the engines' pictures as the video sinks draw
  them (``foxglove.CompressedImage``);
- ``/camera/objects``: each frame's line as ``objects.jsonl`` has it (``edge schema
  objects``), and ``/camera/warnings``: the warnings log's lines (``edge schema warnings``);
- ``/camera/scene``, where the camera's field of view places the objects: each a box of its
  class's size on the road around the vehicle, with its label, for the 3D panel
  (``foxglove.SceneUpdate``, edge.stream.foxglove_scene), and where its height is known too,
  ``/camera/calibration`` and ``/camera/transform``: the camera that placed them
  (edge.stream.foxglove_camera).

``?views=input,panoptic,depth`` picks the picture channels (default: those of the engines that
run; ``input`` brings the annotations), ``?quality=`` the JPEGs' (1-100, default 85). Several cameras
share one file, each camera's channels under its name (``/front/image``, ``/rear/objects``).
The file is written as the other file sinks are: to a hidden partial file renamed when
finished, flushed as it goes, stopped whole before its disk is full (edge.stream.disk).
Needs the ``mcap`` package (``pip install 'edge-perception[mcap]'``).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import DependencyError
from edge.stream.disk import DEFAULT_KEEP_FREE, DiskRoom, checked_output
from edge.stream.durable import put_in_place
from edge.stream.foxglove_messages import (
    DEFAULT_QUALITY,
    FrameChoice,
    Message,
    Schema,
    warning_messages,
)
from edge.stream.partial import PartialLock, partial_path, rescue_leftover
from edge.util.numbers import strict_dumps


class McapSink:
    """An MCAP file of each frame's pictures, boxes, objects line and warnings (the module's
    doc). It takes results (``write_result``) and draws nothing itself: the pipeline renders
    the views it ``shows``."""

    def __init__(
        self,
        uri: str,
        path: Path,
        *,
        views: tuple[str, ...] | None = None,
        quality: int = DEFAULT_QUALITY,
        cloud: int | None = None,
        keep_free: int = DEFAULT_KEEP_FREE,
        make_room: Callable[[int], int] | None = None,
        warnings: Any = None,
        last: bool = True,
        fused: Any = None,
    ) -> None:
        """``views``: the picture channels (None: every one whose engine runs, match_engines).
        ``cloud``: every how many of the depth map's pixels make a point of its point cloud
        (None or 0: no point cloud).
        ``keep_free``, ``make_room``: as DiskRoom's. ``warnings``: the WarningLines that
        tells which frames begin and end a warning (a segment's is the recording's: a warning
        cleared in the next segment is the one begun in this); ``last``: whether this file
        gets the clear lines of the warnings still on as the run ends. ``fused``: the FusedLines of
        ``/around`` (FrameChoice's), a segmented sink's across its files."""
        try:
            from mcap.writer import Writer  # noqa: F401 (refused before the run, not at its first frame)
        except ImportError as exc:
            raise DependencyError(
                f"sink {uri!r} writes MCAP, which needs the mcap package: pip install 'edge-perception[mcap]'"
            ) from exc
        from edge.stream.object_sinks import WarningLines

        checked_output(uri, path, folder=False)
        rescue_leftover(uri, path)  # a dead run's file is kept, not overwritten
        self.uri, self.path = uri, path
        self.choice = FrameChoice(
            uri, views=views, quality=quality, cloud=cloud, default_cloud=0, fused=fused
        )
        self.partial = partial_path(path)
        self._lock = PartialLock(
            uri=uri, partial=self.partial, refused=lambda exc, what: self._room.refused(exc, what, kept=0)
        )
        self._room = DiskRoom(uri=uri, path=path, keep_free=keep_free, make_room=make_room)
        self._warnings = warnings if warnings is not None else WarningLines()
        self.last = last
        self._file: Any = None
        self._writer: Any = None
        self._schemas: dict[str, int] = {}
        self._channels: dict[str, int] = {}
        self._last_ns = 0
        self._broken: str | None = None  # a write the system refused: the file's tail is torn
        self._tracker: Any = None
        self.frames = 0
        self.messages = 0

    def attach(self, tracker: Any) -> None:
        """The run's tracker: what ran (its engines, how frames went in) goes into the file's
        metadata as it is finished."""
        self._tracker = tracker

    @property
    def shows(self) -> frozenset[str]:
        """The engines' pictures the pipeline draws for it."""
        return self.choice.shows

    def match_engines(self, kinds: Collection[str]) -> None:
        """Keep the views of the engines that run (``kinds``): those not asked for are left
        out; one asked for is a SinkError (as a point cloud without a depth engine)."""
        self.choice.match_engines(kinds)

    def write(self, image: np.ndarray, seq: int, t_capture_ns: int | None = None) -> None:
        from edge.stream.object_sinks import _needs_results

        raise _needs_results(self.uri)

    def write_result(self, result: Any) -> None:
        ns, messages = self.choice.messages(result, self._warnings)
        self._write_frame(messages, ns)

    def _write_frame(self, messages: list[Message], ns: int) -> None:
        encoded = [(topic, schema, strict_dumps(make()).encode()) for topic, schema, make in messages]
        size = self._file.tell() if self._file is not None else 0
        self._room.check(sum(len(data) for *_, data in encoded), kept=self.frames, size=size)
        self._open()
        self._last_ns = max(self._last_ns, ns)
        try:
            for topic, schema, data in encoded:
                channel = self._channel(topic, schema)
                self._writer.add_message(channel, log_time=ns, data=data, publish_time=ns)
                self.messages += 1
            # a chunk a frame, out of memory: what the disk check sees, and a killed run loses one frame
            self._writer.flush()
        except OSError as exc:
            self._broken = f"{exc.strerror or exc}"
            raise self._room.refused(
                exc, f"writing {str(self.partial)!r}", kept=self.frames, stop=True
            ) from exc
        self.frames += 1

    def _channel(self, topic: str, schema: Schema) -> int:
        if topic not in self._channels:
            name, data = schema
            if name not in self._schemas:
                self._schemas[name] = self._writer.register_schema(
                    name=name, encoding="jsonschema", data=data
                )
            self._channels[topic] = self._writer.register_channel(
                topic=topic, message_encoding="json", schema_id=self._schemas[name]
            )
        return self._channels[topic]

    def _metadata(self) -> dict[str, str]:
        """What made the file: edge's version, the frames in it, and each engine that ran."""
        from edge import __version__

        data = {"version": __version__, "frames": str(self.frames)}
        tracker = self._tracker
        if tracker is not None:
            data |= {f"engine.{kind}": what for kind, what in tracker.engines.items()}
            if tracker.fit:
                data["fit"] = str(tracker.fit)
        return data

    def _open(self) -> None:
        if self._writer is not None:
            return
        from mcap.writer import Writer

        from edge import __version__

        self._lock.take()
        self._file = open(self.partial, "wb")  # noqa: SIM115 (closed in close())
        self._writer = Writer(self._file)
        self._writer.start(profile="", library=f"edge {__version__}")
        self._room.flush_as_written(lambda: [self.partial])  # to the disk as it goes, for a power cut

    def close(self) -> None:
        try:
            if self._writer is None:
                return
            ended = [json.loads(line) for line in self._warnings.finish().splitlines()] if self.last else []
            try:
                if self._broken is None:
                    for line in ended:
                        for topic, schema, make in warning_messages(line, self._last_ns):
                            data = strict_dumps(make()).encode()
                            self._writer.add_message(
                                self._channel(topic, schema),
                                log_time=self._last_ns,
                                data=data,
                                publish_time=self._last_ns,
                            )
                    self._writer.add_metadata("edge", self._metadata())
                    self._writer.finish()  # the last chunk, and the index a reader seeks with
                self._file.close()
            except OSError as exc:
                self._broken = f"{exc.strerror or exc}"
            finally:
                self._writer = None
            failed = self._broken or self._room.flush_last()
            put_in_place(
                self.uri,
                self.partial,
                self.path,
                failed=failed,
                what="the MCAP file",
                hint=" (mcap recover reads what it holds)",
            )
        finally:
            with contextlib.suppress(OSError):
                if self._file is not None and not self._file.closed:
                    self._file.close()
            self._room.stop_flushing()
            self._lock.release()


def segmented_mcap_sink(
    uri: str,
    path: Path,
    *,
    segment_s: float,
    views: tuple[str, ...] | None = None,
    quality: int = DEFAULT_QUALITY,
    cloud: int | None = None,
    keep_free: int = DEFAULT_KEEP_FREE,
    delete_oldest: bool = False,
    fusion: Any = None,
) -> Any:
    """``drive.mcap`` a new file every ``segment_s`` seconds of capture time, numbered and
    deleted (``delete_oldest``) as the video segments are (edge.stream.segments); ``fusion``:
    how ``/around`` fuses the cameras' things (FusionOptions; None: the defaults), one fusion
    across the files, as one warnings log is."""
    from edge.stream.object_sinks import FusionOptions, WarningLines
    from edge.stream.segments import SegmentedSink

    class SegmentedMcapSink(SegmentedSink):
        def __init__(self) -> None:
            super().__init__(uri, path, segment_s=segment_s, keep_free=keep_free, delete_oldest=delete_oldest)
            self._warnings = WarningLines()
            fused = (fusion or FusionOptions()).lines()
            self.choice = FrameChoice(
                uri, views=views, quality=quality, cloud=cloud, default_cloud=0, fused=fused
            )
            self._tracker: Any = None

        @property
        def shows(self) -> frozenset[str]:
            return self.choice.shows

        def match_engines(self, kinds: Collection[str]) -> None:
            self.choice.match_engines(kinds)

        def attach(self, tracker: Any) -> None:
            self._tracker = tracker

        def _open_segment(self, segment: Path) -> McapSink:
            sink = McapSink(
                uri,
                segment,
                views=self.choice.views,
                quality=quality,
                cloud=self.choice.cloud,
                keep_free=keep_free,
                make_room=self._make_room(),
                warnings=self._warnings,
                last=False,
                fused=self.choice.fused,
            )
            sink.attach(self._tracker)
            return sink

        def write(self, image: np.ndarray, seq: int, t_capture_ns: int | None = None) -> None:
            from edge.stream.object_sinks import _needs_results

            raise _needs_results(uri)

        def write_result(self, result: Any) -> None:
            t_ns = int(result.frame.t_capture_ns)
            self._write(self._time_due(t_ns), lambda sink: sink.write_result(result), t_ns)

        def close(self) -> None:
            if self._current is not None and self._stopped is None:
                self._current.last = True  # the warnings still on are cleared in the last file
            super().close()

    return SegmentedMcapSink()
