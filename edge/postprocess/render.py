"""Overlays for people: class colours, instance outlines and labels; depth in colour."""

from __future__ import annotations

import functools
import math
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING

import numpy as np

from edge.data.cityscapes import PALETTE, TRAIN_CLASSES
from edge.postprocess.labels import place_labels
from edge.postprocess.panoptic import Instance, semantic_from_panoptic
from edge.postprocess.tracks import TTC_WARN_S as TTC_WARN_S  # where the overlay's callers had it

if TYPE_CHECKING:
    from edge.postprocess.tracks import TrackInfo

# a thing warned of (TrackInfo.warned: by default under TTC_WARN_S to arrive) is outlined in
# red, and a label says when a thing would arrive up to TTC_LABEL_S
TTC_LABEL_S = 10.0
_OUTLINE = (255, 255, 255)
_OUTLINE_WARN = (255, 48, 48)
_FONT, _FONT_SCALE = 0, 0.35  # cv2.FONT_HERSHEY_SIMPLEX; the scale at 256 rows, the default size
_BAND_ALPHA = 0.6  # how much a label's band hides the picture under it


def _channel_tables(rgb: np.ndarray) -> list[np.ndarray]:
    """A 256-entry RGB table as one table per channel, for rgb_lookup."""
    return [np.ascontiguousarray(rgb.reshape(256, 3)[:, c]) for c in range(3)]


def rgb_lookup(index: np.ndarray, tables: list[np.ndarray]) -> np.ndarray:
    """uint8 index image -> RGB through per-channel tables (_channel_tables). Three
    one-channel cv2.LUT calls and a merge take half the time of one three-channel lookup
    of the index merged three times."""
    import cv2

    rgb: np.ndarray = cv2.merge([cv2.LUT(index, table) for table in tables])
    return rgb


# train id -> colour; ids past the palette, void (255) too, are black
_PALETTE_LUTS = _channel_tables(np.concatenate([PALETTE, np.zeros((256 - len(PALETTE), 3), np.uint8)]))


def warned(track: TrackInfo) -> bool:
    """Whether a tracked thing is warned of (outlined red; the viewer's objects, marked;
    the warnings log): TrackInfo.warned, under its tracker's warn_within_s."""
    return track.warned


def overlay(
    image: np.ndarray,
    ids: np.ndarray,
    instances: Sequence[Instance],
    alpha: float = 0.45,
    depth: np.ndarray | None = None,
    distances: Sequence[tuple[float, float] | None] | None = None,
    tracks: Sequence[TrackInfo] | None = None,
) -> np.ndarray:
    """RGB image blended with the panoptic classes, instance outlines and labels; with a
    ``depth`` map each label also says how far the thing is (``object_distances``, or
    ``distances`` when already computed; with ``tracks``, its track's ``range_m``, the one
    the tracker worked from: read from the road, or scaled to the road's recent readings
    while its feet are hidden); with ``tracks`` (one per instance) its time to
    collision when under TTC_LABEL_S, and the things the tracks warn of (TrackInfo.warned:
    by default under TTC_WARN_S to arrive, unless known to pass beside the path) are
    outlined in red."""
    import cv2

    from edge.postprocess.objects import object_distances

    train = semantic_from_panoptic(ids)
    # table lookups and one masked copy: numpy's fancy indexing and where() cost 7x as much
    colors = rgb_lookup(train, _PALETTE_LUTS)
    out = cv2.addWeighted(image, 1.0 - alpha, colors, alpha, 0.0)
    cv2.copyTo(image, (train == 255).view(np.uint8), out)  # void pixels keep the image as it is
    if distances is None:
        distances = object_distances(instances, depth)
    if tracks is not None and len(tracks) != len(instances):
        raise ValueError(f"{len(tracks)} tracks for {len(instances)} instances")
    texts, warns, ranges = [], [], []
    for k, (inst, distance) in enumerate(zip(instances, distances, strict=True)):
        ttc = tracks[k].ttc_s if tracks is not None else None
        if tracks is not None and (tracked := tracks[k].range_m) is not None:
            distance = (tracked, tracked)
        y0, x0 = inst.offset
        contours, _ = cv2.findContours(
            inst.mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE, offset=(x0, y0)
        )
        warn = tracks is not None and warned(tracks[k])
        cv2.drawContours(out, contours, -1, _OUTLINE_WARN if warn else _OUTLINE, 2 if warn else 1)
        text = f"{TRAIN_CLASSES[inst.train_id].name} {inst.score:.2f}"
        if distance is not None:
            text += f" {distance[0]:.1f} m" if distance[0] < 10 else f" {distance[0]:.0f} m"
        if ttc is not None and ttc < TTC_LABEL_S:
            text += f" {ttc:.1f} s"
        texts.append(text)
        warns.append(warn)
        ranges.append(math.inf if distance is None else distance[0])
    _draw_labels(out, [inst.box for inst in instances], texts, warns, ranges)
    return out


