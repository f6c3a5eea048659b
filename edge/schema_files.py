"""The JSON Schemas of the whole files edge writes for other programs (edge.schemas has the
lines' and the checks): ``summary`` (``edge run --summary``), ``heartbeat`` (``--heartbeat
FILE``) and ``record`` (``edge record --summary``); and of the live viewer's answers, ``stats``
(GET /stats) and ``history`` (GET /history); and ``lint`` (``edge lint --json``).
edge.schema_bench: ``edge bench``'s report;
edge.schema_metrics: ``edge replay``'s metrics.json."""

from __future__ import annotations

from typing import Any

from edge.schemas import DIALECT, integer_field, number_field


def closed_object(
    properties: dict[str, Any], *, optional: tuple[str, ...] = (), together: tuple[str, ...] = (), **more: Any
) -> dict[str, Any]:
    """An object of these properties and no others, each required but the ``optional`` ones;
    the ``together`` ones there all or none; ``more`` keywords of the schema besides."""
    out: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "required": [k for k in properties if k not in optional],
        "additionalProperties": False,
    }
    if together:
        out["dependentRequired"] = {k: [o for o in together if o != k] for k in together}
    return {**out, **more}


def document(name: str, title: str, description: str) -> dict[str, Any]:
    """The keywords that open the schema of a whole file or answer: its dialect, id and title."""
    return {
        "$schema": DIALECT,
        "$id": f"urn:edge-perception:schema:{name}",
        "title": title,
        "description": description,
    }


def stats_field(what: str, keys: tuple[str, ...] = ("mean", "p50", "p90", "p99", "max")) -> dict[str, Any]:
    """Times: their count, and with one or more the rest, milliseconds. The default ``keys``
    are a stage's or sink's (edge.latency.samples.Samples.stats); edge bench's add min and
    p95 (edge.bench.latency_stats)."""
    ms = {k: number_field(f"milliseconds: {k}", minimum=0) for k in keys}
    return closed_object(
        {"count": integer_field("how many were timed", minimum=0), **ms},
        optional=keys,
        description=what,
        dependentRequired={k: ["count", *(o for o in ms if o != k)] for k in ms},
    )


# a run's counters, in its summary and in the viewer's rolling figures (LatencyTracker)
COUNTS = {
    "frames_in": "frames the source gave",
    "frames_out": "frames that went through the engines to the sinks",
    "drops": "frames dropped for newer ones (a live source the engines could not keep up with)",
    "sink_errors": "frames a sink failed to write",
    "reconnects": "times a camera or stream was opened again after it went away",
    "undecodable": "frames the source could not decode",
    "deadline_misses": "frames whose end_to_end took longer than deadline_ms",
}


def run_summary() -> dict[str, Any]:
    """One run's (edge.latency.LatencyTracker.summary): every key is always there."""
    stopped = closed_object(
        {
            "sink": {"type": "string"},
            "frame": {"type": ["integer", "null"], "description": "the frame it stopped at"},
            "reason": {"type": "string"},
        },
        optional=("frame",),
    )
    unfinished = closed_object({"sink": {"type": "string"}, "reason": {"type": "string"}})
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
        "pace_fps": number_field(
            "the rate a source kept its frames to, fps (pacing source)", minimum=0, nullable=True
        ),
        "pace_hint": {"type": ["string", "null"], "description": "how to replay the source at its own rate"},
        "road_plane": {
            "type": ["object", "null"],
            "description": "the road's plane fitted to the depth map for a camera nobody measured; null "
            "where none was fitted (a measured plane, --no-ground, no depth engine)",
            "properties": {
                "height_m": number_field(
                    "the camera's height over the road, in the depth engine's metres", nullable=True
                ),
                "horizon": number_field("the horizon's row over the picture's height"),
                "focal": number_field("the focal length over the picture's height", nullable=True),
            },
            "required": ["height_m", "horizon", "focal"],
            "additionalProperties": False,
        },
        **{k: integer_field(v, minimum=0) for k, v in COUNTS.items()},
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
        "reads_hung_s": {
            "type": "array",
            "items": number_field("seconds", minimum=0),
            "description": "each read of the recording, in drive order, that hung past the patience: how "
            "long before the other cameras went on without it",
        },
        "sinks_ms": {"type": "object", "additionalProperties": stats_field("a sink's writes")},
        "segments": {
            "type": "object",
            "description": "each --segment sink's files, and how many of the oldest were deleted",
            "additionalProperties": closed_object(
                {
                    "files": {"type": "array", "items": {"type": "string"}},
                    "deleted": {"type": "integer", "minimum": 0},
                }
            ),
        },
        "source_gap_ms": number_field("milliseconds without frames while the source was away", minimum=0),
        "deadline_ms": number_field("--deadline-ms, or null", minimum=0, nullable=True),
        "fps": number_field("frames out a second, from the first frame's capture", minimum=0),
        "read_fps": number_field(
            "the rate the frames out were read at; null under two frames", minimum=0, nullable=True
        ),
        "stages_ms": {
            "type": "object",
            "description": "each stage's times: preprocess, panoptic, depth, postprocess, tracks, sink; "
            "turn (cameras waiting for shared engines); panoptic_gpu, depth_gpu (CUDA events)",
            "additionalProperties": stats_field("a stage's times"),
        },
        "end_to_end_ms": stats_field("each frame from capture to its last sink"),
    }
    return closed_object(properties)


