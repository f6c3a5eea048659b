"""Argument types shared by edge's commands (each names what it expected and what it got), and
the arguments more than one command takes."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path

from edge.util.fs import output_path_problem


def _whole(text: str, at_least: int, expected: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = at_least - 1
    if value < at_least:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    return _whole(text, 1, "a positive integer")


def count(text: str) -> int:
    return _whole(text, 0, "a whole number >= 0")


def finite_number(text: str, what: str = "a number") -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected {what} (finite), got {text!r}")
    return value


def positive_number(unit: str | None = None) -> Callable[[str], float]:
    """A type for a finite number > 0 (of ``unit``)."""
    of = f" of {unit}" if unit else ""

    def parse(text: str) -> float:
        if not finite_number(text, what=f"a number{of}") > 0:
            raise argparse.ArgumentTypeError(f"expected a positive number{of}, got {text!r}")
        return float(text)

    return parse


positive_seconds = positive_number("seconds")


_DURATION_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0}


def duration(text: str) -> float:
    """Seconds from ``300``, ``90s``, ``5m``, ``1.5h``: a finite number > 0."""
    body = text.strip().lower()
    unit = body[-1:] if body[-1:] in ("s", "m", "h") else ""
    number = body[: len(body) - len(unit)]
    try:
        value = float(number) * _DURATION_UNITS[unit]
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a duration such as 300, 90s, 5m or 1.5h, got {text!r}")
    return value


def non_negative_seconds(text: str) -> float:
    value = finite_number(text, what="a number of seconds")
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds >= 0, got {text!r}")
    return value


def percentile(text: str) -> float:
    value = finite_number(text, what="a percentile")
    if not 0 < value <= 100:
        raise argparse.ArgumentTypeError(f"expected a percentile in (0, 100], got {text!r}")
    return value


def _output(text: str, *, folder: bool) -> Path:
    problem = output_path_problem(text, folder=folder) if text else "an empty path"
    if problem:
        raise argparse.ArgumentTypeError(f"cannot write {text!r}: {problem}")
    return Path(text)


def output_file(text: str) -> Path:
    """A file edge will write: checked before any work starts, created later."""
    return _output(text, folder=False)


def output_folder(text: str) -> Path:
    """A folder edge will write into: checked before any work starts, created later."""
    return _output(text, folder=True)


def byte_size(text: str) -> int:
    """A size in bytes: 64M, 1.5G, 512K, 0 (binary units)."""
    from edge.stream.disk import parse_bytes

    try:
        return parse_bytes(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_fit_argument(p: argparse.ArgumentParser) -> None:
    from edge.stream.fit import FITS

    p.add_argument(
        "--fit",
        choices=FITS,
        default="stretch",
        help="frames of another shape than the engines': stretch them to the engines' input, or pad "
        "them (scaled whole, centred, the outputs cropped back to the frame), for engines that cannot "
        "be rebuilt at the frames' shape; default: %(default)s",
    )
