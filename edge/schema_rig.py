"""The JSON Schema of ``edge rig --json``: each camera's source and what reading it for a while
showed (edge.rig_check.check_camera), and what the cameras see round the vehicle
(edge.rig_coverage.coverage)."""

from __future__ import annotations

from typing import Any

from edge.schema_files import closed_object, document
from edge.schemas import integer_field, number_field

_PAIR = {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 2, "maxItems": 2}
_BEARING = {"type": "number", "minimum": -180, "maximum": 180}


def rig_schema() -> dict[str, Any]:
    lens = closed_object(
        {
            "ok": {"type": "boolean", "description": "read, and of the frames' shape"},
            "path": {"type": "string", "description": "the calibration file, beside the rig"},
            "size": {**_PAIR, "description": "[width, height] of the pictures it was made from"},
            "error": {"type": "string", "description": "why it cannot be read, or is of another shape"},
        },
        optional=("size", "error"),
    )
    camera = closed_object(
        {
            "source": {"type": "string", "description": "the camera's URI, as the run takes it"},
            "ok": {
                "type": "boolean",
                "description": "it gave its frames, as asked, and its lens file is right",
            },
            "size": {**_PAIR, "type": ["array", "null"], "description": "[width, height] of its frames"},
            "fps": number_field(
                "frames a second: a camera's from its capture times, a file's own rate", nullable=True
            ),
            "first_s": number_field("seconds its first frame took", minimum=0, nullable=True),
            "frames": integer_field("frames read", minimum=0),
            "dropped": integer_field("frames it dropped meanwhile", minimum=0),
            "reconnects": integer_field("times it was lost and came back", minimum=0),
            "error": {"type": ["string", "null"], "description": "what went wrong, or null"},
            "lens": {"anyOf": [lens, {"type": "null"}], "description": "its lens file read, or null"},
            "stretched": {
                "type": ["string", "null"],
                "description": "with --engines: how those engines would stretch its frames, as edge run "
                "says it; else null",
            },
        }
    )
    arc = {"type": "array", "items": _BEARING, "minItems": 2, "maxItems": 2}
    seen_deg = {"type": "number", "minimum": 0, "maximum": 360}
    coverage = closed_object(
        {
            "seen_deg": {**seen_deg, "description": "degrees seen"},
            "unseen": {
                "type": "array",
                "items": arc,
                "description": "[from, to] bearings no camera sees, degrees left of straight ahead, "
                "from going left to to",
            },
            "shared": {
                "type": "array",
                "items": {
                    "type": "array",
                    "prefixItems": [{"type": "string"}, {"type": "string"}, {"type": "number", "minimum": 0}],
                    "minItems": 3,
                    "maxItems": 3,
                },
                "description": "[camera, camera, degrees] of each two whose views overlap",
            },
            "unknown": {
                "type": "array",
                "items": {"type": "string"},
                "description": "the cameras of no known field of view, not counted",
            },
            "near": closed_object(
                {
                    "range_m": number_field("metres from the vehicle's reference point", minimum=0),
                    "seen_deg": {**seen_deg, "description": "degrees of the ring seen"},
                    "unseen": {
                        "type": "array",
                        "items": arc,
                        "description": "[from, to] bearings of the ring no camera sees from where it is "
                        "mounted, as unseen's",
                    },
                },
            ),
        },
        optional=("near",),
    )
    return {
        **document(
            "rig",
            "edge rig report",
            "What edge rig --json prints: each camera of a rig file read for a while, and what the "
            "cameras see round the vehicle.",
        ),
        **closed_object(
            {
                "rig": {"type": "string", "description": "the rig file, as given"},
                "cameras": {"type": "object", "additionalProperties": camera},
                "coverage": coverage,
            }
        ),
    }
