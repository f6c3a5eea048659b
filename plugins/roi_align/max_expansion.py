"""The fused op's ``max`` mode in standard ONNX ops, sample by sample.

The fused op's ``max`` is the maximum of a bin's bilinear samples (reference.py). ONNX's
RoiAlign ``max`` is another thing: the maximum over the samples of each one's largest
weighted corner (ONNX's own reference and ONNX Runtime compute it so), up to the values
themselves away. An ``avg`` RoiAlign of one sample a cell on a grid ``sampling_ratio`` times
finer does hold the bin's samples, but it computes their points in another order of float32
operations, and a point a rounding away is a value up to 2.4e-5 away on the tests' maps,
8.4e-5 on a 512x1024 image's pyramid. So each sample is computed here as reference.py and
every kernel compute it: its point in the same order of float32 operations, its four corners
gathered from the map and weighted by RoIAlign's border rules; a MaxPool then takes each
bin's maximum. Its four [RoIs, bins x samples, channels] gathers a level cost ONNX Runtime's
CPU about twice the time of that finer-grid RoiAlign and a tenth to a sixth more memory (four
to five times ``avg``'s time, three to four times its memory; 1000 RoIs, 256 channels:
benchmarks/roi_align_max_expansion.py), for a mode the zoo's models do not use; ``avg``
stays one RoiAlign a level.

``pooled_samples`` builds one level's samples; ``recognise`` tells whether a tensor of a model
is them (``passes.contract`` folds such an expansion back into the fused node).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx

from plugins.roi_align.graph_builder import GraphBuilder, constant, made_by, up

# [RoIs, rows, columns, channels] -> [RoIs, channels, rows, columns]
_TO_NCHW = [0, 3, 1, 2]


@dataclass(frozen=True)
class LevelSamples:
    """What ``recognise`` read from one level's samples: the map, the level's RoIs and their
    images (the Gathers' outputs), and the pooling's parameters."""

    feature: Any
    rois: Any
    batch_indices: Any
    spatial_scale: float
    output_size: tuple[int, int]
    sampling_ratio: int
    aligned: bool


def pooled_samples(
    b: GraphBuilder,
    feature: Any,
    rois: Any,
    batch_indices: Any,
    *,
    spatial_scale: float,
    output_size: tuple[int, int],
    sampling_ratio: int,
    aligned: bool,
) -> Any:
    """[R, C, out_h * s, out_w * s] (s: ``sampling_ratio``): each RoI's bilinear samples on
    ``feature`` [N, C, H, W], a cell each, zero where a sample lies off the map; ``rois`` [R, 4]
    (finite: passes._finite_rois) in image pixels, ``batch_indices`` [R]."""
    shape = b.layer("Shape", [feature])
    dims = [b.layer("Gather", [shape, b.const(i, np.int64)], axis=0) for i in (2, 3)]  # H, W: scalars
    sizes = [b.layer("Cast", [d], to=onnx.TensorProto.FLOAT) for d in dims]
    coords = [b.layer("Gather", [rois, b.const([i], np.int64)], axis=1) for i in range(4)]  # each [R, 1]
    # y before x, as the reference's loops go: the point order is what makes the values equal
    rows = _axis(b, coords[1], coords[3], sizes[0], output_size[0], spatial_scale, sampling_ratio, aligned)
    cols = _axis(b, coords[0], coords[2], sizes[1], output_size[1], spatial_scale, sampling_ratio, aligned)
    flat = b.layer(
        "Reshape",
        [
            b.layer("Transpose", [feature], perm=[0, 2, 3, 1]),
            b.layer(
                "Concat",
                [b.const([-1], np.int64), b.layer("Gather", [shape, b.const([1], np.int64)])],
                axis=0,
            ),
        ],
    )  # [N * H * W, C]
    image = b.layer(
        "Cast", [b.layer("Unsqueeze", [batch_indices, b.const([1], np.int64)])], to=onnx.TensorProto.INT64
    )

    def row_start(y: Any) -> Any:  # [R, rows, 1]: (image * H + y) * W
        start = b.layer("Mul", [b.layer("Add", [b.layer("Mul", [image, dims[0]]), y]), dims[1]])
        return b.layer("Unsqueeze", [start, b.const([2], np.int64)])

    def outer(a: Any, c: Any, op: str) -> Any:  # [R, rows, 1] op [R, 1, columns]
        return b.layer(op, [a, b.layer("Unsqueeze", [c, b.const([1], np.int64)])])

    total = None
    for wy, y in ((rows.low_weight, rows.low), (rows.high_weight, rows.high)):
        start = row_start(y)
        wy3 = b.layer("Unsqueeze", [wy, b.const([2], np.int64)])
        for wx, x in ((cols.low_weight, cols.low), (cols.high_weight, cols.high)):
            values = b.layer("Gather", [flat, outer(start, x, "Add")], axis=0)  # [R, rows, columns, C]
            weight = b.layer("Unsqueeze", [outer(wy3, wx, "Mul"), b.const([3], np.int64)])
            term = b.layer("Mul", [b.layer("CastLike", [weight, values]), values])
            total = term if total is None else b.layer("Add", [total, term])
    inside = b.layer(
        "Unsqueeze",
        [
            outer(b.layer("Unsqueeze", [rows.inside, b.const([2], np.int64)]), cols.inside, "And"),
            b.const([3], np.int64),
        ],
    )
    zero = b.layer("CastLike", [b.const(0.0), total])
    return b.layer("Transpose", [b.layer("Where", [inside, total, zero])], perm=_TO_NCHW)


@dataclass(frozen=True)
class _Axis:
    low: Any  # [R, bins * samples] int64: the lower corner's cell
    high: Any
    low_weight: Any  # float32 weights of the two corners
    high_weight: Any
    inside: Any  # bool: the sample is on the map (else it pools 0)


def _axis(
    b: GraphBuilder,
    lo: Any,
    hi: Any,
    size: Any,
    bins: int,
    spatial_scale: float,
    sampling_ratio: int,
    aligned: bool,
) -> _Axis:
    """Along one axis, each RoI's sample points and their corners, by reference.roi_align and
    reference.bilinear, operation for operation in float32."""
    offset = b.const(0.5 if aligned else 0.0)
    start = b.layer("Sub", [b.layer("Mul", [lo, b.const(spatial_scale)]), offset])
    length = b.layer("Sub", [b.layer("Sub", [b.layer("Mul", [hi, b.const(spatial_scale)]), offset]), start])
    if not aligned:
        length = b.layer("Max", [length, b.const(1.0)])
    width = b.layer("Div", [length, b.const(float(bins))])
    origin = b.layer("Add", [start, b.layer("Mul", [b.const([list(range(bins))]), width])])  # [R, bins]
    halves = b.const([[s + 0.5 for s in range(sampling_ratio)]])
    step = b.layer("Div", [b.layer("Mul", [halves, width]), b.const(float(sampling_ratio))])  # [R, samples]
    points = b.layer(
        "Reshape",
        [
            b.layer(
                "Add",
                [
                    b.layer("Unsqueeze", [origin, b.const([2], np.int64)]),
                    b.layer("Unsqueeze", [step, b.const([1], np.int64)]),
                ],
            ),
            b.const([0, bins * sampling_ratio], np.int64),  # 0: the RoI count, which may be 0
        ],
    )
    inside = b.layer(
        "And",
        [b.layer("GreaterOrEqual", [points, b.const(-1.0)]), b.layer("LessOrEqual", [points, size])],
    )
    last = b.layer("Sub", [size, b.const(1.0)])
    # off-map points (inf and NaN among them) become 0 before the cast to a cell index
    clamped = b.layer(
        "Min", [b.layer("Max", [b.layer("Where", [inside, points, b.const(0.0)]), b.const(0.0)]), last]
    )
    floor = b.layer("Floor", [clamped])
    high = b.layer("Min", [b.layer("Add", [floor, b.const(1.0)]), last])
    frac = b.layer("Sub", [clamped, floor])
    return _Axis(
        low=b.layer("Cast", [floor], to=onnx.TensorProto.INT64),
        high=b.layer("Cast", [high], to=onnx.TensorProto.INT64),
        low_weight=b.layer("Sub", [b.const(1.0), frac]),
        high_weight=frac,
        inside=inside,
    )


def recognise(gs: Any, tensor: Any) -> LevelSamples | None:
    """The parameters ``pooled_samples`` made ``tensor`` with, if it did; else None. Read from
    a few places, then checked by building the level again and comparing node for node."""
    values = up(tensor, ("Transpose", 0), ("Where", 1))  # the weighted sum of the four corners
    corner = up(values, *[("Add", 0)] * 3, ("Mul", 1))  # the first corner's values
    feature = up(corner, ("Gather", 0), ("Reshape", 0), ("Transpose", 0))
    row = up(corner, ("Gather", 1), ("Add", 0), ("Unsqueeze", 0))  # (image * H + y) * W
    batch_indices = up(row, ("Mul", 0), ("Add", 0), ("Mul", 0), ("Cast", 0), ("Unsqueeze", 0))
    cell = (("Cast", 0), ("Floor", 0), ("Min", 0), ("Max", 0), ("Where", 1))  # index -> its point
    ys = _read_axis(up(row, ("Mul", 0), ("Add", 1), *cell))
    xs = _read_axis(up(corner, ("Gather", 1), ("Add", 1), ("Unsqueeze", 0), *cell))
    if feature is None or batch_indices is None or ys is None or xs is None:
        return None
    rois, scale, offset, rows, grid = ys
    if xs[0] is not rois or xs[1:3] + xs[4:] != (scale, offset, grid) or offset not in (0.0, 0.5):
        return None
    if tensor.inputs[0].attrs.get("perm") != _TO_NCHW:
        return None
    level = LevelSamples(
        feature=feature,
        rois=rois,
        batch_indices=batch_indices,
        spatial_scale=scale,
        output_size=(rows, xs[3]),
        sampling_ratio=grid,
        aligned=offset == 0.5,
    )

    def build(b: GraphBuilder, leaves: dict[str, Any]) -> Any:
        return pooled_samples(
            b,
            leaves["feature"],
            leaves["rois"],
            leaves["batch_indices"],
            spatial_scale=level.spatial_scale,
            output_size=level.output_size,
            sampling_ratio=level.sampling_ratio,
            aligned=level.aligned,
        )

    leaves = {"feature": feature, "rois": rois, "batch_indices": batch_indices}
    return level if made_by(gs, tensor, leaves, build) else None


def _read_axis(points: Any | None) -> tuple[Any, float, float, int, int] | None:
    """(RoIs, spatial scale, offset, bins, samples a bin) of an axis's sample points."""
    shape = constant(up(points, ("Reshape", 1)))
    halves = constant(up(points, ("Reshape", 0), ("Add", 1), ("Unsqueeze", 0), ("Div", 0), ("Mul", 0)))
    start = up(points, ("Reshape", 0), ("Add", 0), ("Unsqueeze", 0), ("Add", 0))
    rois = up(start, ("Sub", 0), ("Mul", 0), ("Gather", 0))
    scale = constant(up(start, ("Sub", 0), ("Mul", 1)))
    offset = constant(up(start, ("Sub", 1)))
    if shape is None or halves is None or rois is None or scale is None or offset is None:
        return None
    if shape.shape != (2,) or halves.ndim != 2 or halves.shape[1] < 1 or scale.size != 1 or offset.size != 1:
        return None
    grid = int(halves.shape[1])
    if int(shape[1]) % grid:
        return None
    return rois, float(scale), float(offset), int(shape[1]) // grid, grid
