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

import numpy as np

Rect = tuple[int, int, int, int]  # x, y (top left), width, height, pixels


def _candidates(boxes: np.ndarray, sizes: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """[label, place, (x1, y1, x2, y2)]: the places each label of ``sizes`` (width, height)
    may take for its box of ``boxes`` (x1, y1, x2, y2) in a picture of ``shape`` (height,
    width), best first: above the box, inside its top, below it, two and three heights
    above; each moved into the picture."""
    w, h = sizes[:, 0:1], sizes[:, 1:2]
    top, bottom = boxes[:, 1:2], boxes[:, 3:4]
    rows = np.concatenate([top - h, top, bottom, top - 2 * h, top - 3 * h], axis=1)
    y = np.clip(rows, 0, np.maximum(shape[0] - h, 0))
    x = np.broadcast_to(np.clip(boxes[:, 0:1], 0, np.maximum(shape[1] - w, 0)), y.shape)
    return np.stack([x, y, x + w, y + h], axis=2)


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
    order = list(range(len(boxes))) if order is None else list(order)
    if sorted(order) != list(range(len(boxes))):
        raise ValueError(f"order must hold each of the {len(boxes)} labels once, got {order}")
    if len(boxes) == 0:
        return []
    places = _candidates(
        np.asarray(boxes, np.float64).astype(np.int64), np.asarray(sizes, np.int64).reshape(-1, 2), shape
    )
    done = np.zeros((len(boxes), 4), np.int64)  # x1, y1, x2, y2 of the labels placed, in turn
    chosen: dict[int, Rect] = {}
    for n, i in enumerate(order):
        ours, theirs = places[i], done[:n]
        # each place's pixels shared with those placed: its columns' overlap times its rows'
        across = np.minimum(ours[:, None, 2], theirs[:, 2]) - np.maximum(ours[:, None, 0], theirs[:, 0])
        down = np.minimum(ours[:, None, 3], theirs[:, 3]) - np.maximum(ours[:, None, 1], theirs[:, 1])
        shared = (np.maximum(across, 0) * np.maximum(down, 0)).sum(axis=1)
        done[n] = ours[int(np.argmin(shared))]  # the first of the least: the first free place
        x1, y1, x2, y2 = (int(v) for v in done[n])
        chosen[i] = (x1, y1, x2 - x1, y2 - y1)
    return [chosen[i] for i in range(len(boxes))]
