"""Reading Linux's /proc and /sys, where the other edge modules need it."""

from __future__ import annotations

import contextlib
from pathlib import Path


def sysfs_text(path: str | Path) -> str | None:
    """A sysfs or procfs file's text, stripped; None where it cannot be read (a device
    unplugged meanwhile, an attribute its driver lacks)."""
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def stat_fields(path: str | Path) -> list[str]:
    """The fields of a /proc/PID/stat (or /proc/PID/task/TID/stat) file after the command
    name, so ``[0]`` is the state (proc(5)'s field 3) and ``[19]`` the start time (field 22).
    The name is in parentheses and may itself hold spaces and parentheses, so the fields
    begin after the last closing one. OSError where the file cannot be read (not Linux, the
    process gone); IndexError for text that is not a stat line."""
    text = Path(path).read_text()
    if ")" not in text:
        raise IndexError(f"{path} holds no stat line: {text[:80]!r}")
    return text.rsplit(")", 1)[1].split()


def thread_states(pid: int | str = "self") -> list[str]:
    """The state of each thread of process ``pid`` (``R``, ``S``, ``D``, ...); none where
    /proc does not say (not Linux, the process gone). A thread that ends while it is read
    is left out."""
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return []
    states = []
    for task in tasks:
        with contextlib.suppress(OSError, IndexError):
            states.append(stat_fields(task / "stat")[0])
    return states
