"""TensorRT backend: ONNX -> serialized engine, and an Engine that runs it.

Written against NVIDIA's documented Python API for TensorRT 10.x (JetPack 6) and 11.x
(desktop); TensorRT cannot be installed where this was written, so everything that can
be decided without it is a pure function here (``plan_build``) and tested, and the calls
into TensorRT stay thin. ``tensorrt`` and CUDA are imported only when a build or an
engine is asked for.

Version rules that shape the plan (TensorRT 11 migration guide):
- 11.x networks are always strongly typed: no FP16/INT8 builder flags, no implicit INT8
  calibration. FP16 means an FP16 ONNX (edge.export.fp16), INT8 a Q/DQ ONNX (calib/).
- 10.x keeps weak typing: FP16 and INT8 are builder flags; a TensorRT 10 calibration
  cache may drive implicit INT8 on the FP32 model.
- DLA: Jetson's TensorRT 10 (JetPack 6) has it; TensorRT 11.0-11.4.0 have none on Jetson;
  11.4.1 restores it on Jetson AGX Orin under JetPack 7.2.2 or later, strongly typed like
  every 11.x network (precision from the ONNX's types), GPU fallback as in 10.x.
  DLA builds set the parser's ADJUST_FOR_DLA where it exists (10.16 and later).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from packaging.version import Version

from edge.backends.base import EngineBase, TensorSpec
from edge.backends.cuda_io import CudaPythonIO, TorchIO, device_index, open_io, use_device
from edge.backends.tensorrt_build import load_timing_cache, progress_monitor, save_timing_cache
from edge.backends.tensorrt_log import mark, said, shared_logger, started
from edge.errors import BackendError, BackendUnavailableError, BuildError, ConfigError, EdgeError

INSTALL_HINT = (
    "TensorRT is not installed: on a desktop GPU `pip install 'edge-perception[tensorrt]'` "
    "(tensorrt, cuda-python); on a Jetson it comes with JetPack 6 (apt install python3-libnvinfer, "
    "then a venv made with --system-site-packages)"
)


# the first TensorRT 11 with DLA on Jetson (AGX Orin, JetPack 7.2.2 or later; release notes)
DLA_RESTORED = Version("11.4.1")
# the first ONNX parser with OnnxParserFlag.ADJUST_FOR_DLA (off by default): it rewrites
# layers during parsing so that more of them can run on DLA instead of falling back
PARSER_ADJUSTS_FOR_DLA = Version("10.16")


@dataclass(frozen=True)
class TrtBuildOptions:
    precision: str = "fp32"  # fp32 | fp16 | int8 (int8: the input ONNX is calib/'s Q/DQ model)
    input_shapes: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    workspace_mb: int = 2048
    timing_cache: Path | None = None
    dla_core: int | None = None
    gpu_fallback: bool = True
    version_compatible: bool = False
    hardware_compatible: bool = False
    plugin_libraries: tuple[Path, ...] = ()
    calibration_cache: Path | None = None  # TensorRT 10 only: implicit INT8 on the FP32 model


@dataclass
class BuildPlan:
    """What a build does on one TensorRT version, decided without TensorRT."""

    trt_version: str
    strongly_typed: bool
    flags: list[str]  # trt.BuilderFlag names
    fp16_onnx: bool  # convert the ONNX to FP16 before parsing (strong typing)
    calibration_cache: bool
    dla_core: int | None
    hardware_compatibility: str | None  # trt.HardwareCompatibilityLevel name
    notes: list[str] = field(default_factory=list)
    parser_flags: list[str] = field(default_factory=list)  # trt.OnnxParserFlag names

    def record(self) -> dict[str, Any]:
        """The manifest's build_flags (edge.compat reads version/hardware compatibility)."""
        return {
            "strongly_typed": self.strongly_typed,
            "flags": self.flags,
            "parser_flags": self.parser_flags,
            "fp16_onnx": self.fp16_onnx,
            "calibration_cache": self.calibration_cache,
            "dla_core": self.dla_core,
            "version_compatible": "VERSION_COMPATIBLE" in self.flags,
            "hardware_compatible": self.hardware_compatibility is not None,
            "hardware_compatibility_level": self.hardware_compatibility,
        }


