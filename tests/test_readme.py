"""The READMEs' shell examples stay true: every edge / build_engines.py command parses with
today's arguments (and a build's models, size and checkpoints are accepted), and every
script a README runs exists with the options it is given. Nothing is run."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from edge.cli import build_parser
from edge.cli_build import build_parser as build_engines_parser
from edge.cli_build import requests_from_args
from edge.errors import ConfigError
from tests.conftest import ROOT

READMES = ("README.md", "edge/weights/README.md", "benchmarks/results/README.md")
_ENV_ASSIGNMENT = re.compile(r"^[A-Z_][A-Z0-9_]*=")
_SEPARATORS = {"&&", "||", ";", "|"}


def shell_commands(markdown: str) -> list[tuple[int, list[str]]]:
    """(line number, argv) of each command in the Markdown's bash code blocks, and of each
    systemd unit's ExecStart= in its ini blocks; continuation lines are joined, comments
    dropped and ``a && b`` (or ``||``, ``;``, ``|``) gives two commands."""
    commands: list[tuple[int, list[str]]] = []
    fence: str | None = None
    pending, start = "", 0
    for number, line in enumerate(markdown.splitlines(), start=1):
        if line.startswith("```"):
            fence = line[3:].strip() if fence is None else None
            continue
        if fence == "ini" and line.startswith("ExecStart="):  # a systemd unit's command
            commands.append((number, shlex.split(line.removeprefix("ExecStart="))))
            continue
        if fence not in ("bash", "sh"):
            continue
        if not pending:
            start = number
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        tokens = shlex.split(pending + line, comments=True)
        pending = ""
        argv: list[str] = []
        for token in [*tokens, "&&"]:
            if token not in _SEPARATORS:
                argv.append(token)
            elif argv:
                commands.append((start, argv))
                argv = []
    return commands


def _without_env(argv: list[str]) -> list[str]:
    while argv and _ENV_ASSIGNMENT.match(argv[0]):
        argv = argv[1:]
    return argv


def _program(argv: list[str]) -> tuple[str, list[str]]:
    """What a command runs: 'edge', 'build_engines.py', a script path, or '' (not ours)."""
    argv = _without_env(argv)
    if not argv:
        return "", []
    head, rest = Path(argv[0]).name, argv[1:]
    if head == "edge":
        return "edge", rest
    if head in ("python", "python3") and rest:
        if rest[0] == "-m" and len(rest) > 1:
            module = rest[1]
            if module == "edge":
                return "edge", rest[2:]
            if module.startswith(("plugins.", "benchmarks.")):
                return module.replace(".", "/") + ".py", rest[2:]
            return "", []
        if rest[0].startswith("-"):  # -c CODE, or an interpreter option
            return "", []
        return ("build_engines.py", rest[1:]) if rest[0] == "build_engines.py" else (rest[0], rest[1:])
    if head == "bash" and rest:
        return rest[0], rest[1:]
    if head == "pytest" and rest:
        return rest[0], []  # its options are pytest's and its plugins'
    if argv[0].startswith(("plugins/", "benchmarks/")):
        return argv[0], rest
    return "", []


def _cases() -> list[tuple[str, int, list[str]]]:
    return [
        (readme, number, argv)
        for readme in READMES
        for number, argv in shell_commands((ROOT / readme).read_text())
        if _program(argv)[0]
    ]


CASES = _cases()


def test_the_readme_examples_are_found() -> None:
    # guards the extractor: README.md shows the main job's command and every edge subcommand
    seen = {
        _program(argv)[1][0]
        for readme, _, argv in CASES
        if readme == "README.md" and _program(argv)[0] == "edge"
    }
    subcommands = set(build_parser()._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    assert subcommands <= seen, f"README.md shows no example of: {sorted(subcommands - seen)}"
    assert [".venv/bin/edge", "demo"] in [argv for _, _, argv in CASES]  # the main job's command
    assert any(argv[0] == "/home/nvidia/edge/.venv/bin/edge" for _, _, argv in CASES)  # the unit's


def problem(argv: list[str]) -> str | None:
    """Why ``argv`` would not run as the README says, or None."""
    program, args = _program(argv)
    if program in ("edge", "build_engines.py"):
        parser = build_parser() if program == "edge" else build_engines_parser()
        try:
            parsed = parser.parse_args(args)
        except SystemExit as exc:  # --version and --help exit 0 once they have printed
            return None if exc.code == 0 else f"does not parse (exit {exc.code})"
        if program == "build_engines.py" or args[0] == "build":
            try:
                requests_from_args(parsed)  # model names, size and --checkpoint names
            except ConfigError as exc:
                return str(exc)
        return None
    script = ROOT / program
    if not script.is_file():
        return f"{program} does not exist"
    source = script.read_text()
    for option in (a.split("=", 1)[0] for a in args if a.startswith("--")):
        if f'"{option}"' not in source:
            return f"{program} has no option {option}"
    if program == "benchmarks/run_on_gpu.sh":
        steps = set(re.findall(r"^\s+([a-z]+)\)$", source, flags=re.M)) | {"issues"}
        if unknown := sorted(set(args) - steps):
            return f"unknown steps {unknown}"
    return None


@pytest.mark.parametrize(("readme", "line", "argv"), CASES, ids=[f"{r}:{n}" for r, n, _ in CASES])
def test_readme_command_is_valid(
    readme: str, line: int, argv: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)  # output paths are checked where the README's commands are run
    assert problem(argv) is None, f"{readme}:{line}: {shlex.join(argv)}: {problem(argv)}"


def test_the_extractor_reads_commands_as_a_shell_does() -> None:
    markdown = "\n".join(
        [
            "```python",
            "edge run not-shell",
            "```",
            "```bash",
            "python3 -m venv .venv && .venv/bin/edge demo   # the main job",
            "python -c 'import cv2' || pip install 'numpy<2'",
            "edge run 'rtsp://h/s#transport=tcp' --sink a.mp4 \\",
            "    --max-frames 3",
            "                     # a comment line",
            "```",
        ]
    )
    assert shell_commands(markdown) == [
        (5, ["python3", "-m", "venv", ".venv"]),
        (5, [".venv/bin/edge", "demo"]),
        (6, ["python", "-c", "import cv2"]),
        (6, ["pip", "install", "numpy<2"]),
        (7, ["edge", "run", "rtsp://h/s#transport=tcp", "--sink", "a.mp4", "--max-frames", "3"]),
    ]


@pytest.mark.parametrize(
    ("command", "why"),
    [
        ("edge run x.mp4 --sinks a.mp4", "does not parse"),
        ("edge bench --size 256x512 --backend onnx", "does not parse"),
        ("python build_engines.py --models depth_tiny panoptic_nope", "unknown model"),
        ("edge build --size 250x512", "multiples of 32"),
        ("python benchmarks/bench_pipeline.py --no-such-option 1", "no option --no-such-option"),
        ("python benchmarks/gone.py", "does not exist"),
        ("bash benchmarks/run_on_gpu.sh roi warp", "unknown steps ['warp']"),
    ],
)
def test_a_stale_command_is_caught(command: str, why: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    found = problem(shlex.split(command))
    assert found is not None and why in found, found


# The device machine comes rarely and for 15 minutes: a stale option in the script it runs
# would waste the visit, so the script's commands are checked like the READMEs'.
GPU_SCRIPT = "benchmarks/run_on_gpu.sh"
_REDIRECTION = re.compile(r"^\d*>")


def script_commands(source: str) -> list[tuple[int, list[str]]]:
    """(line number, argv) of each command of a bash script, with its variables given the
    values the script sets (``NAME=${NAME:-default}``: the default; a ``for`` loop's: its
    first), ``$(...)`` a placeholder, and redirections and ``timeout N`` dropped."""
    values: dict[str, str] = {}
    for name, value in re.findall(r"^\s*([A-Za-z_]\w*)=(\"[^\"]*\"|\S+)", source, flags=re.M):
        default = re.fullmatch(r"\$\{\w+:-([^}]*)\}", value)
        values.setdefault(name, default.group(1) if default else value.strip('"'))
    for name, first in re.findall(r"^\s*for (\w+) in (\S+)", source, flags=re.M):
        values.setdefault(name, first)

    def substituted(line: str) -> str:
        line = re.sub(r"\$\(\w+\)", "1", line)
        return re.sub(r"\$\{(\w+)(?::-[^}]*)?\}|\$(\w+)", lambda m: values.get(m[1] or m[2], m[0]), line)

    commands = []
    for number, argv in shell_commands("```bash\n" + substituted(source) + "\n```"):
        argv = [token for token in argv if not _REDIRECTION.match(token)]
        if argv[:1] == ["timeout"]:
            argv = argv[2:]
        commands.append((number - 1, argv))
    return commands


SCRIPT_CASES = [
    (number, argv)
    for number, argv in script_commands((ROOT / GPU_SCRIPT).read_text())
    if _program(argv)[0] or "pytest" in argv
]


def _pytest_problem(argv: list[str]) -> str | None:
    missing = [a for a in argv if a.startswith("tests/") and not (ROOT / a).exists()]
    return f"pytest is given paths that do not exist: {missing}" if missing else None


@pytest.mark.parametrize(("line", "argv"), SCRIPT_CASES, ids=[f"{GPU_SCRIPT}:{n}" for n, _ in SCRIPT_CASES])
def test_gpu_script_command_is_valid(line: int, argv: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    found = _pytest_problem(argv) if "pytest" in argv else problem(argv)
    assert found is None, f"{GPU_SCRIPT}:{line}: {shlex.join(argv)}: {found}"


def test_the_gpu_script_commands_are_found() -> None:
    # guards script_commands: the steps that close issues #5 and #9 on the device machine
    found = {(_program(argv)[0], *_program(argv)[1][:1]) for _, argv in SCRIPT_CASES}
    assert {("build_engines.py", "--models"), ("edge", "bench"), ("edge", "run")} <= found, found
    assert ("benchmarks/bench_roi_align_gpu.py", "--repeats") in found, found
    assert sum("pytest" in argv for _, argv in SCRIPT_CASES) == 4
    build = next(argv for _, argv in SCRIPT_CASES if _program(argv)[0] == "build_engines.py")
    assert build[build.index("--models") + 1 : build.index("--backend")] == [
        "panoptic_fpn_r18",
        "depth_r18",
        "panoptic_fpn_r50",
    ]


def test_script_commands_read_variables_loops_and_redirections() -> None:
    script = "\n".join(
        [
            "WORK=${WORK:-/tmp/w}",
            'models="a b"  # two',
            "for m in x y; do",
            '  timeout 9 python3 -m edge run "$m" --out "$WORK/$m.json" --models $models 2>&1 | tail -3',
            '  python3 tool.py --n $(nproc) 2>"$WORK/log"',
            "done",
        ]
    )
    assert [(n, argv) for n, argv in script_commands(script) if argv[0] in ("python3", "tail")] == [
        (4, ["python3", "-m", "edge", "run", "x", "--out", "/tmp/w/x.json", "--models", "a", "b"]),
        (4, ["tail", "-3"]),
        (5, ["python3", "tool.py", "--n", "1"]),
    ]


_GPU_MARK = re.compile(r"^\s*@pytest\.mark\.gpu\b|^pytestmark\b.*\bgpu\b|marks=.*pytest\.mark\.gpu\b", re.M)


def test_every_gpu_test_is_one_the_gpu_script_runs() -> None:
    # a test marked gpu outside the paths given to the script's gputests step would never run
    gputests = next(argv for _, argv in SCRIPT_CASES if "-m gpu" in shlex.join(argv))  # the first
    paths = [ROOT / a for a in gputests if a.startswith("tests/")]
    marked = [p for p in (ROOT / "tests").rglob("*.py") if _GPU_MARK.search(p.read_text())]
    assert len(marked) >= 5, marked  # the RoIAlign kernels, the torch backend on CUDA, the ops
    missed = [str(p.relative_to(ROOT)) for p in marked if not any(p == q or q in p.parents for q in paths)]
    assert not missed, f"tests marked gpu that {GPU_SCRIPT} does not run: {missed}"


def test_the_readme_systemd_unit_is_one_systemd_accepts(tmp_path: Path) -> None:
    """The dash camera unit, checked by systemd's own `systemd-analyze verify` (its program
    swapped for one that exists here): no unknown section or key, no bad value. And the
    status it is told not to restart on is the one a run whose outputs all stopped ends
    with."""
    import shutil
    import subprocess
    import sys

    from edge.errors import OUTPUTS_STOPPED

    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed here")
    (unit,) = re.findall(r"```ini\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    program = re.search(r"^ExecStart=(\S+)", unit, flags=re.M)
    assert program is not None
    path = tmp_path / "edge-dashcam.service"
    path.write_text(unit.replace(program.group(1), sys.executable).replace("User=nvidia", "User=root"))
    done = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True, text=True)
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr
    assert f"RestartPreventExitStatus={OUTPUTS_STOPPED}\n" in unit
    # edge run speaks sd_notify (edge.stream.watchdog): a notify unit waits for its READY=1
    assert "Type=notify\n" in unit and "WatchdogSec=" in unit
    # the watchdog's SIGABRT leaves the stacks in the journal, not a core file on the disk
    assert "LimitCORE=0\n" in unit


def test_the_readme_systemd_unit_is_the_one_edge_service_writes() -> None:
    """The README's unit is `edge service`'s for its command line, user and folder: the
    trial (benchmarks/systemd_trial.py) runs what edge service writes."""
    import shlex

    from edge.util.unit import unit_text

    (unit,) = re.findall(r"```ini\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    fields = dict(x.split("=", 1) for x in unit.splitlines() if "=" in x and not x.startswith("#"))
    program, *argv = shlex.split(fields["ExecStart"])
    assert unit == unit_text(
        argv,
        description=fields["Description"],
        program=[program],
        workdir="/home/nvidia/edge",
        user="nvidia",
        groups=["video"],
        name="edge-dashcam",
    )
