"""Reading C++ without a compiler (edge/backends/cpp_text.py): argument lists, and the Python
parameters pybind11 gives a bound function, which the TensorRT API check leans on."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from edge.backends import trt_python_api
from edge.backends.cpp_text import (
    STRING,
    Bound,
    binding,
    blank_comments,
    bound_function,
    cpp_type,
    member_declaration,
    skip_balanced,
    split_args,
)


def test_split_args_keeps_templates_lambdas_and_shifts_whole() -> None:
    assert split_args('"run", [](Thing& t, int n) -> std::vector<int> { return {n, 1}; }, "count"_a') == [
        '"run"',
        "[](Thing& t, int n) -> std::vector<int> { return {n, 1}; }",
        '"count"_a',
    ]
    assert split_args(
        'py::init<int, std::map<int, float>>(), "size"_a = 1 << 20, py::keep_alive<1, 2>()'
    ) == [
        "py::init<int, std::map<int, float>>()",
        '"size"_a = 1 << 20',
        "py::keep_alive<1, 2>()",
    ]
    assert split_args('"a, b", x') == ['"a, b"', "x"]
    assert split_args("") == [""]


@pytest.mark.parametrize(
    ("args", "method", "expected"),
    [
        (['"f"', "&X::f", '"a"_a', 'py::arg("b") = 2', "doc"], True, (["a", "b="], None)),
        (['"f"', "&X::f", 'py::arg("b").noconvert()'], True, (["b"], None)),
        (['"f"', "&X::f", 'py::arg_v("b", 1, "one")'], True, (["b="], None)),
        (['"f"', "[](X& self, int a, float b) -> bool { return a > b; }"], True, (["", ""], "bool")),
        (['"f"', "[](int a) { return 0; }"], False, ([""], None)),  # a module function or def_static
        (['"f"', "[] { return 0; }"], False, ([], None)),
        (['"f"', "[](X& self, py::kwargs k) { return 0; }"], True, (None, None)),
        (['"f"', "&X::f", "py::kw_only()", '"a"_a'], True, (None, None)),
        (["py::init<int, float>()"], True, (["", ""], None)),
        (["py::init<>()"], True, ([], None)),
        (["py::init([](int a, int b) { return new X(a, b); })"], True, (["", ""], None)),
        (
            ['"f"', "static_cast<nvinfer1::ITensor* (X::*)(int, bool) const>(&X::f)"],
            True,
            (["", ""], "ITensor*"),
        ),
        (['"f"', "py::overload_cast<int>(&X::f, py::const_)"], True, ([""], None)),
        (
            ['"f"', 'utils::deprecate([](X& self, int a) -> int32_t { return a; }, "use g")'],
            True,
            ([""], "int32_t"),
        ),
        (['"f"', "&X::f"], True, (None, None)),  # no headers given: nothing says
    ],
)
def test_binding(args: list[str], method: bool, expected: tuple) -> None:
    assert binding(args, "", method=method) == expected


def test_cpp_types_in_one_form() -> None:
    assert cpp_type("    virtual nvinfer1::IHostMemory* ") == "IHostMemory*"
    assert cpp_type("public:\n TRT_DEPRECATED [[nodiscard]] bool") == "bool"
    assert cpp_type("static char const *") == "char*"
    assert cpp_type("std::vector<Dims>") == "std::vector<Dims>"
    assert cpp_type("auto") is None


def test_helpers_are_found_where_the_binding_file_defines_them() -> None:
    source = """
namespace lambdas
{
static auto const set_shape
    = [](Profile& self, std::string const& name, Dims const& lo, Dims const& hi) { self.set(name, lo, hi); };
std::vector<char const*> infer_shapes(Context& self)
{
    return self.infer(get_count(self));
}
template <typename T>
bool set_input(Context& self, char const* name, T const& shape)
{
    return true;
}
int twice(int a) { return 2 * a; }
int twice(int a, int b) { return a + b; }
}
"""
    assert binding(['"set_shape"', "lambdas::set_shape"], source, method=True) == (["", "", ""], None)
    assert binding(['"infer"', "&lambdas::infer_shapes"], source, method=True) == (
        [],
        "std::vector<char const*>",
    )
    assert binding(['"set"', "lambdas::set_input<py::tuple>"], source, method=True) == (["", ""], "bool")
    # overloads that disagree on their parameters (not on what they return); a helper called
    # but never defined here, nor declared in the headers: unknown
    assert binding(['"twice"', "lambdas::twice"], source, method=False) == (None, "int")
    assert binding(['"count"', "lambdas::get_count"], source, method=True) == (None, None)
    headers = "TENSORRTAPI bool get_count(void* logger, char const* name);\n"
    assert binding(['"count"', "&get_count"], source, headers, method=False) == (["", ""], "bool")


def test_member_functions_are_read_from_their_declarations() -> None:
    headers = blank_comments(
        """
