"""The TensorRT plugin's CUDA kernel, built with nvcc and called without TensorRT.

TensorRT runs ``tensorrt/roi_align_kernel.cu`` inside the plugin library. Here the same
kernel is built with a C entry point (``tensorrt/standalone.cu``) into a small shared
library and called through ctypes on torch CUDA tensors. The kernel engines run can then
be checked against the numpy reference, and timed next to the Triton kernel, on any CUDA
machine. :func:`kernel_resources` compiles it for given GPU architectures without a GPU
and reads what ptxas reports: registers, stack and spills; where nvcc is missing, with
NVRTC from pip wheels (:mod:`plugins.roi_align.nvrtc`), so the plugin's kernel is
compiled on any Linux x86 box.

    python -m plugins.roi_align.cuda_kernel --arch 87 90     # ptxas report for Orin and H100
"""

from __future__ import annotations

import argparse
import ctypes
import dataclasses
import functools
import hashlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge.errors import BackendError, BackendUnavailableError, BuildError, EngineInputError
from plugins.roi_align.reference import CANONICAL_LEVEL, CANONICAL_SIZE

if TYPE_CHECKING:
    import torch

SRC = Path(__file__).resolve().parent / "tensorrt"
SOURCES = ("roi_align_kernel.cu", "standalone.cu")
HEADERS = (
    "roi_align_kernel.h",
    "roi_align_math.h",
    "roi_align_channels_last.h",
    "roi_align_patch.h",
    "roi_align_bin_channels.h",
    "roi_align_lanes.h",
)
MAX_LEVELS = 5  # kMaxLevels in roi_align_math.h


def missing_sources(names: Sequence[str]) -> list[str]:
    """The files of ``names`` not in SRC: an install of edge that left out the package's
    non-Python files (the wheel ships them) has the Python code and not these."""
    return [name for name in names if not (SRC / name).is_file()]


def require_sources(names: Sequence[str], *, what: str) -> None:
    """BackendUnavailableError naming the files of ``names`` missing from SRC (``what`` cannot
    be built without them)."""
    if missing := missing_sources(names):
        raise BackendUnavailableError(
            f"{what} cannot be built: {', '.join(missing)} not in {str(SRC)!r} (this install of edge "
            "lacks the plugin's sources; reinstall edge-perception, or pip install -e from a checkout)"
        )


def find_nvcc(*, homes: Sequence[str | Path] = ("/usr/local/cuda",)) -> str:
    """nvcc on PATH, else under $CUDA_HOME or $CUDA_PATH, else under ``homes`` (JetPack puts
    it in /usr/local/cuda/bin, which is not on PATH by default); BackendUnavailableError
    where there is none."""
    found = shutil.which("nvcc")
    env = [os.environ.get(v) for v in ("CUDA_HOME", "CUDA_PATH")]
    for home in [h for h in env if h] + list(homes):
        if found is None and Path(home, "bin", "nvcc").is_file():
            found = str(Path(home, "bin", "nvcc"))
    if found is None:
        raise BackendUnavailableError(
            "nvcc (the CUDA toolkit's compiler) was not found on PATH, under $CUDA_HOME or in "
            f"{', '.join(str(h) for h in homes) or 'no default folder'}; it builds the RoIAlign "
            "plugin's CUDA kernel"
        )
    return found


def _gencode(archs: Sequence[int]) -> list[str]:
    if not archs or any(not isinstance(a, int) or a < 50 for a in archs):
        raise EngineInputError(f"GPU architectures must be SM numbers such as 87 or 90, got {list(archs)}")
    return [f"-gencode=arch=compute_{a},code=sm_{a}" for a in archs]


def _nvcc_flags() -> list[str]:
    return ["-std=c++17", "-O3", "-Xcompiler", "-fPIC"]


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "edge" / "cuda"


def library_name(archs: Sequence[int], nvcc: str) -> str:
    """The library's file name: a digest of the sources, the architectures and nvcc's version."""
    digest = hashlib.sha256()
    for name in SOURCES + HEADERS:
        digest.update((SRC / name).read_bytes())
    digest.update(" ".join(_gencode(archs) + _nvcc_flags()).encode())
    version = subprocess.run([nvcc, "--version"], capture_output=True, text=True).stdout
    digest.update(version.encode())
    return f"libedge_roi_align_cuda-{digest.hexdigest()[:16]}.so"


