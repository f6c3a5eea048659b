"""Golden values for the numpy RoIAlign reference (each computed by hand in the comments)."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper

from plugins.roi_align.reference import (
    OUTSIDE_ROI,
    assign_levels,
    multilevel_roi_align,
    roi_align,
)
from plugins.roi_align.torch_op import roi_align_reference as torch_roi_align


def ramp(h: int = 8, w: int = 8) -> np.ndarray:
    """f(y, x) = x + 10 y, [1, 1, H, W]: bilinear sampling returns the point's own value."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    return (x + 10 * y)[None, None]


def ra(feat, rois, **kw):
    rois = np.asarray(rois, np.float32).reshape(-1, 4)
    kw.setdefault("batch_indices", np.zeros(len(rois), np.int64))
    return roi_align(feat, rois, kw.pop("batch_indices"), **kw)


def test_two_by_two_map_by_hand() -> None:
    f = np.array([[[[1.0, 2.0], [3.0, 4.0]]]], np.float32)
    # legacy: one sample at (1.0, 1.0) = bottom-right cell, value 4
    assert (
        ra(f, [0, 0, 2, 2], output_size=1, spatial_scale=1, sampling_ratio=1, aligned=False)[0, 0, 0, 0]
        == 4.0
    )
    # aligned: corners shift to -0.5, one sample at (0.5, 0.5): mean of the four = 2.5
    assert (
        ra(f, [0, 0, 2, 2], output_size=1, spatial_scale=1, sampling_ratio=1, aligned=True)[0, 0, 0, 0] == 2.5
    )


def test_ramp_avg_and_max() -> None:
    # box [1,1,5,5] aligned -> [0.5, 4.5], 2 bins of 2; bin 0 samples at 1.0 and 2.0
    avg = ra(ramp(), [1, 1, 5, 5], output_size=2, spatial_scale=1, sampling_ratio=2, aligned=True)
    np.testing.assert_allclose(avg[0, 0], [[16.5, 18.5], [36.5, 38.5]])
    # max of bin (0, 0): sample (y=2, x=2) -> 2 + 20 = 22; bin (1, 1): (4, 4) -> 44
    mx = ra(ramp(), [1, 1, 5, 5], output_size=2, spatial_scale=1, sampling_ratio=2, aligned=True, mode="max")
    np.testing.assert_allclose(mx[0, 0], [[22.0, 24.0], [42.0, 44.0]])
    # legacy mode, box [1,1,5,5]: bins [1,3], [3,5]; samples 1.5, 2.5 -> mean 2.0
    legacy = ra(ramp(), [1, 1, 5, 5], output_size=2, spatial_scale=1, sampling_ratio=2, aligned=False)
    np.testing.assert_allclose(legacy[0, 0], [[22.0, 24.0], [42.0, 44.0]])


def test_adaptive_sampling_and_spatial_scale() -> None:
    # 8 px over 4 bins -> adaptive grid 2: the same samples as sampling_ratio=2
    a = ra(ramp(16, 16), [0, 0, 8, 8], output_size=4, spatial_scale=1, sampling_ratio=0, aligned=True)
    b = ra(ramp(16, 16), [0, 0, 8, 8], output_size=4, spatial_scale=1, sampling_ratio=2, aligned=True)
    np.testing.assert_array_equal(a, b)
    # scale 0.5 maps image box [2,2,10,10] onto map box [1,1,5,5]
    c = ra(ramp(), [2, 2, 10, 10], output_size=2, spatial_scale=0.5, sampling_ratio=2, aligned=True)
    np.testing.assert_allclose(c[0, 0, 0, 0], 16.5)


def test_outside_partly_outside_and_very_large_boxes() -> None:
    ones = np.ones((1, 1, 4, 4), np.float32)
    far = ra(ones, [10, 10, 12, 12], output_size=2, spatial_scale=1, sampling_ratio=2, aligned=False)
    assert not far.any()
    # samples within one pixel outside clamp to the border: all ones
    edge = ra(ones, [-1.5, -1.5, -0.5, -0.5], output_size=1, spatial_scale=1, sampling_ratio=1, aligned=False)
    assert edge[0, 0, 0, 0] == 1.0
    # box [-4,-4,12,12], 1 bin, 4x4 samples at -2, 2, 6, 10 per axis: only x=y=2 is inside
    big = ra(ones, [-4, -4, 12, 12], output_size=1, spatial_scale=1, sampling_ratio=4, aligned=False)
    assert big[0, 0, 0, 0] == pytest.approx(1 / 16)


