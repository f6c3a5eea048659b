"""Mixed precision: keep the layers INT8 hurts most in float until an accuracy budget is met.

The budget is a minimum SNR (dB) of every dense float output (semantic logits, depth)
against the float model, on held-out frames. Each quantizable layer is tried alone in
float; layers are then kept in float greedily, largest gain first, re-measuring after
each, until the budget is met or ``max_float`` layers are kept. The report says, for each
layer kept, what the worst output's SNR was before and after.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from calib.quantize import QUANTIZED_OPS, quantize_qdq
from edge.verify import snr_db

# the outputs the budget is judged on: the dense heads (detections are judged by PQ in the
# report; disparity is the depth head's own input and would count it twice)
JUDGED_OUTPUTS = ("sem_logits", "depth")


def _run(path: Path, tensors: Sequence[np.ndarray]) -> list[dict[str, np.ndarray]]:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return [dict(zip(names, sess.run(None, {"image": t}), strict=True)) for t in tensors]


def _worst_snr(ref: list[dict[str, np.ndarray]], got: list[dict[str, np.ndarray]]) -> dict[str, float]:
    """Mean SNR over the frames, per dense float output."""
    out: dict[str, float] = {}
    for name in ref[0]:
        if name not in JUDGED_OUTPUTS:
            continue
        out[name] = float(np.mean([snr_db(r[name], g[name]) for r, g in zip(ref, got, strict=True)]))
    return out


def find_float_layers(
    onnx_path: str | Path,
    calib_tensors: Sequence[np.ndarray],
    eval_tensors: Sequence[np.ndarray],
    *,
    min_snr_db: float,
    method: str = "entropy",
    max_float: int = 8,
) -> dict[str, Any]:
    """Which nodes to keep in float, and why; ``excluded`` feeds quantize_qdq(exclude_nodes=)."""
    import onnx

    onnx_path = Path(onnx_path)
    model = onnx.load(str(onnx_path), load_external_data=False)
    candidates = [n.name for n in model.graph.node if n.op_type in QUANTIZED_OPS and n.name]
    ref = _run(onnx_path, eval_tensors)
    with tempfile.TemporaryDirectory(prefix="edge-sens-") as tmp:

        def measure(excluded: Sequence[str]) -> dict[str, float]:
            path = Path(tmp) / "q.onnx"
            quantize_qdq(onnx_path, path, calib_tensors, method=method, exclude_nodes=excluded)
            return _worst_snr(ref, _run(path, eval_tensors))

        base = measure([])
        steps: list[dict[str, Any]] = []
        excluded: list[str] = []
        current = base
        if min(current.values()) < min_snr_db:
            gains = {}
            for node in candidates:
                gains[node] = min(measure([node]).values()) - min(base.values())
            ranked = sorted(candidates, key=lambda n: -gains[n])
            for node in ranked:
                if min(current.values()) >= min_snr_db or gains[node] <= 0 or len(excluded) >= max_float:
                    break
                before = min(current.values())
                trial = measure([*excluded, node])
                if min(trial.values()) <= before:  # helps alone, not on top of the others: skip
                    continue
                current = trial
                excluded.append(node)
                steps.append(
                    {
                        "node": node,
                        "alone_gain_db": gains[node],
                        "worst_snr_before_db": before,
                        "worst_snr_after_db": min(current.values()),
                        "reason": f"kept in float: worst output SNR {before:.1f} -> "
                        f"{min(current.values()):.1f} dB",
                    }
                )
    return {
        "min_snr_db": min_snr_db,
        "candidates": len(candidates),
        "all_int8_snr_db": base,
        "final_snr_db": current,
        "budget_met": min(current.values()) >= min_snr_db,
        "excluded": excluded,
        "steps": steps,
    }
