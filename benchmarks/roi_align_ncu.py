"""Launch chosen RoIAlign kernel configurations once each, for Nsight Compute.

The benchmark (bench_roi_align_gpu.py) says how fast each configuration is; this says
why: run under ``ncu --profile-from-start off``, only the measured launch of each
configuration is profiled (the compiling one before it is outside the profiler's range),
in the order printed to stdout as JSON.

    ncu --profile-from-start off --csv --metrics gpu__time_duration.sum,dram__bytes_read.sum \\
        python benchmarks/roi_align_ncu.py > order.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_roi_align_gpu import SCALES, rois_for
from roi_align_tiles import candidates

# the tuned tiles, the fastest channels-last one of the first H200 run, and the bins split
# over programs (bin_block), whose point is more warps resident: sm__warps_active says
DEFAULT = (
    "nchw/bins_fast=False/block_c=16/warps=4",
    "channels_last/bins_fast=True/block_c=16/warps=4",
    "channels_last/bins_fast=False/unrolled/block_c=32/warps=8",
    "channels_last/bins_fast=True/bin_block=8/block_c=16/warps=4",
    "channels_last/bins_fast=False/unrolled/bin_block=8/block_c=32/warps=4",
    "nchw/bins_fast=False/bin_block=8/block_c=16/warps=4",
    "channels_last/bins_fast=True/maxnreg=64/block_c=16/warps=4",
)
# the TensorRT plugin's kernels (cuda_kernel.py, built with nvcc), named plugin/<mapping>: the
# NCHW ones gather corners from global memory but for the patch layout, which pools from a
# copy in shared memory; whether that frees the L1 is what l1tex__throughput says
PLUGIN = {
    "plugin/thread_per_bin": ("nchw", "thread_per_bin"),
    "plugin/bin_channels": ("nchw", "bin_channels"),
    "plugin/patch": ("nchw", "patch"),
    "plugin/channel_vectors": ("channels_last", "channel_vectors"),
}


def fastest(report: Path, top: int) -> list[str]:
    """The ``top`` fastest configurations of each layout in a benchmark report (a partial
    one too: the script rewrites it after every configuration)."""
    try:
        data = json.loads(report.read_text())
    except (OSError, ValueError) as exc:
        raise SystemExit(f"--fastest {report}: cannot read a benchmark report there ({exc})") from exc
    found = data.get("result", data).get("all_configs_ms")
    if not isinstance(found, dict):
        raise SystemExit(f"--fastest {report}: no all_configs_ms in it (a bench_roi_align_gpu.py report?)")
    out = []
    for layout in ("nchw", "channels_last"):
        ranked = sorted((ms, name) for name, ms in found.items() if name.startswith(layout + "/"))
        out += [name for _, name in ranked[:top]]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--configs",
        nargs="+",
        default=[*DEFAULT, *PLUGIN],
        help="names as the benchmark gives them, or plugin/<mapping> for the TensorRT plugin's kernels",
    )
    ap.add_argument("--dtype", choices=["float32", "float16"], default="float32")
    ap.add_argument(
        "--fastest",
        type=Path,
        metavar="JSON",
        help="also the fastest configurations of each layout in this bench_roi_align_gpu.py report",
    )
    ap.add_argument("--top", type=int, default=3, help="how many of each layout --fastest adds (default 3)")
    args = ap.parse_args()
    if args.fastest is not None:
        args.configs += [n for n in fastest(args.fastest, args.top) if n not in args.configs]
    if not torch.cuda.is_available():
        print("roi_align_ncu.py profiles CUDA kernels; no CUDA device here", file=sys.stderr)
        return 2
    from plugins.roi_align.triton_kernel import multilevel_roi_align_triton

    known = {name: (layout, cfg) for name, layout, cfg in candidates()}
    unknown = [n for n in args.configs if n not in known and n not in PLUGIN]
    if unknown:
        print(f"unknown configurations {unknown}; known: {sorted(known)}", file=sys.stderr)
        return 2
    dtype = getattr(torch, args.dtype)
    g = torch.Generator().manual_seed(1)
    feats = [torch.randn(1, 256, 256 >> i, 512 >> i, generator=g).to("cuda", dtype) for i in range(4)]
    layouts = {"nchw": feats, "channels_last": [f.to(memory_format=torch.channels_last) for f in feats]}
    rois = rois_for(1000, 1024, 2048).cuda()
    bidx = torch.zeros(1000, dtype=torch.int64, device="cuda")
    cudart = torch.cuda.cudart()
    profiled: list[str] = []  # in the order Nsight Compute lists their launches
    failed: dict[str, str] = {}
    for name in args.configs:
        if name in PLUGIN:
            from plugins.roi_align.cuda_kernel import multilevel_roi_align_cuda

            layout, mapping = PLUGIN[name]

            def run(
                fs: list[torch.Tensor] = layouts[layout], lay: str = layout, m: str = mapping
            ) -> torch.Tensor:
                return multilevel_roi_align_cuda(
                    fs, rois, bidx, 7, SCALES, 2, False, 2, mapping=m, layout=lay
                )

        else:
            layout, cfg = known[name]

            def run(fs: list[torch.Tensor] = layouts[layout], kw: dict = cfg) -> torch.Tensor:
                return multilevel_roi_align_triton(fs, rois, bidx, 7, SCALES, 2, False, 2, **kw)

        try:
            run()  # compiles
            torch.cuda.synchronize()
        except Exception as exc:  # another Triton may refuse a tile, no nvcc the plugin: profile the others
            failed[name] = f"{type(exc).__name__}: {exc}"[:300]
            print(f"{name}: {failed[name]}", file=sys.stderr)
            continue
        cudart.cudaProfilerStart()
        run()
        torch.cuda.synchronize()
        cudart.cudaProfilerStop()
        profiled.append(name)
    print(json.dumps({"dtype": args.dtype, "order": profiled, "failed": failed}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
