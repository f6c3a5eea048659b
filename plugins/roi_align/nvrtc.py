"""The RoIAlign plugin's CUDA kernels compiled by NVRTC, without nvcc or a GPU.

NVRTC (CUDA 12's, from the nvidia-cuda-nvrtc-cu12 wheel, with the runtime's headers from
nvidia-cuda-runtime-cu12; both in the dev extra, Linux x86-64) compiles
``tensorrt/roi_align_kernel.cu`` to each architecture's machine code: ptxas's report
(registers, stack, spills) as :func:`plugins.roi_align.cuda_kernel.kernel_resources` reads
nvcc's, and the machine code itself, listed by cuobjdump (Triton's wheel carries one).
"""

from __future__ import annotations

import ctypes
import functools
import re
import subprocess
from collections.abc import Sequence
from pathlib import Path

from edge.errors import BackendUnavailableError, BuildError
from plugins.roi_align.cuda_kernel import (
    _KERNELS,
    HEADERS,
    SOURCES,
    SRC,
    CudaKernelResources,
    _gencode,
    parse_ptxas,
)

# NVRTC compiles device code without the C++ library or the runtime's host API: the
# kernel's host headers are given as the few names its device code uses
STAND_INS = {
    "cmath": "#define INFINITY __int_as_float(0x7f800000)\n",
    "cstdint": (
        "typedef signed char int8_t; typedef short int16_t; typedef int int32_t; typedef long long int64_t;\n"
        "typedef unsigned char uint8_t; typedef unsigned short uint16_t; typedef unsigned int uint32_t;\n"
        "typedef unsigned long long uint64_t;\n"
    ),
    "cuda_runtime_api.h": "",  # cudaStream_t and cudaError_t are NVRTC's own
}


def wheel_dir(package: str, what: str) -> Path:
    import importlib.util

    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise BackendUnavailableError(
            f"{what} was not found (pip install nvidia-cuda-nvrtc-cu12 nvidia-cuda-runtime-cu12)"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def nvrtc_resources(archs: Sequence[int]) -> list[CudaKernelResources]:
    """The kernels (``tensorrt/roi_align_kernel.cu``, every thread layout, FP32 and FP16)
    compiled by NVRTC to each architecture's machine code, with its own ptxas's report
    (``-Xptxas -v``, in the program's log) read as :func:`kernel_resources` reads nvcc's.
    NVRTC is CUDA 12's from its wheel: sm_50 to sm_90 (Orin is 87, H100 90). (Its PTX
    through another ptxas, Triton's, failed where that one was older: PTX 8.8 past 8.7.)"""
    _gencode(archs)  # checks the architectures
    return parse_ptxas("\n".join(_compile(a)[0] for a in archs))


def nvrtc_sass(arch: int) -> dict[tuple[str, str], str]:
    """Each kernel's machine code as cuobjdump lists it (Triton's wheel carries cuobjdump),
    by (layout, dtype), compiled by NVRTC for sm_``arch``: which loads and stores the
    compiler made of the source (16-byte ``LDG.E.128`` for channel vectors)."""
    _gencode([arch])
    return sass_by_kernel(_compile(arch)[1])


def sass_by_kernel(cubin: bytes) -> dict[tuple[str, str], str]:
    """A cubin of the plugin's kernels (NVRTC's, or nvcc's ``-cubin``) as cuobjdump lists
    it, by (layout, dtype)."""
    import tempfile

    from plugins.roi_align.triton_aot import _tool

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "kernel.cubin")
        path.write_bytes(cubin)
        cmd = [_tool("cuobjdump"), "-sass", str(path)]
        listing = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    found = {}
    parts = re.split(r"^\s*Function : (\S+)\s*$", listing, flags=re.MULTILINE)
    for name, text in zip(parts[1::2], parts[2::2], strict=True):
        layout = next((v for k, v in _KERNELS.items() if k in name), None)
        if layout is not None:
            found[(layout, "fp16" if "__half" in name else "fp32")] = text
    return found


