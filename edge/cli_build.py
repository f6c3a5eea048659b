"""Arguments and entry point shared by build_engines.py and `edge build`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from edge.build import BACKEND_PRECISIONS, DEFAULT_MODELS, BuildRequest, BuildResult, build_all, parse_size
from edge.cli_args import count, finite_number, output_file, output_folder, positive_int
from edge.errors import ConfigError


def add_build_arguments(p: argparse.ArgumentParser) -> None:
    from edge.stream.fit import FITS

    p.add_argument(
        "--models",
        nargs="+",
        default=list(DEFAULT_MODELS),
        metavar="NAME",
        help="zoo model names (see `edge models`); default: %(default)s",
    )
    p.add_argument(
        "--backend",
        default="onnxruntime",
        choices=sorted(BACKEND_PRECISIONS),
        help="engine backend; default: %(default)s",
    )
    p.add_argument(
        "--precision",
        default="fp32",
        choices=["fp32", "fp16", "int8"],
        help="engine precision; default: %(default)s",
    )
    p.add_argument(
        "--size",
        default="256x512",
        metavar="HxW",
        help="static input size, multiples of 32; default: %(default)s",
    )
    p.add_argument("--batch", type=positive_int, default=1, help="static batch size; default: %(default)s")
    p.add_argument(
        "--out",
        default="engines",
        type=output_folder,
        help="engines directory (artifacts + manifest.json); default: %(default)s",
    )
    p.add_argument(
        "--checkpoint",
        action="append",
        default=[],
        metavar="MODEL=PATH",
        help="weights for a model: an edge/torchvision/detectron2 .pth, or a monodepth2 "
        "folder with encoder.pth and depth.pth (repeatable); default: edge's bundled weights where it "
        "has them (edge/weights/), else seeded random ones",
    )
    p.add_argument("--opset", type=int, default=18, help="ONNX opset (>= 17); default: %(default)s")
    p.add_argument(
        "--calib-data",
        metavar="URI",
        help="--precision int8: source of calibration frames, sampled across all of it (a video, a "
        "folder or glob of drives' videos, cityscapes://DIR, a folder of images): frames of several "
        "drives calibrate best",
    )
    p.add_argument(
        "--calib-frames", type=positive_int, default=64, help="int8: calibration frames; default: %(default)s"
    )
    p.add_argument(
        "--calib-method",
        default="entropy",
        choices=["minmax", "percentile", "entropy"],
        help="int8: range statistic; default: %(default)s",
    )
    p.add_argument(
        "--calib-fit",
        choices=FITS,
        default="stretch",
        help="int8: calibration frames of another shape than the engines' go in as edge run --fit "
        "will put them: stretched, padded or cropped; default: %(default)s",
    )
    p.add_argument(
        "--int8-min-snr",
        type=finite_number,
        metavar="DB",
        help="int8: keep the most sensitive layers in float until the dense outputs keep this score "
        "(dB: SNR of semantic logits, -20 log10 of depth's mean relative error)",
    )
    p.add_argument(
        "--no-int8-equalize",
        action="store_true",
        help="int8: do not equalize convolution inputs whose channels differ wildly in range",
    )
    p.add_argument(
        "--no-int8-bias-correction",
        action="store_true",
        help="int8: do not shift convolutions' biases to keep the float model's mean outputs "
        "(by default they are, where that scores no worse on the held-out frames)",
    )
    p.add_argument("--force", action="store_true", help="rebuild even if nothing changed")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="build nothing: say for each engine whether the folder's build of it is up to date, or "
        "why it would be built (not built yet, its files changed, built with other tool versions or "
        "weights, edge's code changed); a TensorRT build of a panoptic model builds the RoIAlign "
        "plugin first where it is not built yet, as its library decides a rebuild too",
    )
    p.add_argument(
        "--verify-samples",
        type=count,
        default=2,
        metavar="N",
        help="sample inputs for the torch-vs-engine check (0 skips it); default: %(default)s",
    )
    p.add_argument(
        "--random-weights",
        action="store_true",
        help="ignore the weights bundled with edge (edge/weights/) and use seeded random ones",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    trt = p.add_argument_group("TensorRT (--backend tensorrt)")
    trt.add_argument(
        "--workspace-mb",
        type=positive_int,
        default=2048,
        help="builder workspace limit, MiB; default: %(default)s",
    )
    trt.add_argument(
        "--timing-cache",
        type=output_file,
        metavar="PATH",
        help="persisted timing cache: later builds reuse measured kernel choices (created if missing)",
    )
    trt.add_argument(
        "--dla-core",
        type=count,
        metavar="N",
        help="Jetson: build for DLA core N (TensorRT 10, or 11.4.1+ on AGX Orin)",
    )
    trt.add_argument(
        "--no-gpu-fallback",
        action="store_true",
        help="with --dla-core: fail instead of running a layer on the GPU",
    )
    trt.add_argument(
        "--version-compatible", action="store_true", help="runs on later TensorRT versions of the same major"
    )
    trt.add_argument(
        "--hardware-compatible", action="store_true", help="runs on any Ampere or newer GPU (not with DLA)"
    )
    trt.add_argument(
        "--plugin-lib",
        action="append",
        default=[],
        type=Path,
        metavar="PATH",
        help="TensorRT plugin library to load before parsing (repeatable)",
    )
    trt.add_argument(
        "--no-roi-align-plugin",
        action="store_true",
        help="panoptic models without --plugin-lib: export TensorRT's per-level RoiAlign instead of "
        "building edge's fused RoIAlign plugin (built once with nvcc where TensorRT's headers are)",
    )
    trt.add_argument(
        "--calib-cache",
        type=Path,
        metavar="PATH",
        help="--precision int8 on TensorRT 10: implicit INT8 from this calibration cache, no frames",
    )


def _checkpoints(items: Sequence[str], models: Sequence[str]) -> dict[str, Path]:
    out = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise ConfigError(f"--checkpoint {item!r} is not MODEL=PATH")
        if name not in models:
            raise ConfigError(f"--checkpoint names {name!r}, which is not among --models {list(models)}")
        out[name] = Path(path)
    return out


def roi_align_libraries(model: str, plugin: Path | None) -> tuple[Path, ...]:
    """``plugin`` (roi_align_plugin_for's) for a model that pools RoIs, nothing for another."""
    from edge.models.zoo import pools_rois

    return (plugin,) if plugin is not None and pools_rois(model) else ()


def default_roi_align_plugin(args: argparse.Namespace) -> Path | None:
    """roi_align_plugin_for the build's arguments."""
    return roi_align_plugin_for(
        backend=args.backend,
        models=args.models,
        given=args.plugin_lib,
        refused=getattr(args, "no_roi_align_plugin", False),
    )


def roi_align_plugin_for(
    *, backend: str, models: Sequence[str], given: Sequence[Path] = (), refused: bool = False
) -> Path | None:
    """The fused RoIAlign plugin for a TensorRT build of panoptic models not given a plugin
    library (built once with nvcc); None where it is not wanted or cannot be built here, which
    is said. edge build and edge bench's builds both ask this."""
    import importlib.util

    from edge.models.zoo import pools_rois

    wanted = (
        backend == "tensorrt"
        and not given
        and not refused
        and any(pools_rois(m) for m in models)
        # without TensorRT the build stops at once, saying how to install it
        and importlib.util.find_spec("tensorrt") is not None
    )
    if not wanted:
        return None
    from edge.backends.cuda_io import cuda_device
    from plugins.roi_align.tensorrt_library import default_plugin

    gpu = cuda_device()
    print(
        "RoIAlign plugin: looking for or building it (nvcc, a minute or two the first time)", file=sys.stderr
    )
    library, said = default_plugin(compute_capability=gpu["compute_capability"] if gpu else None)
    if library is None:
        print(
            f"note: the fused RoIAlign plugin is not used: {said}; the panoptic engines run TensorRT's "
            "per-level RoiAlign (--plugin-lib PATH gives one; --no-roi-align-plugin stops this note)",
            file=sys.stderr,
        )
    else:
        print(f"RoIAlign plugin: {library} ({said})", file=sys.stderr)
    return library


def requests_from_args(
    args: argparse.Namespace, *, roi_align_plugin: Path | None = None
) -> list[BuildRequest]:
    """The build requests the arguments make; ``roi_align_plugin`` (default_roi_align_plugin's)
    goes to the panoptic models' requests."""
    from edge.models.zoo import bundled_weights

    h, w = parse_size(args.size)
    ckpts = _checkpoints(args.checkpoint, args.models)
    if not getattr(args, "random_weights", False):
        for m in args.models:  # models without --checkpoint get edge's bundled weights, if any
            if m not in ckpts and (bundled := bundled_weights(m)) is not None:
                ckpts[m] = bundled
    return [
        BuildRequest(
            model=m,
            height=h,
            width=w,
            backend=args.backend,
            precision=args.precision,
            batch=args.batch,
            checkpoint=ckpts.get(m),
            opset=args.opset,
            calib_data=args.calib_data,
            calib_frames=args.calib_frames,
            calib_method=args.calib_method,
            calib_fit=args.calib_fit,
            int8_min_snr=args.int8_min_snr,
            int8_equalize=not args.no_int8_equalize,
            int8_bias_correction=not args.no_int8_bias_correction,
            workspace_mb=args.workspace_mb,
            timing_cache=args.timing_cache,
            dla_core=args.dla_core,
            gpu_fallback=not args.no_gpu_fallback,
            version_compatible=args.version_compatible,
            hardware_compatible=args.hardware_compatible,
            plugin_libraries=tuple(args.plugin_lib) + roi_align_libraries(m, roi_align_plugin),
            calib_cache=args.calib_cache,
        )
        for m in args.models
    ]


def random_weight_warnings(requests: Sequence[BuildRequest], *, asked: bool) -> list[str]:
    """A warning per model built with random weights without --random-weights asking for
    them: no --checkpoint, and none bundled with edge (the r18 and r50 models). Its engine
    times like a trained one and finds nothing, which a run would not say."""
    if asked:
        return []
    return [
        f"warning: {r.model} has no --checkpoint and edge bundles no weights for it: it is built with "
        f"random weights (seed {r.seed}), fine for timing but finding nothing; give --checkpoint "
        f"{r.model}=PATH, or --random-weights to mean it"
        for r in requests
        if r.checkpoint is None
    ]


def run_build(args: argparse.Namespace) -> int:
    requests = requests_from_args(args)
    for warning in random_weight_warnings(requests, asked=getattr(args, "random_weights", False)):
        print(warning, file=sys.stderr)
    for request in requests:  # bad input is said before minutes go on building the plugin
        request.validate()
    if (plugin := default_roi_align_plugin(args)) is not None:
        requests = requests_from_args(args, roi_align_plugin=plugin)
    if args.dry_run:
        from edge.build_plan import plan

        for request in requests:
            print(f"{request.engine_id}: {plan(request, args.out, force=args.force)}")
        return 0
    results = build_all(
        requests,
        args.out,
        force=args.force,
        verify_samples=args.verify_samples,
        show_progress=not args.quiet,
    )
    for r in results:
        print("\n".join(result_lines(r, args.out)))
    failed = sum(not r.passed for r in results)
    print(f"manifest: {args.out / 'manifest.json'}")
    if (hint := compare_hint(results, args.out)) is not None:
        print(hint)
    if failed:
        print(
            f"error: {failed} engine(s) disagree with the torch reference; see accuracy_check "
            "in the manifest",
            file=sys.stderr,
        )
        return 1
    return 0


def compare_hint(results: Sequence[BuildResult], out: Path) -> str | None:
    """After INT8 or FP16 engines, how to measure on one's own frames how far they moved from
    FP32 (edge compare), and where the folder has no FP32 build of them, how to make one."""
    from edge.manifest import Manifest

    lowered = [r.request for r in results if r.request.precision != "fp32"]
    if not lowered:
        return None
    first = lowered[0]
    built = Manifest.load(out).engines.values()
    size = f"{first.height}x{first.width}"
    missing = sorted(
        {
            q.model
            for q in lowered
            if not any(
                e.get("model") == q.model
                and e.get("backend") == q.backend
                and e.get("precision") == "fp32"
                and e["inputs"][0]["shape"][2:] == [q.height, q.width]
                for e in built
            )
        }
    )
    line = (
        f"how far they moved from FP32 on your own frames: edge compare FRAMES --engines {out} --backend "
        f"{first.backend} --size {size} --precision {first.precision} --reference-precision fp32"
    )
    if missing:
        line += f" (build the FP32 reference first: edge build --models {' '.join(missing)} --backend "
        line += f"{first.backend} --size {size} --out {out})"
    return line


def result_lines(r: BuildResult, out: Path) -> list[str]:
    """What a build says about one engine: its state and check, what the TensorRT build
    plan noted (DLA fallback, strong typing; when it was built now), an INT8 engine's
    score on its calibration's held-out frames, and lint counts."""
    from calib.api import held_out_line

    check = r.entry.get("accuracy_check")
    verdict = "not checked" if check is None else ("check passed" if check["passed"] else "CHECK FAILED")
    state = "built" if r.rebuilt else "up to date"
    donor = (r.entry.get("onnx") or {}).get("reused_from")
    if r.rebuilt and donor:
        state += f" (the ONNX export of {donor})"
    lines = [f"{r.request.engine_id}: {state}, {verdict} -> {out / r.entry['artifact']['path']}"]
    if r.rebuilt:
        lines += [f"  note: {note}" for note in r.entry.get("build_notes") or ()]
    if r.entry.get("calibration") and (held_out := held_out_line(r.entry["calibration"])):
        lines.append(f"  {held_out}")
    for target, lint in (r.entry.get("lint") or {}).items():
        if lint["errors"] or lint["warnings"]:
            lines.append(
                f"  TensorRT lint ({target}): {lint['errors']} errors, {lint['warnings']} warnings; "
                f"details: edge lint {out / r.entry['onnx']['path']} --target {target}"
            )
    return lines


DESCRIPTION = "Turn zoo models (+ checkpoints) into ONNX and engines, recorded in manifest.json."


def build_parser() -> argparse.ArgumentParser:
    """build_engines.py's arguments (`edge build` adds the same ones to its subcommand)."""
    parser = argparse.ArgumentParser(
        prog="build_engines.py",
        description=DESCRIPTION,
    )
    add_build_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from edge.cli import run_command

    return run_command(run_build, build_parser().parse_args(argv))
