"""``drive.mcap``: a run's pictures and what was found, in one MCAP file (the log format
Foxglove opens, and ROS 2 records in), every message at its frame's capture time.

Its channels, JSON-encoded, each with its JSON Schema in the file:

- ``/camera/image``: the frame as the camera gave it, JPEG (``foxglove.CompressedImage``),
  and ``/camera/annotations``: each thing's box and label over it
  (``foxglove.ImageAnnotations``; red where it is warned of);
- ``/camera/panoptic`` and ``/camera/depth``: the engines' pictures as the video sinks draw
  them (``foxglove.CompressedImage``);
- ``/camera/objects``: each frame's line as ``objects.jsonl`` has it (``edge schema
  objects``), and ``/camera/warnings``: the warnings log's lines (``edge schema warnings``).

``?views=input,panoptic,depth`` picks the picture channels (default: all three; ``input``
brings the annotations), ``?quality=`` the JPEGs' (1-100, default 85). Several cameras
share one file, each camera's channels under its name (``/front/image``, ``/rear/objects``).
The file is written as the other file sinks are: to a hidden partial file renamed when
finished, flushed as it goes, stopped whole before its disk is full (edge.stream.disk).
Needs the ``mcap`` package (``pip install 'edge-perception[mcap]'``).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
from collections.abc import Callable, Collection
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import numpy as np

from edge.errors import DependencyError, SinkError, SinkStopped
from edge.stream.disk import DEFAULT_KEEP_FREE, DiskRoom, checked_output
from edge.stream.durable import sync_folder
from edge.stream.partial import PartialLock, partial_path, rescue_leftover
from edge.util.numbers import strict_dumps

VIEWS = ("input", "panoptic", "depth")
DEFAULT_QUALITY = 85
WARNED_RGBA = (1.0, 0.2, 0.2, 1.0)
OTHER_RGBA = (0.2, 0.9, 0.4, 1.0)
POINTS_LINE_LOOP = 2  # foxglove.PointsAnnotation's type of a closed outline


def mcap_options(uri: str, query: str) -> tuple[tuple[str, ...] | None, int]:
    """The views (None: not asked, so those of the engines that run) and JPEG quality
    ``query`` asks for; SinkError naming what is wrong."""
    views: tuple[str, ...] | None = None
    quality = DEFAULT_QUALITY
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key == "views":
            asked = tuple(v.strip() for v in value.split(",") if v.strip())
            unknown = [v for v in asked if v not in VIEWS]
            if unknown or not asked:
                raise SinkError(
                    f"sink {uri!r}: views={value!r}; expected a comma-separated list of {', '.join(VIEWS)} "
                    "(the camera's frame with its boxes, the panoptic overlay, the depth)"
                )
            views = tuple(dict.fromkeys(asked))
        elif key == "quality":
            if not value.isdigit() or not 1 <= int(value) <= 100:
                raise SinkError(f"sink {uri!r}: quality={value!r}; expected a JPEG quality from 1 to 100")
            quality = int(value)
        else:
            raise SinkError(f"sink {uri!r}: unknown option {key!r}; an .mcap sink takes views= and quality=")
    return views, quality


def _schema(title: str, properties: dict[str, Any]) -> bytes:
    return json.dumps({"title": title, "type": "object", "properties": properties}).encode()


_TIME = {"type": "object", "properties": {"sec": {"type": "integer"}, "nsec": {"type": "integer"}}}
_POINT = {"type": "object", "properties": {"x": {"type": "number"}, "y": {"type": "number"}}}
_COLOR = {"type": "object", "properties": {k: {"type": "number"} for k in "rgba"}}
# what Foxglove's panels recognise by name (docs.foxglove.dev: message schemas), with the fields written
IMAGE_SCHEMA = (
    "foxglove.CompressedImage",
    _schema(
        "foxglove.CompressedImage",
        {
            "timestamp": _TIME,
            "frame_id": {"type": "string"},
            "data": {"type": "string", "contentEncoding": "base64"},
            "format": {"type": "string"},
        },
    ),
)
ANNOTATIONS_SCHEMA = (
    "foxglove.ImageAnnotations",
    _schema(
        "foxglove.ImageAnnotations",
        {
            "points": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "timestamp": _TIME,
                        "type": {"type": "integer"},
                        "points": {"type": "array", "items": _POINT},
                        "outline_color": _COLOR,
                        "thickness": {"type": "number"},
                    },
                },
            },
            "texts": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "timestamp": _TIME,
                        "position": _POINT,
                        "text": {"type": "string"},
                        "font_size": {"type": "number"},
                        "text_color": _COLOR,
                        "background_color": _COLOR,
                    },
                },
            },
        },
    ),
)


def _time(ns: int) -> dict[str, int]:
    return {"sec": ns // 1_000_000_000, "nsec": ns % 1_000_000_000}


def _rgba(color: tuple[float, ...]) -> dict[str, float]:
    return dict(zip("rgba", color, strict=True))


def box_annotations(record: dict[str, Any], ns: int) -> dict[str, Any]:
    """The boxes and labels of an objects line, over the camera's frame: its boxes are in
    the engines' picture, ``size``, scaled by ``frame_size / size`` on each axis."""
    (h, w), (fh, fw) = record["size"], record["frame_size"]
    sx, sy = fw / w, fh / h
    stamp = _time(ns)
    points, texts = [], []
    for obj in record["objects"]:
        x1, y1, x2, y2 = obj["box"]
        x1, x2, y1, y2 = x1 * sx, x2 * sx, y1 * sy, y2 * sy
        color = _rgba(WARNED_RGBA if obj.get("warned") else OTHER_RGBA)
        points.append(
            {
                "timestamp": stamp,
                "type": POINTS_LINE_LOOP,
                "points": [{"x": x1, "y": y1}, {"x": x2, "y": y1}, {"x": x2, "y": y2}, {"x": x1, "y": y2}],
                "outline_color": color,
                "thickness": 2.0,
            }
        )
        label = obj["class"] + (f" #{obj['track']}" if obj.get("track") is not None else "")
        if obj.get("distance_m") is not None:
            label += f" {obj['distance_m']:.0f} m"
        texts.append(
            {
                "timestamp": stamp,
                "position": {"x": x1, "y": max(y1 - 2.0, 12.0)},
                "text": label,
                "font_size": 12.0,
                "text_color": _rgba((1.0, 1.0, 1.0, 1.0)),
                "background_color": {**color, "a": 0.6},
            }
        )
    return {"points": points, "texts": texts}


