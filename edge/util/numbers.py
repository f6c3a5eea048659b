"""What counts as a number where the API takes one: a rate, a share of turns."""

from __future__ import annotations

import math


def is_positive_number(value: object) -> bool:
    """Whether ``value`` is a finite int or float > 0. A bool is not one here: ``True``
    would pass for 1 where a flag was mistaken for a number."""
    return not isinstance(value, bool) and isinstance(value, int | float) and 0 < value < math.inf
