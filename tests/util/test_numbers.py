from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from edge.util.numbers import counted, is_positive_number, json_ready


@pytest.mark.parametrize("value", [1, 0.5, 30, 1e-9, 1e300, np.float64(2.0)])
def test_finite_numbers_above_zero_count(value: object) -> None:
    assert is_positive_number(value)


@pytest.mark.parametrize(
    "value", [0, -1, -0.5, 0.0, math.inf, math.nan, -math.inf, True, False, "2", None, [2], Fraction(1, 2)]
)
def test_the_rest_do_not(value: object) -> None:
    # True is an int to Python; a flag passed for a rate or a share must not read as 1
    assert not is_positive_number(value)


def test_json_ready_makes_every_number_json_has_not_null() -> None:
    import json

    value = {
        "miou": 0.5,
        "per_class": {"bus": math.nan, "car": 0.75},
        "snr": [math.inf, -math.inf, 3],
        "n": (1, math.nan),
    }
    ready = json_ready(value)
    assert ready == {
        "miou": 0.5,
        "per_class": {"bus": None, "car": 0.75},
        "snr": [None, None, 3],
        "n": [1, None],
    }
    assert json.loads(json.dumps(ready, allow_nan=False)) == ready
    assert math.isnan(value["per_class"]["bus"])  # the value itself is left as it was
    assert json_ready(True) is True and json_ready("nan") == "nan" and json_ready(None) is None


def test_strict_dumps_writes_json_every_reader_takes() -> None:
    import json

    from edge.util.numbers import strict_dumps

    text = strict_dumps({"ttc_s": math.inf, "distance_m": math.nan, "box": (1.0, 2)}, indent=2)
    assert json.loads(text) == {"ttc_s": None, "distance_m": None, "box": [1.0, 2]}
    assert "\n  " in text  # json.dumps' own options pass through
    with pytest.raises(TypeError, match="not JSON serializable"):
        strict_dumps({"seen": {1, 2}})  # refused, not written as something a reader misreads


def test_counted_says_one_thing_and_many_things() -> None:
    assert [counted(n, "object") for n in (0, 1, 2)] == ["0 objects", "1 object", "2 objects"]
    assert counted(1, "matched object") == "1 matched object"
