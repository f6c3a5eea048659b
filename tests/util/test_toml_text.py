"""TOML edge writes (edge.util.toml_text): what tomllib reads back is what was written."""

from __future__ import annotations

import sys

import pytest

from edge.errors import ConfigError
from edge.util.toml_text import toml_key, toml_string, toml_value

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@pytest.mark.parametrize(
    "text",
    ["plain", 'a "quoted" \\path\\', "tab\there\nline", "del\x7f and \x01", "Zürich ⛟ 🚗", ""],
)
def test_text_is_written_as_toml_reads_it_back(text: str) -> None:
    assert tomllib.loads(f"x = {toml_string(text)}")["x"] == text


def test_keys_and_numbers_are_written_as_toml_reads_them_back() -> None:
    for key in ("front", "rear-left_2", "rear.left", "a b", ""):
        assert list(tomllib.loads(f"{toml_key(key)} = 1")) == [key]
    for number in (0, -3, 2.5, 1e-05, 123456789.125):
        assert tomllib.loads(f"x = {toml_value(number)}")["x"] == number
    with pytest.raises(ConfigError, match="a rig holds text and numbers, got True"):
        toml_value(True)
