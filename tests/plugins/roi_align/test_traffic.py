"""The memory-bandwidth bound of RoIAlign: golden values and a brute-force cross-check."""

from __future__ import annotations

import math

import numpy as np
import pytest

from plugins.roi_align.reference import assign_levels, multilevel_roi_align
from plugins.roi_align.traffic import compulsory_bytes, touched_pixels


def test_golden_single_roi() -> None:
    # 4x4 RoI, 2x2 bins, one sample per bin at y, x in {1, 3}: corners rows/cols {1, 2, 3, 4}
    px = touched_pixels(
        np.array([[0, 0, 4, 4]], np.float32),
        np.array([0]),
        [(8, 8)],
        output_size=2,
        spatial_scales=[1.0],
        sampling_ratio=1,
        aligned=False,
    )
    assert sorted(map(tuple, px[0][:, 1:].tolist())) == [(y, x) for y in range(1, 5) for x in range(1, 5)]
    kw = {"rois": 1, "channels": 3, "output_size": 2, "element_bytes": 4}
    # output 1*3*2*2*4 = 48 B; NCHW with W = 8 floats: one 32-byte sector per row and channel
    assert compulsory_bytes(px, [(8, 8)], layout="nchw", **kw) == 48 + 4 * 32 * 3
    # channels-last: each of the 16 pixels holds 3 floats, one sector
    assert compulsory_bytes(px, [(8, 8)], layout="channels_last", **kw) == 48 + 16 * 32
    with pytest.raises(ValueError, match="layout must be"):
        compulsory_bytes(px, [(8, 8)], layout="nhwc", **kw)


def test_edges_outside_and_empty() -> None:
    rois = np.array(
        [
            [100, 100, 110, 110],  # beyond the map: every sample farther than a pixel out
            [-1.5, -1.5, 0.5, 0.5],  # samples in (-1, 0): clamped to row and column 0
            [7, 7, 7, 7],  # empty, adaptive sampling: no samples at all
        ],
        np.float32,
    )
    px = touched_pixels(
        rois,
        np.array([0, 1, 0]),
        [(8, 8)],
        output_size=2,
        spatial_scales=[1.0],
        sampling_ratio=0,
        aligned=True,
    )
    assert sorted(map(tuple, px[0].tolist())) == [(1, 0, 0), (1, 0, 1), (1, 1, 0), (1, 1, 1)]


def brute_force(rois, bidx, shapes, scales, p, sampling, aligned):
    """Every corner of every sample, one at a time, by the reference's rules."""
    levels = assign_levels(rois, 2, 2 + len(shapes) - 1) - 2
    seen = [set() for _ in shapes]
    off = 0.5 if aligned else 0.0
    for roi, b, lvl in zip(rois, bidx, levels, strict=True):
        h, w = shapes[lvl]
        s = np.float32(scales[lvl])
        x1, y1 = roi[0] * s - off, roi[1] * s - off
        rw, rh = roi[2] * s - off - x1, roi[3] * s - off - y1
        if not aligned:
            rw, rh = max(rw, 1.0), max(rh, 1.0)
        gh = sampling or math.ceil(rh / p)
        gw = sampling or math.ceil(rw / p)
        for py in range(p):
            for px in range(p):
                for iy in range(gh):
                    for ix in range(gw):
                        y = y1 + py * (rh / p) + (iy + 0.5) * (rh / p) / gh
                        x = x1 + px * (rw / p) + (ix + 0.5) * (rw / p) / gw
                        if y < -1 or y > h or x < -1 or x > w:
                            continue
                        y0, x0 = min(int(max(y, 0)), h - 1), min(int(max(x, 0)), w - 1)
                        for yy in (y0, min(y0 + 1, h - 1)):
                            for xx in (x0, min(x0 + 1, w - 1)):
                                seen[lvl].add((int(b), yy, xx))
    return seen