class INoCopy {};
class TENSORRTAPI IBase : public INoCopy
{
public:
    //! \\see reset(int32_t level) is a comment
    virtual void reset() noexcept = 0;
    int32_t level(bool deep, int32_t at = 0) const noexcept { return mImpl->level(deep, at); }
    void set(int32_t a) noexcept;
    bool set(int32_t a, int32_t b) noexcept;
};
class IThing : public IBase
{
public:
    nvinfer1::IHostMemory* serialize() const noexcept
    {
        return mImpl->serialize(mFlags);
    }
};
"""
    )
    assert member_declaration(headers, "IThing", "serialize") == Bound(0, False, "IHostMemory*")
    # pybind11 takes C++ defaults as required
    assert member_declaration(headers, "IThing", "level") == Bound(2, False, "int32_t")
    assert member_declaration(headers, "IThing", "reset") == Bound(0, False, "void")  # from the base
    assert member_declaration(headers, "IThing", "set") == Bound(None, False, None)  # overloads disagree
    assert member_declaration(headers, "IThing", "set", arity=2) == Bound(2, False, "bool")
    assert member_declaration(headers, "IThing", "absent") == Bound(None)
    assert member_declaration(headers, "INowhere", "serialize") == Bound(None)
    assert bound_function("&nvinfer1::IThing::level", "", headers) == Bound(2, False, "int32_t")
    assert bound_function("py::overload_cast<int32_t, int32_t>(&IThing::set)", "", headers) == Bound(
        2, False, "bool"
    )


@pytest.mark.skipif(
    not os.environ.get("TENSORRT_REPO"),
    reason="set TENSORRT_REPO to a clone of github.com/NVIDIA/TensorRT (with tags) to check the reader on it",
)
@pytest.mark.parametrize("version", list(trt_python_api.TAGS))
def test_counts_agree_with_the_names_where_bindings_give_both(version: str) -> None:
    """pybind11 wants a name for every parameter or for none, so where a binding names them
    the count read from the function it binds (lambda, helper, header declaration) must be
    the same: checked over every such binding of TensorRT's."""
    repo, tag = Path(os.environ["TENSORRT_REPO"]), trt_python_api.TAGS[version]

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
        ).stdout

    paths = git("ls-tree", "-r", "--name-only", tag, *trt_python_api.SOURCES).split()
    files = {p: git("show", f"{tag}:{p}") for p in paths if p.endswith((".cpp", ".h"))}
    headers = "\n".join(blank_comments(files[p]) for p in sorted(files) if p.endswith(".h"))
    compared, wrong = 0, []
    for path in sorted(p for p in files if p.endswith(".cpp")):
        text = blank_comments(files[path])
        for m in re.finditer(r"\.\s*def\s*\(", text):
            args = split_args(text[m.end() : skip_balanced(text, m.end() - 1) - 1])
            named = [a for a in args[2:] if re.match(r'"\w+"_a|py::arg\(', a)]
            if len(args) < 2 or not STRING.match(args[0]) or not named:
                continue
            arity, with_object, _ = bound_function(args[1], text, headers)
            if arity is None:
                continue
            compared += 1
            # a class's method takes the object first; a module function (m.def) has none
            on_module = re.search(r"(?<![\w.])m\s*$", text[: m.start()]) is not None
            if arity - (with_object and not on_module) != len(named):
                wrong.append(f"{path}: {args[0]} {args[1][:60]}: {arity} against {len(named)} names")
    assert compared > 200
    assert not wrong, "\n".join(wrong)