def summary_schema() -> dict[str, Any]:
    return {
        **document(
            "summary",
            "edge run summary",
            "What edge run --summary writes (and edge demo's out/demo_latency.json, and the latency of "
            "edge replay's metrics.json): a run's, or with --camera each camera's by name.",
        ),
        "if": {"required": ["cameras"]},
        "then": {
            "type": "object",
            "properties": {"cameras": {"type": "object", "additionalProperties": {"$ref": "#/$defs/run"}}},
            "additionalProperties": False,
        },
        "else": {"$ref": "#/$defs/run"},
        "$defs": {"run": run_summary()},
    }


def heartbeat_schema() -> dict[str, Any]:
    """edge.stream.heartbeat.Heartbeat.beat's file."""
    boot_clock = (
        "seconds on the machine's boot clock (CLOCK_BOOTTIME, which setting the wall clock does not move)"
    )
    properties: dict[str, Any] = {
        "pid": integer_field("the process id of the run", minimum=1),
        "boot_id": {
            "type": "string",
            "description": "the boot of the machine the file was written in "
            "(/proc/sys/kernel/random/boot_id; empty where the kernel does not say): a file from an "
            "earlier boot is stale whatever its times",
        },
        "fed_at": number_field(f"when the run was last seen making progress, {boot_clock}", minimum=0),
        "written_at": number_field(f"when the file was written, {boot_clock}", minimum=0),
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
    }
    return {
        **document(
            "heartbeat",
            "edge heartbeat",
            "What edge run or edge record --heartbeat FILE rewrites at each of its looks at itself "
            "(every 5 s) and removes when it ends; edge alive FILE reads it. The run is alive where "
            "fed_at is recent on this boot's clock and boot_id is this boot's.",
        ),
        **closed_object(properties),  # every field, always
    }


