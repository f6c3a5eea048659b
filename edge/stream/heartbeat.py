"""A heartbeat file, for a run that no systemd watches: a container's HEALTHCHECK, a
Kubernetes liveness probe, a supervisor of one's own.

With ``--heartbeat FILE`` a run rewrites FILE at each of its looks at itself (every 5 s,
edge.stream.watchdog): when it was last seen making progress (what feeds systemd's
watchdog), its status line, and what is stuck. ``edge alive FILE`` says whether that was
within so many seconds, with the exit status a health check wants. Times are the kernel's
boot clock, which setting the wall clock (a board that syncs its time after boot) does not
move, and the file names the boot it was written in, so one from before a reboot is never
taken for fresh. The file is removed when the run ends; it is small and rewritten often,
so it belongs on a tmpfs (/run, /dev/shm), not on an SD card.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import sys
import threading
import time
from pathlib import Path
from typing import Any

from edge.errors import ConfigError
from edge.util.numbers import strict_dumps
from edge.util.proc import stat_fields

ALIVE_WITHIN_S = 30.0  # edge alive's default: as long as a hold takes to be called stuck


def boot_id() -> str:
    """This boot of the machine ('' where the kernel does not say)."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def clock() -> float:
    """Seconds on the boot clock (the wall clock where there is none)."""
    boottime = getattr(time, "CLOCK_BOOTTIME", None)
    return time.clock_gettime(boottime) if boottime is not None else time.time()


class Heartbeat:
    """FILE, rewritten at each ``beat``; removed at ``close``. Each write is made on a thread
    of its own and waited for WRITE_WAIT_S at most: the watch that beats also feeds systemd's
    watchdog, and a heartbeat on a disk that stops answering must not hold that up too."""

    WRITE_WAIT_S = 1.0  # a tmpfs takes microseconds

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        self._fed_at = clock()
        self._boot = boot_id()
        self._failed = False
        self._waiting = False  # said that a write waits for its disk
        self._writer: threading.Thread | None = None

    def beat(self, *, fed: bool, status: str, stuck: str | None = None) -> None:
        """Write the file; ``fed``: the run made progress since the last beat. While an
        earlier write still waits for its disk, the file is left as it is (it grows stale,
        which a health check calls dead)."""
        now = clock()
        if fed:
            self._fed_at = now
        content = {
            "pid": os.getpid(),
            "boot_id": self._boot,
            "fed_at": round(self._fed_at, 3),
            "written_at": round(now, 3),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "status": status,
            "stuck": stuck,
        }
        if self._writer is not None and self._writer.is_alive():
            if not self._waiting:
                self._waiting = True
                print(
                    f"warning: the heartbeat {self.path} has waited over {self.WRITE_WAIT_S:g} s for its "
                    "disk: it is not rewritten until that write ends, so a health check will call the "
                    "run dead (keep it on a tmpfs such as /run)",
                    file=sys.stderr,
                )
            return
        self._writer = threading.Thread(
            target=self._write, args=(content,), name="edge-heartbeat", daemon=True
        )
        self._writer.start()
        self._writer.join(timeout=self.WRITE_WAIT_S)

    def _write(self, content: dict[str, Any]) -> None:
        # renamed into place, so a check never reads half a file; not fsynced (atomic_path
        # is): it tells of this boot only, and an SD card would pay a flush every 5 s
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._temporary.write_text(strict_dumps(content) + "\n")
            os.replace(self._temporary, self.path)
        except OSError as exc:
            if not self._failed:  # the run goes on; a health check will call it dead
                self._failed = True
                print(f"warning: the heartbeat {self.path} cannot be written: {exc}", file=sys.stderr)
        self._waiting = False

    def close(self) -> None:
        """Remove the file, unless another run has written it since (it is that run's now)."""
        if self._writer is not None:
            self._writer.join(timeout=self.WRITE_WAIT_S)
        with contextlib.suppress(OSError):
            self._temporary.unlink()
        try:
            mine = read_heartbeat(self.path).get("pid") == os.getpid()
        except ConfigError:
            mine = False
        if mine:
            with contextlib.suppress(OSError):
                self.path.unlink()


def _running_since(pid: int, at: float) -> bool:
    """Whether process ``pid`` lives and started by ``at`` (on the boot clock), as the writer
    of a beat written then did: a container restarted with a new run whose pid an unrelated
    process now has is not refused."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        pass
    try:  # its start, in clock ticks after boot
        ticks = int(stat_fields(f"/proc/{pid}/stat")[19])
    except (OSError, IndexError, ValueError):
        return True  # not Linux: the pid alone says
    return ticks / os.sysconf("SC_CLK_TCK") <= at


def check_unshared(path: str | Path) -> None:
    """ConfigError when another run on this machine is writing heartbeat ``path`` now (its
    process lives, began before the beat, and wrote it within ALIVE_WITHIN_S): the two would
    overwrite each other's beats, so a health check would call a stuck run alive, and the
    first to end would remove the file. A file left by a run that died (the watchdog's kill,
    a power cut) is taken over."""
    try:
        beat = read_heartbeat(path)
    except ConfigError:
        return
    pid, written = beat.get("pid"), beat.get("written_at", beat["fed_at"])
    since = clock() - written
    if (
        beat.get("boot_id") == boot_id()
        and isinstance(pid, int)
        and pid != os.getpid()
        and since <= ALIVE_WITHIN_S
        and _running_since(pid, written)
    ):
        raise ConfigError(
            f"the heartbeat {str(path)!r} is being written by another run (pid {pid}, {max(since, 0):.0f} s "
            "ago): the two would overwrite each other's and the first to end would remove it; give "
            "each run a file of its own"
        )


def read_heartbeat(path: str | Path) -> dict[str, Any]:
    """A heartbeat file's content; ConfigError when it is missing or not one."""
    path = Path(path)
    try:
        content = json.loads(_read_regular(path))
    except FileNotFoundError:
        raise ConfigError(f"{path} does not exist: no run writes it (not started yet, or ended)") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path} cannot be read as an edge heartbeat: {exc}") from exc
    if not isinstance(content, dict) or not isinstance(content.get("fed_at"), (int, float)):
        raise ConfigError(f"{path} is not an edge heartbeat (no fed_at): {str(content)[:200]}")
    return content


def _read_regular(path: Path) -> str:
    """The text of ``path``, which must be a regular file: a health check that opened a FIFO
    (or a device) would wait on it for ever, and be killed as a hung check."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as file:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = "a FIFO" if stat.S_ISFIFO(mode) else "a folder" if stat.S_ISDIR(mode) else "not a file"
            raise OSError(f"it is {kind}, not a regular file")
        return file.read().decode()


def alive(path: str | Path, *, within_s: float = ALIVE_WITHIN_S) -> tuple[bool, str]:
    """Whether the run writing ``path`` made progress within ``within_s`` seconds, and a
    line that says so (its status) or why not (what is stuck, or how long since)."""
    try:
        beat = read_heartbeat(path)
    except ConfigError as exc:
        return False, str(exc)
    if beat.get("boot_id") != boot_id():
        return False, f"{path} was written before this machine last started (pid {beat.get('pid')})"
    now = clock()
    since = now - beat["fed_at"]
    if since <= within_s:
        return True, f"pid {beat.get('pid')}, progress {max(since, 0):.0f} s ago: {beat.get('status', '')}"
    written = now - beat.get("written_at", beat["fed_at"])
    why = f"stuck: {beat['stuck']}" if beat.get("stuck") else f"last written {written:.0f} s ago"
    return False, f"pid {beat.get('pid')} has made no progress for {since:.0f} s (over {within_s:g} s); {why}"
