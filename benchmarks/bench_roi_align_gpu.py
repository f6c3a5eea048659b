"""Fused multi-level RoIAlign (Triton) vs torchvision's per-level MultiScaleRoIAlign, on a GPU.

Also timed where nvcc is installed: the TensorRT plugin's CUDA kernel, run without TensorRT
(``plugin_kernel_*``; plugins/roi_align/cuda_kernel.py).

Not a test: run it on the device machine and commit the JSON it writes.

    python benchmarks/bench_roi_align_gpu.py            # 1000 RoIs, 4 x 256-ch levels at 1024x2048
    python benchmarks/bench_roi_align_gpu.py --smoke    # tiny sizes; runs on the CPU interpreter too

Reports median times (CUDA events around each call, launched behind an L2 flush: the
GPU's time from cold caches, without the host's launch), the speed-up over torchvision, the max error of both
against each other and of ours against the numpy reference on a subset, and the fraction
of the memory-bandwidth bound: the bytes no kernel can avoid (the output, and every
32-byte sector holding a corner some sample reads; plugins/roi_align/traffic.py) moved
at the copy bandwidth measured on the same GPU, divided by our time. The older figure,
every corner read counted as traffic (``corner_reads_*``), is kept for comparison with
the v1 result; it overstates the bytes about four times on this problem.

Every tile's output is compared with the op's default tile's (``max_diff_vs_default``;
one past the tolerance cannot be the best) and a tile that fails is noted
(``config_errors``). The four fastest of each layout are timed again behind a read flush
(``clean_l2``: no write-backs of the flush's own dirty lines in the timed call; the
bound there at the copy rate measured the same way), beside the write flush's times,
which the records of 2026-12-04 used.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.roi_align_tiles import candidates

SCALES = [1 / 4, 1 / 8, 1 / 16, 1 / 32]


def rois_for(n: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    """Boxes with log-uniform sizes (8 .. 512 px) so every pyramid level gets work."""
    g = torch.Generator().manual_seed(seed)
    size = torch.exp(torch.empty(n, 2).uniform_(np.log(8), np.log(512), generator=g))
    xy = torch.rand(n, 2, generator=g) * torch.tensor([w, h])
    return torch.cat([xy, xy + size], dim=1).clamp(max=max(h, w))


def timed(fn: Any, repeats: int, device: str, flush: str = "write") -> list[float]:
    """Milliseconds of each call. On CUDA, GPU time from cold caches: each call comes
    after a kernel that passes more than the L2 holds through it, and is launched while
    that runs, so the events do not count the host's launch (tens of microseconds of
    Python for a Triton kernel, which the first H200 runs of 2026-12-04 included).

    ``flush="write"`` overwrites a buffer (the runs of 2026-12-04): the L2 is then full of
    dirty lines, which the timed call's reads evict and write back to DRAM, up to the
    L2's size in traffic that is not the call's own. ``"read"`` sums the buffer instead,
    leaving the L2 cold and clean, as Nsight Compute's cache control does.
    """
    times = []
    if device != "cuda":
        for _ in range(repeats):
            t = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t) * 1e3)
        return times
    if flush not in ("write", "read"):
        raise ValueError(f"flush is 'write' or 'read', got {flush!r}")
    buffer = torch.zeros(256 * 1024 * 1024 // 4, dtype=torch.int32, device=device)
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        if flush == "write":
            buffer.zero_()
        else:
            buffer.sum()
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return times


def copy_bandwidth_gbs(device: str, flush: str = "write") -> float | None:
    if device != "cuda":
        return None
    x = torch.empty(256 * 1024 * 1024 // 4, device=device)
    ms = statistics.median(timed(lambda: x.clone(), 10, device, flush=flush))
    return 2 * x.numel() * 4 / (ms / 1e3) / 1e9


def bandwidth_figures(
    args: argparse.Namespace,
    feats: list[torch.Tensor],
    rois: torch.Tensor,
    result: dict[str, Any],
    copy_gbs: float | None,
) -> dict[str, Any]:
    """Bytes that must move, the time that takes at the copy bandwidth, and our fraction of it."""
    from plugins.roi_align.traffic import compulsory_bytes, touched_pixels

    elem = feats[0].element_size()
    shapes = [(int(f.shape[2]), int(f.shape[3])) for f in feats]
    r = rois.cpu().numpy()
    pixels = touched_pixels(
        r,
        np.zeros(len(r), np.int64),
        shapes,
        output_size=7,
        spatial_scales=SCALES,
        sampling_ratio=2,
        aligned=False,
    )
    kw = {"rois": args.rois, "channels": args.channels, "output_size": 7, "element_bytes": elem}
    corner_reads = args.rois * args.channels * 49 * elem * (1 + 4 * 4)  # output + 4 corners x 4 samples
    out: dict[str, Any] = {
        "compulsory_bytes": compulsory_bytes(pixels, shapes, layout="nchw", **kw),
        "compulsory_bytes_channels_last": compulsory_bytes(pixels, shapes, layout="channels_last", **kw),
        "corner_read_bytes": corner_reads,
        "copy_bandwidth_gbs": copy_gbs,
    }
    clean = result.get("clean_l2")
    if copy_gbs and clean is not None:  # the copy rate from a clean L2, as those times were taken
        clean["copy_bandwidth_gbs"] = copy_bandwidth_gbs("cuda", flush="read")
    if copy_gbs:
        for suffix, key in (("", "ours_ms"), ("_channels_last", "ours_channels_last_ms")):
            bound_ms = out["compulsory_bytes" + suffix] / (copy_gbs * 1e9) * 1e3
            out["bandwidth_bound_ms" + suffix] = bound_ms
            out["fraction_of_bandwidth_bound" + suffix] = bound_ms / result[key]
            out["corner_reads_fraction_of_copy_bandwidth" + suffix] = (
                corner_reads / (result[key] / 1e3) / 1e9 / copy_gbs
            )
            if clean is not None:  # the bound at the clean copy rate, over the clean time
                clean_bound_ms = out["compulsory_bytes" + suffix] / (clean["copy_bandwidth_gbs"] * 1e9) * 1e3
                clean["bandwidth_bound_ms" + suffix] = clean_bound_ms
                clean["fraction_of_bandwidth_bound" + suffix] = clean_bound_ms / clean[key]
        # the TensorRT plugin's kernels, each against the bound of the layout it reads (and
        # from a clean L2 at the clean copy rate, as the Triton kernel's fastest)
        cl = ("channels_last", "channel_vectors")
        suffix_of = {True: "_channels_last", False: ""}
        plugin = result.get("plugin_kernel_layouts_ms") or {}
        out["plugin_kernel_fraction_of_bandwidth_bound"] = {
            m: out["bandwidth_bound_ms" + suffix_of[m in cl]] / t for m, t in plugin.items()
        }
        plugin_clean = result.get("plugin_kernel_layouts_clean_l2_ms") or {}
        if clean is not None and plugin_clean:
            clean["plugin_kernel_fraction_of_bandwidth_bound"] = {
                m: clean["bandwidth_bound_ms" + suffix_of[m in cl]] / t for m, t in plugin_clean.items()
            }
    return out


def clean_l2_times(
    configs: dict[str, float],
    chosen: list[tuple[str, str, dict[str, Any]]],
    layouts: dict[str, list[torch.Tensor]],
    ours_with: Any,
    rivals: dict[str, Any],
    repeats: int,
    device: str = "cuda",
    top: int = 4,
) -> dict[str, Any]:
    """The ``top`` fastest configurations of each layout (and torchvision) timed again
    behind a read flush (``timed``): their times without the write-backs of the flush's
    dirty lines, which a RoIAlign in a model does not pay for a kernel it never ran."""
    out: dict[str, Any] = {"flush": "read", "configs_ms": {}}
    kinds = {name: (layout, cfg) for name, layout, cfg in chosen}
    for layout in layouts:
        ranked = sorted((t, n) for n, t in configs.items() if kinds[n][0] == layout)[:top]
        for _, name in ranked:
            fn = ours_with(layouts[layout], kinds[name][1])
            out["configs_ms"][name] = statistics.median(timed(fn, repeats, device, flush="read"))
        best = min((out["configs_ms"][n], n) for _, n in ranked)
        key = "ours_ms" if layout == "nchw" else "ours_channels_last_ms"
        out[key], out[key.replace("_ms", "_config")] = best
    for key, fn in rivals.items():
        out[key] = statistics.median(timed(fn, repeats, device, flush="read"))
    if "torchvision_ms" in out:
        out["speedup_vs_torchvision"] = out["torchvision_ms"] / out["ours_ms"]
        out["speedup_vs_torchvision_channels_last"] = (
            out["torchvision_channels_last_ms"] / out["ours_channels_last_ms"]
        )
    return out


def registers_of(
    chosen: list[tuple[str, str, dict[str, Any]]], dtype: torch.dtype, arch: int
) -> dict[str, Any]:
    """Registers and spills of every timed configuration, compiled for ``arch`` (e.g. 90)
    as Triton's launcher compiles it for maps of its layout (the runs before 2026-12-06
    compiled every one for strides of any value, which took more registers)."""
    from plugins.roi_align.triton_aot import KernelConfig, kernel_resources

    dt = "fp32" if dtype == torch.float32 else "fp16"
    cfgs = {name: KernelConfig(arch=arch, dtype=dt, layout=layout, **kw) for name, layout, kw in chosen}
    try:
        found = kernel_resources(list(set(cfgs.values())))
    except Exception as exc:  # a report without registers beats no report
        return {"error": f"{type(exc).__name__}: {exc}"[:500]}
    by_cfg = {r.config: r for r in found}
    return {
        name: {
            "registers": by_cfg[c].registers,
            "spills": by_cfg[c].spills,
            "vector_loads": by_cfg[c].vector_loads,
        }
        for name, c in cfgs.items()
    }


def plugin_kernel(
    layouts: dict[str, list[torch.Tensor]], rois: torch.Tensor, bidx: torch.Tensor, repeats: int, log: Any
) -> dict[str, Any]:
    """The TensorRT plugin's CUDA kernel, built with nvcc: on NCHW maps (kLINEAR) in its four
    thread layouts (a thread per bin, sample lanes, bin channels, the shared-memory patch),
    ``plugin_kernel_ms`` the one the plugin runs (auto); and on channel-last
    maps (kHWC) a thread per element (``channels_last``) and channel vectors
    (``channel_vectors``, what the plugin runs on them), compared in values, not memory."""
    from plugins.roi_align import cuda_kernel

    try:
        major, minor = torch.cuda.get_device_capability()
        arch = major * 10 + minor
        log("TensorRT plugin kernel (nvcc)")
        library = cuda_kernel.build_library([arch])

        on_cl = {"channels_last": "thread_per_bin", "channel_vectors": "channel_vectors"}

        def run(mapping: str) -> Any:
            layout = "channels_last" if mapping in on_cl else "nchw"
            return lambda: cuda_kernel.multilevel_roi_align_cuda(
                layouts[layout],
                rois,
                bidx,
                7,
                SCALES,
                2,
                False,
                2,
                mapping=on_cl.get(mapping, mapping),
                layout=layout,
                library=library,
            )

        nchw = ("thread_per_bin", "sample_lanes", "bin_channels", "patch")
        outputs = {m: run(m)() for m in ("auto", *nchw, *on_cl)}
        resources = [dataclasses.asdict(r) for r in cuda_kernel.kernel_resources([arch])]
        times = {m: statistics.median(timed(run(m), repeats, "cuda")) for m in outputs}
        # and behind a read flush, as the Triton kernel's fastest are timed again (clean_l2_times)
        clean = {
            m: statistics.median(timed(run(m), repeats, "cuda", flush="read")) for m in outputs if m != "auto"
        }
    except Exception as exc:  # a report without the plugin kernel beats no report
        return {"plugin_kernel_error": f"{type(exc).__name__}: {exc}"[:500]}
    return {
        "plugin_kernel_ms": times["auto"],
        "plugin_kernel_layouts_ms": {m: t for m, t in times.items() if m != "auto"},
        "plugin_kernel_layouts_clean_l2_ms": clean,
        "plugin_kernel_max_diff_between_layouts": max(
            float((outputs["thread_per_bin"] - outputs[m]).abs().max()) for m in (*nchw[1:], *on_cl)
        ),
        "plugin_kernel_resources": resources,
        "output": outputs["auto"],  # checked against the reference by the caller, not written
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rois", type=int, default=1000)
    ap.add_argument("--channels", type=int, default=256)
    ap.add_argument("--size", default="1024x2048")
    ap.add_argument("--dtype", choices=["float32", "float16"], default="float32")
    ap.add_argument("--repeats", type=int, default=50)
    ap.add_argument("--smoke", action="store_true", help="tiny problem, few repeats (checks the script runs)")
    ap.add_argument(
        "--exclude",
        nargs="+",
        default=[],
        metavar="TEXT",
        help="leave out the configurations whose names hold any of these (e.g. rows sample_lanes)",
    )
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/gpu_roi_align.json"))
    args = ap.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton is imported
    if args.smoke:
        args.rois, args.channels, args.size, args.repeats = 16, 8, "128x256", 2

    from plugins.roi_align.reference import multilevel_roi_align
    from plugins.roi_align.triton_kernel import multilevel_roi_align_triton

    h, w = (int(v) for v in args.size.split("x"))
    dtype = getattr(torch, args.dtype)
    g = torch.Generator().manual_seed(1)
    feats = [
        torch.randn(1, args.channels, h >> (2 + i), w >> (2 + i), generator=g).to(device, dtype)
        for i in range(4)
    ]
    rois = rois_for(args.rois, h, w).to(device)
    bidx = torch.zeros(args.rois, dtype=torch.int64, device=device)

    def log(msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    def ours_with(fs: list[torch.Tensor], cfg: dict[str, Any]) -> Any:
        return lambda: multilevel_roi_align_triton(fs, rois, bidx, 7, SCALES, 2, False, 2, **cfg)

    # NCHW as torchvision gets it, and channels-last (what the model runs in on CUDA);
    # the kernel reads either in place through strides, with threads walking bins or channels
    layouts = {"nchw": feats, "channels_last": [f.to(memory_format=torch.channels_last) for f in feats]}
    configs: dict[str, float] = {}
    best: dict[str, tuple[float, str, dict[str, Any]]] = {}
    chosen = [c for c in candidates() if not any(text in c[0] for text in args.exclude)]
    if missing := {"nchw", "channels_last"} - {layout for _, layout, _ in chosen}:
        ap.error(f"--exclude {' '.join(args.exclude)} leaves no {' or '.join(sorted(missing))} configuration")
    tol = 1e-4 if dtype == torch.float32 else 1e-2  # the bounds
    # every tile's output against the op's default tile's (held to the reference below): a
    # fast tile that computes something else cannot be the best, and one that fails to
    # compile (another Triton, another GPU) is noted, not the end of the run
    default_out = {layout: ours_with(fs, {})() for layout, fs in layouts.items()}
    diffs: dict[str, float] = {}
    errors: dict[str, str] = {}
    for name, layout, cfg in chosen:
        log(f"ours {name}")
        fn = ours_with(layouts[layout], cfg)
        try:
            diffs[name] = float((fn().float() - default_out[layout].float()).abs().max())  # compiles
            configs[name] = statistics.median(timed(fn, args.repeats, device))
        except Exception as exc:  # a sweep goes on past one tile
            errors[name] = f"{type(exc).__name__}: {exc}"[:500]
            log(f"  failed: {errors[name][:200]}")
            continue
        if diffs[name] <= tol and (layout not in best or configs[name] < best[layout][0]):
            best[layout] = (configs[name], name, cfg)
        if not args.smoke:  # a run stopped part way keeps the configurations timed
            args.out.parent.mkdir(parents=True, exist_ok=True)
            partial = {
                "partial": True,
                "all_configs_ms": configs,
                "max_diff_vs_default": diffs,
                "errors": errors,
            }
            args.out.write_text(json.dumps(partial, indent=2) + "\n")
    result: dict[str, Any] = {
        "ours_ms": best["nchw"][0],
        "ours_config": best["nchw"][1],
        "ours_channels_last_ms": best["channels_last"][0],
        "ours_channels_last_config": best["channels_last"][1],
        "all_configs_ms": configs,
        "max_diff_vs_default": diffs,
        "config_errors": errors,
    }
    plugin_out = None
    if device == "cuda":
        plugin = plugin_kernel(layouts, rois, bidx, args.repeats, log)
        plugin_out = plugin.pop("output", None)
        result.update(plugin)
    if not args.smoke:  # timings first: slow correctness checks must not lose them
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"partial": True, "result": result}, indent=2) + "\n")
    log("layout conversion")
    result["nchw_to_channels_last_ms"] = statistics.median(
        timed(lambda: [f.to(memory_format=torch.channels_last) for f in feats], args.repeats, device)
    )
    out = ours_with(feats, best["nchw"][2])()
    out_cl = ours_with(layouts["channels_last"], best["channels_last"][2])()
    result["max_diff_nchw_vs_channels_last"] = float((out.float() - out_cl.float()).abs().max())
    k = min(32, args.rois)
    log("numpy reference")
    ref = multilevel_roi_align(
        [f.float().cpu().numpy() for f in feats],
        rois[:k].cpu().numpy(),
        bidx[:k].cpu().numpy(),
        output_size=7,
        spatial_scales=SCALES,
        sampling_ratio=2,
        aligned=False,
    )
    result["max_err_vs_numpy_reference"] = float(np.abs(out[:k].float().cpu().numpy() - ref).max())
    if plugin_out is not None:  # the TensorRT plugin's kernel, held to the same reference
        result["plugin_kernel_max_err_vs_numpy_reference"] = float(
            np.abs(plugin_out[:k].float().cpu().numpy() - ref).max()
        )
    try:
        from collections import OrderedDict

        from torchvision.ops import MultiScaleRoIAlign

        pool = MultiScaleRoIAlign(["p2", "p3", "p4", "p5"], 7, 2)  # aligned=False, as torchvision
        fmap = OrderedDict(zip(["p2", "p3", "p4", "p5"], feats, strict=True))

        # torchvision's kernel wants the boxes in the features' type (FP16 coordinates in an
        # FP16 model); ours reads FP32 boxes whatever the features are
        rois_tv = rois.to(dtype)

        def theirs() -> torch.Tensor:
            return pool(fmap, [rois_tv], [(h, w)])

        log("torchvision")
        theirs()
        result["torchvision_ms"] = statistics.median(timed(theirs, args.repeats, device))
        result["speedup_vs_torchvision"] = result["torchvision_ms"] / result["ours_ms"]
        if result.get("plugin_kernel_ms"):
            result["plugin_kernel_speedup_vs_torchvision"] = (
                result["torchvision_ms"] / result["plugin_kernel_ms"]
            )
        # the model runs channels-last on CUDA; torchvision then makes each level contiguous
        # first, which is part of what it costs there
        fmap_cl = OrderedDict(zip(["p2", "p3", "p4", "p5"], layouts["channels_last"], strict=True))
        pool(fmap_cl, [rois_tv], [(h, w)])
        result["torchvision_channels_last_ms"] = statistics.median(
            timed(lambda: pool(fmap_cl, [rois_tv], [(h, w)]), args.repeats, device)
        )
        result["speedup_vs_torchvision_channels_last"] = (
            result["torchvision_channels_last_ms"] / result["ours_channels_last_ms"]
        )
        # torchvision's kernel computes in the input's type, FP16 coordinates included (a
        # quarter pixel apart at x ~ 500), so ours is held to it run in FP32 on the same values
        fmap32 = OrderedDict((name, f.float()) for name, f in fmap.items())
        tv32 = pool(fmap32, [rois], [(h, w)])
        result["max_err_vs_torchvision"] = float((tv32 - out.float()).abs().max())
        if dtype != torch.float32:
            result["max_err_vs_torchvision_same_dtype"] = float((theirs().float() - out.float()).abs().max())
        rivals = {
            "torchvision_ms": theirs,
            "torchvision_channels_last_ms": lambda: pool(fmap_cl, [rois_tv], [(h, w)]),
        }
    except ImportError:
        result["torchvision_ms"] = None  # not installed here
        rivals = {}
    if device == "cuda":
        log("clean cold L2 (read flush)")
        try:
            right = {n: t for n, t in configs.items() if diffs[n] <= tol}
            result["clean_l2"] = clean_l2_times(right, chosen, layouts, ours_with, rivals, args.repeats)
        except Exception as exc:  # a report without these beats no report
            result["clean_l2_error"] = f"{type(exc).__name__}: {exc}"[:500]
    result["tolerance"] = tol
    checked = (
        "max_err_vs_numpy_reference",
        "max_err_vs_torchvision",
        "plugin_kernel_max_err_vs_numpy_reference",
    )
    result["within_tolerance"] = {key: result[key] <= tol for key in checked if key in result}
    if device == "cuda":
        major, minor = torch.cuda.get_device_capability()
        result["kernel_resources"] = registers_of(chosen, dtype, major * 10 + minor)
    result.update(bandwidth_figures(args, feats, rois, result, copy_bandwidth_gbs(device)))
    report = {
        "benchmark": "fused multi-level RoIAlign (Triton) vs torchvision MultiScaleRoIAlign",
        "device": torch.cuda.get_device_name(0)
        if device == "cuda"
        else f"CPU ({platform.processor()}), interpreter",
        "problem": {
            "rois": args.rois,
            "channels": args.channels,
            "image": args.size,
            "levels": 4,
            "output": 7,
            "sampling_ratio": 2,
            "dtype": args.dtype,
        },
        "versions": {"torch": torch.__version__, "triton": __import__("triton").__version__},
        "targets": {"speedup_vs_torchvision": ">= 2", "fraction_of_bandwidth_bound": ">= 0.5"},
        "result": result,
        "smoke": args.smoke,
    }
    print(json.dumps(report, indent=2))
    if not args.smoke:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
