"""Build engines: zoo model (+ checkpoint) -> ONNX -> backend artifact -> check -> manifest.

A build is keyed by a fingerprint of everything that determines its output (model
config, weights, size, backend, precision, opset, tool versions and edge's own model,
export, calibration and backend build code), so an unchanged request is not rebuilt.
Artifacts are written atomically and the manifest is updated under a lock, so
concurrent builds cannot corrupt it.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.build_key import export_key, fingerprint, tool_versions, weights_info
from edge.errors import BuildError, ConfigError
from edge.manifest import Manifest, refuse_a_file
from edge.util.fs import atomic_write_with, exclusive_lock, sha256_file

BACKEND_PRECISIONS = {
    "onnxruntime": ("fp32", "int8"),
    "tensorrt": ("fp32", "fp16", "int8"),
    "torch": ("fp32",),
}
ARTIFACT_SUFFIX = {"onnxruntime": ".ort.onnx", "tensorrt": ".engine", "torch": ".pt"}
DEFAULT_MODELS = ("panoptic_fpn_tiny", "depth_tiny")
DEFAULT_SIZE = (256, 512)
# what to give for INT8 engines: said by every refusal that lacks calibration frames
CALIB_DATA_HINT = (
    "--calib-data URI (e.g. 'cityscapes://DIR?split=train', a video, an image folder or synthetic://)"
)
_SIZE_RE = re.compile(r"^\s*(\d+)\s*[xX]\s*(\d+)\s*$")


def parse_size(text: str) -> tuple[int, int]:
    """'256x512' -> (256, 512): height x width, both positive multiples of 32."""
    from edge.models.configs import check_input_size

    m = _SIZE_RE.match(text)
    if m is None:
        raise ConfigError(f"--size {text!r} is not HEIGHTxWIDTH (expected e.g. 256x512)")
    h, w = int(m[1]), int(m[2])
    check_input_size(h, w)
    return h, w


MAX_FRAME_SIDE = 16384  # a frame side past this is a typo, and its frames would not fit in memory


def parse_frame_size(text: str, what: str = "size") -> tuple[int, int]:
    """'720x1280' -> (720, 1280): a frame's height x width, any size from 2x2 (a camera's
    720p, which no engine input could be: those are multiples of 32, parse_size)."""
    m = _SIZE_RE.match(text)
    if m is None:
        raise ConfigError(f"{what} {text!r} is not HEIGHTxWIDTH (expected e.g. 720x1280)")
    h, w = int(m[1]), int(m[2])
    if not (2 <= h <= MAX_FRAME_SIDE and 2 <= w <= MAX_FRAME_SIDE):
        raise ConfigError(f"{what} {h}x{w}: a frame's height and width must be 2 to {MAX_FRAME_SIDE} pixels")
    return h, w


@dataclass(frozen=True)
class BuildRequest:
    model: str
    height: int
    width: int
    backend: str = "onnxruntime"
    precision: str = "fp32"
    batch: int = 1
    checkpoint: Path | None = None
    opset: int = 18
    seed: int = 0
    calib_data: str | None = None  # int8: source URI of calibration frames
    calib_frames: int = 64
    calib_method: str = "entropy"
    calib_fit: str = "stretch"  # int8: how calibration frames of another shape go in (edge run --fit)
    int8_min_snr: float | None = None  # int8: keep layers in float until outputs keep this score (dB)
    int8_equalize: bool = True  # int8: equalize imbalanced convolution inputs first (calib/equalize.py)
    int8_bias_correction: bool = True  # int8: keep the float model's mean outputs (calib/bias.py)
    # TensorRT only (edge.backends.tensorrt.TrtBuildOptions)
    workspace_mb: int = 2048
    timing_cache: Path | None = None
    dla_core: int | None = None
    gpu_fallback: bool = True
    version_compatible: bool = False
    hardware_compatible: bool = False
    plugin_libraries: tuple[Path, ...] = ()
    calib_cache: Path | None = None  # TensorRT 10: implicit INT8 from this cache, no frames

    @property
    def engine_id(self) -> str:
        return f"{self.model}_{self.height}x{self.width}_b{self.batch}_{self.backend}_{self.precision}"

    def validate(self) -> None:
        from edge.models.configs import check_input_size
        from edge.models.zoo import get_entry

        get_entry(self.model)
        check_input_size(self.height, self.width)
        if self.backend not in BACKEND_PRECISIONS:
            raise ConfigError(
                f"backend {self.backend!r} is unknown; choose one of {sorted(BACKEND_PRECISIONS)}"
            )
        if self.backend == "tensorrt":
            self._validate_tensorrt()
        allowed = BACKEND_PRECISIONS[self.backend]
        if self.precision not in allowed:
            raise ConfigError(
                f"precision {self.precision!r} is not supported by the {self.backend} backend yet "
                f"(supported: {', '.join(allowed)})"
            )
        if self.batch < 1:
            raise ConfigError(f"batch must be >= 1, got {self.batch}")
        if self.precision == "int8":
            from calib.quantize import METHODS

            if not self.calib_data and self.calib_cache is None:
                raise ConfigError(f"--precision int8 needs calibration frames: {CALIB_DATA_HINT}")
            if self.calib_method not in METHODS:
                raise ConfigError(f"--calib-method {self.calib_method!r} is unknown; choose one of {METHODS}")
            if self.calib_frames < 1:
                raise ConfigError(f"--calib-frames must be >= 1, got {self.calib_frames}")
            from edge.stream.fit import FITS

            if self.calib_fit not in FITS:
                raise ConfigError(f"--calib-fit {self.calib_fit!r} is unknown; choose one of {FITS}")
        if self.backend != "tensorrt" and (self.dla_core is not None or self.calib_cache is not None):
            raise ConfigError("--dla-core and --calib-cache apply to the TensorRT backend only")
        if self.checkpoint is not None and not self.checkpoint.exists():
            raise ConfigError(f"checkpoint for {self.model} not found: {str(self.checkpoint)!r}")

    @property
    def uses_roi_align_plugin(self) -> bool:
        """A TensorRT build given edge's RoIAlign plugin library keeps the fused node."""
        return self.backend == "tensorrt" and any("edge_roi_align" in p.name for p in self.plugin_libraries)

    @property
    def roi_align_form(self) -> str:
        # with edge's plugin library loaded, TensorRT runs the fused node; everyone else
        # gets the standard-op expansion
        return "plugin" if self.uses_roi_align_plugin else "standard"

    def trt_options(self) -> Any:
        from edge.backends.tensorrt import TrtBuildOptions

        return TrtBuildOptions(
            precision=self.precision,
            input_shapes={"image": (self.batch, 3, self.height, self.width)},
            workspace_mb=self.workspace_mb,
            timing_cache=self.timing_cache,
            dla_core=self.dla_core,
            gpu_fallback=self.gpu_fallback,
            version_compatible=self.version_compatible,
            hardware_compatible=self.hardware_compatible,
            plugin_libraries=self.plugin_libraries,
            calibration_cache=self.calib_cache,
        )

    def _validate_tensorrt(self) -> None:
        """Everything checkable before TensorRT is imported, then TensorRT itself."""
        from edge.backends.tensorrt import import_tensorrt, plan_build

        for lib in self.plugin_libraries:
            if not lib.is_file():
                raise ConfigError(f"plugin library {str(lib)!r} does not exist")
        if self.calib_cache is not None and not self.calib_cache.is_file():
            raise ConfigError(f"calibration cache {str(self.calib_cache)!r} does not exist")
        trt = import_tensorrt()
        plan_build(trt.__version__, self.trt_options())


