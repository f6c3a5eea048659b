"""One call from an exported ONNX model and a source to the INT8 artifacts."""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from calib.data import CalibrationSet, load_frames
from edge.errors import ConfigError, SourceError
from edge.util.fs import atomic_write_bytes, atomic_write_json, atomic_write_with
from edge.util.onnx_io import read_onnx
from edge.util.ort import ir_version_problem

# A judged output under its bound is warned of. Depth, judged by its mean relative difference
# from the float model: under 26 dB it is over 5% off. The held-out score foretells how far an
# engine is from FP32 on other drives' frames (within 0.3 points in each of ten calibrations);
# the one under 26 dB, depth_tiny calibrated on one drive (25.0 dB, 5.6% off), lost 0.037 of
# AbsRel against the truth, the others 0.007-0.017 (benchmarks/results/
# calib_warning_trial_cpu.json). The logits, by SNR: under 20 dB is noise at a tenth of their
# amplitude (every calibration there scored 32-37 dB).
POOR_RELATIVE_DB = 26.0
POOR_SNR_DB = 20.0


@dataclass
class CalibrationResult:
    qdq_model: Path
    ranges_json: Path
    trt_cache: Path
    record: dict[str, Any] = field(default_factory=dict)  # what the manifest stores
    # the float model the ranges and the cache describe: the input, or its equalized copy
    float_model: Path | None = None


def _static_input_shape(onnx_path: Path) -> list[int]:
    """The model's NCHW input shape; a ConfigError for a missing model or a dynamic input, and
    an EdgeError for one this ONNX Runtime cannot run or quantize."""
    from calib.quantize import check_quantizer

    model = read_onnx(onnx_path, what="model to calibrate")
    problem = ir_version_problem(model, what="model to calibrate", path=onnx_path)
    if problem is not None:  # calibration runs it in ONNX Runtime
        raise ConfigError(problem)
    check_quantizer(model, onnx_path)
    if not model.graph.input:
        raise ConfigError(f"{onnx_path.name}: the model has no input; expected one NCHW image input")
    shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    if len(shape) != 4 or min(shape) <= 0:
        raise ConfigError(f"{onnx_path.name}: input shape {shape} is not a static NCHW image")
    return shape


def _result_paths(onnx_path: Path, out_dir: str | Path) -> CalibrationResult:
    out, stem = Path(out_dir), onnx_path.name.removesuffix(".onnx")
    return CalibrationResult(
        out / f"{stem}.int8.onnx", out / f"{stem}.calib.json", out / f"{stem}.trt10.calib"
    )


def _equalized(
    onnx_path: Path,
    alphas: dict[str, float],
    maxima: dict[str, np.ndarray],
    out: Path,
    *,
    skip: Sequence[str] = (),
) -> tuple[Path, list[dict[str, Any]]]:
    """The model to calibrate: ``onnx_path`` itself, or its equalized copy written to ``out``."""
    import onnx

    from calib.equalize import equalize

    if not alphas:
        return onnx_path, []
    model, record = equalize(onnx.load(str(onnx_path)), maxima, skip=skip, alphas=alphas)
    if not record:
        return onnx_path, []

    atomic_write_with(out, lambda tmp: onnx.save(model, str(tmp)))
    return out, record


def _calibrated_names(onnx_path: Path) -> set[str]:
    """The tensors of ``onnx_path`` that get a range: the quantized ops' activations (an
    equalized convolution's input now feeds its Mul, and only the Mul's output needs one)."""
    import onnx

    from calib.ranges import calibrated_tensors

    return calibrated_tensors(onnx.load(str(onnx_path), load_external_data=False))


def _write_ranges(path: Path, record: dict[str, Any], ranges: dict[str, tuple[float, float]]) -> None:
    doc = {"calibration": record, "ranges": {k: list(v) for k, v in sorted(ranges.items())}}
    # a bound that is not finite (an activation that overflowed on the frames) is null: the
    # TensorRT cache leaves that tensor out too
    atomic_write_json(path, doc)


