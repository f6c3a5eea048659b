"""edge's TensorRT code against TensorRT's Python API as each supported version has it
(edge/backends/data/tensorrt_python_api.json): TensorRT cannot run here, so a name a version
lacks, a keyword a method does not take or an override TensorRT would never call is found
by reading the code instead of by a build on a Jetson."""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path

import pytest

from edge.backends import trt_python_api
from edge.backends.tensorrt import TrtBuildOptions, plan_build
from edge.backends.trt_python_api import compact, extract, load, versions
from edge.errors import ConfigError
from tests.backends.trt_usage import RETURNS, missing, uses
from tests.conftest import ROOT

# the files that call into TensorRT
SOURCES = (
    "edge/backends/tensorrt.py",
    "edge/backends/tensorrt_build.py",
    "edge/backends/tensorrt_log.py",
    "edge/compat.py",
    "edge/build.py",
)
# reached only where plan_build allows (TensorRT 10's implicit INT8 from a calibration cache)
TENSORRT_10_ONLY = {
    ("IInt8EntropyCalibrator2", None): "the cache calibrator's base",
    ("get_batch_size", "IInt8EntropyCalibrator2"): "its overrides",
    ("get_batch", "IInt8EntropyCalibrator2"): "",
    ("read_calibration_cache", "IInt8EntropyCalibrator2"): "",
    ("write_calibration_cache", "IInt8EntropyCalibrator2"): "",
    ("__init__", "IInt8EntropyCalibrator2"): "",
    ("int8_calibrator", "IBuilderConfig"): "where the calibrator is set",
}

BINDINGS = r"""
// a comment with .def("not_a_member") in it
namespace lambdas
{
static auto const grow = [](Thing& self, int by, std::vector<std::pair<int, int>> const& at)
    -> std::vector<int> { return {}; };
bool shrink(Thing& self, int by) { return self.shrink(by << 1); }
} // namespace lambdas
py::class_<IBase> base{m, "IBase", "doc"};
py::enum_<IBase::Level>(base, "Level", py::arithmetic())
    .value("LOW", IBase::Level::kLOW)
    .value("HIGH", IBase::Level::kHIGH)
    .export_values();
base.def("shared", &IBase::shared, "x"_a);
py::class_<Thing, IBase, std::unique_ptr<Thing, py::nodelete>>(m, "Thing")
    .def(py::init<int>(), "size"_a = 1)
    .def(py::init<int, float>())
    .def("run", [](Thing& t, int n) { return t.run(n); }, "count"_a, py::arg("stream") = 1 << 4)
    .def_property("depth", &Thing::getDepth, &Thing::setDepth)
    .def_property_readonly_static("LIMIT", [](py::object) { return 4; })
    .def("run", &Thing::runTwo, "flag"_a)
    .def("grow", lambdas::grow, "doc")
    .def("shrink", &lambdas::shrink)
    .def("reset", &Thing::reset, "doc")
    .def("flush", &Thing::flush)
    .def("pick", static_cast<int (Thing::*)(int, bool) const>(&Thing::pick))
    .def("any", [](Thing& self, py::args rest) { return 0; })
    .def_static("make", [](int a) { return Thing(a); });
py::enum_<Mode>(m, "Mode").value("FAST", Mode::kFAST);
m.def("make_thing", &makeThing, "size"_a);
m.attr("float32") = DataType::kFLOAT;
"""
HEADERS = """
class IBase
{
public:
    //! flush(a, b) in a comment is no declaration
    void flush() noexcept { mImpl->flush(); }
    bool shared(int32_t x) noexcept;
};
class TENSORRTAPI Thing : public IBase
{
public:
    void reset() noexcept
    {
        return mImpl->reset(true);
    }
    int32_t pick(int32_t i, bool b) const noexcept;
};
"""
PACKAGE = """
from .##TENSORRT_MODULE## import *
__version__ = "##TENSORRT_PYTHON_VERSION##"
def nptype(trt_type):
    pass
def volume(iterable, *, strict=False):
    pass
Thing.__enter__ = lambda this: this
"""
FILES = {
    "python/src/infer/pyCore.cpp": BINDINGS,
    "include/NvInfer.h": HEADERS,
    "tensorrt/__init__.py": PACKAGE,
}