def matched_views(
    uri: str, views: tuple[str, ...], kinds: Collection[str], *, asked: bool
) -> tuple[str, ...]:
    """``views`` less those of engines not in ``kinds``: left out, or, ``asked`` for, refused."""
    missing = [v for v in views if v != "input" and v not in kinds]
    if missing and asked:
        raise SinkError(
            f"sink {uri!r} asks for the {', '.join(missing)} picture(s), and no such engine runs "
            f"(engines: {', '.join(kinds) or 'none'}); views here: "
            f"{', '.join(v for v in VIEWS if v == 'input' or v in kinds)}"
        )
    return tuple(v for v in views if v not in missing)


def _jpeg(image: np.ndarray, quality: int, uri: str) -> str:
    import cv2

    ok, buf = cv2.imencode(
        ".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    if not ok:
        raise SinkError(f"sink {uri!r}: OpenCV could not encode a {image.shape} picture as JPEG")
    return base64.b64encode(buf.tobytes()).decode()


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
        keep_free: int = DEFAULT_KEEP_FREE,
        make_room: Callable[[int], int] | None = None,
        warnings: Any = None,
        last: bool = True,
    ) -> None:
        """``views``: the picture channels (None: every one whose engine runs, match_engines).
        ``keep_free``, ``make_room``: as DiskRoom's. ``warnings``: the WarningLines that
        tells which frames begin and end a warning (a segment's is the recording's: a warning
        cleared in the next segment is the one begun in this); ``last``: whether this file
        gets the clear lines of the warnings still on as the run ends."""
        try:
            from mcap.writer import Writer  # noqa: F401 (refused before the run, not at its first frame)
        except ImportError as exc:
            raise DependencyError(
                f"sink {uri!r} writes MCAP, which needs the mcap package: pip install 'edge-perception[mcap]'"
            ) from exc
        from edge.stream.object_sinks import WarningLines

        checked_output(uri, path, folder=False)
        rescue_leftover(uri, path)  # a dead run's file is kept, not overwritten
        self.uri, self.path, self.quality = uri, path, quality
        self.asked, self.views = views is not None, views or VIEWS
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
        self.frames = 0
        self.messages = 0

    @property
    def shows(self) -> frozenset[str]:
        """The engines' pictures the pipeline draws for it."""
        return frozenset(self.views) & {"panoptic", "depth"}

    def match_engines(self, kinds: Collection[str]) -> None:
        """Keep the views of the engines that run (``kinds``): those not asked for are left
        out; one asked for is a SinkError."""
        self.views = matched_views(self.uri, self.views, kinds, asked=self.asked)

    def write(self, image: np.ndarray, seq: int, t_capture_ns: int | None = None) -> None:
        from edge.stream.object_sinks import _needs_results

        raise _needs_results(self.uri)

    def write_result(self, result: Any) -> None:
        from edge.stream.object_sinks import frame_header, objects_record
        from edge.stream.sinks import sink_image

        header = frame_header(result)
        ns = round(header["time_unix"] * 1e9)
        base = "/" + str(result.frame.meta.get("camera", "camera"))
        frame_id = base[1:]
        record = objects_record(result, header)
        messages: list[tuple[str, tuple[str, bytes], dict[str, Any]]] = []
        for view in self.views:
            picture = {
                "timestamp": _time(ns),
                "frame_id": frame_id,
                "data": _jpeg(sink_image(result, view), self.quality, self.uri),
                "format": "jpeg",
            }
            messages.append((f"{base}/{'image' if view == 'input' else view}", IMAGE_SCHEMA, picture))
        if "input" in self.views:
            messages.append((f"{base}/annotations", ANNOTATIONS_SCHEMA, box_annotations(record, ns)))
        messages.append((f"{base}/objects", _edge_schema("objects"), record))
        for line in self._warnings.events(result):
            messages.append((f"{base}/warnings", _edge_schema("warnings"), line))
        self._write_frame(messages, ns)

    def _write_frame(self, messages: list[tuple[str, tuple[str, bytes], dict[str, Any]]], ns: int) -> None:
        encoded = [(topic, schema, strict_dumps(body).encode()) for topic, schema, body in messages]
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

    def _channel(self, topic: str, schema: tuple[str, bytes]) -> int:
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
                        base = "/" + str(line.get("camera", "camera"))
                        channel = self._channel(f"{base}/warnings", _edge_schema("warnings"))
                        data = strict_dumps(line).encode()
                        self._writer.add_message(
                            channel, log_time=self._last_ns, data=data, publish_time=self._last_ns
                        )
                    self._writer.finish()  # the last chunk, and the index a reader seeks with
                self._file.close()
            except OSError as exc:
                self._broken = f"{exc.strerror or exc}"
            finally:
                self._writer = None
            failed = self._broken or self._room.flush_last()
            if failed:
                raise SinkStopped(
                    f"sink {self.uri!r}: the MCAP file could not be finished: {failed}; what was written is "
                    f"left in {str(self.partial)!r} (mcap recover reads what it holds)"
                )
            os.replace(self.partial, self.path)
            sync_folder(self.path, uri=self.uri)
        finally:
            with contextlib.suppress(OSError):
                if self._file is not None and not self._file.closed:
                    self._file.close()
            self._room.stop_flushing()
            self._lock.release()


