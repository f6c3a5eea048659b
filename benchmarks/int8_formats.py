"""INT8 on ONNX Runtime's CPU kernels: which models and which Q/DQ format get faster.

    python benchmarks/int8_formats.py --models depth_tiny depth_r18 panoptic_fpn_r18 \\
        --out benchmarks/results/int8_formats_cpu.json

For each model (random weights; speed only, accuracy is int8_report.py's job) it builds
the FP32 ONNX, quantizes it in several formats with ONNX Runtime's tooling (the same
calibration frames, MinMax), and times all variants alternating in one process, one
thread each (as the pipeline runs them). Formats:

- s8s8_conv: what calib/ writes: symmetric INT8 activations, per-channel INT8 weights,
  convolutions and matrix products only — the explicit quantization TensorRT needs.
- s8s8_conv_as_u8: the same model with activations stored as UINT8 (zero point 128, the
  same grid; calib.quantize.activations_to_uint8) — what edge's ONNX Runtime INT8 engine
  runs, since x86 ONNX Runtime fuses only UINT8 activations into integer convolutions.
- u8s8_conv: asymmetric UINT8 activations (what x86 VNNI kernels take natively); not
  valid for TensorRT.
- *_more: also Add, Mul, Concat, pooling, resampling and activations quantized.

The output SNR against FP32 is reported beside each time so a fast but broken variant
is visible.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from calib.data import load_frames
from calib.quantize import _Reader, activations_to_uint8
from edge.build import BuildRequest, build_all, parse_size

CONV = ["Conv", "ConvTranspose", "MatMul", "Gemm"]
MORE = [*CONV, "Add", "Mul", "Concat", "MaxPool", "Resize", "Relu", "Sigmoid"]


def variants() -> dict[str, dict[str, Any]]:
    from onnxruntime.quantization import QuantType

    return {
        "s8s8_conv": {"activation_type": QuantType.QInt8, "ops": CONV, "symmetric": True},
        "s8s8_conv_as_u8": {
            "activation_type": QuantType.QInt8,
            "ops": CONV,
            "symmetric": True,
            "uint8_storage": True,
        },
        "u8s8_conv": {"activation_type": QuantType.QUInt8, "ops": CONV, "symmetric": False},
        "s8s8_more": {"activation_type": QuantType.QInt8, "ops": MORE, "symmetric": True},
        "u8s8_more": {"activation_type": QuantType.QUInt8, "ops": MORE, "symmetric": False},
    }


def quantize(src: Path, out: Path, frames: list[np.ndarray], v: dict[str, Any]) -> None:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    quantize_static(
        str(src),
        str(out),
        _Reader(frames),
        quant_format=QuantFormat.QDQ,
        op_types_to_quantize=v["ops"],
        per_channel=True,
        activation_type=v["activation_type"],
        weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.MinMax,
        extra_options={"ActivationSymmetric": v["symmetric"], "WeightSymmetric": True},
    )
    if v.get("uint8_storage"):
        import onnx

        onnx.save(activations_to_uint8(onnx.load(str(out))), str(out))


def snr_db(ref: np.ndarray, got: np.ndarray) -> float:
    ref64 = ref.astype(np.float64)
    noise = ((ref64 - got) ** 2).mean()
    return float(10 * np.log10((ref64**2).mean() / noise)) if noise > 0 else float("inf")


def measure(model: str, size: str, work: Path, repeats: int) -> dict[str, Any]:
    from edge.util.ort import onnxruntime_module

    ort = onnxruntime_module()

    h, w = parse_size(size)
    (result,) = build_all(
        [BuildRequest(model=model, height=h, width=w)], work, show_progress=False, verify_samples=0
    )
    src = work / result.entry["onnx"]["path"]
    frames = load_frames(f"synthetic://?size={size}", frames=8, size=(h, w), seed=0).tensors
    paths = {"fp32": src}
    for name, v in variants().items():
        paths[name] = work / f"{model}_{name}.onnx"
        quantize(src, paths[name], frames, v)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sessions = {
        k: ort.InferenceSession(str(p), opts, providers=["CPUExecutionProvider"]) for k, p in paths.items()
    }
    x = frames[0]
    times: dict[str, list[float]] = {k: [] for k in sessions}
    for _ in range(repeats + 2):  # alternating, so drift hits every variant alike
        for k, s in sessions.items():
            t = time.perf_counter()
            s.run(None, {"image": x})
            times[k].append(time.perf_counter() - t)
    ref = sessions["fp32"].run(None, {"image": x})
    names = [o.name for o in sessions["fp32"].get_outputs()]
    dense = [i for i, r in enumerate(ref) if r.dtype.kind == "f" and r.ndim == 4]
    base = float(np.median(times["fp32"][2:]))
    out: dict[str, Any] = {}
    for k, s in sessions.items():
        med = float(np.median(times[k][2:]))
        got = s.run(None, {"image": x})
        out[k] = {
            "p50_ms": med * 1e3,
            "speedup": base / med,
            "snr_db": {names[i]: snr_db(ref[i], got[i]) for i in dense},
        }
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--models",
        nargs="+",
        default=["depth_tiny", "panoptic_fpn_tiny", "depth_small", "panoptic_fpn_small"],
    )
    ap.add_argument("--size", default="256x512")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--out", default="benchmarks/results/int8_formats_cpu.json")
    args = ap.parse_args()
    results: dict[str, Any] = {}
    for model in args.models:
        with tempfile.TemporaryDirectory(prefix="edge-int8-") as tmp:
            results[model] = measure(model, args.size, Path(tmp), args.repeats)
        row = "  ".join(f"{k} {v['speedup']:.2f}x" for k, v in results[model].items())
        print(f"{model} {args.size}: {row}", flush=True)
    doc = {
        "size": args.size,
        "threads_per_session": 1,
        "models": results,
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()},
        "command": " ".join(sys.argv),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(doc, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
