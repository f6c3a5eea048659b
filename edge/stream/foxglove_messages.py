"""What a run's frame is as Foxglove's messages, JSON-encoded with JSON Schemas: the
camera's picture (``foxglove.CompressedImage``) with its things' boxes and labels over it
(``foxglove.ImageAnnotations``), the engines' panoptic and depth pictures, and the objects and
warnings lines under edge's own schemas (``edge schema objects``, ``warnings``). The MCAP
file sink (edge.stream.mcap_sink) writes them, the Foxglove WebSocket sink
(edge.viewer.foxglove) serves them live.

Each camera's topics are under its name, ``/camera`` for a run of one: ``/camera/image``,
``/camera/annotations``, ``/camera/panoptic``, ``/camera/depth``, ``/camera/objects``,
``/camera/warnings`` (and ``/camera/log``, the same lines for Foxglove's Log panel), and,
where the camera's field of view places the objects around the vehicle, ``/camera/scene``
(``foxglove.SceneUpdate``, edge.stream.foxglove_scene), with ``/camera/calibration``,
``/camera/transform`` and, asked for, ``/camera/cloud`` where its height is known too
(edge.stream.foxglove_camera). With several cameras, ``/around/things`` and ``/around/scene``
hold the things around the vehicle of every camera's newest frame at once, a thing two
cameras see once (``edge schema fused``, edge.postprocess.fusion), after each camera's frame.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Collection
from functools import cache
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from edge.errors import SinkError
from edge.stream.foxglove_schema import COLOR, POINT2, TIME, schema, stamp

if TYPE_CHECKING:
    from edge.stream.object_sinks import FusedLines, FusionOptions

Schema = tuple[str, bytes]  # (name, JSON Schema)
# a message of a frame: its topic, schema, and how to make its body (made only where wanted)
Message = tuple[str, Schema, Callable[[], dict[str, Any]]]

VIEWS = ("input", "panoptic", "depth")
PICTURE_OPTIONS = "views=, quality=, cloud=, and for the cameras' things fused, gate= and max_age="
DEFAULT_QUALITY = 85
MAX_CLOUD_STRIDE = 16
WARNED_RGBA = (1.0, 0.2, 0.2, 1.0)
OTHER_RGBA = (0.2, 0.9, 0.4, 1.0)
POINTS_LINE_LOOP = 2  # foxglove.PointsAnnotation's type of a closed outline


class PictureOptions(NamedTuple):
    """What a Foxglove sink's ``?`` asks for: the views (None: not asked, so those of the
    engines that run), the JPEG quality, the point cloud's stride (None: not asked; 0: none),
    and how the cameras' things are fused for ``/around`` (``gate=``, ``max_age=``)."""

    views: tuple[str, ...] | None
    quality: int
    cloud: int | None
    fusion: FusionOptions


def picture_options(uri: str, query: str) -> PictureOptions:
    """The views, JPEG quality, point cloud and fusion ``query`` asks for; SinkError naming
    what is wrong."""
    from edge.stream.object_sinks import fusion_options
    from edge.stream.sink_refusals import sink_options

    given = sink_options(uri, query, ("views", "quality", "cloud", "gate", "max_age"), PICTURE_OPTIONS)
    return PictureOptions(
        _views(uri, given["views"]) if "views" in given else None,
        _number(
            uri, "quality", given.get("quality"), 1, 100, "a JPEG quality from 1 to 100", DEFAULT_QUALITY
        ),
        _number(
            uri,
            "cloud",
            given.get("cloud"),
            0,
            MAX_CLOUD_STRIDE,
            f"every how many of the depth map's pixels each way make a point, 1 to {MAX_CLOUD_STRIDE} "
            "(0: no point cloud)",
            None,
        ),
        fusion_options(uri, given.get("gate"), given.get("max_age")),
    )


def _views(uri: str, value: str) -> tuple[str, ...]:
    asked = tuple(v.strip() for v in value.split(",") if v.strip())
    if not asked or any(v not in VIEWS for v in asked):
        raise SinkError(
            f"sink {uri!r}: views={value!r}; expected a comma-separated list of {', '.join(VIEWS)} "
            "(the camera's frame with its boxes, the panoptic overlay, the depth)"
        )
    return tuple(dict.fromkeys(asked))


