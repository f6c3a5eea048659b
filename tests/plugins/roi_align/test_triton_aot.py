"""The Triton kernel compiled for real GPU architectures on a machine without a GPU.

The interpreter tests (test_triton.py) check the kernel's arithmetic; they cannot see what
the GPU compiler does with it. These compile it with Triton's own ptxas for a Jetson Orin
(sm_87) and an H100 (sm_90) and read the cubin's resource usage and the PTX.
"""

from __future__ import annotations

import dataclasses

import pytest

triton = pytest.importorskip("triton", reason="triton is not installed (pip install triton)")

from plugins.roi_align import triton_tiles  # noqa: E402
from plugins.roi_align.triton_aot import KernelConfig, KernelResources, kernel_resources  # noqa: E402

ARCHS = (87, 90)
DEFAULTS = [
    KernelConfig(arch=a, dtype=d, bins_fast=f) for a in ARCHS for d in ("fp32", "fp16") for f in (True, False)
]
ADAPTIVE = KernelConfig(arch=87, sampling_ratio=0, aligned=True)
# adaptive sampling as the op launches it: the tile with RoIs of huge grids left out, and
# triton_huge's kernel, which pools those
HUGE = [
    KernelConfig(arch=a, dtype=d, sampling_ratio=0, aligned=True, layout=layout, **{**tile, **huge})
    for a in ARCHS
    for d in ("fp32", "fp16")
    for layout, tile in triton_tiles.TUNED_TILES.items()
    for huge in ({"huge_apart": True}, {"huge_rois": True, "num_warps": 1})  # as launched
]
# the tiles the op runs when none is asked for (TUNED_TILES, timed on an H200), compiled
# as Triton's launcher compiles them for maps of their layout
TUNED = [
    KernelConfig(arch=a, dtype=d, layout=layout, **tile)
    for a in ARCHS
    for d in ("fp32", "fp16")
    for layout, tile in triton_tiles.TUNED_TILES.items()
]
SAMPLE_LANES = [
    KernelConfig(arch=a, dtype=d, block_c=bc, sample_lanes=True, output_size=p)
    for a in ARCHS
    for d in ("fp32", "fp16")
    for bc, p in ((4, 7), (1, 14))
]
# a RoI's bins split over programs of 8 and 16, and the same tiles whole, in both layouts
# (as the GPU sweep runs them)
BIN_BLOCKS = [
    KernelConfig(arch=a, dtype=d, block_c=16, bins_fast=f, bin_block=n, layout=layout)
    for a in ARCHS
    for d in ("fp32", "fp16")
    for f in (True, False)
    for n in (8, 16, None)
    for layout in ("nchw", "channels_last")
]
# the GPU sweep's register caps on the tiles that take 72-138 registers whole
CAPPED = [
    KernelConfig(arch=90, dtype=d, block_c=bc, bins_fast=f, maxnreg=n, layout=layout)
    for d in ("fp32", "fp16")
    for f, bc, caps, layout in (
        (True, 16, (64, 48), "any"),
        (True, 32, (96, 64), "any"),
        (False, 16, (96, 64), "nchw"),
    )
    for n in caps
]
# 64 accumulators per thread, each with four loads in flight: no register file holds that
OVERSIZED = KernelConfig(arch=90, block_c=128, num_warps=4, bins_fast=False)


@pytest.fixture(scope="module")
def resources() -> dict[KernelConfig, KernelResources]:
    if getattr(triton.knobs.nvidia, "cuobjdump", None) is None:
        pytest.skip("this Triton has no NVIDIA ptxas/cuobjdump to compile with")
    configs = list(
        dict.fromkeys(
            [
                *DEFAULTS,
                ADAPTIVE,
                *HUGE,
                *(dataclasses.replace(c, huge_apart=False) for c in HUGE if c.huge_apart),
                *SAMPLE_LANES,
                *TUNED,
                *BIN_BLOCKS,
                OVERSIZED,
                *CAPPED,
                *(dataclasses.replace(c, maxnreg=None) for c in CAPPED),
            ]
        )
    )
    return {r.config: r for r in kernel_resources(configs)}


def test_default_configs_compile_for_orin_and_h100_without_spills(
    resources: dict[KernelConfig, KernelResources],
) -> None:
    for cfg in [*DEFAULTS, ADAPTIVE, *SAMPLE_LANES, *TUNED, *BIN_BLOCKS]:
        r = resources[cfg]
        assert not r.spills, f"{cfg.name()}: {r.stack_bytes} B stack, {r.local_bytes} B local"
        # 255 is the most a thread can have: hitting it means the compiler ran out
        assert 0 < r.registers < 255, cfg.name()
        # four corner loads per tile element (per sample where the grid is unrolled), plus
        # the RoI's five scalars
        samples = cfg.sampling_ratio**2 if cfg.unroll else 1
        per_pass = 4 * samples * cfg.tile_elements_per_thread()
        if cfg.layout == "channels_last":
            # a thread's channels are contiguous: its corner loads are vectors (where it
            # holds enough values of the tile for one)
            if cfg.tile_elements_per_thread() >= 4:
                assert r.vector_loads > 0 and r.global_loads - 5 == r.vector_loads, cfg.name()
        elif cfg.bin_block is None:
            assert r.global_loads == per_pass + 5, cfg.name()
        else:  # a body this small LLVM may unroll itself, up to the whole sample grid
            corner_loads = r.global_loads - 5
            assert corner_loads % per_pass == 0, cfg.name()
            assert per_pass <= corner_loads <= 4 * cfg.sampling_ratio**2 * cfg.tile_elements_per_thread()