def record_schema() -> dict[str, Any]:
    """edge.stream.record's summary (record(), and RecordingStopped's after a failed write)."""
    uris = {"type": "array", "items": {"type": "string"}}
    per_sink = {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0}}
    properties: dict[str, Any] = {
        "frames": integer_field("frames every sink was handed and took", minimum=0),
        "dropped": integer_field("frames the source dropped before the sinks (a live camera)", minimum=0),
        "undecodable": integer_field("frames the source could not decode and skipped", minimum=0),
        "reconnects": integer_field("times the source came back after losing its stream", minimum=0),
        "seconds_without_frames": number_field("seconds those losses lasted, in all", minimum=0),
        "seconds": number_field("seconds the recording took", minimum=0),
        "fps": number_field("frames a second it recorded at (frames / seconds)", minimum=0),
        "video_fps": number_field(
            "the rate the first video plays at (frames a second); null without a video", nullable=True
        ),
        "captured_fps": number_field(
            "the rate the frames were captured at, from their first and last capture times; null "
            "for fewer than two frames",
            nullable=True,
        ),
        "sinks": {**uris, "description": "every sink's URI, as given"},
        "timestamps": {
            **uris,
            "description": "the files of the frames' capture times: a video's beside it "
            "(VIDEO.timestamps.txt), a folder's in it (timestamps.txt), where a sink wrote frames",
        },
        "segments": {
            "type": "object",
            "additionalProperties": uris,
            "description": "each segmented sink's files or folders, in order, by URI",
        },
        "deleted_segments": integer_field(
            "segments deleted for room (--segment with --keep-free --delete-oldest)", minimum=0
        ),
        "sinks_skipped": {
            **per_sink,
            "description": "frames a sink skipped, by URI: a window or the viewer slower than the "
            "camera, or one stuck in a write (--stuck-sink skip)",
        },
        "sinks_for_watching": {
            **uris,
            "description": "the sinks that are for watching (a window, the viewer)",
        },
        "sinks_frames": {
            **per_sink,
            "description": "what each sink holds, by URI: more than frames where the others wrote on "
            "after one failed",
        },
        "interrupted": {"type": "boolean", "description": "whether Ctrl-C or SIGTERM ended it"},
    }
    return {
        **document(
            "record",
            "edge record summary",
            "What edge record --summary writes: a recording's counts, rates and files, also after "
            "Ctrl-C or a sink that stopped (interrupted, sinks_frames); with --camera or --rig each "
            "camera's by name.",
        ),
        "if": {"required": ["cameras"]},
        "then": {
            "type": "object",
            "properties": {
                "cameras": {"type": "object", "additionalProperties": {"$ref": "#/$defs/recording"}}
            },
            "additionalProperties": False,
        },
        "else": {"$ref": "#/$defs/recording"},
        "$defs": {"recording": closed_object(properties)},  # every field, always
    }


def _rolling() -> dict[str, Any]:
    """The tracker's figures over its last frames (edge.latency.LatencyTracker.rolling)."""
    return {
        "engines": {
            "type": "object",
            "propertyNames": {"enum": ["panoptic", "depth"]},
            "additionalProperties": {"type": "string"},
            "description": "each engine run: model, backend, precision and input size",
        },
        "stages_ms": {
            "type": "object",
            "additionalProperties": stats_field("a stage's times over the last frames"),
        },
        "fps": number_field("frames a second over the last frames", minimum=0),
        **{k: integer_field(what, minimum=0) for k, what in COUNTS.items()},
        "deadline_ms": number_field("edge run --deadline-ms; null without one", minimum=0, nullable=True),
        "source_gap_ms": number_field("milliseconds the source was lost for, in all", minimum=0),
    }