@cache
def _edge_schema(name: str) -> tuple[str, bytes]:
    """edge's own JSON Schema of a line (edge.schemas), as the file carries it."""
    from edge.schemas import schema

    return f"edge.{name}", json.dumps(schema(name)).encode()


def segmented_mcap_sink(
    uri: str,
    path: Path,
    *,
    segment_s: float,
    views: tuple[str, ...] | None = None,
    quality: int = DEFAULT_QUALITY,
    keep_free: int = DEFAULT_KEEP_FREE,
    delete_oldest: bool = False,
) -> Any:
    """``drive.mcap`` a new file every ``segment_s`` seconds of capture time, numbered and
    deleted (``delete_oldest``) as the video segments are (edge.stream.segments)."""
    from edge.stream.object_sinks import WarningLines
    from edge.stream.segments import SegmentedSink

    class SegmentedMcapSink(SegmentedSink):
        def __init__(self) -> None:
            super().__init__(uri, path, segment_s=segment_s, keep_free=keep_free, delete_oldest=delete_oldest)
            self._warnings = WarningLines()
            self.views = views or VIEWS

        @property
        def shows(self) -> frozenset[str]:
            return frozenset(self.views) & {"panoptic", "depth"}

        def match_engines(self, kinds: Collection[str]) -> None:
            self.views = matched_views(uri, self.views, kinds, asked=views is not None)

        def _open_segment(self, segment: Path) -> McapSink:
            return McapSink(
                uri,
                segment,
                views=self.views,
                quality=quality,
                keep_free=keep_free,
                make_room=self._make_room(),
                warnings=self._warnings,
                last=False,
            )

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
