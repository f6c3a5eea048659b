"""TOML written by edge (a replay rig, a new rig): strings, numbers and keys as TOML reads
them back (tomllib), without a TOML writer dependency for the few values a rig holds."""

from __future__ import annotations

from edge.errors import ConfigError

# TOML's bare keys: a camera name with a '.' in it would be read as a dotted key
_BARE = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def toml_string(text: str) -> str:
    """``text`` as a TOML basic string: the escapes TOML names, and its other control
    characters (DEL among them, which TOML refuses raw) as \\uXXXX."""
    out = []
    for c in text:
        if c in _ESCAPES:
            out.append(_ESCAPES[c])
        elif ord(c) < 0x20 or ord(c) == 0x7F:
            out.append(f"\\u{ord(c):04X}")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def toml_value(value: object) -> str:
    """A rig's value (text, a whole number or a number) as TOML writes it."""
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return repr(value)
    raise ConfigError(f"a rig holds text and numbers, got {value!r}")


def toml_key(key: str) -> str:
    return key if key and set(key) <= _BARE else toml_string(key)
