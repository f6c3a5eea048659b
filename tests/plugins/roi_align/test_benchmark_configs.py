"""The GPU benchmark's configurations, checked here so a device run does not find them wrong.

Device time is scarce: a configuration that the kernel refuses, or an Nsight Compute
default that names no timed configuration, would cost a run.
"""

from __future__ import annotations

import pytest

pytest.importorskip("triton", reason="triton is not installed (pip install triton)")

from benchmarks import bench_roi_align_gpu, roi_align_ncu
from plugins.roi_align.triton_tiles import kernel_constexprs


def test_every_timed_configuration_is_one_the_kernel_takes() -> None:
    found = bench_roi_align_gpu.candidates()
    names = [name for name, _, _ in found]
    assert len(names) == len(set(names)), "two configurations share a name"
    for name, layout, cfg in found:
        assert layout in ("nchw", "channels_last"), name
        assert name.startswith(layout + "/"), name
        options = {k: v for k, v in cfg.items() if k not in ("num_warps", "maxnreg")}  # launch options
        tile = {"sample_lanes": False, "bins_fast": False, **options}
        kernel_constexprs(num_levels=4, output_size=7, sampling_ratio=2, aligned=False, **tile)
        # the name says what the configuration is
        assert f"block_c={cfg['block_c']}/" in name and name.endswith(f"warps={cfg['num_warps']}"), name
        if cfg.get("bin_block"):
            assert f"bin_block={cfg['bin_block']}" in name, name
        if cfg.get("maxnreg"):
            assert f"maxnreg={cfg['maxnreg']}/" in name, name


def test_profiled_configurations_are_timed_ones() -> None:
    names = {name for name, _, _ in bench_roi_align_gpu.candidates()}
    assert set(roi_align_ncu.DEFAULT) <= names
