"""The JSON Schemas of ``edge compare``'s ``compare.json`` (the two builds, their latency on the
same frames, and the engines' outputs scored with the reference's as the ground truth) and of
``edge profile --json`` (each engine's time, node by node)."""

from __future__ import annotations

from typing import Any

from edge.schema_files import closed_object, document, stats_field
from edge.schema_metrics import SHARE, _depth, _distance_errors, _found_by_distance, _panoptic, _semantic
from edge.schemas import integer_field, number_field


def _side(which: str) -> dict[str, Any]:
    return closed_object(
        {
            "engines": {
                "type": "object",
                "propertyNames": {"enum": ["panoptic", "depth"]},
                "additionalProperties": {"type": "string"},
                "description": "each engine run: model, backend, precision and input size",
            },
            "end_to_end_ms": stats_field("each frame through these engines, from the frame to its objects"),
            "stages_ms": {
                "type": "object",
                "additionalProperties": stats_field("one stage"),
                "description": "each stage's times (preprocess, panoptic, depth, postprocess, tracks)",
            },
        },
        description=which,
    )


def _frame() -> dict[str, Any]:
    share = number_field(f"({SHARE}); null without both engines of its kind", minimum=0, nullable=True)
    return closed_object(
        {
            "frame": integer_field("the frame's number in the source, from 0", minimum=0),
            "name": {
                "type": ["string", "null"],
                "description": "what the source calls it (a Cityscapes name, an image's file); null for a "
                "video, a camera or synthetic://",
            },
            "time_s": number_field("its time on the source's clock (s)", minimum=0),
            "pq": share | {"description": "the frame's PQ over the classes either showed (" + SHARE + ")"},
            "pixels_agree": share | {"description": "its pixels of the same semantic class (" + SHARE + ")"},
            "depth_abs_rel": number_field(
                "its depth's mean |engines - reference| / reference", minimum=0, nullable=True
            ),
            "things": closed_object(
                {
                    "reference": integer_field("things the reference found", minimum=0),
                    "engines": integer_field("things the engines found", minimum=0),
                    "matched": integer_field("of those, paired (same class, IoU > 0.5)", minimum=0),
                }
            ),
        }
    )


def _agreement() -> dict[str, Any]:
    return closed_object(
        {
            "frames": integer_field("frames compared", minimum=0),
            "panoptic": _panoptic(),
            "semantic": _semantic(),
            "depth": _depth(),
            "object_distance": _distance_errors(
                "each object's distance (its mask's median depth) against the reference object's"
            ),
            "found_by_distance": _found_by_distance(),
            "pixels_agree": number_field(
                f"pixels of the same semantic class, all frames' ({SHARE})", minimum=0, nullable=True
            ),
        },
        description="the metrics of edge replay --eval with the reference's outputs as the ground truth",
    )


def _unit(name: str) -> str:
    return "percent" if name.startswith(("pq", "miou")) else "as is"


def _truth() -> dict[str, Any]:
    from edge.compare_truth import HEADLINE

    def figures(what: str) -> dict[str, Any]:
        return closed_object(
            {
                name: number_field(f"{name} ({_unit(name)}); null where not measured", nullable=True)
                for name in HEADLINE
            },
            description=what,
        )

    return closed_object(
        {
            "frames": integer_field("frames with ground truth, scored", minimum=0),
            "engines": figures("the engines' scores against the ground truth (PQ and mIoU in percent)"),
            "reference": figures("the reference's"),
            "change": figures("the engines' less the reference's"),
            "errors": {
                "type": "array",
                "items": {"type": "string"},
                "description": "frames whose ground truth could not be read, and why",
            },
        },
        description="with a source that has ground truth (cityscapes://DIR): both builds scored against it",
    )