def plan_build(trt_version: str, options: TrtBuildOptions) -> BuildPlan:
    from edge.compat import parse_version

    v = parse_version(trt_version, what="TensorRT")
    if v.major < 10:
        raise BackendUnavailableError(f"TensorRT {trt_version} is too old; edge needs TensorRT 10 or 11")
    if options.precision not in ("fp32", "fp16", "int8"):
        raise ConfigError(f"precision {options.precision!r} is unknown; choose fp32, fp16 or int8")
    if options.workspace_mb < 64:
        raise ConfigError(f"workspace of {options.workspace_mb} MiB is too small; give at least 64")
    modern = v.major >= 11
    flags: list[str] = []
    notes: list[str] = []
    parser_flags: list[str] = []
    fp16_onnx = False
    if options.precision == "fp16":
        if modern:
            fp16_onnx = True
            notes.append("TensorRT 11 is strongly typed: the ONNX is converted to FP16 first")
        else:
            flags.append("FP16")
    if options.precision == "int8" and not modern:
        # TensorRT 10 needs the INT8 flag to run Q/DQ layers in a weakly typed network;
        # FP16 lets the layers between them avoid FP32
        flags += ["INT8", "FP16"]
    use_cache = options.calibration_cache is not None
    if use_cache:
        if modern:
            raise ConfigError(
                "TensorRT 11 removed implicit INT8 calibration, so a calibration cache cannot drive "
                "it; turn the cache into a Q/DQ model instead: edge calibrate MODEL.onnx --from-cache CACHE"
            )
        if options.precision != "int8":
            raise ConfigError("a calibration cache is only used with --precision int8")
        notes.append("TensorRT 10 implicit INT8 from the calibration cache (deprecated by NVIDIA)")
    if options.dla_core is not None:
        if modern and v < DLA_RESTORED:
            raise ConfigError(
                f"DLA needs TensorRT 10 (JetPack 6) or {DLA_RESTORED} and later (Jetson AGX Orin, JetPack "
                f"7.2.2 or later); TensorRT {trt_version} has no DLA on Jetson"
            )
        if options.dla_core < 0:
            raise ConfigError(f"DLA core must be 0 or 1, got {options.dla_core}")
        if options.precision == "fp32":
            raise ConfigError("DLA runs FP16 or INT8 only; build with --precision fp16 or int8")
        if options.hardware_compatible:
            raise ConfigError("hardware-compatible engines cannot use DLA")
        if options.gpu_fallback:
            flags.append("GPU_FALLBACK")
        else:
            notes.append("no GPU fallback: a layer DLA cannot run fails the build")
        if modern:
            notes.append("DLA on TensorRT 11 is strongly typed: it runs what the ONNX's types say")
        if v >= PARSER_ADJUSTS_FOR_DLA:
            parser_flags.append("ADJUST_FOR_DLA")
        else:
            notes.append(
                f"TensorRT {trt_version}'s ONNX parser cannot adjust layers for DLA "
                f"({PARSER_ADJUSTS_FOR_DLA} and later can): more of them may fall back to the GPU"
            )
    if options.version_compatible:
        flags.append("VERSION_COMPATIBLE")
    return BuildPlan(
        trt_version=trt_version,
        strongly_typed=modern,
        flags=flags,
        fp16_onnx=fp16_onnx,
        calibration_cache=use_cache,
        dla_core=options.dla_core,
        hardware_compatibility="AMPERE_PLUS" if options.hardware_compatible else None,
        notes=notes,
        parser_flags=parser_flags,
    )


def import_tensorrt() -> Any:
    try:
        import tensorrt
    except ImportError as exc:
        if isinstance(exc, ModuleNotFoundError) and exc.name == "tensorrt":
            raise BackendUnavailableError(INSTALL_HINT) from exc
        # installed, and its bindings or libnvinfer not found: not what "not installed" says
        raise BackendUnavailableError(
            f"TensorRT is installed but does not import ({exc}): its bindings and libraries "
            "(libnvinfer, and the CUDA it was built for) must be found: on a desktop GPU `pip install "
            "tensorrt` brings them (its tensorrt-cuNN-bindings and -libs packages); on a Jetson JetPack's "
            "(apt install python3-libnvinfer, then a venv made with --system-site-packages)"
        ) from exc
    return tensorrt


