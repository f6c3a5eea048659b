"""A model, not a measurement: L1 wavefronts of each RoIAlign kernel tile on the GPU benchmark.

A warp's gather load costs the L1 one wavefront per distinct 128-byte line its active
lanes touch. For a gather-bound kernel that count, not bytes, sets the time. This script
counts it exactly for the benchmark's RoIs and each tile's lane layout (read from the
compiled kernel's layouts: bins, sample lanes, channels), then scales by the one timed
data point (the v1 channels-across-lanes NCHW kernel: 0.94 ms on an H100) to predict the
others. The prediction is to be checked against bench_roi_align_gpu.py on the device.

    python benchmarks/roi_align_wavefronts.py [--out benchmarks/results/roi_align_wavefront_model.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_roi_align_gpu import SCALES, rois_for
from plugins.roi_align.reference import assign_levels
from plugins.roi_align.traffic import axis_samples, roi_on_level

LINE = 128
P, S = 7, 2
TILES = ("bins", "sample_lanes", "channels_nchw", "channels_cl", "plugin_cuda")


def roi_wavefronts(roi: np.ndarray, level: int, h: int, w: int) -> dict[str, float]:
    """Wavefronts per channel of one RoI, for each tile (fp32, NCHW or channels-last)."""
    x1, y1, rw, rh = roi_on_level(roi, SCALES[level], aligned=False)
    ylo, yhi, yok = axis_samples(y1, rh, h, P, S)  # (P, S)
    xlo, xhi, xok = axis_samples(x1, rw, w, P, S)
    per_elem = LINE // 4  # floats per line
    counts = {k: 0.0 for k in TILES}
    for rows in (ylo, yhi):
        for cols in (xlo, xhi):
            # line of (bin row, sample row, bin col, sample col) within one channel plane
            line = (rows[:, :, None, None] * w + cols[None, None, :, :]) // per_elem
            ok = yok[:, :, None, None] & xok[None, None, :, :]
            for iy in range(S):
                for ix in range(S):
                    lines = line[:, iy, :, ix].reshape(-1)  # lanes = bins, row-major
                    live = ok[:, iy, :, ix].reshape(-1)
                    for lo in (0, 32):  # two warps cover 64 bin slots, 49 used
                        sel = live[lo : lo + 32]
                        counts["bins"] += len(np.unique(lines[lo : lo + 32][sel]))
                    n_live = int(live.sum())
                    counts["channels_nchw"] += n_live  # 32 channels, 32 lines: one per channel
                    counts["channels_cl"] += n_live / 32  # 32 channels share a line
                    # the TensorRT plugin's CUDA kernel: lanes = 32 consecutive (channel, bin) of
                    # one RoI, so a warp can straddle two channel planes; the pattern repeats
                    # every 32 channels (49 warps), counted per channel
                    flat = np.arange(32 * P * P)
                    key = np.where(np.tile(live, 32), (flat // (P * P)) * (1 << 40) + np.tile(lines, 32), -1)
                    for warp in key.reshape(-1, 32):
                        counts["plugin_cuda"] += len(np.unique(warp[warp >= 0])) / 32
            for py in range(P):  # sample lanes: a warp per bin row, lanes = (col, iy, ix)
                sel = ok[py].transpose(1, 0, 2).reshape(-1)  # (col, iy, ix) order
                lines = line[py].transpose(1, 0, 2).reshape(-1)[sel]
                counts["sample_lanes"] += len(np.unique(lines))
    return counts


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/roi_align_wavefront_model.json"))
    args = ap.parse_args()
    h, w, c = 1024, 2048, 256
    rois = rois_for(1000, h, w).numpy()
    levels = assign_levels(rois, 2, 5) - 2
    total = {k: 0.0 for k in TILES}
    for roi, lvl in zip(rois, levels, strict=True):
        for k, v in roi_wavefronts(roi, int(lvl), h >> (2 + lvl), w >> (2 + lvl)).items():
            total[k] += v * c
    v1_ms = 0.9396  # gpu_roi_align_h100_fp32_nchw_v1.json: channels across lanes, NCHW
    model = {
        "model": "L1 wavefronts (distinct 128-byte lines per warp load), scaled by the v1 time",
        "problem": "1000 RoIs, 256 channels, 4 levels of a 1024x2048 image, fp32, P 7, sampling 2",
        "calibration": {"tile": "channels_nchw", "measured_ms": v1_ms, "device": "NVIDIA H100 80GB HBM3"},
        "wavefronts": {k: round(v) for k, v in total.items()},
        "predicted_ms": {k: v1_ms * v / total["channels_nchw"] for k, v in total.items()},
        "note": "a floor from DRAM applies on top: compulsory bytes / copy bandwidth (about 0.07 ms)",
    }
    print(json.dumps(model, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(model, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