def _bias_corrected(
    float_model: Path,
    ranges: dict[str, tuple[float, float]],
    *,
    shape: Sequence[int],
    exclude_nodes: Sequence[str],
    tensors: Sequence[np.ndarray],
    judge: tuple[Sequence[np.ndarray], list[dict[str, np.ndarray]], tuple[int, int]],
    out: Path,
    show_progress: bool,
) -> tuple[Path, dict[str, Any]]:
    """``float_model`` with its convolutions' biases shifted so that its Q/DQ model with
    ``ranges`` keeps the float model's mean outputs over ``tensors`` (calib/bias.py),
    written to ``out``, where that Q/DQ model's worst judged output scores at least as well
    on the held-out frames as without the shifts (``judge``: the frames, the float model's
    outputs there, the part judged); else ``float_model`` itself. And the record."""
    import onnx

    from calib.bias import correct_biases, correction_frames, shifted
    from calib.quantize import quantize_qdq
    from calib.sensitivity import output_scores, run_outputs

    frames, reference, part = judge
    with tempfile.TemporaryDirectory(prefix="edge-bias-") as tmp:
        plain, moved = Path(tmp) / "plain.onnx", Path(tmp) / "moved.onnx"
        quantize_qdq(float_model, plain, ranges, input_shape=shape, exclude_nodes=exclude_nodes)
        done = correct_biases(
            onnx.load(str(plain)), float_model, correction_frames(tensors), show_progress=show_progress
        )
        onnx.save(done.model, str(moved))
        worst = {
            name: round(min(output_scores(reference, run_outputs(path, frames, part=part)).values()), 2)
            for name, path in (("without", plain), ("with", moved))
        }
    # the shifts bring means back, which is not always what the scores see: one calibration
    # of depth_tiny lost 0.6 dB with them (another gained 8.6), and the 4 held-out frames
    # told which in each of six (benchmarks/results/bias_correction_trial_cpu.json)
    kept = bool(done.shifts) and worst["with"] >= worst["without"]
    record = {**done.record, "held_out_worst_db": worst, "kept": kept}
    if not kept:
        return float_model, record
    model = shifted(onnx.load(str(float_model)), done.shifts)
    atomic_write_with(out, lambda tmp: onnx.save(model, str(tmp)))
    return out, record


def _held_out(source: str, hw: tuple[int, int], seed: int, data: CalibrationSet) -> CalibrationSet:
    """Frames of the same source that were not calibrated on, to judge the choices and the
    INT8 model by; a source with no others (all of it calibrated on) is judged on its
    calibration frames."""
    try:
        return load_frames(
            source, frames=4, size=hw, seed=seed + 1000, exclude=set(data.indices), fit=data.fit
        )
    except SourceError:
        if not data.tensors:
            raise
        print(
            f"warning: calibration source {source!r} has no frames besides the {len(data.tensors)} "
            "calibrated on; the equalization, the --min-snr choices and the INT8 model are judged on those",
            file=sys.stderr,
        )
        return CalibrationSet(source, data.tensors[:4], data.indices[:4])


def poor_under(name: str) -> float:
    """The score (dB) under which the judged output ``name`` is warned of."""
    from calib.sensitivity import RELATIVE_OUTPUTS

    return POOR_RELATIVE_DB if name in RELATIVE_OUTPUTS else POOR_SNR_DB


def percent_off(score_db: float) -> float:
    """The mean relative difference (%) a relative score (dB) is: 26 dB is 5%."""
    return 100.0 * 10.0 ** (-score_db / 20.0)


def scores_said(scores: dict[str, float]) -> str:
    """``depth 31.3 dB (2.7% off), sem_logits 33.8 dB``: judged outputs' scores as edge says
    them, a relative one also as the mean difference it is."""
    from calib.sensitivity import RELATIVE_OUTPUTS

    return ", ".join(
        f"{k} {v:.1f} dB" + (f" ({percent_off(v):.1f}% off)" if k in RELATIVE_OUTPUTS else "")
        for k, v in sorted(scores.items())
    )


def poor_scores(scores: dict[str, float]) -> dict[str, float]:
    """The judged outputs whose score is under their bound (``poor_under``)."""
    return {k: v for k, v in scores.items() if v < poor_under(k)}


