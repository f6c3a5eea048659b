"""Cityscapes' 19 train classes: names, label ids, colours, things vs stuff."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TrainClass:
    train_id: int
    label_id: int  # Cityscapes labelId, used in panoptic ids label_id*1000+instance
    name: str
    color: tuple[int, int, int]  # RGB
    thing: bool


TRAIN_CLASSES: tuple[TrainClass, ...] = (
    TrainClass(0, 7, "road", (128, 64, 128), False),
    TrainClass(1, 8, "sidewalk", (244, 35, 232), False),
    TrainClass(2, 11, "building", (70, 70, 70), False),
    TrainClass(3, 12, "wall", (102, 102, 156), False),
    TrainClass(4, 13, "fence", (190, 153, 153), False),
    TrainClass(5, 17, "pole", (153, 153, 153), False),
    TrainClass(6, 19, "traffic light", (250, 170, 30), False),
    TrainClass(7, 20, "traffic sign", (220, 220, 0), False),
    TrainClass(8, 21, "vegetation", (107, 142, 35), False),
    TrainClass(9, 22, "terrain", (152, 251, 152), False),
    TrainClass(10, 23, "sky", (70, 130, 180), False),
    TrainClass(11, 24, "person", (220, 20, 60), True),
    TrainClass(12, 25, "rider", (255, 0, 0), True),
    TrainClass(13, 26, "car", (0, 0, 142), True),
    TrainClass(14, 27, "truck", (0, 0, 70), True),
    TrainClass(15, 28, "bus", (0, 60, 100), True),
    TrainClass(16, 31, "train", (0, 80, 100), True),
    TrainClass(17, 32, "motorcycle", (0, 0, 230), True),
    TrainClass(18, 33, "bicycle", (119, 11, 32), True),
)
THING_TRAIN_IDS: tuple[int, ...] = tuple(c.train_id for c in TRAIN_CLASSES if c.thing)
PALETTE = np.array([c.color for c in TRAIN_CLASSES], dtype=np.uint8)
LABEL_IDS = np.array([c.label_id for c in TRAIN_CLASSES], dtype=np.int32)


def thing_to_train_id(thing_index: int) -> int:
    """The instance head's class index (0..7) as a Cityscapes train id (11..18)."""
    return THING_TRAIN_IDS[thing_index]
