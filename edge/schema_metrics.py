"""The JSON Schema of ``edge replay --out DIR``'s ``metrics.json``: what was replayed, its
latency summary, and with ``--eval`` the metrics (edge.eval.Evaluator.results): PQ, mIoU,
depth errors, objects' distances, things found by distance, tracks, warnings and cut-ins.

Metrics of nothing seen are absent or null as the evaluator gives them: a group of classes no
frame showed has PQ null (NaN to the evaluator, null in strict JSON); a class no frame showed
has IoU null; error percentiles come only with one pair or more, all of them or none.
"""

from __future__ import annotations

from typing import Any

from edge.schema_files import closed_object, document, run_summary
from edge.schemas import integer_field, number_field

SHARE = "a share, 0 to 1"


def _count(what: str) -> dict[str, Any]:
    return integer_field(what, minimum=0)


def _share(what: str) -> dict[str, Any]:
    return number_field(f"{what} ({SHARE}; null where there were none)", nullable=True)


def _with_errors(counts: dict[str, Any], errors: dict[str, Any]) -> dict[str, Any]:
    """``counts`` always there; ``errors`` all there or none (there where one pair or more was)."""
    return closed_object({**counts, **errors}, optional=tuple(errors), together=tuple(errors))


def _percentiles(unit: str, what: str) -> dict[str, Any]:
    return {
        f"abs_err_{unit}_p50": number_field(f"{what}, median ({unit})", minimum=0),
        f"abs_err_{unit}_p90": number_field(f"{what}, 90th percentile ({unit})", minimum=0),
    }


def _distance_errors(what: str) -> dict[str, Any]:
    """edge.eval.objects.distance_errors."""
    return _with_errors(
        {"objects": _count(f"objects paired with their truth: {what}")},
        {
            "abs_rel": number_field("mean |predicted - true| / true", minimum=0),
            **_percentiles("m", "|predicted - true|"),
            "within_10pct": number_field(f"the share within 10% of the true distance ({SHARE})", minimum=0),
        },
    ) | {"description": what}


