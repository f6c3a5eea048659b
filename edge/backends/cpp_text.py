"""Reading C++ source text without a compiler: comments, balanced brackets, statements, and
the Python signature a pybind11 binding gives a function (what edge.backends.trt_python_api
reads TensorRT's bindings with)."""

from __future__ import annotations

import functools
import re
from typing import NamedTuple

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


def split_args(text: str) -> list[str]:
    """The top-level comma-separated parts of a C++ argument list, stripped. A ``<`` opens a
    template's arguments only after a name (not ``<<``) and ``->`` closes nothing, so a
    lambda's return type or a shifted default cannot merge two arguments."""
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


class Bound(NamedTuple):
    """What the text says of a function a binding names: its parameter count, whether that
    count includes the object (a lambda or helper written for a method takes it first; a member
    function's declaration does not list it), and its C++ return type (``cpp_type``'s form).
    None where the text does not say."""

    arity: int | None
    with_object: bool = False
    returns: str | None = None


UNKNOWN = Bound(None)


def cpp_type(text: str) -> str | None:
    """A C++ return type as written before a function's name, in one form: qualifiers,
    attributes, export macros and namespaces dropped (``virtual nvinfer1::IHostMemory* const``
    -> ``IHostMemory*``); None for ``auto`` (nothing said)."""
    text = re.sub(r"\[\[.*?\]\]|\b(?:public|protected|private)\s*:", " ", text)
    words = [
        w
        for w in re.findall(r"[\w:]+(?:<[^;{}]*>)?|[*&]", text)
        if w not in ("virtual", "static", "inline", "constexpr", "explicit", "friend", "const", "typename")
        and not re.fullmatch(r"[A-Z][A-Z0-9_]+", w)
    ]
    words = [re.sub(r"^(?:nvinfer1|nvonnxparser|nvinfer1::v_1_0|v_1_0)::", "", w) for w in words]
    out = re.sub(r"\s+([*&])", r"\1", " ".join(words)).strip()
    return None if out in ("", "auto") else out


def _lambda(text: str, i: int) -> Bound:
    """The lambda whose capture list opens at ``text[i]``: its count and trailing return type."""
    m = _LAMBDA_PARAMS.match(text, i)
    if m is None:
        return UNKNOWN
    if m.group(1) is None:
        return Bound(0, True)  # [] { ... }: no parameter list, nothing said of what it returns
    close = skip_balanced(text, m.end() - 1)
    returns = re.match(r"\s*(?:mutable\s*)?(?:noexcept\s*)?->\s*([^{]*)\{", text[close:])
    return Bound(_count(text[m.end() : close - 1]), True, cpp_type(returns.group(1)) if returns else None)


def _one(found: set[Bound]) -> Bound:
    """One answer of several declarations: each field where they agree."""
    arities, returns = {b.arity for b in found}, {b.returns for b in found}
    with_object = any(b.with_object for b in found)
    return Bound(
        arities.pop() if len(arities) == 1 else None,
        with_object,
        returns.pop() if len(returns) == 1 else None,
    )


def _definition(source: str, name: str, *, declared: bool = False) -> Bound | None:
    """The function or lambda variable ``name`` as ``source`` defines it (``declared``: or
    declares it, as a header does); None where it does not."""
    found: set[Bound] = set()
    for m in re.finditer(rf"\b{re.escape(name)}\s*=\s*(?=\[)", source):
        found.add(_lambda(source, m.end()))
    pattern = rf"(?m)^[ \t]*(?:template\s*<[^;{{}}]*>\s*)?([\w:<>,*& \t]*[\w>*&])\s+{re.escape(name)}\s*\("
    body = r"\{|;" if declared else r"\{"
    for m in re.finditer(pattern, source):
        close = skip_balanced(source, m.end() - 1)
        if re.match(rf"\s*(?:const\s*)?(?:noexcept\s*)?(?:->[^;{{]*)?(?:{body})", source[close:]):
            found.add(Bound(_count(source[m.end() : close - 1]), True, cpp_type(m.group(1))))
    return _one(found) if found else None


@functools.lru_cache(maxsize=4096)
def _class_body(headers: str, cls: str) -> tuple[str, list[str]] | None:
    """The body of ``class cls`` (or struct) as ``headers`` define it, and its bases' names."""
    pattern = rf"\b(?:class|struct)\s+(?:[A-Z_]+\s+)?{re.escape(cls)}\s*(?:final\s*)?(:[^;{{]*)?\{{"
    for m in re.finditer(pattern, headers):
        close = skip_balanced(headers, m.end() - 1)
        bases = re.findall(r"(\w+)\s*(?:<[^>]*>)?\s*(?:,|$)", (m.group(1) or ":")[1:].strip())
        return headers[m.end() : close - 1], bases
    return None


