"""Reading C++ source text without a compiler: comments, balanced brackets, statements, and
the Python signature a pybind11 binding gives a function (what edge.backends.trt_python_api
reads TensorRT's bindings with)."""

from __future__ import annotations

import functools
import re

STRING = re.compile(r'"((?:[^"\\]|\\.)*)"')


def blank_comments(text: str) -> str:
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


def past_string(text: str, i: int) -> int:
    """The index past the string literal opening at ``text[i]``."""
    m = STRING.match(text, i)
    return m.end() if m else i + 1


def skip_balanced(text: str, i: int) -> int:
    """The index just past the bracket that closes the one at ``text[i]``."""
    pairs = {"(": ")", "{": "}", "[": "]", "<": ">"}
    stack = [pairs[text[i]]]
    i += 1
    while i < len(text) and stack:
        c = text[i]
        if c == '"':
            i = past_string(text, i)
            continue
        if c in "({[" or (c == "<" and stack[-1] == ">"):
            stack.append(pairs[c])
        elif c == stack[-1]:
            stack.pop()
        i += 1
    return i


def statement_end(text: str, i: int) -> int:
    """The index of the ``;`` that ends the statement going on at ``i`` (brackets skipped)."""
    while i < len(text):
        c = text[i]
        if c == ";":
            return i
        if c == '"':
            i = past_string(text, i)
        elif c in "({[":
            i = skip_balanced(text, i)
        else:
            i += 1
    return i


def split_top(text: str) -> list[str]:
    parts, depth, last, i = [], 0, 0, 0
    while i < len(text):
        c = text[i]
        if c == '"':
            i = past_string(text, i)
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


def split_args(text: str) -> list[str]:
    """The top-level comma-separated parts of a C++ argument list. Unlike ``split_top``, a
    ``<`` opens only a template's arguments (after a name, not ``<<``) and ``->`` closes
    nothing, so a lambda's return type or a shifted default cannot merge two arguments."""
    parts, last, angle, i = [], 0, 0, 0
    while i < len(text):
        c = text[i]
        if c == '"':
            i = past_string(text, i)
            continue
        if c in "({[":
            i = skip_balanced(text, i)
            continue
        if c == "<" and text[i + 1 : i + 2] == "<":
            i += 2
            continue
        if c == "<" and (
            text[i - 1 : i].isalnum() or text[i - 1 : i] == "_" or text[:i].rstrip().endswith("template")
        ):
            angle += 1
        elif c == ">" and angle and text[i - 1] != "-":
            angle -= 1
        elif c == "," and not angle:
            parts.append(text[last:i])
            last = i + 1
        i += 1
    parts.append(text[last:])
    return [p.strip() for p in parts]


# a pybind11 name for one parameter: "x"_a, py::arg("x"), either with "= default"; py::arg_v
_NAMED = re.compile(r'^(?:"(\w+)"_a\b|py::arg\(\s*"(\w+)"\s*\)(?:\s*\.\s*\w+\(\s*\))*)\s*(=)?')
_NAMED_V = re.compile(r'^py::arg_v\(\s*"(\w+)"')
_MEMBER_POINTER_TYPE = re.compile(r"\(\s*[\w:]+::\*\s*\)\s*\(")
_LAMBDA_PARAMS = re.compile(r"\[[^\[\]]*\]\s*(\()?")


def _count(params: str) -> int | None:
    """How many parameters a C++ parameter list (its inside) has; None for py::args/kwargs."""
    parts = [p for p in split_args(params) if p]
    if parts == ["void"]:
        return 0
    if any(re.search(r"\bpy::(args|kwargs)\b", p) for p in parts):
        return None
    return len(parts)


def _lambda_arity(text: str, i: int) -> int | None:
    """The parameter count of the lambda whose capture list opens at ``text[i]``."""
    m = _LAMBDA_PARAMS.match(text, i)
    if m is None:
        return None
    if m.group(1) is None:
        return 0  # [] { ... }: no parameter list
    close = skip_balanced(text, m.end() - 1)
    return _count(text[m.end() : close - 1])


def _definition_arity(source: str, name: str) -> tuple[int | None, bool]:
    """The parameter count of the function or lambda variable ``name`` defined in ``source``,
    and whether it was found; (None, True) where its overloads disagree."""
    counts: set[int | None] = set()
    for m in re.finditer(rf"\b{re.escape(name)}\s*=\s*(?=\[)", source):
        counts.add(_lambda_arity(source, m.end()))
    for m in re.finditer(
        rf"(?m)^[ \t]*(?:template\s*<[^;{{}}]*>\s*)?[\w:<>,*& \t]*[\w>*&]\s+{re.escape(name)}\s*\(", source
    ):
        close = skip_balanced(source, m.end() - 1)
        if re.match(r"\s*(?:const\s*)?(?:noexcept\s*)?(?:->[^;{]*)?\{", source[close:]):
            counts.add(_count(source[m.end() : close - 1]))
    if not counts:
        return None, False
    return (counts.pop() if len(counts) == 1 else None), True


