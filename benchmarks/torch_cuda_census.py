"""What one forward of a model asks of a GPU in eager mode, counted on the CPU: the
operations that launch work, and those that make the host wait for the GPU (a result
whose size or value the next step needs: nonzero, item, equal, boolean indexing).

    python benchmarks/torch_cuda_census.py --out benchmarks/results/torch_cuda_census_cpu.json

On the H200 the torch backend's panoptic r18 took 26 ms of CUDA-event time a frame at
512x1024 and depth r18 10 ms (bench_torch_cuda_h200/), for models of a few milliseconds of
arithmetic: the host sets the pace. This counts what the host does. It runs the models on
the CPU with the CUDA programs of edge's own ops: the NMS op's CUDA kernel (matrix NMS,
plain torch operations) replaces its CPU one, and the RoIAlign op counts as the one Triton
launch it is on CUDA. Operations that only make a view (no kernel) are counted apart. A
GPU session times what these counts cost (torch.profiler on CUDA); the counts need none.
"""

from __future__ import annotations

import argparse
import collections
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine, write_result
from edge.build import parse_size
from edge.models.zoo import create_model

# operations whose result the host must see before it can go on: on CUDA each waits for
# the GPU to finish everything queued before it
SYNCING = {
    "aten.nonzero.default",
    "aten._local_scalar_dense.default",
    "aten.equal.default",
    "aten.is_nonzero.default",
    "aten.masked_select.default",
    "aten._unique2.default",
    "aten.unique_dim.default",
    "aten.repeat_interleave.Tensor",
}


# one launch on CUDA (the Triton kernel): its inner operations here are its CPU program
OPAQUE = {"edge.multilevel_roi_align.default"}


class Census(TorchDispatchMode):
    """Counts the operations dispatched; an OPAQUE op as one launch."""

    def __init__(self) -> None:
        super().__init__()
        self.launches: collections.Counter[str] = collections.Counter()
        self.views: collections.Counter[str] = collections.Counter()
        self.syncs: collections.Counter[str] = collections.Counter()
        self._inside = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        name = str(func)
        if self._inside:
            return func(*args, **(kwargs or {}))
        if name in OPAQUE:
            self.launches[name] += 1
            self._inside += 1
            try:
                return func(*args, **(kwargs or {}))
            finally:
                self._inside -= 1
        returns = func._schema.returns
        alias = returns[0].alias_info if returns else None
        if alias is not None and not alias.is_write:
            self.views[name] += 1
        else:
            self.launches[name] += 1
        if name in SYNCING or (name == "aten.index.Tensor" and _bool_index(args)):
            self.syncs[name if name in SYNCING else "aten.index.Tensor (boolean mask)"] += 1
        return func(*args, **(kwargs or {}))


def _bool_index(args: Any) -> bool:
    indices = args[1] if len(args) > 1 else ()
    return any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in indices or ())


def nms_as_on_cuda() -> None:
    """The models call the NMS op's CUDA program (plain torch operations) in this process,
    as a function: an op's inner calls are hidden from a dispatch mode."""
    from edge.models import detection, ops

    detection.nms_keep = ops._nms_keep_cuda


def census_of(model: torch.nn.Module, image: torch.Tensor) -> dict[str, Any]:
    """One forward of ``model`` on ``image``, counted."""
    with torch.inference_mode():
        model(image)  # once before: lazy set-up is not a frame's work
        counted = Census()
        with counted:
            out = model(image)
    kept = {k: list(v.shape) for k, v in out.items()} if isinstance(out, dict) else None
    return {
        "launches": sum(counted.launches.values()),
        "views": sum(counted.views.values()),
        "syncs": sum(counted.syncs.values()),
        "syncs_by_op": dict(counted.syncs.most_common()),
        "launches_by_op": dict(counted.launches.most_common(25)),
        "outputs": kept,
    }


def census(name: str, hw: tuple[int, int], seed: int, *, fold: bool = False) -> dict[str, Any]:
    """One forward of zoo model ``name`` (random weights) on a random picture, counted;
    ``fold``: its batch norms folded first, as a torch engine loads it."""
    from edge.models.layers import fold_frozen_batchnorm

    model = create_model(name, seed=0)
    if fold:
        fold_frozen_batchnorm(model)
    image = torch.from_numpy(np.random.default_rng(seed).uniform(0, 255, (1, 3, *hw)).astype("float32"))
    return {"model": name, "size": f"{hw[0]}x{hw[1]}", "folded": fold, **census_of(model, image)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=["panoptic_fpn_r18", "depth_r18", "panoptic_fpn_tiny"])
    ap.add_argument("--size", default="512x1024")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="frames (random pictures)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--fold", action="store_true", help="batch norms folded, as a torch engine loads them")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import plugins.roi_align.torch_op  # noqa: F401  (registers the RoIAlign op)

    nms_as_on_cuda()
    hw = parse_size(args.size)
    rows = []
    for name in args.models:
        for seed in args.seeds:
            row = census(name, hw, seed, fold=args.fold)
            rows.append({**row, "frame_seed": seed})
            print(name, seed, row["launches"], "launches", row["views"], "views", row["syncs"], "syncs")
    write_result(
        args.out,
        {
            "what": "operations one eager forward issues (launches), views, and host-GPU syncs, "
            "counted on the CPU with the CUDA programs of edge's NMS and RoIAlign ops; random weights",
            "command": " ".join(sys.argv),
            "machine": machine(),
            "torch": torch.__version__,
            "rows": rows,
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
