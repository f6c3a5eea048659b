"""TensorRT's Python API, as data: which classes, members, enum values and keyword arguments
each TensorRT version's ``tensorrt`` module has (``data/tensorrt_python_api.json``).

TensorRT cannot be installed where edge is developed, so the calls edge/backends/tensorrt.py
makes are checked against this instead (tests/backends/test_trt_python_api.py): a name that
one supported version lacks fails the tests there, not a build on a Jetson.

The data is read from NVIDIA's TensorRT repository (github.com/NVIDIA/TensorRT, Apache-2.0):
the pybind11 bindings under ``python/src`` and the package's ``tensorrt/__init__.py``, at one
tag per version. ``python -m edge.backends.trt_python_api REPO`` writes it again from a clone.
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

from edge.errors import ConfigError

DATA = Path(__file__).with_name("data") / "tensorrt_python_api.json"
# JetPack 6.1/6.2's TensorRT, JetPack 7.0's, the last 10.x, and the desktop 11.x releases
TAGS = {"10.3": "v10.3.0", "10.13": "v10.13.0", "10.16": "v10.16", "11.0": "v11.0", "11.1": "v11.1"}
SOURCES = ("python/src", "python/packaging/bindings_wheel/tensorrt/__init__.py")

_DECLARATION = re.compile(r"py::(class_|enum_)\s*<")
_CHAINED = re.compile(r"\.\s*(def\w*|value)\s*\(")
_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"')
_KWARG = re.compile(r'"(\w+)"_a\b|py::arg\(\s*"(\w+)"\s*\)')


def _blank_comments(text: str) -> str:
    """The C++ text with comments turned to spaces (string literals kept), offsets unchanged."""
    out, i, n = list(text), 0, len(text)
    while i < n:
        c = text[i]
        if c == '"' or c == "'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            i = j + 1
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out[i:j] = " " * (j - i)
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out[i:j] = [ch if ch == "\n" else " " for ch in text[i:j]]
            i = j
        else:
            i += 1
    return "".join(out)


def _past_string(text: str, i: int) -> int:
    """The index past the string literal opening at ``text[i]``."""
    m = _STRING.match(text, i)
    return m.end() if m else i + 1


def _skip_balanced(text: str, i: int) -> int:
    """The index just past the bracket that closes the one at ``text[i]``."""
    pairs = {"(": ")", "{": "}", "[": "]", "<": ">"}
    stack = [pairs[text[i]]]
    i += 1
    while i < len(text) and stack:
        c = text[i]
        if c == '"':
            i = _past_string(text, i)
            continue
        if c in "({[" or (c == "<" and stack[-1] == ">"):
            stack.append(pairs[c])
        elif c == stack[-1]:
            stack.pop()
        i += 1
    return i


def _statement_end(text: str, i: int) -> int:
    """The index of the ``;`` that ends the statement going on at ``i`` (brackets skipped)."""
    while i < len(text):
        c = text[i]
        if c == ";":
            return i
        if c == '"':
            i = _past_string(text, i)
        elif c in "({[":
            i = _skip_balanced(text, i)
        else:
            i += 1
    return i


def _chain(text: str, start: int, end: int) -> Iterable[tuple[str, str, set[str]]]:
    """(method, first string argument, keyword names) of each ``.def*(`` / ``.value(`` called
    at the top level of the statement text[start:end]."""
    i = start
    while i < end:
        c = text[i]
        if c in "({[":
            i = _skip_balanced(text, i)
            continue
        m = _CHAINED.match(text, i)
        if m is None:
            i += 1
            continue
        close = _skip_balanced(text, m.end() - 1)
        args = text[m.end() : close - 1]
        name = _STRING.match(args.lstrip())
        if name is not None or args.lstrip().startswith("py::init"):
            kwargs = {a or b for a, b in _KWARG.findall(args)}
            yield m.group(1), (name.group(1) if name else "__init__"), kwargs
        i = close


def _bindings(text: str, api: dict[str, Any]) -> None:
    """Add the classes, enums, members and module functions one binding file defines."""
    text = _blank_comments(text)
    variables: dict[str, str] = {"m": ""}
    cpp_names: dict[str, str] = api.setdefault("_cpp", {})
    for decl in _DECLARATION.finditer(text):
        targs_end = _skip_balanced(text, decl.end() - 1)
        targs = [a.strip() for a in _split_top(text[decl.end() : targs_end - 1])]
        rest = re.compile(r"\s*(\w*)\s*[({]").match(text, targs_end)
        if rest is None:
            continue
        var = rest.group(1)
        open_at = rest.end() - 1
        close = _skip_balanced(text, open_at)
        args = _split_top(text[open_at + 1 : close - 1])
        if len(args) < 2 or not (pyname := _STRING.match(args[1].strip())):
            continue
        scope = variables.get(args[0].strip(), args[0].strip())
        full = f"{scope}.{pyname.group(1)}" if scope else pyname.group(1)
        cpp = targs[0]
        kind = "class" if decl.group(1) == "class_" else "enum"
        cpp_names[cpp] = full
        bases = [cpp_names[t] for t in targs[1:] if t in cpp_names]
        entry = _class(api, full, kind)
        entry["bases"] = entry["bases"] or bases
        if scope:  # a nested enum is an attribute of its class
            _add_member(_class(api, scope, "class"), pyname.group(1), set())
        if var:
            variables[var] = full
        end = _statement_end(text, close)
        exported = "export_values" in text[close:end]
        for method, name, kwargs in _chain(text, close, end):
            _add_member(entry, name, kwargs)
            if method == "value" and exported and scope:
                _add_member(api["classes"][scope], name, set())
    # statements on a binding's variable, and the module's own functions: VAR.def(...)
    for var, full in variables.items():
        owner = api["classes"][full] if full else api["module"]
        for m in re.finditer(rf'(?<![\w.]){re.escape(var)}\.attr\("(\w+)"\)\s*=(?!=)', text):
            _add_member(owner, m.group(1), set())  # m.attr("float32") = ...
        for m in re.finditer(rf"(?<![\w.]){re.escape(var)}\s*(?=\.\s*def)", text):
            end = _statement_end(text, m.end())
            for _method, name, kwargs in _chain(text, m.end(), end):
                _add_member(owner, name, kwargs)


def _class(api: dict[str, Any], name: str, kind: str) -> dict[str, Any]:
    entry: dict[str, Any] = api["classes"].setdefault(name, {"kind": kind, "bases": [], "members": {}})
    return entry


def _split_top(text: str) -> list[str]:
    parts, depth, last, i = [], 0, 0, 0
    while i < len(text):
        c = text[i]
        if c == '"':
            i = _past_string(text, i)
            continue
        if c in "({[<":
            depth += 1
        elif c in ")}]>":
            depth -= 1
        elif c == "," and depth == 0:
            parts.append(text[last:i])
            last = i + 1
        i += 1
    parts.append(text[last:])
    return parts


def _add_member(entry: dict[str, Any], name: str, kwargs: set[str]) -> None:
    members = entry.get("members", entry)  # a class's record, or the module's names
    members[name] = sorted(set(members.get(name, [])) | kwargs)


def _package(text: str, api: dict[str, Any]) -> None:
    """What ``tensorrt/__init__.py`` adds: module functions, ``__version__``, class attributes."""
    tree = ast.parse(text.replace("##", "__"))  # its build fills ##PLACEHOLDERS## in
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            kw = {a.arg for a in node.args.args + node.args.kwonlyargs}
            _add_member(api["module"], node.name, kw)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    _add_member(api["module"], target.id, set())
                elif isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name):
                    cls = api["classes"].get(target.value.id)
                    if cls is not None:
                        _add_member(cls, target.attr, set())


def extract(files: Mapping[str, str]) -> dict[str, Any]:
    """The API of one version from its sources: {path: text} for SOURCES' files."""
    cpp = sorted(p for p in files if p.endswith(".cpp"))
    first: dict[str, Any] = {"classes": {}, "module": {}}
    for path in cpp:  # which C++ type is which Python class, for bases bound in another file
        _bindings(files[path], first)
    api: dict[str, Any] = {"classes": {}, "module": {}, "_cpp": first["_cpp"]}
    for path in cpp:
        _bindings(files[path], api)
    for path, text in files.items():
        if path.endswith("__init__.py"):
            _package(text, api)
    api.pop("_cpp", None)
    for name, entry in api["classes"].items():  # every class and enum is an attribute of the module
        if "." not in name:
            _add_member(api["module"], name, set())
        entry["members"] = dict(sorted(entry["members"].items()))
    api["module"] = dict(sorted(api["module"].items()))
    api["classes"] = dict(sorted(api["classes"].items()))
    return api


def extract_from_git(repo: Path, tag: str) -> dict[str, Any]:
    """``extract`` of a TensorRT clone's files at ``tag`` (read with git; no checkout)."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
        ).stdout

    paths = git("ls-tree", "-r", "--name-only", tag, *SOURCES).split()
    return extract({p: git("show", f"{tag}:{p}") for p in paths if p.endswith((".cpp", "__init__.py"))})


def compact(per_version: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    """One document for every version: each class's and member's versions where not all."""
    versions = list(per_version)

    def since(present: list[str]) -> list[str] | None:
        return None if present == versions else present

    def merged(names_by_version: Mapping[str, Mapping[str, list[str]]]) -> dict[str, Any]:
        """{name: its versions and keywords} of {version: {name: keywords}}."""
        out: dict[str, Any] = {}
        for name in sorted({n for names in names_by_version.values() for n in names}):
            present = [v for v, names in names_by_version.items() if name in names]
            kwargs = sorted({k for v in present for k in names_by_version[v][name]})
            out[name] = {"versions": since(present), "kwargs": kwargs}
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
    """One version's API: ``has("Builder", "create_network")``, ``member(...)["kwargs"]``."""

    version: str
    classes: Mapping[str, Any]
    module: Mapping[str, Any]

    def _present(self, record: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
        """``record`` where it is of this version, else None."""
        if record is None or (record["versions"] is not None and self.version not in record["versions"]):
            return None
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