def test_bindings_are_read_into_names_bases_values_and_keywords() -> None:
    api = extract(FILES)
    assert api["classes"]["IBase"] == {
        "kind": "class",
        "bases": [],
        "members": {
            "HIGH": {"kwargs": [], "kind": "value"},
            "LOW": {"kwargs": [], "kind": "value"},
            "Level": {"kwargs": [], "kind": "class"},
            "shared": {"kwargs": ["x"], "kind": "method", "signatures": [["x"]], "returns": ["bool"]},
        },
    }
    assert api["classes"]["IBase.Level"]["members"] == {
        "HIGH": {"kwargs": [], "kind": "value"},
        "LOW": {"kwargs": [], "kind": "value"},
    }
    assert api["classes"]["Mode"] == {
        "kind": "enum",
        "bases": [],
        "members": {"FAST": {"kwargs": [], "kind": "value"}},
    }
    thing = api["classes"]["Thing"]
    assert thing["bases"] == ["IBase"]
    assert {name: (r["kwargs"], r["kind"]) for name, r in thing["members"].items()} == {
        "LIMIT": ([], "readonly"),
        "__enter__": ([], "attribute"),
        "__init__": (["size"], "method"),
        "any": ([], "method"),
        "depth": ([], "property"),
        "flush": ([], "method"),
        "grow": ([], "method"),
        "make": ([], "static"),
        "pick": ([], "method"),
        "reset": ([], "method"),
        "run": (["count", "flag", "stream"], "method"),
        "shrink": ([], "method"),
    }
    # each overload's parameters: named (with a default: "="), or counted from the function
    # bound (a lambda or helper less the object, a member function from the headers, bases
    # searched, a member pointer's type), "" for each unnamed one; None where *args hides them
    assert {name: r.get("signatures") for name, r in thing["members"].items()} == {
        "LIMIT": None,
        "__enter__": None,
        "__init__": [["size="], ["", ""]],
        "any": [None],
        "depth": None,
        "flush": [[]],
        "grow": [["", ""]],
        "make": [[""]],
        "pick": [["", ""]],
        "reset": [[]],
        "run": [["count", "stream="], ["flag"]],
        "shrink": [[""]],
    }
    # and what each gives Python, where the C++ says (a bound class by its Python name)
    assert {name: r["returns"] for name, r in thing["members"].items() if "returns" in r} == {
        "__init__": [None, None],
        "any": [None],
        "flush": ["None"],
        "grow": ["list"],
        "make": [None],
        "pick": ["int"],
        "reset": ["None"],
        "run": [None, None],
        "shrink": ["bool"],
    }
    assert api["module"] == {
        "IBase": {"kwargs": [], "kind": "class"},
        "Mode": {"kwargs": [], "kind": "class"},
        "Thing": {"kwargs": [], "kind": "class"},
        "__version__": {"kwargs": [], "kind": "attribute"},
        "float32": {"kwargs": [], "kind": "attribute"},
        "make_thing": {"kwargs": ["size"], "kind": "function", "signatures": [["size"]], "returns": [None]},
        "nptype": {
            "kwargs": ["trt_type"],
            "kind": "function",
            "signatures": [["trt_type"]],
            "returns": [None],
        },
        "volume": {
            "kwargs": ["iterable", "strict"],
            "kind": "function",
            "signatures": [None],
            "returns": [None],
        },
    }


def _record(kwargs: list[str], returns: str | None = "bool") -> dict:
    return {"kwargs": kwargs, "kind": "method", "signatures": [kwargs], "returns": [returns]}


def test_compact_keeps_which_versions_have_each_name() -> None:
    old = {
        "classes": {
            "A": {
                "kind": "class",
                "bases": [],
                "members": {"f": _record(["x"]), "g": _record([]), "p": {"kwargs": [], "kind": "property"}},
            }
        },
        "module": {"A": {"kwargs": [], "kind": "class"}},
    }
    new = {
        "classes": {
            "A": {
                "kind": "class",
                "bases": [],
                "members": {"f": _record(["x", "y"]), "p": {"kwargs": [], "kind": "readonly"}},
            }
        },
        "module": {"A": {"kwargs": [], "kind": "class"}},
    }
    doc = compact({"10.3": old, "11.1": new})
    assert doc["classes"]["A"]["members"] == {
        "f": {
            "versions": None,
            "kwargs": ["x", "y"],
            "kind": "method",
            "signatures": [["x", "y"]],
            "returns": ["bool"],
            "by_version": {"10.3": {"kind": "method", "signatures": [["x"]], "returns": ["bool"]}},
        },
        "g": {"versions": ["10.3"], "kwargs": [], "kind": "method", "signatures": [[]], "returns": ["bool"]},
        "p": {
            "versions": None,
            "kwargs": [],
            "kind": "readonly",
            "by_version": {"10.3": {"kind": "property"}},
        },
    }
    assert load_from(doc, "11.1").member("A", "g") is None
    assert load_from(doc, "10.3").member("A", "g") == {
        "versions": ["10.3"],
        "kwargs": [],
        "kind": "method",
        "signatures": [[]],
        "returns": ["bool"],
    }
    # each version sees its own kind and overloads
    assert load_from(doc, "10.3").member("A", "f")["signatures"] == [["x"]]
    assert load_from(doc, "11.1").member("A", "f")["signatures"] == [["x", "y"]]
    assert load_from(doc, "10.3").member("A", "p")["kind"] == "property"
    assert load_from(doc, "11.1").member("A", "p")["kind"] == "readonly"