def build_library(archs: Sequence[int], *, cache_dir: Path | None = None) -> Path:
    """Build (once; later calls find it in the cache) the kernel's library for ``archs``."""
    require_sources(SOURCES + HEADERS, what="the RoIAlign CUDA kernel")
    nvcc = find_nvcc()
    target = (cache_dir or default_cache_dir()) / library_name(archs, nvcc)
    cmd = [nvcc, *_nvcc_flags(), "-shared", *_gencode(archs), *(str(SRC / s) for s in SOURCES)]
    return build_once(target, cmd, what=f"the RoIAlign CUDA kernel for sm_{archs}")


def build_once(target: Path, command: Sequence[str], *, what: str) -> Path:
    """``target``, made by nvcc's ``command`` (``-o`` added) unless it exists: under a lock,
    so two processes build it once, and atomically, so a failed or killed build leaves none."""
    from edge.util.fs import atomic_path, exclusive_lock

    if target.is_file():
        return target
    with exclusive_lock(target.with_name(target.name + ".lock")):
        if target.is_file():  # another process built it while this one waited
            return target
        with atomic_path(target) as tmp:  # never a half-written library under the final name
            proc = subprocess.run([*command, "-o", str(tmp)], capture_output=True, text=True)
            if proc.returncode != 0:
                raise BuildError(f"nvcc could not build {what}:\n{proc.stderr[-3000:]}")
    return target


@functools.cache
def library_for_arch(arch: int) -> Path:
    """This process's library for one architecture, found or built on first use. Every
    build_library call hashes the sources and runs ``nvcc --version``: too slow for each
    RoIAlign call of the torch op's CUDA fallback."""
    return build_library([arch])


MAPPINGS = {
    "auto": 0,
    "thread_per_bin": 1,
    "sample_lanes": 2,
    "channel_vectors": 3,
    "bin_channels": 4,
    "patch": 5,
}  # edge::roialign::Mapping
_KERNELS = {
    "multiLevelRoIAlignKernel": "thread_per_bin",
    "sampleLanesKernel": "sample_lanes",
    "channelsLastKernel": "channels_last",
    "channelVectorsKernel": "channel_vectors",
    "binChannelsKernel": "bin_channels",
    "patchKernel": "patch",
}
LAYOUTS = ("nchw", "channels_last")  # the maps' memory layouts the kernels read


@dataclasses.dataclass(frozen=True)
class CudaKernelResources:
    layout: str  # thread_per_bin, sample_lanes, bin_channels, patch, channels_last or channel_vectors
    arch: int
    dtype: str  # fp32 or fp16: each kernel's two instantiations
    registers: int
    stack_bytes: int
    spill_store_bytes: int
    spill_load_bytes: int

    @property
    def spills(self) -> bool:
        return self.spill_store_bytes > 0 or self.spill_load_bytes > 0


_ENTRY = re.compile(r"Compiling entry function '(?P<name>[^']+)' for 'sm_(?P<arch>\d+)'")
_FRAME = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")
_REGS = re.compile(r"Used (\d+) registers")


def parse_ptxas(report: str) -> list[CudaKernelResources]:
    """ptxas -v output (one block per kernel and architecture) as resources of our kernel."""
    found = []
    blocks = _ENTRY.split(report)  # [before, name, arch, text, name, arch, text, ...]
    for name, arch, text in zip(blocks[1::3], blocks[2::3], blocks[3::3], strict=True):
        layout = next((v for k, v in _KERNELS.items() if k in name), None)
        if layout is None:
            continue
        frame, regs = _FRAME.search(text), _REGS.search(text)
        if frame is None or regs is None:
            raise BuildError(f"ptxas printed no resource line for {name} on sm_{arch}:\n{text[:500]}")
        found.append(
            CudaKernelResources(
                layout=layout,
                arch=int(arch),
                dtype="fp16" if "__half" in name else "fp32",
                registers=int(regs.group(1)),
                stack_bytes=int(frame.group(1)),
                spill_store_bytes=int(frame.group(2)),
                spill_load_bytes=int(frame.group(3)),
            )
        )
    return found


