"""ONNX export of the multi-level RoIAlign torch op as one fused node.

``edge.plugins::MultiLevelRoIAlign`` is the input of our TensorRT plugin. Inputs: rois
[R, 4], batch_indices [R] int64, then the pyramid levels from ``min_level`` up; the
attribute names are the plugin's field names. For backends without the plugin,
passes.expand rewrites it into standard ops (what edge's default export does).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from onnxscript.values import Opset

from plugins.roi_align.reference import CANONICAL_LEVEL, CANONICAL_SIZE

DOMAIN = "edge.plugins"
OP_TYPE = "MultiLevelRoIAlign"
PLUGIN_VERSION = "1"
PLUGIN_NAMESPACE = ""
PLUGIN = Opset(DOMAIN, 1)


def register_schema() -> None:
    """Teach onnx (and so onnxscript) the fused op's signature; idempotent."""
    import onnx
    from onnx.defs import OpSchema

    if onnx.defs.has(OP_TYPE, DOMAIN):
        return
    param = OpSchema.FormalParameter
    attr = OpSchema.Attribute
    kind = OpSchema.AttrType
    schema = OpSchema(
        OP_TYPE,
        DOMAIN,
        1,
        doc="FPN RoIAlign: each RoI pooled from the pyramid level its size maps to.",
        # one heterogeneous variadic list (rois, batch_indices, level maps...): onnxscript
        # 0.7 repeats the leading inputs when a variadic follows fixed ones
        inputs=[
            param("inputs", "V", param_option=OpSchema.FormalParameterOption.Variadic, is_homogeneous=False)
        ],
        outputs=[param("Y", "T")],
        type_constraints=[
            ("V", ["tensor(float)", "tensor(float16)", "tensor(int64)"], "rois, batch indices, features"),
            ("T", ["tensor(float)", "tensor(float16)"], "pooled features"),
        ],
        attributes=[
            attr("output_height", kind.INT, "pooled height"),
            attr("output_width", kind.INT, "pooled width"),
            attr("spatial_scales", kind.FLOATS, "feature-map / image scale per level"),
            attr("sampling_ratio", kind.INT, "samples per bin and axis; 0 = adaptive"),
            attr("aligned", kind.INT, "1: half-pixel corners"),
            attr("mode", kind.STRING, "avg or max"),
            attr("min_level", kind.INT, "pyramid level of the first feature map"),
            attr("canonical_size", kind.FLOAT, "RoI size mapped to canonical_level"),
            attr("canonical_level", kind.INT, "level of a canonical_size RoI"),
            attr("plugin_version", kind.STRING, "TensorRT plugin version"),
            attr("plugin_namespace", kind.STRING, "TensorRT plugin namespace"),
        ],
    )
    onnx.defs.register_schema(schema)


def fused_attributes(
    *,
    output_size: int | tuple[int, int],
    spatial_scales: Sequence[float],
    sampling_ratio: int,
    aligned: bool | int,
    min_level: int,
    mode: str = "avg",
) -> dict[str, Any]:
    """The fused node's attributes (the TensorRT plugin's fields), in one place for every
    writer of the node: the exporter, passes.contract and tests that build it by hand."""
    oh, ow = (output_size, output_size) if isinstance(output_size, int) else output_size
    return {
        "output_height": int(oh),
        "output_width": int(ow),
        "spatial_scales": [float(s) for s in spatial_scales],
        "sampling_ratio": int(sampling_ratio),
        "aligned": int(aligned),
        "mode": mode,
        "min_level": int(min_level),
        "canonical_size": CANONICAL_SIZE,
        "canonical_level": CANONICAL_LEVEL,
        "plugin_version": PLUGIN_VERSION,
        "plugin_namespace": PLUGIN_NAMESPACE,
    }


def fused_node(inputs: Sequence[str], output: str, **attributes: Any) -> Any:
    """An onnx NodeProto of the fused op; ``attributes`` as for fused_attributes."""
    from onnx import helper

    return helper.make_node(OP_TYPE, list(inputs), [output], domain=DOMAIN, **fused_attributes(**attributes))


def fused_onnx(
    features: Sequence[Any],
    rois: Any,
    batch_idx: Any,
    output_size: int,
    spatial_scales: Sequence[float],
    sampling_ratio: int,
    aligned: bool,
    min_level: int,
) -> Any:
    register_schema()
    return PLUGIN.MultiLevelRoIAlign(
        rois,
        batch_idx,
        *features,
        **fused_attributes(
            output_size=output_size,
            spatial_scales=spatial_scales,
            sampling_ratio=sampling_ratio,
            aligned=aligned,
            min_level=min_level,
        ),
    )
