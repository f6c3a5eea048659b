"""Each detected thing with its distance: the instance masks laid over the depth map.

The median depth of an object's own pixels is its distance; the 10th percentile is how
near its nearest part is (a car seen at an angle, a person's outstretched arm) without
trusting the few mask pixels that spill onto the road in front of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from edge.data.cityscapes import TRAIN_CLASSES
from edge.postprocess.panoptic import Instance
from edge.postprocess.tracks import TrackInfo

NEAR_PERCENTILE = 10


def object_distance(inst: Instance, depth: np.ndarray) -> tuple[float, float] | None:
    """(distance, nearest) in metres: the median and the 10th percentile of ``depth`` over
    the instance's own pixels where it is finite; None when it has none. (A depth engine
    that overflows, FP16 or INT8 built wrong, gives NaN or inf: such a pixel says nothing,
    and a NaN distance would pass for a thing beside the path, and be no JSON number.)"""
    y0, x0 = inst.offset
    h, w = inst.mask.shape
    values = depth[y0 : y0 + h, x0 : x0 + w][inst.mask]
    values = values[np.isfinite(values)]
    if not values.size:
        return None
    median, near = percentiles(values, (50, NEAR_PERCENTILE))
    return median, near


def percentiles(values: np.ndarray, qs: Sequence[float]) -> list[float]:
    """np.percentile(values, qs) of finite values, to the last bit, by one partial sort
    instead of numpy's general path (5x quicker on an object's few thousand pixels)."""
    values = values.ravel()
    n = values.size
    if not n:
        raise ValueError("percentiles of no values")
    at = [q / 100 * (n - 1) for q in qs]
    lows = [int(np.floor(v)) for v in at]
    kth = sorted({k for lo in lows for k in (lo, min(lo + 1, n - 1))})
    part = np.partition(values, kth)
    out = []
    for v, lo in zip(at, lows, strict=True):
        hi, t = min(lo + 1, n - 1), v - lo
        # numpy's linear interpolation: the difference in the values' own dtype, and from
        # the upper neighbour when t >= 0.5
        diff = float(part[hi] - part[lo])
        out.append(float(part[hi]) - diff * (1 - t) if t >= 0.5 else float(part[lo]) + diff * t)
    return out


def object_distances(
    instances: Sequence[Instance], depth: np.ndarray | None
) -> list[tuple[float, float] | None]:
    """``object_distance`` of each instance (all None without a depth map), computed once
    for a frame's overlay labels and its objects records alike."""
    return [object_distance(inst, depth) if depth is not None else None for inst in instances]


def describe_objects(
    instances: Sequence[Instance],
    depth: np.ndarray | None,
    distances: Sequence[tuple[float, float] | None] | None = None,
    tracks: Sequence[TrackInfo] | None = None,
) -> list[dict[str, Any]]:
    """One JSON-ready record per instance: ``id`` (its panoptic id), ``class``, ``score``,
    ``box`` [x1, y1, x2, y2] and ``pixels`` in the engines' picture of the frame (their input,
    or with --fit pad the frame's part of it: objects_line's ``size``), and with a depth
    map ``distance_m`` (median over its pixels) and ``nearest_m`` (``distances``, when
    already computed by object_distances). With ``tracks`` (edge.postprocess.tracks, one
    per instance) ``track``, ``track_frames`` and ``track_age_s``, and with depth too
    ``closing_mps`` and ``ttc_s`` (null until known)."""
    if distances is None:
        distances = object_distances(instances, depth)
    if tracks is not None and len(tracks) != len(instances):
        raise ValueError(f"{len(tracks)} tracks for {len(instances)} instances")
    objects = []
    for k, (inst, distance) in enumerate(zip(instances, distances, strict=True)):
        record: dict[str, Any] = {
            "id": inst.panoptic_id,
            "class": TRAIN_CLASSES[inst.train_id].name,
            "score": round(float(inst.score), 4),
            "box": [round(float(v), 1) for v in inst.box],
            "pixels": int(inst.mask.sum()),
        }
        if distance is not None:
            record["distance_m"] = round(distance[0], 3)
            record["nearest_m"] = round(distance[1], 3)
        if tracks is not None:
            moving = tracks[k].to_json()
            if depth is None:  # no distances: nothing closes in
                del moving["closing_mps"], moving["ttc_s"], moving["warned"]
            record.update(moving)
        objects.append(record)
    return objects
