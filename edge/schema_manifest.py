"""The JSON Schemas of ``engines/manifest.json``, which ``build_engines.py`` / ``edge build``
writes and the runtime reads: per engine what was built (model, size, backend, precision,
tensors), from what (ONNX, weights, versions, calibration), the files and their hashes, the
TensorRT lint and how the engine checked out against torch.

Every entry has the same fields; TensorRT's adds ``build_flags`` and ``build_notes``. Fields
that depend on the build are null where they do not apply (no calibration for a float engine,
no accuracy check with ``--verify-samples 0``, no GPU off TensorRT). Paths are relative to
the engines folder (edge.manifest refuses any that leave it).

And of ``edge calibrate``'s ranges JSON (``<stem>.calib.json``), which a build writes beside an
INT8 engine too: its calibration record is the manifest's, less the files.
"""

from __future__ import annotations

from typing import Any

from edge.schema_files import closed_object, document
from edge.schemas import integer_field, number_field

SHA256 = {"type": "string", "pattern": "^[0-9a-f]{64}$"}


def _text(description: str, *, nullable: bool = False) -> dict[str, Any]:
    return {"type": ["string", "null"] if nullable else "string", "description": description}


def _sha256(what: str, *, nullable: bool = False) -> dict[str, Any]:
    if nullable:
        return {"anyOf": [SHA256, {"type": "null"}], "description": f"sha256 of {what} (hex; null: none)"}
    return SHA256 | {"description": f"sha256 of {what} (hex)"}


def _strings(description: str) -> dict[str, Any]:
    return {"type": "array", "items": {"type": "string"}, "description": description}


def _indices(description: str) -> dict[str, Any]:
    return {"type": "array", "items": {"type": "integer", "minimum": 0}, "description": description}


def _hw(description: str, *, nullable: bool = False) -> dict[str, Any]:
    pair = {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 2, "maxItems": 2}
    if nullable:
        return {"anyOf": [pair, {"type": "null"}], "description": f"{description} (null: not known)"}
    return pair | {"description": description}


def _scores_db(description: str) -> dict[str, Any]:
    """{output name: dB}; null where the two agree exactly (an infinite SNR)."""
    return {
        "type": "object",
        "additionalProperties": {"type": ["number", "null"]},
        "description": f"{description}, per output, in dB (null: identical outputs, an infinite SNR)",
    }


def _tensor() -> dict[str, Any]:
    return closed_object(
        {
            "name": _text("the tensor's name in the engine"),
            "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}, "description": "static"},
            "dtype": _text("NumPy's name: float32, int32 ..."),
        }
    )


def _file(what: str, **more: Any) -> dict[str, Any]:
    return closed_object(
        {"path": _text(f"{what}, relative to the engines folder"), "sha256": _sha256(what), **more}
    )


def _lint() -> dict[str, Any]:
    """edge.export.lint.summarize, per TensorRT target."""
    target = closed_object(
        {
            "errors": integer_field("findings TensorRT's parser would refuse", minimum=0),
            "warnings": integer_field("findings it takes with a cost or a caveat", minimum=0),
            "findings": _strings("each error and warning as edge lint says it"),
        }
    )
    return {
        "type": "object",
        "properties": {"trt10": target, "trt11": target},
        "patternProperties": {r"^[0-9]+\.[0-9]+$": target},  # the TensorRT release that built it
        "required": ["trt10", "trt11"],
        "additionalProperties": False,
        "description": "the exported ONNX's TensorRT compatibility (edge lint), recorded and not enforced",
    }


def _detections() -> dict[str, Any]:
    """edge.verify.match_detections: one image's detections matched one to one."""
    return closed_object(
        {
            "ref_detections": integer_field("the reference's detections", minimum=0),
            "out_detections": integer_field("the engine's", minimum=0),
            "matched": integer_field("pairs of the same label with boxes within the tolerance", minimum=0),
            "max_box_err_px": number_field("largest box corner difference of a pair (pixels)", minimum=0),
            "max_score_err": number_field("largest score difference of a pair", minimum=0),
            "max_mask_err": number_field("largest mask probability difference of a pair", minimum=0),
        }
    )