def bounds_said(names: Sequence[str]) -> str:
    """``depth under 26 dB (5% off)``: what poor is for each of ``names``."""
    from calib.sensitivity import RELATIVE_OUTPUTS

    return ", ".join(
        f"{k} under {poor_under(k):g} dB"
        + (f" ({percent_off(poor_under(k)):.0f}% off)" if k in RELATIVE_OUTPUTS else "")
        for k in sorted(names)
    )


def held_out_line(record: dict[str, Any]) -> str | None:
    """What a calibration record's held-out score says (edge calibrate, and each INT8
    engine a build makes); None for a record without one (made before it was kept)."""
    if not (scores := record.get("held_out_scores_db")):
        return None
    frames = len(record["held_out_indices"])
    line = f"INT8 against float on {frames} held-out frames: {scores_said(scores)}"
    if poor := poor_scores(scores):
        line += f"; poor: {bounds_said(list(poor))}"
    return line


def bias_line(record: dict[str, Any]) -> str | None:
    """What a calibration record's bias correction did, in a line; None where none was tried."""
    done = record.get("bias_correction")
    if not done:
        return None
    worst = done["held_out_worst_db"]
    judged = f"worst output on the held-out frames {worst['without']:g} dB without, {worst['with']:g} with"
    if not done["kept"]:
        return f"biases left as they were ({judged})"
    line = f"biases corrected: {done['convolutions']} convolutions, measured on {done['frames']} frames"
    if largest := done.get("largest_shift"):
        line += f", largest shift {largest['shift']:g} ({largest['node']})"
    return f"{line}; {judged}"


def _held_out_scores(
    float_model: Path,
    qdq_model: Path,
    held_out: CalibrationSet,
    part: tuple[int, int],
    reference: list[dict[str, np.ndarray]] | None = None,
) -> dict[str, float]:
    """The written INT8 model's score (dB) per judged output against the float model on the
    held-out frames, as the choices were judged (calib/sensitivity.py); a warning names the
    poor ones. ``reference``: the float model's outputs there, where the equalization's
    choice took them already (the same run: one thread, the judged part)."""
    from calib.sensitivity import output_scores, run_outputs

    if reference is None:
        reference = run_outputs(float_model, held_out.tensors, threads=1, part=part)
    scores = output_scores(reference, run_outputs(qdq_model, held_out.tensors, part=part))
    if poor := poor_scores(scores):
        print(
            f"warning: {qdq_model.name} scores {scores_said(poor)} against the float model on "
            f"{len(held_out.tensors)} held-out frames (poor: {bounds_said(list(poor))}); "
            "calibration frames from more drives and scenes help most (--calib-data takes a folder "
            "of drives' videos), and a minimum score "
            "(edge calibrate --min-snr, edge build --int8-min-snr) keeps the layers that "
            "cost most in float",
            file=sys.stderr,
        )
    return {k: round(v, 2) for k, v in scores.items()}


