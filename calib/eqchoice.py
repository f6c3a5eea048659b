"""Which convolutions to equalize, and how hard: chosen by measurement in the INT8 model.

Equalization (calib/equalize.py) helps a convolution whose input has a few huge channels,
but it moves that imbalance into the weights, and a threshold on the imbalance cannot
tell when that costs more than it gains. Nor can a convolution be judged alone: measured
with everything else in float, equalizing almost always wins, yet in the all-INT8 model
the same choices ruined depth_small (all-INT8 score 21 -> 1.7 dB; likely because the
equalizing Mul's input is itself quantized upstream, at the step its largest channels
set, and dividing by the small channels' scales amplifies that error). So the choice
is made in context: starting from the threshold rule, each candidate convolution
(imbalance beyond ``min_imbalance``) is tried plain and at each alpha with every other
layer in INT8, and a change is kept when the worst judged output gains ``MIN_GAIN_DB``;
each equalized input costs a Mul a frame.
Ranges are calibrated once plain and, for the equalized tensors alone, once per alpha, and
assembled per trial, since an equalized tensor's range depends only on its own
convolution's alpha; the chosen trial's are the calibration's, so the model written is the
one judged (calib/api.py). Likewise the Q/DQ model is quantized
once plain and once per alpha, and each trial's is spliced from those (calib/eq_splice.py).
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from calib.eq_splice import SpliceError, same_model, with_equalized
from calib.equalize import MIN_IMBALANCE, balanced_name, equalize
from calib.quantize import quantize_qdq
from calib.ranges import compute_fitted_ranges
from calib.sensitivity import MIN_GAIN_DB, run_outputs, trial_scorer, trials_bar

ALPHAS = (0.5, 0.8)
DEFAULT_ALPHA = 0.5
CANDIDATE_IMBALANCE = 4.0

Ranges = dict[str, tuple[float, float]]


@dataclass
class EqualizationChoice:
    alphas: dict[str, float]  # {conv: alpha} to equalize
    changes: list[dict[str, Any]]  # the trials that changed the threshold rule
    # the chosen model's ranges over the calibration frames and compute_fitted_ranges'
    # record of them; None where no convolution was a candidate (nothing was measured)
    ranges: Ranges | None = None
    fitted: list[dict[str, Any]] = field(default_factory=list)
    # the float model's outputs on the judged frames (one thread, their judged part), which
    # the written INT8 model's held-out score is taken against too; None as for ranges. What
    # the choice was judged against, not part of it: not compared, not shown
    reference: list[dict[str, np.ndarray]] | None = field(default=None, compare=False, repr=False)


def choose_alphas(
    onnx_path: str | Path,
    maxima: dict[str, np.ndarray],
    calib_tensors: Sequence[np.ndarray],
    judge_tensors: Sequence[np.ndarray],
    *,
    alphas: Sequence[float] = ALPHAS,
    min_imbalance: float = CANDIDATE_IMBALANCE,
    method: str = "entropy",
    percentile: float = 99.999,
    show_progress: bool = False,
    workers: int | None = None,
    part: tuple[int, int] | None = None,
) -> EqualizationChoice:
    """Which convolutions to equalize and how hard, the trials that changed the threshold
    rule, and the chosen model's ranges over ``calib_tensors``: the same frames must set
    the channel maxima (``maxima``) and the ranges, since a frame that lifts a small channel
    beyond the maxima's reach lifts its equalized range by that factor over the division.

    A candidate's forms are scored ``workers`` at a time (default: all of them, at most one
    a CPU core), the cores shared among their sessions: the choice is the one trying them
    one after another makes. ``part``: padded frames' part of the input, where outputs are
    judged (calib/sensitivity.py run_outputs)."""
    import onnx

    onnx_path = Path(onnx_path)
    base = onnx.load(str(onnx_path))  # equalize() copies it: one read for every trial
    shape = judge_tensors[0].shape
    with tempfile.TemporaryDirectory(prefix="edge-eqchoice-") as tmp:
        variant_ranges: dict[float, Ranges] = {}
        candidates: dict[str, float] = {}
        for alpha in alphas:
            eq, record = equalize(base, maxima, alpha=alpha, min_imbalance=min_imbalance)
            if not record:
                return EqualizationChoice({}, [])
            path = Path(tmp) / f"eq_{alpha}.onnx"
            onnx.save(eq, str(path))
            candidates = {r["node"]: r["imbalance_before"] for r in record}
            eq_tensor = {n.name: balanced_name(n) for n in base.graph.node if n.name in candidates}
            # of a variant only its equalized tensors are used: measured alone, far quicker
            variant_ranges[alpha], _ = compute_fitted_ranges(
                path, calib_tensors, method=method, percentile=percentile, only=eq_tensor.values()
            )
        plain, fitted = compute_fitted_ranges(onnx_path, calib_tensors, method=method, percentile=percentile)
        # a candidate has len(alphas) other forms to try: that many sessions side by side,
        # the cores shared among them (depth_small's choice on 2 cores: 36.5 -> 32.4 s)
        cores = os.cpu_count() or 1
        side_by_side = workers or max(1, min(cores, len(alphas)))
        threads = max(1, cores // side_by_side)
        # ONNX Runtime's float outputs can change with the thread count (depth_small's at 8
        # threads against 1), its INT8 model's did not (1 to 8): the reference is taken on
        # one thread, so that the cores a machine has change the scores no more than that
        ref = run_outputs(onnx_path, judge_tensors, threads=1, part=part)
        eq_path, q_path = Path(tmp) / "eq.onnx", Path(tmp) / "q.onnx"

        def ranges_of(choice: dict[str, float]) -> Ranges:
            """Plain ranges, and each equalized tensor's from its alpha's variant."""
            ranges = dict(plain)
            for conv, alpha in choice.items():
                ranges[eq_tensor[conv]] = variant_ranges[alpha][eq_tensor[conv]]
            return ranges

        def quantized(choice: dict[str, float]) -> Any:
            """The quantizer's model of ``choice``: equalized, plain ranges elsewhere."""
            ranges = ranges_of(choice)
            eq, _ = equalize(base, maxima, alphas=choice)
            # one file pair will do: this runs before the trials, then only inside the
            # scorer's make(), which it calls one at a time
            onnx.save(eq, str(eq_path))
            quantize_qdq(eq_path, q_path, ranges, input_shape=shape)
            return onnx.load(str(q_path))

        # quantized once plain and once per alpha, each trial spliced from those
        # (calib/eq_splice.py); checked against the quantizer's own models: every
        # candidate at each alpha (those are the models spliced from) and the first trial
        plain_q = quantized({})
        variants_q = {alpha: quantized(dict.fromkeys(candidates, alpha)) for alpha in alphas}
        choice = {c: DEFAULT_ALPHA for c, imb in candidates.items() if imb >= MIN_IMBALANCE}
        checks = [(dict.fromkeys(candidates, alpha), variants_q[alpha]) for alpha in alphas]
        if choice and choice not in [c for c, _ in checks]:
            checks.append((choice, quantized(choice)))
        splice = _splices(plain_q, variants_q, checks)
        # the starting point, then each candidate's other forms
        total = 1 + len(candidates) * len(alphas)
        scored = trial_scorer(Path(tmp), ref, judge_tensors, threads=threads, part=part)

        def trial_model(choice: dict[str, float]) -> Any:
            return with_equalized(plain_q, variants_q, choice) if splice else quantized(choice)

        def score(choice: dict[str, float]) -> float:
            try:
                return min(scored(lambda: trial_model(choice)).values())
            finally:
                bar.update()

        bar = trials_bar(show_progress, "equalization (forms tried)", total=total)
        with bar, ThreadPoolExecutor(max_workers=side_by_side, thread_name_prefix="edge-eqchoice") as pool:
            current = score(choice)
            changes: list[dict[str, Any]] = []
            for conv in sorted(candidates, key=lambda c: -candidates[c]):
                # an option's trial sets this convolution's form and keeps the others', so
                # it is the same model whichever other option was kept before it: all are
                # scored at once, then kept in order as if tried one after another. (Tried
                # one after another, a kept option would also have the starting form tried
                # again; that trial scores what the kept one beat by MIN_GAIN_DB, so it
                # could never be kept, and is not run.)
                options = [o for o in (None, *alphas) if o != choice.get(conv)]
                rest = {k: v for k, v in choice.items() if k != conv}
                trials = [rest if o is None else {**rest, conv: o} for o in options]
                for option, trial, got in zip(options, trials, pool.map(score, trials), strict=True):
                    if got >= current + MIN_GAIN_DB:
                        changes.append(
                            {
                                "node": conv,
                                "imbalance": candidates[conv],
                                "from": choice.get(conv),
                                "to": option,
                                "worst_score_db": [round(current, 2), round(got, 2)],
                            }
                        )
                        choice, current = trial, got
    return EqualizationChoice(choice, changes, ranges_of(choice), fitted, reference=ref)


def _splices(plain_q: Any, variants_q: dict[float, Any], checks: list[tuple[dict[str, float], Any]]) -> bool:
    """Whether the trials spliced for the choices of ``checks`` are the quantizer's models
    of them; a model whose structure the splice does not cover has every trial quantized,
    with a warning."""
    try:
        if all(same_model(with_equalized(plain_q, variants_q, c), model) for c, model in checks):
            return True
    except SpliceError:
        pass
    warnings.warn(
        "equalization trials: a spliced trial of this model differs from the quantizer's; "
        "every trial is quantized instead (slower, the same choice)",
        stacklevel=3,
    )
    return False
