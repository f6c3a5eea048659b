"""The hidden partial file a video or JSON-lines sink writes, renamed into place when done.

A run that dies before it finishes (kill -9, the power cut when a car is switched off)
leaves its partial file behind, and the next run to the same name would truncate it. An
mkv or avi partial plays up to about the last frame written and a JSON-lines partial holds
whole lines, so a leftover one is moved aside, under a name that says so, with a warning.
An mp4 is kept too, though it does not play: its index is written when it is finished.
The capture times a stamped video wrote as it went (edge.stream.timestamps.TimesFile) are
kept beside it.

While a sink writes its partial file it holds a lock on it (flock), so that the leftover
of a dead run is told from the file of a run still writing, and a second process writing
the same file is refused before it garbles the first's.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import sys
from collections.abc import Callable
from pathlib import Path

from edge.errors import SinkError
from edge.stream.timestamps import drop_cut_line, timestamps_path


def partial_path(path: Path) -> Path:
    """Where a sink writes ``path`` until it is finished: ``.drive.partial.mp4``."""
    return path.with_name(f".{path.stem}.partial{path.suffix}")


def _try_lock(fd: int) -> bool:
    """False when another process holds the lock; True when it is ours, or when the
    filesystem has no locks (some network mounts: ENOLCK), where writing goes on unlocked."""
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError:
        return True
    return True


def _held_elsewhere(uri: str, partial: Path) -> SinkError:
    return SinkError(
        f"sink {uri!r}: another process is writing {str(partial)!r} (the same output); give this "
        "run another name, or stop that one first"
    )


def interrupted_name(path: Path, when: float) -> Path:
    """A free name beside ``path`` for a partial file left at ``when`` (a timestamp):
    ``drive.interrupted-20261202-213005.mkv``."""
    stamp = datetime.datetime.fromtimestamp(when).strftime("%Y%m%d-%H%M%S")
    for n in range(1000):
        name = f"{path.stem}.interrupted-{stamp}{f'-{n}' if n else ''}{path.suffix}"
        if not (path.parent / name).exists():
            return path.parent / name
    raise SinkError(f"1000 interrupted recordings of {str(path)!r} from {stamp}: remove some")


def rescue_leftover(uri: str, path: Path, *, as_itself: bool = False) -> Path | None:
    """Move aside the partial file a dead run left for ``path``, saying so, with the capture
    times written beside it; the name it now has, or None when there was none (or only an
    empty one). SinkError when a live process is writing it. ``as_itself``: keep it under
    ``path`` itself (a segment: its numbered name is its own, and it stays one of the
    recording's segments) rather than as ``….interrupted-….ext``."""
    partial = partial_path(path)
    times = timestamps_path(partial)
    try:
        fd = os.open(partial, os.O_RDONLY)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise SinkError(f"sink {uri!r}: cannot read {str(partial)!r}: {exc.strerror or exc}") from exc
    try:
        if not _try_lock(fd):
            raise _held_elsewhere(uri, partial)
        kept = _keep(path, partial, times, fd, as_itself=as_itself)
    except OSError as exc:  # a disk gone read-only: the dead run's file stays where it is
        raise SinkError(
            f"sink {uri!r}: cannot keep {str(partial)!r}, left by a run that did not finish: "
            f"{exc.strerror or exc}"
        ) from exc
    finally:
        os.close(fd)
    if kept is None:
        return None
    print(
        f"warning: sink {uri!r}: {str(partial)!r} was left by a run that did not finish (killed, or the "
        f"power lost); it is kept as {str(kept)!r}{_playable_note(kept)}",
        file=sys.stderr,
    )
    return kept


def _keep(path: Path, partial: Path, times: Path, fd: int, *, as_itself: bool) -> Path | None:
    """rescue_leftover's moves, ``fd`` the partial file, locked; None for an empty one."""
    stat = os.fstat(fd)
    if stat.st_size == 0:  # a run that died before its first frame: nothing to keep
        partial.unlink()
        with contextlib.suppress(FileNotFoundError):
            times.unlink()
        return None
    if not times.exists() and not path.exists() and timestamps_path(path).exists():
        times = timestamps_path(path)  # killed between moving the times into place and the video
    kept = path if as_itself and not path.exists() else interrupted_name(path, stat.st_mtime)
    if times.exists() and not drop_cut_line(times):
        times.unlink()  # not one whole time in it: the video is kept without
    if times.exists():  # before the video, as a finished one has its times when in place
        os.replace(times, timestamps_path(kept))
    os.replace(partial, kept)
    return kept


def _playable_note(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".mp4":
        return f" (an mp4 does not play unless it was finished: {MP4_RISK})"
    if suffix == ".jsonl":
        return " (its lines are whole)"
    if suffix == ".mcap":
        return " (an MCAP file's index is written last: mcap recover reads what it holds)"
    return " (it plays up to about where that run stopped)"


# why a camera is better recorded to .mkv
MP4_RISK = (
    "its index is written last, so a killed run or a power cut loses all of it; an mkv keeps what was written"
)


class PartialLock:
    """The lock a sink holds on its partial file from its first write until it is renamed
    into place or removed."""

    def __init__(self, *, uri: str, partial: Path, refused: Callable[[OSError, str], SinkError]) -> None:
        """``refused(exc, what)``: the error for a create the system refused, as the sink's
        DiskRoom says it (a disk gone read-only stops the sink)."""
        self.uri, self.partial = uri, partial
        self._refused = refused
        self._fd: int | None = None

    def take(self) -> None:
        """Create the partial file (empty) and lock it; SinkError if another process holds it
        or the system refuses it."""
        if self._fd is not None:
            return
        try:
            self.partial.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.partial, os.O_WRONLY | os.O_CREAT, 0o666)
        except OSError as exc:
            raise self._refused(exc, f"cannot create {str(self.partial)!r}") from exc
        if not _try_lock(fd):
            os.close(fd)
            raise _held_elsewhere(self.uri, self.partial)
        self._fd = fd

    def release(self) -> None:
        """Let go of the lock (after the rename: the lock is on the file, whatever its name)."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None
