"""JSON Schemas of what edge writes for other programs to read: ``objects`` (a line per
frame: ``--sink objects.jsonl``, ``--sink -``), ``warnings`` (``?lines=warnings``: a line
when a thing comes to be warned of, one when it clears), ``summary`` (``edge run
--summary``: a run's counts and latencies) and ``heartbeat`` (``--heartbeat FILE``: what a
health check of one's own reads, as ``edge alive`` does).

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
SCHEMA_NAMES = ("objects", "warnings", "summary", "heartbeat")
LINE_SCHEMAS = ("objects", "warnings")  # of JSON lines; the others of one JSON document


def _number(description: str, *, minimum: float | None = None, nullable: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"type": ["number", "null"] if nullable else "number", "description": description}
    if minimum is not None:
        out["minimum"] = minimum
    return out


def _integer(description: str, *, minimum: int) -> dict[str, Any]:
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
        "frame": _integer("the frame's number in its source (its camera's), from 0", minimum=0),
        "t_capture_ns": {
            "type": "integer",
            "description": "when the frame was captured, nanoseconds on the run's monotonic clock "
            "(time.perf_counter_ns): for intervals between frames",
        },
        "time_unix": _number("the capture time as wall-clock seconds since 1970 (UTC), to the microsecond"),
    }


def _object() -> dict[str, Any]:
    """One thing found (edge.postprocess.objects.describe_objects with its TrackInfo)."""
    depth = "with a depth engine"
    place = "with the camera's field of view (--hfov, or the source's own) and a distance"
    properties: dict[str, Any] = {
        "id": _integer(
            "its panoptic id: its class's Cityscapes label id x 1000 + its number in the frame", minimum=0
        ),
        "class": {"enum": _thing_classes(), "description": "what it is (a Cityscapes thing class)"},
        "score": {
            **_number("the detector's confidence, 0 to 1 (at least --min-score)", minimum=0),
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
        "pixels": _integer("how many pixels its mask covers, in the engines' picture", minimum=0),
        "distance_m": _number(f"metres: the median depth over its mask ({depth})", minimum=0),
        "nearest_m": _number(
            f"metres: the 10th percentile of its mask's depths, its nearest part ({depth})", minimum=0
        ),
        "track": _integer(
            "its track's number, from 1 for the run (a camera's, where several run)", minimum=1
        ),
        "track_frames": _integer("the frames its track was seen in", minimum=1),
        "track_age_s": _number("seconds since its track was first seen", minimum=0),
        "closing_mps": _number(
            f"m/s its distance shrinks (negative: it draws away); null until its track has enough "
            f"frames ({depth})",
            nullable=True,
        ),
        "ttc_s": _number(
            f"seconds until it comes level with the camera at closing_mps; null unless it closes in fast "
            f"enough to tell ({depth})",
            minimum=0,
            nullable=True,
        ),
        "warned": {
            "type": "boolean",
            "description": f"whether it is warned of: outlined red, a warnings log line ({depth})",
        },
        "lateral_m": _number(f"metres right of the vehicle's middle (left negative), {place}"),
        "in_path": {
            "type": ["boolean", "null"],
            "description": f"whether it reaches into the path ahead (--path-width); null for a side "
            f"camera's, {place}",
        },
        "lateral_mps": _number(
            f"m/s it moves right (left negative) over the speed window; null until known, {place}",
            nullable=True,
        ),
        "path_in_s": _number(
            f"seconds until it reaches the path, beside it and moving towards it (a cut-in); else "
            f"null, {place}",
            minimum=0,
            nullable=True,
        ),
        "ahead_m": _number(f"metres ahead of the camera along the vehicle (behind: negative), {place}"),
        "ground_m": _number(
            "metres read from where it stands on the road's plane (--camera-height and --horizon, or "
            "the plane fitted to the depth map), where its feet are seen",
            minimum=0,
        ),
        "range_m": _number(
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
            "warned_s": _number("seconds from its first warned frame to its last", minimum=0),
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


def _stats(what: str) -> dict[str, Any]:
    """A stage's or sink's times (edge.latency.samples.Samples.stats): its count, and with
    one or more its mean, percentiles and longest, milliseconds."""
    ms = {k: _number(f"milliseconds: {k}", minimum=0) for k in ("mean", "p50", "p90", "p99", "max")}
    return {
        "type": "object",
        "description": what,
        "properties": {"count": _integer("how many were timed", minimum=0), **ms},
        "required": ["count"],
        "dependentRequired": {k: ["count", *(o for o in ms if o != k)] for k in ms},
        "additionalProperties": False,
    }


def _run_summary() -> dict[str, Any]:
    """One run's (edge.latency.LatencyTracker.summary): every key is always there."""
    counts = {
        "frames_in": "frames the source gave",
        "frames_out": "frames that went through the engines to the sinks",
        "drops": "frames dropped for newer ones (a live source the engines could not keep up with)",
        "sink_errors": "frames a sink failed to write",
        "reconnects": "times a camera or stream was opened again after it went away",
        "undecodable": "frames the source could not decode",
        "deadline_misses": "frames whose end_to_end took longer than deadline_ms",
    }
    stopped = {
        "type": "object",
        "properties": {
            "sink": {"type": "string"},
            "frame": {"type": ["integer", "null"], "description": "the frame it stopped at"},
            "reason": {"type": "string"},
        },
        "required": ["sink", "reason"],
        "additionalProperties": False,
    }
    unfinished = {
        "type": "object",
        "properties": {"sink": {"type": "string"}, "reason": {"type": "string"}},
        "required": ["sink", "reason"],
        "additionalProperties": False,
    }
    properties: dict[str, Any] = {
        "engines": {
            "type": "object",
            "propertyNames": {"enum": ["panoptic", "depth"]},
            "additionalProperties": {"type": "string"},
            "description": "each engine run: model, backend, precision and input size",
        },
        "fit": {
            "enum": ["stretch", "pad", "crop"],
            "description": "how frames of another shape went in (--fit)",
        },
        "pacing": {
            "enum": ["live", "realtime", "source", "file", None],
            "description": "how frames came: a camera or stream; paced as a camera (--realtime); at the "
            "source's own rate; as fast as the engines took them (a file); null before any came",
        },
        "pace_fps": _number(
            "the rate a source kept its frames to, fps (pacing source)", minimum=0, nullable=True
        ),
        "pace_hint": {"type": ["string", "null"], "description": "how to replay the source at its own rate"},
        "road_plane": {
            "type": ["object", "null"],
            "description": "the road's plane fitted to the depth map for a camera nobody measured; null "
            "where none was fitted (a measured plane, --no-ground, no depth engine)",
            "properties": {
                "height_m": _number(
                    "the camera's height over the road, in the depth engine's metres", nullable=True
                ),
                "horizon": _number("the horizon's row over the picture's height"),
                "focal": _number("the focal length over the picture's height", nullable=True),
            },
            "required": ["height_m", "horizon", "focal"],
            "additionalProperties": False,
        },
        **{k: _integer(v, minimum=0) for k, v in counts.items()},
        "sinks_stopped": {"type": "array", "items": stopped, "description": "sinks that stopped, and why"},
        "sinks_unfinished": {
            "type": "array",
            "items": unfinished,
            "description": "sinks that could not be finished (what they wrote is left unfinished)",
        },
        "sinks_skipped": {
            "type": "object",
            "additionalProperties": {"type": "integer", "minimum": 1},
            "description": "frames each sink skipped (--stuck-sink skip, or one slower than the engines)",
        },
        "sinks_ms": {"type": "object", "additionalProperties": _stats("a sink's writes")},
        "segments": {
            "type": "object",
            "description": "each --segment sink's files, and how many of the oldest were deleted",
            "additionalProperties": {
                "type": "object",
                "properties": {
                    "files": {"type": "array", "items": {"type": "string"}},
                    "deleted": {"type": "integer", "minimum": 0},
                },
                "required": ["files", "deleted"],
                "additionalProperties": False,
            },
        },
        "source_gap_ms": _number("milliseconds without frames while the source was away", minimum=0),
        "deadline_ms": _number("--deadline-ms, or null", minimum=0, nullable=True),
        "fps": _number("frames out a second, from the first frame's capture", minimum=0),
        "read_fps": _number(
            "the rate the frames out were read at; null under two frames", minimum=0, nullable=True
        ),
        "stages_ms": {
            "type": "object",
            "description": "each stage's times: preprocess, panoptic, depth, postprocess, tracks, sink; "
            "turn (cameras waiting for shared engines); panoptic_gpu, depth_gpu (CUDA events)",
            "additionalProperties": _stats("a stage's times"),
        },
        "end_to_end_ms": _stats("each frame from capture to its last sink"),
    }
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def _summary() -> dict[str, Any]:
    return {
        "$schema": DIALECT,
        "$id": "urn:edge-perception:schema:summary",
        "title": "edge run summary",
        "description": "What edge run --summary writes (and edge demo's out/demo_latency.json, and the "
        "latency of edge replay's metrics.json): a run's, or with --camera each camera's by name.",
        "if": {"required": ["cameras"]},
        "then": {
            "type": "object",
            "properties": {"cameras": {"type": "object", "additionalProperties": {"$ref": "#/$defs/run"}}},
            "additionalProperties": False,
        },
        "else": {"$ref": "#/$defs/run"},
        "$defs": {"run": _run_summary()},
    }


