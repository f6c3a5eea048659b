"""INT8 weights on a 7-bit grid, for x86 CPUs whose integer kernels saturate.

ONNX Runtime multiplies UINT8 activations by INT8 weights with VPMADDUBSW on x86 CPUs
without VNNI (AVX2, and AVX-512 before Cascade Lake). That instruction adds each pair of
products into a saturating int16: 2 x 255 x 127 does not fit, so a convolution's sum is
clipped wherever large activations meet large weights. Nothing reports it; the output is
just wrong (on a test model, 17 dB from float instead of 34). Weight codes in -64..64 keep
every pair within int16 (2 x 255 x 64 = 32640) at the cost of one bit of weight
precision: the integer kernels then compute exactly what the Q/DQ model says. VNNI, Arm
and GPUs accumulate in int32 and need none of this.

The rewrite is applied when an engine is loaded (edge/backends/onnxruntime.py), so an
engine file stays the same everywhere and TensorRT always gets the full 8 bits.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# ops whose float weights ONNX Runtime turns into U8S8 integer kernels on x86
_INTEGER_KERNEL_OPS = ("Conv", "MatMul", "Gemm")
# fused forms, as a build's saved 'extended' optimisation holds them:
# op -> (weight, weight scale, weight zero point, int32 bias or None)
_FUSED = {"QLinearConv": (3, 4, 5, 8), "QLinearMatMul": (3, 4, 5, None), "QGemm": (3, 4, 5, 6)}


def weights_to_seven_bits(model: Any) -> tuple[Any, int]:
    """A copy of ``model`` whose INT8 weights use codes -64..64 (scale x2); how many changed.

    Each weight's code is halved and rounded and its scale doubled; an int32 bias quantized
    with (activation scale x weight scale) is halved with it, so its value holds to within
    one of its own steps. Weights with a non-zero zero point are left alone (the rewrite
    assumes the symmetric weights calib.quantize writes).
    """
    import onnx
    from onnx import TensorProto, numpy_helper

    if not any(i.data_type == TensorProto.INT8 for i in model.graph.initializer):
        return model, 0  # a float model (most engines): not worth copying
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    inits = {i.name: i for i in graph.initializer}
    producer = {o: n for n in graph.node for o in n.output}
    done: dict[str, str] = {}  # initializer -> its rewritten twin

    def twin(name: str, rewrite: Any) -> str:
        if name not in done:
            arr = rewrite(numpy_helper.to_array(inits[name]))
            new = numpy_helper.from_array(arr, f"{name}_7bit")
            graph.initializer.append(new)
            inits[new.name] = new
            done[name] = new.name
        return done[name]

    def halve(dtype: Any, lo: int, hi: int) -> Any:
        return lambda a: np.clip(np.round(a.astype(np.float64) / 2), lo, hi).astype(dtype)

    halve_weight = halve(np.int8, -64, 64)
    halve_bias = halve(np.int32, -(2**31), 2**31 - 1)

    def double(a: np.ndarray) -> np.ndarray:
        return (a * 2).astype(a.dtype)

    def symmetric_int8(w: str, zp: str | None) -> bool:
        if w not in inits or inits[w].data_type != TensorProto.INT8:
            return False
        return zp is None or zp not in inits or not numpy_helper.to_array(inits[zp]).any()

    def weight_dq(name: str, dtype: int) -> Any:
        node = producer.get(name)
        if node is None or node.op_type != "DequantizeLinear" or node.input[0] not in inits:
            return None
        return node if inits[node.input[0]].data_type == dtype else None

    changed = 0
    rewritten: set[str] = set()
    for node in list(graph.node):
        if node.op_type in _INTEGER_KERNEL_OPS and len(node.input) > 1:
            dq = weight_dq(node.input[1], TensorProto.INT8)
            zp = dq.input[2] if dq is not None and len(dq.input) > 2 else None
            if dq is None or not symmetric_int8(dq.input[0], zp):
                continue
            bias = weight_dq(node.input[2], TensorProto.INT32) if len(node.input) > 2 else None
            for q, halve_codes in ((dq, halve_weight), (bias, halve_bias)):
                if q is not None and q.output[0] not in rewritten:  # a DQ may feed several ops
                    q.input[0] = twin(q.input[0], halve_codes)
                    q.input[1] = twin(q.input[1], double)
                    rewritten.add(q.output[0])
            changed += 1
        elif node.op_type in _FUSED:
            w, scale, zp, b = _FUSED[node.op_type]
            if len(node.input) <= zp or not symmetric_int8(node.input[w], node.input[zp]):
                continue
            node.input[w] = twin(node.input[w], halve_weight)
            node.input[scale] = twin(node.input[scale], double)
            if b is not None and len(node.input) > b and node.input[b] in inits:
                node.input[b] = twin(node.input[b], halve_bias)
            changed += 1
    used = {name for n in graph.node for name in n.input} | {i.name for i in graph.input}
    keep = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)
    return out, changed
