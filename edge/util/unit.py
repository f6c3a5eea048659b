"""A systemd unit that runs ``edge run`` or ``edge record`` as a service (``edge service``).

The README's dash camera unit, made for the machine it is written on: the absolute path of
this ``edge``, the folder the run's relative paths mean (a service starts in /), the user,
the camera's group, and each argument written as systemd reads ``ExecStart=``. There,
whitespace splits words and double quotes group them, with C escapes inside; ``%`` begins a
specifier and ``$`` a variable wherever they are, quoted or not, so both are doubled; a lone
``;`` separates commands. Hand-written units get this wrong: a sink path with a space, or a
camera URI with ``%20`` in it, starts something else than what was meant, or nothing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from edge.errors import OUTPUTS_STOPPED, ConfigError

DEFAULT_WATCHDOG_S = 60
# written as they are: anything else is quoted (a URI's ?&, for one, reads better quoted)
_PLAIN = re.compile(r"[A-Za-z0-9_@%$+=:,./-]+")


def exec_word(arg: str) -> str:
    """``arg`` as one word of an ``ExecStart=`` line: systemd's parser gives ``arg`` back."""
    if "\n" in arg or "\0" in arg:
        raise ConfigError(
            f"the command line's argument {arg!r} has a line break or NUL, which a unit file cannot hold"
        )
    text = arg.replace("%", "%%").replace("$", "$$")
    if _PLAIN.fullmatch(text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def exec_command(argv: Sequence[str]) -> str:
    """``argv`` (the program first) as the value of ``ExecStart=``."""
    return " ".join(exec_word(a) for a in argv)


def specifier_text(text: str, *, what: str) -> str:
    """``text`` for a setting systemd expands specifiers in (Description=, a path)."""
    if "\n" in text:
        raise ConfigError(f"{what} {text!r} has a line break, which a unit file cannot hold")
    return text.replace("%", "%%")


def unit_text(
    argv: Sequence[str],
    *,
    description: str,
    program: Sequence[str],
    workdir: str,
    user: str | None,
    groups: Sequence[str] = (),
    watchdog_s: int = DEFAULT_WATCHDOG_S,
    name: str = "edge",
) -> str:
    """The unit that runs ``PROGRAM ARGV`` (``program``: this edge, its absolute path first;
    ``argv[0]``: run or record) as ``user`` (None: root, no User= line) with ``groups``
    besides its own (``video`` for a camera), from ``workdir``. ``watchdog_s``: systemd
    kills and restarts a run that has made no progress that long (0: no watchdog)."""
    if not program or not Path(program[0]).is_absolute() or not Path(workdir).is_absolute():
        raise ConfigError(f"a unit needs absolute paths: got {list(program)!r} and {workdir!r}")
    lines = [
        f"# /etc/systemd/system/{name}.service, as edge service writes it",
        "[Unit]",
        f"Description={specifier_text(description, what='the description')}",
        "After=local-fs.target",
        "",
        "[Service]",
        "Type=notify",  # the run says READY=1 once its engines and source are open
        *([f"WatchdogSec={watchdog_s}"] if watchdog_s else []),
        "LimitCORE=0",  # the watchdog's SIGABRT writes the stacks to the journal, not a core
        *([f"User={user}"] if user else []),
        *([f"SupplementaryGroups={' '.join(groups)}"] if groups else []),
        f"WorkingDirectory={specifier_text(workdir, what='the working directory')}",
        f"ExecStart={exec_command([*program, *argv])}",
        "SuccessExitStatus=143",  # systemctl stop: SIGTERM, which finishes the outputs, then 143
        "TimeoutStopSec=30",
        "Restart=always",
        "RestartSec=5",
        f"RestartPreventExitStatus={OUTPUTS_STOPPED}",  # every output stopped: a full disk
        "",
        "[Install]",
        "WantedBy=multi-user.target",
    ]
    return "\n".join(lines) + "\n"
