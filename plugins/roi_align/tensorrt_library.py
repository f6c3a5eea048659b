"""The TensorRT plugin's library (``libedge_roi_align_plugin.so``), built once per machine with
nvcc into edge's cache, so that a TensorRT build of a panoptic model gets the fused RoIAlign
without being asked (``tensorrt/build.sh`` builds the same library by hand).

It needs nvcc, TensorRT's headers (``TENSORRT_INCLUDE``, else JetPack's
``/usr/include/<arch>-linux-gnu``) and the GPU's architecture; without one of them the build
goes on with TensorRT's own per-level RoiAlign, and says why.
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from edge.errors import BackendUnavailableError, BuildError, EdgeError, EngineInputError
from plugins.roi_align.cuda_kernel import (
    HEADERS,
    SRC,
    _gencode,
    build_once,
    default_cache_dir,
    find_nvcc,
    require_sources,
)

PLUGIN_SOURCES = ("multilevel_roi_align_plugin.cpp", "roi_align_kernel.cu")
# what build.sh hashes, in its order: the kernels' digest names their timings in TensorRT's
# timing cache (getTimingCacheID), the same however the library was built
KERNEL_FILES = ("roi_align_kernel.cu", *HEADERS)
LIBRARY_STEM = "libedge_roi_align_plugin"


def tensorrt_include(environ: Mapping[str, str] | None = None) -> Path | None:
    """The folder with TensorRT's NvInfer.h: $TENSORRT_INCLUDE, else JetPack's place."""
    env = os.environ if environ is None else environ
    candidates = [env["TENSORRT_INCLUDE"]] if env.get("TENSORRT_INCLUDE") else []
    candidates.append(f"/usr/include/{platform.machine()}-linux-gnu")
    return next((Path(c) for c in candidates if Path(c, "NvInfer.h").is_file()), None)


def headers_version(include: Path) -> str | None:
    """The TensorRT version whose headers ``include`` holds ("10.3.0"), from NvInferVersion.h."""
    try:
        text = (include / "NvInferVersion.h").read_text(errors="replace")
    except OSError:
        return None
    parts = [re.search(rf"#define\s+NV_TENSORRT_{p}\s+(\d+)", text) for p in ("MAJOR", "MINOR", "PATCH")]
    return ".".join(m.group(1) for m in parts if m) if all(parts) else None


def kernels_digest() -> str:
    return hashlib.sha256(b"".join((SRC / name).read_bytes() for name in KERNEL_FILES)).hexdigest()[:16]


def _flags(archs: Sequence[int], include: Path) -> list[str]:
    try:
        gencode = _gencode(archs)  # the kernel library's check of the architectures
    except EngineInputError as exc:  # here, a build's
        raise BuildError(str(exc)) from None
    return [
        *("-std=c++17", "-O3", "-shared", "-Xcompiler", "-fPIC,-Wno-deprecated-declarations"),
        *gencode,
        f'-DEDGE_KERNELS_DIGEST="{kernels_digest()}"',
        f"-I{include}",
    ]


def library_path(archs: Sequence[int], *, include: Path, nvcc: str, cache_dir: Path | None = None) -> Path:
    """Where the library for these architectures, headers and nvcc lives in the cache: named by
    a digest of the sources, TensorRT's version header, the flags and nvcc's version."""
    digest = hashlib.sha256()
    for name in (*PLUGIN_SOURCES, *HEADERS):
        digest.update((SRC / name).read_bytes())
    version_header = include / "NvInferVersion.h"
    digest.update(version_header.read_bytes() if version_header.is_file() else str(include).encode())
    digest.update(" ".join(_flags(archs, include)).encode())
    digest.update(subprocess.run([nvcc, "--version"], capture_output=True, text=True).stdout.encode())
    return (
        cache_dir or default_cache_dir().parent / "tensorrt"
    ) / f"{LIBRARY_STEM}-{digest.hexdigest()[:16]}.so"


def build_plugin_library(
    archs: Sequence[int], *, include: Path | None = None, cache_dir: Path | None = None
) -> Path:
    """The plugin library for ``archs``, built on first use (a minute or two) and found in
    the cache after; BackendUnavailableError where nvcc or TensorRT's headers are missing."""
    include = include or tensorrt_include()
    if include is None:
        raise BackendUnavailableError(
            "TensorRT's headers (NvInfer.h) were not found: set TENSORRT_INCLUDE to their folder"
        )
    require_sources((*PLUGIN_SOURCES, *HEADERS), what="the RoIAlign plugin")
    flags = _flags(archs, include)  # bad architectures are said before nvcc is looked for
    nvcc = find_nvcc()
    target = library_path(archs, include=include, nvcc=nvcc, cache_dir=cache_dir)
    command = [nvcc, *flags, *(str(SRC / s) for s in PLUGIN_SOURCES)]
    return build_once(target, command, what=f"the RoIAlign plugin for sm_{list(archs)}")


def default_plugin(
    *,
    compute_capability: str | None,
    build: Callable[[Sequence[int]], Path] = build_plugin_library,
) -> tuple[Path | None, str]:
    """The plugin library a TensorRT build uses when not given one: (path, what was done), or
    (None, why not) where it cannot be built here. ``compute_capability`` is the GPU's ("8.7")."""
    if compute_capability is None:
        return None, "no CUDA GPU is seen here (torch or cuda-python), so its architecture is unknown"
    major, _, minor = compute_capability.partition(".")
    if not (major.isdigit() and minor.isdigit()):
        return None, f"the GPU's compute capability {compute_capability!r} is not MAJOR.MINOR"
    arch = int(major) * 10 + int(minor)
    try:
        return build([arch]), f"for sm_{arch}, built once with nvcc and kept in edge's cache"
    except EdgeError as exc:
        return None, str(exc).splitlines()[0]
