"""JSON Schemas of what edge writes for other programs to read: ``objects`` (a line per
frame: ``--sink objects.jsonl``, ``--sink -``), ``warnings`` (``?lines=warnings``: a line
when a thing comes to be warned of, one when it clears), ``fused`` (``?lines=fused``: the
things around the vehicle of every camera at once); edge.schema_rig's ``rig`` (``edge rig
--json``); and, in edge.schema_files, those of
whole files: ``summary`` (``edge run --summary``: a run's counts and latencies),
``heartbeat`` (``--heartbeat FILE``: what a health check of one's own reads, as ``edge
alive`` does) and ``record`` (``edge record --summary``).

They are the contract a planner reading those lines codes against (``edge schema objects``
prints one). Each field says its unit and when it is there: a field comes with the part of
the run that gives it (a depth engine, a tracker, a field of view, a road's plane), so a
reader tells "not known here" (absent) from "not known yet" (null). Every property is
listed and no other is allowed: the tests validate real runs' lines against these, so a
field added to the lines without its description here fails them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from edge.errors import ConfigError, DependencyError

DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_NAMES = (
    "objects",
    "warnings",
    "fused",
    "summary",
    "heartbeat",
    "record",
    "bench",
    "stats",
    "history",
    "metrics",
    "compare",
    "profile",
    "manifest",
    "ranges",
    "lint",
    "rig",
)
LINE_SCHEMAS = ("objects", "warnings", "fused")  # of JSON lines; the others of one JSON document


def number_field(description: str, *, minimum: float | None = None, nullable: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"type": ["number", "null"] if nullable else "number", "description": description}
    if minimum is not None:
        out["minimum"] = minimum
    return out


def integer_field(description: str, *, minimum: int) -> dict[str, Any]:
    return {"type": "integer", "minimum": minimum, "description": description}


def _size(description: str) -> dict[str, Any]:
    return {
        "type": "array",
        "items": {"type": "integer", "minimum": 1},
        "minItems": 2,
        "maxItems": 2,
        "description": description,
    }


def _thing_classes() -> list[str]:
    from edge.data.cityscapes import TRAIN_CLASSES

    return [c.name for c in TRAIN_CLASSES if c.thing]


def _header() -> dict[str, Any]:
    """What every line of a frame begins with (edge.stream.object_sinks.frame_header)."""
    return {
        "camera": {
            "type": "string",
            "description": "the camera's name (edge run --camera NAME=URI): only where several cameras "
            "run, whose frames are numbered apart",
        },
        "frame": integer_field("the frame's number in its source (its camera's), from 0", minimum=0),
        "t_capture_ns": {
            "type": "integer",
            "description": "when the frame was captured, nanoseconds on the run's monotonic clock "
            "(time.perf_counter_ns): for intervals between frames",
        },
        "time_unix": number_field(
            "the capture time as wall-clock seconds since 1970 (UTC), to the microsecond; a recording "
            "read flat out (no --realtime): the first frame's read time plus the frame's capture time "
            "after it in the recording, so they follow the drive's pace"
        ),
    }


def _object() -> dict[str, Any]:
    """One thing found (edge.postprocess.objects.describe_objects with its TrackInfo)."""
    depth = "with a depth engine"
    place = "with the camera's field of view (--hfov, or the source's own) and a distance"
    properties: dict[str, Any] = {
        "id": integer_field(
            "its panoptic id: its class's Cityscapes label id x 1000 + its number in the frame", minimum=0
        ),
        "class": {"enum": _thing_classes(), "description": "what it is (a Cityscapes thing class)"},
        "score": {
            **number_field("the detector's confidence, 0 to 1 (at least --min-score)", minimum=0),
            "maximum": 1,
        },
        "box": {
            "type": "array",
            "items": {"type": "number"},
            "minItems": 4,
            "maxItems": 4,
            "description": "[x1, y1, x2, y2] in pixels of the engines' picture of the frame (the line's "
            "size); scale by frame_size / size on each axis for the camera's pixels",
        },
        "pixels": integer_field("how many pixels its mask covers, in the engines' picture", minimum=0),
        "distance_m": number_field(f"metres: the median depth over its mask ({depth})", minimum=0),
        "nearest_m": number_field(
            f"metres: the 10th percentile of its mask's depths, its nearest part ({depth})", minimum=0
        ),
        "track": integer_field(
            "its track's number, from 1 for the run (a camera's, where several run)", minimum=1
        ),
        "track_frames": integer_field("the frames its track was seen in", minimum=1),
        "track_age_s": number_field("seconds since its track was first seen", minimum=0),
        "closing_mps": number_field(
            f"m/s its distance shrinks (negative: it draws away); null until its track has enough "
            f"frames ({depth})",
            nullable=True,
        ),
        "ttc_s": number_field(
            f"seconds until it comes level with the camera at closing_mps; null unless it closes in fast "
            f"enough to tell ({depth})",
            minimum=0,
            nullable=True,
        ),
        "warned": {
            "type": "boolean",
            "description": f"whether it is warned of: outlined red, a warnings log line ({depth})",
        },
        "lateral_m": number_field(f"metres right of the vehicle's middle (left negative), {place}"),
        "in_path": {
            "type": ["boolean", "null"],
            "description": f"whether it reaches into the path ahead (--path-width); null for a side "
            f"camera's, {place}",
        },
        "lateral_mps": number_field(
            f"m/s it moves right (left negative) over the speed window; null until known, {place}",
            nullable=True,
        ),
        "path_in_s": number_field(
            f"seconds until it reaches the path, beside it and moving towards it (a cut-in); else "
            f"null, {place}",
            minimum=0,
            nullable=True,
        ),
        "ahead_m": number_field(
            f"metres ahead along the vehicle (behind: negative) of the camera, or of the vehicle's "
            f"reference point with --mount-ahead, {place}"
        ),
        "ground_m": number_field(
            "metres read from where it stands on the road's plane (--camera-height and --horizon, or "
            "the plane fitted to the depth map), where its feet are seen",
            minimum=0,
        ),
        "range_m": number_field(
            "metres: the distance its closing speed and place were worked out from (with a distance)",
            minimum=0,
        ),
        "range_from": {
            "enum": ["road", "scaled", "depth"],
            "description": "what range_m was read from: the road (ground_m), the depth map scaled by its "
            "track's road readings (its feet hidden), or the depth map alone",
        },
    }
    together = [
        ("distance_m", "nearest_m"),
        ("track", "track_frames", "track_age_s"),
        ("closing_mps", "ttc_s", "warned"),
        ("lateral_m", "in_path", "lateral_mps", "path_in_s"),
        ("range_m", "range_from"),
    ]
    dependent = {name: [other for other in group if other != name] for group in together for name in group}
    dependent["closing_mps"].append("track")
    return {
        "type": "object",
        "properties": properties,
        "required": ["id", "class", "score", "box", "pixels"],
        # the fields that come together: all of a group or none
        "dependentRequired": dependent,
        "additionalProperties": False,
    }


def _objects() -> dict[str, Any]:
    header = _header()
    return {
        "$schema": DIALECT,
        "$id": "urn:edge-perception:schema:objects",
        "title": "edge objects line",
        "description": "One line of an objects log (edge run --sink objects.jsonl or --sink -): a frame "
        "and every thing found in it.",
        "type": "object",
        "properties": {
            **header,
            "size": _size("[height, width] of the engines' picture of the frame, which boxes are in"),
            "frame_size": _size("[height, width] of the frame as the camera gave it"),
            "objects": {"type": "array", "items": {"$ref": "#/$defs/object"}},
        },
        "required": ["frame", "t_capture_ns", "time_unix", "size", "frame_size", "objects"],
        "additionalProperties": False,
        "$defs": {"object": _object()},
    }


def _warnings() -> dict[str, Any]:
    header = _header()
    thing = _object()
    warning = {
        "type": "object",
        "description": "a thing comes to be warned of: the line has the thing as an objects line has it",
        "properties": {
            **header,
            "event": {"const": "warning"},
            "why": {
                "enum": ["in_path", "cut_in", "no_path"],
                "description": "in the path ahead; beside it and cutting in; or no path to tell by (no "
                "field of view, a side camera)",
            },
            **thing["properties"],
        },
        "required": ["frame", "t_capture_ns", "time_unix", "event", "why", *thing["required"], "track"],
        "dependentRequired": thing["dependentRequired"],
        "additionalProperties": False,
    }
    clear = {
        "type": "object",
        "description": "a thing warned of is no longer (half a second of the stream after its last "
        "warned frame), or the run ends while it is",
        "properties": {
            **header,
            "event": {"const": "clear"},
            "track": thing["properties"]["track"],
            "class": thing["properties"]["class"],
            "warned_s": number_field("seconds from its first warned frame to its last", minimum=0),
            "ended": {"const": True, "description": "the run ended while it was warned of"},
        },
        "required": ["frame", "t_capture_ns", "time_unix", "event", "track", "class", "warned_s"],
        "additionalProperties": False,
    }
    return {
        "$schema": DIALECT,
        "$id": "urn:edge-perception:schema:warnings",
        "title": "edge warnings line",
        "description": "One line of a warnings log (--sink 'warnings.jsonl?lines=warnings', "
        "--sink=-?lines=warnings).",
        "type": "object",
        "properties": {"event": {"enum": ["warning", "clear"]}},
        "required": ["event"],
        # by its event, so a refusal names the field of the form the line has
        "allOf": [
            {"if": {"properties": {"event": {"const": "warning"}}}, "then": warning},
            {"if": {"properties": {"event": {"const": "clear"}}}, "then": clear},
        ],
    }


def _fused() -> dict[str, Any]:
    """edge.stream.object_sinks.FusedLines' line (edge.postprocess.fusion.fuse's things)."""
    thing = _object()["properties"]
    place = "as the camera nearest to it places it; null where no camera places it (no field of view)"
    seen = {
        "type": "object",
        "properties": {
            "camera": {"type": "string", "description": "the camera's name"},
            "track": {**thing["track"], "type": ["integer", "null"]},
            "lateral_m": {**thing["lateral_m"], "type": ["number", "null"]},
            "ahead_m": {**thing["ahead_m"], "type": ["number", "null"]},
            "range_m": {**thing["range_m"], "type": ["number", "null"]},
        },
        "required": ["camera", "track", "lateral_m", "ahead_m", "range_m"],
        "additionalProperties": False,
    }
    fused = {
        "type": "object",
        "properties": {
            "id": integer_field(
                "its number, from 1 for the run: the same while any camera that sees it keeps its "
                "track, so across a handover from one camera's view to another's where both see it",
                minimum=1,
            ),
            "class": thing["class"],
            "score": thing["score"],
            "lateral_m": number_field(f"metres right of the vehicle's middle, {place}", nullable=True),
            "ahead_m": number_field(f"metres ahead of the vehicle's reference point, {place}", nullable=True),
            "from_vehicle_m": number_field(
                f"metres from the vehicle's reference point, {place}", minimum=0, nullable=True
            ),
            "in_path": {
                "type": ["boolean", "null"],
                "description": "in the path if any camera says so; null where none can tell",
            },
            "ttc_s": number_field(
                "the least time to collision any camera gives; null for none", nullable=True
            ),
            "warned": {"type": "boolean", "description": "whether any camera warns of it"},
            "seen_by": {
                "type": "array",
                "items": seen,
                "minItems": 1,
                "description": "each camera's thing that is it, one a camera at most",
            },
        },
        "required": [
            "id",
            "class",
            "score",
            "lateral_m",
            "ahead_m",
            "from_vehicle_m",
            "in_path",
            "ttc_s",
            "warned",
            "seen_by",
        ],
        "additionalProperties": False,
    }
    return {
        "$schema": DIALECT,
        "$id": "urn:edge-perception:schema:fused",
        "title": "edge fused line",
        "description": "One line of a fused log (--sink 'around.jsonl?lines=fused'): a frame of one "
        "camera, and the things around the vehicle of every camera's newest frame, a thing two "
        "cameras see once.",
        "type": "object",
        "properties": {
            **_header(),
            "cameras": {
                "type": "object",
                "additionalProperties": integer_field("that camera's frame fused", minimum=0),
                "description": "each camera fused, by name, and which of its frames (its newest, a "
                "quarter of a second old or less)",
            },
            "things": {"type": "array", "items": fused},
        },
        "required": ["frame", "t_capture_ns", "time_unix", "cameras", "things"],
        "additionalProperties": False,
    }


def schema(name: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the lines or file ``name`` (one of SCHEMA_NAMES) names."""
    from edge import schema_bench, schema_compare, schema_files, schema_manifest, schema_metrics, schema_rig

    builders = {
        "objects": _objects,
        "warnings": _warnings,
        "fused": _fused,
        "summary": schema_files.summary_schema,
        "heartbeat": schema_files.heartbeat_schema,
        "record": schema_files.record_schema,
        "bench": schema_bench.bench_schema,
        "stats": schema_files.stats_schema,
        "history": schema_files.history_schema,
        "metrics": schema_metrics.metrics_schema,
        "compare": schema_compare.compare_schema,
        "profile": schema_compare.profile_schema,
        "manifest": schema_manifest.manifest_schema,
        "ranges": schema_manifest.ranges_schema,
        "lint": schema_files.lint_schema,
        "rig": schema_rig.rig_schema,
    }
    builder = builders.get(name)
    if builder is None:
        raise ConfigError(f"no schema named {name!r}; there are: {', '.join(SCHEMA_NAMES)}")
    return builder()


