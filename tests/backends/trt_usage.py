"""Which TensorRT Python names a source file uses, and which of them a TensorRT version lacks.

The types of edge's TensorRT objects are followed through assignments: ``trt.Builder(...)``
makes a Builder, and what a method returns is in RETURNS. A TensorRT method whose result is
kept (or used further) and that RETURNS does not know is reported too, so that no use goes
unchecked because its object's type was lost.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass

from edge.backends.trt_python_api import CALLABLE, TrtPythonApi

MODULE = "<module>"
# what the methods edge keeps the results of return; None: no TensorRT object (bool, str, ...)
RETURNS: dict[tuple[str | None, str], str | None] = {
    (None, "get_plugin_registry"): "IPluginRegistry",
    ("Builder", "get_plugin_registry"): "IPluginRegistry",
    ("Runtime", "get_plugin_registry"): "IPluginRegistry",
    (None, "nptype"): None,
    ("Builder", "create_network"): "INetworkDefinition",
    ("Builder", "create_builder_config"): "IBuilderConfig",
    ("Builder", "create_optimization_profile"): "IOptimizationProfile",
    ("Builder", "build_serialized_network"): "IHostMemory",
    ("INetworkDefinition", "get_input"): "ITensor",
    ("IBuilderConfig", "get_timing_cache"): "ITimingCache",
    ("IBuilderConfig", "create_timing_cache"): "ITimingCache",
    ("ITimingCache", "serialize"): "IHostMemory",
    ("Runtime", "deserialize_cuda_engine"): "ICudaEngine",
    ("ICudaEngine", "create_execution_context"): "IExecutionContext",
    ("ICudaEngine", "get_tensor_name"): None,
    ("ICudaEngine", "get_tensor_shape"): "Dims",
    ("ICudaEngine", "get_tensor_dtype"): "DataType",
    ("ICudaEngine", "get_tensor_mode"): "TensorIOMode",
}
# functions that are handed TensorRT objects: the parameter's name, its type
PARAMETERS = {"config": "IBuilderConfig", "registry": "IPluginRegistry", "trt": MODULE}


@dataclass(frozen=True)
class Use:
    line: int
    owner: str | None  # a class or enum; None for the module
    name: str
    kwargs: tuple[str, ...] = ()
    override: bool = False  # a method of a Python subclass that TensorRT calls back
    access: str = "load"  # "call", "store" (assigned or deleted) or "load" (read otherwise)
    # a call's positional arguments (None: a *starred one, or not a call); an override's
    # parameters after self: how many it needs and how many it takes (None: *args)
    positional: int | None = None
    takes: tuple[int, int | None] | None = None
    discarded: bool = False  # a call whose result is dropped (a statement of its own)

    def __str__(self) -> str:
        what = f"{self.owner}.{self.name}" if self.owner else f"tensorrt.{self.name}"
        return what + (f"({', '.join(k + '=' for k in self.kwargs)})" if self.kwargs else "")


class _Walker:
    def __init__(self, api: TrtPythonApi) -> None:
        self.api = api
        self.uses: list[Use] = []
        self.untyped: list[str] = []  # "line: Owner.method" kept without a known return type
        self.discarded: set[int] = set()  # the calls that are statements of their own

    def _type(self, node: ast.expr, env: dict[str, str]) -> str | None:
        if isinstance(node, ast.Name):
            return env.get(node.id)
        if isinstance(node, ast.Attribute):
            if isinstance(node.value, ast.Name) and node.value.id == "self":
                return env.get(f"self.{node.attr}")
            owner = self._type(node.value, env)
            if owner == MODULE and node.attr in self.api.classes:
                return node.attr  # the class itself: its members are looked up alike
            if owner is not None and owner != MODULE and f"{owner}.{node.attr}" in self.api.classes:
                return f"{owner}.{node.attr}"  # a nested enum, e.g. ILogger.Severity
            return None
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id == "import_tensorrt":
                return MODULE
            if isinstance(func, ast.Attribute):
                owner = self._type(func.value, env)
                if owner is None:
                    return None
                if owner == MODULE and func.attr in self.api.classes:
                    return func.attr  # a constructor
                key = (None if owner == MODULE else owner, func.attr)
                if key not in RETURNS:
                    self.untyped.append(f"{node.lineno}: {owner}.{func.attr}")
                return RETURNS.get(key)
        return None

    def _assign(self, target: ast.expr, kind: str | None, env: dict[str, str]) -> None:
        if kind is None:
            return
        if isinstance(target, ast.Name):
            env[target.id] = kind
        elif (
            isinstance(target, ast.Attribute)
            and isinstance(target.value, ast.Name)
            and target.value.id == "self"
        ):
            env[f"self.{target.attr}"] = kind

    def walk(self, tree: ast.Module) -> None:
        env: dict[str, str] = {}
        for node in tree.body:
            self._scope(node, env)

    def _scope(self, node: ast.stmt, env: dict[str, str]) -> None:
        """One statement; a function or class body gets a copy of the types around it."""
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            inner = dict(env)
            for arg in node.args.args + node.args.kwonlyargs:
                if arg.arg in PARAMETERS:
                    inner[arg.arg] = PARAMETERS[arg.arg]
            for stmt in node.body:
                self._scope(stmt, inner)
            env.update({k: v for k, v in inner.items() if k.startswith("self.")})
            return
        if isinstance(node, ast.ClassDef):
            inner = dict(env)
            for base in node.bases:
                self._expression(base, env)
            bases = [b for b in (self._type(base, env) for base in node.bases) if b and b != MODULE]
            for stmt in node.body:
                if bases and isinstance(stmt, ast.FunctionDef) and not stmt.name.startswith("__"):
                    a = stmt.args
                    params = len(a.posonlyargs) + len(a.args) - 1  # self
                    takes = (params - len(a.defaults), None if a.vararg else params)
                    self.uses.append(Use(stmt.lineno, bases[0], stmt.name, override=True, takes=takes))
                self._scope(stmt, inner)
            return
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            self.discarded.add(id(node.value))
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.stmt):
                self._scope(child, env)
            else:
                self._expression(child, env)
        if isinstance(node, ast.Assign):
            kind = self._type(node.value, env)
            for target in node.targets:
                self._assign(target, kind, env)
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            self._assign(node.target, self._type(node.value, env), env)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                if alias.name == "tensorrt":
                    env[alias.asname or alias.name] = MODULE

    def _is_class(self, node: ast.expr, env: dict[str, str]) -> bool:
        """Whether ``node`` is a TensorRT class itself (``trt.Builder``), not one of its objects."""
        return (
            isinstance(node, ast.Attribute)
            and self._type(node.value, env) == MODULE
            and node.attr in self.api.classes
        )

    def _expression(self, node: ast.AST, env: dict[str, str]) -> None:
        calls = {id(c.func): c for c in ast.walk(node) if isinstance(c, ast.Call)}
        for sub in ast.walk(node):
            if not isinstance(sub, ast.Attribute) or (owner := self._type(sub.value, env)) is None:
                continue
            owned_by = None if owner == MODULE else owner
            call = calls.get(id(sub))
            if call is None:
                access = "load" if isinstance(sub.ctx, ast.Load) else "store"
                self.uses.append(Use(sub.lineno, owned_by, sub.attr, access=access))
                continue
            names = tuple(k.arg for k in call.keywords if k.arg is not None)
            starred = any(isinstance(a, ast.Starred) for a in call.args)
            positional = None if starred else len(call.args)
            member = self.api.member(owned_by, sub.attr) if self._is_class(sub.value, env) else None
            if member is not None and member["kind"] == "method" and positional:
                positional -= 1  # trt.Class.method(self, ...): the object passed by hand
            if owner == MODULE and sub.attr in self.api.classes:  # a constructor: the class, its __init__
                self.uses.append(Use(sub.lineno, None, sub.attr, access="call"))
                self.uses.append(
                    Use(sub.lineno, sub.attr, "__init__", names, access="call", positional=positional)
                )
            else:
                dropped = id(call) in self.discarded
                self.uses.append(
                    Use(
                        sub.lineno,
                        owned_by,
                        sub.attr,
                        names,
                        access="call",
                        positional=positional,
                        discarded=dropped,
                    )
                )


def uses(source: str, api: TrtPythonApi) -> tuple[list[Use], list[str]]:
    """The TensorRT names ``source`` uses, and the kept results whose type RETURNS lacks."""
    walker = _Walker(api)
    walker.walk(ast.parse(source))
    return sorted(set(walker.uses), key=lambda u: (u.line, str(u))), sorted(set(walker.untyped))


KINDS = {
    "method": "a method",
    "static": "a static method",
    "function": "a function",
    "property": "a property",
    "readonly": "a read-only property",
    "value": "an enum value",
    "class": "a class",
}


def _takes(overloads: list[list[str]], use: Use) -> bool:
    """Whether one of a function's overloads takes the call ``use``."""
    return any(_accepts(s, use.positional or 0, use.kwargs) for s in overloads)