def calibrate(
    onnx_path: str | Path,
    *,
    source: str,
    out_dir: str | Path,
    frames: int = 64,
    method: str = "entropy",
    percentile: float = 99.999,
    seed: int = 0,
    exclude_nodes: tuple[str, ...] = (),
    min_snr_db: float | None = None,
    equalize: bool = True,
    fit: str = "stretch",
    bias_correction: bool = True,
    show_progress: bool = False,
) -> CalibrationResult:
    """Q/DQ model ``<stem>.int8.onnx``, ranges ``<stem>.calib.json`` and the TensorRT 10 cache
    ``<stem>.trt10.calib`` next to each other in ``out_dir``, each written atomically.

    With ``equalize``, convolutions whose input channels differ wildly in range are
    equalized first (calib/equalize.py; which ones and how hard is measured in the INT8
    model on held-out frames, calib/eqchoice.py). Ranges of
    tensors that only feed a ReLU or an ELU are clipped where it is flat (calib/ranges.py). With
    ``min_snr_db``, a sensitivity pass then picks layers to keep in float until every judged
    output keeps that score (calib/sensitivity.py); the record says which and why. ``fit``:
    how frames of another shape than the model's input go into it, as the engines will be
    run (``edge run --fit``): padded frames hold their padding and unsquashed things, and
    ranges fitted to stretched ones need not cover them; the outputs are judged on the
    frames' part of the input (``judged_on_hw``), as a run crops them. With
    ``bias_correction``, convolutions' biases are then shifted so that the Q/DQ model's mean
    outputs over calibration frames are the float model's (calib/bias.py), where that
    scores at least as well on the held-out frames (``kept`` in the record). A float model
    equalized or shifted is written as ``<stem>.calib.onnx`` (``float_model``): the ranges
    and the TensorRT 10 cache describe that model, and it quantizes with the ranges to the
    Q/DQ model written. The record scores the written model against the float one on 4
    held-out frames (``held_out_scores_db``), and a poor score is warned of."""
    from calib.quantize import quantize_qdq
    from calib.ranges import compute_fitted_ranges
    from calib.trt_cache import scale_from_range, write_cache

    onnx_path = Path(onnx_path)
    shape = _static_input_shape(onnx_path)
    hw = (shape[2], shape[3])
    data = load_frames(source, frames=frames, size=hw, seed=seed, fit=fit, show_progress=show_progress)
    if len(data.tensors) < frames:
        print(
            f"warning: calibration source {source!r} ended after {len(data.tensors)} frames; {frames} were "
            "asked for (--calib-frames): ranges from fewer frames fit this footage more narrowly",
            file=sys.stderr,
        )
    result = _result_paths(onnx_path, out_dir)
    maxima: dict[str, np.ndarray] = {}
    choice = None
    held_out = _held_out(source, hw, seed, data)
    # outputs are judged where a run keeps them: padded frames' part of the input
    part = data.part_hw(hw)
    if equalize:
        from calib.eqchoice import choose_alphas
        from calib.equalize import channel_maxima

        # every calibration frame, as the ranges: maxima over a subset let a frame outside
        # it lift a small channel past them, and the division by its small scale carries
        # that into the equalized range (a default INT8 depth_small's disparity: -8 dB)
        maxima = channel_maxima(onnx_path, data.tensors)
        choice = choose_alphas(
            onnx_path,
            maxima,
            data.tensors,
            held_out.tensors,
            method=method,
            percentile=percentile,
            show_progress=show_progress,
            part=part,
        )
    alphas = choice.alphas if choice is not None else {}
    with tempfile.TemporaryDirectory(prefix="edge-calib-") as tmp:
        trial = _equalized(onnx_path, alphas, maxima, Path(tmp) / "eq.onnx")
        if choice is not None and choice.ranges is not None:
            # measured on these frames for the choice: the model judged is the one written
            # (less the plain inputs of equalized convolutions, which now feed their Mul)
            wanted = _calibrated_names(trial[0])
            ranges, fitted = {k: v for k, v in choice.ranges.items() if k in wanted}, choice.fitted
        else:
            ranges, fitted = compute_fitted_ranges(
                trial[0], data.tensors, method=method, percentile=percentile
            )
        mixed = None
        if min_snr_db is not None:
            from calib.sensitivity import find_float_layers

            mixed = find_float_layers(
                trial[0],
                ranges,
                held_out.tensors,
                min_snr_db=min_snr_db,
                show_progress=show_progress,
                part=part,
            )
            exclude_nodes = (*exclude_nodes, *mixed["excluded"])
    # a convolution that stays in float gains nothing from its equalizing Mul: drop those
    stem = onnx_path.name.removesuffix(".onnx")
    prepared = result.qdq_model.with_name(f"{stem}.calib.onnx")
    float_model, equalized = _equalized(onnx_path, alphas, maxima, prepared, skip=exclude_nodes)
    present = _calibrated_names(float_model)
    ranges = {k: v for k, v in ranges.items() if k in present}
    # the float model's outputs on the held-out frames (one thread, the judged part): the
    # equalization's choice took them already
    reference = choice.reference if choice is not None else None
    if reference is None:
        from calib.sensitivity import run_outputs

        reference = run_outputs(onnx_path, held_out.tensors, threads=1, part=part)
    corrected = None
    if bias_correction:
        float_model, corrected = _bias_corrected(
            float_model,
            ranges,
            shape=shape,
            exclude_nodes=exclude_nodes,
            tensors=data.tensors,
            judge=(held_out.tensors, reference, part),
            out=prepared,
            show_progress=show_progress,
        )
    result.float_model = float_model
    # from an earlier run (.eq.onnx: its name before the biases were corrected too); it
    # would pair with nothing now
    for stale in (prepared, prepared.with_name(f"{stem}.eq.onnx")):
        if stale != float_model:
            stale.unlink(missing_ok=True)
    atomic_write_with(
        result.qdq_model,
        lambda tmp: quantize_qdq(float_model, tmp, ranges, input_shape=shape, exclude_nodes=exclude_nodes),
    )
    held_out_scores = _held_out_scores(onnx_path, result.qdq_model, held_out, part, reference)
    record = {
        "method": method,
        "percentile": percentile if method == "percentile" else None,
        "frames": len(data.tensors),
        "frame_indices": data.indices,
        "sampling": data.sampling,
        "held_out_indices": held_out.indices,
        "held_out_scores_db": held_out_scores,
        "judged_on_hw": list(part),
        "source": source,
        "fit": data.fit,
        "frame_hw": list(data.frame_hw) if data.frame_hw else None,
        "data_sha256": data.digest,
        "excluded_nodes": list(exclude_nodes),
        "equalize": equalize,
        "equalized": equalized,
        "equalization_choice": choice.changes if choice is not None else [],
        "ranges_fitted": [f for f in fitted if f["tensor"] in present],
        "float_model": float_model.name,
        "mixed_precision": mixed,
        "bias_correction": corrected,
        "activations": "int8 symmetric",
        "weights": "int8 per-channel symmetric",
    }
    _write_ranges(result.ranges_json, record, ranges)
    scales = {k: scale_from_range(*v) for k, v in sorted(ranges.items()) if np.isfinite(v).all()}
    atomic_write_bytes(result.trt_cache, write_cache(scales).encode())
    result.record = record
    return result


