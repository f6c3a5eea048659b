"""How many instructions the TensorRT plugin's CUDA kernels spend per feature value they load,
read from their SASS: a model, not a measurement.

Every kernel of ``plugins/roi_align/tensorrt/roi_align_kernel.cu`` (each thread layout, FP32
and FP16) is compiled by NVRTC for ``--arch`` and listed by cuobjdump
(plugins/roi_align/nvrtc.py). Its hot loop is the shortest loop (the span of a branch back
to a lower address) that loads from global memory; the instructions of that span over the
channel values its loads bring in (16-byte loads bring 4 float32 or 8 float16 channels) is
what one corner of one channel costs a thread to pool. Every kernel pools the same samples
of the same channels, so where a kernel is bound by issuing instructions (the Triton
kernel's NCHW tile was, on an H200: benchmarks/results/roi_align_issue_model*.json) this
ratio ranks them; memory, latency and occupancy it does not see. With ``--measured`` (a
bench_roi_align_gpu.py report) the kernels it timed (``plugin_kernel_layouts_ms``, FP32) are
set beside the model: on the H200, sample lanes took 2.9x a thread per bin's time where the
model gives 2.6x its instructions.

    python benchmarks/roi_align_cuda_sass.py --arch 87 90 \\
        --measured benchmarks/results/gpu_roi_align_h200_fp32.json \\
        --out benchmarks/results/roi_align_cuda_sass.json

Needs NVRTC (the dev extra) and Triton's cuobjdump, not a GPU.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ROW = re.compile(r"/\*([0-9a-f]{4,})\*/\s+([^;]*);")
LOAD = re.compile(r"\bLDG\.E((?:\.\w+)*)")
SHARED_LOAD = re.compile(r"\bLDS((?:\.\w+)*)")
BYTES = {"U8": 1, "S8": 1, "U16": 2, "S16": 2, "64": 8, "128": 16}
# the baseline of each map layout: a thread per output element
BASELINE = {
    "thread_per_bin": "thread_per_bin",
    "sample_lanes": "thread_per_bin",
    "bin_channels": "thread_per_bin",
    "patch": "thread_per_bin",
    "channels_last": "channels_last",
    "channel_vectors": "channels_last",
}


def load_bytes(suffix: str) -> int:
    """Bytes one LDG brings in, from its suffixes (``.E`` alone: 4)."""
    sizes = [BYTES[s] for s in suffix.split(".") if s in BYTES]
    return sizes[0] if sizes else 4


def hot_loop(sass: str, element_bytes: int, *, shared: bool = False) -> dict[str, Any]:
    """The shortest loop with global loads (``shared``: loads from shared memory, where the
    patch kernel pools from) in one kernel's cuobjdump listing: its instructions, loads and
    the channel values they bring in."""
    rows = [(int(a, 16), ins.strip()) for a, ins in ROW.findall(sass)]
    if not rows:
        raise ValueError("no SASS instructions found (cuobjdump -sass output expected)")
    spans = []
    for address, ins in rows:
        target = re.search(r"\bBRA\b[^;]*?(0x[0-9a-f]+)", ins)
        if target and int(target.group(1), 16) < address:
            spans.append((int(target.group(1), 16), address))
    found = []
    for lo, hi in spans:
        body = [ins for a, ins in rows if lo <= a <= hi]
        loads = [m.group(1) for ins in body for m in [(SHARED_LOAD if shared else LOAD).search(ins)] if m]
        if loads:
            values = sum(load_bytes(s) // element_bytes for s in loads)
            found.append({"instructions": len(body), "loads": len(loads), "channel_values": values})
    if not found:
        raise ValueError(f"no loop with {'shared' if shared else 'global'} loads in this kernel")
    best = min(found, key=lambda f: f["instructions"])
    return {**best, "instructions_per_channel_value": best["instructions"] / best["channel_values"]}


def nvcc_sass(sources: Path, arch: int) -> dict[tuple[str, str], str]:
    """The kernels of another version of ``tensorrt/`` (``sources``: a folder with its
    roi_align_kernel.cu, as ``git archive`` gives it) compiled by nvcc for sm_``arch``: the
    kernels a past GPU run timed, which NVRTC may not compile (their host code unguarded)."""
    import subprocess
    import tempfile

    from plugins.roi_align.cuda_kernel import _gencode, _nvcc_flags, find_nvcc
    from plugins.roi_align.nvrtc import sass_by_kernel

    with tempfile.TemporaryDirectory() as tmp:
        cubin = Path(tmp, "kernels.cubin")
        cmd = [find_nvcc(), *_nvcc_flags(), "-cubin", *_gencode([arch])]  # as the plugin's library is built
        subprocess.run([*cmd, str(sources / "roi_align_kernel.cu"), "-o", str(cubin)], check=True)
        return sass_by_kernel(cubin.read_bytes())


def model(
    arch: int, measured: dict[str, float] | None = None, sources: Path | None = None
) -> list[dict[str, Any]]:
    """Each kernel's hot loop on sm_``arch`` (of ``sources``, another version of the kernels,
    where given); ``measured``: FP32 times by layout (ms)."""
    from plugins.roi_align.nvrtc import nvrtc_sass

    kernels = []
    listings = nvrtc_sass(arch) if sources is None else nvcc_sass(sources, arch)
    for (layout, dtype), text in sorted(listings.items()):
        if layout == "patch":  # pools from its patch in shared memory, float32 whatever the maps
            loop = hot_loop(text, 4, shared=True)
        else:
            loop = hot_loop(text, 2 if dtype == "fp16" else 4)
        kernels.append({"layout": layout, "dtype": dtype, **loop})
    per_value = {(k["layout"], k["dtype"]): k["instructions_per_channel_value"] for k in kernels}
    for k in kernels:
        base = BASELINE[k["layout"]]
        k["vs_a_thread_per_element"] = k["instructions_per_channel_value"] / per_value[(base, k["dtype"])]
        if measured and k["dtype"] == "fp32" and k["layout"] in measured and base in measured:
            k["measured_ms"] = measured[k["layout"]]
            k["measured_vs_a_thread_per_element"] = measured[k["layout"]] / measured[base]
    return kernels


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", type=int, nargs="+", default=[87, 90], help="SM versions: 87 Orin, 90 H100")
    ap.add_argument("--measured", type=Path, help="a bench_roi_align_gpu.py report to set beside the model")
    ap.add_argument(
        "--measured-arch",
        type=int,
        default=90,
        help="the SM version of the GPU that report ran on (H100, H200: 90)",
    )
    ap.add_argument(
        "--sources", type=Path, help="another version's tensorrt/ folder (git archive), compiled by nvcc"
    )
    ap.add_argument("--out", type=Path, help="write the JSON here (else print a table only)")
    args = ap.parse_args(argv)
    measured, device = None, None
    if args.measured is not None:
        report = json.loads(args.measured.read_text())
        measured, device = report["result"].get("plugin_kernel_layouts_ms"), report.get("device")
    result: dict[str, Any] = {
        "what": "a model, not a measurement: instructions of each plugin kernel's hot loop per "
        "feature channel value it loads (benchmarks/roi_align_cuda_sass.py), NVRTC's machine code",
        "measured_on": device,
        "sources": str(args.sources) if args.sources else "plugins/roi_align/tensorrt (this checkout)",
        "archs": {},
    }
    for arch in args.arch:
        chosen = measured if arch == args.measured_arch else None
        result["archs"][f"sm_{arch}"] = kernels = model(arch, chosen, args.sources)
        for k in kernels:
            seen = f", measured {k['measured_vs_a_thread_per_element']:.2f}x" if "measured_ms" in k else ""
            print(
                f"sm_{arch} {k['layout']:16s} {k['dtype']}: {k['instructions']:4d} instructions, "
                f"{k['loads']:2d} loads, {k['instructions_per_channel_value']:5.1f} a channel value "
                f"({k['vs_a_thread_per_element']:.2f}x{seen})"
            )
    if args.out is not None:
        from edge.util.fs import atomic_write_json

        atomic_write_json(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
