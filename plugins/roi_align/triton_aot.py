"""Compile the RoIAlign Triton kernel for a GPU architecture without that GPU, and read what
it costs: registers per thread, stack and local (spill) bytes, approximate divisions.

Triton's wheel carries ptxas and cuobjdump, so a machine without a GPU (CI, a laptop) can
check that the kernel compiles for a Jetson Orin (sm_87) or an H100 (sm_90) and that a
configuration does not spill. Spills and register counts decide occupancy, which the
timings on the device machine then confirm or not.

    python -m plugins.roi_align.triton_aot --arch 87 90 --dtype fp32 fp16

Under Triton's interpreter (TRITON_INTERPRET=1, how the tests run the kernel on a CPU)
kernels cannot be compiled in the same process, so the compile then runs in a child
process.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


@dataclasses.dataclass(frozen=True)
class KernelConfig:
    """One specialization of the kernel: what is compiled into it, not its runtime sizes."""

    arch: int = 90
    dtype: str = "fp32"  # the features' and output's element type: fp32 or fp16
    block_c: int = 32
    num_warps: int = 4
    bins_fast: bool = True
    sample_lanes: bool = False
    rows: bool = False
    row_block: int = 32
    tf32x3: bool = False
    unroll: bool = False
    cb_fast: bool = False
    masked: bool = True  # False: every corner loaded, a sample outside the map weighing zero
    bin_block: int | None = None  # None: all of a RoI's bins in one program
    maxnreg: int | None = None  # a cap on the registers a thread (ptxas spills beyond it)
    output_size: int = 7
    sampling_ratio: int = 2
    aligned: bool = False
    num_levels: int = 4
    # "any": strides as runtime integers, what a launch on maps of other strides compiles;
    # "nchw" or "channels_last": what Triton's launcher compiles for contiguous maps of
    # that layout whose sides and channel count are multiples of 16 (a 1024x2048 image's
    # pyramid): its unit stride a constant, the others known multiples of 16 (vector loads)
    layout: str = "any"
    # adaptive sampling as a launch compiles it: the tile leaves RoIs of huge grids (zeros) to
    # triton_huge's kernel; huge_rois: that kernel compiled instead of the tile
    huge_apart: bool = False
    huge_rois: bool = False

    def name(self) -> str:
        tile = "sample_lanes" if self.sample_lanes else f"bins_fast={self.bins_fast}"
        if self.huge_rois:
            tile = "huge_rois"
        elif self.huge_apart:
            tile += "/huge_apart"
        if self.rows:
            tile = f"rows/row_block={self.row_block}" + ("/tf32x3" if self.tf32x3 else "")
        if self.unroll:
            tile += "/unrolled"
        if self.cb_fast:
            tile += "/cb_fast"
        if not self.masked:
            tile += "/unmasked"
        if self.bin_block is not None:
            tile += f"/bin_block={self.bin_block}"
        if self.maxnreg is not None:
            tile += f"/maxnreg={self.maxnreg}"
        where = "" if self.layout == "any" else f"{self.layout}/"
        return (
            f"sm_{self.arch}/{self.dtype}/{where}{tile}/block_c={self.block_c}"
            f"/warps={self.num_warps}/P={self.output_size}/sampling={self.sampling_ratio}"
        )

    def constexprs(self) -> dict[str, Any]:
        from plugins.roi_align.triton_tiles import kernel_constexprs

        if self.huge_rois:
            return {
                "NUM_LEVELS": self.num_levels,
                "P": self.output_size,
                "ALIGNED": self.aligned,
                "BLOCK_C": self.block_c,
            }
        return kernel_constexprs(
            num_levels=self.num_levels,
            output_size=self.output_size,
            sampling_ratio=self.sampling_ratio,
            aligned=self.aligned,
            block_c=self.block_c,
            bins_fast=self.bins_fast,
            sample_lanes=self.sample_lanes,
            rows=self.rows,
            row_block=self.row_block,
            tf32x3=self.tf32x3,
            unroll=self.unroll,
            cb_fast=self.cb_fast,
            bin_block=self.bin_block,
            masked=self.masked,
            huge_apart=self.huge_apart,
        )

    def tile_elements_per_thread(self) -> int:
        block_b = self.constexprs()["BLOCK_B"]
        # sample lanes: block_b rows of block_b bins with sampling_ratio**2 lanes each
        per_channel = block_b**2 * self.sampling_ratio**2 if self.sample_lanes else block_b
        if self.rows:  # a row segment per bin row
            per_channel = block_b * self.row_block
        return self.block_c * per_channel // (self.num_warps * 32)


@dataclasses.dataclass(frozen=True)
class KernelResources:
    config: KernelConfig
    registers: int
    stack_bytes: int
    local_bytes: int  # spilled registers live here
    approx_divisions: int  # div.full / div.approx / sqrt.approx in the PTX
    global_loads: int  # load instructions in the PTX (the sample loop is not unrolled)
    vector_loads: int = 0  # those of them that load 2, 4 or 8 values at once

    @property
    def spills(self) -> bool:
        return self.stack_bytes > 0 or self.local_bytes > 0

    def as_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "config": self.config.name(), "spills": self.spills}


def _signature(cfg: KernelConfig, params: Sequence[str], constexprs: Sequence[str]) -> dict[str, str]:
    sig = {}
    for p in params:
        if p in ("out_ptr", "f0", "f1", "f2", "f3"):
            sig[p] = "*" + cfg.dtype
        elif p == "rois_ptr":
            sig[p] = "*fp32"
        elif p == "bidx_ptr":
            sig[p] = "*i64"
        elif p in ("canonical_size", "canonical_level", "eps") or re.fullmatch(r"s\d", p):
            sig[p] = "fp32"
        elif p in constexprs:
            sig[p] = "constexpr"
        else:  # sizes and strides
            sig[p] = "i32"
    return sig


def _specialized(
    cfg: KernelConfig, params: Sequence[str], signature: dict[str, str]
) -> tuple[dict[str, str], dict[str, int], dict[tuple[int, ...], list[list[Any]]]]:
    """The signature, constants and attributes Triton's launcher gives a launch on maps of
    ``cfg.layout`` (KernelConfig): integers equal to 1 become constants, pointers and
    integers that are multiples of 16 are marked so (``tt.divisibility``)."""
    if cfg.layout not in ("any", "nchw", "channels_last"):
        raise ValueError(f"layout must be 'any', 'nchw' or 'channels_last', got {cfg.layout!r}")
    if cfg.layout == "any":
        return signature, {}, {}
    unit = "sw" if cfg.layout == "nchw" else "sc"  # the stride that is 1
    signature = dict(signature)
    ones: dict[str, int] = {}
    attrs: dict[tuple[int, ...], list[list[Any]]] = {}
    for i, p in enumerate(params):
        if re.fullmatch(unit + r"\d", p):
            signature[p] = "constexpr"
            ones[p] = 1
        elif signature[p].startswith("*") or re.fullmatch(r"(?:[hw]|s[nchw])\d|C", p):
            attrs[(i,)] = [["tt.divisibility", 16]]
    return signature, ones, attrs


def _tool(name: str) -> str:
    from triton import knobs

    tool = getattr(knobs.nvidia, name)
    if tool is None:
        from edge.errors import BackendUnavailableError

        raise BackendUnavailableError(
            f"Triton's NVIDIA {name} was not found; the kernel cannot be compiled ahead of time here"
        )
    return str(tool.path)


def _compiled(cfg: KernelConfig) -> Any:
    """The kernel compiled for ``cfg`` by Triton (its ``asm`` holds the PTX and the cubin)."""
    import inspect

    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from plugins.roi_align import triton_huge, triton_kernel
    from plugins.roi_align.triton_tiles import register_cap

    fn = triton_huge._huge_rois_kernel if cfg.huge_rois else triton_kernel._mlroialign_kernel
    params = list(inspect.signature(fn.fn).parameters)
    constexprs = cfg.constexprs()
    signature, ones, attrs = _specialized(cfg, params, _signature(cfg, params, list(constexprs)))
    src = ASTSource(fn=fn, signature=signature, constexprs={**constexprs, **ones}, attrs=attrs)
    return triton.compile(
        src,
        target=GPUTarget("cuda", cfg.arch, 32),
        options={"num_warps": cfg.num_warps, "enable_fp_fusion": True, **register_cap(cfg.maxnreg)},
    )


def sass_and_resources(cfg: KernelConfig) -> tuple[str, KernelResources]:
    """The GPU's own instructions (SASS) of the kernel compiled for ``cfg``, as cuobjdump
    prints them, and its resources, from one compile. Not under Triton's interpreter (run
    it in a process without it)."""
    return _inspect(cfg, with_sass=True)


def _compile_in_process(cfg: KernelConfig) -> KernelResources:
    return _inspect(cfg, with_sass=False)[1]


def _inspect(cfg: KernelConfig, *, with_sass: bool) -> tuple[str, KernelResources]:
    compiled = _compiled(cfg)
    ptx = compiled.asm["ptx"]
    with tempfile.TemporaryDirectory() as tmp:
        cubin = Path(tmp, "kernel.cubin")
        cubin.write_bytes(compiled.asm["cubin"])

        def cuobjdump(flag: str) -> str:
            cmd = [_tool("cuobjdump"), flag, str(cubin)]
            return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout

        usage = cuobjdump("-res-usage")
        listing = cuobjdump("-sass") if with_sass else ""
    found = re.search(r"REG:(\d+) STACK:(\d+) .*LOCAL:(\d+)", usage)
    if found is None:
        raise RuntimeError(f"cuobjdump -res-usage printed no register line:\n{usage}")
    regs, stack, local = (int(v) for v in found.groups())
    return listing, KernelResources(
        config=cfg,
        registers=regs,
        stack_bytes=stack,
        local_bytes=local,
        approx_divisions=len(re.findall(r"\b(?:div\.full|div\.approx|sqrt\.approx)\.", ptx)),
        global_loads=len(re.findall(r"\bld\.global\b", ptx)),
        vector_loads=len(re.findall(r"\bld\.global(?:\.\w+)*\.v[248]\b", ptx)),
    )


def kernel_resources(configs: Sequence[KernelConfig]) -> list[KernelResources]:
    """Compile each configuration for its architecture and read its resource usage."""
    from triton import knobs

    if not knobs.runtime.interpret:
        return [_compile_in_process(c) for c in configs]
    payload = json.dumps([dataclasses.asdict(c) for c in configs])
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "TRITON_INTERPRET": "0", "PYTHONPATH": path}
    proc = subprocess.run(
        [sys.executable, "-m", "plugins.roi_align.triton_aot", "--json-configs", payload],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"compiling the kernel ahead of time failed:\n{proc.stderr[-3000:]}")
    rows = json.loads(proc.stdout)
    return [
        KernelResources(config=c, **{k: v for k, v in row.items() if k not in ("config", "spills")})
        for c, row in zip(configs, rows, strict=True)
    ]


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", type=int, nargs="+", default=[87, 90], help="SM versions: 87 Orin, 90 H100")
    ap.add_argument("--dtype", nargs="+", default=["fp32", "fp16"], choices=["fp32", "fp16"])
    ap.add_argument("--block-c", type=int, nargs="+", default=[32])
    ap.add_argument("--num-warps", type=int, nargs="+", default=[4])
    ap.add_argument("--sample-lanes", action="store_true", help="the sample-lanes tile instead (NCHW)")
    ap.add_argument("--rows", action="store_true", help="the rows tile instead (NCHW; triton_rows.py)")
    ap.add_argument("--tf32x3", action="store_true", help="the rows tile's product on the tensor cores")
    ap.add_argument("--unroll", action="store_true", help="the fixed sample grid unrolled")
    ap.add_argument(
        "--bin-block",
        type=int,
        nargs="+",
        default=[None],
        help="bins a program (power of two; default all)",
    )
    ap.add_argument(
        "--maxnreg",
        type=int,
        nargs="+",
        default=[None],
        help="a cap on the registers a thread (ptxas spills beyond it; default none)",
    )
    ap.add_argument(
        "--layout",
        nargs="+",
        default=["any"],
        choices=["any", "nchw", "channels_last"],
        help="any: strides as runtime values; nchw / channels_last: as Triton's launcher compiles "
        "for contiguous maps of that layout (default any)",
    )
    ap.add_argument("--unmasked", action="store_true", help="every corner loaded (masked=False)")
    ap.add_argument("--json-configs", help=argparse.SUPPRESS)  # the child process's input
    args = ap.parse_args(argv)
    os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")  # fusion is passed explicitly anyway
    if args.json_configs:
        configs = [KernelConfig(**c) for c in json.loads(args.json_configs)]
        print(json.dumps([r.as_dict() for r in kernel_resources(configs)]))
        return 0
    configs = [
        KernelConfig(
            arch=a,
            dtype=d,
            block_c=b,
            num_warps=w,
            bins_fast=f,
            sample_lanes=args.sample_lanes,
            rows=args.rows,
            tf32x3=args.tf32x3,
            unroll=args.unroll,
            bin_block=n,
            maxnreg=r,
            layout=lay,
            masked=not args.unmasked,
        )
        for a in args.arch
        for d in args.dtype
        for f in ((True,) if args.sample_lanes or args.rows else (True, False))
        for b in args.block_c
        for w in args.num_warps
        for n in args.bin_block
        for r in args.maxnreg
        for lay in args.layout
    ]
    for r in kernel_resources(configs):
        print(
            f"{r.config.name():60s} registers {r.registers:3d}  stack {r.stack_bytes:4d} B  "
            f"local {r.local_bytes:4d} B  approx div {r.approx_divisions}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
