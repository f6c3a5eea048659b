"""INT8 depth engines on ONNX Runtime: each reflect Pad before a 3x3 convolution run on the
floats it was exported on vs moved past the equalization's Mul and the QuantizeLinear, onto
the INT8 values (``pads_on_int8``), on one thread and on two.

Not a test: run it by hand on folders of built INT8 engines and commit the JSON it writes.

    python benchmarks/ort_pad_int8.py --engines out/int8_128x256 out/int8_256x512 \\
        --out benchmarks/results/ort_pad_int8_cpu.json

Each INT8 depth engine's Q/DQ model (``<id>.int8.onnx``) is optimised as the build does it
(``optimize_model``), then handed to ONNX Runtime as ``OnnxRuntimeEngine`` hands it on that
many threads (``model_for_ort``), and as it did before ``pads_on_int8``: the same rewrites
but that one. Timed as ``ort_elu_int8.py`` times its pair (alternating runs on one thread,
blocks after a pause on two), in one process on the same frames. Reports the medians, their
ratio, and whether the depth maps are the same to the bit.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_engines import speedup_row, write_speedup_report
from benchmarks.ort_elu_int8 import int8_depth_engines, timed
from edge.backends.onnxruntime import (
    argmax_channels_last,
    elu_as_exp,
    model_for_ort,
    optimize_model,
    pads_on_int8,
)
from edge.build_key import tool_versions
from edge.platform_info import cpu_vector_extensions
from edge.util.ort import keep_offline


def variants(qdq: Path, threads: int) -> tuple[dict[str, bytes], int]:
    """The Q/DQ model ``qdq`` built for ONNX Runtime, then as handed to it on ``threads``
    threads without and with its Pads moved; and how many moves were made."""
    import onnx

    with tempfile.TemporaryDirectory() as tmp:
        built = Path(tmp) / "built.ort.onnx"
        optimize_model(qdq, built, uint8_activations=True)
        before = onnx.load(str(built))
        argmax_channels_last(before)
        elu_as_exp(before, after_dequantize=threads == 1)
        moved = pads_on_int8(onnx.load_from_string(before.SerializeToString()))
        after = model_for_ort(built, one_thread=threads == 1)
    now = Path(after).read_bytes() if isinstance(after, str) else after
    return {"pad_float": before.SerializeToString(), "pad_int8": now}, moved


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--engines", type=Path, nargs="+", required=True, help="folders of built INT8 engines")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/ort_pad_int8_cpu.json"))
    args = ap.parse_args()
    keep_offline()
    rows: list[dict[str, Any]] = []
    for entry, size, qdq in int8_depth_engines(args.engines):
        for threads in args.threads:
            models, moved = variants(qdq, threads)
            same = True

            def compare(outs: dict[str, np.ndarray]) -> None:
                nonlocal same
                same = same and np.array_equal(outs["pad_float"], outs["pad_int8"])

            med = timed(models, size, threads, args.repeats, compare)
            row = {**speedup_row(entry["model"], size, threads, moved, med), "depth_identical": same}
            print(
                f"{entry['model']:12s} {row['size']:9s} threads {threads}: {med['pad_float']:7.2f} -> "
                f"{med['pad_int8']:7.2f} ms  {row['speedup']:.3f}x  ({moved} moves; depth identical: "
                f"{same})",
                flush=True,
            )
            rows.append(row)
    what = "INT8 depth engines, ONNX Runtime CPU: reflect Pads on float vs moved onto INT8 (pads_on_int8)"
    about = {"versions": tool_versions(), "vector_extensions": cpu_vector_extensions()}
    write_speedup_report(args.out, what, rows, **about)
    return 0


if __name__ == "__main__":
    sys.exit(main())
