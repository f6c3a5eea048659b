"""Mixed precision: keep the layers INT8 hurts most in float until an accuracy budget is met.

The budget is a minimum score (dB) of every judged output against the float model, on
held-out frames: for semantic logits their SNR; for depth -20 log10 of the mean relative
error, since depth is judged by AbsRel and an SNR of depth hides the near range (far
pixels carry the power, near pixels the relative error): 30 dB is a 3.2% mean relative
difference, 40 dB 1%. Layers are kept in float greedily: at each step every remaining
quantizable layer is tried in float on top of those already kept, and the one with the
most gain per multiply-accumulate is kept (a cheap low-resolution layer before an
expensive full-resolution one of similar gain), until the budget is met or ``max_float``
layers are kept; then layers the budget can do without go back to INT8. The report says,
for each layer kept, what the worst score was before and after.
"""

from __future__ import annotations

import itertools
import os
import tempfile
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from calib.float_nodes import with_float_nodes
from calib.quantize import QUANTIZED_OPS, quantize_qdq
from edge.verify import snr_db

# the outputs the budget is judged on: the dense heads (detections are judged by PQ in the
# report; disparity is the depth head's own input and would count it twice)
JUDGED_OUTPUTS = ("sem_logits", "depth")
RELATIVE_OUTPUTS = ("depth",)  # positive quantities judged by relative error
MIN_GAIN_DB = 0.5
# trials side by side at most: each holds a session and its activations (a large model at
# full resolution takes a GB or more)
MAX_WORKERS = 4


def relative_db(ref: np.ndarray, got: np.ndarray) -> float:
    """-20 log10(mean |got - ref| / ref): 40 dB is a 1% mean relative difference."""
    rel = float(np.mean(np.abs(got - ref) / np.maximum(np.abs(ref), 1e-6)))
    return float(-20.0 * np.log10(max(rel, 1e-12)))


def conv_macs(model: Any) -> dict[str, float]:
    """Multiply-accumulates of each quantizable node, from ONNX shape inference (1 if unknown)."""
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model)
    shapes = {
        v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
        for v in [*inferred.graph.value_info, *inferred.graph.output]
    }
    weights = {i.name: list(i.dims) for i in model.graph.initializer}
    out: dict[str, float] = {}
    for n in model.graph.node:
        if n.op_type not in QUANTIZED_OPS or not n.name:
            continue
        y, w = shapes.get(n.output[0], []), weights.get(n.input[1], []) if len(n.input) > 1 else []
        out[n.name] = float(np.prod(y) * np.prod(w[1:])) if y and w and min(y) > 0 else 1.0
    return out


def run_outputs(
    path: Path, tensors: Sequence[np.ndarray], *, threads: int = 0, part: tuple[int, int] | None = None
) -> list[dict[str, np.ndarray]]:
    """Each tensor's outputs from ONNX Runtime's CPU session of ``path`` (``threads``: its
    intra-op threads, 0 for ONNX Runtime's default); with ``part``, the size of padded
    frames' part of the input, cropped to it as a run crops them (edge.stream.fit): what
    INT8 makes of the padding is no error a run shows."""
    from edge.backends.onnxruntime import model_for_ort, session_options
    from edge.platform_info import int8_pairs_saturate
    from edge.util.ort import onnxruntime_module

    ort = onnxruntime_module()
    opts = session_options(intra_op_threads=threads)
    # judged as an engine runs it here: where x86 kernels would saturate, on 7-bit weights
    model = model_for_ort(path, seven_bit_weights=int8_pairs_saturate())
    sess = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    outputs = [dict(zip(names, sess.run(None, {"image": t}), strict=True)) for t in tensors]
    if part is None or not tensors or part == tuple(tensors[0].shape[2:]):
        return outputs
    from edge.stream.fit import unpad_outputs

    input_hw = (int(tensors[0].shape[2]), int(tensors[0].shape[3]))
    return [unpad_outputs(o, part, input_hw) for o in outputs]


def output_scores(ref: list[dict[str, np.ndarray]], got: list[dict[str, np.ndarray]]) -> dict[str, float]:
    """Mean score (dB) over the frames, per judged output; a model with none of edge's
    dense heads is judged on every floating-point output."""
    names = [n for n in ref[0] if n in JUDGED_OUTPUTS] or [
        n for n in ref[0] if np.issubdtype(ref[0][n].dtype, np.floating)
    ]
    out: dict[str, float] = {}
    for name in names:
        score = relative_db if name in RELATIVE_OUTPUTS else snr_db
        out[name] = float(np.mean([score(r[name], g[name]) for r, g in zip(ref, got, strict=True)]))
    return out


def trial_scorer(
    folder: Path,
    ref: list[dict[str, np.ndarray]],
    tensors: Sequence[np.ndarray],
    *,
    threads: int,
    part: tuple[int, int] | None = None,
) -> Callable[[Callable[[], Any]], dict[str, float]]:
    """A function scoring trial models against ``ref`` from threads side by side: each
    ``make()`` is called one at a time (trials read shared protos; the GIL's work anyway),
    its model written to a file of its own in ``folder``, run on ``threads`` threads
    (run_outputs) and removed."""
    import onnx

    names = itertools.count()
    building = threading.Lock()

    def scored(make: Callable[[], Any]) -> dict[str, float]:
        path = folder / f"trial-{next(names)}.onnx"
        with building:
            onnx.save(make(), str(path))
        try:
            return output_scores(ref, run_outputs(path, tensors, threads=threads, part=part))
        finally:
            path.unlink()

    return scored


