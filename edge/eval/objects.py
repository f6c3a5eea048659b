"""How far off each object's distance is: for every ground-truth thing that panoptic
matching pairs with a prediction (same class, IoU > 0.5), the predicted distance (median
predicted depth over the predicted segment, as ``objects.jsonl`` reports it) against the
true one (median ground-truth depth over the true segment's valid pixels).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from edge.eval.panoptic import EVAL_LABELS, FrameMatch

# the true-distance bands things found are counted in (m): near enough to brake for, the
# range a warning is due in at city speeds, and beyond
DISTANCE_BANDS_M = (10.0, 20.0, 40.0)


class SegmentPixels:
    """Where each of ``segments`` lies in the id map ``ids`` (its ``valid`` pixels only): one
    sort of the pixels whose ids lie within the segments' range, rather than a mask of the
    whole map for each segment (1024x2048 frames hold dozens of things), made once for
    every value read over them."""

    def __init__(self, ids: np.ndarray, segments: Iterable[int], valid: np.ndarray | None = None) -> None:
        wanted = sorted(set(segments))
        self.shape = ids.shape
        self._pick: np.ndarray | None = None
        self._order = np.empty(0, np.intp)
        self._bounds: list[tuple[int, int, int]] = []
        if not wanted:
            return
        pick = (ids >= wanted[0]) & (ids <= wanted[-1])
        if valid is not None:
            pick &= valid
        picked = ids[pick]
        self._pick, self._order = pick, np.argsort(picked, kind="stable")
        picked = picked[self._order]
        starts = np.searchsorted(picked, wanted, side="left").tolist()
        ends = np.searchsorted(picked, wanted, side="right").tolist()
        self._bounds = [(g, a, b) for g, a, b in zip(wanted, starts, ends, strict=True) if b > a]

    def values(self, image: np.ndarray) -> np.ndarray:
        """``image``'s values (a map of the ids' shape, or one that broadcasts to it) at these
        pixels, a segment after another: what ``reduce`` takes."""
        if self._pick is None:
            return np.empty(0, image.dtype)
        return np.broadcast_to(image, self.shape)[self._pick][self._order]

    def reduce(self, values: np.ndarray, reduce: Callable[[np.ndarray], Any]) -> dict[int, float]:
        """``reduce`` of ``values`` (from ``values()``, or computed from them pixel by pixel)
        over each segment; a segment without pixels has none."""
        return {g: float(reduce(values[a:b])) for g, a, b in self._bounds}

    def medians(self, image: np.ndarray) -> dict[int, float]:
        return self.reduce(self.values(image), np.median)


def segment_medians(
    ids: np.ndarray, values: np.ndarray, segments: Iterable[int], valid: np.ndarray | None = None
) -> dict[int, float]:
    """The median of ``values`` over each of ``segments`` in the id map ``ids`` (over its
    ``valid`` pixels); a segment without such pixels has none."""
    return SegmentPixels(ids, segments, valid).medians(values)


def true_pixels(
    gt_ids: np.ndarray, gt_depth: np.ndarray, things: Iterable[int], min_depth: float, max_depth: float
) -> SegmentPixels:
    """The ground-truth things' pixels with a depth within (min_depth, max_depth): what
    their true distances and offsets are read over."""
    return SegmentPixels(gt_ids, things, (gt_depth > min_depth) & (gt_depth < max_depth))


def true_distances(pixels: SegmentPixels, gt_depth: np.ndarray) -> dict[int, float]:
    """Each ground-truth thing's true distance: the median depth over its ``pixels``
    (true_pixels); a thing without such pixels has none."""
    return pixels.medians(gt_depth)


class TrueLateral(NamedTuple):
    """Where a ground-truth thing truly is across the path (true_lateral)."""

    offset_m: float  # its middle right of the axis: the median of its pixels' offsets
    in_path: bool  # some pixel of it within the path's half width
    gap_m: float  # how far its nearest pixel is beyond the path's edge (<= 0: in the path)


def true_lateral(
    pixels: SegmentPixels,
    gt_depth: np.ndarray,
    *,
    hfov_deg: float,
    path_half_width_m: float,
    mount_offset_m: float = 0.0,
) -> dict[int, TrueLateral]:
    """Each ground-truth thing's true offset from the camera's axis, for a camera of
    horizontal field of view ``hfov_deg``: the median over its ``pixels`` (true_pixels) of
    (u + 0.5 - w/2) / f x depth (f = w/2 / tan(hfov/2)), as ObjectTracker's lateral_m reads
    a box; whether it is truly in the path, some pixel of it within ``path_half_width_m``
    of the axis; and how far its nearest pixel is beyond the path's edge (the gap a cut-in's
    ``path_in_s`` is read from). ``mount_offset_m``: the camera's offset right of the
    vehicle's middle, added to each pixel's (the offsets and the path are then the vehicle's)."""
    w = pixels.shape[1]
    per_px = math.tan(math.radians(hfov_deg) / 2) / (w / 2)
    columns = ((np.arange(w, dtype=np.float32) + 0.5 - w / 2) * per_px)[None, :]
    offsets = pixels.values(columns) * pixels.values(gt_depth).astype(np.float32, copy=False)
    offsets += np.float32(mount_offset_m)
    middle = pixels.reduce(offsets, np.median)
    nearest = pixels.reduce(np.abs(offsets), np.min)
    return {
        g: TrueLateral(m, nearest[g] <= path_half_width_m, nearest[g] - path_half_width_m)
        for g, m in middle.items()
    }


def true_cut_by_sides(pixels: SegmentPixels) -> set[int]:
    """The ground-truth things whose ``pixels`` (true_pixels) reach the picture's left or
    right edge: the picture cuts them, so the middle of what shows is not theirs, and it
    moves towards the axis as they leave the picture."""
    w = pixels.shape[1]
    columns = pixels.values(np.arange(w)[None, :])
    left = pixels.reduce(columns, np.min)
    right = pixels.reduce(columns, np.max)
    return {g for g in left if left[g] <= 0 or right[g] >= w - 1}


class ObjectDistanceStats:
    def __init__(self, *, min_depth: float = 1e-3, max_depth: float = 80.0) -> None:
        self.min_depth, self.max_depth = min_depth, max_depth
        self._pred: list[float] = []
        self._gt: list[float] = []

    def add(
        self,
        matched: FrameMatch,
        pred_ids: np.ndarray,
        pred_depth: np.ndarray,
        gt_ids: np.ndarray,
        gt_depth: np.ndarray,
        *,
        truth: Mapping[int, float] | None = None,
    ) -> None:
        """One image, every map at the ground truth's size; ``matched`` as PanopticStats.add
        returns it. Things only (stuff has no distance); an object without valid
        ground-truth depth is skipped. ``truth``: the true distances (true_distances),
        where the caller has them already."""
        pairs = matched.thing_pairs
        if truth is None:
            things = {g for g, _ in pairs}
            truth = true_distances(
                true_pixels(gt_ids, gt_depth, things, self.min_depth, self.max_depth), gt_depth
            )
        pairs = [(g, p) for g, p in pairs if g in truth]
        predicted = segment_medians(pred_ids, pred_depth, {p for _, p in pairs})
        for g, p in pairs:
            self._gt.append(truth[g])
            self._pred.append(predicted[p])

    def results(self) -> dict[str, Any]:
        """distance_errors of the objects' predicted distances."""
        return distance_errors(self._pred, self._gt)


def distance_errors(pred: Sequence[float], true: Sequence[float]) -> dict[str, Any]:
    """How far off distances ``pred`` are from ``true`` (both m, pairwise): ``abs_rel`` (mean
    |d - g| / g), the median and 90th percentile of |d - g| in metres, and the share within
    10% of their true distance; {"objects": 0} for none."""
    if not len(true):
        return {"objects": 0}
    d, g = np.asarray(pred, float), np.asarray(true, float)
    err = np.abs(d - g)
    return {
        "objects": int(g.size),
        "abs_rel": float(np.mean(err / g)),
        "abs_err_m_p50": float(np.median(err)),
        "abs_err_m_p90": float(np.percentile(err, 90)),
        "within_10pct": float(np.mean(err / g < 0.1)),
    }


def band_names(edges: Sequence[float] = DISTANCE_BANDS_M) -> list[str]:
    """``<10 m``, ``10-20 m``, ..., ``>=40 m`` for ``edges`` 10, 20, 40."""
    inner = [f"{a:g}-{b:g} m" for a, b in itertools.pairwise(edges)]
    return [f"<{edges[0]:g} m", *inner, f">={edges[-1]:g} m"]


class RecallByDistance:
    """How many of the ground-truth things panoptic matching found (paired with a predicted
    segment of their class, IoU > 0.5), by class and by true distance band: what PQ's
    recognition quality hides, that near things are missed more than far ones, or the
    other way. Every thing PQ counts that has a true distance (true_distances) counts,
    those mostly hidden too, as PQ's misses do."""

    def __init__(self, *, edges: Sequence[float] = DISTANCE_BANDS_M) -> None:
        self.edges = tuple(edges)
        self._counts: dict[tuple[str, int], list[int]] = {}

    def add(self, matched: FrameMatch, truth: Mapping[int, float]) -> None:
        """One image: ``matched`` as PanopticStats.add returns it, ``truth`` its things' true
        distances (true_distances)."""
        found = {g for g, _ in matched.thing_pairs}
        for g, distance in truth.items():
            band = int(np.searchsorted(self.edges, distance, side="right"))
            counts = self._counts.setdefault((EVAL_LABELS[g // 1000].name, band), [0, 0])
            counts[0] += 1
            counts[1] += g in found

    def results(self) -> dict[str, Any]:
        """``bands``: their names; ``all`` and ``per_class`` (by name): for each band, how
        many things there were (``things``), how many were found and the share (``recall``,
        None where there were none)."""
        names = band_names(self.edges)

        def rows(counts: Mapping[int, list[int]]) -> list[dict[str, Any]]:
            out = []
            for band, name in enumerate(names):
                n, k = counts.get(band, (0, 0))
                out.append({"band": name, "things": n, "found": k, "recall": k / n if n else None})
            return out

        per_class: dict[str, dict[int, list[int]]] = {}
        total: dict[int, list[int]] = {}
        for (name, band), (n, k) in sorted(self._counts.items()):
            per_class.setdefault(name, {})[band] = [n, k]
            t = total.setdefault(band, [0, 0])
            t[0] += n
            t[1] += k
        return {
            "bands": names,
            "all": rows(total),
            "per_class": {name: rows(c) for name, c in per_class.items()},
        }
