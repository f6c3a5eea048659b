"""What the TensorRT runtime reads and writes: a device buffer and a pinned host buffer per
I/O tensor, one CUDA stream, CUDA events around the inference, and an optional CUDA graph.

Two ways to get them: torch's CUDA tensors where torch has CUDA (``TorchIO``), else NVIDIA's
cuda-python (``CudaPythonIO``, ``cuda.bindings.runtime``), so a TensorRT engine also runs
where torch is a CPU build or absent (a lean Jetson image). Either hands TensorRT device
addresses and a stream handle; ``run`` stages the inputs, calls ``enqueue`` (or replays the
captured graph) between the two events, and brings the outputs back.
"""

from __future__ import annotations

import contextlib
import ctypes
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from edge.backends.base import TensorSpec
from edge.errors import BackendError, BackendUnavailableError, ConfigError

CUDA_PYTHON_HINT = "pip install cuda-python (on JetPack 6, CUDA 12.6: pip install 'cuda-python>=12.6,<13')"
# what torch can stage; cuda-python takes any fixed-size dtype
TORCH_DTYPES = ("float32", "float16", "int32", "int64", "int8", "uint8", "bool")
IO_KINDS = ("auto", "torch", "cuda-python")


def device_index(device: str) -> int:
    """``cuda`` or ``cuda:N`` as the CUDA device's index."""
    head, _, tail = device.partition(":")
    if head == "cuda" and (not tail or tail.isdigit()):
        return int(tail or 0)
    raise ConfigError(f"device {device!r}: the TensorRT runtime takes cuda or cuda:N")


def nbytes(spec: TensorSpec) -> int:
    return math.prod(spec.shape) * np.dtype(spec.dtype).itemsize


def host_array(address: int, spec: TensorSpec) -> np.ndarray:
    """A NumPy array over ``spec``'s bytes at ``address`` (pinned host memory), no copy."""
    raw = (ctypes.c_byte * nbytes(spec)).from_address(address)
    return np.frombuffer(memoryview(raw).cast("B"), dtype=spec.dtype).reshape(spec.shape)


def _torch_cuda() -> Any:
    try:
        import torch
    except ImportError:
        return None
    return torch if torch.cuda.is_available() else None


def cuda_runtime() -> Any:
    """cuda-python's CUDA runtime module: ``cuda.bindings.runtime`` (12.6 and later), or the
    ``cuda.cudart`` of older 12.x releases."""
    try:
        from cuda.bindings import runtime

        return runtime
    except ImportError:
        pass
    try:
        from cuda import cudart

        return cudart
    except ImportError as exc:
        raise BackendUnavailableError(
            f"the TensorRT runtime needs CUDA buffers: a torch with CUDA, or cuda-python ({CUDA_PYTHON_HINT})"
        ) from exc


def cuda_device(index: int = 0) -> dict[str, str] | None:
    """The CUDA GPU ``index`` as {"name", "compute_capability": "M.m", "via": "torch" or
    "cuda-python"}: asked of torch where it has CUDA, else of cuda-python; None where neither
    sees one (no GPU, no driver, or neither installed)."""
    torch = _torch_cuda()
    if torch is not None:
        major, minor = torch.cuda.get_device_capability(index)
        return {
            "name": torch.cuda.get_device_name(index),
            "compute_capability": f"{major}.{minor}",
            "via": "torch",
        }
    try:
        props = cudart_call(cuda_runtime(), "cudaGetDeviceProperties", index)
    except BackendError:  # no cuda-python, no driver, no such GPU
        return None
    name = props.name
    if isinstance(name, bytes):
        name = name.split(b"\0", 1)[0].decode(errors="replace")
    return {"name": str(name), "compute_capability": f"{props.major}.{props.minor}", "via": "cuda-python"}


def cudart_call(rt: Any, name: str, *args: Any) -> Any:
    """``rt.name(*args)``'s value (cuda-python's runtime ``rt``); its error as BackendError
    (BackendUnavailableError where there is no usable GPU or driver), naming the call."""
    try:
        result = getattr(rt, name)(*args)
    except RuntimeError as exc:  # cuda-python 12.x raises where 13 returns an error
        raise BackendUnavailableError(f"CUDA: {name} failed: {exc} (is NVIDIA's driver installed?)") from exc
    err, values = result[0], result[1:]
    if err != rt.cudaError_t.cudaSuccess:
        _, text = rt.cudaGetErrorName(err)
        what = text.decode() if isinstance(text, bytes) else str(text)
        unusable = ("cudaErrorInsufficientDriver", "cudaErrorNoDevice", "cudaErrorInvalidDevice")
        cls = BackendUnavailableError if what in unusable else BackendError
        raise cls(f"CUDA: {name} failed with {what}")
    return values[0] if len(values) == 1 else (values or None)


