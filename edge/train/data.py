"""Training batches rendered on the fly from synthetic drives (exact ground truth, no files)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from edge.data.cityscapes import THING_TRAIN_IDS, label_to_train_lut
from edge.data.synthetic import HORIZON, SyntheticDrive

_LUT = label_to_train_lut()
MIN_INSTANCE_PIXELS = 12
ZOOMED_SHARE = 0.5  # of the images, with zoom: the rest keep the camera's own view
# where a zoomed image puts the horizon, as a fraction of its height (the camera's: HORIZON):
# near a camera's, so that the road stays below and the sky above as the engines see them
ZOOM_HORIZON = (0.3, 0.6)


@dataclass
class Targets:
    boxes: torch.Tensor  # [N, 4] x1, y1, x2, y2 pixels
    classes: torch.Tensor  # [N] thing index 0..7
    masks: torch.Tensor  # [N, H, W] float 0/1


@dataclass
class Batch:
    images: torch.Tensor  # [B, 3, H, W] float 0..255
    sem: torch.Tensor  # [B, H, W] int64 train ids, 255 = ignore
    depth: torch.Tensor  # [B, H, W] float metres, 0 = none
    instances: list[Targets]


def targets_from_ids(instance_ids: np.ndarray) -> Targets:
    boxes, classes, masks = [], [], []
    for iid in np.unique(instance_ids[instance_ids >= 1000]):
        train_id = int(_LUT[iid // 1000])
        if train_id not in THING_TRAIN_IDS:
            continue
        mask = instance_ids == iid
        if mask.sum() < MIN_INSTANCE_PIXELS:
            continue
        ys, xs = np.nonzero(mask)
        boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
        classes.append(THING_TRAIN_IDS.index(train_id))
        masks.append(mask)
    h, w = instance_ids.shape
    return Targets(
        torch.tensor(np.array(boxes, np.float32).reshape(-1, 4)),
        torch.tensor(classes, dtype=torch.int64),
        torch.from_numpy(np.array(masks, np.float32).reshape(-1, h, w)),
    )


def batches(
    *,
    size: tuple[int, int],
    batch: int,
    seed: int = 0,
    frames_per_drive: int = 200,
    rng: np.random.Generator | None = None,
    lanes: Sequence[str] = ("centre",),
    cut_ins: int = 0,
    zoom: float = 1.0,
    more_sizes: Sequence[tuple[int, int]] = (),
    first: int = 0,
) -> Iterator[Batch]:
    """Endless batches; each image is a random frame of a random drive (seeded), seen from
    one of ``lanes`` (SyntheticDrive's ``lane``), drawn for each drive where there are
    several; with one, the batches are those drawn before lanes existed. ``cut_ins``: road
    users added to each drive that cross into the camera's path (SyntheticDrive's); they
    draw from a seed of their own, so the rest of each image is the same as without them.
    ``zoom`` (> 1): half the images are seen through a longer lens, up to ``zoom`` times
    the focal length (:func:`zoomed_view`), so that things are seen larger than the
    drives put them; 1 draws nothing for it. ``more_sizes``: the batches go through ``size``
    and these in turn (each batch one size; ``first``: the place in that turn the stream
    starts at, a resumed run's step), rendered at each, so that one model serves engines
    of each size; none, the batches are those drawn before there could be more.

    Everything random is drawn from ``rng`` (default: seeded with ``seed``) before a batch
    is yielded, so its state between batches is where the stream stands: a resumed run
    restores it and gets the batches the uninterrupted run would have had."""
    rng = np.random.default_rng(seed) if rng is None else rng
    sizes = (size, *more_sizes)
    for k in itertools.count(first):
        shape = sizes[k % len(sizes)]
        imgs, sems, depths, insts = [], [], [], []
        for _ in range(batch):
            seed = int(rng.integers(1 << 30))
            lane = lanes[int(rng.integers(len(lanes)))] if len(lanes) > 1 else lanes[0]
            scale, at = zoomed_view(rng, zoom) if zoom > 1.0 else (1.0, (0.5, 0.5))
            view = _Window.of(shape, scale, at)
            drive = SyntheticDrive(
                height=view.full[0], width=view.full[1], seed=seed, lane=lane, cut_ins=cut_ins
            )
            gt = drive.render(int(rng.integers(frames_per_drive)))
            image, labels, inst, depth = (
                view.crop(a) for a in (gt.image, gt.label_ids, gt.instance_ids, gt.depth)
            )
            if rng.uniform() < 0.5:  # mirror: the road scene is left-right symmetric
                image, labels, inst, depth = (
                    np.ascontiguousarray(a[:, ::-1]) for a in (image, labels, inst, depth)
                )
            imgs.append(torch.from_numpy(image.transpose(2, 0, 1).astype(np.float32)))
            sems.append(torch.from_numpy(_LUT[labels].astype(np.int64)))
            depths.append(torch.from_numpy(depth))
            insts.append(targets_from_ids(inst))
        yield Batch(torch.stack(imgs), torch.stack(sems), torch.stack(depths), insts)


def zoomed_view(rng: np.random.Generator, zoom: float) -> tuple[float, tuple[float, float]]:
    """One image's lens: with probability ZOOMED_SHARE a focal length 1 to ``zoom`` times
    the camera's (log-uniform, so each doubling is as likely), else the camera's; and where
    its window lies in the camera's view, as fractions (top, left) of the room there is.

    The drive is rendered that much larger and the window cut from it: the same world
    through a longer lens, with exact ground truth, not an upscaled image. The window's
    left is uniform; its top puts the horizon at a fraction of the image's height drawn from
    ZOOM_HORIZON, or as near as the larger image allows."""
    if rng.uniform() >= ZOOMED_SHARE:
        return 1.0, (0.5, 0.5)
    scale = float(np.exp(rng.uniform(0.0, np.log(zoom))))
    horizon = float(rng.uniform(*ZOOM_HORIZON))
    left = float(rng.uniform())
    if scale <= 1.0 + 1e-9:
        return 1.0, (0.5, 0.5)
    # top (in the rendered image's rows) that puts its horizon, row HORIZON * H * scale, at
    # ``horizon`` of the window: as a fraction of the room, clipped to the image
    top = (HORIZON * scale - horizon) / (scale - 1.0)
    return scale, (min(max(top, 0.0), 1.0), left)


@dataclass(frozen=True)
class _Window:
    full: tuple[int, int]  # the rendered size
    top: int
    left: int
    size: tuple[int, int]

    @classmethod
    def of(cls, size: tuple[int, int], scale: float, at: tuple[float, float]) -> _Window:
        h, w = size
        fh, fw = max(h, round(h * scale)), max(w, round(w * scale))
        return cls((fh, fw), round((fh - h) * at[0]), round((fw - w) * at[1]), size)

    def crop(self, a: np.ndarray) -> np.ndarray:
        if self.full == self.size:
            return a
        h, w = self.size
        return np.ascontiguousarray(a[self.top : self.top + h, self.left : self.left + w])