def member_declaration(
    headers: str, cls: str, method: str, arity: int | None = None, depth: int = 0
) -> Bound:
    """``cls::method`` as the headers declare it (bases searched): its parameter count and
    return type where its declarations agree; ``arity``: only the overloads of that many."""
    found_class = _class_body(headers, cls) if depth < 8 else None
    if found_class is None:
        return UNKNOWN
    body, bases = found_class
    found: set[Bound] = set()
    for m in re.finditer(rf"(?<![\w>.~]){re.escape(method)}\s*\(", body):
        before = body[: m.start()].rstrip()
        if before.endswith(("->", ".", "::", "return", "(", ",", "=", "!", "&&", "||")):
            continue  # a call, not a declaration
        count = _count(body[m.end() : skip_balanced(body, m.end() - 1) - 1])
        if arity is None or count == arity:
            start = max(before.rfind(c) for c in ";{}") + 1
            found.add(Bound(count, False, cpp_type(before[start:])))
    if found:
        return _one(found)
    inherited = {member_declaration(headers, base, method, arity, depth + 1) for base in bases} - {UNKNOWN}
    return _one(inherited) if inherited else UNKNOWN


def bound_function(expr: str, source: str, headers: str = "") -> Bound:
    """What the text says of the function a binding names: a lambda, a helper the binding file
    defines, a member function (from the headers), a cast's member function type."""
    expr = expr.strip()
    if expr.startswith("["):
        return _lambda(expr, 0)
    wrapper = re.match(r"(?:\w+::)*\w+\(", expr)  # such as utils::deprecate(f, "...")
    if wrapper and not expr.startswith(("static_cast", "py::overload_cast")):
        inner = split_args(expr[wrapper.end() : skip_balanced(expr, wrapper.end() - 1) - 1])
        return bound_function(inner[0], source, headers) if inner and inner[0] else UNKNOWN
    if m := re.match(r"py::overload_cast\s*<", expr):
        close = skip_balanced(expr, m.end() - 1)
        count = _count(expr[m.end() : close - 1])
        target = re.match(r"\s*\(\s*&\s*(?:\w+::)*(\w+)::(\w+)", expr[close:])
        declared = (
            member_declaration(headers, target.group(1), target.group(2), arity=count)
            if target and count is not None
            else UNKNOWN
        )
        return Bound(count, False, declared.returns)
    if expr.startswith("static_cast") and (m := _MEMBER_POINTER_TYPE.search(expr)):
        close = skip_balanced(expr, m.end() - 1)
        return Bound(
            _count(expr[m.end() : close - 1]), False, cpp_type(expr[len("static_cast<") : m.start()])
        )
    if m := re.fullmatch(r"&?\s*(?:lambdas::)?(\w+)\s*(?:<.*>)?", expr, re.S):
        return _definition(source, m.group(1)) or _definition(headers, m.group(1), declared=True) or UNKNOWN
    if m := re.fullmatch(r"&\s*(?:\w+::)*(\w+)::(\w+)", expr):  # &IBuilderConfig::setFlag
        return member_declaration(headers, m.group(1), m.group(2))
    return UNKNOWN


def binding(
    args: list[str], source: str, headers: str = "", *, method: bool
) -> tuple[list[str] | None, str | None]:
    """The Python parameters of one ``.def(...)``/``py::init`` overload from its argument list
    (split), and the C++ type it returns. Parameters: each one's name, ``"="`` after one with
    a default, ``""`` for an unnamed (positional only) one; None where it cannot be told.
    ``source``: the binding file (its lambdas and helper functions), ``headers``: the bound
    library's (its member functions). ``method``: a method bound by a function that takes the
    object first (pybind11 passes ``self`` there)."""
    if args and args[0].startswith("py::init"):
        function, rest, method = args[0], args[1:], False
    else:
        function, rest = (args[1] if len(args) > 1 else ""), args[2:]
    named: list[str] = []
    # keyword- or position-only markers: parameters these lists of positions cannot tell
    marked = any(re.match(r"py::(kw_only|pos_only)\b", part) for part in rest)
    for part in rest:
        if m := _NAMED.match(part):
            named.append((m.group(1) or m.group(2)) + ("=" if m.group(3) else ""))
        elif m := _NAMED_V.match(part):
            named.append(m.group(1) + "=")
    if m := re.match(r"py::init\s*<", function):
        count = _count(function[m.end() : skip_balanced(function, m.end() - 1) - 1])
        unnamed = None if count is None else [""] * count
        return (None if marked else named or unnamed), None
    if m := re.match(r"py::init\s*\(", function):
        function = function[m.end() : skip_balanced(function, m.end() - 1) - 1]
    bound = bound_function(function, source, headers)
    if marked or named:
        return (None if marked else named), bound.returns
    if bound.arity is None:
        return None, bound.returns
    arity = bound.arity - int(method and bound.with_object)
    return ([""] * arity if arity >= 0 else None), bound.returns
