"""TensorRT's log: the process's one logger (as NVIDIA's samples keep one: TensorRT warns when
a builder or runtime is handed another logger than the first it was given). It prints
TensorRT's warnings and errors on standard error, as TensorRT's own Logger would, and keeps
its latest errors, for edge's own errors to quote: a build that fails, an engine that will
not load or a plugin library TensorRT will not take then says why in its one line, where a
service's journal or a bug report would otherwise hold "see the log above"."""

from __future__ import annotations

import contextlib
import functools
import sys
from collections import deque
from collections.abc import Iterator
from typing import Any

KEPT = 16  # the latest errors kept: a failing call logs a few


@functools.cache
def shared_logger(trt: Any) -> Any:
    """The logger every builder and runtime of ``trt`` (the tensorrt module) is given."""
    levels = trt.ILogger.Severity
    error = int(levels.ERROR)
    names = {int(levels.INTERNAL_ERROR): "internal error", error: "error", int(levels.WARNING): "warning"}

    class Logger(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.errors: deque[tuple[int, str]] = deque(maxlen=KEPT)  # (its number, message)
            self.count = 0  # errors logged so far

        def log(self, severity: Any, msg: str) -> None:
            level = int(severity)
            if level in names:
                print(f"TensorRT {names[level]}: {msg}", file=sys.stderr, flush=True)
            if level <= error:
                self.count += 1
                self.errors.append((self.count, msg))

    return Logger()


def mark(logger: Any) -> int:
    """Where the log stands now: ``said`` quotes what comes after."""
    return int(getattr(logger, "count", 0))


def said(logger: Any, since: int) -> str:
    """TensorRT's errors logged after ``since`` (a ``mark``), as the end of an error message:
    ": TensorRT said: ...", or a pointer to the log where it kept none."""
    errors = [msg for n, msg in getattr(logger, "errors", ()) if n > since]
    if not errors:
        return " (see the TensorRT log above)"
    return ": TensorRT said: " + "; ".join(errors)


@contextlib.contextmanager
def started(what: str, logger: Any, error: type[Exception]) -> Iterator[None]:
    """Around making TensorRT's builder or runtime: where TensorRT cannot make it, its bindings
    raise TypeError "pybind11::init(): factory function returned nullptr", after logging why
    (CUDA did not initialise: no GPU visible to the process, a driver older than TensorRT's
    CUDA, a container started without NVIDIA's runtime; or one of its libraries did not load).
    That is raised as ``error``, saying so; any other TypeError as it was."""
    since = mark(logger)
    try:
        yield
    except TypeError as exc:
        if "returned nullptr" not in str(exc):
            raise
        raise error(
            f"TensorRT could not make its {what}{said(logger, since)}. It needs CUDA to start: check that "
            "nvidia-smi (tegrastats on a Jetson) sees the GPU, that the driver is as new as the CUDA "
            "TensorRT was built for, and in a container that it was started with NVIDIA's runtime "
            "(docker run --runtime nvidia, or --gpus all)"
        ) from exc