def _number(uri: str, key: str, value: str | None, low: int, high: int, what: str, default: Any) -> Any:
    """Option ``key``'s whole number from ``low`` to ``high`` (``what`` it is), ``default`` if not given."""
    if value is None:
        return default
    if not value.isdigit() or not low <= int(value) <= high:
        raise SinkError(f"sink {uri!r}: {key}={value!r}; expected {what}")
    return int(value)


def matched_cloud(uri: str, cloud: int | None, kinds: Collection[str], *, default: int) -> int:
    """The point cloud's stride for a run of engines of ``kinds``: ``default`` where not asked,
    none without a depth engine (one asked for is then a SinkError)."""
    if "depth" in kinds:
        return default if cloud is None else cloud
    if cloud:
        raise SinkError(
            f"sink {uri!r} asks for a point cloud (cloud={cloud}), which is the depth map's, and no depth "
            f"engine runs (engines: {', '.join(kinds) or 'none'})"
        )
    return 0


# what Foxglove's panels recognise by name (docs.foxglove.dev: message schemas), with the fields written
IMAGE_SCHEMA = (
    "foxglove.CompressedImage",
    schema(
        "foxglove.CompressedImage",
        {
            "timestamp": TIME,
            "frame_id": {"type": "string"},
            "data": {"type": "string", "contentEncoding": "base64"},
            "format": {"type": "string"},
        },
    ),
)
ANNOTATIONS_SCHEMA = (
    "foxglove.ImageAnnotations",
    schema(
        "foxglove.ImageAnnotations",
        {
            "points": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "timestamp": TIME,
                        "type": {"type": "integer"},
                        "points": {"type": "array", "items": POINT2},
                        "outline_color": COLOR,
                        "thickness": {"type": "number"},
                    },
                },
            },
            "texts": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "timestamp": TIME,
                        "position": POINT2,
                        "text": {"type": "string"},
                        "font_size": {"type": "number"},
                        "text_color": COLOR,
                        "background_color": COLOR,
                    },
                },
            },
        },
    ),
)


def _rgba(color: tuple[float, ...]) -> dict[str, float]:
    return dict(zip("rgba", color, strict=True))


class FrameChoice:
    """What a Foxglove sink makes of each result, as its ``?`` asked (PictureOptions): the
    picture views (None: those of the engines that run), the JPEG quality, and the point
    cloud's stride (None: ``default_cloud``); match_engines fits them to the engines that run
    (one asked for that none runs is a SinkError); ``messages`` makes a result's."""

    def __init__(
        self,
        uri: str,
        *,
        views: tuple[str, ...] | None,
        quality: int,
        cloud: int | None,
        default_cloud: int,
        fused: FusedLines | None = None,
    ) -> None:
        """``fused``: the sink's fusion of the cameras' things (one of the default options where
        None), kept by a segmented sink across its files."""
        from edge.stream.object_sinks import FusedLines

        self.uri, self.quality = uri, quality
        self.asked, self.views = views is not None, views or VIEWS
        self.asked_cloud, self.default_cloud = cloud, default_cloud
        self.cloud = default_cloud if cloud is None else cloud
        self.fused = fused if fused is not None else FusedLines()  # where several cameras share the sink

    @property
    def shows(self) -> frozenset[str]:
        """The engines' pictures among the views (the pipeline draws them)."""
        return frozenset(self.views) & {"panoptic", "depth"}

    def match_engines(self, kinds: Collection[str]) -> None:
        self.views = matched_views(self.uri, self.views, kinds, asked=self.asked)
        self.cloud = matched_cloud(self.uri, self.asked_cloud, kinds, default=self.default_cloud)

    def messages(self, result: Any, warnings: Any) -> tuple[int, list[Message]]:
        """frame_messages of ``result`` as chosen; ``warnings``: the sink's WarningLines."""
        return frame_messages(
            result,
            views=self.views,
            quality=self.quality,
            warnings=warnings,
            uri=self.uri,
            cloud=self.cloud,
            fused=self.fused,
        )


