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
    """(line number, argv) of each command in the Markdown's bash code blocks;
    continuation lines are joined, comments dropped and ``a && b`` (or ``||``, ``;``, ``|``)
    gives two commands."""
    commands: list[tuple[int, list[str]]] = []
    fence: str | None = None
    pending, start = "", 0
    for number, line in enumerate(markdown.splitlines(), start=1):
        if line.startswith("```"):
            fence = line[3:].strip() if fence is None else None
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
