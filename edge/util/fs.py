"""Atomic file writes, hashing and an exclusive build lock.

A crash or Ctrl-C never leaves a half-written file under its final name: content goes
to a temporary file in the same directory, is flushed to disk, then renamed over the
target (rename is atomic within one filesystem).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; on success it replaces ``target``."""
    from edge.util.interrupts import StepBoundary

    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp_path: Path | None = None
    try:
        # made and named at once: a Ctrl-C or SIGTERM between the two left a file no one knew
        # of; one that arrives here is raised as the block ends, inside the clean-up
        with StepBoundary():
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
            os.close(fd)
            tmp_path = Path(tmp)
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual mode
        os.replace(tmp_path, target)
    except OSError as exc:
        if exc.filename is not None or exc.errno is None:
            raise
        # a failed write names no file ("[Errno 28] No space left on device"): name the target
        raise type(exc)(exc.errno, exc.strerror, str(target)) from exc
    finally:
        if tmp_path is not None:
            with contextlib.suppress(FileNotFoundError):
                tmp_path.unlink()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(target: str | Path, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def atomic_torch_save(target: str | Path, obj: Any) -> None:
    """``torch.save`` ``obj`` atomically, with bytes that depend only on ``obj``.

    torch.save names the records inside its zip after the file it writes to, which for
    an atomic write is a random temporary name: equal weights saved twice hashed
    differently. Saved to a buffer they are named ``archive``.
    """
    import io

    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(target, buf.getvalue())


def atomic_write_json(target: str | Path, obj: Any) -> None:
    """``obj`` as strict JSON (RFC 8259), which other programs' readers take: a float that is
    not finite (the SNR of an engine's output equal to torch's is inf) is written null."""
    from edge.util.numbers import strict_dumps

    text = strict_dumps(obj, indent=2)
    atomic_write_bytes(target, (text + "\n").encode())


def atomic_write_with(target: str | Path, writer: Callable[[Path], None]) -> None:
    """Let ``writer`` produce the file at a temporary path, then move it into place."""
    with atomic_path(target) as tmp:
        writer(tmp)


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


@contextlib.contextmanager
def exclusive_lock(path: str | Path) -> Iterator[None]:
    """Block until no other process holds the lock file ``path`` (POSIX flock)."""
    import fcntl

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def nearest_existing(path: str | Path) -> Path:
    """``path``, or the nearest folder above it that exists (where it would be made): '/'
    or '.' at the latest."""
    p = Path(path)
    return next((a for a in (p, *p.parents) if a.exists()), Path("."))


# the kinds of file edge writes or reads: a folder argument ending in one is a file name given by mistake
FILE_SUFFIXES = frozenset(
    {".md", ".html", ".htm", ".json", ".jsonl", ".csv", ".txt", ".mp4", ".avi", ".mkv", ".mcap"}
    | {".png", ".jpg", ".jpeg", ".onnx", ".engine", ".plan", ".pt", ".pth", ".npz", ".npy", ".yaml"}
)


def output_path_problem(path: str | Path, *, folder: bool) -> str | None:
    """Why ``path`` cannot be written as an output file (or, with ``folder``, an output
    folder), or None if it can. Creates nothing, so a command can check every output it
    will write before it starts its work."""
    p = Path(path)
    if not folder and str(path).endswith(("/", os.sep)):  # Path("out/") would be the file "out"
        return f"{str(path)!r} names a folder (it ends in '/'); expected a file name"
    if folder and p.suffix.lower() in FILE_SUFFIXES and not p.exists():
        # `--report out/bench.md` made a folder named bench.md with the report inside it
        return (
            f"{str(p)!r} names a {p.suffix} file; expected a folder for edge to write its files in "
            f"(e.g. {str(p.with_suffix(''))!r})"
        )
    if p.exists():
        if folder and not p.is_dir():
            return f"{str(p)!r} is a file, not a folder"
        if not folder and p.is_dir():
            return f"{str(p)!r} is a folder; expected a file name"
        writable = p if folder else p.parent
    else:
        writable = nearest_existing(p)
        if not writable.is_dir():
            return f"{str(writable)!r} is a file, not a folder"
    if not os.access(writable, os.W_OK | os.X_OK):
        if _read_only(writable):  # no user may write there: say why, not "this user"
            return (
                f"{str(writable)!r} is on a read-only filesystem (mounted read-only, or made so by "
                "Linux after write errors, as from a failing SD card: see dmesg)"
            )
        return f"{str(writable)!r} is not writable by this user"
    return None


def _read_only(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def require_writable(path: str | Path, *, folder: bool, what: str) -> None:
    """ConfigError naming ``what`` when :func:`output_path_problem` finds one."""
    from edge.errors import ConfigError

    problem = output_path_problem(path, folder=folder)
    if problem:
        raise ConfigError(f"{what} {str(path)!r} cannot be written: {problem}")


def natural_key(path: Path) -> list[Any]:
    """Sort key that orders numbered files as people number them: frame_2 before frame_10."""
    # [0-9], not \d or isdigit(): those take digits int() reads differently or not at all ("²")
    return [
        int(part) if part.isascii() and part.isdigit() else part.lower()
        for part in re.split(r"([0-9]+)", path.name)
    ]