def _sample() -> dict[str, Any]:
    """edge.verify.compare_outputs / compare_quantized: one input's report."""
    dense = {
        "oneOf": [
            closed_object(
                {
                    "max_abs": number_field("largest |difference|", minimum=0),
                    "max_rel": number_field(
                        "that over the reference's largest magnitude (the check: 1e-3 at most)", minimum=0
                    ),
                }
            ),
            closed_object(
                {
                    "snr_db": number_field(
                        "INT8 against float (null: identical; the check: 12 dB or more)", nullable=True
                    )
                }
            ),
            closed_object({"agreement": number_field("share of equal labels", minimum=0)}),
            closed_object(
                {"shape_ref": _indices("the reference's shape"), "shape_out": _indices("the engine's shape")}
            ),
        ],
        "description": "a dense output: float errors, INT8's SNR, labels' agreement, or a shape mismatch",
    }
    return {
        "type": "object",
        "properties": {
            "passed": {"type": "boolean", "description": "this input checked out"},
            "detections": {"type": "array", "items": _detections(), "description": "per image of the batch"},
            "missing_outputs": _strings("outputs the engine lacks (then nothing else is compared)"),
        },
        "required": ["passed"],
        "additionalProperties": dense,
        "description": "one input: each dense output by name, the detections, and the verdict",
    }


def _accuracy_check() -> dict[str, Any]:
    """edge.verify.verify_engine."""
    return closed_object(
        {
            "reference": _text("what the engine was compared with: torch eager (CPU), fp32 for INT8"),
            "inputs": _text("INT8: the frames compared on (source, seed, fit)"),
            "compared_on": _text("padded frames: the part of the input compared"),
            "samples": integer_field("inputs compared", minimum=1),
            "passed": {"type": "boolean", "description": "every input checked out"},
            "per_sample": {"type": "array", "items": _sample()},
        },
        optional=("inputs", "compared_on"),
        description="the built engine against torch on a few inputs (null: --verify-samples 0)",
    )


def _mixed_precision() -> dict[str, Any]:
    """calib.sensitivity.find_float_layers."""
    step = closed_object(
        {
            "node": _text("a layer kept in float"),
            "gain_db": number_field("what it gained the worst output (dB)"),
            "mmacs": number_field("its cost, millions of multiply-adds", minimum=0),
            "worst_snr_before_db": number_field("the worst output's SNR before it (dB)"),
            "worst_snr_after_db": number_field("and after (dB)"),
            "reason": _text("the step in words"),
        }
    )
    returned = closed_object({"node": _text("a layer given back to INT8"), "reason": _text("why")})
    return {
        "anyOf": [
            {"type": "null"},
            closed_object(
                {
                    "min_snr_db": number_field("the SNR every output was to keep (--int8-min-snr, dB)"),
                    "candidates": integer_field("layers that could stay in float", minimum=0),
                    "all_int8_snr_db": _scores_db("every layer INT8"),
                    "final_snr_db": _scores_db("with the float layers"),
                    "budget_met": {"type": "boolean"},
                    "excluded": _strings("the layers kept in float"),
                    "steps": {"type": "array", "items": step},
                    "returned_to_int8": {"type": "array", "items": returned},
                }
            ),
        ],
        "description": "layers kept in float to keep --int8-min-snr (null: not asked for)",
    }