def kernel_resources(archs: Sequence[int]) -> list[CudaKernelResources]:
    """Compile the kernel for each architecture (no GPU needed) and read ptxas's report:
    with nvcc, else with NVRTC (:func:`plugins.roi_align.nvrtc.nvrtc_resources`)."""
    import tempfile

    try:
        nvcc = find_nvcc()
    except BackendUnavailableError as missing:
        from plugins.roi_align.nvrtc import nvrtc_resources

        try:
            return nvrtc_resources(archs)
        except BackendUnavailableError as exc:
            raise BackendUnavailableError(f"{missing}; {exc}") from exc
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [nvcc, *_nvcc_flags(), "-c", *_gencode(archs), "-Xptxas", "-v", str(SRC / SOURCES[0])]
        proc = subprocess.run([*cmd, "-o", str(Path(tmp, "kernel.o"))], capture_output=True, text=True)
    if proc.returncode != 0:
        raise BuildError(f"nvcc could not compile the RoIAlign CUDA kernel:\n{proc.stderr[-3000:]}")
    return parse_ptxas(proc.stdout + proc.stderr)


@functools.lru_cache(maxsize=4)
def _load(path: str) -> ctypes.CDLL:
    lib = ctypes.CDLL(path)
    i32, ptr = ctypes.c_int32, ctypes.c_void_p
    lib.edge_mlroialign_cuda.restype = i32
    lib.edge_mlroialign_cuda.argtypes = [
        ctypes.POINTER(ptr),  # features
        ctypes.POINTER(i32),  # heights
        ctypes.POINTER(i32),  # widths
        *[i32] * 3,  # numLevels, channels, channelStride
        ptr,  # rois
        ptr,  # batchIdx
        *[i32] * 7,  # numRois, minLevel, outputHeight, outputWidth, samplingRatio, aligned, isMax
        i32,  # canonicalLevel
        ctypes.c_float,  # canonicalSize
        ctypes.POINTER(ctypes.c_float),  # spatialScales
        i32,  # isHalf
        ptr,  # out
        ptr,  # stream
        i32,  # mapping
    ]
    lib.edge_cuda_error_string.restype = ctypes.c_char_p
    lib.edge_cuda_error_string.argtypes = [i32]
    return lib


def _check_inputs(
    features: Sequence[torch.Tensor],
    rois: torch.Tensor,
    batch_idx: torch.Tensor,
    spatial_scales: Sequence[float],
) -> None:
    import torch

    if len(spatial_scales) != len(features):
        raise EngineInputError(f"{len(features)} feature maps but {len(spatial_scales)} spatial scales")
    first = features[0]
    for i, f in enumerate(features):
        if f.device.type != "cuda" or f.device != first.device:
            raise EngineInputError(f"feature map {i} is on {f.device}; expected every map on one CUDA device")
        if f.dtype not in (torch.float32, torch.float16) or f.dtype != first.dtype:
            raise EngineInputError(
                f"feature map {i} is {f.dtype}; expected float32 or float16, the same for every map"
            )
        if f.dim() != 4 or f.shape[:2] != first.shape[:2]:
            raise EngineInputError(
                f"feature map {i} has shape {tuple(f.shape)}; expected [N, C, H, W] with N, C = "
                f"{tuple(first.shape[:2])}"
            )
    if rois.dim() != 2 or rois.shape[1] != 4 or rois.device != first.device:
        raise EngineInputError(
            f"rois: {tuple(rois.shape)} on {rois.device}; expected [R, 4] on {first.device}"
        )
    if batch_idx.shape != (rois.shape[0],) or batch_idx.device != first.device:
        raise EngineInputError(
            f"batch_idx: {tuple(batch_idx.shape)} on {batch_idx.device}; "
            f"expected [{rois.shape[0]}] on {first.device}"
        )


