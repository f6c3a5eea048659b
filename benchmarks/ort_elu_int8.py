"""INT8 depth engines on ONNX Runtime: each ELU that reads a DequantizeLinear left whole
(ONNX Runtime's Elu kernel) vs rewritten as Min/Exp/Sub/Max (``elu_as_exp``), on one
thread and on two.

Not a test: run it by hand on folders of built INT8 engines and commit the JSON it writes.

    python benchmarks/ort_elu_int8.py --engines out/int8_128x256 out/int8_256x512 \\
        --out benchmarks/results/ort_elu_int8_cpu.json

Each INT8 depth engine's Q/DQ model (``<id>.int8.onnx``) is optimised as the build does it
(``optimize_model``) and handed to ONNX Runtime as ``OnnxRuntimeEngine`` hands it
(``model_for_ort``): with those ELUs whole (as on more threads than one) and rewritten (as
on one, ``one_thread``); both variants run at each thread count, in one process on the same
frames. One thread: the sessions alternate run by run (no pool threads to spin between
them). Two threads: in blocks, each after a pause (``time_blocks``), as the pool threads of
the session that just ran spin and take the cores of the next. Reports the medians, their
ratio, and the largest difference of the depth maps relative to the largest depth.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_engines import alternate_sessions, speedup_row, time_blocks, write_speedup_report
from edge.backends.onnxruntime import model_for_ort, optimize_model, session_options
from edge.build_key import tool_versions
from edge.manifest import Manifest
from edge.platform_info import cpu_vector_extensions
from edge.util.ort import keep_offline, onnxruntime_module


def variants(qdq: Path) -> tuple[dict[str, bytes], int]:
    """The Q/DQ model ``qdq`` as the build optimises it for ONNX Runtime (optimize_model),
    then as OnnxRuntimeEngine hands it over (model_for_ort) on more threads than one, its
    ELUs after a DequantizeLinear whole, and on one, those rewritten; and how many were."""
    import tempfile

    import onnx

    with tempfile.TemporaryDirectory() as tmp:
        built = Path(tmp) / "built.ort.onnx"
        optimize_model(qdq, built, uint8_activations=True)
        models = {}
        for key, one_thread in (("elu", False), ("min_exp_max", True)):
            got = model_for_ort(built, one_thread=one_thread)
            models[key] = Path(got).read_bytes() if isinstance(got, str) else got
    rewritten = sum(n.op_type == "Elu" for n in onnx.load_from_string(models["elu"]).graph.node)
    return models, rewritten


def timed(
    models: dict[str, bytes],
    size: tuple[int, int],
    threads: int,
    repeats: int,
    each: Callable[[dict[str, np.ndarray]], None],
) -> dict[str, float]:
    """Median ms of each model on ``threads`` threads: alternating run by run on one
    (alternate_sessions), in blocks after a pause on more (blocks); ``each`` gets their depth
    maps of the same frame either way."""
    if threads == 1:
        return alternate_sessions(models, "depth", size, 1, repeats, each)
    return blocks(models, size, threads, repeats, each)


def blocks(
    models: dict[str, bytes],
    size: tuple[int, int],
    threads: int,
    repeats: int,
    each: Callable[[dict[str, np.ndarray]], None],
) -> dict[str, float]:
    """Median ms of each model on ``threads`` threads, timed in blocks (time_blocks); then
    ``each`` gets their depth maps of the frame timed."""
    from edge.verify import sample_images

    ort = onnxruntime_module()
    sessions = {
        k: ort.InferenceSession(
            m, session_options(intra_op_threads=threads), providers=["CPUExecutionProvider"]
        )
        for k, m in models.items()
    }
    feeds = {"image": sample_images(1, (1, 3, *size), seed=5)[0]}

    def run(session: Any) -> Callable[[dict], object]:
        return lambda f: session.run(["depth"], f)

    calls = {k: run(s) for k, s in sessions.items()}
    times = time_blocks(calls, feeds, repeats, block=5, settle_s=0.5)
    each({k: s.run(["depth"], feeds)[0] for k, s in sessions.items()})
    return {k: statistics.median(v) for k, v in times.items()}


def int8_depth_engines(folders: list[Path]) -> Iterator[tuple[dict[str, Any], tuple[int, int], Path]]:
    """Each ONNX Runtime INT8 depth engine of ``folders``: its manifest entry, input size and
    Q/DQ model (``<id>.int8.onnx``); one without that model beside it is said and left out."""
    for folder in folders:
        for entry in Manifest.load(folder).engines.values():
            if entry["kind"] != "depth" or entry["precision"] != "int8" or entry["backend"] != "onnxruntime":
                continue
            qdq = folder / f"{entry['id']}.int8.onnx"
            if not qdq.is_file():
                print(f"{entry['id']}: no Q/DQ model {qdq.name} beside it; left out", file=sys.stderr)
                continue
            height, width = entry["inputs"][0]["shape"][2:4]
            yield entry, (height, width), qdq


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--engines", type=Path, nargs="+", required=True, help="folders of built INT8 engines")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/ort_elu_int8_cpu.json"))
    args = ap.parse_args()
    keep_offline()
    rows: list[dict[str, Any]] = []
    for entry, size, qdq in int8_depth_engines(args.engines):
        models, rewritten = variants(qdq)
        worst = 0.0

        def compare(outs: dict[str, np.ndarray]) -> None:
            nonlocal worst
            diff = np.abs(outs["elu"].astype(np.float64) - outs["min_exp_max"]).max()
            worst = max(worst, float(diff / np.abs(outs["elu"]).max()))

        for threads in args.threads:
            med = timed(models, size, threads, args.repeats, compare)
            row = {**speedup_row(entry["model"], size, threads, rewritten, med), "depth_max_rel": worst}
            print(
                f"{entry['model']:12s} {row['size']:9s} threads {threads}: {med['elu']:7.2f} -> "
                f"{med['min_exp_max']:7.2f} ms  {row['speedup']:.3f}x  ({rewritten} ELUs; depth max rel "
                f"{worst:.1e})",
                flush=True,
            )
            rows.append(row)
    what = "INT8 depth engines, ONNX Runtime CPU: Elu after DequantizeLinear as is vs Min/Exp/Sub/Max"
    about = {"versions": tool_versions(), "vector_extensions": cpu_vector_extensions()}
    write_speedup_report(args.out, what, rows, **about)
    return 0


if __name__ == "__main__":
    sys.exit(main())