@pytest.mark.parametrize("mode", ["avg", "max"])
@pytest.mark.parametrize("aligned", [True, False])
def test_samples_off_the_map_are_left_out_as_zeros(mode: str, aligned: bool) -> None:
    """The reference visits only the run of a bin's samples that land on the map (axis_points,
    by bisection): the same values as visiting each of the grid's samples as bilinear() does,
    worked out here one by one, for RoIs running off a 6x7 map under adaptive sampling (up to
    50 samples a bin along an axis) and a fixed grid of 9, upside down (falling points)."""
    from plugins.roi_align.reference import bilinear

    feat = np.random.default_rng(3).standard_normal((1, 2, 6, 7)).astype(np.float32)
    for roi, sampling in (([-60, -50, 40, 30], 0), ([2, -9, 100, 5], 0), ([5, 4, -9, -7], 9)):
        got = ra(
            feat, roi, output_size=2, spatial_scale=1, sampling_ratio=sampling, aligned=aligned, mode=mode
        )
        r = np.asarray(roi, np.float32)
        offset = np.float32(0.5 if aligned else 0.0)
        x1, y1 = r[0] - offset, r[1] - offset
        w, h = r[2] - offset - x1, r[3] - offset - y1
        if not aligned:
            w, h = max(w, np.float32(1.0)), max(h, np.float32(1.0))
        gh, gw = (sampling, sampling) if sampling else (int(np.ceil(h / 2)), int(np.ceil(w / 2)))
        for py in range(2):
            for px in range(2):
                values = [
                    bilinear(
                        feat[0],
                        y1 + py * (h / 2) + (sy + 0.5) * (h / 2) / gh,
                        x1 + px * (w / 2) + (sx + 0.5) * (w / 2) / gw,
                    )
                    for sy in range(gh)
                    for sx in range(gw)
                ]
                want = np.mean(values, axis=0) if mode == "avg" else np.max(values, axis=0)
                np.testing.assert_allclose(got[0, :, py, px], want, rtol=1e-6, atol=1e-7)


def test_absurd_rois_under_adaptive_sampling_take_moments() -> None:
    """A RoI of 10^6 pixels on a 10x12 map has 35,715 x 35,715 samples a bin: the reference
    works out the few on the map (it looped over 10^9 a bin, for ever), as the torch op does in
    float64 (its own run of them). A size past float32's range pools zeros, where
    math.ceil(inf) raised OverflowError."""
    feat = np.random.default_rng(5).random((1, 2, 10, 12)).astype(np.float32) + 1.0
    rois = np.array([[0, 0, 1e6, 1e6], [-1e6, 3, 1e6, 30], [-3e38, -3e38, 3e38, 3e38]], np.float32)
    kw = {"output_size": 7, "spatial_scale": 0.25, "sampling_ratio": 0, "aligned": True}
    got = roi_align(feat, rois, np.zeros(3, np.int64), **kw)
    want = torch_roi_align(
        torch.from_numpy(feat), torch.from_numpy(rois), torch.zeros(3, dtype=torch.int64), 7, 0.25, 0, True
    )
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-4, atol=1e-9)
    assert got[0, :, 0, 0].min() > 0 and got[1].any()
    at_scale_one = roi_align(
        feat,
        rois[2:],
        np.zeros(1, np.int64),
        output_size=7,
        spatial_scale=1.0,
        sampling_ratio=0,
        aligned=True,
    )
    assert not at_scale_one.any()


def test_empty_boxes() -> None:
    # adaptive sampling of an empty RoI has no samples: 0
    z = ra(ramp(), [3, 3, 3, 3], output_size=2, spatial_scale=1, sampling_ratio=0, aligned=True)
    assert not z.any()
    # a fixed grid on an empty aligned RoI samples its single point (2.5, 2.5) -> 27.5
    p = ra(ramp(), [3, 3, 3, 3], output_size=2, spatial_scale=1, sampling_ratio=2, aligned=True)
    np.testing.assert_allclose(p, 27.5)
    # legacy mode grows an inverted box to 1x1 cells from its top-left corner
    neg = ra(ramp(), [4, 4, 2, 2], output_size=1, spatial_scale=1, sampling_ratio=1, aligned=False)
    np.testing.assert_allclose(neg[0, 0, 0, 0], 4.5 + 45.0)


def test_one_and_no_rois_and_batch_index() -> None:
    two = np.concatenate([ramp(), ramp() + 100])
    one = ra(
        two,
        [1, 1, 5, 5],
        output_size=1,
        spatial_scale=1,
        sampling_ratio=1,
        aligned=True,
        batch_indices=np.array([1]),
    )
    assert one.shape == (1, 1, 1, 1) and one[0, 0, 0, 0] == pytest.approx(100 + 2.5 + 25)
    none = ra(two, np.zeros((0, 4)), output_size=7, spatial_scale=1, sampling_ratio=2, aligned=True)
    assert none.shape == (0, 1, 7, 7)


def test_level_assignment_golden() -> None:
    rois = np.array([[0, 0, s, s] for s in (224, 112, 448, 10, 2000, 0)], np.float32)
    assert assign_levels(rois, 2, 5).tolist() == [4, 3, 5, 2, 5, 2]


