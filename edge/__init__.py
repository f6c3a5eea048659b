"""edge: an edge deployment runtime for driving perception."""

from __future__ import annotations

__version__ = "0.1.0"

from edge.errors import EdgeError

__all__ = ["EdgeError", "__version__"]