def _calibrated(*, files: bool) -> dict[str, Any]:
    """calib.api.calibrate's record; ``files``: with the files a build wrote (edge.build._calibrate)."""
    equalized = closed_object(
        {
            "node": _text("a convolution whose input channels were equalized"),
            "channels": integer_field("its input channels", minimum=1),
            "imbalance_before": number_field("largest over smallest channel range, before", minimum=0),
            "imbalance_after": number_field("and after", minimum=0),
            "alpha": number_field("the equalization's strength", minimum=0),
        }
    )
    choice = closed_object(
        {
            "node": _text("a convolution tried"),
            "imbalance": number_field("its imbalance", minimum=0),
            "from": number_field("alpha before (null: not equalized)", nullable=True),
            "to": number_field("alpha kept (null: not equalized)", nullable=True),
            "worst_score_db": {
                "type": "array",
                "items": {"type": "number"},
                "minItems": 2,
                "maxItems": 2,
                "description": "the worst output's score before and after (dB)",
            },
        }
    )
    fitted = closed_object(
        {
            "tensor": _text("an activation whose range was fitted to its consumers"),
            "consumers": _strings("their operators (Relu, Elu)"),
            "floor": number_field("where those are flat below"),
            "unclipped": {"type": "array", "items": {"type": "number"}, "description": "the observed range"},
            "range": {"type": "array", "items": {"type": "number"}, "description": "the range quantized"},
            "finer": number_field("how much finer the INT8 step became (null: zero range)", nullable=True),
        }
    )
    written = closed_object(
        {
            "qdq_onnx": _text("the Q/DQ model (TensorRT's INT8 input; ONNX Runtime's artifact source)"),
            "ranges": _text("the ranges JSON (edge calibrate's)"),
            "tensorrt10_cache": _text("TensorRT 10's calibration cache"),
            "cache_float_onnx": _text(
                "the float model the cache's scales fit (null: the exported one)", nullable=True
            ),
        }
    )
    record = closed_object(
        {
            "method": {"enum": ["minmax", "percentile", "entropy"], "description": "how ranges were set"},
            "percentile": number_field("the percentile (null: another method)", nullable=True),
            "frames": integer_field("frames calibrated on", minimum=1),
            "frame_indices": _indices("their indices in the source"),
            "sampling": {
                "oneOf": [
                    closed_object(
                        {"spread_over": integer_field("frames of the source spread over", minimum=1)}
                    ),
                    closed_object({"first": integer_field("the first frames drawn from", minimum=1)}),
                ],
                "description": "how the frames were drawn",
            },
            "held_out_indices": _indices("frames left out, to score on"),
            "held_out_scores_db": _scores_db("the INT8 model against float on those"),
            "judged_on_hw": _hw("the part of the input scored (padded frames: less than the input)"),
            "source": _text("the calibration source (--calib-data)"),
            "fit": {"enum": ["stretch", "pad", "crop"], "description": "how frames went into the input"},
            "frame_hw": _hw("the source's frame size", nullable=True),
            "data_sha256": _sha256("the frames calibrated on"),
            "excluded_nodes": _strings("layers kept in float"),
            "equalize": {"type": "boolean", "description": "input-channel equalization asked for"},
            "equalized": {"type": "array", "items": equalized},
            "equalization_choice": {"type": "array", "items": choice, "description": "what was tried, kept"},
            "ranges_fitted": {"type": "array", "items": fitted},
            "float_model": _text(
                "the float model quantized (the export, or its copy equalized or with biases corrected)"
            ),
            "mixed_precision": _mixed_precision(),
            "bias_correction": _bias_correction(),
            "activations": {"const": "int8 symmetric"},
            "weights": {"const": "int8 per-channel symmetric"},
            "files": written,
        },
        description="INT8 calibrated on frames (--calib-data)",
    )
    if not files:
        del record["properties"]["files"]
        record["required"].remove("files")
    return record


def _bias_correction() -> dict[str, Any]:
    largest = closed_object(
        {
            "node": _text("the convolution"),
            "shift": number_field("its largest shift of one channel's bias", minimum=0),
        }
    )
    done = closed_object(
        {
            "frames": integer_field("calibration frames the means were taken over", minimum=1),
            "convolutions": integer_field("convolutions whose bias was shifted", minimum=0),
            "levels": integer_field("levels corrected one after another (upstream first)", minimum=0),
            "left_per_region": _strings("convolutions run per region of interest, left as they were"),
            "largest_shift": {"anyOf": [{"type": "null"}, largest], "description": "null: none shifted"},
            "held_out_worst_db": closed_object(
                {
                    "without": number_field("the worst judged output's score on the held-out frames"),
                    "with": number_field("the same, the biases shifted"),
                },
                description="the Q/DQ model judged with and without the shifts",
            ),
            "kept": {"type": "boolean", "description": "whether the shifts were kept (scored no worse)"},
        }
    )
    return {
        "anyOf": [{"type": "null"}, done],
        "description": "bias correction (null: --no-int8-bias-correction)",
    }