def trials_bar(show: bool, desc: str, total: int | None = None) -> Any:
    """A bar of trials (one that draws nothing when progress is not shown)."""
    from edge.util.progress import progress_bar

    return progress_bar(enabled=show, desc=desc, total=total, unit="trial", leave=False)


def find_float_layers(
    onnx_path: str | Path,
    ranges: dict[str, tuple[float, float]],
    eval_tensors: Sequence[np.ndarray],
    *,
    min_snr_db: float,
    max_float: int = 8,
    show_progress: bool = False,
    workers: int | None = None,
    part: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """Which nodes to keep in float, and why; ``excluded`` feeds quantize_qdq(exclude_nodes=).
    ``part``: padded frames' part of the input, where outputs are judged (run_outputs).
    Every trial has the same ``ranges`` (compute_ranges), so only the float layers differ
    between trials. The trials of a step run ``workers`` at a time (default: one a CPU
    core, at most MAX_WORKERS), each session on one thread: 1.3-1.5x quicker on 2 cores
    than one after another on both, and the scores do not depend on the core count."""
    import onnx

    onnx_path = Path(onnx_path)
    model = onnx.load(str(onnx_path), load_external_data=False)
    candidates = [n.name for n in model.graph.node if n.op_type in QUANTIZED_OPS and n.name]
    ref = run_outputs(onnx_path, eval_tensors, threads=1, part=part)
    side_by_side = workers or min(os.cpu_count() or 1, MAX_WORKERS)
    with (
        tempfile.TemporaryDirectory(prefix="edge-sens-") as tmp,
        ThreadPoolExecutor(max_workers=side_by_side, thread_name_prefix="edge-sensitivity") as pool,
    ):
        # the quantizer runs once; each trial undoes the quantization of its float layers
        # in that model (calib/float_nodes.py): 46-49x quicker than quantizing again on the
        # small models (benchmarks/results/sensitivity_trials_cpu.json)
        all_int8 = Path(tmp) / "int8.onnx"
        quantize_qdq(onnx_path, all_int8, ranges, input_shape=eval_tensors[0].shape)
        qdq = onnx.load(str(all_int8))

        scored = trial_scorer(Path(tmp), ref, eval_tensors, threads=1, part=part)

        def measure(excluded: Sequence[str]) -> dict[str, float]:
            return scored(lambda: with_float_nodes(qdq, model, excluded))

        base = measure([])
        steps: list[dict[str, Any]] = []
        returned: list[dict[str, Any]] = []
        excluded: list[str] = []
        current = base
        macs = conv_macs(model)
        if min(current.values()) < min_snr_db:
            remaining = list(candidates)
            bar = trials_bar(show_progress, "sensitivity (layers tried in float)")
            try:
                while min(current.values()) < min_snr_db and len(excluded) < max_float and remaining:
                    # every step re-measures each remaining layer on top of those already kept:
                    # layers interact (one in float can make another's INT8 error harmless or
                    # ruinous), so gains measured once against all-INT8 go stale
                    before = min(current.values())

                    def tried(node: str) -> dict[str, float]:
                        scores = measure([*excluded, node])
                        bar.update()
                        return scores

                    trials = dict(zip(remaining, pool.map(tried, remaining), strict=True))
                    gains = {n: min(t.values()) - before for n, t in trials.items()}
                    # a layer that barely helps is not worth a float slot however cheap it is
                    useful = [n for n in remaining if gains[n] >= MIN_GAIN_DB]
                    if not useful:
                        break
                    node = max(useful, key=lambda n: gains[n] / macs.get(n, 1.0))
                    current = trials[node]
                    excluded.append(node)
                    remaining.remove(node)
                    steps.append(
                        {
                            "node": node,
                            "gain_db": gains[node],
                            "mmacs": round(macs.get(node, 1.0) / 1e6, 1),
                            "worst_snr_before_db": before,
                            "worst_snr_after_db": min(current.values()),
                            "reason": f"kept in float: worst output score {before:.1f} -> "
                            f"{min(current.values()):.1f} dB",
                        }
                    )
            finally:
                bar.close()
            # greedy order can keep a layer that a later one made unnecessary: give back to
            # INT8, most expensive first, every kept layer the budget can do without
            for node in sorted(excluded, key=lambda n: -macs.get(n, 1.0)):
                if min(current.values()) < min_snr_db:
                    break
                rest = [n for n in excluded if n != node]
                trial = measure(rest)
                if min(trial.values()) >= min_snr_db:
                    excluded, current = rest, trial
                    steps = [s for s in steps if s["node"] != node]
                    returned.append(
                        {
                            "node": node,
                            "reason": f"back to int8: worst output score stays {min(trial.values()):.1f} dB",
                        }
                    )
        if excluded:
            # the trials' rewrite gives the quantizer's own model (tests/calib/
            # test_float_nodes.py); the final score is measured on the quantizer's model anyway
            final = Path(tmp) / "final.onnx"
            quantize_qdq(onnx_path, final, ranges, input_shape=eval_tensors[0].shape, exclude_nodes=excluded)
            current = output_scores(ref, run_outputs(final, eval_tensors, threads=1, part=part))
    return {
        "min_snr_db": min_snr_db,
        "candidates": len(candidates),
        "all_int8_snr_db": base,
        "final_snr_db": current,
        "budget_met": min(current.values()) >= min_snr_db,
        "excluded": excluded,
        "steps": steps,
        "returned_to_int8": returned,
    }