def build_engine(
    onnx_path: Path,
    engine_path: Path,
    options: TrtBuildOptions,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Parse, build and write ``engine_path`` atomically; returns the build record.
    ``progress`` is told TensorRT's build phases as they go."""
    import tempfile

    from edge.util.fs import atomic_write_bytes

    trt = import_tensorrt()
    plan = plan_build(trt.__version__, options)
    logger = shared_logger(trt)
    with started("builder", logger, BuildError):
        builder = trt.Builder(logger)
    # before parsing, into the builder's registry (which the parser looks in), as trtexec does
    register_plugins(trt, logger, builder.get_plugin_registry(), options.plugin_libraries, BuildError)
    creation = 0
    if plan.strongly_typed:  # required by 10.x to opt in; accepted (and implied) by 11.x
        creation = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    since = mark(logger)
    network = builder.create_network(creation)
    if network is None:  # TensorRT returns null (out of memory, flags it refuses) and logs why
        raise BuildError(f"TensorRT could not create a network for {onnx_path.name}{said(logger, since)}")
    parser = trt.OnnxParser(network, logger)
    for name in plan.parser_flags:  # before parsing: they change how layers are imported
        parser.set_flag(getattr(trt.OnnxParserFlag, name))
    with tempfile.TemporaryDirectory(prefix="edge-trt-") as tmp:
        source = onnx_path
        if plan.fp16_onnx:
            from edge.export.fp16 import convert_to_fp16

            source = Path(tmp) / "model.fp16.onnx"
            convert_to_fp16(onnx_path, source)
        if not parser.parse_from_file(str(source)):
            from edge.export.lint import parser_hint

            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            hint = parser_hint(onnx_path, trt.__version__)
            raise BuildError(f"TensorRT's ONNX parser rejected {onnx_path.name}: {errors}{hint}")
    since = mark(logger)
    config = builder.create_builder_config()
    profile = builder.create_optimization_profile()
    if config is None or profile is None:
        raise BuildError(
            f"TensorRT could not create a build configuration for {onnx_path.name}{said(logger, since)}"
        )
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, options.workspace_mb << 20)
    for flag in plan.flags:
        config.set_flag(getattr(trt.BuilderFlag, flag))
    if "VERSION_COMPATIBLE" in plan.flags and options.plugin_libraries:
        # the plan carries its plugins, for the lean runtime of a later TensorRT to load
        config.plugins_to_serialize = [str(library) for library in options.plugin_libraries]
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        shape = tuple(options.input_shapes.get(tensor.name, tuple(tensor.shape)))
        if any(d < 0 for d in shape):
            raise BuildError(f"input {tensor.name!r} has a dynamic shape {shape}; give its size")
        profile.set_shape(tensor.name, shape, shape, shape)  # static engines: min = opt = max
    if config.add_optimization_profile(profile) < 0:
        raise BuildError(f"TensorRT refused the input shapes of {onnx_path.name} as an optimization profile")
    if plan.dla_core is not None:
        if plan.dla_core >= builder.num_DLA_cores:
            raise BuildError(
                f"DLA core {plan.dla_core} was asked for and TensorRT sees {builder.num_DLA_cores} DLA "
                "core(s) here (Jetson AGX Orin and Orin NX have DLA; Orin Nano, Thor and desktop GPUs none)"
            )
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = plan.dla_core
    if plan.hardware_compatibility:
        config.hardware_compatibility_level = getattr(
            trt.HardwareCompatibilityLevel, plan.hardware_compatibility
        )
    if plan.calibration_cache and options.calibration_cache is not None:
        config.int8_calibrator = _cache_calibrator(trt, options.calibration_cache.read_bytes())
    notes = [*plan.notes, *load_timing_cache(config, options.timing_cache)]
    monitor = progress_monitor(trt, progress) if progress is not None else None
    if monitor is not None:
        config.progress_monitor = monitor
    start, since = time.perf_counter(), mark(logger)
    serialized = builder.build_serialized_network(network, config)
    seconds = time.perf_counter() - start
    if monitor is not None and monitor.interrupted:
        raise KeyboardInterrupt  # the build was cancelled for it; nothing was written
    if serialized is None:
        raise BuildError(f"TensorRT could not build {onnx_path.name}{said(logger, since)}")
    atomic_write_bytes(engine_path, bytes(serialized))
    if options.timing_cache is not None:
        save_timing_cache(config, options.timing_cache)
    return {"plan": plan.record(), "notes": notes, "build_seconds": round(seconds, 2)}


