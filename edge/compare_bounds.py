"""``edge compare --min NAME=X`` and ``--max NAME=X``: what a comparison must keep, for a build
pipeline that refuses an INT8 or FP16 engine that drifted (exit status 1, and why)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from edge.errors import ConfigError


def _agreement(*keys: str) -> Callable[[dict[str, Any]], float | None]:
    def read(report: dict[str, Any]) -> float | None:
        value: Any = report["agreement"]
        for key in keys:
            value = (value or {}).get(key)
        return None if value is None else float(value)

    return read


# name: (what it is, how it is read from the report, the scale it is given in: percent or as is,
# the engines both builds must run for it)
METRICS: dict[str, tuple[str, Callable[[dict[str, Any]], float | None], float, tuple[str, ...]]] = {
    "pq": ("PQ", _agreement("panoptic", "all", "pq"), 100.0, ("panoptic",)),
    "pq_things": ("PQ of things", _agreement("panoptic", "things", "pq"), 100.0, ("panoptic",)),
    "pq_stuff": ("PQ of stuff", _agreement("panoptic", "stuff", "pq"), 100.0, ("panoptic",)),
    "miou": ("mIoU", _agreement("semantic", "miou"), 100.0, ("panoptic",)),
    "pixels_agree": ("pixels of the same class (%)", _agreement("pixels_agree"), 100.0, ("panoptic",)),
    "depth_abs_rel": ("depth AbsRel", _agreement("depth", "abs_rel"), 1.0, ("depth",)),
    "depth_delta1": ("depth d<1.25 (%)", _agreement("depth", "delta1"), 100.0, ("depth",)),
    "object_distance_abs_rel": (
        "objects' distance AbsRel",
        _agreement("object_distance", "abs_rel"),
        1.0,
        ("panoptic", "depth"),
    ),
    "speedup": ("speed-up (end to end, p50)", lambda r: r.get("speedup"), 1.0, ()),
}
IN_PERCENT = tuple(name for name, (_, _, scale, _) in METRICS.items() if scale == 100.0)


@dataclass(frozen=True, kw_only=True)
class Bound:
    """``metric`` kept at least (``at_least``) or at most ``limit``, in METRICS' scale (PQ 95)."""

    metric: str
    limit: float
    at_least: bool

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ConfigError(f"no metric {self.metric!r} to bound; there are: {', '.join(METRICS)}")

    @property
    def option(self) -> str:
        return f"--{'min' if self.at_least else 'max'} {self.metric}={self.limit:g}"

    def check(self, report: dict[str, Any]) -> dict[str, Any]:
        """This bound against ``report``: the value (None where not measured) and whether it held."""
        _, read, scale, _ = METRICS[self.metric]
        raw = read(report)
        value = None if raw is None or not math.isfinite(raw) else raw * scale
        held = value is not None and (value >= self.limit if self.at_least else value <= self.limit)
        return {
            "metric": self.metric,
            "bound": "min" if self.at_least else "max",
            "limit": self.limit,
            "value": value,
            "held": held,
        }


def check_measurable(bounds: Iterable[Bound], kinds: Iterable[str]) -> None:
    """Refuse, before any frame, a bound on what the two builds cannot both give (``kinds``: the
    engines both run)."""
    both = set(kinds)
    for b in bounds:
        needs = METRICS[b.metric][3]
        if not set(needs) <= both:
            have = " and ".join(sorted(both)) or "none"
            raise ConfigError(
                f"{b.option}: {b.metric} needs {' and '.join(needs)} engines in both builds; both run {have}"
            )


def check_bounds(bounds: Iterable[Bound], report: dict[str, Any]) -> list[dict[str, Any]]:
    return [b.check(report) for b in bounds]


def bound_lines(checked: list[dict[str, Any]]) -> list[str]:
    """A line each: kept or not, with the value."""
    lines = []
    for c in checked:
        what = METRICS[c["metric"]][0]
        option = f"--{c['bound']} {c['metric']}={c['limit']:g}"
        if c["value"] is None:
            lines.append(
                f"not kept: {what} was not measured (no engines of its kind, or nothing seen): {option}"
            )
        elif c["held"]:
            lines.append(f"kept: {what} {c['value']:.4g} ({option})")
        else:
            side = "under" if c["bound"] == "min" else "over"
            lines.append(f"not kept: {what} {c['value']:.4g}, {side} {option}")
    return lines


def bound_setting(at_least: bool) -> Callable[[str], Bound]:
    """The argparse type of ``--min NAME=X`` (``at_least``) or ``--max NAME=X``."""
    flag = "--min" if at_least else "--max"

    def parse(text: str) -> Bound:
        name, sep, value = text.partition("=")
        if not sep or name not in METRICS:
            raise argparse.ArgumentTypeError(
                f"expected NAME=X, NAME one of {', '.join(METRICS)}, got {text!r}"
            )
        try:
            limit = float(value)
        except ValueError:
            limit = math.nan
        if not math.isfinite(limit):
            raise argparse.ArgumentTypeError(f"{flag} {name}: expected a number, got {value!r}")
        if name in IN_PERCENT and not 0 <= limit <= 100:
            raise argparse.ArgumentTypeError(f"{flag} {name}: {name} is in percent, 0 to 100; got {value!r}")
        return Bound(metric=name, limit=limit, at_least=at_least)

    return parse