def stats_schema() -> dict[str, Any]:
    """The live viewer's GET /stats (edge.viewer.server.ViewerServer.snapshot)."""
    from edge.schemas import schema

    objects = schema("objects")
    thing = objects["$defs"]["object"]
    marked = {
        **thing,
        "properties": {
            **thing["properties"],
            "warn": {"type": "boolean", "description": "whether the overlay outlines it red"},
        },
        "required": [*thing["required"], "warn"],
    }
    line = {k: v for k, v in schema("warnings").items() if k not in ("$schema", "$id", "title")}
    fused = {k: v for k, v in schema("fused").items() if k not in ("$schema", "$id", "title", "description")}
    rolling = _rolling()
    properties: dict[str, Any] = {
        "t": number_field("seconds since the viewer started", minimum=0),
        "seq": {"type": ["integer", "null"], "description": "the newest drawn frame's number; null: none"},
        "published": integer_field("frames drawn for the viewer", minimum=0),
        "pictures_only": {
            "type": "boolean",
            "description": "the source's pictures alone, no engines' views (edge record)",
        },
        "camera": {"type": ["string", "null"], "description": "the camera shown, of several"},
        "cameras": {
            "type": "array",
            "items": closed_object({"name": {"type": "string"}, "port": {"type": "integer", "minimum": 1}}),
            "description": "every camera's viewer of the run",
        },
        "objects_seq": {"type": ["integer", "null"], "description": "the frame the objects are of"},
        "objects": {
            "type": "array",
            "items": marked,
            "description": "the newest drawn frame's things, as an objects line has them",
        },
        "warnings": {
            "type": "array",
            "items": line,
            "description": "the newest lines of the run's warnings log, newest first",
        },
        "warnings_total": integer_field("the warnings log's lines so far", minimum=0),
        "around": {
            "anyOf": [fused, {"type": "null"}],
            "description": "of several cameras' viewers: the things around the vehicle of every "
            "camera's newest frame, as a ?lines=fused line has them; null for one camera, or before "
            "the first frame",
        },
        "around_views": {
            "type": "array",
            "items": closed_object(
                {
                    "camera": {"type": "string"},
                    "yaw_deg": number_field("which way it looks: degrees left of straight ahead"),
                    "hfov_deg": number_field("how wide it sees, degrees; null: not known", nullable=True),
                    "lateral_m": number_field("metres right of the vehicle's middle it is mounted"),
                    "ahead_m": number_field("metres ahead of the vehicle's reference point it is mounted"),
                }
            ),
            "description": "of several cameras' viewers: what each camera sees; empty for one camera",
        },
        **rolling,
    }
    return {
        **document(
            "stats",
            "edge viewer stats",
            "What the live viewer's GET /stats answers: the newest frame's things and warnings, and with "
            "a run's tracker its rolling figures (all of them or none).",
        ),
        **closed_object(properties, optional=tuple(rolling), together=tuple(rolling)),
    }


def history_schema() -> dict[str, Any]:
    """The live viewer's GET /history (edge.viewer.server._compact: a /stats sample a period)."""
    stats = stats_schema()["properties"]
    kept = ("t", "seq", "fps", "drops", "deadline_misses", "frames_in", "frames_out", "reconnects")
    p50_p99 = closed_object({k: number_field(f"milliseconds: {k}", minimum=0) for k in ("p50", "p99")})
    sample = closed_object(
        {
            **{k: stats[k] for k in kept},
            "stages_ms": {
                "type": "object",
                "additionalProperties": p50_p99,
                "description": "each stage timed so far: its p50 and p99 over the last frames",
            },
        },
        optional=kept[2:],  # a run tracker's counters: all or none
        together=kept[2:],
    )
    return {
        **document(
            "history",
            "edge viewer history",
            "What the live viewer's GET /history answers: its /stats samples of the last minutes, "
            "oldest first, for a page that opens late.",
        ),
        "type": "array",
        "items": sample,
    }


def lint_schema() -> dict[str, Any]:
    """edge lint --json: each model's findings for one target (edge.export.lint.Finding)."""
    finding = closed_object(
        {
            "level": {
                "enum": ["error", "warning", "info"],
                "description": "error: the parser or the build fails; warning: it takes the graph with a "
                "cost or a caveat, or only a later version of the target does; info: a note",
            },
            "op": {
                "type": "string",
                "description": "the node's op (DOMAIN::OP for a custom one), or what "
                "else the finding is of: model, graph input, graph output",
            },
            "node": {"type": "string", "description": "the node's or tensor's name; empty where it has none"},
            "message": {"type": "string"},
        }
    )
    model = closed_object(
        {
            "path": {"type": "string", "description": "the ONNX file, as given"},
            "target": {
                "type": "string",
                "pattern": r"^(trt10|trt11|[0-9]+\.[0-9]+)$",
                "description": "trt10, trt11, or the one TensorRT release linted against (10.13)",
            },
            "tensorrt": {"type": "string", "description": "the TensorRT versions the target stands for"},
            "errors": integer_field("findings of level error", minimum=0),
            "warnings": integer_field("findings of level warning", minimum=0),
            "findings": {"type": "array", "items": finding},
        }
    )
    return {
        **document(
            "lint",
            "edge lint report",
            "What edge lint --json prints: each model's TensorRT compatibility findings for the target.",
        ),
        **closed_object({"models": {"type": "array", "items": model}}),
    }
