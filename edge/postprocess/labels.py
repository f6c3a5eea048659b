"""Where an overlay's labels go, so that none hides another.

Each label is a rectangle that wants to sit on its thing's box, just above it. Things
close together (a car and the truck past it, people at the kerb) want the same places,
and labels written over each other say nothing. ``place_labels`` takes the labels in order
of importance (the overlay's: things warned of, then the nearest) and gives each the
first free place of a few beside its box: above it, inside its top, below it, or further
above; where none is free, the place it overlaps least. Every label stays in the picture.
"""

from __future__ import annotations

from collections.abc import Sequence

Rect = tuple[int, int, int, int]  # x, y (top left), width, height, pixels


def _overlap(a: Rect, b: Rect) -> int:
    """How many pixels the rectangles ``a`` and ``b`` share."""
    if a[0] >= b[0] + b[2] or b[0] >= a[0] + a[2] or a[1] >= b[1] + b[3] or b[1] >= a[1] + a[3]:
        return 0  # the usual case, cheaply: overlay runs this for every pair of labels
    w = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    h = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    return w * h


def _candidates(box: Sequence[float], size: tuple[int, int], shape: tuple[int, int]) -> list[Rect]:
    """The places a label of ``size`` (width, height) may take for ``box`` (x1, y1, x2, y2)
    in a picture of ``shape`` (height, width), best first, each moved into the picture."""
    w, h = size
    left, top, bottom = int(box[0]), int(box[1]), int(box[3])
    rows = (top - h, top, bottom, top - 2 * h, top - 3 * h)  # above, inside, below, higher
    x = min(max(left, 0), max(shape[1] - w, 0))
    return [(x, min(max(y, 0), max(shape[0] - h, 0)), w, h) for y in rows]


def place_labels(
    boxes: Sequence[Sequence[float]],
    sizes: Sequence[tuple[int, int]],
    shape: tuple[int, int],
    order: Sequence[int] | None = None,
) -> list[Rect]:
    """Each label's rectangle (x, y, width, height), in the order of ``boxes``: label i of
    ``sizes[i]`` (width, height) for the box ``boxes[i]`` (x1, y1, x2, y2) in a picture of
    ``shape`` (height, width). ``order``: the labels' indices, the one that chooses first
    first (default: as given); each takes its first candidate place that no label placed
    before it overlaps, else the one overlapped least."""
    if len(sizes) != len(boxes):
        raise ValueError(f"{len(sizes)} label sizes for {len(boxes)} boxes")
    order = range(len(boxes)) if order is None else order
    if sorted(order) != list(range(len(boxes))):
        raise ValueError(f"order must hold each of the {len(boxes)} labels once, got {list(order)}")
    placed: dict[int, Rect] = {}
    for i in order:
        options = _candidates(boxes[i], sizes[i], shape)
        free = (r for r in options if not any(_overlap(r, p) for p in placed.values()))
        # else the least overlapped: min keeps the earliest of equals
        placed[i] = next(free, None) or min(
            options, key=lambda r: sum(_overlap(r, p) for p in placed.values())
        )
    return [placed[i] for i in range(len(boxes))]
