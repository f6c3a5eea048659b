"""The tiles of the fused RoIAlign Triton kernel (triton_kernel.py): the compile-time
arguments each specialization takes, checked, and the tile measured fastest for each
feature layout. Apart from the kernel so that the options, the tuned tiles and
ahead-of-time compilation (triton_aot.py) are read in one place.
"""

from __future__ import annotations

from typing import Any

import torch
import triton

from plugins.roi_align.triton_rows import rows_constexprs


def kernel_constexprs(
    *,
    num_levels: int,
    output_size: int,
    sampling_ratio: int,
    aligned: bool,
    block_c: int,
    bins_fast: bool,
    sample_lanes: bool,
    rows: bool = False,
    row_block: int = 32,
    tf32x3: bool = False,
    unroll: bool = False,
    cb_fast: bool = False,
    bin_block: int | None = None,
    masked: bool = True,
    huge_apart: bool = False,
) -> dict[str, Any]:
    """The compile-time arguments of one specialization: what a launch passes and what
    triton_aot.py compiles ahead of time. ``huge_apart``: under adaptive sampling, the RoIs
    past HUGE_GRID samples a bin are left (as zeros) to triton_huge's kernel, which the
    launch runs next (multilevel_roi_align_triton always asks for it); without it the tile
    pools them itself, visiting every sample."""
    all_bins = triton.next_power_of_2(output_size * output_size)
    if bin_block is not None and (sample_lanes or rows):
        raise ValueError(
            "bin_block splits the direct tile's bins; the sample_lanes and rows tiles have their own"
        )
    if bin_block is not None and not (1 <= bin_block <= all_bins and bin_block & (bin_block - 1) == 0):
        raise ValueError(
            f"bin_block must be a power of two from 1 to {all_bins} ({output_size}x{output_size} bins), "
            f"got {bin_block}"
        )
    if sample_lanes and sampling_ratio not in (1, 2, 4):
        raise ValueError(
            f"sample_lanes needs sampling_ratio 1, 2 or 4 (a power-of-two lane count), got {sampling_ratio}"
        )
    if not masked and (sample_lanes or rows):
        raise ValueError(
            "masked=False is the direct tile's; the sample_lanes and rows tiles mask their loads"
        )
    if rows and sample_lanes:
        raise ValueError("rows and sample_lanes are two different tiles; choose one")
    padded = rows_constexprs(output_size)
    if rows and (row_block < 16 or row_block & (row_block - 1) or block_c * padded["PB"] < 16):
        raise ValueError(
            f"the rows tile needs row_block a power of two >= 16 and block_c x {padded['PB']} >= 16 "
            f"(a matrix product's smallest side), got row_block {row_block}, block_c {block_c}"
        )
    return {
        "NUM_LEVELS": num_levels,
        "P": output_size,
        "SAMPLING": max(sampling_ratio, 0),
        "ALIGNED": bool(aligned),
        "BLOCK_C": block_c,
        # sample lanes and rows: the tile's rows (and columns) of bins, each a power of two
        "BLOCK_B": padded["PB"] if sample_lanes or rows else (bin_block or all_bins),
        "BINS_FAST": bool(bins_fast) and not (sample_lanes or rows),
        "SAMPLE_LANES": bool(sample_lanes),
        "ROWS": bool(rows),
        "PX": padded["PX"],
        "XB": row_block,
        "TF32X3": bool(tf32x3),
        "UNROLL": bool(unroll),
        "CB_FAST": bool(cb_fast),
        "MASKED": bool(masked),
        "HUGE_APART": bool(huge_apart) and sampling_ratio <= 0,
    }


# The direct tile with the lowest times on an H200, FP32 and FP16, cold caches
# (benchmarks/results/gpu_roi_align_h200_fp32.json, ..._fp16.json). NCHW: threads across
# channels, 0.17 ms FP32, where threads across bins (the default before) took 0.95.
# Channels-last: 16 channels by the bins, 0.12 ms FP32 and 0.13 FP16; six other tiles
# came within 0.12-0.16 ms and ranked differently in an earlier run. One GPU's numbers:
# an Orin may rank them otherwise, and bench_roi_align_gpu.py times them all.
TUNED_TILES: dict[str, dict[str, Any]] = {  # unroll, cb_fast, bin_block off; masked on: in both
    "nchw": {"block_c": 16, "num_warps": 4, "bins_fast": False},
    "channels_last": {"block_c": 16, "num_warps": 4, "bins_fast": True},
}


def register_cap(maxnreg: int | None) -> dict[str, int]:
    """Triton's launch and compile option capping the registers a thread, where one is set."""
    return {} if maxnreg is None else {"maxnreg": maxnreg}


def layout_of(feature: torch.Tensor) -> str:
    """``channels_last`` where a pixel's channels are contiguous, else ``nchw``."""
    return "channels_last" if feature.stride(1) == 1 and feature.shape[1] > 1 else "nchw"