def load_from(doc: dict, version: str) -> trt_python_api.TrtPythonApi:
    return trt_python_api.TrtPythonApi(version=version, classes=doc["classes"], module=doc["module"])


def test_the_data_covers_jetpack_6_and_desktop_tensorrt_11() -> None:
    assert versions() == ["10.3", "10.13", "10.16", "11.0", "11.1"]
    with pytest.raises(ConfigError, match=r"no TensorRT '9\.0'.*10\.3, 10\.13"):
        load("9.0")
    # facts of the API the rest of these tests lean on, as NVIDIA's migration guide gives them
    assert {"FP16", "INT8"} <= load("10.3").values("BuilderFlag")
    assert not {"FP16", "INT8"} & load("11.0").values("BuilderFlag")
    assert not load("11.1").has(None, "IInt8EntropyCalibrator2")
    assert load("10.3").has("Logger", "WARNING")  # exported by ILogger.Severity, a base


@pytest.mark.skipif(
    not os.environ.get("TENSORRT_REPO"),
    reason="set TENSORRT_REPO to a clone of github.com/NVIDIA/TensorRT (with tags) to rebuild the data",
)
def test_the_data_is_what_the_tensorrt_sources_give() -> None:
    repo = Path(os.environ["TENSORRT_REPO"])
    per_version = {v: trt_python_api.extract_from_git(repo, tag) for v, tag in trt_python_api.TAGS.items()}
    shipped = json.loads(trt_python_api.DATA.read_text())
    rebuilt = compact(per_version)
    assert {k: shipped[k] for k in rebuilt} == rebuilt


@pytest.mark.parametrize("version", versions())
def test_every_tensorrt_name_edge_uses_exists(version: str) -> None:
    api = load(version)
    problems, checked, shaped = [], set(), set()
    for relative in SOURCES:
        found, untyped = uses((ROOT / relative).read_text(), api)
        assert not untyped, f"{relative}: add what these return to RETURNS in tests/backends/trt_usage.py"
        for use in found:
            checked.add((use.owner, use.name))
            overloads = (api.member(use.owner, use.name) or {}).get("signatures", [None])
            if use.access == "call" and use.positional is not None and None not in overloads:
                shaped.add((use.owner, use.name))
            if version.startswith("10.") or (use.name, use.owner) not in TENSORRT_10_ONLY:
                problems += [f"{relative} {why}" for why in missing([use], api)]
    assert not problems, "\n".join(problems)
    # the walk followed the objects through: a few of the calls it must have seen
    assert {
        ("Builder", "build_serialized_network"),
        ("IBuilderConfig", "set_timing_cache"),
        ("ITensor", "shape"),
        ("ITimingCache", "serialize"),
        ("IExecutionContext", "execute_async_v3"),
        ("Runtime", "engine_host_code_allowed"),
        ("IInt8EntropyCalibrator2", "read_calibration_cache"),
        (None, "nptype"),
        ("IBuilderConfig", "plugins_to_serialize"),
        ("IBuilderConfig", "progress_monitor"),
        ("IProgressMonitor", "step_complete"),  # an override, its parameters held to TensorRT's call
        ("IProfiler", "report_layer_time"),  # edge profile's, on TensorRT
        ("IExecutionContext", "profiler"),
        ("ILogger", "log"),
        ("ILogger.Severity", "WARNING"),
    } <= checked
    # and the calls whose arguments were held to every overload's parameters
    assert {
        ("IOptimizationProfile", "set_shape"),
        ("IExecutionContext", "set_tensor_address"),
        ("IBuilderConfig", "set_memory_pool_limit"),
        ("Runtime", "__init__"),
        ("Builder", "create_builder_config"),  # no names in its binding: counted from NvInfer.h
        ("ITimingCache", "serialize"),
        ("IPluginRegistry", "load_library"),  # in register_plugins, on the builder's or runtime's registry
        ("Runtime", "get_plugin_registry"),
    } <= shaped
    assert len(shaped) >= 25


