"""The exporter's ONNX optimisation, less one rewrite rule that costs more than it does.

``torch.onnx.export(optimize=True)`` runs onnxscript's optimiser: constant folding plus a
set of pattern rewrites, twice over. One of those rules, ``SlicesSplit``, turns
``x[..., :n/2]`` and ``x[..., n/2:]`` into one Split. Its pattern has two outputs, and
matching it is slow: on panoptic_fpn_tiny it took 2.2 s of the 3.4 s of rewriting, on
2,236 attempts, and rewrote nothing. Without it the optimiser takes half the time or less on the
panoptic graphs (panoptic_fpn_r50: 9.5 s -> 3.8 s; ``export_optimizer_cpu.json``). It never
fires on edge's models: the optimised graphs of every zoo model are the same, byte for
byte, with and without it (``benchmarks/export_optimizer.py`` checks them all;
``tests/export/test_optimize.py`` checks the exported files).

Optimising after the export, rather than inside it, also drops one note: the exporter
names the graph's outputs after optimising and records each output's internal torch name
("pkg.torch.onnx.original_node_name"); optimised after the naming, the outputs lose that
note. Nodes, initializers and everything else are unchanged.

The rule set is a private tuple of onnxscript's, so it is set aside only while this module
optimises, under a lock, and only where it is found; elsewhere the optimiser runs whole.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

SKIPPED_RULES = ("SlicesSplit",)
_LOCK = threading.RLock()  # re-entrant: a nested without_rules finds the rules already set aside


def rule_name(rule: Any) -> str:
    return str(getattr(rule, "name", None) or type(rule).__name__)


@contextlib.contextmanager
def without_rules(names: tuple[str, ...] = SKIPPED_RULES) -> Iterator[tuple[str, ...]]:
    """While open, onnxscript's default rewrite rules lack those named ``names``; yields
    the names of the rules it set aside (none where onnxscript has no such rule set)."""
    with _LOCK:
        try:
            from onnxscript import rewriter
        except ImportError:
            yield ()
            return
        rules = getattr(rewriter, "_DEFAULT_REWRITE_RULES", None)
        if not isinstance(rules, tuple):
            yield ()
            return
        kept = tuple(r for r in rules if rule_name(r) not in names)
        rewriter._DEFAULT_REWRITE_RULES = kept
        try:
            yield tuple(rule_name(r) for r in rules if rule_name(r) in names)
        finally:
            rewriter._DEFAULT_REWRITE_RULES = rules


def optimize_program(program: Any) -> None:
    """Optimise a ``torch.onnx.ONNXProgram`` in place, as ``torch.onnx.export(optimize=True)``
    does, without the rules in SKIPPED_RULES."""
    with without_rules():
        program.optimize()