def calibrate_from_cache(
    onnx_path: str | Path, *, cache: str | Path, out_dir: str | Path
) -> CalibrationResult:
    """The Q/DQ model from a TensorRT 10 calibration cache instead of frames: how a cache
    made by TensorRT's implicit calibration (gone in TensorRT 11) becomes explicit
    quantization. The cache must cover every tensor this model calibrates."""
    from calib.quantize import calibrated_tensors, quantize_qdq
    from calib.trt_cache import check_cache_covers, read_cache
    from edge.util.fs import sha256_file

    onnx_path, cache = Path(onnx_path), Path(cache)
    shape = _static_input_shape(onnx_path)
    try:
        text = cache.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read calibration cache {str(cache)!r}: {exc}") from exc
    try:
        version, algorithm, scales = read_cache(text)
    except ConfigError as exc:
        raise ConfigError(f"{cache.name}: {exc}") from None
    needed = calibrated_tensors(onnx_path, shape)
    check_cache_covers(scales, needed, cache_name=cache.name, model_name=onnx_path.name)
    ranges = {name: (-scales[name] * 127.0, scales[name] * 127.0) for name in sorted(needed)}
    result = _result_paths(onnx_path, out_dir)
    result.float_model = onnx_path
    atomic_write_with(result.qdq_model, lambda tmp: quantize_qdq(onnx_path, tmp, ranges, input_shape=shape))
    record = {
        "method": f"tensorrt-cache ({algorithm}, TensorRT {version})",
        "source": str(cache),
        "cache_sha256": sha256_file(cache),
        "tensors": len(needed),
        "activations": "int8 symmetric",
        "weights": "int8 per-channel symmetric",
    }
    _write_ranges(result.ranges_json, record, ranges)
    if cache.resolve() != result.trt_cache.resolve():
        atomic_write_bytes(result.trt_cache, text.encode())
    result.record = record
    return result