def _speed_errors(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """edge.eval.tracking._speed_errors: closing speeds, m/s."""
    return _with_errors(
        {
            **(extra or {}),
            "pairs": _count("tracked objects paired with ground truth where both speeds are known"),
        },
        {
            "abs_err_mps_mean": number_field("|predicted - true| closing speed, mean (m/s)", minimum=0),
            **_percentiles("mps", "|predicted - true| closing speed"),
            "sign_agrees": _share("where the truth is 1 m/s or more either way, the share whose sign agrees"),
        },
    )


def _panoptic() -> dict[str, Any]:
    from edge.data.cityscapes import TRAIN_CLASSES

    group = closed_object(
        {
            "pq": number_field(
                "panoptic quality, the mean over the group's classes seen", minimum=0, nullable=True
            ),
            "sq": number_field("segmentation quality, the same mean", minimum=0, nullable=True),
            "rq": number_field("recognition quality, the same mean", minimum=0, nullable=True),
            "n": _count("the group's classes seen (null figures where none was)"),
        }
    )
    per_class = closed_object(
        {
            **{k: number_field(f"the class's {k.upper()}", minimum=0) for k in ("pq", "sq", "rq")},
            "tp": _count("segments matched (IoU > 0.5)"),
            "fp": _count("predicted segments unmatched"),
            "fn": _count("true segments unmatched"),
        }
    )
    return closed_object(
        {
            "all": group,
            "things": group,
            "stuff": group,
            "per_class": {
                "type": "object",
                "propertyNames": {"enum": [c.name for c in TRAIN_CLASSES]},
                "additionalProperties": per_class,
                "description": "each class the truth or the predictions held, by name",
            },
        },
        description="PQ / SQ / RQ as the official Cityscapes panoptic evaluation computes them",
    )


def _semantic() -> dict[str, Any]:
    from edge.data.cityscapes import TRAIN_CLASSES

    iou = closed_object(
        {
            c.name: number_field("IoU; null where no frame showed the class", minimum=0, nullable=True)
            for c in TRAIN_CLASSES
        }
    )
    return closed_object(
        {
            "miou": number_field("the mean IoU over the classes seen", minimum=0, nullable=True),
            "per_class_iou": iou,
        },
        description="IoU over the 19 train classes, as the official Cityscapes evaluation",
    )


def _depth() -> dict[str, Any]:
    return _with_errors(
        {"pixels": _count("valid ground-truth pixels compared")},
        {
            "abs_rel": number_field("mean |d - g| / g", minimum=0),
            "sq_rel": number_field("mean (d - g)^2 / g", minimum=0),
            "rmse": number_field("root mean square error (m)", minimum=0),
            "rmse_log": number_field("root mean square error of log depth", minimum=0),
            **{
                f"delta{i}": number_field(f"the share with max(d/g, g/d) < 1.25^{i}", minimum=0)
                for i in (1, 2, 3)
            },
            "range_m": {
                "type": "array",
                "items": {"type": "number"},
                "minItems": 2,
                "maxItems": 2,
                "description": "the depths compared, metres: [min, max]",
            },
        },
    )


def _found_by_distance() -> dict[str, Any]:
    row = closed_object(
        {
            "band": {"type": "string", "description": "the band of true distances, e.g. '10-20 m'"},
            "things": _count("true things in the band"),
            "found": _count("of those, the ones panoptic matching paired with a prediction of their class"),
            "recall": _share("found / things"),
        }
    )
    rows = {"type": "array", "items": row}
    return closed_object(
        {
            "bands": {
                "type": "array",
                "items": {"type": "string"},
                "description": "the bands' names, nearest first",
            },
            "all": rows | {"description": "every class, a row a band"},
            "per_class": {
                "type": "object",
                "additionalProperties": rows,
                "description": "a thing class's rows",
            },
        }
    )


def _lateral() -> dict[str, Any]:
    cut_in_events = _with_errors(
        {
            "truly": _count("things that truly cut in"),
            "warned": _count("of those, said to cut in before they were in the path"),
            "recall": _share("warned / truly"),
            "entered": _count("things seen entering the path"),
            "false_things": _count("other things said to cut in"),
            "in_path_before": _count("of those not warned of, said to be in the path while truly beside it"),
            "flagged_recall": _share("(warned + in_path_before) / truly"),
        },
        {
            "lead_s_p50": number_field("how long before entering the path the warning came, median (s)"),
            "lead_s_min": number_field("the same, least (s)"),
        },
    )
    paired = {
        **_percentiles("m", "|lateral_m - true|"),
        "near": _with_errors(
            {"within_m": number_field("nearer than this (m)", minimum=0), "pairs": _count("pairs that near")},
            _percentiles("m", "|lateral_m - true|"),
        ),
        "in_path": closed_object(
            {
                "truly": _count("pairs truly in the path"),
                "said": _count("pairs said to be in it"),
                "recall": _share("of those truly in it, the share said to be"),
                "precision": _share("of those said to be, the share truly in it"),
                "path_width_m": number_field("the path's width in_path meant (m)", minimum=0),
            }
        ),
        "lateral_speed": _with_errors(
            {"pairs": _count("pairs where both lateral speeds are known")},
            _percentiles("mps", "|lateral_mps - true|"),
        ),
        "cut_in": closed_object(
            {
                "beside": _count("pairs truly beside the path with a true lateral speed"),
                "truly": _count("of those, truly cutting in"),
                "said": _count("of those, said to be"),
                "false": _count("said to but not truly"),
                "missed": _count("truly but not said to"),
            }
        ),
    }
    schema = closed_object(
        {
            "pairs": _count("tracked objects saying lateral_m paired with ground truth"),
            **paired,
            "cut_in_events": cut_in_events,
        },
        optional=(*paired, "cut_in_events"),
        description="where the tracks say lateral_m (a field of view given): its errors, in_path's "
        "agreement, lateral speeds and cut-ins; with no pair only pairs, and cut_in_events where "
        "things truly cut in",
    )
    # with one pair or more every figure is there (cut_in_events too); with none, pairs alone
    schema["dependentRequired"] = {k: [o for o in (*paired, "cut_in_events") if o != k] for k in paired}
    return schema


def _tracking() -> dict[str, Any]:
    warnings = _with_errors(
        {
            "within_s": number_field("a warning is due within this time to collision (s)", minimum=0),
            "due": _count("things a warning was truly due for"),
            "warned": _count("of those, warned of"),
            "recall": _share("warned / due"),
            "never_found": _count("of those not warned of, never paired with a prediction from when due"),
            "said": _count("things warned of"),
            "false": _count("of those, never truly due"),
        },
        {
            "delay_s_p50": number_field(
                "how long after it was due the first warning came, median (s; negative: before)"
            ),
            "delay_s_p90": number_field("the same, 90th percentile (s)"),
        },
    )
    ttc = _with_errors(
        {
            "within_s": number_field("times to collision truly within this are scored (s)", minimum=0),
            "pairs": _count("pairs scored"),
            "missed": _count("where none was given"),
        },
        {
            **_percentiles("s", "|predicted - true| time to collision"),
            "rel_err_p50": number_field("|predicted - true| / true, median", minimum=0),
        },
    )
    return closed_object(
        {
            "idf1": number_field(
                "identity F1 (2 IDTP / (true + predicted things))", minimum=0, nullable=True
            ),
            "gt_objects": _count("true things, frame by frame"),
            "pred_objects": _count("tracked objects, frame by frame"),
            "matched": _count("of those, paired with a true thing"),
            "misses": _count("true things unpaired"),
            "false_positives": _count("tracked objects unpaired"),
            "id_switches": _count("times a true thing's track changed"),
            "mota": number_field(
                "1 - (misses + false positives + switches) / true things; null with none", nullable=True
            ),
            "lateral": _lateral(),
            "warnings": warnings,
            "ground_distance": _distance_errors("the tracks' ground_m (a ground plane given)"),
            "scaled_distance": _distance_errors(
                "distances the tracker scaled to the road where the feet were hidden"
            ),
            "closing_speed": _speed_errors(),
            "closing_speed_near": _speed_errors(
                {"within_m": number_field("nearer than this (m)", minimum=0)}
            ),
            "time_to_collision": ttc,
        },
        description="the tracks against the ground truth's instance ids, frame by frame",
    )


def _metrics() -> dict[str, Any]:
    return closed_object(
        {
            "frames": _count("frames evaluated"),
            "panoptic": _panoptic(),
            "semantic": _semantic(),
            "depth": _depth(),
            "object_distance": _distance_errors("each object's distance (its mask's median depth)"),
            "found_by_distance": _found_by_distance(),
            "tracking": _tracking(),
        },
        type=["object", "null"],
        description="with --eval; null without",
    )


def metrics_schema() -> dict[str, Any]:
    return {
        **document(
            "metrics",
            "edge replay metrics.json",
            "What edge replay --out DIR writes to DIR/metrics.json (rewritten as it goes, marked "
            "unfinished until the end): the replay's counts, its latency summary and with --eval "
            "the metrics.",
        ),
        **closed_object(
            {
                "source": {"type": "string", "description": "the source replayed"},
                "frames": _count("frames replayed"),
                "gt_frames": _count("of those, frames with ground truth"),
                "min_score": number_field(
                    "the lowest detection score a thing was kept at (--min-score)", minimum=0
                ),
                "metrics": _metrics(),
                "latency": run_summary() | {"description": "as edge run --summary's file says a run's"},
                "errors": {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": "ground-truth frames that could not be evaluated, and why",
                },
                "predictions": closed_object(
                    {
                        "frames": _count("frames whose predictions were written"),
                        "stopped": {
                            "type": ["string", "null"],
                            "description": "why the predictions stopped (a full disk); null where "
                            "they did not",
                        },
                    }
                ),
                "scored_part": {
                    "type": "object",
                    "description": "with --fit crop: by frame size (HxW), the part of the frame the "
                    "metrics are of",
                    "additionalProperties": closed_object(
                        {
                            "box": {
                                "type": "array",
                                "items": {"type": "integer", "minimum": 0},
                                "minItems": 4,
                                "maxItems": 4,
                                "description": "top, left, bottom, right (pixels)",
                            },
                            "share": number_field(f"of the frame's area ({SHARE})", minimum=0),
                        }
                    ),
                },
                "interrupted": {"const": True, "description": "stopped (Ctrl-C) before the source ended"},
                "unfinished": {
                    "const": True,
                    "description": "written while the replay ran; the last write drops it",
                },
            },
            optional=("scored_part", "interrupted", "unfinished"),
        ),
    }