def _accepts(signature: list[str], positional: int, kwargs: tuple[str, ...]) -> bool:
    """Whether an overload's parameters (TrtPythonApi's signatures) take such a call."""
    names = [p.rstrip("=") for p in signature]
    if positional > len(names) or any(k not in names[positional:] for k in kwargs):
        return False
    required = [
        n
        for i, (n, p) in enumerate(zip(names, signature, strict=True))
        if i >= positional and not p.endswith("=")
    ]
    return all(n and n in kwargs for n in required)


def _fits_override(use: Use, signature: list[str]) -> bool:
    """Whether an override's parameters take TensorRT's call, which passes every one by position."""
    need, most = use.takes or (0, None)
    return need <= len(signature) and (most is None or len(signature) <= most)


def _results(record: dict) -> list[str]:
    """What a function returns where every overload is known to return something (not void)."""
    returned = record.get("returns", [])
    if not returned or any(r is None or r == "None" for r in returned):
        return []
    return sorted(set(returned))


def _signatures(record: dict) -> str:
    def one(signature: list[str]) -> str:
        return "(" + ", ".join(p if p else "<unnamed>" for p in signature) + ")"

    return " or ".join(one(s) for s in record["signatures"])


def missing(found: list[Use], api: TrtPythonApi) -> Iterator[str]:
    """Why each use is wrong on ``api``'s version: a name it lacks, a keyword it does not take,
    a property called or a method read, a read-only name assigned, a call no overload takes,
    an override whose parameters TensorRT's call would not fit, a call's result dropped where
    TensorRT returns one (a bool or None on failure, a status)."""
    for use in found:
        record = api.member(use.owner, use.name)
        at = f"line {use.line}"
        if record is None:
            what = "overrides" if use.override else "uses"
            yield f"{at} {what} {use}, which TensorRT {api.version} lacks"
            continue
        if bad := [k for k in use.kwargs if k not in record["kwargs"]]:
            yield (
                f"{at} passes {', '.join(bad)} to {use.owner or 'tensorrt'}.{use.name}, "
                f"whose keywords in TensorRT {api.version} are {record['kwargs']}"
            )
            continue
        kind = record["kind"]
        if kind == "attribute":
            continue  # the package's own assignments: nothing known of what they are
        overloads = record.get("signatures", [])
        known = overloads if overloads and None not in overloads else []  # [] where any is unknown
        if use.override:
            if kind == "method" and known and not any(_fits_override(use, s) for s in known):
                yield (
                    f"{at} overrides {use} with the wrong parameters: "
                    f"TensorRT {api.version} calls it with {_signatures(record)}"
                )
        elif use.access == "call" and kind not in CALLABLE | {"class"}:
            yield f"{at} calls {use}, {KINDS[kind]} in TensorRT {api.version}"
        elif use.access == "store" and kind != "property":
            yield f"{at} assigns to {use}, {KINDS[kind]} in TensorRT {api.version}"
        elif use.access == "load" and kind in CALLABLE:
            yield f"{at} reads {use} without calling it, {KINDS[kind]} in TensorRT {api.version}"
        elif use.access == "call" and use.positional is not None and known and not _takes(known, use):
            args = f"{use.positional} positional argument(s)" + (
                f" and {', '.join(use.kwargs)}=" if use.kwargs else ""
            )
            yield f"{at} calls {use} with {args}; TensorRT {api.version} takes {_signatures(record)}"
        elif use.discarded and (returned := _results(record)):
            yield (
                f"{at} drops what {use} returns ({' or '.join(returned)} in TensorRT {api.version}): "
                "check it, TensorRT reports failure there"
            )
