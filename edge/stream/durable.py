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

import errno
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from edge.errors import SinkStopped

SYNC_EVERY_S = 2.0
# a flush longer than this (the time between flushes) says the disk stores less than the sink
# writes: dirty pages pile up, a power cut loses more than SYNC_EVERY_S, and in the end the
# writes themselves wait for the disk
SLOW_FLUSH_S = 2.0
_SLOW_SAID: set[str] = set()  # the sinks whose slow disk was said: once a process
# what fsync says of a file or filesystem that cannot be flushed, not of a disk that failed
_CANNOT_SYNC = frozenset({errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EBADF})


def disk_failure(path: Path, exc: OSError) -> str:
    """What to say when the disk holding ``path`` failed to store what was written to it."""
    name = errno.errorcode.get(exc.errno or 0, "error")
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):  # the filesystem itself said it had room
        why = "what holds the filesystem is full: a disk image, a thin volume or a quota"
    elif exc.errno == errno.EROFS:
        why = "Linux has made the disk read-only, as it does after write errors: see dmesg"
    else:
        why = "a failing disk or SD card? see dmesg"
    return (
        f"the disk holding {str(path)!r} failed to store what was written to it "
        f"({name}: {exc.strerror or exc}; {why})"
    )


def sync_file(path: Path) -> None:
    """Flush ``path``'s written pages to the disk; SinkStopped when the disk failed to store
    them. A write the disk fails (EIO from a failing SD card; ENOSPC from a disk image that
    filled under its filesystem) was accepted into the kernel's cache long before, and the
    fsync is where it is reported, once. A file that is gone (renamed meanwhile) or cannot be
    opened, or a filesystem that cannot flush (EINVAL), is passed over: this only narrows
    what a power cut loses."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in _CANNOT_SYNC:
            raise SinkStopped(disk_failure(path, exc)) from exc
    finally:
        os.close(fd)


def sync_folder(placed: Path, *, uri: str) -> None:
    """Flush the entries of the folder that holds ``placed``, a file sink ``uri`` has just
    renamed into it, to the disk; SinkStopped naming both when the disk failed to store
    them (the file is in place, and its name may not outlive a power cut)."""
    try:
        sync_file(placed.parent)
    except SinkStopped as exc:
        raise SinkStopped(
            f"sink {uri!r}: {exc}; {str(placed)!r} is finished, but after a power cut it may be found "
            "under its partial name"
        ) from exc


class Syncer:
    """Flushes the files ``paths()`` names every ``every_s`` seconds until ``finish``, and
    keeps the first failure of their disk (``failed``): Linux reports a failed write back
    to one fsync only, and the writer must learn of it at its next frame."""

    def __init__(
        self, paths: Callable[[], Iterable[Path]], *, uri: str = "", every_s: float | None = None
    ) -> None:
        """``uri``: the sink, as a slow disk's warning names it."""
        self._paths, self._uri = paths, uri
        self._every_s = SYNC_EVERY_S if every_s is None else every_s
        self.failed: str | None = None  # why the disk failed to store what was written
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="edge-sync", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._every_s):
            self._sync()

    def _sync(self) -> None:
        start = time.monotonic()
        for path in self._paths():
            try:
                sync_file(path)
            except SinkStopped as exc:
                self.failed = self.failed or str(exc)
        took = time.monotonic() - start
        if took > SLOW_FLUSH_S and self._uri not in _SLOW_SAID and self.failed is None:
            _SLOW_SAID.add(self._uri)
            print(
                f"warning: sink {self._uri!r}: its disk took {took:.1f} s to store the last "
                f"{self._every_s:g} s of what was written: it is slower than the recording (a slow or worn "
                "SD card?), so a power cut may lose more, and frames may be dropped as the writes wait "
                "for it (said once)",
                file=sys.stderr,
            )

    def stop(self) -> None:
        """End the thread (after the flush in progress, if any)."""
        self._stop.set()
        self._thread.join()

    def finish(self) -> str | None:
        """End the thread, flush every file once more, and say why their disk failed to store
        them (None when it stored them all)."""
        self.stop()
        self._sync()
        return self.failed


def put_in_place(
    uri: str, partial: Path, path: Path, *, failed: str | None, what: str, hint: str = ""
) -> None:
    """A sink's finished ``partial`` file renamed to ``path`` and its folder synced, so the
    name says it is whole only once it is on the disk; where writing or flushing it
    ``failed``, SinkStopped saying that ``what`` could not be finished and where it was left
    (``hint``: how to read it anyway)."""
    if failed:
        raise SinkStopped(
            f"sink {uri!r}: {what} could not be finished: {failed}; what was written is left in "
            f"{str(partial)!r}{hint}"
        )
    os.replace(partial, path)
    sync_folder(path, uri=uri)
