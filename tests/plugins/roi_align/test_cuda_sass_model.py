"""The plugin kernels' SASS model (benchmarks/roi_align_cuda_sass.py): the hot loop found by
its backward branch, its loads' widths read from their suffixes, values per load by type."""

from __future__ import annotations

import pytest

from benchmarks.roi_align_cuda_sass import hot_loop, load_bytes

# an outer loop (0x0020-0x0090) around an inner one with a 16-byte load (0x0040-0x0070),
# a loop without loads (0x00b0-0x00c0), a load outside every loop
SASS = """
        /*0000*/                   LDG.E R1, desc[UR4][R2.64] ;
        /*0010*/                   S2R R0, SR_TID.X ;
        /*0020*/                   LDG.E.U16 R2, desc[UR4][R2.64] ;
        /*0030*/                   IADD3 R3, R3, 0x1, RZ ;
        /*0040*/                   LDG.E.128 R4, desc[UR4][R6.64] ;
        /*0050*/                   FFMA R8, R4, R9, R8 ;
        /*0060*/                   ISETP.NE.AND P0, PT, R3, 0x2, PT ;
        /*0070*/              @P0  BRA 0x40 ;
        /*0080*/                   ISETP.NE.AND P1, PT, R2, 0x2, PT ;
        /*0090*/              @P1  BRA 0x20 ;
        /*00a0*/                   STG.E.128 desc[UR4][R10.64], R8 ;
        /*00b0*/                   IADD3 R3, R3, 0x1, RZ ;
        /*00c0*/              @P0  BRA 0xb0 ;
        /*00d0*/                   EXIT ;
"""


def test_the_hot_loop_is_the_shortest_with_loads() -> None:
    fp32 = hot_loop(SASS, 4)
    assert fp32 == {
        "instructions": 4,  # 0x40-0x70: the loop without loads (2 instructions) is not it
        "loads": 1,
        "channel_values": 4,  # 16 bytes of float32
        "instructions_per_channel_value": 1.0,
    }
    assert hot_loop(SASS, 2)["channel_values"] == 8  # of float16


def test_load_widths() -> None:
    assert [load_bytes(s) for s in ("", ".U16", ".64", ".128", ".CONSTANT.128")] == [4, 2, 8, 16, 16]


def test_a_listing_without_a_loading_loop_is_refused() -> None:
    with pytest.raises(ValueError, match="no loop with global loads"):
        hot_loop(SASS.replace("LDG.E.128", "FADD").replace("LDG.E.U16", "FADD"), 4)
    with pytest.raises(ValueError, match="no SASS instructions"):
        hot_loop("Function : nothing", 4)


def test_the_plugin_kernels_rank_as_designed() -> None:
    """NVRTC's machine code of the real kernels: bin channels and channel vectors spend fewer
    instructions a channel value than a thread per element, sample lanes more (on the H200
    sample lanes took 2.9x a thread per bin's time; the model gives 2.6x); the patch kernel's
    pooling loop, reading shared memory, about half a thread per bin's (its copy not counted)."""
    nvrtc = pytest.importorskip("plugins.roi_align.nvrtc")
    pytest.importorskip("triton", reason="cuobjdump comes with Triton's wheel")
    try:
        nvrtc.wheel_dir("nvidia.cuda_nvrtc", "NVRTC")
    except Exception as exc:
        pytest.skip(f"needs NVRTC: {exc}")
    from benchmarks.roi_align_cuda_sass import model

    per_value = {(k["layout"], k["dtype"]): k["instructions_per_channel_value"] for k in model(90)}
    for dtype in ("fp32", "fp16"):
        assert per_value[("bin_channels", dtype)] < 0.8 * per_value[("thread_per_bin", dtype)]
        assert per_value[("channel_vectors", dtype)] < 0.4 * per_value[("channels_last", dtype)]
        assert per_value[("sample_lanes", dtype)] > 2 * per_value[("thread_per_bin", dtype)]
        assert per_value[("patch", dtype)] < 0.6 * per_value[("thread_per_bin", dtype)]
