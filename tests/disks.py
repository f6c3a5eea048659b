"""Real disks that misbehave, for the tests (tests/conftest.py's fixtures) and benchmarks:
an ext4 filesystem on a loop device, which can be made to fail (its image's own disk
filled) or to store slowly (its writes throttled by a blkio cgroup). Making one needs root
(CAP_SYS_ADMIN), loop devices and, for a slow one, cgroup v1's blkio controller; where
one cannot be made, DiskUnavailable says why."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

BLKIO = Path("/sys/fs/cgroup/blkio")


class DiskUnavailable(Exception):
    """Such a disk cannot be made here (the message says what was refused)."""


def _run(step: list[str]) -> str:
    try:
        done = subprocess.run(step, capture_output=True, text=True)
    except FileNotFoundError as exc:
        raise DiskUnavailable(f"{step[0]} is not installed: {exc}") from exc
    if done.returncode != 0:
        raise DiskUnavailable(f"{' '.join(step)}: {done.stderr.strip()}")
    return done.stdout.strip()


@contextlib.contextmanager
def ext4_on_loop(
    image: Path, mountpoint: Path, *, size: str = "64M", on_tmpfs: bool = False
) -> Iterator[str]:
    """A real ext4 of ``size`` in the sparse file ``image`` on a loop device, mounted at
    ``mountpoint``; the loop device. ``on_tmpfs``: ``image``'s folder is first made a
    16 MiB tmpfs, which filling makes the disk fail. Taken apart after."""
    undo: list[list[str]] = []
    try:
        if on_tmpfs:
            _run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(image.parent)])
            undo.insert(0, ["umount", "-l", str(image.parent)])
        _run(["truncate", "-s", size, str(image)])
        _run(["mkfs.ext4", "-q", "-E", "lazy_itable_init=0,lazy_journal_init=0", str(image)])
        loop = _run(["losetup", "-f", "--show", str(image)])
        undo.insert(0, ["losetup", "-d", loop])
        _run(["mount", loop, str(mountpoint)])
        undo.insert(0, ["umount", "-l", str(mountpoint)])
        yield loop
    finally:
        for step in undo:
            subprocess.run(step, capture_output=True)


@contextlib.contextmanager
def throttled(loop: str, bytes_per_s: int, name: str) -> Iterator[Path]:
    """A blkio cgroup (its folder) whose processes' writes to ``loop`` are stored at no more
    than ``bytes_per_s``, as a slow SD card's; removed after (its processes ended)."""
    if not (BLKIO / "cgroup.procs").is_file():
        raise DiskUnavailable(f"cgroup v1's blkio controller is not mounted at {BLKIO}")
    device = os.stat(loop).st_rdev
    group = BLKIO / name
    try:
        try:
            group.mkdir()
            (group / "blkio.throttle.write_bps_device").write_text(
                f"{os.major(device)}:{os.minor(device)} {bytes_per_s}\n"
            )
        except OSError as exc:
            raise DiskUnavailable(f"a blkio cgroup could not be made in {BLKIO}: {exc}") from exc
        yield group
    finally:
        with contextlib.suppress(OSError):
            group.rmdir()


def in_group(group: Path, argv: list[str]) -> list[str]:
    """``argv`` run in cgroup ``group``."""
    return ["sh", "-c", f'echo $$ > {group / "cgroup.procs"} && exec "$@"', "sh", *argv]
