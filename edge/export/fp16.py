"""FP16 ONNX for strongly typed TensorRT builds.

TensorRT 11 removed the FP16 builder flag: precision now lives in the graph. The
convolution stack (convolutions, normalisation, activations, resampling, the box and
mask heads' matrix products) is converted to FP16; everything else — box decoding, level
assignment, NMS, top-K, RoIAlign coordinates, the arithmetic between them — stays FP32,
because boxes at 1024 px lose up to half a pixel in FP16 and exp() of box deltas
overflows it. Inputs and outputs keep their FP32 types, so the runtime does not change.
ONNX Runtime's converter inserts the casts at the boundaries.
"""

from __future__ import annotations

from pathlib import Path

from edge.util.onnx_io import read_onnx

FP16_OPS = frozenset(
    {
        "Conv",
        "ConvTranspose",
        "Relu",
        "MaxPool",
        "Resize",
        "InstanceNormalization",
        "Gemm",
        "MatMul",
        "Sigmoid",
        "Elu",
        "Pad",
    }
)


def convert_to_fp16(onnx_in: str | Path, onnx_out: str | Path) -> dict[str, int]:
    """Write the mixed-precision model; returns how many nodes became FP16 and stayed FP32."""
    import onnx

    from edge.util.ort import keep_offline

    keep_offline()
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = read_onnx(onnx_in, what="model to convert to FP16", load_external_data=True)
    present = {n.op_type for n in model.graph.node}
    blocked = sorted(present - FP16_OPS)
    converted = convert_float_to_float16(model, keep_io_types=True, op_block_list=blocked)
    onnx.save(converted, str(onnx_out))
    fp16 = sum(n.op_type in FP16_OPS for n in model.graph.node)
    return {"fp16_nodes": fp16, "fp32_nodes": len(model.graph.node) - fp16}
