"""``edge service``: the systemd unit for an ``edge run`` or ``edge record`` command line; and
``edge alive``, the health check on the --heartbeat file such a run writes."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path
from typing import Any

from edge.cli_args import output_file, positive_seconds
from edge.cli_help import add_command

# sources a service reads through a device node, which the group `video` may open
_CAMERAS = ("/dev/video", "/dev/v4l/", "csi://")


def add_service_command(sub: Any) -> None:
    from edge.util.unit import DEFAULT_WATCHDOG_S

    p = add_command(
        sub,
        "service",
        help="print the systemd unit that runs an edge run or edge record command line as a service",
        description="Print (or write with --out) a systemd unit that runs `edge COMMAND ARGS` as a "
        "service: Type=notify, a watchdog, restarted unless every output stopped (exit 3), with this "
        "edge's absolute path, this folder as its working directory and each argument escaped as "
        "systemd reads it. The command line is checked as edge would check it, now rather than at boot.",
    )
    p.add_argument("--name", default="edge", help="the unit's name, as the output says; default: %(default)s")
    p.add_argument("--description", help="default: the command and its source")
    p.add_argument(
        "--user",
        help="the user it runs as; default: who runs this (through sudo: who ran sudo); root: no User= line",
    )
    p.add_argument(
        "--watchdog",
        type=int,
        default=DEFAULT_WATCHDOG_S,
        metavar="S",
        help="WatchdogSec=: restarted after S seconds without progress (0: none; under 30 is warned "
        "about by the run); default: %(default)s",
    )
    p.add_argument(
        "--out", type=output_file, metavar="FILE", help="write the unit to FILE instead of printing it"
    )
    p.add_argument("command", choices=("run", "record"), help="the edge command the service runs")
    p.add_argument(
        "args", nargs=argparse.REMAINDER, metavar="ARGS", help="its arguments, as on a command line"
    )
    p.set_defaults(func=cmd_service)


def _say_unreadable_calibrations(given: str | dict[str, str | None] | None) -> None:
    """A lens calibration (--undistort) the run could not read, said now (it may be copied
    there later, as engines may be built later)."""
    from edge.errors import ConfigError
    from edge.stream.undistort import read_calibration

    for path in [given] if isinstance(given, str) else (given or {}).values():
        if path is not None:
            try:
                read_calibration(path)
            except ConfigError as exc:
                print(f"warning: {exc} (in {os.getcwd()})", file=sys.stderr)


def cmd_service(args: argparse.Namespace) -> int:
    from edge.cli import parse_command_line
    from edge.cli_args import camera_priorities, camera_shares, camera_start_offsets, run_cameras_of
    from edge.cli_frames import fits_of, flips_of, undistorts_of
    from edge.cli_record import record_cameras_of, record_sinks
    from edge.cli_tracking import check_tracking_arguments
    from edge.errors import ConfigError
    from edge.util.fs import atomic_write_bytes
    from edge.util.unit import unit_text

    if args.watchdog < 0:
        raise ConfigError(f"--watchdog is {args.watchdog}; expected seconds >= 0 (0: no watchdog)")
    argv = [args.command, *args.args]
    try:  # what edge would say at the service's start, said now
        parsed = parse_command_line(argv)
    except SystemExit as exc:  # argparse said why (or printed the help: 0)
        return exc.code if isinstance(exc.code, int) else 2
    if args.command == "record":
        recorded = record_cameras_of(parsed)  # a source, cameras or a rig
        sinks = record_sinks(parsed)
        flips_of(parsed)
        if recorded is not None:
            from edge.stream.record_cameras import camera_sinks

            camera_sinks(sinks, list(recorded))
    if args.command == "run":
        from edge.cli_rig import with_rig

        cameras = run_cameras_of(with_rig(parsed))  # a source or cameras, not both
        camera_priorities(parsed, cameras)
        camera_shares(parsed, cameras)
        camera_start_offsets(parsed, cameras)
        fits_of(parsed)
        flips_of(parsed)
        _say_unreadable_calibrations(undistorts_of(parsed))
    _check_restartable(args.command, parsed)
    check_tracking_arguments(parsed)
    engines = getattr(parsed, "engines", None)
    if engines is not None and not Path(engines).is_dir():  # built later, or a typo: said either way
        print(f"warning: the engines folder {engines!r} does not exist in {os.getcwd()}", file=sys.stderr)
    user = args.user or os.environ.get("SUDO_USER") or getpass.getuser()
    user = None if user == "root" else user
    unit = unit_text(
        argv,
        description=args.description or f"edge {args.command} {_sources_said(parsed)}",
        program=program(),
        workdir=os.getcwd(),
        user=user,
        groups=sorted({g for source in _sources(parsed) for g in camera_groups(source)}) if user else (),
        watchdog_s=args.watchdog,
        name=args.name,
    )
    install = (
        f"sudo systemctl daemon-reload && sudo systemctl enable --now {args.name}; "
        f"journalctl -u {args.name} -f shows it"
    )
    if args.out is None:
        sys.stdout.write(unit)
        print(f"as /etc/systemd/system/{args.name}.service, then: {install}", file=sys.stderr)
    else:
        atomic_write_bytes(args.out, unit.encode())
        print(
            f"wrote {args.out}; copied to /etc/systemd/system/{args.name}.service, then: {install}",
            file=sys.stderr,
        )
    return 0


def _check_restartable(command: str, parsed: argparse.Namespace) -> None:
    """A service starts its command again after each end (Restart=always, systemctl restart),
    so a file of one fixed name is the last start's. edge record, and edge run from a camera
    or stream, refuse to write over it: refused here. edge run from a file replaces it: said.
    Neither with --segment (each start names its files anew) or --overwrite."""
    from edge.errors import ConfigError
    from edge.stream.sinks import sink_file
    from edge.stream.sources import is_live

    if parsed.segment is not None or getattr(parsed, "overwrite", False):
        return
    fixed = [uri for uri in (parsed.sink or []) if sink_file(uri) is not None]
    if not fixed:
        return
    names = ", ".join(fixed)
    if command == "record" or any(is_live(source) for source in _sources(parsed)):
        refuser = "edge record" if command == "record" else "edge run from a camera or stream"
        raise ConfigError(
            f"edge service {command}: the service starts edge {command} again after each end "
            f"(Restart=always, systemctl restart), and {refuser} refuses to write over what the last "
            f"start finished ({names}): add --segment DURATION (each start names its files anew) or "
            "--overwrite (each start replaces them)"
        )
    print(
        f"warning: each start of the service replaces {names} (it starts again after each end): add "
        "--segment DURATION to keep what every start wrote",
        file=sys.stderr,
    )


def _sources(parsed: argparse.Namespace) -> list[str]:
    """The command's source, or its cameras' (edge run --camera NAME=URI)."""
    if parsed.source is not None:
        return [parsed.source]
    return [uri for _, uri in getattr(parsed, "camera", None) or ()]


def _sources_said(parsed: argparse.Namespace) -> str:
    if parsed.source is not None:
        return str(parsed.source)
    return " ".join(f"{name}={uri}" for name, uri in parsed.camera)


def cmd_alive(args: argparse.Namespace) -> int:
    from edge.stream.heartbeat import alive

    fine, line = alive(args.heartbeat, within_s=args.within)
    print(f"{'alive' if fine else 'not alive'}: {line}")
    return 0 if fine else 1


def add_alive_command(sub: Any) -> None:
    from edge.stream.heartbeat import ALIVE_WITHIN_S

    p = add_command(
        sub,
        "alive",
        help="whether the run writing a --heartbeat file is making progress (a health check)",
        epilog="exit status: 0 it made progress within --within seconds; 1 it did not, is stuck, or "
        "no run writes the file",
    )
    p.add_argument("heartbeat", metavar="FILE", help="the file edge run or edge record --heartbeat writes")
    p.add_argument(
        "--within",
        type=positive_seconds,
        default=ALIVE_WITHIN_S,
        metavar="S",
        help="how recent its progress must be; default: %(default)g",
    )
    p.set_defaults(func=cmd_alive)


def program() -> list[str]:
    """How a service starts this edge: the venv's ``edge`` script, else its Python with -m."""
    script = Path(sys.executable).parent / "edge"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "edge"]


def camera_groups(source: str) -> list[str]:
    """``video`` for a camera opened through a device node, where that group exists."""
    import grp

    if not source.startswith(_CAMERAS):
        return []
    try:
        grp.getgrnam("video")
    except KeyError:
        return []
    return ["video"]