def _draw_labels(
    out: np.ndarray,
    boxes: Sequence[Sequence[float]],
    texts: Sequence[str],
    warns: Sequence[bool],
    ranges: Sequence[float],
) -> None:
    """Each box's label, white on a dark band (red: a thing warned of) so it reads over any
    picture, where place_labels puts it: the things warned of choose first, then the
    nearest (``ranges``, m), so theirs sit on their boxes."""
    import cv2

    # larger pictures (engines of 512 or 1024 rows) get larger text, but less than in
    # proportion: the 256-row demo's labels are as large as its boxes allow
    scale = _FONT_SCALE * max(out.shape[0] / 256, 1.0) ** 0.5
    thickness = 1 if scale < 0.6 else 2
    sizes, baselines = [], []
    for text in texts:
        (w, h), baseline = cv2.getTextSize(text, _FONT, scale, thickness)
        sizes.append((w + 2, h + baseline + 2))
        baselines.append(baseline)
    order = sorted(range(len(texts)), key=lambda i: (not warns[i], ranges[i]))
    for i, (x, y, w, h) in enumerate(place_labels(boxes, sizes, out.shape[:2], order)):
        band = out[y : y + h, x : x + w]  # a view: blended in place
        shade = np.full_like(band, _OUTLINE_WARN) if warns[i] else band
        cv2.addWeighted(band, 1.0 - _BAND_ALPHA, shade, _BAND_ALPHA if warns[i] else 0.0, 0.0, dst=band)
        origin = (x + 1, y + h - 1 - baselines[i])
        cv2.putText(out, texts[i], origin, _FONT, scale, (255, 255, 255), thickness, cv2.LINE_AA)


def colorize_depth(depth: np.ndarray, min_depth: float = 0.1, max_depth: float = 100.0) -> np.ndarray:
    """Metres -> RGB (near = bright): depth_levels() through OpenCV's MAGMA colour map."""
    return rgb_lookup(depth_levels(depth, min_depth, max_depth), _magma_tables())


def depth_levels(depth: np.ndarray, min_depth: float = 0.1, max_depth: float = 100.0) -> np.ndarray:
    """0..255 per pixel, brighter nearer: floor(255 * clip((1/d - lo) / (hi - lo), 0, 1)),
    d the depth clipped to [min_depth, max_depth], lo and hi the 1st and 99th percentiles
    of 1/d on every fourth pixel of every fourth row. Inverse depth spreads the near range
    people care about; the per-frame stretch shows relative depth, which is what a viewer
    reads. Computed in float32: within one level of float64 arithmetic unless the frame
    is flat to a few parts in a million."""
    import cv2

    from edge.postprocess.objects import percentiles

    d = np.clip(depth, min_depth, max_depth, dtype=np.float32)
    inverse = np.reciprocal(d)  # the same values as OpenCV's divide, 3.6x quicker
    lo, hi = percentiles(inverse[::4, ::4].ravel(), (1, 99))
    scale = 255.0 / max(float(hi - lo), 1e-9)
    # OpenCV's saturating, rounding conversion, ~1.4x faster than numpy's steps at 512x1024.
    # Nearly 0.5 less makes the rounding a floor that float32's error (~1e-4 at 255) does
    # not push below an exact level; the offset comes first, as scaled first it would
    # cancel in float32 on an almost flat frame
    offset = inverse
    offset -= np.float32(lo)
    levels: np.ndarray = cv2.addWeighted(offset, scale, offset, 0.0, -0.499, dtype=cv2.CV_8U)
    return levels


@functools.cache
def _magma_tables() -> list[np.ndarray]:
    """OpenCV's MAGMA colour map as per-channel RGB tables for rgb_lookup."""
    import cv2

    bgr = cv2.applyColorMap(np.arange(256, dtype=np.uint8).reshape(256, 1), cv2.COLORMAP_MAGMA)
    return _channel_tables(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


def side_by_side(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    import cv2

    if right.shape[:2] != left.shape[:2]:
        right = cv2.resize(right, (left.shape[1], left.shape[0]), interpolation=cv2.INTER_NEAREST)
    return np.concatenate([left, right], axis=1)


def render_views(
    image: np.ndarray,
    panoptic_ids: np.ndarray | None,
    instances: Sequence[Instance],
    depth: np.ndarray | None,
    depth_range: tuple[float, float],
    views: Collection[str] = ("panoptic", "depth"),
    distances: Sequence[tuple[float, float] | None] | None = None,
    tracks: Sequence[TrackInfo] | None = None,
) -> dict[str, np.ndarray]:
    """What a viewer shows of one frame: ``panoptic`` (the overlay) and ``depth`` (in
    colour), each when its engine ran and it is one of ``views``. ``distances``: the
    instances' object_distances, when already computed; ``tracks``: theirs, for the
    overlay's times to collision."""
    drawn: dict[str, np.ndarray] = {}
    if panoptic_ids is not None and "panoptic" in views:
        drawn["panoptic"] = overlay(
            image, panoptic_ids, instances, depth=depth, distances=distances, tracks=tracks
        )
    if depth is not None and "depth" in views:
        drawn["depth"] = colorize_depth(depth, *depth_range)
    return drawn


def compose_views(views: dict[str, np.ndarray]) -> np.ndarray:
    """The views side by side, or the one view there is."""
    parts = list(views.values())
    return parts[0] if len(parts) == 1 else side_by_side(parts[0], parts[1])
