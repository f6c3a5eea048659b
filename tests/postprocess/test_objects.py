from __future__ import annotations

import json

import numpy as np

from edge.postprocess.objects import describe_objects
from edge.postprocess.panoptic import Instance


def instance(
    mask: np.ndarray, offset: tuple[int, int], train_id: int = 13, score: float = 0.87654
) -> Instance:
    return Instance(
        panoptic_id=26000, train_id=train_id, score=score, box=(2.0, 1.0, 5.0, 3.0), mask=mask, offset=offset
    )


def test_distance_is_the_median_of_the_objects_own_pixels() -> None:
    depth = np.full((6, 8), 99.0, np.float32)  # everything else far away
    depth[1:3, 2:5] = [[1, 2, 3], [4, 5, 6]]
    mask = np.array([[True, True, True], [True, True, False]])  # 6 m is not the object's
    (obj,) = describe_objects([instance(mask, (1, 2))], depth)
    # median of 1..5 is 3; the 10th percentile interpolates 1 + 0.4 * (2 - 1)
    assert obj == {
        "id": 26000,
        "class": "car",
        "score": 0.8765,
        "box": [2.0, 1.0, 5.0, 3.0],
        "pixels": 5,
        "distance_m": 3.0,
        "nearest_m": 1.4,
    }
    json.dumps(obj)  # JSON-ready: plain Python numbers


def test_without_depth_or_pixels_there_is_no_distance() -> None:
    mask = np.ones((2, 3), bool)
    (obj,) = describe_objects([instance(mask, (0, 0), train_id=11)], None)
    assert obj["class"] == "person" and "distance_m" not in obj and obj["pixels"] == 6
    (empty,) = describe_objects([instance(np.zeros((2, 3), bool), (0, 0))], np.ones((4, 4), np.float32))
    assert empty["pixels"] == 0 and "distance_m" not in empty
    assert describe_objects([], None) == []