@pytest.mark.parametrize("version", versions())
def test_what_the_walk_takes_methods_to_return_is_what_tensorrt_returns(version: str) -> None:
    """RETURNS (tests/backends/trt_usage.py) is written by hand; where TensorRT's bindings and
    headers say what a method gives Python, it must agree, or the walk would check the calls
    on its result against the wrong class."""
    api, compared = load(version), 0
    for (owner, name), expected in RETURNS.items():
        record = api.member(owner, name)
        if record is None:
            continue
        returned = set(record["returns"]) - {None}
        if not returned:
            continue  # nothing said (a lambda that leaves its type to the compiler)
        compared += 1
        if expected is None:
            assert not returned & set(api.classes), (owner, name, returned)
        else:
            assert returned == {expected}, (owner, name, returned)
    assert compared >= 12


def test_what_only_tensorrt_10_has_is_only_reached_there() -> None:
    for name, owner in TENSORRT_10_ONLY:
        assert all(load(v).has(owner, name) for v in versions() if v.startswith("10."))
        assert not any(load(v).has(owner, name) for v in versions() if v.startswith("11."))
    with pytest.raises(ConfigError, match="TensorRT 11 removed implicit INT8"):
        plan_build("11.0.0", TrtBuildOptions(precision="int8", calibration_cache=Path("x.cache")))


def test_a_wrong_call_is_found() -> None:
    source = """
import tensorrt as trt
def build(onnx):
    logger = trt.Logger(trt.Logger.WARNING, verbose=True)
    builder = trt.Builder(logger)
    config = builder.create_builder_config()
    config.max_workspace_size = 1 << 30
    config.set_flag(trt.BuilderFlag.FP16)
    engine = builder.build_engine(network, config)
    class Calibrator(trt.IInt8EntropyCalibrator2):
        def read_calibration_cach(self):
            return b""
"""
    found, untyped = uses(source, load("11.1"))
    assert untyped == ["9: Builder.build_engine"]
    assert list(missing(found, load("11.1"))) == [
        "line 4 passes verbose to Logger.__init__, whose keywords in TensorRT 11.1 are ['min_severity']",
        "line 7 uses IBuilderConfig.max_workspace_size, which TensorRT 11.1 lacks",
        "line 8 uses BuilderFlag.FP16, which TensorRT 11.1 lacks",
        "line 9 uses Builder.build_engine, which TensorRT 11.1 lacks",
        "line 10 uses tensorrt.IInt8EntropyCalibrator2, which TensorRT 11.1 lacks",
        "line 11 overrides IInt8EntropyCalibrator2.read_calibration_cach, which TensorRT 11.1 lacks",
    ]
    # on 10.3 only what 10.x removed is left, and the override's typo
    assert list(missing(found, load("10.3"))) == [
        "line 4 passes verbose to Logger.__init__, whose keywords in TensorRT 10.3 are ['min_severity']",
        "line 7 uses IBuilderConfig.max_workspace_size, which TensorRT 10.3 lacks",
        "line 9 uses Builder.build_engine, which TensorRT 10.3 lacks",
        "line 11 overrides IInt8EntropyCalibrator2.read_calibration_cach, which TensorRT 10.3 lacks",
    ]


