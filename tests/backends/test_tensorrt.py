"""TensorRT backend: the build plan per TensorRT version, the FP16 ONNX it builds from on
TensorRT 11, the errors without TensorRT; building and running are marked `tensorrt`."""

from __future__ import annotations

import enum
import importlib.util
import sys
import types
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from edge.backends import open_engine
from edge.backends import tensorrt as tensorrt_backend
from edge.backends.tensorrt import TrtBuildOptions, plan_build, register_plugins
from edge.backends.tensorrt_build import load_timing_cache, progress_monitor, save_timing_cache
from edge.backends.tensorrt_folder import engine_load_options, install_plugin_libraries
from edge.backends.tensorrt_log import mark, said, shared_logger
from edge.build import BuildRequest
from edge.compat import differences
from edge.errors import BackendError, BackendUnavailableError, BuildError, ConfigError, ManifestError
from edge.export.fp16 import convert_to_fp16
from edge.stream import default_engine_options
from tests.conftest import TEST_SIZE

HAS_TRT = importlib.util.find_spec("tensorrt") is not None
needs_trt = pytest.mark.skipif(
    not HAS_TRT, reason="TensorRT is not installed (it cannot be installed in this workplace)"
)
SHAPES = {"image": (1, 3, *TEST_SIZE)}


def plan(version: str, **options: object):
    return plan_build(version, TrtBuildOptions(input_shapes=SHAPES, **options))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "version,precision,flags,typed,fp16_onnx",
    [
        ("10.3.0", "fp32", [], False, False),
        ("10.3.0", "fp16", ["FP16"], False, False),
        ("10.7.0.post1", "int8", ["INT8", "FP16"], False, False),
        ("11.4.1", "fp32", [], True, False),
        ("11.4.1", "fp16", [], True, True),  # no FP16 flag in 11: the graph carries the types
        ("11.0.0", "int8", [], True, False),  # Q/DQ defines INT8
    ],
)
def test_plan_per_version(
    version: str, precision: str, flags: list[str], typed: bool, fp16_onnx: bool
) -> None:
    p = plan(version, precision=precision)
    assert (p.flags, p.strongly_typed, p.fp16_onnx) == (flags, typed, fp16_onnx)


def test_plan_for_jetson_dla_and_compatibility() -> None:
    p = plan("10.3.0", precision="fp16", dla_core=1)
    assert p.dla_core == 1 and p.flags == ["FP16", "GPU_FALLBACK"]
    assert "GPU_FALLBACK" not in plan("10.3.0", precision="int8", dla_core=0, gpu_fallback=False).flags
    # TensorRT 11.4.1 restored DLA (AGX Orin, JetPack 7.2.2+), strongly typed: FP16 is the
    # converted ONNX's types, not a flag; GPU fallback stays a flag
    p = plan("11.4.1", precision="fp16", dla_core=0)
    assert (p.flags, p.strongly_typed, p.fp16_onnx, p.dla_core) == (["GPU_FALLBACK"], True, True, 0)
    assert any("strongly typed" in note for note in p.notes)
    assert plan("11.5.0", precision="int8", dla_core=1, gpu_fallback=False).flags == []
    # the parser's layer rewrites for DLA exist from 10.16 (JetPack 6's 10.3 lacks them)
    assert plan("10.3.0", precision="fp16", dla_core=0).parser_flags == []
    assert any(
        "cannot adjust layers for DLA" in n for n in plan("10.3.0", precision="fp16", dla_core=0).notes
    )
    assert plan("10.16.0", precision="int8", dla_core=0).parser_flags == ["ADJUST_FOR_DLA"]
    assert plan("11.4.1", precision="fp16", dla_core=0).record()["parser_flags"] == ["ADJUST_FOR_DLA"]
    assert plan("11.4.1", precision="fp16").parser_flags == []  # only for DLA builds
    p = plan("10.3.0", version_compatible=True, hardware_compatible=True)
    assert "VERSION_COMPATIBLE" in p.flags and p.hardware_compatibility == "AMPERE_PLUS"
    record = p.record()
    assert record["version_compatible"] and record["hardware_compatible"]


