"""edge COMMAND --help: what the command does, and examples that parse as written."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

import pytest

from edge.cli import build_parser, main
from edge.cli_help import EXAMPLES


def _commands() -> dict[str, argparse.ArgumentParser]:
    (sub,) = (a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def test_every_command_says_what_it_does_and_has_examples() -> None:
    commands = _commands()
    assert set(EXAMPLES) == set(commands)
    for name, parser in commands.items():
        assert parser.description and parser.description[0].isupper(), name
        assert EXAMPLES[name], name


@pytest.mark.parametrize(("name", "line"), [(n, line) for n, rows in EXAMPLES.items() for line, _ in rows])
def test_each_example_parses_as_written(
    name: str, line: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the output paths they name are checked where they would be written
    argv = shlex.split(line.partition(" | ")[0])  # the program it pipes into is not edge's
    assert argv[0] == "edge"
    try:
        args = build_parser().parse_args(argv[1:])
    except SystemExit as exc:
        pytest.fail(f"{line!r} does not parse (exit {exc.code})")
    assert argv[1] == name and callable(args.func)


def test_help_wraps_its_prose_to_the_terminal_but_not_the_examples(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "60")
    with pytest.raises(SystemExit) as info:
        main(["record", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[lines.index("examples:") + 1] == f"  {EXAMPLES['record'][0][0]}"  # whole, to copy
    assert len(EXAMPLES["record"][0][0]) > 60
    wrapped = [x for x in lines if not x.startswith("  edge ")]
    assert all(len(x) <= 60 for x in wrapped), [x for x in wrapped if len(x) > 60]
    assert "Write a source's frames to a video or folder" in " ".join(lines)
