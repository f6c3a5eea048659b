"""The `edge` command: a thin layer over the Python API."""

from __future__ import annotations

import argparse
import platform
import sys
from collections.abc import Sequence

from edge.errors import EdgeError


def _cmd_models(_args: argparse.Namespace) -> int:
    from edge.models.zoo import get_entry, list_models

    for name in list_models():
        e = get_entry(name)
        print(f"{name:20s} {e.kind:9s} {e.description}")
    return 0


def _cmd_info(_args: argparse.Namespace) -> int:
    import importlib.metadata as md

    import edge
    from edge.backends import available_backends

    print(f"edge {edge.__version__}  python {platform.python_version()}  {platform.platform()}")
    for name, ok in available_backends().items():
        dist = {"onnxruntime": "onnxruntime", "tensorrt": "tensorrt", "torch": "torch"}[name]
        try:
            version = md.version(dist) if ok else "not installed"
        except md.PackageNotFoundError:
            version = "installed"
        print(f"  backend {name:12s} {version}")
    try:
        import onnxruntime

        print(f"  onnxruntime providers: {', '.join(onnxruntime.get_available_providers())}")
    except ImportError:
        pass
    try:
        import torch

        cuda = torch.cuda.is_available()
        gpu = torch.cuda.get_device_name(0) if cuda else "none"
        print(f"  torch threads: {torch.get_num_threads()}  CUDA: {cuda}  GPU: {gpu}")
    except ImportError:
        pass
    return 0


def _cmd_build(args: argparse.Namespace) -> int:
    from edge.cli_build import run_build

    return run_build(args)


def build_parser() -> argparse.ArgumentParser:
    from edge.cli_build import add_build_arguments

    parser = argparse.ArgumentParser(prog="edge", description="Edge perception runtime.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("build", help="build engines (same as build_engines.py)")
    add_build_arguments(p)
    p.set_defaults(func=_cmd_build)
    sub.add_parser("info", help="backends, versions and devices").set_defaults(func=_cmd_info)
    sub.add_parser("models", help="list the model zoo").set_defaults(func=_cmd_models)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except EdgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
