"""The engines a benchmark configuration runs on: opened from the folder, or built first."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge.errors import ConfigError

if TYPE_CHECKING:
    from edge.bench import BenchConfig


def check_int8_buildable(
    configs: Sequence[BenchConfig], engines: str | Path, models: Sequence[str] | None
) -> None:
    """A ConfigError for an INT8 configuration whose engines the folder lacks: building them
    needs calibration frames, and the sweep would otherwise stop there, rows later."""
    from edge.build import CALIB_DATA_HINT
    from edge.errors import ManifestError
    from edge.manifest import Manifest
    from edge.stream.engines import choose_entries

    chosen = models_by_kind(models or ())
    entries = list(Manifest.load(engines).engines.values()) if Path(engines).is_dir() else []
    for cfg in configs:
        if cfg.precision != "int8":
            continue
        try:
            choose_entries(
                entries,
                backend=cfg.backend,
                precision="int8",
                size=cfg.size,
                panoptic=chosen.get("panoptic"),
                depth=chosen.get("depth"),
            )
        except ManifestError:
            raise ConfigError(
                f"{cfg.label}: {str(engines)!r} holds no such engines, and building INT8 ones needs "
                f"calibration frames: give {CALIB_DATA_HINT}"
            ) from None


def models_by_kind(models: Sequence[str]) -> dict[str, str]:
    """``{"panoptic": name, "depth": name}`` for the models asked for: at most one of each."""
    from edge.models.zoo import get_entry

    chosen: dict[str, str] = {}
    for name in models:
        kind = get_entry(name).kind
        if kind in chosen and chosen[kind] != name:
            raise ConfigError(
                f"--models names two {kind} models, {chosen[kind]!r} and {name!r}; a frame runs one "
                f"of each kind: bench them in separate runs (or compare their reports with --compare)"
            )
        chosen[kind] = name
    return chosen


def open_engines(
    cfg: BenchConfig,
    engines: str | Path,
    *,
    models: Sequence[str] | None,
    threads: int | None,
    build_missing: bool,
    show_progress: bool,
    calib_data: str | None,
    fit: str,
) -> Any:
    """The EngineSet for ``cfg``, built first (bundled weights; DEFAULT_SIZE when ``cfg``
    leaves the size open) if the folder lacks it; ``fit``: as EngineSet's."""
    from edge.build import DEFAULT_MODELS, DEFAULT_SIZE, BuildRequest, build_all
    from edge.errors import ManifestError
    from edge.models.zoo import bundled_weights
    from edge.stream import default_engine_options
    from edge.stream.engines import EngineSet

    chosen = models_by_kind(models or ())

    def load() -> EngineSet:
        return EngineSet.from_manifest(
            engines,
            backend=cfg.backend,
            size=cfg.size,
            precision=cfg.precision,
            panoptic=chosen.get("panoptic"),
            depth=chosen.get("depth"),
            engine_options=default_engine_options(cfg.backend, threads, cfg.device),
            fit=fit,
        )

    try:
        return load()
    except ManifestError:
        if not build_missing:
            raise
    from edge.cli_build import roi_align_libraries, roi_align_plugin_for

    h, w = cfg.size or DEFAULT_SIZE
    names = list(models or DEFAULT_MODELS)
    plugin = roi_align_plugin_for(backend=cfg.backend, models=names)  # TensorRT: edge's RoIAlign
    reqs = [
        BuildRequest(
            model=m,
            height=h,
            width=w,
            backend=cfg.backend,
            precision=cfg.precision,
            checkpoint=bundled_weights(m),
            calib_data=calib_data,
            plugin_libraries=roi_align_libraries(m, plugin),
        )
        for m in names
    ]
    build_all(reqs, engines, show_progress=show_progress)
    return load()
