"""TensorRT's Python API, as data: which classes, members, enum values and keyword arguments
each TensorRT version's ``tensorrt`` module has, what kind of name each member is and each
overload's parameters (``data/tensorrt_python_api.json``).

TensorRT cannot be installed where edge is developed, so the calls edge/backends/tensorrt.py
makes are checked against this instead (tests/backends/test_trt_python_api.py): a name that
one supported version lacks fails the tests there, not a build on a Jetson.

The data is read from NVIDIA's TensorRT repository (github.com/NVIDIA/TensorRT, Apache-2.0):
the pybind11 bindings under ``python/src``, the package's ``tensorrt/__init__.py`` and, for
the parameters of member functions bound without names, the C++ headers under ``include``, at
one tag per version. ``python -m edge.backends.trt_python_api REPO`` writes it again from a clone.
Only names are kept, no code or text of theirs.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.backends.cpp_text import (
    STRING,
    binding,
    blank_comments,
    skip_balanced,
    split_args,
    statement_end,
)
from edge.errors import ConfigError

DATA = Path(__file__).with_name("data") / "tensorrt_python_api.json"
# JetPack 6.1/6.2's TensorRT, JetPack 7.0's, the last 10.x, and the desktop 11.x releases
TAGS = {"10.3": "v10.3.0", "10.13": "v10.13.0", "10.16": "v10.16", "11.0": "v11.0", "11.1": "v11.1"}
# the bindings, the package's Python, and the C++ headers (how many parameters a bound member
# function takes)
SOURCES = ("python/src", "python/packaging/bindings_wheel/tensorrt/__init__.py", "include")

_DECLARATION = re.compile(r"py::(class_|enum_)\s*<")
_CHAINED = re.compile(r"\.\s*(def\w*|value)\s*\(")
_KWARG = re.compile(r'"(\w+)"_a\b|py::arg\(\s*"(\w+)"\s*\)')
# what each pybind11 binding call makes of its name: a method (called with parentheses), a
# property (read, and assigned where not read-only), an enum value
_KINDS = {
    "def": "method",
    "def_static": "static",
    "value": "value",
    "def_property": "property",
    "def_readwrite": "property",
    "def_property_static": "property",
    "def_property_readonly": "readonly",
    "def_readonly": "readonly",
    "def_property_readonly_static": "readonly",
}
CALLABLE = {"method", "static", "function"}


@dataclass(frozen=True)
class _Def:
    """One ``.def*(`` / ``.value(`` of a binding statement."""

    method: str  # def, def_static, def_property, value, ...
    name: str
    kwargs: set[str]
    signature: list[str] | None  # cpp_text.binding's; None where unknown
    returns: str | None  # the C++ type it returns; None where unknown


def _chain(text: str, start: int, end: int, *, method: bool, headers: str) -> Iterable[_Def]:
    """Each ``.def*(`` / ``.value(`` called at the top level of the statement text[start:end];
    ``method``: the statement binds a class (its functions take the object first)."""
    i = start
    while i < end:
        c = text[i]
        if c in "({[":
            i = skip_balanced(text, i)
            continue
        m = _CHAINED.match(text, i)
        if m is None:
            i += 1
            continue
        close = skip_balanced(text, m.end() - 1)
        args = text[m.end() : close - 1]
        name = STRING.match(args.lstrip())
        if name is not None or args.lstrip().startswith("py::init"):
            kwargs = {a or b for a, b in _KWARG.findall(args)}
            kind = m.group(1)
            signature, returns = (
                binding(split_args(args), text, headers, method=method and kind == "def")
                if kind in ("def", "def_static")
                else (None, None)
            )
            yield _Def(kind, name.group(1) if name else "__init__", kwargs, signature, returns)
        i = close


def _bindings(text: str, api: dict[str, Any], headers: str = "") -> None:
    """Add the classes, enums, members and module functions one binding file defines."""
    text = blank_comments(text)
    variables: dict[str, str] = {"m": ""}
    cpp_names: dict[str, str] = api.setdefault("_cpp", {})
    for decl in _DECLARATION.finditer(text):
        targs_end = skip_balanced(text, decl.end() - 1)
        targs = split_args(text[decl.end() : targs_end - 1])
        rest = re.compile(r"\s*(\w*)\s*[({]").match(text, targs_end)
        if rest is None:
            continue
        var = rest.group(1)
        open_at = rest.end() - 1
        close = skip_balanced(text, open_at)
        args = split_args(text[open_at + 1 : close - 1])
        if len(args) < 2 or not (pyname := STRING.match(args[1])):
            continue
        scope = variables.get(args[0], args[0])
        full = f"{scope}.{pyname.group(1)}" if scope else pyname.group(1)
        cpp = targs[0]
        kind = "class" if decl.group(1) == "class_" else "enum"
        cpp_names[cpp] = full
        bases = [cpp_names[t] for t in targs[1:] if t in cpp_names]
        entry = _class(api, full, kind)
        entry["bases"] = entry["bases"] or bases
        if scope:  # a nested enum is an attribute of its class
            _add_member(_class(api, scope, "class"), pyname.group(1), set(), "class")
        if var:
            variables[var] = full
        end = statement_end(text, close)
        exported = "export_values" in text[close:end]
        for d in _chain(text, close, end, method=kind == "class", headers=headers):
            _add_member(entry, d.name, d.kwargs, _KINDS.get(d.method, "attribute"), d.signature, d.returns)
            if d.method == "value" and exported and scope:
                _add_member(api["classes"][scope], d.name, set(), "value")
    # statements on a binding's variable, and the module's own functions: VAR.def(...)
    for var, full in variables.items():
        owner = api["classes"][full] if full else api["module"]
        for m in re.finditer(rf'(?<![\w.]){re.escape(var)}\.attr\("(\w+)"\)\s*=(?!=)', text):
            _add_member(owner, m.group(1), set(), "attribute")  # m.attr("float32") = ...
        for m in re.finditer(rf"(?<![\w.]){re.escape(var)}\s*(?=\.\s*def)", text):
            end = statement_end(text, m.end())
            for d in _chain(text, m.end(), end, method=bool(full), headers=headers):
                kind = "function" if not full and d.method == "def" else _KINDS.get(d.method, "attribute")
                _add_member(owner, d.name, d.kwargs, kind, d.signature, d.returns)


def _class(api: dict[str, Any], name: str, kind: str) -> dict[str, Any]:
    entry: dict[str, Any] = api["classes"].setdefault(name, {"kind": kind, "bases": [], "members": {}})
    return entry


def _add_member(
    entry: dict[str, Any],
    name: str,
    kwargs: set[str],
    kind: str = "attribute",
    signature: list[str] | None = None,
    returns: str | None = None,
) -> None:
    """Record ``name`` in a class's record or the module's names: its keywords, what kind of
    name it is ("attribute" where two bindings disagree: nothing is checked of it) and, for a
    function, each overload's parameters and what it returns (C++ here; ``extract`` names the
    Python type)."""
    members = entry.get("members", entry)
    record = members.setdefault(name, {"kwargs": [], "kind": kind, "signatures": [], "returns": []})
    record["kwargs"] = sorted(set(record["kwargs"]) | kwargs)
    if record["kind"] != kind:
        record["kind"] = "attribute"
    overloads = list(zip(record["signatures"], record["returns"], strict=True))
    if kind in CALLABLE and (signature, returns) not in overloads:
        record["signatures"].append(signature)
        record["returns"].append(returns)


def _package(text: str, api: dict[str, Any]) -> None:
    """What ``tensorrt/__init__.py`` adds: module functions, ``__version__``, class attributes."""
    tree = ast.parse(text.replace("##", "__"))  # its build fills ##PLACEHOLDERS## in
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            a = node.args
            kw = {p.arg for p in a.args + a.kwonlyargs}
            params = [p.arg for p in a.args]
            for k in range(1, len(a.defaults) + 1):
                params[-k] += "="
            plain = not (a.posonlyargs or a.kwonlyargs or a.vararg or a.kwarg)
            _add_member(api["module"], node.name, kw, "function", params if plain else None)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    _add_member(api["module"], target.id, set())
                elif isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name):
                    cls = api["classes"].get(target.value.id)
                    if cls is not None:
                        _add_member(cls, target.attr, set())


def extract(files: Mapping[str, str]) -> dict[str, Any]:
    """The API of one version from its sources: {path: text} for SOURCES' files (.cpp, .h,
    __init__.py)."""
    cpp = sorted(p for p in files if p.endswith(".cpp"))
    first: dict[str, Any] = {"classes": {}, "module": {}}
    for path in cpp:  # which C++ type is which Python class, for bases bound in another file
        _bindings(files[path], first)
    api: dict[str, Any] = {"classes": {}, "module": {}, "_cpp": first["_cpp"]}
    headers = "\n".join(blank_comments(files[p]) for p in sorted(files) if p.endswith(".h"))
    for path in cpp:
        _bindings(files[path], api, headers)
    for path, text in files.items():
        if path.endswith("__init__.py"):
            _package(text, api)
    cpp_names = api.pop("_cpp")
    for name, entry in api["classes"].items():  # every class and enum is an attribute of the module
        if "." not in name:
            _add_member(api["module"], name, set(), "class")
        entry["members"] = dict(sorted(entry["members"].items()))
    api["module"] = dict(sorted(api["module"].items()))
    for members in [api["module"], *(entry["members"] for entry in api["classes"].values())]:
        for record in members.values():
            if record["kind"] not in CALLABLE:
                del record["signatures"], record["returns"]
            else:
                record["returns"] = [_python_type(t, cpp_names) for t in record["returns"]]
    api["classes"] = dict(sorted(api["classes"].items()))
    return api


def _python_type(cpp: str | None, cpp_names: Mapping[str, str]) -> str | None:
    """What a bound function returning the C++ type ``cpp`` gives Python: a bound class's name,
    bool, int, float, str, list, tuple, None (void), or the C++ type where none of these."""
    if cpp is None:
        return None
    bare = re.sub(r"\s*[*&]+$", "", cpp)
    if bare in cpp_names:
        return cpp_names[bare]
    if re.fullmatch(r"(?:u?int\d+_t|int|size_t|long|unsigned|ptrdiff_t)", bare):
        return "int"
    if cpp in ("void", "bool", "float", "double"):
        return {"void": "None", "double": "float"}.get(cpp, cpp)
    if re.fullmatch(r"(?:char|AsciiChar)\*|std::string", cpp):
        return "str"
    if re.match(r"std::(vector|array|list)<", cpp):
        return "list"
    if re.match(r"std::(pair|tuple)<", cpp):
        return "tuple"
    return cpp


def extract_from_git(repo: Path, tag: str) -> dict[str, Any]:
    """``extract`` of a TensorRT clone's files at ``tag`` (read with git; no checkout)."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
        ).stdout

    paths = git("ls-tree", "-r", "--name-only", tag, *SOURCES).split()
    return extract({p: git("show", f"{tag}:{p}") for p in paths if p.endswith((".cpp", ".h", "__init__.py"))})


def compact(per_version: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    """One document for every version: each class's and member's versions where not all."""
    versions = list(per_version)

    def since(present: list[str]) -> list[str] | None:
        return None if present == versions else present

    def shape(record: Mapping[str, Any]) -> dict[str, Any]:
        """What a name is in one version: its kind, and a function's overloads."""
        if record["kind"] in CALLABLE:
            return {"kind": record["kind"], "signatures": record["signatures"], "returns": record["returns"]}
        return {"kind": record["kind"]}

    def merged(names_by_version: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> dict[str, Any]:
        """{name: its versions, keywords, kind and signatures} of {version: {name: record}}; a
        version whose kind or signatures differ from the newest's has them in ``by_version``."""
        out: dict[str, Any] = {}
        for name in sorted({n for names in names_by_version.values() for n in names}):
            present = [v for v, names in names_by_version.items() if name in names]
            kwargs = sorted({k for v in present for k in names_by_version[v][name]["kwargs"]})
            newest = shape(names_by_version[present[-1]][name])
            out[name] = {"versions": since(present), "kwargs": kwargs, **newest}
            older = {v: shape(names_by_version[v][name]) for v in present[:-1]}
            if differing := {v: s for v, s in older.items() if s != newest}:
                out[name]["by_version"] = differing
        return out

    classes: dict[str, Any] = {}
    for name in sorted({c for api in per_version.values() for c in api["classes"]}):
        having = {v: per_version[v]["classes"][name] for v in versions if name in per_version[v]["classes"]}
        first = next(iter(having.values()))
        classes[name] = {
            "kind": first["kind"],
            "bases": first["bases"],
            "versions": since(list(having)),
            "members": merged({v: entry["members"] for v, entry in having.items()}),
        }
    module = merged({v: api["module"] for v, api in per_version.items()})
    return {"versions": versions, "classes": classes, "module": module}


@dataclass(frozen=True)
class TrtPythonApi:
    """One version's API: ``has("Builder", "create_network")``, ``member(...)["kwargs"]``;
    a member's ``kind`` (method, static, function, property, readonly, value, class, attribute)
    and a function's ``signatures``: per overload its parameters, ``name=`` with a default,
    ``""`` unnamed (positional only), or None where the bindings do not say, and ``returns``:
    per overload what it gives Python (a class's name, bool, int, str, None, ...; a C++ type
    where none of these; None where unknown)."""

    version: str
    classes: Mapping[str, Any]
    module: Mapping[str, Any]

    def _present(self, record: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
        """``record`` as this version has it, or None where it lacks it."""
        if record is None or (record["versions"] is not None and self.version not in record["versions"]):
            return None
        if (own := record.get("by_version", {}).get(self.version)) is not None:
            return {k: v for k, v in {**record, **own}.items() if k != "by_version"}
        return record

    def member(self, cls: str | None, name: str) -> Mapping[str, Any] | None:
        """The record of ``cls.name`` (``cls`` None: the module's), bases searched; None if absent."""
        if cls is None:
            return self._present(self.module.get(name))
        entry = self._present(self.classes.get(cls))
        if entry is None:
            return None
        if (record := self._present(entry["members"].get(name))) is not None:
            return record
        for base in entry["bases"]:
            if (found := self.member(base, name)) is not None:
                return found
        return None

    def has(self, cls: str | None, name: str) -> bool:
        return self.member(cls, name) is not None

    def values(self, enum: str) -> set[str]:
        """The names an enum (``BuilderFlag``) has in this version."""
        entry = self._present(self.classes.get(enum))
        if entry is None or entry["kind"] != "enum":
            raise ConfigError(f"TensorRT {self.version} has no enum {enum!r}")
        return {m for m, r in entry["members"].items() if self._present(r) is not None}


def versions(path: Path = DATA) -> list[str]:
    return list(json.loads(path.read_text())["versions"])


def load(version: str, path: Path = DATA) -> TrtPythonApi:
    """The API of ``version`` ("10.3", "11.1": one of ``versions()``)."""
    doc = json.loads(path.read_text())
    if version not in doc["versions"]:
        raise ConfigError(f"no TensorRT {version!r} in {path.name}; it has {', '.join(doc['versions'])}")
    return TrtPythonApi(version=version, classes=doc["classes"], module=doc["module"])


def _dumps(doc: dict[str, Any]) -> str:
    """Indented JSON with each member's record on its own line: diffs show the names."""
    marker = "\x00"
    flat = {
        **doc,
        "classes": {
            name: {**entry, "members": {m: marker + json.dumps(r) for m, r in entry["members"].items()}}
            for name, entry in doc["classes"].items()
        },
        "module": {m: marker + json.dumps(r) for m, r in doc["module"].items()},
    }
    text = json.dumps(flat, indent=1)
    return re.sub(r'"\\u0000((?:[^"\\]|\\.)*)"', lambda m: json.loads(f'"{m.group(1)}"'), text) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m edge.backends.trt_python_api TENSORRT_REPO  (a clone of NVIDIA/TensorRT)")
        return 2
    repo = Path(args[0])
    per_version = {v: extract_from_git(repo, tag) for v, tag in TAGS.items()}
    doc = {
        "about": "TensorRT's Python API by version: classes and enums, their members and values, "
        "keyword arguments, module functions. Names only, read from the pybind11 bindings "
        "(python/src) and tensorrt/__init__.py of github.com/NVIDIA/TensorRT at the tags in "
        "'sources'. Written by python -m edge.backends.trt_python_api.",
        "sources": {v: f"github.com/NVIDIA/TensorRT at {tag}" for v, tag in TAGS.items()},
        **compact(per_version),
    }
    DATA.parent.mkdir(exist_ok=True)
    DATA.write_text(_dumps(doc))
    print(f"wrote {DATA} ({DATA.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