def test_a_call_of_the_wrong_shape_is_found() -> None:
    """What the names alone cannot show: a property called, a method read and never called,
    a read-only property assigned, a call no overload takes, an override TensorRT's call
    would not fit, a result TensorRT reports failure in dropped."""
    source = """
import tensorrt as trt
def run(data, names):
    logger = trt.Logger()
    runtime = trt.Runtime(logger, 1)
    engine = runtime.deserialize_cuda_engine(data, True)
    context = engine.create_execution_context()
    context.engine = engine
    if engine.get_tensor_name:
        context.set_tensor_address(names[0])
    flags = trt.Builder(logger).create_builder_config().flags()
    ok = context.set_tensor_address(*names)
    ok = context.set_tensor_address(name=names[0], memory=0)
    ok = context.set_tensor_address(names[0], name=names[0])
    config = trt.Builder(logger).create_builder_config()
    config.set_flag(trt.BuilderFlag.FP16())
    config.flags = 0
    context.set_tensor_address(names[0], 0)
    config.set_flag(trt.BuilderFlag.TF32)
    class Calibrator(trt.IInt8EntropyCalibrator2):
        def get_batch(self, names, stream):
            return None
        def get_batch_size(self, *rest):
            return 1
        def write_calibration_cache(self):
            pass
"""
    found, _ = uses(source, load("10.3"))
    assert list(missing(found, load("10.3"))) == [
        "line 5 calls Runtime.__init__ with 2 positional argument(s); TensorRT 10.3 takes (logger)",
        "line 6 calls Runtime.deserialize_cuda_engine with 2 positional argument(s); "
        "TensorRT 10.3 takes (serialized_engine) or (stream_reader)",
        "line 8 assigns to IExecutionContext.engine, a read-only property in TensorRT 10.3",
        "line 9 reads ICudaEngine.get_tensor_name without calling it, a method in TensorRT 10.3",
        "line 10 calls IExecutionContext.set_tensor_address with 1 positional argument(s); "
        "TensorRT 10.3 takes (name, memory)",
        "line 11 calls IBuilderConfig.flags, a property in TensorRT 10.3",
        "line 14 calls IExecutionContext.set_tensor_address(name=) with 1 positional argument(s) and name=; "
        "TensorRT 10.3 takes (name, memory)",
        "line 16 calls BuilderFlag.FP16, an enum value in TensorRT 10.3",
        # set_flag returns nothing: only the dropped bool is said
        "line 18 drops what IExecutionContext.set_tensor_address returns (bool in TensorRT 10.3): "
        "check it, TensorRT reports failure there",
        "line 21 overrides IInt8EntropyCalibrator2.get_batch with the wrong parameters: "
        "TensorRT 10.3 calls it with (names)",
        "line 25 overrides IInt8EntropyCalibrator2.write_calibration_cache with the wrong parameters: "
        "TensorRT 10.3 calls it with (cache)",
    ]


def test_calls_through_the_class_count_the_object_only_for_methods() -> None:
    """``trt.Class.method(obj, ...)`` passes the object by hand; a static method takes none."""
    source = """
import tensorrt as trt
def run(context):
    key = trt.TimingCacheKey.parse("0x1")
    ok = trt.IExecutionContext.set_tensor_address(context, "image", 0)
    bad = trt.IExecutionContext.set_tensor_address(context, "image")
    worse = trt.TimingCacheKey.parse(context, "0x1")
"""
    found, _ = uses(source, load("11.1"))
    assert list(missing(found, load("11.1"))) == [
        "line 6 calls IExecutionContext.set_tensor_address with 1 positional argument(s); "
        "TensorRT 11.1 takes (name, memory)",
        "line 7 calls TimingCacheKey.parse with 2 positional argument(s); TensorRT 11.1 takes (text)",
    ]


def _plans(version: str):
    """Every plan plan_build makes on ``version`` over the options that change its names."""
    for precision, dla, fallback, vc, hc, cache in itertools.product(
        ("fp32", "fp16", "int8"), (None, 0), (True, False), (False, True), (False, True), (None, Path("c"))
    ):
        options = TrtBuildOptions(
            precision=precision,
            dla_core=dla,
            gpu_fallback=fallback,
            version_compatible=vc,
            hardware_compatible=hc,
            calibration_cache=cache,
        )
        try:
            yield options, plan_build(f"{version}.0", options)
        except ConfigError:
            continue


@pytest.mark.parametrize("version", versions())
def test_every_flag_a_build_plan_names_exists(version: str) -> None:
    api = load(version)
    flags, parser_flags, levels = (
        api.values("BuilderFlag"),
        api.values("OnnxParserFlag"),
        api.values("HardwareCompatibilityLevel"),
    )
    plans = list(_plans(version))
    assert len(plans) >= 10
    for options, plan in plans:
        assert set(plan.flags) <= flags, (options, sorted(set(plan.flags) - flags))
        assert set(plan.parser_flags) <= parser_flags, (options, plan.parser_flags)
        assert plan.hardware_compatibility in levels | {None}, options
    # the DLA parser flag is asked for exactly from the first version that has it
    dla = [p for o, p in plans if o.dla_core is not None]
    assert bool(dla) == version.startswith("10.")
    assert all(("ADJUST_FOR_DLA" in p.parser_flags) == ("ADJUST_FOR_DLA" in parser_flags) for p in dla)
