"""Parity of real ONNX Runtime sessions with the torch reference, and input checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from edge.backends import open_engine
from edge.backends.onnxruntime import OnnxRuntimeEngine
from edge.backends.torch import TorchEngine
from edge.errors import BackendError, EngineInputError
from edge.export import export_onnx
from edge.models import create_model
from edge.verify import match_detections, sample_images
from tests.conftest import TEST_SIZE, informative_model

SIZE = (128, 256)


def parity_pair(name: str, tmp_path: Path) -> tuple[TorchEngine, OnnxRuntimeEngine]:
    model = informative_model(name)
    path = export_onnx(model, tmp_path / f"{name}.onnx", height=SIZE[0], width=SIZE[1])
    return TorchEngine(model, input_shape=(1, 3, *SIZE)), OnnxRuntimeEngine(path)


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(a).max())


def test_panoptic_parity(panoptic_exports: dict[str, Path]) -> None:
    assert SIZE == TEST_SIZE  # the shared export's size
    model = informative_model("panoptic_fpn_tiny")  # seeded: the exported weights
    ref = TorchEngine(model, input_shape=(1, 3, *SIZE))
    ort = OnnxRuntimeEngine(panoptic_exports["standard"])
    total = 0
    for image in sample_images(3, (1, 3, *SIZE), seed=11):
        r, o = ref.infer({"image": image}), ort.infer({"image": image})
        assert rel_err(r["sem_logits"], o["sem_logits"]) <= 1e-3
        assert float((r["sem_labels"] == o["sem_labels"]).mean()) >= 0.999
        d = match_detections(r, o, box_px=0.5)
        assert d["ref_detections"] == d["out_detections"] == d["matched"]
        n = d["ref_detections"]
        np.testing.assert_array_equal(r["labels"][0, :n], o["labels"][0, :n])
        np.testing.assert_allclose(r["boxes"][0, :n], o["boxes"][0, :n], atol=0.5)
        np.testing.assert_allclose(r["masks"][0, :n], o["masks"][0, :n], atol=1e-3)
        total += n
    assert total > 0, "the check needs detections to compare"


def test_depth_parity(tmp_path: Path) -> None:
    ref, ort = parity_pair("depth_tiny", tmp_path)
    for image in sample_images(2, (1, 3, *SIZE), seed=12):
        r, o = ref.infer({"image": image}), ort.infer({"image": image})
        assert rel_err(r["depth"], o["depth"]) <= 1e-3
        assert rel_err(r["disparity"], o["disparity"]) <= 1e-3


def test_batch_two_export_runs(tmp_path: Path) -> None:
    model = create_model("depth_tiny")
    path = export_onnx(model, tmp_path / "b2.onnx", height=64, width=128, batch=2)
    with OnnxRuntimeEngine(path, intra_op_threads=1) as engine:
        x = np.random.default_rng(0).uniform(0, 255, (2, 3, 64, 128)).astype(np.float32)
        out = engine.infer({"image": x})
        with torch.no_grad():
            ref = model(torch.from_numpy(x))["depth"].numpy()
        assert rel_err(ref, out["depth"]) <= 1e-3


def test_engine_specs_and_input_errors(tiny_engines: Path) -> None:
    artifact = next(tiny_engines.glob("depth_tiny_*.ort.onnx"))
    with open_engine(artifact, backend="onnxruntime") as engine:
        assert [s.name for s in engine.inputs] == ["image"]
        assert engine.inputs[0].shape == (1, 3, 128, 256)
        assert [s.name for s in engine.outputs] == ["depth", "disparity"]
        with pytest.raises(
            EngineInputError, match=r"has shape \(1, 3, 64, 64\), expected \(1, 3, 128, 256\)"
        ):
            engine.infer({"image": np.zeros((1, 3, 64, 64), np.float32)})
        with pytest.raises(EngineInputError, match="missing: \\['image'\\]"):
            engine.infer({"img": np.zeros((1, 3, 128, 256), np.float32)})
        with pytest.raises(EngineInputError, match="dtype complex64"):
            engine.infer({"image": np.zeros((1, 3, 128, 256), np.complex64)})
        # float64 input is converted, not refused
        out = engine.infer({"image": np.zeros((1, 3, 128, 256), np.float64)})
        assert out["depth"].dtype == np.float32


def test_a_provider_onnx_runtime_cannot_use_is_an_error(tiny_engines: Path) -> None:
    """ONNX Runtime only warns and runs on the CPU; asked for the GPU, that is not what was asked."""
    artifact = next(tiny_engines.glob("depth_tiny_*.ort.onnx"))
    said = r"cannot use CUDAExecutionProvider here for depth_tiny_.*\(it would run on CPUExecutionProvider\)"
    with pytest.raises(BackendError, match=said), pytest.warns(UserWarning, match="CUDAExecutionProvider"):
        OnnxRuntimeEngine(artifact, providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
    with OnnxRuntimeEngine(artifact, providers=["CPUExecutionProvider"]) as engine:
        assert engine.inputs[0].name == "image"
    # ONNX Runtime also takes (name, options)
    with OnnxRuntimeEngine(
        artifact, providers=[("CPUExecutionProvider", {"arena_extend_strategy": "kSameAsRequested"})]
    ):
        pass


def test_corrupt_engine_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.ort.onnx"
    bad.write_bytes(b"\x00garbage")
    with pytest.raises(BackendError, match="cannot load"):
        OnnxRuntimeEngine(bad)
    with pytest.raises(BackendError, match="does not exist"):
        OnnxRuntimeEngine(tmp_path / "nothing.onnx")


def test_tensorrt_backend_reports_unavailable(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="TensorRT"):
        open_engine(tmp_path / "x.engine", backend="tensorrt")


def resize_argmax_graph(*, axis: int = 1, keepdims: int = 0, resize_is_output: bool = False) -> Any:
    """x [1, 5, 8, 8] -> Resize (linear, half-pixel, constant sizes 32 x 32) -> ArgMax."""
    import onnx
    from onnx import TensorProto, helper

    sizes = helper.make_tensor("sizes", TensorProto.INT64, [4], [1, 5, 32, 32])
    nodes = [
        helper.make_node("Resize", ["x", "", "", "sizes"], ["up"], mode="linear"),
        helper.make_node("ArgMax", ["up"], ["labels"], axis=axis, keepdims=keepdims),
    ]
    up_shape = [1, 5, 32, 32]
    labels_shape = [1 if d == axis else n for d, n in enumerate(up_shape) if keepdims or d != axis]
    outputs = [helper.make_tensor_value_info("labels", TensorProto.INT64, labels_shape)]
    if resize_is_output:
        outputs.append(helper.make_tensor_value_info("up", TensorProto.FLOAT, up_shape))
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 5, 8, 8])], outputs, [sizes]
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    return model


def run_model(model: Any, x: np.ndarray) -> list[np.ndarray]:
    import onnxruntime as ort

    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})


def test_argmax_over_upsampled_channels_runs_channels_last() -> None:
    import onnx

    from edge.backends.onnxruntime import argmax_channels_last

    model = resize_argmax_graph()
    x = np.random.default_rng(3).normal(size=(1, 5, 8, 8)).astype(np.float32)
    before = run_model(model, x)[0]
    assert argmax_channels_last(model) == 1
    onnx.checker.check_model(model)
    ops = [(n.op_type, [a.i for a in n.attribute if a.name == "axis"]) for n in model.graph.node]
    assert ops == [("Transpose", []), ("Resize", []), ("ArgMax", [3])]
    after = run_model(model, x)[0]
    np.testing.assert_array_equal(after, before)
    expected = (
        torch.nn.functional.interpolate(
            torch.from_numpy(x), size=(32, 32), mode="bilinear", align_corners=False
        )
        .argmax(1)
        .numpy()
    )
    np.testing.assert_array_equal(after, expected)
    assert argmax_channels_last(model) == 0  # already rewritten: nothing left to do


@pytest.mark.parametrize(
    "kw", [{"axis": 2}, {"keepdims": 1}, {"resize_is_output": True}], ids=["other-axis", "keepdims", "shared"]
)
def test_argmax_rewrite_leaves_other_graphs_alone(kw: dict[str, Any]) -> None:
    from edge.backends.onnxruntime import argmax_channels_last

    model = resize_argmax_graph(**kw)
    before = model.SerializeToString()
    assert argmax_channels_last(model) == 0
    assert model.SerializeToString() == before


def test_built_panoptic_engine_takes_its_argmax_channels_last(tiny_engines: Path) -> None:
    import onnx

    (artifact,) = tiny_engines.glob("panoptic_fpn_tiny_*.ort.onnx")
    argmax = [n for n in onnx.load(str(artifact)).graph.node if n.op_type == "ArgMax"]
    assert [a.i for n in argmax for a in n.attribute if a.name == "axis"] == [3]


def elu_graph(alpha: float, elem_type: int | None = None, *, qdq: bool = False) -> Any:
    """x [2, 3, 4, 5] -> Elu(alpha) -> y; with ``qdq``, x is quantized to INT8 and back first."""
    import onnx
    from onnx import TensorProto, helper

    elem_type = TensorProto.FLOAT if elem_type is None else elem_type
    nodes = [helper.make_node("Elu", ["xq" if qdq else "x"], ["y"], alpha=alpha, name="elu")]
    inits = []
    if qdq:
        inits = [
            helper.make_tensor("scale", TensorProto.FLOAT, [], [0.05]),
            helper.make_tensor("zero", TensorProto.INT8, [], [0]),
        ]
        nodes[:0] = [
            helper.make_node("QuantizeLinear", ["x", "scale", "zero"], ["x8"]),
            helper.make_node("DequantizeLinear", ["x8", "scale", "zero"], ["xq"]),
        ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", elem_type, [2, 3, 4, 5])],
        [helper.make_tensor_value_info("y", elem_type, [2, 3, 4, 5])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    return model


@pytest.mark.parametrize("alpha", [1.0, 0.3])
def test_elu_runs_as_min_exp_max(alpha: float) -> None:
    import onnx

    from edge.backends.onnxruntime import elu_as_exp

    model = elu_graph(alpha)
    # both sides of zero, zero itself, far below it (exp underflows) and tiny magnitudes
    x = np.random.default_rng(4).normal(scale=3.0, size=(2, 3, 4, 5)).astype(np.float32)
    x.flat[:6] = [0.0, -0.0, -100.0, 1e-8, -1e-8, 50.0]
    before = run_model(model, x)[0]
    assert elu_as_exp(model) == 1
    onnx.checker.check_model(model)
    ops = [n.op_type for n in model.graph.node]
    assert ops == (["Min", "Exp", "Sub", "Max"] if alpha == 1.0 else ["Min", "Exp", "Sub", "Mul", "Max"])
    after = run_model(model, x)[0]
    x64 = x.astype(np.float64)
    expected = np.where(x64 > 0, x64, alpha * np.expm1(x64))
    np.testing.assert_allclose(after, expected, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(after, before, rtol=1e-6, atol=1e-7)
    assert after.flat[2] == pytest.approx(-alpha)  # the floor far below zero
    assert elu_as_exp(model) == 0  # already rewritten: nothing left to do


@pytest.mark.parametrize(
    "alpha, fp16, qdq",
    [(1.5, False, False), (1.0, True, False), (1.0, False, True)],
    ids=["alpha-above-one", "float16", "q-dq"],
)
def test_elu_rewrite_leaves_other_elus_alone(alpha: float, fp16: bool, qdq: bool) -> None:
    """Above alpha 1 the ELU dips below x, so Max would not give it; FP16 Elus stay for
    kernels that have them; one after a DequantizeLinear stays unless asked (on one
    thread, the next test)."""
    from onnx import TensorProto

    from edge.backends.onnxruntime import elu_as_exp

    model = elu_graph(alpha, TensorProto.FLOAT16 if fp16 else None, qdq=qdq)
    before = model.SerializeToString()
    assert elu_as_exp(model) == 0
    assert model.SerializeToString() == before


@pytest.mark.parametrize("threads", [1, 2])
def test_an_int8_elu_runs_as_min_exp_max_where_its_engine_runs_on_one_thread(
    tmp_path: Path, threads: int
) -> None:
    """An ELU after a DequantizeLinear stays through the build (optimize_model) and is
    rewritten as the engine loads on one thread, where it ran faster (not on two:
    benchmarks/results/ort_elu_int8_cpu.json); ONNX Runtime's own profile of the session
    says which ran, and both give the ELU of the dequantized input."""
    import json

    import onnx

    from edge.backends.onnxruntime import OnnxRuntimeEngine, elu_as_exp, optimize_model

    model = elu_graph(1.0, qdq=True)
    rewritten = elu_graph(1.0, qdq=True)
    assert elu_as_exp(rewritten, after_dequantize=True) == 1
    assert "Elu" not in [n.op_type for n in rewritten.graph.node]
    onnx.save(model, str(tmp_path / "qdq.onnx"))
    artifact = tmp_path / "qdq.ort.onnx"
    optimize_model(tmp_path / "qdq.onnx", artifact, uint8_activations=True)
    assert "Elu" in [n.op_type for n in onnx.load(str(artifact)).graph.node]
    engine = OnnxRuntimeEngine(artifact, intra_op_threads=threads, profile_prefix=tmp_path / "profile")
    x = np.random.default_rng(5).normal(scale=2.0, size=(2, 3, 4, 5)).astype(np.float32)
    y = engine.infer({"x": x})["y"]
    events = json.loads(engine.end_profiling().read_text())
    ran = {e["args"]["op_name"] for e in events if e.get("cat") == "Node"}
    assert ("Elu" in ran) == (threads != 1) and ("Exp" in ran) == (threads == 1), ran
    q = np.clip(np.round(x / 0.05), -128, 127) * np.float32(0.05)  # the graph's INT8 grid
    np.testing.assert_allclose(y, np.where(q > 0, q, np.expm1(q)), rtol=1e-6, atol=1e-7)
    engine.close()


def test_built_depth_engine_has_no_elu_left(tiny_engines: Path) -> None:
    import onnx

    (exported,) = tiny_engines.glob("depth_tiny_*_fp32.onnx")
    (artifact,) = tiny_engines.glob("depth_tiny_*.ort.onnx")
    elus = sum(n.op_type == "Elu" for n in onnx.load(str(exported)).graph.node)
    assert elus > 0
    ops = [n.op_type for n in onnx.load(str(artifact)).graph.node]
    assert "Elu" not in ops
    assert ops.count("Min") == ops.count("Exp") == ops.count("Max") == elus


def test_a_model_of_a_newer_ir_version_than_onnx_runtime_reads_is_named_with_the_fix(tmp_path: Path) -> None:
    """A model whose IR version is past what this ONNX Runtime reads (onnx 1.23 writes 14 by
    default; ONNX Runtime 1.23 reads 11, JetPack 6's 1.19 and 1.20 read 10): the error says
    both versions and how to lower it, and the model so lowered runs. Real sessions: the
    ceiling is probed, then the model is given one past it."""
    import subprocess
    import sys

    import onnx
    import onnxruntime
    from onnx import TensorProto, helper

    from edge.util.ort import max_ir_version

    readable = max_ir_version()
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
    )
    path = tmp_path / "newer.onnx"
    onnx.save(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=readable + 1), path
    )
    with pytest.raises(BackendError) as refused:
        OnnxRuntimeEngine(path)
    assert str(refused.value).startswith(
        f"ONNX model {str(path)!r} is ONNX IR version {readable + 1}, newer than ONNX Runtime "
        f"{onnxruntime.__version__} reads (up to {readable}): a newer onnx package wrote it."
    )
    with pytest.raises(Exception, match="IR version"):  # ONNX Runtime's own words for it
        onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    fix = str(refused.value).split("python -c ")[1].strip('"')
    subprocess.run([sys.executable, "-c", fix], check=True)
    with OnnxRuntimeEngine(path) as engine:
        assert engine.infer({"x": np.array([[-1.0, 0.0, 2.0]], np.float32)})["y"].tolist() == [
            [0.0, 0.0, 2.0]
        ]


def test_a_fused_node_standard_ops_cannot_express_is_named_with_the_file(tmp_path: Path) -> None:
    """The maximum of adaptive sample grids has no standard form (plugins/roi_align/passes.py):
    ONNX Runtime, which runs the fused node by expanding it, says so and which file it is."""
    from tests.plugins.roi_align.test_passes import single_node

    path = tmp_path / "max_adaptive.onnx"
    path.write_bytes(single_node(3, aligned=1, sampling=0, mode="max").SerializeToString())
    with pytest.raises(BackendError, match=r"cannot run '.*max_adaptive.onnx': an unnamed MultiLevelRoI"):
        OnnxRuntimeEngine(path)