@pytest.mark.parametrize("sampling,aligned", [(2, False), (0, True)])
def test_matches_brute_force_on_a_pyramid(sampling: int, aligned: bool) -> None:
    rng = np.random.default_rng(0)
    xy = rng.uniform(-30, 260, (60, 2))
    rois = np.concatenate([xy, xy + np.exp(rng.uniform(0, 5.5, (60, 2)))], 1).astype(np.float32)
    bidx = rng.integers(0, 2, 60)
    shapes = [(64 >> i, 64 >> i) for i in range(4)]
    scales = [1 / 4, 1 / 8, 1 / 16, 1 / 32]
    got = touched_pixels(
        rois, bidx, shapes, output_size=7, spatial_scales=scales, sampling_ratio=sampling, aligned=aligned
    )
    want = brute_force(rois, bidx, shapes, scales, 7, sampling, aligned)
    assert [set(map(tuple, g.tolist())) for g in got] == want
    assert sum(len(w) for w in want) > 500  # the RoIs really cover the pyramid
    # far fewer bytes than four corner reads per sample (what a cache-less kernel moves)
    kw = {"rois": 60, "channels": 8, "output_size": 7, "element_bytes": 4}
    bound = compulsory_bytes(got, shapes, layout="nchw", **kw)
    assert 60 * 8 * 49 * 4 < bound < 60 * 8 * 49 * 4 * (1 + 16)


def test_adaptive_grid_past_its_cap_golden() -> None:
    # 2e11 pixels square from the origin: bins of 2e11 / 7 pixels, MAX_GRID samples a bin along
    # each axis (ceil would be 2.9e10), 13.3 pixels apart; in bin 0 only the first, at 6.65,
    # lands on the 16x16 map: corners 6 and 7. An array of every sample would take 200 GiB.
    roi = np.array([[0, 0, 2e11, 2e11]], np.float32)
    kw = {"output_size": 7, "spatial_scales": [1.0], "sampling_ratio": 0, "aligned": False}
    px = touched_pixels(roi, np.array([0]), [(16, 16)], **kw)
    assert sorted(map(tuple, px[0].tolist())) == [(0, 6, 6), (0, 6, 7), (0, 7, 6), (0, 7, 7)]
    # the reference reads exactly those: a one-hot map, each pixel its own channel
    feat = np.eye(256, dtype=np.float32).reshape(1, 256, 16, 16)
    pooled = multilevel_roi_align([feat], roi, np.array([0]), mode="max", **kw)
    read = np.flatnonzero(pooled[0].max(axis=(1, 2)) > 0)
    assert sorted((int(c) // 16, int(c) % 16) for c in read) == [(6, 6), (6, 7), (7, 6), (7, 7)]


def test_non_finite_rois_read_nothing() -> None:
    rois = np.array([[0, 0, np.inf, 4], [np.nan, 0, 4, 4], [-3e38, -3e38, 3e38, 3e38], [0, 0, 4, 4]])
    kw = {"output_size": 2, "spatial_scales": [1.0], "sampling_ratio": 0, "aligned": False}
    px = touched_pixels(rois.astype(np.float32), np.zeros(4, np.int64), [(8, 8)], **kw)
    # the last RoI's alone: 2 samples a bin at 0.5, 1.5, 2.5, 3.5 (the third's size, 6e38,
    # overflows float32: its sample points are inf or NaN, off the map, as the reference's)
    assert sorted(map(tuple, px[0][:, 1:].tolist())) == [(y, x) for y in range(5) for x in range(5)]


def test_huge_adaptive_roi_matches_every_sample() -> None:
    # 7 * 2^20 pixels wide, its bins' edges a few pixels into a 16-wide map: the bisection
    # over the samples on the map against every one of the 7.3 million enumerated
    x1 = np.float32(-3 * 2**20 + 5)
    roi = np.array([[x1, x1, x1 + 7 * 2**20, x1 + 7 * 2**20]], np.float32)
    px = touched_pixels(
        roi, np.array([0]), [(16, 16)], output_size=7, spatial_scales=[1.0], sampling_ratio=0, aligned=True
    )
    start, size = x1 - np.float32(0.5), np.float32(7 * 2**20)
    grid = 2**20
    s = (np.arange(grid, dtype=np.float32) + np.float32(0.5)) * np.float32(2**20) / np.float32(grid)
    v = np.concatenate([(start + np.float32(i) * (size / 7)) + s for i in range(7)])
    v = v[(v >= -1) & (v <= 16)]
    lo = np.minimum(np.maximum(v, 0).astype(np.int64), 15)
    want = np.unique(np.concatenate([lo, np.minimum(lo + 1, 15)]))
    assert want.size > 5  # the edge of bin 3 really lies inside the map
    assert sorted(map(tuple, px[0][:, 1:].tolist())) == [(y, x) for y in want for x in want]
