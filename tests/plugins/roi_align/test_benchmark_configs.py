"""The GPU benchmark's configurations, checked here so a device run does not find them wrong.

Device time is scarce: a configuration that the kernel refuses, or an Nsight Compute
default that names no timed configuration, would cost a run.
"""

from __future__ import annotations

import pytest

pytest.importorskip("triton", reason="triton is not installed (pip install triton)")

import json
from pathlib import Path

from benchmarks import bench_roi_align_gpu, roi_align_ncu, roi_align_tiles
from plugins.roi_align.triton_tiles import kernel_constexprs


def test_every_timed_configuration_is_one_the_kernel_takes() -> None:
    found = roi_align_tiles.candidates()
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
        assert ("/unmasked/" in name) == (cfg.get("masked") is False), name


def test_profiled_configurations_are_timed_ones() -> None:
    names = {name for name, _, _ in roi_align_tiles.candidates()}
    assert set(roi_align_ncu.DEFAULT) <= names


def test_nsight_adds_the_fastest_of_each_layout_from_a_report(tmp_path: Path) -> None:
    # the benchmark rewrites its report after every configuration: a partial one has its
    # times at the top level, a finished one under "result"
    times = {
        "nchw/a/block_c=16/warps=4": 0.3,
        "nchw/b/block_c=16/warps=4": 0.1,
        "nchw/c/block_c=16/warps=4": 0.2,
        "channels_last/d/block_c=16/warps=4": 0.5,
    }
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps({"partial": True, "all_configs_ms": times}))
    finished = tmp_path / "finished.json"
    finished.write_text(json.dumps({"result": {"all_configs_ms": times}}))
    for report in (partial, finished):
        assert roi_align_ncu.fastest(report, 2) == [
            "nchw/b/block_c=16/warps=4",
            "nchw/c/block_c=16/warps=4",
            "channels_last/d/block_c=16/warps=4",
        ]


def test_nsight_names_a_report_it_cannot_read(tmp_path: Path) -> None:
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"frames": 3}))
    with pytest.raises(SystemExit, match=r"--fastest .*other\.json: no all_configs_ms in it"):
        roi_align_ncu.fastest(other, 3)
    with pytest.raises(SystemExit, match=r"--fastest .*gone\.json: cannot read a benchmark report there"):
        roi_align_ncu.fastest(tmp_path / "gone.json", 3)


def test_clean_cache_times_take_the_fastest_of_each_layout_again() -> None:
    # on the CPU the read flush is no flush: what is checked is which configurations are
    # timed again and how the best of them and the speed-ups are reported
    chosen = [
        (name, name.split("/")[0], {"ms": ms})
        for name, ms in (
            ("nchw/a", 3.0),
            ("nchw/b", 1.0),
            ("nchw/c", 2.0),
            ("channels_last/d", 5.0),
            ("channels_last/e", 4.0),
        )
    ]
    configs = {name: cfg["ms"] for name, _, cfg in chosen}
    ran: list[str] = []

    def ours_with(_: object, cfg: dict) -> object:
        return lambda: ran.append(next(n for n, _, c in chosen if c is cfg))

    out = bench_roi_align_gpu.clean_l2_times(
        configs,
        chosen,
        {"nchw": [], "channels_last": []},
        ours_with,
        {"torchvision_ms": lambda: None, "torchvision_channels_last_ms": lambda: None},
        repeats=2,
        device="cpu",
        top=2,
    )
    assert sorted(set(ran)) == ["channels_last/d", "channels_last/e", "nchw/b", "nchw/c"]
    assert ran.count("nchw/b") == 2 and "nchw/a" not in ran
    assert set(out["configs_ms"]) == set(ran)
    assert out["ours_config"] in ("nchw/b", "nchw/c")
    assert out["ours_channels_last_config"] in ("channels_last/d", "channels_last/e")
    assert out["flush"] == "read"
    assert out["speedup_vs_torchvision"] == out["torchvision_ms"] / out["ours_ms"]


def test_a_flush_is_a_write_or_a_read() -> None:
    with pytest.raises(ValueError, match="flush is 'write' or 'read', got 'none'"):
        bench_roi_align_gpu.timed(lambda: None, 1, "cuda", flush="none")


def test_the_clean_cache_bound_takes_the_copy_rate_measured_the_same_way(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import argparse

    import torch

    rates = {"write": 3000.0, "read": 4000.0}  # GB/s, as the two flushes would measure them
    asked: list[str] = []

    def rate(device: str, flush: str = "write") -> float:
        asked.append(flush)
        return rates[flush]

    monkeypatch.setattr(bench_roi_align_gpu, "copy_bandwidth_gbs", rate)
    feats = [torch.zeros(1, 8, 64 >> i, 128 >> i) for i in range(4)]
    rois = bench_roi_align_gpu.rois_for(16, 256, 512)
    clean = {"ours_ms": 0.5, "ours_channels_last_ms": 0.25}
    result = {"ours_ms": 1.0, "ours_channels_last_ms": 0.5, "clean_l2": clean}
    out = bench_roi_align_gpu.bandwidth_figures(
        argparse.Namespace(rois=16, channels=8), feats, rois, result, rates["write"]
    )
    assert asked == ["read"]  # once, for both layouts
    for suffix, key in (("", "ours_ms"), ("_channels_last", "ours_channels_last_ms")):
        moved = out["compulsory_bytes" + suffix]
        assert out["fraction_of_bandwidth_bound" + suffix] == pytest.approx(
            moved / 3000e9 * 1e3 / result[key]
        )
        assert clean["bandwidth_bound_ms" + suffix] == pytest.approx(moved / 4000e9 * 1e3)
        assert clean["fraction_of_bandwidth_bound" + suffix] == pytest.approx(
            moved / 4000e9 * 1e3 / clean[key]
        )


def test_the_plugin_kernels_are_held_to_the_bound_of_the_layout_they_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import argparse

    import torch

    feats = [torch.zeros(1, 8, 64 >> i, 128 >> i) for i in range(4)]
    rois = bench_roi_align_gpu.rois_for(16, 256, 512)
    plugin = {"thread_per_bin": 0.4, "bin_channels": 0.2, "channels_last": 0.3, "channel_vectors": 0.1}
    plugin_clean = {m: t / 2 for m, t in plugin.items()}
    clean = {"ours_ms": 0.5, "ours_channels_last_ms": 0.25}
    result = {
        "ours_ms": 1.0,
        "ours_channels_last_ms": 0.5,
        "plugin_kernel_layouts_ms": plugin,
        "plugin_kernel_layouts_clean_l2_ms": plugin_clean,
        "clean_l2": clean,
    }
    monkeypatch.setattr(bench_roi_align_gpu, "copy_bandwidth_gbs", lambda device, flush="write": 4000.0)
    out = bench_roi_align_gpu.bandwidth_figures(
        argparse.Namespace(rois=16, channels=8), feats, rois, result, 3000.0
    )
    for times, bounds, fractions in [
        (plugin, out, out["plugin_kernel_fraction_of_bandwidth_bound"]),
        (plugin_clean, clean, clean["plugin_kernel_fraction_of_bandwidth_bound"]),
    ]:
        assert set(fractions) == set(plugin)
        for name in ("thread_per_bin", "bin_channels"):
            assert fractions[name] == pytest.approx(bounds["bandwidth_bound_ms"] / times[name])
        for name in ("channels_last", "channel_vectors"):
            assert fractions[name] == pytest.approx(bounds["bandwidth_bound_ms_channels_last"] / times[name])
    assert clean["bandwidth_bound_ms"] < out["bandwidth_bound_ms"]  # at the faster clean copy rate
