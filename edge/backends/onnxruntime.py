"""ONNX Runtime backend (the default; CPU everywhere)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from edge.backends.base import EngineBase, TensorSpec
from edge.errors import BackendError, ConfigError, ExportError
from edge.util.onnx_io import tensor_types
from edge.util.ort import ir_version_problem, onnxruntime_module

_ORT_TYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
    "tensor(int32)": "int32",
    "tensor(int64)": "int64",
    "tensor(uint8)": "uint8",
    "tensor(int8)": "int8",
    "tensor(bool)": "bool",
}
_LEVELS = ("disable", "basic", "extended", "all")


def session_options(
    *,
    intra_op_threads: int = 0,
    inter_op_threads: int = 1,
    optimization: str = "all",
    optimized_model_path: str | Path | None = None,
) -> Any:
    ort = onnxruntime_module()
    if optimization not in _LEVELS:
        raise ConfigError(f"optimization level {optimization!r} is not one of {_LEVELS}")
    if intra_op_threads < 0 or inter_op_threads < 0:
        raise ConfigError(
            f"thread counts must be >= 0 (0 = ONNX Runtime's default), got "
            f"intra={intra_op_threads}, inter={inter_op_threads}"
        )
    so = ort.SessionOptions()
    so.graph_optimization_level = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[optimization]
    so.intra_op_num_threads = intra_op_threads
    so.inter_op_num_threads = inter_op_threads
    so.log_severity_level = 3
    if optimized_model_path is not None:
        so.optimized_model_filepath = str(optimized_model_path)
    return so


def argmax_channels_last(model: Any) -> int:
    """Rewrite, in place, each 4-D Resize read only by an ArgMax over channels (keepdims 0)
    into Transpose to NHWC, the same Resize on NHWC, and ArgMax over the last axis; returns
    how many were rewritten.

    The values are the same: every output is the same interpolation of the same inputs. The
    speed is not: ONNX Runtime's ArgMax walks a channel stride of H x W elements per step,
    and on NHWC it reads contiguous memory (the semantic head's upsample and argmax at
    19 x 256 x 512: 7.0 -> 3.3 ms on one core, identical labels)."""
    from onnx import helper, numpy_helper

    g = model.graph
    producers = {out: n for n in g.node for out in n.output}
    readers: dict[str, int] = {}
    for n in g.node:
        for name in n.input:
            readers[name] = readers.get(name, 0) + 1
    inits = {i.name: i for i in g.initializer}
    outputs = {o.name for o in g.output}
    done = 0
    for arg in [n for n in g.node if n.op_type == "ArgMax"]:
        attrs = {a.name: helper.get_attribute_value(a) for a in arg.attribute}
        resize = producers.get(arg.input[0])
        if (
            attrs.get("axis", 0) not in (1, -3)
            or attrs.get("keepdims", 1) != 0
            or resize is None
            or resize.op_type != "Resize"
            or readers.get(arg.input[0]) != 1
            or arg.input[0] in outputs
            or any(a.name == "axes" for a in resize.attribute)
        ):
            continue
        # the target: sizes (input 3) or scales (input 2), a constant of four values
        slot = next((i for i in (3, 2) if len(resize.input) > i and resize.input[i]), None)
        if slot is None or resize.input[slot] not in inits:
            continue
        target = numpy_helper.to_array(inits[resize.input[slot]])
        if target.shape != (4,):
            continue
        permuted = numpy_helper.from_array(target[[0, 2, 3, 1]], f"{resize.input[slot]}_nhwc_{done}")
        nhwc = f"{resize.input[0]}_nhwc_{done}"
        transpose = helper.make_node(
            "Transpose", [resize.input[0]], [nhwc], perm=[0, 2, 3, 1], name=f"{resize.name}_to_nhwc"
        )
        g.initializer.append(permuted)
        resize.input[0], resize.input[slot] = nhwc, permuted.name
        for a in [a for a in arg.attribute if a.name == "axis"]:
            arg.attribute.remove(a)
        arg.attribute.append(helper.make_attribute("axis", 3))
        g.node.insert(list(g.node).index(resize), transpose)
        stale = [v for v in g.value_info if v.name == resize.output[0]]  # its shape is now NHWC
        for v in stale:
            g.value_info.remove(v)
        done += 1
    return done


def elu_as_exp(model: Any, *, after_dequantize: bool = False) -> int:
    """Rewrite, in place, each FP32 Elu with 0 < alpha <= 1 into
    Max(x, alpha * (Exp(Min(x, 0)) - 1)); returns how many were rewritten.

    The values agree to float rounding: where x > 0 the second term is 0 and Max gives x;
    where x <= 0, alpha * (e^x - 1) >= alpha * x >= x (as e^x >= 1 + x and alpha <= 1), so
    Max gives the ELU. ONNX Runtime's Elu kernel is slow: these four ops take about half its
    time (16 x 128 x 256, one thread: 1.20 -> 0.58 ms), so float depth engines run faster
    on one thread (256x512: depth_tiny 1.09x, depth_small 1.05x, depth_r18 1.02x) and
    about even on two (``benchmarks/results/ort_elu_cpu.json``). An Elu fed by a
    DequantizeLinear (an INT8 engine's) is rewritten only ``after_dequantize``: INT8 depth
    engines ran 1.03-1.34x faster so on one thread over four runs, and on two 0.89-1.32x, no
    steady gain (``benchmarks/results/ort_elu_int8_cpu.json``), so an engine asks for it on
    one thread (model_for_ort's ``one_thread``), as on a 2-core machine each engine runs."""
    from onnx import TensorProto, helper, numpy_helper

    g = model.graph
    producers = {out: n.op_type for n in g.node for out in n.output}
    elus = [
        n
        for n in g.node
        if n.op_type == "Elu"
        and n.domain in ("", "ai.onnx")
        and (after_dequantize or producers.get(n.input[0]) != "DequantizeLinear")
    ]
    if not elus:
        return 0
    types = tensor_types(g)
    if any(n.input[0] not in types for n in elus):
        import contextlib

        import onnx

        # a graph the inference cannot read keeps its Elus
        with contextlib.suppress(Exception):
            types.update(tensor_types(onnx.shape_inference.infer_shapes(model).graph))
    taken = {i.name for i in g.initializer} | {o for n in g.node for o in n.output}
    done = 0
    for elu in elus:
        alpha = next((helper.get_attribute_value(a) for a in elu.attribute if a.name == "alpha"), 1.0)
        if types.get(elu.input[0]) != TensorProto.FLOAT or not 0.0 < alpha <= 1.0:
            continue
        x, y = elu.input[0], elu.output[0]
        stem = elu.name or y
        while any(f"{stem}_{part}" in taken for part in ("zero", "one", "alpha", "min", "exp", "em1", "neg")):
            stem += "_"
        name = {part: f"{stem}_{part}" for part in ("zero", "one", "alpha", "min", "exp", "em1", "neg")}
        g.initializer.extend(
            [
                numpy_helper.from_array(np.array(0.0, np.float32), name["zero"]),
                numpy_helper.from_array(np.array(1.0, np.float32), name["one"]),
            ]
        )
        nodes = [
            helper.make_node("Min", [x, name["zero"]], [name["min"]], name=name["min"]),
            helper.make_node("Exp", [name["min"]], [name["exp"]], name=name["exp"]),
            helper.make_node("Sub", [name["exp"], name["one"]], [name["em1"]], name=name["em1"]),
        ]
        negative = name["em1"]
        if alpha != 1.0:
            g.initializer.append(numpy_helper.from_array(np.array(alpha, np.float32), name["alpha"]))
            nodes.append(helper.make_node("Mul", [negative, name["alpha"]], [name["neg"]], name=name["neg"]))
            negative = name["neg"]
        nodes.append(helper.make_node("Max", [x, negative], [y], name=stem))
        at = list(g.node).index(elu)
        g.node.remove(elu)
        for k, node in enumerate(nodes):
            g.node.insert(at + k, node)
        taken |= set(name.values())
        done += 1
    return done


def pads_on_int8(model: Any) -> int:
    """Move, in place, each reflect or edge Pad past what reads it alone, while that is a Mul
    by a constant the same along every padded axis (an INT8 engine's equalization, one value
    per channel) or a per-tensor QuantizeLinear, so that the Pad copies the INT8 values the
    QuantizeLinear makes rather than floats; returns how many moves were made.

    The values are the same to the bit: such a Pad only repeats values along the axes it
    pads, and that Mul or quantization gives a repeated value the same result. An INT8 depth
    engine's reflect Pads sit between its ELUs or Concats and the QuantizeLinear before each
    3x3 convolution (6% of its time on one thread). Moved, INT8 depth engines ran 1.02-1.05x
    faster on one thread in 15 of 16 trials over four runs (one 0.94x) and 0.97-1.20x on two,
    1.03-1.05x in geometric mean a run (``benchmarks/results/ort_pad_int8_cpu.json``)."""
    from onnx import helper

    g = model.graph
    inits = {i.name: i for i in g.initializer}
    taken = {i.name for i in g.initializer} | {o for n in g.node for o in n.output}
    moves = 0
    for pad in [n for n in g.node if n.op_type == "Pad" and n.domain in ("", "ai.onnx")]:
        mode = next((helper.get_attribute_value(a) for a in pad.attribute if a.name == "mode"), b"constant")
        rank_padded = _padded_axes(pad, inits)
        if mode not in (b"reflect", b"edge") or rank_padded is None:
            continue
        past = _to_quantize(g, pad, *rank_padded, inits)
        for after in past:
            # x -> Pad -> p -> after -> y   becomes   x -> after -> m -> Pad -> y
            mid = f"{after.output[0]}_unpadded"
            while mid in taken:
                mid += "_"
            taken.add(mid)
            slot = list(after.input).index(pad.output[0])
            after.input[slot], pad.input[0] = pad.input[0], mid
            pad.output[0], after.output[0] = after.output[0], mid
            g.node.remove(after)
            g.node.insert(list(g.node).index(pad), after)
        if past:  # a float constant_value (unused by these modes) would not match INT8 data
            del pad.input[2:]
        moves += len(past)
    if moves:  # what the moves left with no writer (the float between a Mul and its QuantizeLinear)
        written = {o for n in g.node for o in n.output}
        for stale in [v for v in g.value_info if v.name not in written]:
            g.value_info.remove(stale)
    return moves


def _to_quantize(g: Any, pad: Any, rank: int, padded: list[int], inits: dict[str, Any]) -> list[Any]:
    """The nodes ``pad`` would move past to end after a per-tensor QuantizeLinear, each the one
    reader of the last; none unless it gets there, or where a DequantizeLinear reads that
    QuantizeLinear (a Q/DQ model before ONNX Runtime's optimiser: a Pad between them would
    keep it from fusing the convolution after into an integer one)."""
    outputs = {o.name for o in g.output}
    past: list[Any] = []
    tip = pad.output[0]
    while tip not in outputs:
        readers = [n for n in g.node if tip in n.input]
        if len(readers) != 1 or list(readers[0].input).count(tip) != 1:
            return []
        after = readers[0]
        if _per_tensor_quantize(after, inits):
            dequantized = any(n.op_type == "DequantizeLinear" and after.output[0] in n.input for n in g.node)
            return [] if dequantized else [*past, after]
        if not _mul_along(after, tip, rank, padded, inits):
            return []
        past.append(after)
        tip = after.output[0]
    return []


def _padded_axes(pad: Any, inits: dict[str, Any]) -> tuple[int, list[int]] | None:
    """The rank of what a Pad pads, and the axes it pads counted from the last (-1, -2, …);
    None where its pads are not a constant or it names its axes."""
    from onnx import helper, numpy_helper

    if len(pad.input) > 3 and pad.input[3]:
        return None
    if len(pad.input) > 1 and pad.input[1]:
        if pad.input[1] not in inits:
            return None
        pads = numpy_helper.to_array(inits[pad.input[1]]).tolist()
    else:  # opset < 11: an attribute
        pads = next((list(helper.get_attribute_value(a)) for a in pad.attribute if a.name == "pads"), [])
    rank = len(pads) // 2
    return rank, [axis - rank for axis in range(rank) if pads[axis] or pads[rank + axis]]


def _per_tensor_quantize(node: Any, inits: dict[str, Any]) -> bool:
    from onnx import numpy_helper

    def one(name: str) -> bool:
        return name in inits and numpy_helper.to_array(inits[name]).size == 1

    zero_point = node.input[2] if len(node.input) > 2 else ""
    return node.op_type == "QuantizeLinear" and one(node.input[1]) and (not zero_point or one(zero_point))


def _mul_along(node: Any, x: str, rank: int, padded: list[int], inits: dict[str, Any]) -> bool:
    """Whether ``node`` multiplies ``x`` (of ``rank``) by a constant of that rank or less that
    is the same along each of the ``padded`` axes."""
    from onnx import numpy_helper

    if node.op_type != "Mul" or len(node.input) != 2:
        return False
    other = node.input[1] if node.input[0] == x else node.input[0]
    if other not in inits:
        return False
    shape = numpy_helper.to_array(inits[other]).shape
    return len(shape) <= rank and all(len(shape) < -a or shape[a] == 1 for a in padded)


def model_for_ort(
    path: str | Path,
    *,
    uint8_activations: bool = False,
    seven_bit_weights: bool = False,
    one_thread: bool = False,
) -> str | bytes:
    """What to hand ONNX Runtime: the path, or the model bytes rewritten for it.

    ONNX Runtime has no MultiLevelRoIAlign kernel; the expansion into standard ops
    computes the same values (plugins/roi_align/passes.py). An argmax over upsampled
    channels runs on NHWC (:func:`argmax_channels_last`), an ELU as four faster ops
    (:func:`elu_as_exp`), and an INT8 engine's reflect Pads on its INT8 values
    (:func:`pads_on_int8`). ``uint8_activations`` stores a Q/DQ model's activations as
    UINT8, which x86 ONNX Runtime needs to run its convolutions as integer kernels
    (calib.quantize.activations_to_uint8).
    ``seven_bit_weights`` puts INT8 weights on the grid that x86 CPUs without VNNI can
    multiply without saturating (calib.seven_bit). ``one_thread``: the session runs on one
    thread, where an INT8 engine's ELUs run faster rewritten too (elu_as_exp).
    """
    import onnx

    from plugins.roi_align.onnx_export import DOMAIN
    from plugins.roi_align.passes import expand

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:
        return str(path)  # let ONNX Runtime report what is wrong with the file
    problem = ir_version_problem(model, what="ONNX model", path=path)
    if problem is not None:
        raise BackendError(problem)
    plugin = any(o.domain == DOMAIN for o in model.opset_import)
    if plugin:
        try:
            model = expand(model)
        except ExportError as exc:  # a fused node standard ops cannot express
            raise BackendError(f"ONNX Runtime cannot run {str(path)!r}: {exc}") from exc
    rewritten = (
        argmax_channels_last(model) + elu_as_exp(model, after_dequantize=one_thread) + pads_on_int8(model)
    )
    if seven_bit_weights:
        from calib.seven_bit import weights_to_seven_bits

        model, changed = weights_to_seven_bits(model)
        rewritten += changed
    if not plugin and not rewritten and not uint8_activations:
        return str(path)
    if uint8_activations:
        from calib.quantize import activations_to_uint8

        model = activations_to_uint8(model)
    return bytes(model.SerializeToString())


def optimize_model(src: str | Path, dst: str | Path, *, uint8_activations: bool = False) -> None:
    """Save ONNX Runtime's graph-optimised form of ``src`` to ``dst``.

    'extended' is the highest level whose result is portable across machines; layout
    transforms of 'all' are machine specific and are applied again at load time.
    """
    ort = onnxruntime_module()
    so = session_options(optimization="extended", optimized_model_path=dst)
    try:
        ort.InferenceSession(
            model_for_ort(src, uint8_activations=uint8_activations),
            sess_options=so,
            providers=["CPUExecutionProvider"],
        )
    except BackendError:
        raise
    except Exception as exc:
        raise BackendError(f"ONNX Runtime could not optimise {str(src)!r}: {exc}") from exc


def int8_without_vnni_advice(models: list[str]) -> str:
    """What to tell whoever loads INT8 engines on an x86 CPU without VNNI."""
    return (
        f"INT8 engine(s) {', '.join(models)} run on a CPU without VNNI: ONNX Runtime's integer "
        "kernels are little faster than FP32 here (1.05x for the small models on an AVX2 EPYC, "
        "benchmarks/results/int8_cpu_avx2.md), and their weights run on a 7-bit grid so that "
        "the kernels' 16-bit sums cannot saturate (calib/seven_bit.py), which costs accuracy "
        "(there, depth AbsRel +0.021 against FP32); FP32 engines are the better choice on this "
        "CPU (--precision fp32)"
    )


class OnnxRuntimeEngine(EngineBase):
    name = "onnxruntime"

    def __init__(
        self,
        path: str | Path,
        *,
        intra_op_threads: int = 0,
        inter_op_threads: int = 1,
        optimization: str = "all",
        providers: list[str | tuple[str, dict[str, Any]]] | None = None,
        seven_bit_weights: bool | None = None,
        profile_prefix: str | Path | None = None,
    ) -> None:
        """``seven_bit_weights``: None decides by the CPU (x86 without VNNI: yes).
        ``profile_prefix``: ONNX Runtime times each node of each run into a file of that prefix,
        which ``end_profiling()`` closes and names (edge.layer_profile)."""
        ort = onnxruntime_module()
        self.path = Path(path)
        if not self.path.is_file():
            raise BackendError(f"ONNX Runtime engine {str(self.path)!r} does not exist")
        if seven_bit_weights is None:
            from edge.platform_info import int8_pairs_saturate

            cpu_only = not providers or providers == ["CPUExecutionProvider"]
            seven_bit_weights = cpu_only and int8_pairs_saturate()
        self.seven_bit_weights = seven_bit_weights
        so = session_options(
            intra_op_threads=intra_op_threads,
            inter_op_threads=inter_op_threads,
            optimization=optimization,
        )
        if profile_prefix is not None:
            so.enable_profiling = True
            so.profile_file_prefix = str(profile_prefix)
        one_thread = intra_op_threads == 1
        try:
            self._session = ort.InferenceSession(
                model_for_ort(self.path, seven_bit_weights=seven_bit_weights, one_thread=one_thread),
                sess_options=so,
                providers=providers or ["CPUExecutionProvider"],
            )
        except BackendError:
            raise
        except Exception as exc:
            raise BackendError(
                f"ONNX Runtime cannot load {str(self.path)!r} (corrupt or not an ONNX model?): {exc}"
            ) from exc
        # ONNX Runtime warns and goes on without a provider it cannot use (not built in, or
        # CUDA's libraries not found): a model asked onto the GPU would run on the CPU unsaid
        asked = [p if isinstance(p, str) else p[0] for p in providers or []]  # or (name, options)
        unused = [p for p in asked if p not in self._session.get_providers()]
        if unused:
            raise BackendError(
                f"ONNX Runtime cannot use {', '.join(unused)} here for {self.path.name} (it would run on "
                f"{', '.join(self._session.get_providers())}); this onnxruntime has "
                f"{', '.join(ort.get_available_providers())}: its log above says why where it tried"
            )
        self._inputs = [self._spec(i) for i in self._session.get_inputs()]
        self._outputs = [self._spec(o) for o in self._session.get_outputs()]
        self._output_names = [o.name for o in self._outputs]

    @staticmethod
    def _spec(arg: Any) -> TensorSpec:
        shape = tuple(d if isinstance(d, int) else -1 for d in arg.shape)
        return TensorSpec(arg.name, shape, _ORT_TYPES.get(arg.type, arg.type))

    @property
    def outputs(self) -> list[TensorSpec]:
        return list(self._outputs)

    def infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        arrays = self.check_feeds(feeds)
        try:
            values = self._session.run(self._output_names, arrays)
        except Exception as exc:
            raise BackendError(f"ONNX Runtime inference failed on {self.path.name}: {exc}") from exc
        return dict(zip(self._output_names, values, strict=True))

    def end_profiling(self) -> Path:
        """The file of the node times since the session began (its ``profile_prefix``), closed."""
        if self._session is None:
            raise BackendError(f"the ONNX Runtime engine {self.path.name} is closed")
        return Path(self._session.end_profiling())

    def close(self) -> None:
        self._session = None
