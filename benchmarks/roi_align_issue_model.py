"""How many instructions each RoIAlign tile issues on a GPU, read from its SASS: a model,
not a measurement.

Each direct tile (bench_roi_align_gpu.py's candidates without rows or sample lanes) is
compiled for ``--arch`` as Triton's launcher compiles it for maps of its layout
(plugins/roi_align/triton_aot.py), and cuobjdump's SASS is counted: every instruction of
the kernel once, those inside a sample loop once a sample (the fixed grid's ratio per loop
level), the slow-path subroutines of IEEE division and square root not at all. Times the
programs and warps of the benchmark's problem, that is the warp instructions one launch
issues; at four a cycle on every SM (``--sms``, ``--clock-ghz``), the least time issuing
them takes. With ``--measured`` (a bench_roi_align_gpu.py report) each tile's measured
time is set beside it: a ratio near 1 says the tile is bound by issuing instructions,
far above 1 by something else (memory, latency, occupancy).

    python benchmarks/roi_align_issue_model.py --measured benchmarks/results/gpu_roi_align_h200_fp32.json \\
        --out benchmarks/results/roi_align_issue_model.json

Needs Triton's NVIDIA tools (ptxas and cuobjdump ship in its wheel), not a GPU.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.roi_align_tiles import candidates

ROOT = Path(__file__).resolve().parents[1]
ROW = re.compile(r"/\*([0-9a-f]{4,})\*/\s+([^;]*);")
ISSUE_PER_CYCLE = 4  # warp instructions an SM issues a cycle: one per scheduler


def dynamic_count(sass: str, trips: int) -> dict[str, int]:
    """Instructions a program's warp issues: the kernel's, up to its last EXIT before the
    first RET (after it lie the slow-path subroutines), each once for every loop around it
    of ``trips`` iterations (a loop: the span of a branch back to a lower address)."""
    rows = [(int(a, 16), ins.strip()) for a, ins in ROW.findall(sass)]
    if not rows:
        raise ValueError("no SASS instructions found (cuobjdump -sass output expected)")
    ret = next((k for k, (_, ins) in enumerate(rows) if re.match(r"RET\b", ins)), len(rows))
    exits = [k for k, (_, ins) in enumerate(rows[:ret]) if re.search(r"\bEXIT\b", ins)]
    body = rows[: exits[-1] + 1] if exits else rows[:ret]
    loops = []
    for address, ins in body:
        target = re.search(r"\bBRA\b[^;]*?(0x[0-9a-f]+)", ins)
        if target and int(target.group(1), 16) < address:
            loops.append((int(target.group(1), 16), address))
    count = sum(trips ** sum(lo <= a <= hi for lo, hi in loops) for a, _ in body)
    return {"static": len(body), "dynamic": count, "loops": len(loops)}


def programs(cfg: dict[str, Any], rois: int, channels: int, output_size: int) -> int:
    bins = output_size * output_size
    return rois * math.ceil(channels / cfg["block_c"]) * math.ceil(bins / (cfg.get("bin_block") or bins))


def model(
    *,
    arch: int,
    dtype: str,
    rois: int,
    channels: int,
    sms: int,
    clock_ghz: float,
    tiles: list[tuple[str, str, dict[str, Any]]] | None = None,
) -> dict[str, dict[str, Any]]:
    """The counts of each of ``tiles`` (default: the benchmark's candidates) for the problem."""
    from plugins.roi_align.triton_aot import KernelConfig, sass_and_resources

    out = {}
    for name, layout, cfg in candidates() if tiles is None else tiles:
        if cfg.get("rows") or cfg.get("sample_lanes"):
            continue  # their loops are not the sample grid's
        kc = KernelConfig(arch=arch, dtype=dtype, layout=layout, **cfg)
        listing, res = sass_and_resources(kc)
        counts = dynamic_count(listing, trips=kc.sampling_ratio)
        n = programs(cfg, rois, channels, kc.output_size)
        warp_instructions = n * cfg["num_warps"] * counts["dynamic"]
        out[name] = {
            **counts,
            "programs": n,
            "warp_instructions": warp_instructions,
            "issue_us": warp_instructions / (sms * ISSUE_PER_CYCLE * clock_ghz * 1e3),
            "registers": res.registers,
            "vector_loads": res.vector_loads,
        }
    return out


def calibrate(found: dict[str, dict[str, Any]], report: Path) -> dict[str, Any]:
    """Each tile's measured time over its issue time, from a bench_roi_align_gpu.py report."""
    data = json.loads(report.read_text())
    measured = data.get("result", data).get("all_configs_ms", {})
    ratios: dict[str, float] = {}
    for name, row in found.items():
        if name in measured:
            row["measured_us"] = measured[name] * 1e3
            ratios[name] = row["ratio"] = row["measured_us"] / row["issue_us"]
    by_layout = {}
    for layout in ("nchw", "channels_last"):
        values = [r for n, r in ratios.items() if n.startswith(layout + "/")]
        if values:
            by_layout[layout] = {
                "tiles": len(values),
                "ratio_min": min(values),
                "ratio_median": statistics.median(values),
                "ratio_max": max(values),
            }
    return {"report": str(report), "device": data.get("device"), "by_layout": by_layout}


def kernel_source() -> str:
    """The git blob hash of the kernel compiled (names its source even in an edited tree)."""
    kernel = ROOT / "plugins" / "roi_align" / "triton_kernel.py"
    try:
        return subprocess.run(
            ["git", "hash-object", str(kernel)], capture_output=True, text=True, check=True, cwd=ROOT
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (no git)"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", type=int, default=90, help="SM version (default 90: H100 and H200)")
    ap.add_argument("--dtype", choices=["fp32", "fp16"], default="fp32")
    ap.add_argument("--rois", type=int, default=1000)
    ap.add_argument("--channels", type=int, default=256)
    ap.add_argument(
        "--sms", type=int, default=132, help="streaming multiprocessors (default 132: H100/H200 SXM)"
    )
    ap.add_argument("--clock-ghz", type=float, default=1.98, help="SM clock (default 1.98: their boost)")
    ap.add_argument(
        "--tiles", nargs="+", metavar="NAME", help="only these tiles (names as the benchmark gives them)"
    )
    ap.add_argument("--measured", type=Path, help="a bench_roi_align_gpu.py report to set beside the model")
    ap.add_argument("--out", type=Path, help="write the JSON here (default: print it only)")
    args = ap.parse_args()
    if args.measured is not None and not args.measured.is_file():
        ap.error(f"--measured {args.measured}: no such report")
    tiles = candidates()
    if args.tiles:
        unknown = sorted(set(args.tiles) - {name for name, _, _ in tiles})
        if unknown:
            ap.error(
                f"--tiles: no such tiles {unknown}; the benchmark's are in benchmarks/roi_align_tiles.py"
            )
        tiles = [t for t in tiles if t[0] in args.tiles]
    import triton

    found = model(
        arch=args.arch,
        dtype=args.dtype,
        rois=args.rois,
        channels=args.channels,
        sms=args.sms,
        clock_ghz=args.clock_ghz,
        tiles=tiles,
    )
    report: dict[str, Any] = {
        "what": (
            "a model, not a measurement: warp instructions each direct RoIAlign tile issues for "
            "the GPU benchmark's problem (its SASS counted, sample loops times their trips), and "
            "the least time issuing them takes at 4 a cycle on every SM"
        ),
        "arch": args.arch,
        "dtype": args.dtype,
        "problem": {"rois": args.rois, "channels": args.channels, "output": 7, "sampling_ratio": 2},
        "sms": args.sms,
        "clock_ghz": args.clock_ghz,
        "triton": triton.__version__,
        "kernel_blob": kernel_source(),
        "tiles": found,
    }
    if args.measured is not None:
        report["calibration"] = calibrate(found, args.measured)
    text = json.dumps(report, indent=2) + "\n"
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        partial = args.out.with_name(args.out.name + ".partial")
        partial.write_text(text)
        partial.replace(args.out)
    print(text if args.out is None else f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
