"""Compare an engine's outputs with the torch reference's.

Dense outputs are compared numerically; detections are matched (same class, box corners
within a pixel tolerance) because backends may order exact score ties differently.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

DETECTION_KEYS = ("boxes", "scores", "labels", "masks", "num_detections")


@dataclass(frozen=True)
class Tolerances:
    rel: float = 1e-3  # dense float outputs, relative to the reference's largest magnitude
    box_px: float = 0.5
    label_agreement: float = 0.999  # dense integer outputs (argmax), fraction equal


def dense_error(ref: np.ndarray, out: np.ndarray) -> dict[str, float]:
    ref64 = ref.astype(np.float64)
    diff = np.abs(ref64 - out.astype(np.float64))
    scale = max(float(np.abs(ref64).max(initial=0.0)), 1e-12)
    return {"max_abs": float(diff.max(initial=0.0)), "max_rel": float(diff.max(initial=0.0) / scale)}


def match_detections(
    ref: Mapping[str, np.ndarray], out: Mapping[str, np.ndarray], *, box_px: float = 0.5, batch: int = 0
) -> dict[str, float]:
    """Greedy one-to-one matching of valid detections of one image."""
    n_ref = int(ref["num_detections"][batch])
    n_out = int(out["num_detections"][batch])
    rb, ob = ref["boxes"][batch][:n_ref], out["boxes"][batch][:n_out]
    rl, ol = ref["labels"][batch][:n_ref], out["labels"][batch][:n_out]
    used = np.zeros(n_out, dtype=bool)
    matched = 0
    box_err = 0.0
    score_err = 0.0
    mask_err = 0.0
    for i in range(n_ref):
        err = np.abs(ob - rb[i]).max(axis=1) if n_out else np.zeros(0)
        cand = np.flatnonzero((ol == rl[i]) & (err <= box_px) & ~used)
        if cand.size == 0:
            continue
        j = cand[np.argmin(err[cand])]
        used[j] = True
        matched += 1
        box_err = max(box_err, float(err[j]))
        score_err = max(score_err, abs(float(ref["scores"][batch][i]) - float(out["scores"][batch][j])))
        if "masks" in ref:
            mask_err = max(mask_err, float(np.abs(ref["masks"][batch][i] - out["masks"][batch][j]).max()))
    return {
        "ref_detections": n_ref,
        "out_detections": n_out,
        "matched": matched,
        "max_box_err_px": box_err,
        "max_score_err": score_err,
        "max_mask_err": mask_err,
    }


def compare_outputs(
    ref: Mapping[str, np.ndarray], out: Mapping[str, np.ndarray], tol: Tolerances | None = None
) -> dict[str, object]:
    """Per-output errors and an overall ``passed`` verdict."""
    tol = tol or Tolerances()
    report: dict[str, object] = {}
    passed = True
    missing = sorted(set(ref) - set(out))
    if missing:
        return {"passed": False, "missing_outputs": missing}
    for name, r in ref.items():
        if name in DETECTION_KEYS:
            continue
        o = out[name]
        if r.shape != o.shape:
            report[name] = {"shape_ref": list(r.shape), "shape_out": list(o.shape)}
            passed = False
        elif np.issubdtype(r.dtype, np.floating):
            e = dense_error(r, o)
            passed &= e["max_rel"] <= tol.rel
            report[name] = e
        else:
            agree = float((r == o).mean()) if r.size else 1.0
            passed &= agree >= tol.label_agreement
            report[name] = {"agreement": agree}
    if "num_detections" in ref:
        dets = [
            match_detections(ref, out, box_px=tol.box_px, batch=b) for b in range(len(ref["num_detections"]))
        ]
        for d in dets:
            passed &= d["matched"] == d["ref_detections"] == d["out_detections"]
        report["detections"] = dets
    report["passed"] = bool(passed)
    return report


def snr_db(ref: np.ndarray, out: np.ndarray) -> float:
    """Signal-to-noise ratio of ``out`` against ``ref`` in dB (inf when identical)."""
    ref64 = ref.astype(np.float64)
    noise = float(((ref64 - out.astype(np.float64)) ** 2).mean()) if ref.size else 0.0
    signal = float((ref64**2).mean()) if ref.size else 0.0
    if noise == 0.0:
        return float("inf")
    return float(10 * np.log10(max(signal, 1e-30) / noise))


@dataclass(frozen=True)
class QuantizedTolerances:
    """What a quantized engine must keep of the float model on the check inputs."""

    min_snr_db: float = 12.0  # dense float outputs (semantic logits, depth, disparity)
    label_agreement: float = 0.9  # dense integer outputs (semantic labels)


def compare_quantized(
    ref: Mapping[str, np.ndarray], out: Mapping[str, np.ndarray], tol: QuantizedTolerances | None = None
) -> dict[str, object]:
    """An INT8 engine against the float reference: SNR per dense output, label agreement,
    and how many detections survive (reported, not judged: scores near the threshold move)."""
    tol = tol or QuantizedTolerances()
    missing = sorted(set(ref) - set(out))
    if missing:
        return {"passed": False, "missing_outputs": missing}
    report: dict[str, object] = {}
    passed = True
    for name, r in ref.items():
        if name in DETECTION_KEYS:
            continue
        o = out[name]
        if np.issubdtype(r.dtype, np.floating):
            snr = snr_db(r, o)
            passed &= snr >= tol.min_snr_db
            report[name] = {"snr_db": snr}
        else:
            agree = float((r == o).mean()) if r.size else 1.0
            passed &= agree >= tol.label_agreement
            report[name] = {"agreement": agree}
    if "num_detections" in ref:
        report["detections"] = [
            match_detections(ref, out, box_px=4.0, batch=b) for b in range(len(ref["num_detections"]))
        ]
    report["passed"] = bool(passed)
    return report


def sample_images(count: int, shape: tuple[int, int, int, int], seed: int = 0) -> list[np.ndarray]:
    """Deterministic image-like inputs (smooth colour fields plus edges and noise), 0..255."""
    rng = np.random.default_rng(seed)
    b, c, h, w = shape
    images = []
    for _ in range(count):
        coarse = rng.uniform(0, 255, size=(b, c, max(1, h // 16), max(1, w // 16)))
        img = coarse.repeat(16, axis=2).repeat(16, axis=3)[:, :, :h, :w]
        img = np.pad(img, ((0, 0), (0, 0), (0, h - img.shape[2]), (0, w - img.shape[3])), mode="edge")
        img = img + rng.normal(0, 8, size=img.shape)
        images.append(np.clip(img, 0, 255).astype(np.float32))
    return images


def verify_engine(
    model: Any,
    artifact: str | Path,
    *,
    backend: str,
    shape: tuple[int, int, int, int],
    samples: int,
    frames_from: str | None = None,
    frames_seed: int = 0,
    frames_fit: str = "stretch",
) -> dict[str, Any]:
    """The built ``artifact`` against ``model`` in torch eager on the CPU, per sample.

    Float engines get seeded random images and must match (compare_outputs). With
    ``frames_from`` (a source URI), an INT8 engine gets real frames drawn with
    ``frames_seed``, put in as ``frames_fit`` says (as it was calibrated), and is scored
    by SNR and label agreement against the float model (compare_quantized): random
    images say little about calibrated ranges.
    """
    from edge.backends import open_engine
    from edge.backends.torch import TorchEngine
    from edge.stream.fit import covers, unpad_outputs

    ref_engine = TorchEngine(model, input_shape=shape)
    record: dict[str, Any] = {"reference": "torch eager (CPU)"}
    compare: Callable[[Mapping[str, np.ndarray], Mapping[str, np.ndarray]], dict[str, Any]]
    if frames_from is None:
        inputs, compare = sample_images(samples, shape), compare_outputs
    else:
        from calib.data import load_frames

        frames = load_frames(
            frames_from, frames=samples, size=(shape[2], shape[3]), seed=frames_seed, fit=frames_fit
        )
        inputs, compare = frames.tensors, compare_quantized
        record = {
            "reference": "torch eager fp32 (CPU)",
            "inputs": f"{samples} frames of {frames_from} (seed {frames_seed}, {frames_fit})",
        }
        input_hw = (shape[2], shape[3])
        part = frames.part_hw(input_hw)
        if not covers(part, input_hw):  # padded (a cropped frame's part is the whole input)
            # what a run keeps of padded frames: the padding's outputs are cropped away, so
            # what INT8 makes of them there (depth_small's disparity: -4 dB) is no error
            def compare(ref: Mapping[str, np.ndarray], out: Mapping[str, np.ndarray]) -> dict[str, Any]:
                return compare_quantized(
                    unpad_outputs(ref, part, input_hw), unpad_outputs(out, part, input_hw)
                )

            record["compared_on"] = (
                f"the frames' part of the input, {part[0]}x{part[1]} of {input_hw[0]}x{input_hw[1]}"
            )
    with open_engine(artifact, backend=backend) as engine:
        reports = [compare(ref_engine.infer({"image": x}), engine.infer({"image": x})) for x in inputs]
    return {**record, "samples": samples, "passed": all(r["passed"] for r in reports), "per_sample": reports}
