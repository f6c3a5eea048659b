"""The configurations of the fused RoIAlign Triton kernel that the GPU benchmark times
(bench_roi_align_gpu.py) and Nsight Compute profiles (roi_align_ncu.py): names, layouts
and keyword arguments, in one place so that both name them alike.
"""

from __future__ import annotations

from typing import Any


def candidates() -> list[tuple[str, str, dict[str, Any]]]:
    """(name, layout, kernel keyword arguments) of every configuration timed, the op's
    defaults first, then those no GPU has timed yet.

    Tile elements per thread 1 to 32; each compiles, so keep few. Configs that spill
    registers on sm_90 are left out (python -m plugins.roi_align.triton_aot).
    """
    out = []
    for layout in ("nchw", "channels_last"):
        for bins_fast in (True, False):
            for block_c, warps in ((16, 4), (32, 4), (64, 8), (64, 4)):
                if not bins_fast and (block_c, warps) == (64, 4):
                    continue
                cfg = {"block_c": block_c, "num_warps": warps, "bins_fast": bins_fast, "unroll": False}
                out.append((f"{layout}/bins_fast={bins_fast}/block_c={block_c}/warps={warps}", layout, cfg))
        # the fixed sample grid unrolled (all corner loads in flight): smaller tiles, as
        # each thread holds every sample's corners at once
        for bins_fast in (True, False):
            for block_c, warps in ((8, 4), (16, 8), (32, 8)):
                cfg = {"block_c": block_c, "num_warps": warps, "bins_fast": bins_fast, "unroll": True}
                out.append(
                    (f"{layout}/bins_fast={bins_fast}/unrolled/block_c={block_c}/warps={warps}", layout, cfg)
                )
    # a RoI's channel blocks side by side (they read the same pixels) for the fastest tiles
    # of the first H200 run
    for layout, block_c, warps, unroll in (
        ("nchw", 16, 4, False),
        ("nchw", 32, 4, False),
        ("channels_last", 32, 4, False),
        ("channels_last", 16, 8, True),
        ("channels_last", 32, 8, True),
    ):
        cfg = {"block_c": block_c, "num_warps": warps, "bins_fast": False, "unroll": unroll, "cb_fast": True}
        name = (
            f"{layout}/bins_fast=False{'/unrolled' if unroll else ''}/cb_fast/block_c={block_c}/warps={warps}"
        )
        out.append((name, layout, cfg))
    # a RoI's bins split over programs of 8 or 16 (the grid's third axis): 36-64 registers
    # on sm_90 where the whole-RoI tiles take 72-186, so more warps resident an SM, which
    # is what the channels-last tiles lacked in Nsight Compute (registers: triton_aot.py)
    for layout, bins_fast, bin_block, block_c, unroll in (
        ("channels_last", True, 8, 16, False),
        ("channels_last", True, 8, 32, False),
        ("channels_last", True, 16, 16, False),
        ("channels_last", False, 8, 32, False),
        ("channels_last", False, 8, 64, False),
        ("channels_last", True, 8, 16, True),
        ("channels_last", True, 8, 32, True),
        ("channels_last", False, 8, 32, True),
        ("channels_last", False, 8, 64, True),
        ("nchw", False, 8, 16, False),
        ("nchw", False, 16, 16, False),
        ("nchw", True, 8, 16, False),
        ("nchw", False, 8, 16, True),
    ):
        cfg = {
            "block_c": block_c,
            "num_warps": 4,
            "bins_fast": bins_fast,
            "unroll": unroll,
            "bin_block": bin_block,
        }
        tile = f"bins_fast={bins_fast}{'/unrolled' if unroll else ''}/bin_block={bin_block}"
        out.append((f"{layout}/{tile}/block_c={block_c}/warps=4", layout, cfg))
    # the fastest whole-RoI tiles with their registers capped (maxnreg), for more warps an SM
    # than their 72-138 registers leave (sm_90, triton_aot.py --maxnreg): 64 spills 8 B of
    # stack on the channels-last default in FP32 and none in FP16, 48 about 100 B
    for layout, bins_fast, block_c, maxnreg in (
        ("channels_last", True, 16, 64),
        ("channels_last", True, 16, 48),
        ("channels_last", True, 32, 96),
        ("channels_last", True, 32, 64),
        ("nchw", False, 16, 96),
        ("nchw", False, 16, 64),
    ):
        cfg = {
            "block_c": block_c,
            "num_warps": 4,
            "bins_fast": bins_fast,
            "unroll": False,
            "maxnreg": maxnreg,
        }
        out.append(
            (f"{layout}/bins_fast={bins_fast}/maxnreg={maxnreg}/block_c={block_c}/warps=4", layout, cfg)
        )
    # channels-last, a warp per bin or two, its threads across all 256 channels: a thread's
    # two 16-byte vectors of each corner share one bin's coordinate arithmetic, which the
    # tiles above repeat for every 4 channels. Compiled for sm_90 as the launcher compiles
    # them (Triton 3.9), they issue 29-44 us of instructions for the problem at 1.98 GHz,
    # 55 the one of 128 channels on 4 warps, where the channels-last default issues 53 (65
    # before the kernel's trims of 2026-12-06), and that default took 1.9x its issue time
    # on the H200 (benchmarks/roi_align_issue_model.py; results/roi_align_issue_model*.json).
    # Registers: 63-70 with a bin or two a warp, up to 160 with four; 1-warp programs are
    # held to 32 an SM (32 warps)
    for bin_block, block_c, warps, unroll in (
        (1, 256, 1, False),
        (1, 256, 1, True),
        (2, 256, 1, False),
        (2, 256, 1, True),
        (4, 256, 1, False),
        (2, 256, 2, False),
        (4, 256, 2, False),
        (8, 256, 4, False),
        (2, 128, 1, False),
        (4, 128, 4, False),
    ):
        cfg = {
            "block_c": block_c,
            "num_warps": warps,
            "bins_fast": False,
            "unroll": unroll,
            "bin_block": bin_block,
        }
        tile = f"bins_fast=False{'/unrolled' if unroll else ''}/bin_block={bin_block}"
        out.append((f"channels_last/{tile}/block_c={block_c}/warps={warps}", "channels_last", cfg))
    # every corner loaded (addresses clamped), a sample outside the map weighing zero: no
    # register clears for masked-off lanes, 9-12% fewer instructions on sm_90 (equal sums on
    # finite maps; an inf on a map's edge reaches the bins beyond it: triton_sample.py)
    for name, cfg in (
        (
            "channels_last/bins_fast=True/unmasked/block_c=16/warps=4",
            {"block_c": 16, "num_warps": 4, "bins_fast": True},
        ),
        (
            "channels_last/bins_fast=False/unmasked/bin_block=2/block_c=256/warps=1",
            {"block_c": 256, "num_warps": 1, "bins_fast": False, "bin_block": 2},
        ),
        (
            "channels_last/bins_fast=False/unrolled/unmasked/bin_block=1/block_c=256/warps=1",
            {"block_c": 256, "num_warps": 1, "bins_fast": False, "bin_block": 1, "unroll": True},
        ),
        (
            "channels_last/bins_fast=False/unrolled/unmasked/bin_block=2/block_c=256/warps=1",
            {"block_c": 256, "num_warps": 1, "bins_fast": False, "bin_block": 2, "unroll": True},
        ),
    ):
        out.append((name, "channels_last", {"unroll": False, **cfg, "masked": False}))
    # a warp per row of bins with all their samples: for NCHW only (channels are not walked)
    for block_c, warps in ((2, 4), (4, 4), (4, 8), (8, 8)):
        cfg = {"block_c": block_c, "num_warps": warps, "sample_lanes": True, "unroll": False}
        out.append((f"nchw/sample_lanes/block_c={block_c}/warps={warps}", "nchw", cfg))
    # row segments contracted with the bins' x weights (triton_rows.py): NCHW only
    rows = (
        (4, 4, 32, False, False),
        (8, 4, 32, False, False),
        (8, 8, 32, False, False),
        (16, 8, 32, False, False),
        (8, 4, 16, False, False),
        (4, 8, 32, False, True),
        (8, 8, 32, False, True),
        (8, 4, 32, True, False),
        (16, 8, 32, True, False),
    )
    for block_c, warps, row_block, tf32x3, unroll in rows:
        cfg = {
            "block_c": block_c,
            "num_warps": warps,
            "rows": True,
            "row_block": row_block,
            "tf32x3": tf32x3,
            "unroll": unroll,
        }
        name = f"nchw/rows/row_block={row_block}{'/tf32x3' if tf32x3 else ''}{'/unrolled' if unroll else ''}"
        out.append((f"{name}/block_c={block_c}/warps={warps}", "nchw", cfg))
    # timed first, so that a run stopped at its limit has them: the tuned tiles, then the
    # untimed ones (whole-pixel and unmasked)
    return sorted(out, key=lambda c: 0 if c[0] in FIRST else 1 if _untimed(c) else 2)


# the op's defaults (plugins/roi_align/triton_tiles.py TUNED_TILES)
FIRST = ("nchw/bins_fast=False/block_c=16/warps=4", "channels_last/bins_fast=True/block_c=16/warps=4")


def _untimed(candidate: tuple[str, str, dict[str, Any]]) -> bool:
    """Not timed on a GPU yet: the whole-pixel tiles (256 or 128 channels a program) and the
    unmasked ones."""
    _, layout, cfg = candidate
    return layout == "channels_last" and (cfg["block_c"] >= 128 or cfg.get("masked") is False)
