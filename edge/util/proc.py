"""Reading Linux's /proc, where the other edge modules need it."""

from __future__ import annotations

from pathlib import Path


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
