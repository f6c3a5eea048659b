"""A systemd of this machine booted as PID 1 of its own pid and mount namespaces, for
benchmarks/systemd_trial.py: the boot, its tools run inside, a unit's state polled into a
timeline, and what of a unit can be seen from outside (its threads, its arguments).

The root it boots overlays this machine's with a memory layer, so what it and its units
write (the journal, /tmp's boot-time cleaning) stays there. Units that would act on the
kernel or the devices this machine shares with it (udev, sysctl, kernel modules, the
clock) are masked; the journal runs. There is no cgroup namespace: the groups it makes
are this machine's, removed after (new_cgroups_removed).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from edge.util.proc import thread_states

SYSTEMD = Path("/lib/systemd/systemd")
# of the units the boot would start, the only ones that run: the journal
KEEP = {"systemd-journald.service", "systemd-journald.socket", "systemd-journald-dev-log.socket"}
CGROUPS = Path("/sys/fs/cgroup")
# what the timeline notes a change of (besides the status's stuck or skipped)
STATE_KEYS = ("ActiveState", "SubState", "Result", "MainPID", "NRestarts")


def masked_units() -> list[str]:
    """What the boot's targets pull in, but the journal: units of this machine."""
    names: set[str] = set()
    for folder in (Path("/lib/systemd/system"), Path("/etc/systemd/system")):
        for wants in folder.glob("*.target.wants"):
            names.update(p.name for p in wants.iterdir())
    return sorted(names - KEEP)


BOOT = r"""
set -e
mount --make-rprivate /
mount -t tmpfs -o size=256m tmpfs "$W"
mkdir "$W/upper" "$W/work" "$W/root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$W/upper,workdir=$W/work" "$W/root"
R="$W/root"
mount --rbind /dev "$R/dev"
mount --rbind /sys "$R/sys"
mount -t proc proc "$R/proc"
mount -t tmpfs tmpfs "$R/run"
mkdir -p "$R/var/log/journal" && mount -t tmpfs tmpfs "$R/var/log/journal"  # this trial's journal alone
mount --bind "$DATA" "$R$DATA"
mkdir -p "$R/etc/systemd/system"
cp "$UNITS"/* "$R/etc/systemd/system/"
for unit in $MASK; do ln -sf /dev/null "$R/etc/systemd/system/$unit"; done
ulimit -c unlimited
export container=edge-trial
exec chroot "$R" /lib/systemd/systemd --system --unit=edge-trial.target --log-target=journal
"""