def _heartbeat() -> dict[str, Any]:
    """edge.stream.heartbeat.Heartbeat.beat's file."""
    boot_clock = (
        "seconds on the machine's boot clock (CLOCK_BOOTTIME, which setting the wall clock does not move)"
    )
    return {
        "$schema": DIALECT,
        "$id": "urn:edge-perception:schema:heartbeat",
        "title": "edge heartbeat",
        "description": "What edge run or edge record --heartbeat FILE rewrites at each of its looks at "
        "itself (every 5 s) and removes when it ends; edge alive FILE reads it. The run is alive where "
        "fed_at is recent on this boot's clock and boot_id is this boot's.",
        "type": "object",
        "properties": {
            "pid": _integer("the process id of the run", minimum=1),
            "boot_id": {
                "type": "string",
                "description": "the boot of the machine the file was written in "
                "(/proc/sys/kernel/random/boot_id; empty where the kernel does not say): a file from an "
                "earlier boot is stale whatever its times",
            },
            "fed_at": _number(f"when the run was last seen making progress, {boot_clock}", minimum=0),
            "written_at": _number(f"when the file was written, {boot_clock}", minimum=0),
            "time": {
                "type": "string",
                "description": "the wall-clock time of the write, ISO 8601 with its UTC offset "
                "(YYYY-MM-DDTHH:MM:SS+HHMM): for people; the boot clock's times are for the check",
            },
            "status": {
                "type": "string",
                "description": "the run's status line, as systemd's STATUS= gets it (frames, rate)",
            },
            "stuck": {
                "type": ["string", "null"],
                "description": "what holds the run up (a stage, the source, a sink), or the sinks skipped "
                "while stuck; null while nothing does",
            },
        },
        "required": ["pid", "boot_id", "fed_at", "written_at", "time", "status", "stuck"],
        "additionalProperties": False,
    }


_BUILDERS = {"objects": _objects, "warnings": _warnings, "summary": _summary, "heartbeat": _heartbeat}


def schema(name: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the lines ``name`` (one of SCHEMA_NAMES) names."""
    builder = _BUILDERS.get(name)
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
    """Why the schema ``name`` refuses the JSON document ``text`` (a --summary or --heartbeat
    file), naming the field; None where it takes it."""
    return _refusal(_validator(name), text, whole="the document")


def _validator(name: str) -> Any:
    try:
        import jsonschema
    except ImportError as exc:
        raise DependencyError(
            "checking against a schema needs jsonschema: pip install 'jsonschema>=4.18'"
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
    return f"{where}: {error.message}"


def _no_constant(name: str) -> Any:
    """Python's json reads NaN and Infinity, which JSON (RFC 8259) has not, and other
    languages' readers refuse."""
    raise ValueError(f"{name} is no JSON number")
