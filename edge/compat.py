"""Does a built engine fit this machine? If not: what differs, and the command that rebuilds it.

Rules (versions compared with packaging.version):
- TensorRT: an engine runs only on the TensorRT version that built it, unless it was built
  version-compatible (then any later version of the same major); and only on GPUs of the
  compute capability it was built for, unless it was built hardware-compatible.
- ONNX Runtime: the optimised model may use operators added in the version that wrote it,
  so the running ONNX Runtime must be at least that (major, minor).
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version

from edge.errors import ManifestError


class EngineMismatchError(ManifestError):
    """A built engine does not fit this machine."""


def parse_version(text: str, *, what: str) -> Version:
    try:
        return Version(str(text).split("+")[0])
    except InvalidVersion:
        raise ManifestError(f"{what} version {text!r} cannot be parsed") from None


def current_machine(backend: str) -> dict[str, Any]:
    """Versions and device of this machine, for the given backend (optional imports are lazy)."""
    if backend == "onnxruntime":
        from edge.util.ort import onnxruntime_module

        onnxruntime = onnxruntime_module()
        return {"onnxruntime": onnxruntime.__version__}
    if backend == "tensorrt":
        machine: dict[str, Any] = {}
        try:
            import tensorrt

            machine["tensorrt"] = tensorrt.__version__
        except ImportError:
            machine["tensorrt"] = None
        from edge.backends.cuda_io import cuda_device

        if (gpu := cuda_device()) is not None:  # torch's view, or cuda-python's without it
            machine["gpu"], machine["compute_capability"] = gpu["name"], gpu["compute_capability"]
        return machine
    return {}


def differences(entry: Mapping[str, Any], machine: Mapping[str, Any]) -> list[str]:
    """Why ``entry`` cannot run on ``machine``; empty when it can."""
    backend = entry.get("backend")
    versions = entry.get("versions") or {}
    out: list[str] = []
    if backend == "onnxruntime":
        built, here = versions.get("onnxruntime"), machine.get("onnxruntime")
        if built and here:
            b = parse_version(built, what="onnxruntime (manifest)")
            h = parse_version(here, what="onnxruntime (installed)")
            if (h.major, h.minor) < (b.major, b.minor):
                out.append(f"built with onnxruntime {built}, this machine has {here} (older)")
    elif backend == "tensorrt":
        flags = entry.get("build_flags") or {}
        built, here = versions.get("tensorrt"), machine.get("tensorrt")
        if here is None:
            out.append("TensorRT is not installed on this machine")
        elif built:
            b = parse_version(built, what="tensorrt (manifest)")
            h = parse_version(here, what="tensorrt (installed)")
            same = (
                (b.release == h.release)
                if not flags.get("version_compatible")
                else (b.major == h.major and h >= b)
            )
            if not same:
                rule = "the same major, same or later" if flags.get("version_compatible") else "exactly"
                out.append(f"built with TensorRT {built}, this machine has {here} (needs {rule})")
        device = entry.get("device") or {}
        cc_built, cc_here = device.get("compute_capability"), machine.get("compute_capability")
        if cc_built and cc_built != cc_here and not flags.get("hardware_compatible"):
            gpu = machine.get("gpu") or "no CUDA GPU"
            out.append(
                f"built for compute capability {cc_built} ({device.get('gpu')}), "
                f"this machine has {cc_here or '-'} ({gpu})"
            )
    return out


def rebuild_command(entry: Mapping[str, Any], engines_dir: str | Path) -> str:
    """The edge build command that makes this engine again: same model, size, backend and
    precision, and what the manifest says it was built from (weights, calibration, TensorRT
    options), so that following it does not quietly give a different engine."""
    return build_command([entry], engines_dir, force=True)


def build_command(
    entries: Sequence[Mapping[str, Any]],
    engines_dir: str | Path,
    *,
    size: tuple[int, int] | None = None,
    force: bool = False,
) -> str:
    """The edge build commands that make these engines as the manifest says they were made
    (rebuild_command's options), at ``size`` where given: one command for the engines whose
    options agree (a panoptic and a depth model built together), joined by ``&&`` where
    they differ."""
    commands: dict[tuple[str, ...], tuple[list[str], list[str]]] = {}  # options: models, checkpoints
    for entry in entries:
        model = str(entry.get("model"))
        models, checkpoints = commands.setdefault(_options(entry, Path(engines_dir), size), ([], []))
        models.append(model)
        checkpoints += _checkpoint_args(model, entry.get("weights") or {})
    out = [f"--out {shlex.quote(str(engines_dir))}", *(["--force"] if force else [])]
    return " && ".join(
        " ".join(["edge build", f"--models {' '.join(models)}", *options, *checkpoints, *out])
        for options, (models, checkpoints) in commands.items()
    )


def _options(entry: Mapping[str, Any], engines_dir: Path, size: tuple[int, int] | None) -> tuple[str, ...]:
    """A build's options but its models, checkpoints and folder."""
    shape = (entry.get("inputs") or [{}])[0].get("shape") or [1, 3, 0, 0]
    h, w = size or (shape[2], shape[3])
    parts = [
        f"--backend {entry.get('backend')}",
        f"--precision {entry.get('precision', 'fp32')}",
        f"--size {h}x{w}",
    ]
    if shape[0] != 1:
        parts.append(f"--batch {shape[0]}")
    if str((entry.get("weights") or {}).get("source") or "").startswith("random-init"):
        parts.append("--random-weights")  # no model gets bundled weights: random, or its checkpoint
    opset = (entry.get("onnx") or {}).get("opset")
    if opset not in (None, 18):
        parts.append(f"--opset {opset}")
    parts += _calibration_args(entry.get("calibration") or {})
    parts += _tensorrt_args(entry, engines_dir)
    return tuple(parts)


def _checkpoint_args(model: str, weights: Mapping[str, Any]) -> list[str]:
    from edge.models.zoo import bundled_weights

    source = str(weights.get("source") or "")
    if source.startswith("random-init"):
        return []  # --random-weights, among the options
    bundled = bundled_weights(model) if model else None
    if not source or (bundled is not None and Path(source) == bundled):
        return []  # edge's bundled weights are what a build without --checkpoint takes
    return [f"--checkpoint {shlex.quote(f'{model}={source}')}"]


def _calibration_args(calibration: Mapping[str, Any]) -> list[str]:
    if "cache" in calibration:
        return [f"--calib-cache {shlex.quote(str(calibration['cache']))}"]
    if "frames" not in calibration:
        return []
    args = [
        f"--calib-data {shlex.quote(str(calibration.get('source')))}",
        f"--calib-frames {calibration['frames']}",
        f"--calib-method {calibration.get('method')}",
    ]
    min_snr = (calibration.get("mixed_precision") or {}).get("min_snr_db")
    if min_snr is not None:
        args.append(f"--int8-min-snr {min_snr:g}")
    if calibration.get("equalize") is False:
        args.append("--no-int8-equalize")
    # (a record without the key predates the correction: a rebuild now makes one)
    if "bias_correction" in calibration and calibration["bias_correction"] is None:
        args.append("--no-int8-bias-correction")
    if calibration.get("fit", "stretch") != "stretch":
        args.append(f"--calib-fit {calibration['fit']}")
    return args


def _tensorrt_args(entry: Mapping[str, Any], engines_dir: Path) -> list[str]:
    flags = entry.get("build_flags") or {}
    args = []
    if flags.get("dla_core") is not None:
        args.append(f"--dla-core {flags['dla_core']}")
        if "GPU_FALLBACK" not in (flags.get("flags") or ()):
            args.append("--no-gpu-fallback")
    if flags.get("version_compatible"):
        args.append("--version-compatible")
    if flags.get("hardware_compatible"):
        args.append("--hardware-compatible")
    from edge.backends.tensorrt_folder import PLUGIN_FOLDER

    plugins = entry.get("plugins") or {}
    for name in plugins:  # copies of the libraries travel with the engines
        args.append(f"--plugin-lib {shlex.quote(str(engines_dir / PLUGIN_FOLDER / name))}")
    if entry.get("backend") == "tensorrt" and not plugins and _pools_rois(entry):
        # built with TensorRT's per-level RoiAlign: a build now takes edge's plugin by default
        args.append("--no-roi-align-plugin")
    return args


def _pools_rois(entry: Mapping[str, Any]) -> bool:
    """A panoptic model's engine (RoIAlign in its RoI heads), by the manifest or the zoo."""
    from edge.errors import ConfigError
    from edge.models.zoo import pools_rois

    if (kind := entry.get("kind")) is not None:
        return bool(kind == "panoptic")
    try:
        return pools_rois(str(entry.get("model")))
    except ConfigError:
        return False


def check_compatible(
    entry: Mapping[str, Any], engines_dir: str | Path, machine: Mapping[str, Any] | None = None
) -> None:
    """Raise EngineMismatchError naming every difference and the rebuild command."""
    if machine is None:
        machine = current_machine(str(entry.get("backend")))
    diffs = differences(entry, machine)
    if diffs:
        raise EngineMismatchError(
            f"engine {entry.get('id', entry.get('model'))!r} does not fit this machine: "
            + "; ".join(diffs)
            + f". Rebuild it: {rebuild_command(entry, engines_dir)}"
        )