def register_plugins(
    trt: Any, logger: Any, registry: Any, libraries: Iterable[str | Path], error: type[EdgeError]
) -> None:
    """TensorRT's own plugins (its standard RoiAlign among them), and into ``registry`` (the
    builder's or the runtime's: a version-compatible engine's lean runtime looks in its own)
    the plugin libraries an engine needs, before a network is parsed or an engine
    deserialized. TensorRT returns these failures instead of raising them: each is raised here
    as ``error``, named."""
    since = mark(logger)
    if not trt.init_libnvinfer_plugins(logger, ""):
        raise error(
            "TensorRT could not register its own plugins (libnvinfer_plugin; is its version "
            f"TensorRT's?){said(logger, since)}"
        )
    for library in libraries:
        if registry.load_library(str(library)) is None:
            raise error(
                f"TensorRT could not load the plugin library {library} (built for another TensorRT "
                "version or GPU, or not a TensorRT plugin library; rebuild it with "
                f"plugins/roi_align/tensorrt/build.sh){said(logger, since)}"
            )


def _cache_calibrator(trt: Any, cache: bytes) -> Any:
    """TensorRT 10's IInt8EntropyCalibrator2 that only replays a cache: no batches, no GPU."""

    class CacheCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)

        def get_batch_size(self) -> int:
            return 1

        def get_batch(self, names: list[str]) -> None:
            return None  # nothing to calibrate on: the cache has every scale

        def read_calibration_cache(self) -> bytes:
            return cache

        def write_calibration_cache(self, data: bytes) -> None:
            return None

    return CacheCalibrator()


def layer_profiler(trt: Any, times: dict[str, list[float]]) -> Any:
    """TensorRT's IProfiler keeping each layer's time of each run (ms) in ``times`` by layer
    name; TensorRT calls it once per layer for each execute_async_v3, once the run is done."""

    class LayerTimes(trt.IProfiler):
        def __init__(self) -> None:
            trt.IProfiler.__init__(self)

        def report_layer_time(self, layer_name: str, ms: float) -> None:
            times.setdefault(layer_name, []).append(ms)

    return LayerTimes()