def box_annotations(record: dict[str, Any], ns: int) -> dict[str, Any]:
    """The boxes and labels of an objects line, over the camera's frame: its boxes are in
    the engines' picture, ``size``, scaled by ``frame_size / size`` on each axis."""
    (h, w), (fh, fw) = record["size"], record["frame_size"]
    sx, sy = fw / w, fh / h
    when = stamp(ns)
    points, texts = [], []
    for obj in record["objects"]:
        x1, y1, x2, y2 = obj["box"]
        x1, x2, y1, y2 = x1 * sx, x2 * sx, y1 * sy, y2 * sy
        color = _rgba(WARNED_RGBA if obj.get("warned") else OTHER_RGBA)
        points.append(
            {
                "timestamp": when,
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
                "timestamp": when,
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


def jpeg(image: np.ndarray, quality: int, uri: str) -> str:
    import cv2

    ok, buf = cv2.imencode(
        ".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    if not ok:
        raise SinkError(f"sink {uri!r}: OpenCV could not encode a {image.shape} picture as JPEG")
    return base64.b64encode(buf.tobytes()).decode()


@cache
def edge_schema(name: str) -> Schema:
    """edge's own JSON Schema of a line (edge.schemas), as the messages carry it."""
    from edge.schemas import schema

    return f"edge.{name}", json.dumps(schema(name)).encode()


def topic_base(camera: Any) -> str:
    """The topics' prefix of a camera (``None``: a run of one camera)."""
    return "/" + str(camera if camera is not None else "camera")


def frame_messages(
    result: Any,
    *,
    views: tuple[str, ...],
    quality: int,
    warnings: Any,
    uri: str,
    cloud: int = 0,
    fused: Any = None,
) -> tuple[int, list[Message]]:
    """A result's capture time (ns since the epoch) and its messages: a picture of each of
    ``views`` (JPEG at ``quality``), the boxes over the camera's where ``input`` is one of
    them, its objects line, and the warnings lines ``warnings`` (a WarningLines, called
    once a frame whatever is made) gives it; where the camera is known, its placed things'
    scene, its calibration and pose, and (``cloud``: every how many pixels, 0 none) the depth
    map as a point cloud. ``fused``: the sink's FusedLines, which a camera's of several
    gives its frame to: the things of every camera then, and their scene."""
    from edge.stream.object_sinks import frame_header, objects_record
    from edge.stream.sinks import sink_image

    header = frame_header(result)
    ns = round(header["time_unix"] * 1e9)
    camera = result.frame.meta.get("camera")
    base = topic_base(camera)
    record = objects_record(result, header)
    messages: list[Message] = []
    for view in views:

        def picture(view: str = view) -> dict[str, Any]:
            return {
                "timestamp": stamp(ns),
                "frame_id": base[1:],
                "data": jpeg(sink_image(result, view), quality, uri),
                "format": "jpeg",
            }

        messages.append((f"{base}/{'image' if view == 'input' else view}", IMAGE_SCHEMA, picture))
    if "input" in views:
        messages.append((f"{base}/annotations", ANNOTATIONS_SCHEMA, lambda: box_annotations(record, ns)))
    messages.append((f"{base}/objects", edge_schema("objects"), _given(record)))
    placed = result.extras.get("placed")
    if placed is not None:  # the camera's field of view is known: a 3D scene
        from edge.stream.foxglove_scene import SCENE_SCHEMA, scene_update

        def scene() -> dict[str, Any]:
            return scene_update(
                record,
                ns,
                facing=placed["facing"],
                path_half_width_m=placed["path_half_width_m"],
                mount_ahead_m=placed.get("mount_ahead_m", 0.0),
            )

        messages.append((f"{base}/scene", SCENE_SCHEMA, scene))
        if placed.get("ground") is not None:  # the camera's height too: where it is
            messages += camera_messages(record, ns, base, placed)
            if cloud and result.depth is not None:
                messages.append(cloud_message(result, record, ns, base, placed, cloud))
    for line in warnings.events(result):
        messages += warning_messages(line, ns)
    if fused is not None and camera is not None:
        from edge.stream.foxglove_scene import SCENE_SCHEMA, fused_scene

        around = fused.record(result, header)  # the objects line's times, not a second reading
        messages.append(("/around/things", edge_schema("fused"), _given(around)))
        seen_from = dict(fused.views)  # as they are now: the scene is made once the frame is written
        messages.append(("/around/scene", SCENE_SCHEMA, lambda: fused_scene(around, ns, seen_from)))
    return ns, messages


def camera_messages(record: dict[str, Any], ns: int, base: str, placed: dict[str, Any]) -> list[Message]:
    """The camera's calibration (its image topic's frame) and its pose in the scene's frame."""
    from edge.stream.foxglove_camera import CALIBRATION_SCHEMA, TRANSFORM_SCHEMA, calibration, transform
    from edge.stream.foxglove_scene import SCENE_FRAME

    frame_id = base[1:]
    return [
        (f"{base}/calibration", CALIBRATION_SCHEMA, lambda: calibration(record, ns, frame_id, placed)),
        (f"{base}/transform", TRANSFORM_SCHEMA, lambda: transform(ns, frame_id, placed, SCENE_FRAME)),
    ]


def cloud_message(
    result: Any, record: dict[str, Any], ns: int, base: str, placed: dict[str, Any], stride: int
) -> Message:
    """The depth map as the camera's point cloud, coloured from the engines' picture, its
    metres brought to the road the camera stands over where the road's pixels fit a plane."""
    from edge.stream.foxglove_camera import CLOUD_SCHEMA, point_cloud, road_scale

    def body() -> dict[str, Any]:
        depth = result.depth["depth"][0, 0]
        semantic = None if result.panoptic is None else result.panoptic["sem_labels"][0]
        scale = road_scale(semantic, depth, placed["ground"], fitted=result.extras.get("road_fit"))
        return point_cloud(depth, result.extras["resized"], record, ns, base[1:], placed, stride, scale=scale)

    return f"{base}/cloud", CLOUD_SCHEMA, body


LOG_SCHEMA = (
    "foxglove.Log",
    schema(
        "foxglove.Log",
        {
            "timestamp": TIME,
            "level": {"enum": [0, 1, 2, 3, 4, 5]},
            "message": {"type": "string"},
            "name": {"type": "string"},
            "file": {"type": "string"},
            "line": {"type": "integer", "minimum": 0},
        },
    ),
)
LOG_INFO, LOG_WARNING = 2, 3  # foxglove.LogLevel
WHY = {"in_path": "in the path", "cut_in": "cutting in", "no_path": "closing in"}


def warning_messages(line: dict[str, Any], ns: int) -> list[Message]:
    """A warnings log line (edge schema warnings) as its camera's ``warnings`` message and as a
    line of Foxglove's Log panel (``log``: a warning as WARNING, its clearing as INFO), at
    ``ns``."""
    base = topic_base(line.get("camera"))
    return [
        (f"{base}/warnings", edge_schema("warnings"), _given(line)),
        (f"{base}/log", LOG_SCHEMA, lambda: log_line(line, ns)),
    ]


def log_line(line: dict[str, Any], ns: int) -> dict[str, Any]:
    """A warnings line as Foxglove's Log message: what, which track, how far and how soon."""
    thing = f"{line.get('class', 'thing')} #{line.get('track')}"
    if line["event"] == "warning":
        said = [f"{thing} {WHY.get(line.get('why', ''), 'warned of')}"]
        distance = how_far(line)
        if distance is not None:
            said.append(f"{distance:.0f} m")
        if line.get("ttc_s") is not None:
            said.append(f"{line['ttc_s']:.1f} s to reach")
        if line.get("path_in_s") is not None:
            said.append(f"in the path in {line['path_in_s']:.1f} s")
        level, message = LOG_WARNING, ", ".join(said)
    else:
        ended = " as the run ended" if line.get("ended") else ""
        level, message = LOG_INFO, f"{thing} clear after {line.get('warned_s', 0):.1f} s{ended}"
    return {
        "timestamp": stamp(ns),
        "level": level,
        "message": message,
        "name": f"edge {topic_base(line.get('camera'))[1:]}",
        "file": "",
        "line": 0,
    }


def how_far(obj: dict[str, Any]) -> float | None:
    """A thing's distance as its objects line has it: where it was placed from (range_m), else
    the depth map's reading (distance_m), else None."""
    for key in ("range_m", "distance_m"):
        if obj.get(key) is not None:
            return float(obj[key])
    return None


def _given(body: dict[str, Any]) -> Callable[[], dict[str, Any]]:
    return lambda: body


def picture_message(image: np.ndarray, *, t_ns: int, camera: Any, quality: int, uri: str) -> Message:
    """A picture alone (edge record: no engine runs) as the camera's image message."""
    base = topic_base(camera)

    def body() -> dict[str, Any]:
        return {
            "timestamp": stamp(t_ns),
            "frame_id": base[1:],
            "data": jpeg(image, quality, uri),
            "format": "jpeg",
        }

    return f"{base}/image", IMAGE_SCHEMA, body
