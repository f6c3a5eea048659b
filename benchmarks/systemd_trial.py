"""The README's dash camera unit (`On a car`) under a real systemd: ready, status, a disk
that stops answering, the watchdog's kill, the restart, a stop; the same unit with
``--stuck-sink skip`` and its objects on another disk, going on past a stuck recording;
a disk filled by another file; and what all of it wrote to the root filesystem.

This machine's systemd runs as PID 1 of its own pid and mount namespaces, in a root that
overlays this machine's with a memory layer (benchmarks/systemd_box.py). The journal runs,
and is restarted once while the unit runs, as an upgrade of systemd would: what edge
writes after it, the watchdog's stacks at the level crit included, must still reach it.
The unit is the README's, read from it, with the paths of this machine: the
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
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import build_bundled, write_runs  # noqa: E402
from benchmarks.systemd_box import (  # noqa: E402
    CGROUPS,
    SYSTEMD,
    Systemd,
    Timeline,
    command_line,
    host_cgroup,
    masked_units,
    new_cgroups_removed,
    threads_of,
)
from tests.disks import DiskUnavailable, ext4_on_loop  # noqa: E402

UNIT = "edge-dashcam.service"


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
            systemd = Systemd(unit=UNIT, work=work, data=data, units=units, mask=masked_units())
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
                # what the boot and the unit's runs wrote to the root filesystem: edge's
                # files go to the data disk and /run, and nothing of it to $HOME (no
                # ONNX Runtime device id, edge/util/ort.py)
                written = systemd.written_to_root()
                result["written_to_root"] = written
                result["written_to_root_by_edge"] = [
                    f for f in written if f.startswith(("/root", "/home", "/tmp/edge", "/var/tmp"))
                ]
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
    tl.watch(run_s / 2)
    # journald restarted (an upgrade does it): edge's journal streams, the stacks' own one
    # included, are kept in journald's file descriptor store, or lost
    before = journal_lines(systemd)
    restarted = systemd.run("systemctl", "restart", "systemd-journald")
    tl.step("journald restarted", rc=restarted.returncode, unit_lines_before=before)
    out["journald_restart"] = {"rc": restarted.returncode, "unit_lines_before": before}
    tl.watch(run_s / 2)
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
    # the stuck warning and the kill's stacks, written since journald's restart
    out["journald_restart"]["unit_lines_after_the_kill"] = journal_lines(systemd)

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


def journal_lines(systemd: Systemd) -> int:
    """How many lines the unit has in the journal now (its runs' status lines among them)."""
    return len(systemd.run("journalctl", "-u", UNIT, "-o", "cat", "--no-pager").stdout.splitlines())


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
