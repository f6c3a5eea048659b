"""What a recording has written reaches the disk, not only the kernel's cache.

Linux writes a file's pages back up to 30 s after they were written
(vm.dirty_expire_centisecs), so a power cut (the car switched off) would lose the last
half minute that the process had long since written: the end of the file being written,
and segments already finished and renamed into place, which may come back empty. So a
sink's partial file is flushed to the disk (fsync) every ``SYNC_EVERY_S`` seconds on a
thread of its own, since an SD card's fsync can take a quarter of a second that the
writing thread must not wait for; and a finished file is flushed before it is renamed
into place, and its folder after, so that the new name is on the disk too.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

SYNC_EVERY_S = 2.0


def sync_file(path: Path) -> None:
    """Flush ``path``'s written pages to the disk. A file that is gone (renamed meanwhile),
    or a filesystem that cannot (EINVAL), is passed over: this only narrows what a power
    cut loses, and must never stop a recording."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def sync_folder(folder: Path) -> None:
    """Flush ``folder``'s entries (a file renamed into it) to the disk."""
    sync_file(folder)


class Syncer:
    """Flushes the files ``paths()`` names every ``every_s`` seconds until ``stop``."""

    def __init__(self, paths: Callable[[], Iterable[Path]], *, every_s: float | None = None) -> None:
        self._paths = paths
        self._every_s = SYNC_EVERY_S if every_s is None else every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="edge-sync", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._every_s):
            for path in self._paths():
                sync_file(path)

    def stop(self) -> None:
        """End the thread (after the flush in progress, if any)."""
        self._stop.set()
        self._thread.join()
