"""An equalization trial's Q/DQ model spliced from models quantized once is the quantizer's
own model of that trial: every node and initializer, on both demo models."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from calib.eq_splice import SpliceError, same_model, with_equalized
from calib.equalize import balanced_name, channel_maxima, equalize
from calib.quantize import compute_ranges, quantize_qdq
from tests.conftest import TEST_SIZE, skip_where_onnxruntime_cannot_quantize

ALPHAS = (0.5, 0.8)


class Trials:
    """The plain model, its candidates (every equalizable convolution: shared inputs,
    inputs read by a Concat too), and the quantizer's model of any choice of them."""

    def __init__(self, model: Path, tmp: Path) -> None:
        rng = np.random.default_rng(0)
        frames = [rng.standard_normal((1, 3, *TEST_SIZE)).astype(np.float32) for _ in range(2)]
        self.tmp, self.base = tmp, onnx.load(str(model))
        self.maxima = channel_maxima(model, frames)
        eq, record = equalize(self.base, self.maxima, min_imbalance=1.0)
        self.candidates = [r["node"] for r in record]
        self.plain = compute_ranges(model, frames, method="minmax")
        onnx.save(eq, str(tmp / "eq.onnx"))
        eq_ranges = compute_ranges(tmp / "eq.onnx", frames, method="minmax")
        nodes = {n.name: n for n in self.base.graph.node}
        self.eq_tensor = {c: balanced_name(nodes[c]) for c in self.candidates}
        # one range per alpha for each equalized tensor; any ranges do, as long as a trial
        # and the models it is spliced from use the same ones
        self.variant = {
            a: {t: (eq_ranges[t][0] * (1 + a), eq_ranges[t][1] * (1 + a)) for t in self.eq_tensor.values()}
            for a in ALPHAS
        }
        self.quantized_plain = self.quantized({})
        self.quantized_variants = {a: self.quantized({c: a for c in self.candidates}) for a in ALPHAS}

    def quantized(self, choice: dict[str, float]) -> onnx.ModelProto:
        eq, _ = equalize(self.base, self.maxima, alphas=choice)
        onnx.save(eq, str(self.tmp / "trial.onnx"))
        ranges = dict(self.plain)
        for conv, alpha in choice.items():
            ranges[self.eq_tensor[conv]] = self.variant[alpha][self.eq_tensor[conv]]
        quantize_qdq(self.tmp / "trial.onnx", self.tmp / "q.onnx", ranges, input_shape=(1, 3, *TEST_SIZE))
        return onnx.load(str(self.tmp / "q.onnx"))

    def spliced(self, choice: dict[str, float]) -> onnx.ModelProto:
        return with_equalized(self.quantized_plain, self.quantized_variants, choice)


@pytest.fixture(scope="module", params=["depth_tiny", "panoptic_fpn_tiny"])
def trials(
    request: pytest.FixtureRequest, tiny_engines: Path, tmp_path_factory: pytest.TempPathFactory
) -> Trials:
    model = tiny_engines / f"{request.param}_{TEST_SIZE[0]}x{TEST_SIZE[1]}_b1_onnxruntime_fp32.onnx"
    skip_where_onnxruntime_cannot_quantize(model)
    return Trials(model, tmp_path_factory.mktemp(request.param))


def test_spliced_trials_are_the_quantizers_models(trials: Trials) -> None:
    assert len(trials.candidates) >= 5
    rng = random.Random(1)
    choices = [
        {},
        {c: ALPHAS[i % 2] for i, c in enumerate(trials.candidates)},
        *({c: rng.choice(ALPHAS) for c in trials.candidates if rng.random() < 0.5} for _ in range(3)),
    ]
    for choice in choices:
        assert same_model(trials.spliced(choice), trials.quantized(choice)), choice


def test_a_shared_input_keeps_its_pair_while_a_quantized_reader_is_left(trials: Trials) -> None:
    readers: dict[str, list[str]] = {}
    for n in trials.base.graph.node:
        if n.name in trials.candidates:
            readers.setdefault(n.input[0], []).append(n.name)
    shared = [convs for convs in readers.values() if len(convs) > 1]
    if not shared:
        pytest.skip("no two candidates of this model read one tensor")
    first, *rest = shared[0]
    # one of them equalized: the input keeps its pair, and the Mul reads its dequantized value
    one = trials.spliced({first: 0.5})
    assert same_model(one, trials.quantized({first: 0.5}))
    mul = next(n for n in one.graph.node if n.name == f"{first}_eq")
    assert mul.input[0].endswith("_DequantizeLinear_Output")
    # all of them: no pair left on it (nothing quantized reads it), every reader reads it raw
    every = {c: 0.8 for c in (first, *rest)}
    spliced = trials.spliced(every)
    assert same_model(spliced, trials.quantized(every))
    x = next(n for n in trials.base.graph.node if n.name == first).input[0]
    quantized_readers = [n for n in spliced.graph.node if n.op_type == "QuantizeLinear" and n.input[0] == x]
    if not any(n.op_type == "Conv" and x in n.input for n in trials.base.graph.node if n.name not in every):
        assert not quantized_readers


def test_spliced_model_runs_as_the_quantizers_does(trials: Trials) -> None:
    choice = {c: 0.8 for c in trials.candidates[::2]}
    frame = np.random.default_rng(5).standard_normal((1, 3, *TEST_SIZE)).astype(np.float32)

    def run(model: onnx.ModelProto) -> list[np.ndarray]:
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        return sess.run(None, {sess.get_inputs()[0].name: frame})

    for a, b in zip(run(trials.spliced(choice)), run(trials.quantized(choice)), strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_choice_the_models_cannot_give_is_refused(trials: Trials) -> None:
    with pytest.raises(SpliceError, match="alpha 0.3"):
        trials.spliced({trials.candidates[0]: 0.3})
    with pytest.raises(SpliceError, match="not in the model"):
        trials.spliced({"no_such_conv": 0.5})


def test_a_model_the_splice_gets_wrong_has_every_trial_quantized(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from calib import eqchoice
    from tests.calib.test_equalize import _frames, _imbalanced_model

    src = _imbalanced_model(tmp_path / "m.onnx", outlier=8.0)
    cal, held = _frames(8, 1), _frames(3, 2)
    maxima = channel_maxima(src, cal)
    spliced = eqchoice.choose_alphas(src, maxima, cal, held, method="minmax")
    assert spliced.alphas  # equalizing wins here (tests/calib/test_equalize.py): trials were scored

    monkeypatch.setattr(eqchoice, "with_equalized", lambda plain, variants, choice: plain)
    with pytest.warns(UserWarning, match="every trial is quantized instead"):
        quantized = eqchoice.choose_alphas(src, maxima, cal, held, method="minmax")
    assert quantized == spliced