class TensorRTEngine(EngineBase):
    """A deserialized engine with one execution context on its own CUDA stream.

    Its tensors live in device buffers TensorRT reads and writes in place, staged through
    pinned host memory so the copies run asynchronously on the engine's stream; CUDA events
    around ``execute_async_v3`` give ``last_device_ms`` (edge.backends.cuda_io: torch's CUDA
    tensors where torch has CUDA, else cuda-python; ``io`` chooses). ``cuda_graph=True``
    captures the enqueue once and replays it (static shapes only, which every edge engine has).
    """

    name = "tensorrt"

    def __init__(
        self,
        path: str | Path,
        *,
        device: str = "cuda:0",
        cuda_graph: bool = False,
        plugin_libraries: tuple[str | Path, ...] = (),
        allow_host_code: bool = False,
        dla_core: int | None = None,
        io: str = "auto",
    ) -> None:
        device_index(device)  # a bad device is named before TensorRT is needed
        trt = import_tensorrt()
        use_device(device, kind=io)  # TensorRT makes the engine and its context on the current device
        self.path = Path(path)
        self._logger = shared_logger(trt)
        with started(f"runtime to load {self.path.name}", self._logger, BackendError):
            self._runtime = trt.Runtime(self._logger)
        # a version-compatible engine of our own build (tensorrt_folder.engine_load_options)
        if allow_host_code:
            self._runtime.engine_host_code_allowed = True
        if dla_core is not None:  # before deserializing, as trtexec sets it for a DLA engine
            if dla_core >= self._runtime.num_DLA_cores:
                raise BackendError(
                    f"{self.path.name} was built for DLA core {dla_core} and TensorRT sees "
                    f"{self._runtime.num_DLA_cores} DLA core(s) here; rebuild it for this device"
                )
            self._runtime.DLA_core = dla_core
        # an engine that uses a plugin needs it to deserialize
        register_plugins(
            trt, self._logger, self._runtime.get_plugin_registry(), plugin_libraries, BackendError
        )
        since = mark(self._logger)
        engine = self._runtime.deserialize_cuda_engine(self.path.read_bytes())
        if engine is None:
            raise BackendError(
                f"TensorRT could not load {self.path.name} (corrupt, or built by another TensorRT "
                "version or for another GPU; rebuild it with edge build --backend tensorrt)"
                f"{said(self._logger, since)}"
            )
        self._engine = engine
        self._context = engine.create_execution_context()
        if self._context is None:
            raise BackendError(
                f"TensorRT could not make an execution context for {self.path.name} (out of GPU "
                f"memory?){said(self._logger, since)}"
            )
        self._inputs: list[TensorSpec] = []
        self._outputs: list[TensorSpec] = []
        for i in range(engine.num_io_tensors):
            tname = engine.get_tensor_name(i)
            shape = tuple(int(d) for d in engine.get_tensor_shape(tname))
            if any(d < 0 for d in shape):  # buffers are sized once, from these shapes
                raise BackendError(
                    f"{self.path.name}: its tensor {tname!r} has the shape {shape}, known only as it runs "
                    "(a dynamic or data-dependent dimension); edge runs static engines: rebuild it with "
                    "edge build --backend tensorrt"
                )
            dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(tname))).name
            is_input = engine.get_tensor_mode(tname) == trt.TensorIOMode.INPUT
            (self._inputs if is_input else self._outputs).append(TensorSpec(tname, shape, dtype))
        self._io: TorchIO | CudaPythonIO | None = None
        try:
            self._io = open_io(self._inputs, self._outputs, device=device, kind=io)
        except BackendError as exc:
            raise type(exc)(f"{self.path.name}: {exc}") from exc
        for spec in [*self._inputs, *self._outputs]:
            if not self._context.set_tensor_address(spec.name, self._io.address(spec.name)):
                raise BackendError(
                    f"{self.path.name}: TensorRT refused the buffer of its tensor {spec.name!r}"
                )
        self.last_device_ms: float | None = None
        self._graphed = cuda_graph
        self._profiler: Any = None
        if cuda_graph:
            self._io.capture(self._enqueue)

    def _buffers(self) -> TorchIO | CudaPythonIO:
        if self._io is None:
            raise BackendError(f"{self.path.name}: the engine was closed")
        return self._io

    @property
    def outputs(self) -> list[TensorSpec]:
        return list(self._outputs)

    def _enqueue(self) -> None:
        since = mark(self._logger)
        if not self._context.execute_async_v3(self._buffers().stream_handle):
            raise BackendError(
                f"{self.path.name}: TensorRT failed to enqueue the inference{said(self._logger, since)}"
            )

    def infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        outputs, self.last_device_ms = self._buffers().run(self.check_feeds(feeds), self._enqueue)
        return outputs

    def time_layers(self) -> dict[str, list[float]]:
        """From the next run on, each layer's time of each run (ms, by layer name), filled as
        the runs end (TensorRT's IProfiler: edge.layer_profile reads it)."""
        if self._graphed:
            raise BackendError(
                f"{self.path.name}: a CUDA graph replays without TensorRT's profiler; open it without "
                "cuda_graph"
            )
        times: dict[str, list[float]] = {}
        self._profiler = layer_profiler(import_tensorrt(), times)  # held: TensorRT keeps no reference
        self._context.profiler = self._profiler
        return times

    def close(self) -> None:
        # the context before the engine before the runtime: TensorRT's destruction order; the
        # buffers it wrote into once it is gone
        self._context = None
        if self._io is not None:
            self._io.close()
            self._io = None
        self._engine = None
