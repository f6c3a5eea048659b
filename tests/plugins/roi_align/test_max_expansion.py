"""One level of the ``max`` expansion's samples, run by ONNX Runtime: each cell is one bilinear
sample at the reference's point, and ``recognise`` reads back what built it."""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs
import onnxruntime as ort
import pytest

from plugins.roi_align.graph_builder import GraphBuilder
from plugins.roi_align.max_expansion import pooled_samples, recognise
from plugins.roi_align.reference import bilinear

ROWS, COLUMNS, GRID, SCALE = 3, 4, 3, 0.25


def level_graph(*, aligned: bool) -> tuple[gs.Graph, gs.Variable]:
    graph = gs.Graph(opset=18)
    feature = gs.Variable("feature", dtype=np.float32, shape=[2, 3, 9, 11])
    rois = gs.Variable("rois", dtype=np.float32, shape=["n", 4])
    images = gs.Variable("images", dtype=np.int64, shape=["n"])
    graph.inputs = [feature, rois, images]
    out = pooled_samples(
        GraphBuilder(gs=gs, graph=graph, prefix="level"),
        feature,
        rois,
        images,
        spatial_scale=SCALE,
        output_size=(ROWS, COLUMNS),
        sampling_ratio=GRID,
        aligned=aligned,
    )
    out.dtype = np.float32
    graph.outputs = [out]
    return graph, out


def expected_cells(feature: np.ndarray, roi: np.ndarray, image: int, aligned: bool) -> np.ndarray:
    """The reference's samples of one RoI, a cell each: its points (reference.roi_align's
    formula, on the map or not) through reference.bilinear, which is 0 off the map."""
    offset = 0.5 if aligned else 0.0
    x1, y1 = roi[0] * np.float32(SCALE) - offset, roi[1] * np.float32(SCALE) - offset
    w, h = roi[2] * np.float32(SCALE) - offset - x1, roi[3] * np.float32(SCALE) - offset - y1
    if not aligned:
        w, h = max(w, 1.0), max(h, 1.0)
    bh, bw = h / ROWS, w / COLUMNS  # float32, as reference.roi_align's
    # axis_points' formula for every sample, off the map too (it keeps those on the map only)
    ys = [y1 + r * bh + (s + 0.5) * bh / GRID for r in range(ROWS) for s in range(GRID)]
    xs = [x1 + c * bw + (s + 0.5) * bw / GRID for c in range(COLUMNS) for s in range(GRID)]
    assert all(isinstance(p, np.float32) for p in ys + xs)
    cells = [[bilinear(feature[image], y, x) for x in xs] for y in ys]
    return np.asarray(cells).transpose(2, 0, 1)  # [C, rows, columns]


@pytest.mark.parametrize("aligned", [True, False])
def test_each_cell_is_one_sample_at_the_reference_point(aligned: bool) -> None:
    rng = np.random.default_rng(11)
    feature = rng.normal(size=(2, 3, 9, 11)).astype(np.float32)
    rois = np.asarray(
        [[4.0, 6.0, 30.0, 20.0], [-10.0, -3.0, 9.5, 50.0], [40.0, 30.0, 47.0, 38.0], [13.0, 9.0, 13.0, 9.0]],
        np.float32,
    )  # inside; over the top-left edge and past the bottom; past the right edge; a point
    images = np.asarray([0, 1, 1, 0], np.int64)
    graph, _ = level_graph(aligned=aligned)
    model = gs.export_onnx(graph)
    model.ir_version = 9  # the newest onnx writes its own newest IR, past older ONNX Runtimes' reach
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"feature": feature, "rois": rois, "images": images})
    assert got.shape == (4, 3, ROWS * GRID, COLUMNS * GRID)
    for i in range(4):
        want = expected_cells(feature, rois[i], int(images[i]), aligned)
        np.testing.assert_allclose(got[i], want, rtol=1e-6, atol=1e-6, err_msg=f"RoI {i}")
    assert (got[1] == 0).any() and (got[1] != 0).any()  # some of its samples off the map
    (empty,) = session.run(None, {"feature": feature, "rois": rois[:0], "images": images[:0]})
    assert empty.shape == (0, 3, ROWS * GRID, COLUMNS * GRID)


@pytest.mark.parametrize("aligned", [True, False])
def test_recognise_reads_back_what_built_the_level(aligned: bool) -> None:
    graph, out = level_graph(aligned=aligned)
    level = recognise(gs, out)
    assert level is not None
    assert (level.spatial_scale, level.output_size, level.sampling_ratio, level.aligned) == (
        SCALE,
        (ROWS, COLUMNS),
        GRID,
        aligned,
    )
    feature, rois, images = graph.inputs
    assert level.feature is feature and level.rois is rois and level.batch_indices is images
    assert recognise(gs, feature) is None  # a graph input: no producer at all
    shape_of = next(n for n in graph.nodes if n.op == "Shape").outputs[0]
    assert recognise(gs, shape_of) is None