def test_adaptive_sampling_as_launched_compiles_without_spills_and_costs_the_tile_little(
    resources: dict[KernelConfig, KernelResources],
) -> None:
    """The tile that leaves RoIs of huge grids to triton_huge's kernel, and that kernel, for an
    Orin and an H100 in the tuned tiles: no spills; the tile's registers within 4 of its own
    without the check (a compare and two selects before its loop)."""
    for cfg in HUGE:
        r = resources[cfg]
        assert not r.spills and 0 < r.registers < 255, cfg.name()
        if cfg.huge_apart:
            alone = resources.get(dataclasses.replace(cfg, huge_apart=False))
            if alone is not None:
                assert r.registers <= alone.registers + 4, cfg.name()


def test_splitting_the_bins_frees_registers(resources: dict[KernelConfig, KernelResources]) -> None:
    # what bin_block is for: a program of 8 bins holds an eighth of the accumulators, so the
    # register file, which held the channels-last tiles to a quarter of the warps on an
    # H200, takes more programs
    # H200, takes more programs. (Compiled as the launcher compiles them for channels-last
    # maps, Triton 3.9's whole tiles of 16 channels take 40-48 registers already: no fewer.)
    for cfg in BIN_BLOCKS:
        if cfg.bin_block is None:
            continue
        whole = resources[dataclasses.replace(cfg, bin_block=None)]
        if cfg.layout == "nchw":
            assert resources[cfg].registers < whole.registers, cfg.name()
        else:
            assert resources[cfg].registers <= whole.registers, cfg.name()
        if cfg.bin_block == 8:
            assert resources[cfg].registers <= 64, cfg.name()  # at least 8 programs of 4 warps an SM


def test_a_register_cap_holds_and_what_it_costs_is_seen(
    resources: dict[KernelConfig, KernelResources],
) -> None:
    # ptxas keeps under the cap (maxnreg), spilling what does not fit to the stack: the
    # sweep's capped tiles trade spills for warps, which only a GPU run can weigh
    for cfg in CAPPED:
        capped, whole = resources[cfg], resources[dataclasses.replace(cfg, maxnreg=None)]
        assert capped.registers <= cfg.maxnreg < whole.registers, cfg.name()
        assert capped.stack_bytes >= whole.stack_bytes, cfg.name()
    # half the registers of the 138-register tile cannot be had without spilling
    assert resources[KernelConfig(arch=90, block_c=32, bins_fast=True, maxnreg=64)].spills


def test_spills_are_detected(resources: dict[KernelConfig, KernelResources]) -> None:
    r = resources[OVERSIZED]
    assert r.spills and r.registers == 255


def test_coordinates_use_correctly_rounded_division(resources: dict[KernelConfig, KernelResources]) -> None:
    # Triton's `/` compiles to an approximate divide on GPUs; torchvision's kernel and the
    # numpy reference round to nearest, and at x ~ 500 px one ulp is 3e-5 of a pixel
    for r in resources.values():
        assert r.approx_divisions == 0, r.config.name()


def test_a_layout_it_does_not_know_is_refused() -> None:
    from plugins.roi_align.triton_aot import _specialized

    with pytest.raises(ValueError, match="layout must be 'any', 'nchw' or 'channels_last', got 'nhwc'"):
        _specialized(KernelConfig(layout="nhwc"), ["f0"], {"f0": "*fp32"})


def test_a_layout_makes_its_unit_stride_a_constant() -> None:
    from plugins.roi_align.triton_aot import _specialized

    params = ["f0", "h0", "sc0", "sw0", "s0", "C"]
    sig = {"f0": "*fp32", "h0": "i32", "sc0": "i32", "sw0": "i32", "s0": "fp32", "C": "i32"}
    for layout, unit, other in (("nchw", "sw0", "sc0"), ("channels_last", "sc0", "sw0")):
        signature, ones, attrs = _specialized(KernelConfig(layout=layout), params, sig)
        assert signature[unit] == "constexpr" and ones == {unit: 1}
        # pointers, sizes, the other strides and the channel count: multiples of 16; scales not
        marked = {params[i[0]] for i in attrs}
        assert marked == {"f0", "h0", other, "C"}
    assert _specialized(KernelConfig(), params, sig) == (sig, {}, {})