@pytest.mark.parametrize(
    "version,options,error,match",
    [
        ("11.4.0", {"precision": "fp16", "dla_core": 0}, ConfigError, "11.4.1 and later"),
        ("11.0.0", {"precision": "int8", "dla_core": 0}, ConfigError, "has no DLA on Jetson"),
        ("11.4.1", {"precision": "fp32", "dla_core": 0}, ConfigError, "DLA runs FP16 or INT8 only"),
        ("10.3.0", {"precision": "fp32", "dla_core": 0}, ConfigError, "DLA runs FP16 or INT8 only"),
        (
            "10.3.0",
            {"precision": "fp16", "dla_core": 0, "hardware_compatible": True},
            ConfigError,
            "cannot use DLA",
        ),
        ("11.0.0", {"precision": "int8", "calibration_cache": Path("c")}, ConfigError, "--from-cache"),
        (
            "10.3.0",
            {"precision": "fp16", "calibration_cache": Path("c")},
            ConfigError,
            "only used with --precision int8",
        ),
        ("10.3.0", {"workspace_mb": 8}, ConfigError, "too small"),
        ("8.6.1", {}, BackendUnavailableError, "needs TensorRT 10 or 11"),
        ("ten", {}, ManifestError, "cannot be parsed"),
    ],
)
def test_plan_refuses_what_the_version_cannot_do(
    version: str, options: dict[str, object], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        plan(version, **options)


def test_calibration_cache_drives_tensorrt_10_only() -> None:
    p = plan("10.3.0", precision="int8", calibration_cache=Path("model.trt10.calib"))
    assert p.calibration_cache and "INT8" in p.flags and any("implicit INT8" in n for n in p.notes)


def test_manifest_flags_decide_where_an_engine_runs() -> None:
    """plan.record() is what edge.compat reads back when an engine is loaded."""
    for compatible, expected in ((False, 1), (True, 0)):
        entry = {
            "backend": "tensorrt",
            "versions": {"tensorrt": "10.3.0"},
            "build_flags": plan("10.3.0", version_compatible=compatible).record(),
            "device": {"gpu": "Orin", "compute_capability": "8.7"},
        }
        machine = {"tensorrt": "10.7.0", "gpu": "Orin", "compute_capability": "8.7"}
        assert len(differences(entry, machine)) == expected
        assert differences(entry, {**machine, "tensorrt": "11.0.0"}), "never across a major version"


@pytest.mark.parametrize("model", ["depth_tiny", "panoptic_fpn_tiny"])
def test_fp16_onnx_keeps_the_results(tiny_engines: Path, tmp_path: Path, model: str) -> None:
    """The FP16 graph TensorRT 11 builds from, run here on ONNX Runtime: heavy layers in
    FP16, box arithmetic in FP32, so detections and labels survive."""
    src = tiny_engines / f"{model}_{TEST_SIZE[0]}x{TEST_SIZE[1]}_b1_onnxruntime_fp32.onnx"
    counts = convert_to_fp16(src, tmp_path / "m16.onnx")
    assert counts["fp16_nodes"] > 10 and counts["fp32_nodes"] > 0
    x = np.random.default_rng(3).uniform(0, 255, SHAPES["image"]).astype(np.float32)
    s32 = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"])
    s16 = ort.InferenceSession(str(tmp_path / "m16.onnx"), providers=["CPUExecutionProvider"])
    assert [i.type for i in s16.get_inputs()] == ["tensor(float)"], "inputs keep their FP32 type"
    a = dict(zip([o.name for o in s32.get_outputs()], s32.run(None, {"image": x}), strict=True))
    b = dict(zip([o.name for o in s16.get_outputs()], s16.run(None, {"image": x}), strict=True))
    if model == "depth_tiny":
        rel = np.abs(a["depth"] - b["depth"]).max() / np.abs(a["depth"]).max()
        assert rel < 5e-3, rel
    else:
        # random weights score many boxes almost alike, so FP16 may reorder them: match by
        # label and overlap instead of by position
        n, m = int(a["num_detections"][0]), int(b["num_detections"][0])
        assert abs(n - m) <= max(1, n // 10)
        matched = 0
        for box, label in zip(a["boxes"][0, :n], a["labels"][0, :n], strict=True):
            same = b["labels"][0, :m] == label
            if same.any() and _iou(box, b["boxes"][0, :m][same]).max() > 0.95:
                matched += 1
        assert matched >= 0.9 * n, (matched, n)
        assert (a["sem_labels"] == b["sem_labels"]).mean() > 0.995


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    lo = np.maximum(box[:2], boxes[:, :2])
    hi = np.minimum(box[2:], boxes[:, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=1)
    area = lambda b: np.prod(b[..., 2:] - b[..., :2], axis=-1)  # noqa: E731
    return inter / (area(box) + area(boxes) - inter)


@pytest.mark.skipif(HAS_TRT, reason="TensorRT is installed here")
def test_without_tensorrt_errors_say_how_to_install(tmp_path: Path) -> None:
    req = BuildRequest(model="depth_tiny", height=64, width=128, backend="tensorrt", precision="fp16")
    with pytest.raises(
        BackendUnavailableError, match="pip install 'edge-perception\\[tensorrt\\]'.*JetPack 6"
    ):
        req.validate()
    with pytest.raises(BackendUnavailableError, match="TensorRT is not installed"):
        open_engine(tmp_path / "x.engine", backend="tensorrt")


@pytest.mark.skipif(HAS_TRT, reason="TensorRT is installed here")
def test_tensorrt_installed_without_its_bindings_is_not_called_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # NVIDIA's pip front end (the tensorrt package) imports the bindings of another package
    package = tmp_path / "tensorrt"
    package.mkdir()
    front = "from tensorrt_bindings import *\nfrom tensorrt_bindings import __version__\n"
    (package / "__init__.py").write_text(front)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "tensorrt", raising=False)
    expected = "TensorRT is installed but does not import .*tensorrt_bindings.*libnvinfer"
    with pytest.raises(BackendUnavailableError, match=expected):
        open_engine(tmp_path / "x.engine", backend="tensorrt")


def test_tensorrt_inputs_checked_before_tensorrt_is_needed(tmp_path: Path) -> None:
    req = BuildRequest(
        model="depth_tiny", height=64, width=128, backend="tensorrt", plugin_libraries=(tmp_path / "no.so",)
    )
    with pytest.raises(ConfigError, match="plugin library .*no.so' does not exist"):
        req.validate()
    with pytest.raises(ConfigError, match="apply to the TensorRT backend only"):
        BuildRequest(model="depth_tiny", height=64, width=128, dla_core=0).validate()
    assert default_engine_options("tensorrt", None) == {"device": "cuda:0"}
    with pytest.raises(ConfigError, match="CUDA device"):
        default_engine_options("tensorrt", None, "cpu")


# Stand-ins for the few TensorRT calls whose failures TensorRT returns instead of raising: it
# cannot run here, and what edge does with each answer is edge's own logic. Their names,
# parameters and return types are TensorRT's (tests/backends/test_trt_python_api.py checks
# edge's calls against the bindings of 10.3 to 11.1).
class _Registry:
    def __init__(self, loadable: set[str], logger: object = None) -> None:
        self.loadable, self.loaded, self.logger = loadable, [], logger

    def load_library(self, plugin_path: str) -> object | None:
        if plugin_path not in self.loadable:
            if self.logger is not None:  # as TensorRT logs why before it returns
                self.logger.log(1, f"dlopen failed on {plugin_path}: wrong ELF class")  # type: ignore[attr-defined]
            return None  # IPluginRegistry::loadLibrary's null handle
        self.loaded.append(plugin_path)
        return object()


class _Trt:
    def __init__(self, *, own_plugins: bool = True) -> None:
        self.own_plugins = own_plugins

    def init_libnvinfer_plugins(self, logger: object, namespace: str) -> bool:
        return self.own_plugins


def _stand_in_tensorrt() -> types.ModuleType:
    """A module with TensorRT's ILogger as its bindings give it (a base to override ``log``,
    its Severity values); the overrides' parameters are checked in test_trt_python_api."""

    class Severity(enum.IntEnum):
        INTERNAL_ERROR, ERROR, WARNING, INFO, VERBOSE = range(5)

    class ILogger:
        def __init__(self) -> None:
            pass

    ILogger.Severity = Severity  # type: ignore[attr-defined]
    trt = types.ModuleType("tensorrt")
    trt.ILogger = ILogger  # type: ignore[attr-defined]
    return trt


def test_one_tensorrt_logger_prints_and_keeps_its_errors(capsys: pytest.CaptureFixture[str]) -> None:
    """Panoptic and depth engines each make a runtime: TensorRT warns when the second is handed
    another logger than the first, so every one gets the process's one logger. It prints
    warnings and errors, and edge's errors quote the ones logged since a call began."""
    trt = _stand_in_tensorrt()
    logger = shared_logger(trt)
    assert shared_logger(trt) is logger
    severity = trt.ILogger.Severity  # type: ignore[attr-defined]
    logger.log(severity.INFO, "building")  # TensorRT's chatter is not printed
    logger.log(severity.WARNING, "INT64 weights cast down")
    before = mark(logger)
    assert said(logger, before) == " (see the TensorRT log above)"
    logger.log(severity.ERROR, "IPluginRegistry::loadLibrary: dlopen failed: undefined symbol")
    logger.log(severity.INTERNAL_ERROR, "Assertion failed")
    assert capsys.readouterr().err.splitlines() == [
        "TensorRT warning: INT64 weights cast down",
        "TensorRT error: IPluginRegistry::loadLibrary: dlopen failed: undefined symbol",
        "TensorRT internal error: Assertion failed",
    ]
    assert said(logger, before) == (
        ": TensorRT said: IPluginRegistry::loadLibrary: dlopen failed: undefined symbol; Assertion failed"
    )
    assert said(logger, mark(logger)) == " (see the TensorRT log above)"  # none since
    for n in range(40):  # a long build's errors: the latest are kept
        logger.log(severity.ERROR, f"error {n}")
    assert said(logger, 0).endswith("error 38; error 39") and "error 23" not in said(logger, 0)


def _tensorrt_without_cuda(message: str) -> types.ModuleType:
    """TensorRT where CUDA does not start: its Builder and Runtime log why, and their bindings
    raise TypeError for the null object TensorRT gives back."""
    trt = _stand_in_tensorrt()
    trt.__version__ = "10.3.0"  # type: ignore[attr-defined]

    def unmade(logger: object) -> object:
        logger.log(trt.ILogger.Severity.INTERNAL_ERROR, message)  # type: ignore[attr-defined]
        raise TypeError("pybind11::init(): factory function returned nullptr")

    trt.Builder = trt.Runtime = unmade  # type: ignore[attr-defined]
    return trt


def test_tensorrt_that_cannot_start_cuda_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A container started without NVIDIA's runtime, a driver older than TensorRT's CUDA: a
    TypeError traceback from pybind11 became an error that says what TensorRT logged and what
    to check."""
    cuda = "CUDA initialization failure with error: 35. Please check your CUDA installation"
    monkeypatch.setattr(tensorrt_backend, "import_tensorrt", lambda: _tensorrt_without_cuda(cuda))
    monkeypatch.setattr(tensorrt_backend, "use_device", lambda device, kind: None)  # no GPU here
    (tmp_path / "m.onnx").write_bytes(b"")
    engine = tmp_path / "m.engine"
    logged = f"TensorRT said: {cuda}"
    with pytest.raises(BuildError, match=rf"could not make its builder: {logged}\. .*nvidia-smi"):
        tensorrt_backend.build_engine(tmp_path / "m.onnx", engine, TrtBuildOptions(input_shapes=SHAPES))
    assert list(tmp_path.iterdir()) == [tmp_path / "m.onnx"]
    engine.write_bytes(b"plan")
    with pytest.raises(BackendError, match=rf"runtime to load m\.engine: {logged}.*--runtime nvidia"):
        tensorrt_backend.TensorRTEngine(engine)
    # any other TypeError is raised as it was
    other = _tensorrt_without_cuda(cuda)
    other.Runtime = lambda logger: int("x", base=[])  # type: ignore[attr-defined,call-overload]
    monkeypatch.setattr(tensorrt_backend, "import_tensorrt", lambda: other)
    with pytest.raises(TypeError, match="integer"):
        tensorrt_backend.TensorRTEngine(engine)


class _Builder:
    """A builder whose ``fails`` call logs an error and returns null, as TensorRT's do."""

    def __init__(self, logger: object, fails: str) -> None:
        self.logger, self.fails = logger, fails

    def get_plugin_registry(self) -> _Registry:
        return _Registry(set())

    def _made(self, name: str) -> object | None:
        if name == self.fails:
            self.logger.log(1, f"{name}: std::bad_alloc")  # type: ignore[attr-defined]
            return None
        return types.SimpleNamespace(num_inputs=0, set_memory_pool_limit=lambda *a: None)

    def create_network(self, flags: int = 0) -> object | None:
        return self._made("create_network")

    def create_builder_config(self) -> object | None:
        return self._made("create_builder_config")

    def create_optimization_profile(self) -> object | None:
        return self._made("create_optimization_profile")


class _Parser:
    def __init__(self, network: object, logger: object) -> None:
        pass

    def parse_from_file(self, model: str) -> bool:
        return True


@pytest.mark.parametrize(
    "fails,what",
    [
        ("create_network", "a network"),
        ("create_builder_config", "a build configuration"),
        ("create_optimization_profile", "a build configuration"),
    ],
)
def test_a_network_or_configuration_tensorrt_could_not_create_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fails: str, what: str
) -> None:
    trt = _stand_in_tensorrt()
    trt.__version__ = "10.3.0"  # type: ignore[attr-defined]
    trt.Builder = lambda logger: _Builder(logger, fails)  # type: ignore[attr-defined]
    trt.OnnxParser = _Parser  # type: ignore[attr-defined]
    trt.init_libnvinfer_plugins = lambda logger, namespace: True  # type: ignore[attr-defined]
    monkeypatch.setattr(tensorrt_backend, "import_tensorrt", lambda: trt)
    (tmp_path / "m.onnx").write_bytes(b"")
    expected = rf"could not create {what} for m\.onnx: TensorRT said: {fails}: std::bad_alloc"
    with pytest.raises(BuildError, match=expected):
        tensorrt_backend.build_engine(tmp_path / "m.onnx", tmp_path / "m.engine", TrtBuildOptions())
    assert not (tmp_path / "m.engine").exists()


def test_plugins_that_tensorrt_cannot_register_are_named(tmp_path: Path) -> None:
    good, bad = str(tmp_path / "good.so"), str(tmp_path / "other_arch.so")
    registry = _Registry({good})
    register_plugins(_Trt(), None, registry, [good], BuildError)
    assert registry.loaded == [good]
    with pytest.raises(BackendError, match=r"could not load the plugin library .*other_arch\.so.*rebuild it"):
        register_plugins(_Trt(), None, _Registry({good}), [bad, good], BackendError)
    with pytest.raises(BuildError, match="could not register its own plugins \\(libnvinfer_plugin"):
        register_plugins(_Trt(own_plugins=False), None, _Registry({good}), [good], BuildError)
    # with edge's logger, what TensorRT logged as it refused is the error's end
    logger = shared_logger(_stand_in_tensorrt())
    with pytest.raises(
        BackendError, match=r"build\.sh\): TensorRT said: dlopen failed on .*other_arch\.so: wrong ELF"
    ):
        register_plugins(_Trt(), logger, _Registry({good}, logger), [good, bad], BackendError)


def test_tensorrts_build_phases_are_told_and_ctrl_c_cancels_the_build() -> None:
    """progress_monitor's IProgressMonitor as TensorRT's builder calls it (a stand-in base
    with its name; the overrides' parameters are checked against TensorRT's own call in
    test_trt_python_api)."""
    import types

    class IProgressMonitor:
        def __init__(self) -> None:
            pass

    trt = types.ModuleType("tensorrt")
    trt.IProgressMonitor = IProgressMonitor  # type: ignore[attr-defined]
    told: list[str] = []
    monitor = progress_monitor(trt, told.append, every_s=0.0)
    monitor.phase_start("Building engine", None, 3)
    monitor.phase_start("Tactic selection", "Building engine", 2)
    assert monitor.step_complete("Tactic selection", 0) and monitor.step_complete("Tactic selection", 1)
    monitor.phase_finish("Tactic selection")
    assert monitor.step_complete("Building engine", 0)
    assert told == [
        "TensorRT: Building engine 0/3",
        "TensorRT: Tactic selection 0/2",
        "TensorRT: Tactic selection 1/2",
        "TensorRT: Tactic selection 2/2",
        "TensorRT: Building engine 1/3",
    ]
    assert not monitor.interrupted

    def interrupted(_line: str) -> None:
        raise KeyboardInterrupt

    monitor = progress_monitor(trt, interrupted, every_s=0.0)
    monitor.phase_start("Building engine", None, 3)  # the Ctrl-C lands here: no error, noted
    assert monitor.interrupted
    assert monitor.step_complete("Building engine", 0) is False  # TensorRT cancels the build
    quiet = progress_monitor(trt, told.append, every_s=3600.0)  # at most a line an hour
    told.clear()
    quiet.phase_start("Building engine", None, 9)
    for step in range(9):
        quiet.step_complete("Building engine", step)
    assert told == ["TensorRT: Building engine 0/9"]


class _Cache:
    """ITimingCache: timings (here, a set of names) that combine with another's unless it was
    measured by another TensorRT or GPU (here, named 'stale')."""

    def __init__(self, data: bytes) -> None:
        self.entries = set(data.decode().split()) if data else set()

    def combine(self, input_cache: _Cache, ignore_mismatch: bool) -> bool:
        if "stale" in self.entries | input_cache.entries and not ignore_mismatch:
            return False
        self.entries |= input_cache.entries
        return True

    def serialize(self) -> bytes:
        return " ".join(sorted(self.entries)).encode()


class _Config:
    """IBuilderConfig's timing-cache calls: TensorRT refuses a cache another version or GPU
    measured (``ignore_mismatch=False``) by returning False."""

    def __init__(self, refuse: set[bytes]) -> None:
        self.refuse, self.cache = refuse, None

    def create_timing_cache(self, serialized_timing_cache: bytes) -> _Cache | None:
        if serialized_timing_cache.startswith(b"\x00"):
            return None  # not a timing cache: TensorRT's null
        return _Cache(serialized_timing_cache)

    def set_timing_cache(self, cache: _Cache, ignore_mismatch: bool) -> bool:
        if cache.serialize() in self.refuse or ignore_mismatch:
            return False
        self.cache = cache
        return True

    def get_timing_cache(self) -> _Cache | None:
        return self.cache


def test_a_timing_cache_tensorrt_refuses_is_started_anew(tmp_path: Path) -> None:
    path = tmp_path / "timing.cache"
    config = _Config(refuse={b"stale"})
    assert load_timing_cache(config, path) == [] and config.cache.serialize() == b""  # none yet
    path.write_bytes(b"measured")
    assert load_timing_cache(config, path) == [] and config.cache.serialize() == b"measured"
    path.write_bytes(b"stale")
    notes = load_timing_cache(config, path)
    assert config.cache.serialize() == b""
    assert notes == [
        f"the timing cache {path} was measured by another TensorRT or GPU, or is no timing cache: "
        "a new one was started"
    ]
    path.write_bytes(b"\x00 torn")  # bytes TensorRT cannot read at all
    assert len(load_timing_cache(config, path)) == 1 and config.cache.serialize() == b""
    with pytest.raises(BuildError, match="refused a new timing cache"):
        load_timing_cache(_Config(refuse={b"stale", b""}), path)


def test_a_builds_timings_join_those_another_build_wrote_meanwhile(tmp_path: Path) -> None:
    path = tmp_path / "timing.cache"
    path.write_bytes(b"conv1")
    config = _Config(refuse=set())
    load_timing_cache(config, path)
    config.cache.entries |= {"conv2"}  # what this build measured
    path.write_bytes(b"conv1 depth3")  # another build's timings, saved while this one built
    save_timing_cache(config, path)
    assert path.read_bytes() == b"conv1 conv2 depth3"
    assert sorted(f.name for f in tmp_path.iterdir()) == [
        "timing.cache",
        "timing.cache.lock",
    ]  # no partial file
    # a file TensorRT will not combine with (another TensorRT's) is replaced by this build's
    path.write_bytes(b"stale")
    save_timing_cache(config, path)
    assert path.read_bytes() == b"conv1 conv2"
    path.unlink()  # none at all: this build's alone
    save_timing_cache(config, path)
    assert path.read_bytes() == b"conv1 conv2"


@pytest.mark.tensorrt
@needs_trt
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_build_and_run_matches_onnxruntime(tmp_path: Path, precision: str) -> None:
    from edge.build import build_all

    req = BuildRequest(
        model="depth_tiny",
        height=TEST_SIZE[0],
        width=TEST_SIZE[1],
        backend="tensorrt",
        precision=precision,
        timing_cache=tmp_path / "timing.cache",
    )
    (result,) = build_all([req], tmp_path / "engines", show_progress=False)
    assert result.entry["build_flags"]["strongly_typed"] in (True, False)
    assert (tmp_path / "timing.cache").stat().st_size > 0, "the timing cache is persisted"
    engine = open_engine(tmp_path / "engines" / result.entry["artifact"]["path"], backend="tensorrt")
    x = np.random.default_rng(0).uniform(0, 255, SHAPES["image"]).astype(np.float32)
    got = engine.infer({"image": x})["depth"]
    ref = ort.InferenceSession(
        str(tmp_path / "engines" / result.entry["onnx"]["path"]), providers=["CPUExecutionProvider"]
    ).run(["depth"], {"image": x})[0]
    tol = 1e-3 if precision == "fp32" else 1e-2
    assert np.abs(got - ref).max() / np.abs(ref).max() < tol
    assert engine.last_device_ms is not None and engine.last_device_ms > 0
    engine.close()


def test_roi_align_plugin_library_keeps_the_fused_node() -> None:
    lib = Path("plugins/roi_align/tensorrt/build/libedge_roi_align_plugin.so")
    assert BuildRequest(
        model="depth_tiny", height=64, width=128, backend="tensorrt", plugin_libraries=(lib,)
    ).uses_roi_align_plugin
    assert not BuildRequest(
        model="depth_tiny", height=64, width=128, backend="tensorrt"
    ).uses_roi_align_plugin
    assert not BuildRequest(
        model="depth_tiny", height=64, width=128, plugin_libraries=(lib,)
    ).uses_roi_align_plugin


def test_plugin_libraries_travel_with_the_engines_and_are_checked_on_load(tmp_path: Path) -> None:
    # a real shared library stands in for libedge_roi_align_plugin.so: only its bytes matter here
    built = tmp_path / "build" / "libedge_roi_align_plugin.so"
    built.parent.mkdir()
    built.write_bytes(b"\x7fELF plugin v1")
    engines = tmp_path / "engines"
    recorded = install_plugin_libraries((built,), engines)
    copy = engines / "plugins" / built.name
    assert copy.read_bytes() == built.read_bytes() and list(recorded) == [built.name]
    assert install_plugin_libraries((built,), engines) == recorded  # a rebuild finds it in place

    entry = {"id": "panoptic_trt", "plugins": recorded, "build_flags": {"version_compatible": True}}
    options = engine_load_options(entry, engines)
    assert options == {"plugin_libraries": (copy,), "allow_host_code": True}
    plain = engine_load_options({"id": "depth_trt", "build_flags": {"version_compatible": False}}, engines)
    assert plain == {"plugin_libraries": (), "allow_host_code": False}
    # a DLA engine is deserialized onto the core it was built for (build_flags records it)
    dla = engine_load_options({"id": "depth_trt", "build_flags": {"dla_core": 1}}, engines)
    assert dla == {"plugin_libraries": (), "allow_host_code": False, "dla_core": 1}
    assert "dla_core" not in engine_load_options({"id": "d", "build_flags": {"dla_core": None}}, engines)

    copy.write_bytes(b"\x7fELF plugin v2")  # replaced by hand after the build
    with pytest.raises(ManifestError, match="was built with another libedge_roi_align_plugin.so"):
        engine_load_options(entry, engines)
    copy.unlink()
    with pytest.raises(ManifestError, match="needs the plugin library .* which is missing; rebuild it"):
        engine_load_options(entry, engines)
    # a graph that asks for a plugin (custom_ops) with no library recorded is refused by name,
    # before TensorRT fails to deserialize it as "corrupt"
    fused = {
        "id": "panoptic_trt",
        "custom_ops": [
            {
                "domain": "edge.plugins",
                "op_type": "MultiLevelRoIAlign",
                "plugin_version": "1",
                "plugin_namespace": "",
                "nodes": 2,
            }
        ],
    }
    with pytest.raises(
        ManifestError,
        match=r"engine 'panoptic_trt' was built with the plugin edge.plugins::MultiLevelRoIAlign v1, and its "
        r"folder records no plugin library",
    ):
        engine_load_options(fused, engines)
    assert engine_load_options({**fused, "custom_ops": []}, engines)["plugin_libraries"] == ()
