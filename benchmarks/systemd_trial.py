"""The README's dash camera unit (`On a car`) under a real systemd: ready, status, a disk
that stops answering, the watchdog's kill, the restart, a stop; the same unit with
``--stuck-sink skip`` and its objects on another disk, going on past a stuck recording;
and a disk filled by another file.

This machine's systemd runs as PID 1 of its own pid and mount namespaces, in a root that
overlays this machine's with a memory layer: what it and its units write (the journal,
/tmp's boot-time cleaning) stays there. Units that would act on the kernel or the devices
this machine shares with it (udev, sysctl, kernel modules, the clock) are masked; the
journal runs. The unit is the README's, read from it, with the paths of this machine: the
tests' MJPEG camera on 127.0.0.1 (30 fps) for /dev/video0, the tiny demo engines, a real
ext4 on a loop device for /data, 30 s segments, and 64 MiB kept free on that small disk.

The disk stops answering by systemd's own means, ``systemctl set-property --runtime
edge-dashcam BlockIOWriteBandwidth="/dev/loopN 1K"`` (cgroup v1's blkio throttle); it
answers again when that is reverted. Every step is timed from ``systemctl start``. Needs
root, systemd, unshare, overlayfs, loop devices and cgroup v1's blkio controller.

    python benchmarks/systemd_trial.py --out benchmarks/results/systemd_trial_cpu.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import build_bundled, write_runs  # noqa: E402
from tests.disks import DiskUnavailable, ext4_on_loop  # noqa: E402

UNIT = "edge-dashcam.service"
SYSTEMD = Path("/lib/systemd/systemd")
# of the units the boot would start, the only ones that run: the journal
KEEP = {"systemd-journald.service", "systemd-journald.socket", "systemd-journald-dev-log.socket"}
CGROUPS = Path("/sys/fs/cgroup")


def readme_unit() -> str:
    (unit,) = re.findall(r"```ini\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    return unit


def trial_unit(
    unit: str, *, edge: str, camera: str, engines: Path, drives: Path
) -> tuple[str, list[str], list[str]]:
    """The README's unit made by edge service for this machine's paths: its text, the
    changes made (said), and the arguments after the program."""
    from edge.util.unit import unit_text

    fields = dict(x.split("=", 1) for x in unit.splitlines() if "=" in x and not x.startswith("#"))
    changes = [f"{k}={fields[k]} removed (root here)" for k in ("User", "SupplementaryGroups") if k in fields]
    argv = shlex.split(fields["ExecStart"])
    swap = {
        0: edge,
        2: camera,
        argv.index("--engines") + 1: str(engines),
        argv.index("--segment") + 1: "30s",
        argv.index("--keep-free") + 1: "64M",
    }
    for i, value in swap.items():
        changes.append(f"{argv[i]} -> {value}")
        argv[i] = value
    for i, arg in enumerate(argv):
        if arg.startswith("/data/drives/"):
            argv[i] = arg.replace("/data/drives", str(drives), 1)
            changes.append(f"{arg} -> {argv[i]}")
    changes.append(f"WorkingDirectory={fields['WorkingDirectory']} -> {drives.parent}")
    text = unit_text(
        argv[1:],
        description=fields["Description"],
        program=argv[:1],
        workdir=str(drives.parent),
        user=None,
        name=UNIT.removesuffix(".service"),
    )
    return text, changes, argv[1:]


def masked_units() -> list[str]:
    """What the boot's targets pull in, but the journal: units of this machine."""
    names = set()
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

    def __init__(self, *, work: Path, data: Path, units: Path, mask: list[str]) -> None:
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

    def show(self) -> dict[str, str]:
        keys = (
            "ActiveState,SubState,Result,MainPID,NRestarts,StatusText,ExecMainStatus,LimitCORE,ControlGroup,"
            "MemoryCurrent"
        )
        done = self.run("systemctl", "show", UNIT, "-p", keys)
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
        key = tuple(
            self.state.get(k, "") for k in ("ActiveState", "SubState", "Result", "MainPID", "NRestarts")
        )
        key += (
            "stuck" if status.startswith("stuck") else "skipped" if "skipped while stuck" in status else "",
        )
        if key != self._last:
            self._last = key
            self.step(
                "state",
                **{
                    k: self.state.get(k)
                    for k in ("ActiveState", "SubState", "Result", "MainPID", "NRestarts")
                },
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
            for task in Path(f"/proc/{pid}/task").iterdir():
                with contextlib.suppress(OSError):
                    state = task.joinpath("stat").read_text().rsplit(")", 1)[1].split()[0]
                    states[state] = states.get(state, 0) + 1
    return states


def frames_in(path: Path) -> int:
    import cv2

    capture, n = cv2.VideoCapture(str(path)), 0
    while capture.read()[0]:
        n += 1
    capture.release()
    return n


def drive(folder: Path) -> dict[str, Any]:
    return {
        p.name: frames_in(p) if p.suffix == ".mkv" else len(p.read_text().splitlines())
        for p in sorted(folder.iterdir())
    }


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


def trial(engines: Path, *, run_s: float, held_s: float) -> dict[str, Any]:
    from tests.stream.test_capture import Camera

    edge = str(Path(sys.executable).parent / "edge")
    with tempfile.TemporaryDirectory(prefix="edge-systemd-trial-") as tmp, new_cgroups_removed():
        root = Path(tmp)
        data, units, work = root / "data", root / "units", root / "ns"
        for d in (data, units, work):
            d.mkdir()
        with ext4_on_loop(root / "disk.img", data, size="512M") as loop:
            # names with what systemd reads otherwise (a space, a specifier, a variable): the
            # unit edge service writes must give them to the run as they are
            drives = data / "drives ${HOME} 100%"
            drives.mkdir()
            named = root / "engines 100% $x"
            named.symlink_to(engines)
            camera = Camera(port=0, fps=30.0, noise=True)
            unit, changes, argv = trial_unit(
                readme_unit(), edge=edge, camera=camera.url, engines=named, drives=drives
            )
            (units / UNIT).write_text(unit)
            (units / "edge-trial.target").write_text("[Unit]\nDescription=the edge systemd trial\n")
            systemd = Systemd(work=work, data=data, units=units, mask=masked_units())
            result: dict[str, Any] = {
                "unit_changes": changes,
                "systemd": systemd.run("systemctl", "--version").stdout.splitlines()[0],
            }
            try:
                result.update(
                    steps(systemd, loop=loop, drives=drives, run_s=run_s, held_s=held_s, argv=[edge, *argv])
                )
                journal = systemd.run("journalctl", "-u", UNIT, "-o", "cat", "--no-pager").stdout
                warnings = systemd.run(
                    "journalctl", "-u", UNIT, "-p", "warning", "-o", "cat", "--no-pager"
                ).stdout
                critical = systemd.run(
                    "journalctl", "-u", UNIT, "-p", "crit", "-o", "cat", "--no-pager"
                ).stdout.splitlines()
                result["journal"] = {
                    "lines": len(journal.splitlines()),
                    # the watchdog's kill: faulthandler's stacks, sent at the level crit
                    "critical_lines": len(critical),
                    "critical_holds_the_stacks": "Fatal Python error: Aborted" in critical
                    and any(x.startswith("Thread 0x") for x in critical),
                    "warnings_and_errors": [line[:240] for line in warnings.splitlines()],
                    "fatal_python_error": "Fatal Python error: Aborted" in journal,
                    "thread_stacks": journal.count("Thread 0x"),
                    "status_lines": sum(1 for x in journal.splitlines() if re.match(r"frame \d+  ", x)),
                    "status_lines_stamped_twice": sum(
                        1
                        for x in journal.splitlines()
                        if re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d frame", x)
                    ),
                }
                # a core is written in the service's folder, /, of the root in memory
                cores = systemd.run("find", "/", "-maxdepth", "1", "-name", "core*", "-printf", "%f %s\\n")
                result["core_files"] = dict(line.split() for line in cores.stdout.splitlines())
                result["systemd_said"] = systemd.run(
                    "journalctl", "-u", UNIT, "_PID=1", "-o", "cat", "--no-pager"
                ).stdout.splitlines()
            finally:
                systemd.close()
                camera.unplug()
    return result


def steps(
    systemd: Systemd, *, loop: str, drives: Path, run_s: float, held_s: float, argv: list[str]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    tl = Timeline(systemd)
    tl.step("systemctl start")
    started = systemd.run("systemctl", "start", UNIT)
    tl.step("systemctl start returned", rc=started.returncode)
    state = tl.poll()
    out["ready"] = {
        "active": state["ActiveState"],
        "status": state["StatusText"],
        "limit_core": state["LimitCORE"],
    }
    # the program's own arguments, as the kernel has them: what systemd made of ExecStart=
    given = command_line(state["ControlGroup"])
    out["arguments_as_meant"] = given[-len(argv[1:]) :] == argv[1:]
    out["arguments"] = given
    tl.watch(run_s)
    memory = tl.state.get("MemoryCurrent", "")  # "[not set]" without memory accounting
    out["memory_mib_after_run_s"] = round(int(memory) / 2**20) if memory.isdigit() else None
    out["files_before_the_stall"] = sorted(p.name for p in drives.iterdir())

    # the card stops answering
    tl.step("the disk stops answering", throttle=f"{loop} 1K")
    done = systemd.run("systemctl", "set-property", "--runtime", UNIT, f"BlockIOWriteBandwidth={loop} 1K")
    if done.returncode != 0:
        raise SystemExit(f"set-property failed: {done.stderr}")
    first_pid = state["MainPID"]
    tl.wait(lambda s: s.get("Result") == "watchdog" or s.get("MainPID") != first_pid, 300)
    tl.step("killed by the watchdog", threads=threads_of(tl.state["ControlGroup"]))
    tl.watch(held_s)
    tl.step("still held", threads=threads_of(tl.state["ControlGroup"]), sub_state=tl.state["SubState"])

    # it answers again
    tl.step("the disk answers again")
    unthrottle(systemd, loop, tl.state["ControlGroup"])
    tl.wait(lambda s: s["ActiveState"] == "active" and s["MainPID"] not in ("0", first_pid), 300)
    tl.step("running again", nrestarts=tl.state["NRestarts"])
    tl.watch(run_s / 2)

    tl.step("systemctl stop")
    systemd.run("systemctl", "stop", UNIT)
    state = tl.poll()
    out["stopped"] = {k: state.get(k) for k in ("ActiveState", "Result", "ExecMainStatus")}
    out["files_after_the_stop"] = drive(drives)

    out["stuck_sink_skip"] = skip_steps(systemd, tl, loop=loop, argv=argv, run_s=run_s)

    # a disk filled by another file past what the recording's segments hold: they are kept,
    # and the run ends with status 3, not restarted
    filler = drives.parent / "filler"
    free = os.statvfs(drives).f_bavail * os.statvfs(drives).f_frsize
    subprocess.run(["fallocate", "-l", str(max(free - (32 << 20), 0)), str(filler)], check=True)
    tl.step("the disk is full of what is not the recording's", free_mib=round(free / 2**20))
    systemd.run("systemctl", "start", UNIT)
    tl.wait(lambda s: s["ActiveState"] in ("failed", "inactive"), 120)
    tl.watch(15)  # three RestartSec= periods: a restart would have come
    state = tl.poll()
    out["full_disk"] = {k: state.get(k) for k in ("ActiveState", "Result", "ExecMainStatus", "NRestarts")}
    out["files_after_the_full_disk"] = sorted(p.name for p in drives.iterdir())
    out["timeline"] = tl.events
    return out


def unthrottle(systemd: Systemd, loop: str, control_group: str) -> None:
    systemd.run("systemctl", "revert", UNIT)
    device = os.stat(loop).st_rdev
    throttle = host_cgroup("blkio", control_group) / "blkio.throttle.write_bps_device"
    with contextlib.suppress(OSError):  # the dying process's group keeps its limit until told
        throttle.write_text(f"{os.major(device)}:{os.minor(device)} 0\n")


def skip_steps(systemd: Systemd, tl: Timeline, *, loop: str, argv: list[str], run_s: float) -> dict[str, Any]:
    """The unit with ``--stuck-sink skip`` and its objects on another disk (/run): the
    recording's disk stops answering, and the run goes on past the watchdog's period."""
    from edge.util.unit import exec_command

    objects = "/run/objects.jsonl"
    argv = list(argv)
    (at,) = [i for i, a in enumerate(argv) if a.endswith("/objects.jsonl")]
    argv[at] = objects
    line = exec_command([*argv, "--stuck-sink", "skip"])
    drop_in = f"/etc/systemd/system/{UNIT}.d/stuck-sink-skip.conf"
    content = f"[Service]\nExecStart=\nExecStart={line}\n"
    systemd.run(
        "sh",
        "-c",
        f"mkdir -p {shlex.quote(str(Path(drop_in).parent))} && printf %s {shlex.quote(content)} > {drop_in}",
    )
    systemd.run("systemctl", "daemon-reload")

    def lines() -> int:  # over its segments, finished and not
        done = systemd.run("sh", "-c", "cat /run/objects-*.jsonl /run/.objects-*.jsonl 2>/dev/null | wc -l")
        return int(done.stdout.split()[0]) if done.stdout.strip() else 0

    out: dict[str, Any] = {"exec_start_changes": [f"objects -> {objects}", "--stuck-sink skip"]}
    tl.step("systemctl start, --stuck-sink skip, the objects on /run")
    systemd.run("systemctl", "start", UNIT)
    tl.watch(run_s / 2)
    pid = tl.poll()["MainPID"]
    tl.step("the recording's disk stops answering", throttle=f"{loop} 1K", objects=lines())
    systemd.run("systemctl", "set-property", "--runtime", UNIT, f"BlockIOWriteBandwidth={loop} 1K")
    said = tl.wait(lambda s: "skipped while stuck" in s.get("StatusText", ""), 300)
    tl.step("the stuck sink skipped", said=said, objects=lines())
    before = lines()
    tl.watch(75)  # past the watchdog's 60 s
    state = tl.poll()
    after = lines()
    tl.step("75 s on", objects=after, threads=threads_of(state["ControlGroup"]))
    out["after_75_s_stuck"] = {
        **{k: state.get(k) for k in ("ActiveState", "SubState", "Result", "NRestarts")},
        "same_process": state.get("MainPID") == pid,
        "status": state.get("StatusText", "")[:240],
        "objects_written_meanwhile": after - before,
    }
    tl.step("the disk answers again")
    unthrottle(systemd, loop, state["ControlGroup"])
    again = tl.wait(lambda s: "skipped while stuck" not in s.get("StatusText", ""), 300)
    tl.step("the sink writes again", said=again)
    tl.watch(5)
    systemd.run("systemctl", "stop", UNIT)
    state = tl.poll()
    out["stopped"] = {k: state.get(k) for k in ("ActiveState", "Result", "NRestarts")}
    journal = systemd.run("journalctl", "-u", UNIT, "-o", "cat", "--no-pager").stdout.splitlines()
    out["said"] = [x[:240] for x in journal if "--stuck-sink skip" in x or "is writing again" in x]
    systemd.run("rm", "-r", str(Path(drop_in).parent))
    systemd.run("systemctl", "daemon-reload")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run-s", type=float, default=40.0, help="how long the unit runs before the disk stalls")
    ap.add_argument(
        "--held-s", type=float, default=20.0, help="how long the disk stays stalled after the kill"
    )
    ap.add_argument("--engines", type=Path, help="an engines folder with the tiny models (default: built)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/systemd_trial_cpu.json")
    args = ap.parse_args()
    if os.geteuid() != 0 or not SYSTEMD.exists() or not (CGROUPS / "blkio" / "cgroup.procs").is_file():
        print(
            "error: the trial needs root, systemd (/lib/systemd/systemd) and cgroup v1's blkio controller",
            file=sys.stderr,
        )
        return 2
    with tempfile.TemporaryDirectory(prefix="edge-systemd-trial-engines-") as built:
        engines = args.engines
        if engines is None:
            engines = Path(built)
            build_bundled(("panoptic_fpn_tiny", "depth_tiny"), 256, 512, engines)
        try:
            result = trial(engines, run_s=args.run_s, held_s=args.held_s)
        except DiskUnavailable as exc:
            print(f"error: a disk cannot be made here: {exc}", file=sys.stderr)
            return 2
    print(json.dumps({k: v for k, v in result.items() if k != "timeline"}, indent=1))
    write_runs(
        args.out,
        what="the README's dash camera unit under this machine's systemd: start, a stalled disk, the "
        "watchdog's kill, the restart, a stop, --stuck-sink skip past a stalled disk, and a full disk",
        runs=[result],
        baseline=None,
        run_s=args.run_s,
        held_s=args.held_s,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
