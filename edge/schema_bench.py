"""The JSON Schema of ``edge bench``'s report, ``bench.json`` (edge.bench.FORMAT): the sweep's
settings, the machine, and each configuration's measurement (edge.bench.measurement_of; with
several streams, edge.bench_streams.measure_streams' fields too). A sweep stopped by Ctrl-C
says so in ``interrupted`` and its last result is marked ``complete: false``; one written
after each configuration but the last (a sweep killed later keeps it) has ``unfinished``."""

from __future__ import annotations

from typing import Any

from edge.schema_files import closed_object, document, stats_field
from edge.schemas import integer_field, number_field
from edge.stream.fit import FITS
from edge.stream.flip import FLIPS

PERCENTILE_KEYS = ("mean", "min", "p50", "p90", "p95", "p99", "max")
# edge.bench_streams.stream_names: stream0, ... or a rig's cameras (edge.stream.multicam's names)
STREAM_NAME = "^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$"


def _latency(what: str) -> dict[str, Any]:
    """edge.bench.latency_stats: the count, and with one or more the rest, milliseconds."""
    return stats_field(what, PERCENTILE_KEYS)


def _by_stream(value: dict[str, Any], what: str) -> dict[str, Any]:
    return {
        "type": "object",
        "propertyNames": {"pattern": STREAM_NAME},
        "additionalProperties": value,
        "description": what,
    }


def _settings() -> dict[str, Any]:
    from edge.bench_streams import ARRIVALS
    from edge.stream.fit import FITS

    return closed_object(
        {
            "warmup": integer_field("frames run before the measurement, not counted", minimum=0),
            "min_frames": integer_field("the fewest frames a configuration is measured on", minimum=1),
            "min_duration_s": number_field("the shortest time a configuration is measured for", minimum=0),
            "draw": {"type": "boolean", "description": "whether the output frames were drawn"},
            "samples": integer_field("frames read from the source first, measured on", minimum=1),
            "fit": {"enum": list(FITS), "description": "how frames of another shape went in"},
            "rate_fps": number_field("each camera's frames a second (several streams)", minimum=0),
            "arrival": {
                "enum": list(ARRIVALS),
                "description": "the streams' first frames: at once, or spread",
            },
            "rates_fps": _by_stream(number_field("frames a second", minimum=0), "streams of another rate"),
            "priorities": _by_stream({"type": "integer"}, "streams' ranks at the engines"),
            "shares": _by_stream(
                number_field("its share", minimum=0), "streams' shares of their rank's turns"
            ),
        },
        optional=("rate_fps", "arrival", "rates_fps", "priorities", "shares"),
        together=("rate_fps", "arrival"),
    )


def _system() -> dict[str, Any]:
    text = {"type": "string"}
    gpu = closed_object(
        {"name": text, "compute_capability": {"type": "string"}, "cuda": {"type": ["string", "null"]}}
    )
    jetson = closed_object(
        {"model": text, "l4t": text, "power_mode": {"type": ["string", "null"]}},
        optional=("model", "l4t"),
    )
    return closed_object(
        {
            "platform": text,
            "python": text,
            "cpu": {"type": ["string", "null"]},
            "cpu_cores": {"type": ["integer", "null"], "minimum": 1},
            "cpu_extensions": {"type": "array", "items": text},
            "versions": {
                "type": "object",
                "additionalProperties": {"type": ["string", "null"]},
                "description": "each package's version, null where it is not installed",
            },
            "gpu": {"anyOf": [{"type": "null"}, gpu], "description": "torch's first CUDA device"},
            "jetson": {
                "anyOf": [{"type": "null"}, jetson],
                "description": "a Jetson's model, L4T, power mode",
            },
        }
    )


