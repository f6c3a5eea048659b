"""What the benchmark scripts' result files share: the machine and the writing."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any


def machine() -> dict[str, Any]:
    """The CPU a result was measured on, as the result files record it."""
    from edge.platform_info import cpu_model, cpu_vector_extensions

    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "vector_extensions": cpu_vector_extensions(),
        "python": platform.python_version(),
    }


def write_result(path: Path, report: dict[str, Any]) -> None:
    """The result file, its folder made if needed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1) + "\n")