class Systemd:
    """systemd as PID 1 of its namespaces (BOOT), and its tools run in them."""

    def __init__(self, *, unit: str, work: Path, data: Path, units: Path, mask: list[str]) -> None:
        self.unit, self.work = unit, work
        env = {**os.environ, "W": str(work), "DATA": str(data), "UNITS": str(units), "MASK": " ".join(mask)}
        argv = ["unshare", "--pid", "--fork", "--mount", "--kill-child", "bash", "-c", BOOT]
        self.proc = subprocess.Popen(
            argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        self.pid = 0
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not self.pid:
            time.sleep(0.2)
            kids = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True)
            for pid in kids.stdout.split():
                if Path(f"/proc/{pid}/comm").read_text().strip() == "systemd":
                    self.pid = int(pid)
        if not self.pid:
            self.close()
            raise SystemExit(f"systemd did not start: {self.proc.stderr.read() if self.proc.stderr else ''}")
        if not self.until(
            lambda: self.run("systemctl", "is-system-running").stdout.strip() in {"running", "degraded"}, 60
        ):
            raise SystemExit("systemd did not finish its boot in 60 s")

    def run(self, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        enter = ["nsenter", "-t", str(self.pid), "-m", "-p", "-r", "-w"]
        return subprocess.run([*enter, *argv], capture_output=True, text=True, timeout=timeout)

    def written_to_root(self) -> list[str]:
        """The files written to its root since the boot, by it and its units: the overlay's
        upper layer (not /run, /dev, /proc, /sys, the journal or the data disk, which are
        mounts of their own)."""
        enter = ["nsenter", "-t", str(self.pid), "-m"]  # its mounts, this machine's root
        upper = self.work / "upper"
        done = subprocess.run(
            [*enter, "find", str(upper), "-mindepth", "1", "-not", "-type", "d", "-printf", "/%P\\n"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        return sorted(done.stdout.splitlines())

    def show(self) -> dict[str, str]:
        keys = (
            "ActiveState,SubState,Result,MainPID,NRestarts,StatusText,ExecMainStatus,LimitCORE,ControlGroup,"
            "MemoryCurrent"
        )
        done = self.run("systemctl", "show", self.unit, "-p", keys)
        return dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)

    @staticmethod
    def until(holds: Callable[[], bool], timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if holds():
                return True
            time.sleep(0.5)
        return False

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)  # --kill-child: its systemd, and all under it
            self.proc.wait(timeout=30)


class Timeline:
    """The unit's state, polled, with each change and each step stamped from the start."""

    def __init__(self, systemd: Systemd) -> None:
        self.systemd, self.t0 = systemd, time.monotonic()
        self.events: list[dict[str, Any]] = []
        self._last: tuple[str, ...] = ()
        self.state: dict[str, str] = {}

    def now(self) -> float:
        return round(time.monotonic() - self.t0, 1)

    def step(self, what: str, **more: Any) -> None:
        self.events.append({"t_s": self.now(), "step": what, **more})
        print(f"{self.now():7.1f} s  {what} {more if more else ''}", flush=True)

    def poll(self) -> dict[str, str]:
        self.state = self.systemd.show()
        status = self.state.get("StatusText", "")
        key = tuple(self.state.get(k, "") for k in STATE_KEYS)
        key += (
            "stuck" if status.startswith("stuck") else "skipped" if "skipped while stuck" in status else "",
        )
        if key != self._last:
            self._last = key
            self.step(
                "state",
                **{k: self.state.get(k) for k in STATE_KEYS},
                status=status[:160],
            )
        return self.state

    def wait(self, holds: Callable[[dict[str, str]], bool], timeout_s: float) -> bool:
        return self.systemd.until(lambda: holds(self.poll()), timeout_s)

    def watch(self, seconds: float) -> None:
        self.wait(lambda s: False, seconds)


def host_cgroup(hierarchy: str, control_group: str) -> Path:
    """Where a group of the trial's systemd is in this machine's ``hierarchy`` (``blkio``,
    ``systemd``): under the group this process is in, which that systemd took for its root."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, names, path = line.split(":", 2)
        if hierarchy in names.removeprefix("name=").split(","):
            return CGROUPS / hierarchy / path.lstrip("/") / control_group.lstrip("/")
    raise SystemExit(f"this process is in no {hierarchy} cgroup")


def command_line(control_group: str) -> list[str]:
    """The arguments of the unit's main process, seen from here."""
    procs = host_cgroup("systemd", control_group) / "cgroup.procs"
    with contextlib.suppress(OSError, IndexError):
        pid = procs.read_text().split()[0]
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]
    return []


def threads_of(control_group: str) -> dict[str, int]:
    """The states of the unit's threads, seen from here: {'D': 4, 'S': 12, ...}."""
    procs = host_cgroup("systemd", control_group) / "cgroup.procs"
    states: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for pid in procs.read_text().split():
            for state in thread_states(pid):
                states[state] = states.get(state, 0) + 1
    return states


@contextlib.contextmanager
def new_cgroups_removed() -> Iterator[None]:
    """systemd makes its slices at the top of this machine's cgroup hierarchies (no cgroup
    namespace here): those it made are removed after, once empty."""
    before = {p for p in CGROUPS.glob("*/*") if p.is_dir()}
    try:
        yield
    finally:
        deadline = time.monotonic() + 20  # the killed processes leave their groups as they end
        while (
            made := {p for p in CGROUPS.glob("*/*") if p.is_dir()} - before
        ) and time.monotonic() < deadline:
            for top in made:
                inner = sorted((d for d in top.rglob("*") if d.is_dir()), key=lambda d: -len(d.parts))
                for folder in [*inner, top]:
                    with contextlib.suppress(OSError):
                        folder.rmdir()
            time.sleep(0.5)
        if made:
            print(f"warning: cgroups left behind: {sorted(map(str, made))}", file=sys.stderr)