def _result() -> dict[str, Any]:
    from edge.build import BACKEND_PRECISIONS

    precisions = sorted({p for ps in BACKEND_PRECISIONS.values() for p in ps})
    config = closed_object(
        {
            "backend": {"enum": list(BACKEND_PRECISIONS)},
            "precision": {"enum": precisions},
            "size": {
                "type": "array",
                "items": {"type": "integer", "minimum": 1},
                "minItems": 2,
                "maxItems": 2,
            },
            "device": {"type": ["string", "null"]},
            "streams": {"type": ["integer", "null"], "minimum": 1},
            "label": {"type": "string"},
        }
    )
    rail = closed_object(
        {
            "mean_w": number_field("watts", minimum=0),
            "max_w": number_field("watts", minimum=0),
            "samples": integer_field("readings", minimum=1),
        }
    )
    power = closed_object(
        {
            "rails": {"type": "object", "additionalProperties": rail},
            "input_rail": {"type": ["string", "null"]},
            "energy_per_frame_mj": number_field("the input rail's energy a frame", minimum=0, nullable=True),
        }
    )
    stream = closed_object(
        {
            "rate_fps": number_field("its camera's frames a second", minimum=0),
            "size": {
                "type": "string",
                "pattern": "^[0-9]+x[0-9]+$",
                "description": "HxW its frames were resized to (edge bench --rig: the size its camera asks)",
            },
            "fit": {
                "enum": list(FITS),
                "description": "how its frames went into the engines, where not as the engines' fit",
            },
            "flip": {"enum": list(FLIPS), "description": "how its frames were turned or mirrored as read"},
            "lens": {"type": "string", "description": "the lens file its frames were undistorted with"},
            "frames": integer_field("its frames measured", minimum=0),
            "fps": number_field("its frames measured a second", minimum=0),
            "arrived": integer_field("its frames that came while measured", minimum=0),
            "drops": integer_field("of those, dropped for newer ones", minimum=0),
            "dropped_fraction": number_field("drops over arrived", minimum=0),
            "end_to_end_ms": _latency("its frames from capture to the sinks"),
        },
        optional=("size", "fit", "flip", "lens"),
    )
    several = {
        "streams": _by_stream(stream, "each camera's share of the measurement"),
        "rate_fps": number_field("each camera's frames a second", minimum=0),
        "arrived": integer_field("frames that came from all cameras while measured", minimum=0),
        "dropped_fraction": number_field("drops over arrived", minimum=0),
        "keeps_up": {"type": "boolean", "description": "every stream dropped few enough"},
        "evenness": number_field("the least a stream got of its fair part over the most", minimum=0),
    }
    return closed_object(
        {
            "config": config,
            "engines": {
                "type": "object",
                "propertyNames": {"enum": ["panoptic", "depth"]},
                "additionalProperties": {"type": "string"},
                "description": "each engine measured: model, backend, precision and input size",
            },
            "frames": integer_field("frames measured", minimum=0),
            "warmup_frames": integer_field("frames run first, not measured", minimum=0),
            "seconds": number_field("the measurement's length", minimum=0),
            "throughput_fps": number_field("frames measured a second", minimum=0),
            "drops": integer_field("frames dropped for newer ones", minimum=0),
            **several,
            "stages_ms": {"type": "object", "additionalProperties": _latency("a stage's times")},
            "end_to_end_ms": _latency("each frame from capture to its last sink"),
            "samples_ms": {
                "type": "object",
                "additionalProperties": {"type": "array", "items": number_field("milliseconds", minimum=0)},
                "description": "every frame's time in each stage, in order",
            },
            "power": power,
            "complete": {"const": False, "description": "stopped by Ctrl-C before its minimum"},
        },
        optional=(*several, "power", "complete"),
        together=tuple(several),
        # a configuration of several streams (one included) has their fields; one of none, not
        **{
            "if": {"properties": {"config": {"properties": {"streams": {"type": "integer"}}}}},
            "then": {"required": ["streams"]},
            "else": {"not": {"required": ["streams"]}},
        },
    )


def bench_schema() -> dict[str, Any]:
    """The report of ``edge bench`` (``bench.json``): every field, those always written required."""
    from edge.bench import FORMAT

    configurations = {
        "complete_configurations": integer_field("configurations measured whole", minimum=0),
        "configurations": integer_field("configurations in the sweep", minimum=1),
    }
    return {
        **document(
            "bench",
            "edge bench report",
            "What edge bench writes to bench.json: the sweep's settings, the machine, and each "
            "configuration's measurement.",
        ),
        **closed_object(
            {
                "format": {"const": FORMAT},
                "created": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$"},
                "scenario": {"enum": ["single-stream", "multi-stream"]},
                "source": {"type": "string", "description": "the source URI the samples were read from"},
                "samples": closed_object(
                    {
                        "frames": integer_field("frames held", minimum=0),
                        "megabytes": number_field("their size", minimum=0),
                        "sizes": {"type": "array", "items": {"type": "string", "pattern": "^[0-9]+x[0-9]+$"}},
                        "read_ms": _latency("each frame's read from the source"),
                    }
                ),
                "settings": _settings(),
                "system": _system(),
                "results": {"type": "array", "items": _result()},
                "interrupted": closed_object(
                    {
                        "during": {"type": "string", "description": "the configuration's label"},
                        **configurations,
                    }
                ),
                "unfinished": closed_object(configurations),
            },
            optional=("interrupted", "unfinished"),
        ),
        # a sweep with several streams has their rate and arrival in its settings; one without, not
        "if": {"properties": {"scenario": {"const": "multi-stream"}}},
        "then": {"properties": {"settings": {"required": ["rate_fps", "arrival"]}}},
        "else": {"properties": {"settings": {"not": {"required": ["rate_fps"]}}}},
    }