def compare_schema() -> dict[str, Any]:
    frames = {"type": "array", "items": _frame()}
    return {
        **document(
            "compare",
            "edge compare compare.json",
            "What edge compare --out DIR writes to DIR/compare.json: two builds of the engines run on the "
            "same frames, how far the engines' outputs agree with the reference's, and their latency.",
        ),
        **closed_object(
            {
                "source": {"type": "string", "description": "the frames compared"},
                "frames": integer_field("frames compared", minimum=0),
                "min_score": number_field("the lowest detection score a thing was kept at", minimum=0),
                "engines": _side("the engines compared"),
                "reference": _side("the reference they were compared with"),
                "speedup": number_field(
                    "the reference's end-to-end p50 over the engines' (above 1: the engines are faster)",
                    minimum=0,
                    nullable=True,
                ),
                "agreement": _agreement(),
                "least_agreeing": frames | {"description": "the frames that agreed least, the least first"},
                "per_frame": frames | {"description": "every frame compared, in order"},
                "truth": _truth(),
                "bounds": {
                    "type": "array",
                    "items": closed_object(
                        {
                            "metric": {
                                "type": "string",
                                "description": "what was bounded (edge compare --help)",
                            },
                            "bound": {"enum": ["min", "max"], "description": "--min or --max"},
                            "limit": number_field("the bound given (PQ, mIoU and shares in percent)"),
                            "value": number_field(
                                "the metric, in the bound's scale; null where it was not measured",
                                nullable=True,
                            ),
                            "held": {"type": "boolean", "description": "whether the value kept the bound"},
                        }
                    ),
                    "description": "with --min or --max: each bound, checked",
                },
                "pictures": {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": "the least agreeing frames' pictures beside this file, the least first",
                },
                "interrupted": {"const": True, "description": "stopped (Ctrl-C) before the source ended"},
                "unfinished": {
                    "const": True,
                    "description": "written while the comparison ran; the last write drops it",
                },
            },
            optional=("truth", "bounds", "pictures", "interrupted", "unfinished"),
        ),
    }


def profile_schema() -> dict[str, Any]:
    ms = "milliseconds a frame"
    share = f"of the nodes' time ({SHARE})"
    engine = closed_object(
        {
            "engine": {"type": "string", "description": "model, backend, precision and input size"},
            "threads": {
                "type": ["integer", "null"],
                "minimum": 0,
                "description": "ONNX Runtime's threads for it; null for TensorRT",
            },
            "frames": integer_field("runs timed (after the warm-up)", minimum=0),
            "run_ms": closed_object(
                {
                    "mean": number_field(f"a whole run, {ms}: mean", minimum=0, nullable=True),
                    "p50": number_field(f"a whole run, {ms}: median", minimum=0, nullable=True),
                }
            ),
            "nodes_ms": number_field(
                f"its nodes' times summed, {ms} (the rest of a run: between them)", minimum=0
            ),
            "node_count": integer_field("nodes timed", minimum=0),
            "by_op": {
                "type": "array",
                "items": closed_object(
                    {
                        "op": {
                            "type": "string",
                            "description": "the operator (ONNX Runtime's, after fusion)",
                        },
                        "ms": number_field(ms, minimum=0),
                        "share": number_field(share, minimum=0),
                        "nodes": integer_field("nodes of it", minimum=0),
                    }
                ),
                "description": "each operator's nodes summed, the slowest first",
            },
            "slowest_nodes": {
                "type": "array",
                "items": closed_object(
                    {
                        "name": {"type": "string", "description": "the node, in the optimized graph"},
                        "op": {"type": "string"},
                        "ms": number_field(ms, minimum=0),
                        "share": number_field(share, minimum=0),
                        "provider": {"type": "string", "description": "ONNX Runtime's execution provider"},
                    }
                ),
                "description": "the slowest nodes (--top), the slowest first",
            },
        }
    )
    return {
        **document(
            "profile",
            "edge profile --json",
            "What edge profile --json prints: each engine's runs on a source's frames, its nodes' "
            "(TensorRT: layers') times by operator and the slowest nodes.",
        ),
        **closed_object(
            {
                "source": {"type": "string", "description": "the frames run"},
                "warmup": integer_field("runs before the timed ones, left out", minimum=0),
                "engines": {
                    "type": "object",
                    "propertyNames": {"enum": ["panoptic", "depth"]},
                    "additionalProperties": engine,
                    "description": "each engine profiled, by kind",
                },
            }
        ),
    }
