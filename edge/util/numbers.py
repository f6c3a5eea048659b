"""What counts as a number where the API takes one: a rate, a share of turns; and numbers
as JSON files for other programs can take them."""

from __future__ import annotations

import json
import math
from typing import Any


def is_positive_number(value: object) -> bool:
    """Whether ``value`` is a finite int or float > 0. A bool is not one here: ``True``
    would pass for 1 where a flag was mistaken for a number."""
    return not isinstance(value, bool) and isinstance(value, int | float) and 0 < value < math.inf


def counted(n: int, noun: str) -> str:
    """``n`` and ``noun``, made plural (an ``s``) unless ``n`` is 1: "1 object", "3 objects"."""
    return f"{n} {noun}" + ("" if n == 1 else "s")


def json_ready(value: Any) -> Any:
    """``value`` (dicts, lists and tuples of them, as deep as they go) with every float that is
    not finite made None: JSON (RFC 8259) has no NaN or Infinity, which Python's json writes
    and reads but a browser's, jq's or most other languages' readers refuse. A metric of a
    class no frame showed is NaN to edge's evaluation and null in its files."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    return value


def strict_dumps(value: Any, **kwargs: Any) -> str:
    """``value`` as strict JSON text (json_ready, and refused if anything else is not JSON):
    what edge writes for other programs, in files, lines and the viewer's endpoints. Each
    frame's objects line comes here: json_ready's walk (as long again as the dump) is taken
    only where the dump met a number that is not finite."""
    try:
        return json.dumps(value, allow_nan=False, **kwargs)
    except ValueError:  # "Out of range float values are not JSON compliant"
        return json.dumps(json_ready(value), allow_nan=False, **kwargs)
