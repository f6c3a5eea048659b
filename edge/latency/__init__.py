"""Per-stage latency tracking and export."""

from edge.latency.tracker import LatencyTracker

__all__ = ["LatencyTracker"]