def _calibration() -> dict[str, Any]:
    from_cache = closed_object(
        {
            "method": {"const": "tensorrt10-cache"},
            "cache": _text("the calibration cache given (--calib-cache)"),
            "cache_sha256": _sha256("that cache"),
        },
        description="TensorRT 10's implicit INT8 from a calibration cache",
    )
    by_method = _by_method({"const": "tensorrt10-cache"}, from_cache, _calibrated(files=True))
    return {"anyOf": [{"type": "null"}, by_method], "description": "how INT8 was calibrated (null: not INT8)"}


def _by_method(method: dict[str, Any], then: dict[str, Any], otherwise: dict[str, Any]) -> dict[str, Any]:
    """``then`` where the record's method is ``method``, else ``otherwise``: one object branch,
    chosen by the method, so a refusal names the field rather than the whole record."""
    return {
        "type": "object",
        "if": {"properties": {"method": method}, "required": ["method"]},
        "then": then,
        "else": otherwise,
    }


def _build_flags() -> dict[str, Any]:
    """edge.backends.tensorrt.BuildPlan.record."""
    return closed_object(
        {
            "strongly_typed": {
                "type": "boolean",
                "description": "TensorRT 11: precision from the ONNX's types",
            },
            "flags": _strings("builder flags set (trt.BuilderFlag names)"),
            "parser_flags": _strings("ONNX parser flags set (trt.OnnxParserFlag names)"),
            "fp16_onnx": {"type": "boolean", "description": "the ONNX was converted to FP16 first"},
            "calibration_cache": {"type": "boolean", "description": "implicit INT8 from a cache"},
            "dla_core": {
                "type": ["integer", "null"],
                "minimum": 0,
                "description": "the DLA core built for (null: the GPU)",
            },
            "version_compatible": {"type": "boolean", "description": "runs on later TensorRT of its major"},
            "hardware_compatible": {"type": "boolean", "description": "runs on other GPUs of its level"},
            "hardware_compatibility_level": _text("trt.HardwareCompatibilityLevel name", nullable=True),
        },
        description="TensorRT engines: how the build was set up",
    )