def multilevel_roi_align_cuda(
    features: Sequence[torch.Tensor],
    rois: torch.Tensor,
    batch_idx: torch.Tensor,
    output_size: int,
    spatial_scales: Sequence[float],
    sampling_ratio: int,
    aligned: bool,
    min_level: int,
    *,
    mode: str = "avg",
    mapping: str = "auto",
    layout: str = "nchw",
    library: Path | None = None,
) -> torch.Tensor:
    """Same contract as torch.ops.edge.multilevel_roi_align, through the TensorRT plugin's kernel.

    ``layout`` is the maps' memory layout as TensorRT hands them over: ``nchw`` (kLINEAR) or
    ``channels_last`` (kHWC; torch's channels_last memory format); maps in the other layout
    are copied first, and the output comes in the maps' layout. On NCHW maps ``mapping``
    picks the thread layout: ``thread_per_bin``, ``sample_lanes`` (a warp per row of bins,
    a sample per lane; sampling ratio 1, 2 or 4), ``bin_channels`` (a thread per bin of 8
    channels), ``patch`` (a block per box and 4 channels, the pixels it reads copied to shared
    memory first; these two under fixed sampling ratios only: their loops visit every sample
    of an adaptive grid, which grows with its box) or ``auto``, what the plugin does (a thread
    per bin, the faster of the first two on an H200; bin channels and patch are not timed
    yet); on channel-last maps
    ``thread_per_bin`` is a thread per output element, ``channel_vectors`` a thread per 16
    bytes of a bin's channels (4 float32 or 8 float16 ones; the channels a multiple of that),
    and ``auto`` channel vectors where they apply. ``tuned`` times the kernels that apply to
    these maps (the plugin's tactics: a thread per element, and bin channels and patch, or
    channel vectors) on this GPU the first time
    a kind of problem comes (device, type, layout, channels, levels, output size, sampling,
    mode, and RoIs to the power of two), as TensorRT times the plugin's tactics, and runs
    the faster from then on (:func:`tuned_choices`); under CUDA graph capture, where nothing
    may be timed, ``auto``. ``library`` defaults to one built for this GPU
    (:func:`build_library`).
    """
    import torch

    if mode not in ("avg", "max"):
        raise EngineInputError(f"mode {mode!r}; expected 'avg' or 'max'")
    # first: the mapping checks below read the first map
    if not 1 <= len(features) <= MAX_LEVELS:
        raise EngineInputError(f"the CUDA kernel takes 1 to {MAX_LEVELS} pyramid levels, got {len(features)}")
    if mapping not in MAPPINGS and mapping != "tuned":
        raise EngineInputError(f"mapping {mapping!r}; expected one of {sorted([*MAPPINGS, 'tuned'])}")
    if layout not in LAYOUTS:
        raise EngineInputError(f"layout {layout!r}; expected one of {list(LAYOUTS)}")
    if mapping in ("bin_channels", "patch") and (layout != "nchw" or sampling_ratio <= 0):
        raise EngineInputError(
            f"the {mapping} mapping takes NCHW maps and a fixed sampling ratio (1 or more), got {layout} "
            f"maps and sampling ratio {sampling_ratio}; use 'auto'"
        )
    if mapping == "sample_lanes" and (sampling_ratio not in (1, 2, 4) or layout != "nchw"):
        raise EngineInputError(
            f"the sample_lanes mapping takes NCHW maps and sampling ratio 1, 2 or 4, got {layout} maps "
            f"and sampling ratio {sampling_ratio}; use 'auto'"
        )
    vector = 16 // features[0].element_size()
    if mapping == "channel_vectors" and (layout != "channels_last" or features[0].shape[1] % vector):
        raise EngineInputError(
            f"the channel_vectors mapping takes channels_last maps whose channels are a multiple of "
            f"{vector}, got {layout} maps of {features[0].shape[1]} channels; use 'auto'"
        )
    _check_inputs(features, rois, batch_idx, spatial_scales)
    device = features[0].device
    if library is None:
        major, minor = torch.cuda.get_device_capability(device)
        library = library_for_arch(major * 10 + minor)
    lib = _load(str(library))
    memory = torch.channels_last if layout == "channels_last" else torch.contiguous_format
    feats = [f.contiguous(memory_format=memory) for f in features]
    boxes = rois.to(torch.float32).contiguous()
    bidx = batch_idx.to(torch.int64).contiguous()
    n = len(feats)
    channels = int(feats[0].shape[1])
    out = torch.empty(
        (boxes.shape[0], channels, output_size, output_size),
        dtype=feats[0].dtype,
        device=device,
        memory_format=memory,
    )

    def launch(mapping: str) -> int:
        return int(
            lib.edge_mlroialign_cuda(
                (ctypes.c_void_p * n)(*[f.data_ptr() for f in feats]),
                (ctypes.c_int32 * n)(*[int(f.shape[2]) for f in feats]),
                (ctypes.c_int32 * n)(*[int(f.shape[3]) for f in feats]),
                n,
                channels,
                channels if layout == "channels_last" else 0,  # torch's channels_last is unpadded
                boxes.data_ptr(),
                bidx.data_ptr(),
                int(boxes.shape[0]),
                int(min_level),
                int(output_size),
                int(output_size),
                int(sampling_ratio),
                int(bool(aligned)),
                int(mode == "max"),
                CANONICAL_LEVEL,
                CANONICAL_SIZE,
                (ctypes.c_float * n)(*[float(s) for s in spatial_scales]),
                int(feats[0].dtype == torch.float16),
                out.data_ptr(),
                torch.cuda.current_stream(device).cuda_stream,
                MAPPINGS[mapping],
            )
        )

    with torch.cuda.device(device):
        if mapping == "tuned" and boxes.shape[0] == 0:
            mapping = "auto"  # nothing to time
        elif mapping == "tuned":
            rois_scale = int(boxes.shape[0]).bit_length()  # each power of two of RoIs timed apart
            key = (str(device), str(feats[0].dtype), layout, channels, n, output_size, sampling_ratio, mode)
            candidates = _candidates(layout, channels, vector, sampling_ratio)
            mapping = _tuned((*key, rois_scale), candidates, launch)
        rc = launch(mapping)
    if rc != 0:
        raise BackendError(
            f"the RoIAlign CUDA kernel failed: {lib.edge_cuda_error_string(rc).decode()} ({rc})"
        )
    return out