def check_lines(name: str, lines: Iterable[str]) -> tuple[int, list[tuple[int, str]]]:
    """How many of ``lines`` (a JSON-lines log's, newlines and all) were read, and each one
    the schema ``name`` refuses: (its number from 1, why), the why naming the field. A line
    that is not JSON (a run killed mid-line leaves one last) is refused as such."""
    validator = _validator(name)
    count, refused = 0, []
    for count, text in enumerate(lines, start=1):
        if (why := _refusal(validator, text, whole="the line")) is not None:
            refused.append((count, why))
    return count, refused


def check_document(name: str, text: str) -> str | None:
    """Why the schema ``name`` refuses the JSON document ``text`` (a --summary, --heartbeat,
    bench.json or metrics.json file, a viewer's /stats or /history answer), naming the field;
    None where it takes it."""
    return _refusal(_validator(name), text, whole="the document")


def _validator(name: str) -> Any:
    try:
        import jsonschema
    except ImportError as exc:
        raise DependencyError(
            "checking against a schema needs jsonschema: pip install 'jsonschema>=4.18' (or edge's "
            "extra: pip install 'edge-perception[schema]')"
        ) from exc
    return jsonschema.Draft202012Validator(schema(name))


def _refusal(validator: Any, text: str, *, whole: str) -> str | None:
    import json

    import jsonschema

    try:
        value = json.loads(text, parse_constant=_no_constant)
    except ValueError as exc:
        return f"not JSON ({exc})"
    # of a line's forms (a warning or a clear), the error of the one it comes nearer to
    error = jsonschema.exceptions.best_match(validator.iter_errors(value))
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or whole
    message, shown = error.message, repr(error.instance)
    if len(shown) > 80:  # a whole record in the message buries what is wrong with it
        message = message.replace(shown, f"the {type(error.instance).__name__}")
    return f"{where}: {message}"


def _no_constant(name: str) -> Any:
    """Python's json reads NaN and Infinity, which JSON (RFC 8259) has not, and other
    languages' readers refuse."""
    raise ValueError(f"{name} is no JSON number")