def test_multilevel_uses_each_rois_level() -> None:
    feats = [np.full((1, 1, 64 >> i, 64 >> i), float(i + 2), np.float32) for i in range(4)]
    rois = np.array([[0, 0, 20, 20], [0, 0, 240, 240], [0, 0, 500, 500]], np.float32)
    out = multilevel_roi_align(
        feats,
        rois,
        np.zeros(3, np.int64),
        output_size=2,
        spatial_scales=[1 / 4, 1 / 8, 1 / 16, 1 / 32],
        sampling_ratio=2,
        aligned=True,
    )
    assert [float(out[i].max()) for i in range(3)] == [2.0, 4.0, 5.0]  # P2, P4, P5


@pytest.mark.parametrize("aligned", [True, False])
@pytest.mark.parametrize("sampling", [0, 2])
def test_torch_op_matches_reference(aligned: bool, sampling: int) -> None:
    rng = np.random.default_rng(0)
    feat = rng.normal(size=(2, 3, 12, 16)).astype(np.float32)
    xy = rng.uniform(-8, 60, size=(20, 2))
    wh = rng.uniform(0, 40, size=(20, 2))
    rois = np.concatenate([xy, xy + wh], axis=1).astype(np.float32)
    rois[0, 2:] = rois[0, :2]  # an empty box
    rois[1, 2:] = rois[1, :2] - 3  # an inverted box
    bidx = rng.integers(0, 2, 20)
    ref = roi_align(
        feat, rois, bidx, output_size=3, spatial_scale=0.25, sampling_ratio=sampling, aligned=aligned
    )
    got = torch_roi_align(
        torch.from_numpy(feat), torch.from_numpy(rois), torch.from_numpy(bidx), 3, 0.25, sampling, aligned
    ).numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("aligned", [True, False])
def test_onnxruntime_roialign_matches_reference(aligned: bool) -> None:
    rng = np.random.default_rng(1)
    feat = rng.normal(size=(1, 4, 10, 10)).astype(np.float32)
    rois = np.array([[1, 1, 30, 25], [-4, 2, 12, 9], [10, 10, 60, 70]], np.float32)
    bidx = np.zeros(3, np.int64)
    node = helper.make_node(
        "RoiAlign",
        ["x", "rois", "b"],
        ["y"],
        mode="avg",
        output_height=4,
        output_width=4,
        sampling_ratio=2,
        spatial_scale=0.25,
        coordinate_transformation_mode="half_pixel" if aligned else "output_half_pixel",
    )
    graph = helper.make_graph(
        [node],
        "g",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, feat.shape),
            helper.make_tensor_value_info("rois", TensorProto.FLOAT, rois.shape),
            helper.make_tensor_value_info("b", TensorProto.INT64, bidx.shape),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=9)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"x": feat, "rois": rois, "b": bidx})[0]
    ref = roi_align(feat, rois, bidx, output_size=4, spatial_scale=0.25, sampling_ratio=2, aligned=aligned)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("aligned", [True, False])
@pytest.mark.parametrize("sampling", [0, 2])
def test_a_roi_with_nan_or_inf_pools_zeros_on_the_first_level(aligned: bool, sampling: int) -> None:
    """An engine that overflows gives NaN or inf proposals: each such RoI pools zeros (and is
    put on the first level); a finite one beside it is pooled as ever."""
    nan, inf = np.nan, np.inf
    rois = np.array(
        [
            [nan, 0, 4, 4],
            [0, 0, inf, 4],
            [-inf, -inf, 4, 4],
            [0, nan, nan, 4],
            [1, 1, 5, 5],
            [0, 0, 900, 900],
        ],
        np.float32,
    )
    assert assign_levels(rois, 2, 5).tolist() == [2, 2, 2, 2, 2, 5]
    ones = [np.ones((1, 2, 64 >> i, 64 >> i), np.float32) for i in range(4)]
    out = multilevel_roi_align(
        ones,
        rois,
        np.zeros(6, np.int64),
        output_size=2,
        spatial_scales=[1 / 4, 1 / 8, 1 / 16, 1 / 32],
        sampling_ratio=sampling,
        aligned=aligned,
    )
    assert not out[:4].any() and np.isfinite(out).all()
    np.testing.assert_allclose(out[4], 1.0)  # inside the map: every sample is 1
    assert out[5, :, 0, 0].min() > 0.0  # a box far past the map: its first bin reads it


@pytest.mark.parametrize("aligned", [True, False])
@pytest.mark.parametrize("sampling", [0, 1, 2])
@pytest.mark.parametrize("stride", [1, 4, 64, 2048])
def test_the_outside_box_pools_zeros_at_any_stride(aligned: bool, sampling: int, stride: int) -> None:
    """What every other implementation relies on: OUTSIDE_ROI's point box is so far outside a
    map of stride up to 2048 that all its samples are zero (legacy mode grows it to a cell)."""
    ones = np.ones((1, 1, 4, 4), np.float32)
    out = ra(
        ones,
        [OUTSIDE_ROI] * 4,
        output_size=7,
        spatial_scale=1 / stride,
        sampling_ratio=sampling,
        aligned=aligned,
    )
    assert out.shape == (1, 1, 7, 7) and not out.any()