_TUNED: dict[tuple[object, ...], str] = {}


def tuned_choices() -> dict[tuple[object, ...], str]:
    """What ``mapping="tuned"`` chose in this process, by kind of problem: (device, type,
    layout, channels, levels, output size, sampling ratio, mode, RoIs' bit length) -> mapping."""
    return dict(_TUNED)


def _candidates(layout: str, channels: int, vector: int, sampling_ratio: int) -> list[str]:
    """The kernels a tuned call times: the TensorRT plugin's tactics for the layout (a thread
    per element, and on NCHW maps bin channels and the patch layout under a fixed sampling
    ratio, on channel-last ones channel vectors where they apply)."""
    if layout == "nchw":
        return ["thread_per_bin", "bin_channels", "patch"] if sampling_ratio > 0 else ["thread_per_bin"]
    return ["thread_per_bin", "channel_vectors"] if channels % vector == 0 else ["thread_per_bin"]


def _tuned(key: tuple[object, ...], candidates: list[str], launch: Any, repeats: int = 3) -> str:
    """The mapping to run for ``key``: timed once per process with CUDA events (each
    candidate run once to warm, then ``repeats`` times), the fastest kept."""
    import torch

    if key in _TUNED:
        return _TUNED[key]
    if torch.cuda.is_current_stream_capturing() or len(candidates) == 1:
        return "auto" if len(candidates) > 1 else candidates[0]
    times = {}
    for mapping in candidates:
        if launch(mapping) != 0:  # not this kernel here (e.g. maps not 16-byte aligned)
            continue
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(repeats):
            launch(mapping)
        end.record()
        end.synchronize()
        times[mapping] = start.elapsed_time(end) / repeats
    _TUNED[key] = min(times, key=times.__getitem__) if times else "auto"
    return _TUNED[key]


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", type=int, nargs="+", default=[87, 90], help="SM versions: 87 Orin, 90 H100")
    args = ap.parse_args(argv)
    for r in kernel_resources(args.arch):
        print(
            f"{r.layout:14s} sm_{r.arch} {r.dtype}: registers {r.registers:3d}  stack {r.stack_bytes:4d} B  "
            f"spill stores {r.spill_store_bytes} B  spill loads {r.spill_load_bytes} B"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