def _uses_torch(kind: str) -> bool:
    if kind not in IO_KINDS:
        raise ConfigError(f"CUDA buffers {kind!r}: expected one of {', '.join(IO_KINDS)}")
    return kind == "torch" or (kind == "auto" and _torch_cuda() is not None)


def use_device(device: str = "cuda:0", *, kind: str = "auto") -> None:
    """Make ``device`` this thread's current CUDA device, through torch or cuda-python as
    ``kind`` says (open_io's choice): TensorRT makes an engine and its context on the current
    device, so an engine for another GPU than the first is deserialized after this."""
    index = device_index(device)
    if not _uses_torch(kind):
        cudart_call(cuda_runtime(), "cudaSetDevice", index)
        return
    torch = _torch_cuda()
    if torch is None:
        raise BackendUnavailableError(
            f"torch has no CUDA here; the TensorRT runtime can use cuda-python instead ({CUDA_PYTHON_HINT})"
        )
    torch.cuda.set_device(index)


def open_io(
    inputs: Sequence[TensorSpec], outputs: Sequence[TensorSpec], *, device: str = "cuda:0", kind: str = "auto"
) -> TorchIO | CudaPythonIO:
    """The buffers of an engine's tensors on ``device``; ``kind`` auto: torch's where it has
    CUDA, else cuda-python's."""
    index = device_index(device)
    if _uses_torch(kind):
        return TorchIO(inputs, outputs, index=index)
    return CudaPythonIO(inputs, outputs, index=index)


class TorchIO:
    """Buffers as torch CUDA tensors (TensorRT reads and writes them in place), pinned host
    staging, and torch's stream, events and CUDA graph."""

    def __init__(self, inputs: Sequence[TensorSpec], outputs: Sequence[TensorSpec], *, index: int) -> None:
        torch = _torch_cuda()
        if torch is None:
            raise BackendUnavailableError(
                "torch has no CUDA here; the TensorRT runtime can use cuda-python instead "
                f"({CUDA_PYTHON_HINT})"
            )
        self._torch = torch
        self.inputs, self.outputs = list(inputs), list(outputs)
        self._device = torch.device("cuda", index)
        self._stream = torch.cuda.Stream(self._device)
        self._dev: dict[str, Any] = {}
        self._host: dict[str, Any] = {}
        for spec in [*self.inputs, *self.outputs]:
            if spec.dtype not in TORCH_DTYPES:
                raise BackendError(f"tensor {spec.name!r} has dtype {spec.dtype}, which torch cannot stage")
            dtype = getattr(torch, spec.dtype)
            self._dev[spec.name] = torch.empty(spec.shape, dtype=dtype, device=self._device)
            self._host[spec.name] = torch.empty(spec.shape, dtype=dtype).pin_memory()
        self._graph: Any = None

    @property
    def stream_handle(self) -> int:
        return int(self._stream.cuda_stream)

    def address(self, name: str) -> int:
        return int(self._dev[name].data_ptr())

    def capture(self, enqueue: Callable[[], None]) -> None:
        """Capture ``enqueue`` once as a CUDA graph, which ``run`` then replays."""
        torch = self._torch
        # TensorRT does its lazy set-up on the first enqueue; that must not be captured
        with torch.cuda.stream(self._stream):
            enqueue()
        self._stream.synchronize()
        graph = torch.cuda.CUDAGraph()
        # thread-local capture, as trtexec's: another engine's thread may call CUDA meanwhile
        with torch.cuda.graph(graph, stream=self._stream, capture_error_mode="thread_local"):
            enqueue()
        self._graph = graph

    def run(
        self, feeds: Mapping[str, np.ndarray], enqueue: Callable[[], None]
    ) -> tuple[dict[str, np.ndarray], float]:
        torch = self._torch
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        with torch.cuda.stream(self._stream):
            for spec in self.inputs:
                self._host[spec.name].numpy()[...] = feeds[spec.name]
                self._dev[spec.name].copy_(self._host[spec.name], non_blocking=True)
            start.record(self._stream)
            if self._graph is not None:
                self._graph.replay()
            else:
                enqueue()
            end.record(self._stream)
            for spec in self.outputs:
                self._host[spec.name].copy_(self._dev[spec.name], non_blocking=True)
        self._stream.synchronize()
        out = {spec.name: self._host[spec.name].numpy().copy() for spec in self.outputs}
        return out, float(start.elapsed_time(end))

    def close(self) -> None:
        self._graph = None
        self._dev.clear()
        self._host.clear()