@dataclass
class BuildResult:
    request: BuildRequest
    entry: dict[str, Any]
    rebuilt: bool
    messages: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        check = self.entry.get("accuracy_check") or {}
        return bool(check.get("passed", True))


FUSED_ROI_ALIGN = "edge.plugins::MultiLevelRoIAlign"
Progress = Callable[[str], None]


def build_one(
    req: BuildRequest,
    out_dir: Path,
    *,
    force: bool = False,
    verify_samples: int = 2,
    progress: Progress | None = None,
) -> BuildResult:
    """Build (or reuse) one engine and record it in ``out_dir/manifest.json``."""
    from edge.export.onnx import custom_ops
    from edge.models.zoo import get_entry

    req.validate()
    step = progress or (lambda _msg: None)
    refuse_a_file(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    entry_cfg = get_entry(req.model)
    versions = tool_versions()
    if req.backend == "tensorrt":
        from edge.backends.tensorrt import import_tensorrt

        versions["tensorrt"] = import_tensorrt().__version__
    weights = weights_info(req)
    fp = fingerprint(req, entry_cfg.config_dict(), weights, versions)
    ekey = export_key(req, entry_cfg.config_dict(), weights, versions)

    with exclusive_lock(out_dir / ".build.lock"):
        manifest = Manifest.load(out_dir)
        old = manifest.engines.get(req.engine_id)
        if not force and old and old.get("fingerprint") == fp and manifest.artifact_intact(old):
            step("up to date")
            return BuildResult(req, old, rebuilt=False, messages=["up to date"])

        step("loading model")
        model = _load_model(req)
        onnx_path = out_dir / f"{req.engine_id}.onnx"
        # --force distrusts what the folder holds, its exports included
        donor = None if force else _reuse_export(manifest, ekey, onnx_path)
        if donor is None:
            step("exporting ONNX")
            _export(model, req, onnx_path)
        else:
            step(f"reusing the ONNX export of {donor}")
        step("linting for TensorRT")
        lint = _lint(
            onnx_path,
            plugins=(FUSED_ROI_ALIGN,) if req.uses_roi_align_plugin else (),
            tensorrt=versions.get("tensorrt"),
        )
        step(f"building {req.backend} engine")
        artifact = out_dir / f"{req.engine_id}{ARTIFACT_SUFFIX[req.backend]}"
        calibration = None
        backend_input = onnx_path
        if req.precision == "int8" and req.calib_cache is None:
            step("calibrating INT8")
            calibration, backend_input = _calibrate(req, onnx_path, out_dir)
        elif req.calib_cache is not None:  # TensorRT 10 calibrates implicitly from it
            calibration = {
                "method": "tensorrt10-cache",
                "cache": str(req.calib_cache),
                "cache_sha256": sha256_file(req.calib_cache),
            }
        trt_record = _build_backend(req, model, backend_input, artifact, step)
        check = None
        if verify_samples > 0:
            step("checking against torch")
            check = _verify(model, req, artifact, verify_samples)
        entry = _entry(req, entry_cfg, fp, weights, versions, onnx_path, artifact, check)
        entry["lint"] = lint
        entry["custom_ops"] = custom_ops(onnx_path)  # the plugins the engine's graph asks for
        entry["export_key"] = ekey
        entry["onnx"]["reused_from"] = donor
        entry["calibration"] = calibration
        if trt_record is not None:
            entry.update(trt_record)
        # re-read under the lock so entries written by other builds are kept
        manifest = Manifest.load(out_dir)
        manifest.engines[req.engine_id] = entry
        manifest.save()
    return BuildResult(req, entry, rebuilt=True)


def _load_model(req: BuildRequest) -> Any:
    from edge.models.checkpoints import load_checkpoint
    from edge.models.zoo import create_model

    model = create_model(req.model, seed=req.seed)
    if req.checkpoint is not None:
        load_checkpoint(model, req.checkpoint)
    return model


def _export(model: Any, req: BuildRequest, path: Path) -> None:
    from edge.export.onnx import export_onnx

    export_onnx(
        model,
        path,
        height=req.height,
        width=req.width,
        batch=req.batch,
        opset=req.opset,
        metadata={"edge.model": req.model, "edge.input": "image: float32 NCHW RGB 0..255"},
        roi_align=req.roi_align_form,
    )


def _reuse_export(manifest: Manifest, key: str, onnx_path: Path) -> str | None:
    """Put the folder's export with this export key at ``onnx_path``; the donor's id, or None.

    Only a file that still hashes to what its build recorded is taken.
    """
    import functools
    import shutil

    for other in manifest.engines.values():
        src = manifest.intact_file(other, "onnx") if other.get("export_key") == key else None
        if src is None:
            continue
        if src != onnx_path.resolve():
            atomic_write_with(onnx_path, functools.partial(shutil.copyfile, src))
        return str(other.get("id", src.name))
    return None


def _lint(onnx_path: Path, plugins: tuple[str, ...] = (), tensorrt: str | None = None) -> dict[str, Any]:
    """TensorRT compatibility of the exported graph, per target (recorded, not enforced, here);
    for an engine TensorRT builds, also for its release (``tensorrt``, the installed version)."""
    from edge.export.lint import TARGETS, lint_targets, summarize
    from edge.export.trt_versions import installed_target

    installed = installed_target(tensorrt) if tensorrt else None
    targets = [*TARGETS, *([installed] if installed else [])]
    found = lint_targets(onnx_path, targets=targets, plugins=plugins)
    return {t: summarize(findings) for t, findings in found.items()}


def _build_backend(
    req: BuildRequest, model: Any, onnx_path: Path, artifact: Path, progress: Progress | None = None
) -> dict[str, Any] | None:
    """Write the artifact; for TensorRT, also the manifest fields its build decides (and its
    phases told to ``progress``)."""
    if req.backend == "tensorrt":
        from edge.backends.tensorrt import build_engine
        from edge.backends.tensorrt_folder import install_plugin_libraries
        from edge.compat import current_machine

        record = build_engine(onnx_path, artifact, req.trt_options(), progress)
        machine = current_machine("tensorrt")
        return {
            "build_flags": record["plan"],
            "build_notes": record["notes"],
            "device": {"gpu": machine.get("gpu"), "compute_capability": machine.get("compute_capability")},
            # the engine cannot load without them: they travel in the engines folder
            "plugins": install_plugin_libraries(req.plugin_libraries, artifact.parent),
        }
    if req.backend == "onnxruntime":
        from edge.backends.onnxruntime import optimize_model

        # the Q/DQ model keeps TensorRT's symmetric INT8; ONNX Runtime's x86 integer
        # kernels get the same grid stored as UINT8
        u8 = req.precision == "int8"
        atomic_write_with(artifact, lambda tmp: optimize_model(onnx_path, tmp, uint8_activations=u8))
        return None
    if req.backend == "torch":
        # the ONNX file is still exported and linted: it is the model's canonical form
        from edge.backends.torch import save_artifact

        save_artifact(model, name=req.model, input_shape=(req.batch, 3, req.height, req.width), path=artifact)
        return None
    raise BuildError(f"no builder for backend {req.backend!r}")  # validate() stops this earlier


def _calibrate(req: BuildRequest, onnx_path: Path, out_dir: Path) -> tuple[dict[str, Any], Path]:
    """Q/DQ model + ranges + TensorRT 10 cache next to the ONNX; the record for the manifest."""
    from calib import calibrate

    assert req.calib_data is not None  # validate() guarantees it
    result = calibrate(
        onnx_path,
        source=req.calib_data,
        out_dir=out_dir,
        frames=req.calib_frames,
        method=req.calib_method,
        min_snr_db=req.int8_min_snr,
        equalize=req.int8_equalize,
        bias_correction=req.int8_bias_correction,
        fit=req.calib_fit,
    )
    record = dict(result.record)
    record["files"] = {
        "qdq_onnx": result.qdq_model.name,
        "ranges": result.ranges_json.name,
        "tensorrt10_cache": result.trt_cache.name,
        "cache_float_onnx": result.float_model.name if result.float_model else None,
    }
    return record, result.qdq_model


def _verify(model: Any, req: BuildRequest, artifact: Path, samples: int) -> dict[str, Any]:
    from edge.verify import verify_engine

    return verify_engine(
        model,
        artifact,
        backend=req.backend,
        shape=(req.batch, 3, req.height, req.width),
        samples=samples,
        # INT8 is judged on frames of its calibration source that it was not calibrated on
        frames_from=req.calib_data if req.precision == "int8" else None,
        frames_seed=req.seed + 1,
        frames_fit=req.calib_fit,
    )


def _entry(
    req: BuildRequest,
    zoo_entry: Any,
    fp: str,
    weights: dict[str, Any],
    versions: dict[str, str],
    onnx_path: Path,
    artifact: Path,
    check: dict[str, Any] | None,
) -> dict[str, Any]:
    from edge.backends import open_engine

    with open_engine(artifact, backend=req.backend) as engine:
        inputs = [s.to_json() for s in engine.inputs]
        outputs = [s.to_json() for s in engine.outputs]
    return {
        "id": req.engine_id,
        "model": req.model,
        "kind": zoo_entry.kind,
        "config": zoo_entry.config_dict(),
        "backend": req.backend,
        "precision": req.precision,
        "inputs": inputs,
        "outputs": outputs,
        "onnx": {"path": onnx_path.name, "sha256": sha256_file(onnx_path), "opset": req.opset},
        "artifact": {
            "path": artifact.name,
            "sha256": sha256_file(artifact),
            "bytes": artifact.stat().st_size,
        },
        "weights": weights,
        "fingerprint": fp,
        "versions": versions,
        "device": {"gpu": None, "compute_capability": None},  # filled by the TensorRT backend
        "plugins": {},
        "calibration": None,
        "accuracy_check": check,
        "built_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def build_all(
    requests: Iterable[BuildRequest],
    out_dir: str | Path,
    *,
    force: bool = False,
    verify_samples: int = 2,
    show_progress: bool = True,
) -> list[BuildResult]:
    """Build every request in order with a progress bar on stderr."""
    from edge.util.progress import progress_bar

    reqs = list(requests)
    for r in reqs:  # fail on bad input before spending minutes on the first build
        r.validate()
    results = []
    bar = progress_bar(
        enabled=show_progress,
        total=len(reqs),
        unit="engine",
        bar_format="{desc} |{bar}| {n_fmt}/{total_fmt} [{elapsed}]",
    )
    with bar:
        for r in reqs:

            def step(msg: str, _id: str = r.engine_id) -> None:
                bar.set_description_str(f"{_id}: {msg}")

            results.append(
                build_one(r, Path(out_dir), force=force, verify_samples=verify_samples, progress=step)
            )
            bar.update(1)
    return results