def _entry() -> dict[str, Any]:
    properties: dict[str, Any] = {
        "id": _text("the engine's id: MODEL_HxW_bN_BACKEND_PRECISION, its key in 'engines'"),
        "model": _text("the zoo model (edge models)"),
        "kind": {"enum": ["panoptic", "depth"]},
        "config": {"type": "object", "description": "the model's configuration, as the zoo defines it"},
        "backend": {"enum": ["onnxruntime", "tensorrt", "torch"]},
        "precision": {"enum": ["fp32", "fp16", "int8"]},
        "inputs": {"type": "array", "items": _tensor(), "minItems": 1, "description": "[image: N, 3, H, W]"},
        "outputs": {"type": "array", "items": _tensor(), "minItems": 1},
        "onnx": _file(
            "the exported ONNX",
            opset=integer_field("its ONNX opset", minimum=1),
            reused_from=_text("the engine whose identical export was copied (null: exported)", nullable=True),
        ),
        "artifact": _file("the engine file", bytes=integer_field("its size", minimum=0)),
        "weights": closed_object(
            {
                "source": _text("the checkpoint (a path), or random-init(seed=N)"),
                "sha256": _sha256("the checkpoint's files", nullable=True),
            }
        ),
        "fingerprint": _sha256("what decides the build (request, config, weights, versions, edge's code)"),
        "export_key": _sha256("what decides the ONNX export alone"),
        "versions": {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "description": "the tools that built it: edge, python, torch, onnx, onnxruntime ... tensorrt",
        },
        "device": closed_object(
            {
                "gpu": _text("the GPU built on (null: not a TensorRT engine)", nullable=True),
                "compute_capability": _text("its compute capability, e.g. 8.7", nullable=True),
            }
        ),
        "plugins": {
            "type": "object",
            "additionalProperties": SHA256,
            "description": "plugin libraries in the folder's plugins/ the engine needs: {file name: sha256}",
        },
        "calibration": _calibration(),
        "accuracy_check": {"anyOf": [{"type": "null"}, _accuracy_check()]},
        "built_at": {"type": "string", "format": "date-time", "description": "UTC, ISO 8601"},
        "lint": _lint(),
        "custom_ops": {
            "type": "array",
            "items": closed_object(
                {
                    "domain": _text("the op's domain: edge.plugins"),
                    "op_type": _text("the op: MultiLevelRoIAlign"),
                    "plugin_version": _text("the TensorRT plugin version its nodes ask for", nullable=True),
                    "plugin_namespace": _text("and namespace ('' the default one)", nullable=True),
                    "nodes": integer_field("its nodes in the graph", minimum=1),
                }
            ),
            "description": "the exported graph's custom ops: the TensorRT plugins the engine was built "
            "with (empty: standard ops only, the form every backend runs; absent: built before "
            "edge recorded them)",
        },
        "build_flags": _build_flags(),
        "build_notes": _strings("TensorRT: what the plan noted (printed under the engine's line)"),
    }
    trt_only = ("build_flags", "build_notes")
    return closed_object(
        properties,
        optional=(*trt_only, "custom_ops"),
        allOf=[
            {
                "if": {"properties": {"backend": {"const": "tensorrt"}}},
                "then": {"required": list(trt_only)},
                # TensorRT's fields on another engine: refused by name
                "else": {"propertyNames": {"not": {"enum": list(trt_only)}}},
            }
        ],
    )


def manifest_schema() -> dict[str, Any]:
    return {
        **document(
            "manifest",
            "edge engines folder manifest",
            "engines/manifest.json: the engines a folder holds, what each was built from and how "
            "it checked out (build_engines.py, edge build).",
        ),
        **closed_object(
            {
                "format": {"const": 1, "description": "the manifest's format; edge reads 1"},
                "engines": {
                    "type": "object",
                    "additionalProperties": _entry(),
                    "description": "by engine id",
                },
            }
        ),
    }


def ranges_schema() -> dict[str, Any]:
    """edge calibrate's ``<stem>.calib.json`` (calib.api._write_ranges)."""
    from_cache = closed_object(
        {
            "method": {
                "type": "string",
                "pattern": "^tensorrt-cache ",
                "description": "tensorrt-cache (ALGORITHM, TensorRT VERSION): the cache's own header",
            },
            "source": _text("the TensorRT 10 calibration cache read (--from-cache)"),
            "cache_sha256": _sha256("that cache"),
            "tensors": integer_field("tensors it gave scales for", minimum=0),
            "activations": {"const": "int8 symmetric"},
            "weights": {"const": "int8 per-channel symmetric"},
        },
        description="ranges from a TensorRT 10 calibration cache (edge calibrate --from-cache)",
    )
    by_method = _by_method({"pattern": "^tensorrt-cache "}, from_cache, _calibrated(files=False))
    bound = {
        "type": ["number", "null"],
        "description": "null: not finite on the frames (left out of the cache)",
    }
    return {
        **document(
            "ranges",
            "edge calibrate ranges",
            "edge calibrate's <stem>.calib.json: how INT8 was calibrated and each activation's range, "
            "the Q/DQ model's and the TensorRT 10 cache's source.",
        ),
        **closed_object(
            {
                "calibration": by_method,
                "ranges": {
                    "type": "object",
                    "additionalProperties": {
                        "type": "array",
                        "items": bound,
                        "minItems": 2,
                        "maxItems": 2,
                        "description": "[low, high] of its values; the scale: max(|low|, |high|) / 127",
                    },
                    "description": "by tensor name in the float model",
                },
            }
        ),
    }