def _compile(arch: int) -> tuple[str, bytes]:
    """The kernels, every layout in FP32 and FP16, compiled by NVRTC for sm_``arch``: ptxas's
    report and the machine code."""
    library = wheel_dir("nvidia.cuda_nvrtc", "NVRTC") / "lib" / "libnvrtc.so.12"
    include = wheel_dir("nvidia.cuda_runtime", "the CUDA runtime's headers") / "include"
    headers = {h: (SRC / h).read_text() for h in HEADERS} | STAND_INS
    return _compiled(arch, (SRC / SOURCES[0]).read_text(), tuple(headers.items()), library, include)


@functools.lru_cache(maxsize=4)
def _compiled(
    arch: int, source: str, headers: tuple[tuple[str, str], ...], library: Path, include: Path
) -> tuple[str, bytes]:
    """_compile's work, once a process for the same sources: the report and the machine code
    come from one compilation, which takes seconds (nvrtc_resources, nvrtc_sass)."""
    names = [f"edge::roialign::{k}<{t}>" for k in _KERNELS for t in ("float", "__half")]
    return _report(ctypes.CDLL(str(library)), source, dict(headers), names, arch, include)


def _report(
    nvrtc: ctypes.CDLL, source: str, headers: dict[str, str], names: list[str], arch: int, include: Path
) -> tuple[str, bytes]:
    """``source`` compiled to sm_``arch`` machine code by NVRTC, its kernels ``names``
    instantiated: ptxas's verbose report, from the program's log, and the cubin."""
    prog = ctypes.c_void_p()
    keys = [k.encode() for k in headers]
    texts = [v.encode() for v in headers.values()]
    _check(
        nvrtc,
        nvrtc.nvrtcCreateProgram(
            ctypes.byref(prog),
            source.encode(),
            SOURCES[0].encode(),
            len(keys),
            (ctypes.c_char_p * len(texts))(*texts),
            (ctypes.c_char_p * len(keys))(*keys),
        ),
    )
    try:
        for name in names:
            _check(nvrtc, nvrtc.nvrtcAddNameExpression(prog, name.encode()))
        # as nvcc compiles it (fused multiply-adds); unannotated inline helpers are device code
        opts = [
            f"--gpu-architecture=sm_{arch}",
            "-std=c++17",
            "--fmad=true",
            "-default-device",
            "-Xptxas=-v",
            f"-I{include}",
        ]
        raw = [o.encode() for o in opts]
        _check(nvrtc, nvrtc.nvrtcCompileProgram(prog, len(raw), (ctypes.c_char_p * len(raw))(*raw)), prog)
        size = ctypes.c_size_t()
        _check(nvrtc, nvrtc.nvrtcGetCUBINSize(prog, ctypes.byref(size)))
        if size.value == 0:
            raise BuildError(f"NVRTC made no machine code for sm_{arch} (only PTX)")
        cubin = ctypes.create_string_buffer(size.value)
        _check(nvrtc, nvrtc.nvrtcGetCUBIN(prog, cubin))
        return _log(nvrtc, prog), cubin.raw
    finally:
        nvrtc.nvrtcDestroyProgram(ctypes.byref(prog))


def _log(nvrtc: ctypes.CDLL, prog: ctypes.c_void_p) -> str:
    size = ctypes.c_size_t()
    nvrtc.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
    buf = ctypes.create_string_buffer(size.value)
    nvrtc.nvrtcGetProgramLog(prog, buf)
    return buf.value.decode(errors="replace")


def _check(nvrtc: ctypes.CDLL, code: int, prog: ctypes.c_void_p | None = None) -> None:
    if code == 0:
        return
    log = "" if prog is None else _log(nvrtc, prog)
    raise BuildError(f"NVRTC could not compile the RoIAlign CUDA kernel (error {code}):\n{log[-3000:]}")
