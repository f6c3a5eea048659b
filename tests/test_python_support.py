"""The oldest Python edge supports (JetPack 6's 3.10) is checked where it cannot be run: no
3.10 interpreter can be installed here, so the grammar and mypy's version stand in for it."""

from __future__ import annotations

import ast
import re

from tests.conftest import ROOT


def _setting(name: str) -> str:
    # tomllib is 3.11's: these tests run on the oldest Python too
    found = re.search(rf'^{re.escape(name)} = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M)
    assert found, name
    return found.group(1)


def _oldest() -> tuple[int, int]:
    found = re.fullmatch(r">=(\d+)\.(\d+)", _setting("requires-python"))
    assert found, _setting("requires-python")
    return int(found.group(1)), int(found.group(2))


def test_every_module_parses_with_the_oldest_pythons_grammar() -> None:
    oldest = _oldest()
    files = [
        ROOT / "build_engines.py",
        *(p for d in ("edge", "calib", "plugins") for p in (ROOT / d).rglob("*.py")),
    ]
    assert len(files) > 100
    for path in files:
        ast.parse(path.read_text(encoding="utf-8"), str(path), feature_version=oldest)


def test_mypy_and_ruff_check_against_the_oldest_python() -> None:
    assert _setting("python_version") == "{}.{}".format(*_oldest())
    assert _setting("target-version") == "py{}{}".format(*_oldest())
