"""The RoIAlign issue model's counting (benchmarks/roi_align_issue_model.py): SASS read as
cuobjdump prints it, loops found by their backward branches, subroutines left out."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.roi_align_issue_model import dynamic_count, programs

SCRIPT = Path(__file__).resolve().parents[3] / "benchmarks" / "roi_align_issue_model.py"

# two nested loops (0x0040-0x0070 inside 0x0020-0x0090), the kernel's EXIT, then a
# slow-path subroutine ending in RET
SASS = """
        /*0000*/                   MOV R1, c[0x0][0x28] ;
        /*0010*/                   S2R R0, SR_TID.X ;
        /*0020*/                   FADD R2, R2, 1 ;
        /*0030*/                   IADD3 R3, R3, 0x1, RZ ;
        /*0040*/                   LDG.E.128 R4, desc[UR4][R6.64] ;
        /*0050*/                   FFMA R8, R4, R9, R8 ;
        /*0060*/                   ISETP.NE.AND P0, PT, R3, 0x2, PT ;
        /*0070*/              @P0  BRA 0x40 ;
        /*0080*/                   ISETP.NE.AND P1, PT, R2, 0x2, PT ;
        /*0090*/              @P1  BRA 0x20 ;
        /*00a0*/                   STG.E desc[UR4][R10.64], R8 ;
        /*00b0*/                   EXIT ;
        /*00c0*/                   FCHK P0, R2, R3 ;
        /*00d0*/                   MUFU.RCP R4, R3 ;
        /*00e0*/                   RET.REL.NODEC R2 0x0 ;
"""


def test_loops_count_their_trips_and_subroutines_none() -> None:
    # outside the loops: 0x00, 0x10, 0xa0, 0xb0 (4 once); the outer loop's own: 0x20, 0x30,
    # 0x80, 0x90 (4 x 2 trips); the inner loop: 0x40-0x70 (4 x 2 x 2)
    assert dynamic_count(SASS, trips=2) == {"static": 12, "dynamic": 4 + 8 + 16, "loops": 2}
    assert dynamic_count(SASS, trips=3)["dynamic"] == 4 + 4 * 3 + 4 * 9


def test_an_unrolled_kernel_counts_each_instruction_once() -> None:
    straight = "\n".join(line for line in SASS.splitlines() if "BRA" not in line)
    assert dynamic_count(straight, trips=2) == {"static": 10, "dynamic": 10, "loops": 0}


def test_text_without_instructions_is_refused() -> None:
    with pytest.raises(ValueError, match="no SASS instructions found"):
        dynamic_count("Fatbin elf code:\n================\n", trips=2)


def test_programs_cover_every_channel_block_and_bin_group() -> None:
    assert programs({"block_c": 16}, 1000, 256, 7) == 16000
    assert programs({"block_c": 256, "bin_block": 2}, 1000, 256, 7) == 25000  # 49 bins: 25 groups
    assert programs({"block_c": 96, "bin_block": None}, 10, 256, 7) == 30  # 3 blocks, the last partial


def test_compiled_tiles_are_counted(tmp_path: Path) -> None:
    triton = pytest.importorskip("triton", reason="triton is not installed (pip install triton)")
    if getattr(triton.knobs.nvidia, "cuobjdump", None) is None:
        pytest.skip("this Triton has no NVIDIA ptxas/cuobjdump to compile with")
    looped = "channels_last/bins_fast=True/block_c=16/warps=4"
    unrolled = "channels_last/bins_fast=True/unrolled/block_c=16/warps=8"
    out = tmp_path / "model.json"
    # a process of its own: under Triton's interpreter (the tests' CPU mode) nothing compiles
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--tiles", looped, unrolled, "--clock-ghz", "2", "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    found = json.loads(out.read_text())["tiles"]
    assert set(found) == {looped, unrolled}
    a, b = found[looped], found[unrolled]
    assert a["loops"] == 2 and b["loops"] == 0  # the two sample loops, or none
    assert a["dynamic"] > a["static"] and b["dynamic"] == b["static"]
    assert a["programs"] == b["programs"] == 16000
    assert a["vector_loads"] > 0  # channels-last: a thread's channels are contiguous
    assert a["issue_us"] == pytest.approx(16000 * 4 * a["dynamic"] / (132 * 4 * 2.0e3))
    assert b["issue_us"] == pytest.approx(16000 * 8 * b["dynamic"] / (132 * 4 * 2.0e3))


def test_an_unknown_tile_is_named() -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--tiles", "nchw/warp"], capture_output=True, text=True
    )
    assert proc.returncode == 2 and "no such tiles ['nchw/warp']" in proc.stderr