@functools.lru_cache(maxsize=4096)
def _class_body(headers: str, cls: str) -> tuple[str, list[str]] | None:
    """The body of ``class cls`` (or struct) as ``headers`` define it, and its bases' names."""
    pattern = rf"\b(?:class|struct)\s+(?:[A-Z_]+\s+)?{re.escape(cls)}\s*(?:final\s*)?(:[^;{{]*)?\{{"
    for m in re.finditer(pattern, headers):
        close = skip_balanced(headers, m.end() - 1)
        bases = re.findall(r"(\w+)\s*(?:<[^>]*>)?\s*(?:,|$)", (m.group(1) or ":")[1:].strip())
        return headers[m.end() : close - 1], bases
    return None


def member_arity(headers: str, cls: str, method: str, depth: int = 0) -> int | None:
    """How many parameters ``cls::method`` takes as the headers declare it (bases searched);
    None where they do not say, or overloads disagree."""
    found = _class_body(headers, cls) if depth < 8 else None
    if found is None:
        return None
    body, bases = found
    counts = set()
    for m in re.finditer(rf"(?<![\w>.~]){re.escape(method)}\s*\(", body):
        before = body[: m.start()].rstrip()
        if before.endswith(("->", ".", "::", "return", "(", ",", "=", "!", "&&", "||")):
            continue  # a call, not a declaration
        counts.add(_count(body[m.end() : skip_balanced(body, m.end() - 1) - 1]))
    if counts:
        return counts.pop() if len(counts) == 1 else None
    arities = {member_arity(headers, base, method, depth + 1) for base in bases}
    arities.discard(None)
    return arities.pop() if len(arities) == 1 else None


def function_arity(expr: str, source: str, headers: str = "") -> tuple[int | None, bool]:
    """How many parameters the function a binding names takes, and whether that count includes
    the object (a lambda or function written for a method takes it first; a member function
    pointer's type does not list it). (None, False) where the text does not say."""
    expr = expr.strip()
    if expr.startswith("["):
        return _lambda_arity(expr, 0), True
    wrapper = re.match(r"(?:\w+::)*\w+\(", expr)  # such as utils::deprecate(f, "...")
    if wrapper and not expr.startswith(("static_cast", "py::overload_cast")):
        inner = split_args(expr[wrapper.end() : skip_balanced(expr, wrapper.end() - 1) - 1])
        return function_arity(inner[0], source, headers) if inner and inner[0] else (None, False)
    if m := re.match(r"py::overload_cast\s*<", expr):
        close = skip_balanced(expr, m.end() - 1)
        return _count(expr[m.end() : close - 1]), False
    if expr.startswith("static_cast") and (m := _MEMBER_POINTER_TYPE.search(expr)):
        close = skip_balanced(expr, m.end() - 1)
        return _count(expr[m.end() : close - 1]), False
    if m := re.fullmatch(r"&?\s*(?:lambdas::)?(\w+)\s*(?:<.*>)?", expr, re.S):
        arity, found = _definition_arity(source, m.group(1))
        return (arity, True) if found else (None, False)
    if m := re.fullmatch(r"&\s*(?:\w+::)*(\w+)::(\w+)", expr):  # &IBuilderConfig::setFlag
        return member_arity(headers, m.group(1), m.group(2)), False
    return None, False


def binding_signature(args: list[str], source: str, headers: str = "", *, method: bool) -> list[str] | None:
    """The Python parameters of one ``.def(...)``/``py::init`` overload from its argument list
    (split): each parameter's name, ``"="`` after one with a default, ``""`` for an unnamed
    (positional only) one; None where it cannot be told. ``source``: the binding file (its
    lambdas and helper functions), ``headers``: the bound library's (its member functions).
    ``method``: a method bound by a function that takes the object first (pybind11 passes
    ``self`` there)."""
    if args and args[0].startswith("py::init"):
        function, rest, method = args[0], args[1:], False
    else:
        function, rest = (args[1] if len(args) > 1 else ""), args[2:]
    named: list[str] = []
    for part in rest:
        if re.match(r"py::(kw_only|pos_only)\b", part):
            return None
        if m := _NAMED.match(part):
            named.append((m.group(1) or m.group(2)) + ("=" if m.group(3) else ""))
        elif m := _NAMED_V.match(part):
            named.append(m.group(1) + "=")
    if named:
        return named
    if m := re.match(r"py::init\s*<", function):
        count = _count(function[m.end() : skip_balanced(function, m.end() - 1) - 1])
        return None if count is None else [""] * count
    if m := re.match(r"py::init\s*\(", function):
        function = function[m.end() : skip_balanced(function, m.end() - 1) - 1]
    arity, with_object = function_arity(function, source, headers)
    if arity is None:
        return None
    arity -= int(method and with_object)
    return [""] * arity if arity >= 0 else None