class CudaPythonIO:
    """Buffers from cudaMalloc and cudaMallocHost, a stream, two events and a CUDA graph,
    through cuda-python's runtime bindings: every call's error is checked and named."""

    def __init__(self, inputs: Sequence[TensorSpec], outputs: Sequence[TensorSpec], *, index: int) -> None:
        self._rt = cuda_runtime()
        self.inputs, self.outputs = list(inputs), list(outputs)
        self._dev: dict[str, int] = {}
        self._pinned: dict[str, int] = {}
        self._host: dict[str, np.ndarray] = {}
        self._nbytes: dict[str, int] = {}
        self._stream: Any = None
        self._events: list[Any] = []
        self._graph_exec: Any = None
        self._index = index
        try:
            self._call("cudaSetDevice", index)
            self._stream = self._call("cudaStreamCreate")
            self._events = [self._call("cudaEventCreate") for _ in range(2)]
            for spec in [*self.inputs, *self.outputs]:
                size = self._nbytes[spec.name] = nbytes(spec)
                self._dev[spec.name] = int(self._call("cudaMalloc", max(size, 1)))
                self._pinned[spec.name] = int(self._call("cudaMallocHost", max(size, 1)))
                self._host[spec.name] = host_array(self._pinned[spec.name], spec)
        except BaseException:
            self.close()  # what was allocated before the failure
            raise

    def _call(self, name: str, *args: Any) -> Any:
        return cudart_call(self._rt, name, *args)

    @property
    def stream_handle(self) -> int:
        return int(self._stream)

    def address(self, name: str) -> int:
        return self._dev[name]

    def capture(self, enqueue: Callable[[], None]) -> None:
        rt = self._rt
        self._call("cudaSetDevice", self._index)  # the current device is the calling thread's own
        enqueue()  # TensorRT's lazy set-up, outside the graph
        self._call("cudaStreamSynchronize", self._stream)
        mode = rt.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal  # as trtexec captures
        self._call("cudaStreamBeginCapture", self._stream, mode)
        try:
            enqueue()
        finally:
            graph = self._call("cudaStreamEndCapture", self._stream)
        try:
            self._graph_exec = self._call("cudaGraphInstantiate", graph, 0)
        finally:
            self._call("cudaGraphDestroy", graph)

    def run(
        self, feeds: Mapping[str, np.ndarray], enqueue: Callable[[], None]
    ) -> tuple[dict[str, np.ndarray], float]:
        kind = self._rt.cudaMemcpyKind
        start, end = self._events
        self._call("cudaSetDevice", self._index)  # a pipeline thread's current device may be another
        for spec in self.inputs:
            self._host[spec.name][...] = feeds[spec.name]
            self._copy(self._dev[spec.name], self._pinned[spec.name], spec.name, kind.cudaMemcpyHostToDevice)
        self._call("cudaEventRecord", start, self._stream)
        if self._graph_exec is not None:
            self._call("cudaGraphLaunch", self._graph_exec, self._stream)
        else:
            enqueue()
        self._call("cudaEventRecord", end, self._stream)
        for spec in self.outputs:
            self._copy(self._pinned[spec.name], self._dev[spec.name], spec.name, kind.cudaMemcpyDeviceToHost)
        self._call("cudaStreamSynchronize", self._stream)
        ms = self._call("cudaEventElapsedTime", start, end)
        return {spec.name: self._host[spec.name].copy() for spec in self.outputs}, float(ms)

    def _copy(self, dst: int, src: int, name: str, kind: Any) -> None:
        if self._nbytes[name]:
            self._call("cudaMemcpyAsync", dst, src, self._nbytes[name], kind, self._stream)

    def close(self) -> None:
        """Free everything; errors here are not raised (a context already torn down)."""
        rt = self._rt
        self._host.clear()  # the views go before the memory under them
        releases = [(rt.cudaGraphExecDestroy, self._graph_exec)] if self._graph_exec is not None else []
        releases += [(rt.cudaEventDestroy, e) for e in self._events]
        releases += [(rt.cudaFree, p) for p in self._dev.values()]
        releases += [(rt.cudaFreeHost, p) for p in self._pinned.values()]
        if self._stream is not None:
            releases.append((rt.cudaStreamDestroy, self._stream))
        for release, handle in releases:
            with contextlib.suppress(RuntimeError):  # cuda-python 12.x with the driver gone
                release(handle)
        self._graph_exec, self._events, self._stream = None, [], None
        self._dev.clear()
        self._pinned.clear()
