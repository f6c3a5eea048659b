"""Which TensorRT versions a lint target stands for, and what each version's ONNX parser takes
beyond 10.1's operator list (edge/export/data/trt_onnx_ops.json).

A target is ``trt10`` (JetPack 6's 10.3), ``trt11`` (11.0 to the newest 11.x the table knows)
or one TensorRT release, ``10.13`` (a full version such as ``10.13.3.9`` names its release).
What no version of the target parses is an error; what only a later one of it parses is a
warning naming that version.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from edge.errors import ConfigError

TARGETS = ("trt10", "trt11")
_VERSION = re.compile(r"(\d+)\.(\d+)(?:\.\d+){0,2}")


@cache
def operator_table() -> dict[str, Any]:
    path = Path(__file__).parent / "data" / "trt_onnx_ops.json"
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def version_key(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def _releases() -> list[str]:
    return list(operator_table()["releases"])


def _known() -> str:
    by_major: dict[str, list[str]] = {}
    for release in _releases():
        by_major.setdefault(release.split(".")[0], []).append(release)
    return " and ".join(f"{r[0]} to {r[-1]}" for r in by_major.values())


def release_of(version: str) -> str | None:
    """The release (major.minor) the table knows that ``version`` ('10.13.3.9') is of, or None."""
    match = _VERSION.fullmatch(version.strip())
    if match is None:
        return None
    release = f"{int(match[1])}.{int(match[2])}"
    return release if release in _releases() else None


def resolve_target(name: str) -> str:
    """``name`` as a lint target: trt10, trt11, or a release such as '10.13'; a ConfigError
    naming what the table knows where it is neither."""
    if name in TARGETS:
        return name
    release = release_of(name)
    if release is not None:
        return release
    if _VERSION.fullmatch(name.strip()):
        raise ConfigError(
            f"lint target TensorRT {name} is not in the lint's table, which knows TensorRT {_known()}"
        )
    raise ConfigError(
        f"lint target {name!r} is unknown; choose {', '.join(TARGETS)} or a TensorRT version "
        f"({_known()}, e.g. 10.13)"
    )


def installed_target(version: str) -> str | None:
    """The lint target for an installed TensorRT ``version``: its release, or, for a release
    newer than the table's newest of its major, that newest (what later releases added is
    unknown here, not refused). None for a major the table does not know."""
    release = release_of(version)
    if release is not None:
        return release
    match = _VERSION.fullmatch(version.strip())
    if match is None:
        return None
    same_major = [r for r in _releases() if r.split(".")[0] == str(int(match[1]))]
    if not same_major or version_key(f"{int(match[1])}.{int(match[2])}") < version_key(same_major[0]):
        return None
    return same_major[-1]


@dataclass(frozen=True)
class Target:
    """A target's versions, and the TensorRT version that first parsed each later change:
    ``op:NAME`` (an operator), ``constant:NAME`` (its axes input may be computed),
    ``type:NAME:TYPE``, and the named features of the table's ``changes``."""

    name: str
    first: str
    newest: str
    since: dict[str, str]

    @classmethod
    def of(cls, name: str) -> Target:
        table = operator_table()
        name = resolve_target(name)
        spec = table["targets"].get(name, {"tensorrt": name, "newest": name})
        since: dict[str, str] = {}
        for change in table["changes"]:
            version = change["tensorrt"]
            keys = [f"op:{op}" for op in change.get("added", ())]
            keys += [f"constant:{op}" for op in change.get("constant_input_lifted", ())]
            keys += [f"type:{op}:{t}" for op, types in change.get("types_added", {}).items() for t in types]
            keys += list(change.get("features", ()))
            since.update((key, version) for key in keys)
        return cls(name, spec["tensorrt"], spec["newest"], since)

    def level(self, key: str) -> str | None:
        """None where the target's first version parses ``key``; "warning" where only a later
        one of the target does; "error" where none does (or the table has no such change)."""
        version = self.since.get(key)
        if version is not None and version_key(version) <= version_key(self.first):
            return None
        if version is not None and version_key(version) <= version_key(self.newest):
            return "warning"
        return "error"

    def needs(self, key: str) -> str:
        """Why ``key`` is a finding: the version that added it, against the target's."""
        version = self.since.get(key)
        if version is None:
            return ""
        return f"TensorRT {version} and later parse it; {self.described}"

    @property
    def versions(self) -> str:
        return self.first if self.first == self.newest else f"{self.first} to {self.newest}"

    @property
    def described(self) -> str:
        return f"{self.name} is {self.versions}" if self.name in TARGETS else f"the target is {self.first}"

    def opset_problem(self, opset: int) -> str | None:
        """Why ``opset`` may not import as written on this target (always a warning: the parser
        refuses no opset, it imports each node as the newest opset it knows), or None."""
        spec = operator_table()["opsets"]
        if opset < spec["min"]:
            return f"opset {opset} is older than {spec['min']}, the oldest TensorRT documents"
        documented = [(d["tensorrt"], d["max"]) for d in spec["documented"]]
        newest_max = max(m for v, m in documented if version_key(v) <= version_key(self.first))
        if opset <= newest_max:
            return None
        first_doc = next((v for v, m in documented if m >= opset), None)
        said = f"TensorRT {self.first} documents opsets {spec['min']} to {newest_max}"
        if first_doc is None:
            return f"opset {opset}: no TensorRT version the lint knows documents it; {said}"
        return f"opset {opset}: TensorRT {first_doc} and later document it; {said}"
