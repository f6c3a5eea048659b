"""The TensorRT runtime's CUDA buffers (edge.backends.cuda_io). Here, without a GPU: the device
names, the host arrays over raw memory, every cuda-python call checked against the real
module, and the error a machine without a driver gives. On a GPU (marked ``gpu``): both kinds
of buffers carry an inference's bytes, its events time it, and a captured graph replays it."""

from __future__ import annotations

import ast
import ctypes
import importlib.util

import numpy as np
import pytest

from edge.backends import cuda_io
from edge.backends.base import TensorSpec
from edge.backends.cuda_io import device_index, host_array, open_io, use_device
from edge.errors import BackendError, BackendUnavailableError, ConfigError
from tests.conftest import ROOT

HAS_CUDA_PYTHON = importlib.util.find_spec("cuda.bindings") is not None


def _torch_cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


needs_cuda_python = pytest.mark.skipif(not HAS_CUDA_PYTHON, reason="cuda-python is not installed")


def test_device_names() -> None:
    assert [device_index(d) for d in ("cuda", "cuda:0", "cuda:3")] == [0, 0, 3]
    for bad in ("cpu", "cuda:x", "gpu:0", "cuda:-1"):
        with pytest.raises(ConfigError, match=rf"device '{bad}': the TensorRT runtime takes cuda or cuda:N"):
            device_index(bad)
    with pytest.raises(ConfigError, match="CUDA buffers 'cupy': expected one of auto, torch, cuda-python"):
        open_io([], [], kind="cupy")


@pytest.mark.parametrize("dtype", ["float32", "float16", "int32", "int64", "uint8", "bool"])
def test_host_arrays_are_views_of_the_memory(dtype: str) -> None:
    spec = TensorSpec("x", (2, 3, 5), dtype)
    size = 30 * np.dtype(dtype).itemsize
    memory = (ctypes.c_byte * size)()
    view = host_array(ctypes.addressof(memory), spec)
    assert view.shape == (2, 3, 5) and view.dtype == np.dtype(dtype)
    values = (np.arange(30) % 2 if dtype == "bool" else np.arange(30)).astype(dtype).reshape(2, 3, 5)
    view[...] = values
    assert bytes(memory) == values.tobytes()  # written through to the memory, no copy
    assert host_array(ctypes.addressof(memory), TensorSpec("e", (0, 4), dtype)).shape == (0, 4)


def _cuda_python_calls() -> set[str]:
    """The cudart functions cuda_io.py calls: by name through _call, or as rt.NAME."""
    tree = ast.parse((ROOT / "edge/backends/cuda_io.py").read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "_call":
            first = node.args[0]
            assert isinstance(first, ast.Constant), ast.unparse(node)  # names stay literal, checkable
            names.add(first.value)
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "rt"
            and node.attr.startswith("cuda")
        ):
            names.add(node.attr)
    return names


@needs_cuda_python
def test_every_cuda_python_call_exists() -> None:
    runtime = cuda_io.cuda_runtime()
    calls = _cuda_python_calls()
    assert {
        "cudaMalloc",
        "cudaMemcpyAsync",
        "cudaEventElapsedTime",
        "cudaGraphLaunch",
        "cudaFreeHost",
    } <= calls
    assert sorted(n for n in calls if not callable(getattr(runtime, n, None))) == []
    # the enum members it passes
    assert runtime.cudaMemcpyKind.cudaMemcpyHostToDevice and runtime.cudaMemcpyKind.cudaMemcpyDeviceToHost
    assert runtime.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal is not None
    assert runtime.cudaError_t.cudaSuccess == 0


def test_torch_graph_capture_takes_the_thread_local_mode() -> None:
    """TorchIO captures with ``capture_error_mode="thread_local"`` (trtexec's mode: another
    engine's thread may call CUDA meanwhile); torch's graph context takes it (2.1 and later)."""
    import inspect

    import torch

    assert 'capture_error_mode="thread_local"' in (ROOT / "edge/backends/cuda_io.py").read_text()
    assert "capture_error_mode" in inspect.signature(torch.cuda.graph.__init__).parameters


def _is_rt(node: ast.expr) -> bool:
    return isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "rt"


def _cuda_python_arguments() -> list[tuple[int, str, int]]:
    """(line, function, how many arguments) of each cudart call cuda_io.py makes: through
    ``self._call("NAME", ...)`` or ``cudart_call(rt, "NAME", ...)``, as ``rt.NAME(...)``, and
    the ``(rt.NAME, handle)`` pairs its close() calls with their one handle."""
    tree = ast.parse((ROOT / "edge/backends/cuda_io.py").read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Tuple) and len(node.elts) == 2 and _is_rt(node.elts[0]):
            found.append((node.lineno, node.elts[0].attr, 1))  # type: ignore[attr-defined]
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if _is_rt(func):
            name, rest = ast.Constant(func.attr), node.args  # type: ignore[attr-defined]
        elif isinstance(func, ast.Attribute) and func.attr == "_call":
            name, rest = node.args[0], node.args[1:]
        elif isinstance(func, ast.Name) and func.id == "cudart_call":
            name, rest = node.args[1], node.args[2:]
        else:
            continue
        if not isinstance(name, ast.Constant):
            continue  # the wrappers passing on a name they were given
        assert not node.keywords and not any(isinstance(a, ast.Starred) for a in rest), ast.unparse(node)
        found.append((node.lineno, name.value, len(rest)))
    return found


@needs_cuda_python
def test_every_cuda_python_call_passes_what_its_function_takes() -> None:
    """Each call's arguments bound to the installed cuda-python function's own signature: a
    CUDA runtime call given one argument too many or too few fails here, not on a Jetson."""
    import inspect

    runtime = cuda_io.cuda_runtime()
    calls = _cuda_python_arguments()
    assert len(calls) >= 15
    wrong = []
    for line, name, count in calls:
        signature = inspect.signature(getattr(runtime, name))
        try:
            signature.bind(*range(count))
        except TypeError as exc:
            wrong.append(f"line {line}: {name} given {count} argument(s), takes {signature}: {exc}")
    assert not wrong, "\n".join(wrong)


@needs_cuda_python
@pytest.mark.skipif(_torch_cuda(), reason="this machine has a CUDA GPU")
def test_without_a_gpu_cuda_python_says_so() -> None:
    spec = TensorSpec("image", (1, 3, 4, 4), "float32")
    with pytest.raises(BackendUnavailableError, match=r"CUDA: cudaSetDevice failed with cudaError"):
        open_io([spec], [spec], kind="cuda-python")
    with pytest.raises(BackendUnavailableError, match="torch has no CUDA here; .* cuda-python"):
        open_io([spec], [spec], kind="torch")
    # auto falls through to cuda-python, which names the missing driver
    with pytest.raises(BackendUnavailableError, match="cudaSetDevice failed"):
        open_io([spec], [spec])
    # making the engine's GPU current (before TensorRT deserializes onto it) fails alike,
    # before any engine is read
    with pytest.raises(BackendUnavailableError, match=r"CUDA: cudaSetDevice failed with cudaError"):
        use_device("cuda:1", kind="cuda-python")
    with pytest.raises(BackendUnavailableError, match="torch has no CUDA here; .* cuda-python"):
        use_device("cuda:0", kind="torch")
    with pytest.raises(BackendUnavailableError, match="cudaSetDevice failed"):
        use_device()
    with pytest.raises(ConfigError, match="CUDA buffers 'cupy'"):
        use_device(kind="cupy")


def test_without_cuda_python_the_hint_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_cuda(name: str, *args: object, **kwargs: object) -> object:
        if name == "cuda" or name.startswith("cuda."):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_cuda)
    with pytest.raises(
        BackendUnavailableError, match="a torch with CUDA, or cuda-python .pip install cuda-python"
    ):
        cuda_io.cuda_runtime()


def _copy_engine(io: cuda_io.TorchIO | cuda_io.CudaPythonIO, specs: list[TensorSpec]):  # type: ignore[no-untyped-def]
    """An 'engine' whose inference copies each input to the output of the same place, on the
    buffers' stream, as TensorRT's enqueue would."""
    pairs = [
        (i.name, o.name) for i, o in zip(specs[: len(specs) // 2], specs[len(specs) // 2 :], strict=True)
    ]
    if isinstance(io, cuda_io.CudaPythonIO):
        rt = cuda_io.cuda_runtime()

        def enqueue() -> None:
            for src, dst in pairs:
                nbytes = io._nbytes[src]
                io._call(
                    "cudaMemcpyAsync",
                    io.address(dst),
                    io.address(src),
                    nbytes,
                    rt.cudaMemcpyKind.cudaMemcpyDeviceToDevice,
                    io._stream,
                )

        return enqueue
    import torch

    def enqueue_torch() -> None:
        with torch.cuda.stream(io._stream):
            for src, dst in pairs:
                io._dev[dst].copy_(io._dev[src])

    return enqueue_torch


@pytest.mark.gpu
@pytest.mark.parametrize("kind", ["torch", "cuda-python"])
@pytest.mark.parametrize("graph", [False, True])
def test_buffers_carry_an_inference_on_a_gpu(kind: str, graph: bool) -> None:
    if not _torch_cuda():
        pytest.skip("needs a CUDA GPU")
    if kind == "cuda-python" and not HAS_CUDA_PYTHON:
        pytest.skip("cuda-python is not installed")
    inputs = [TensorSpec("image", (1, 3, 64, 128), "float32"), TensorSpec("ids", (7,), "int32")]
    outputs = [TensorSpec("out", (1, 3, 64, 128), "float32"), TensorSpec("ids_out", (7,), "int32")]
    import torch

    use_device("cuda:0", kind=kind)  # as TensorRTEngine does before deserializing
    assert torch.cuda.current_device() == 0
    io = open_io(inputs, outputs, kind=kind)
    try:
        enqueue = _copy_engine(io, [*inputs, *outputs])
        if graph:
            io.capture(enqueue)
        rng = np.random.default_rng(0)
        for _ in range(3):  # the same buffers, new values each time
            feeds = {
                "image": rng.random((1, 3, 64, 128), np.float32),
                "ids": rng.integers(0, 9, 7).astype(np.int32),
            }
            out, ms = io.run(
                feeds, enqueue if not graph else lambda: pytest.fail("the graph replays instead")
            )
            np.testing.assert_array_equal(out["out"], feeds["image"])
            np.testing.assert_array_equal(out["ids_out"], feeds["ids"])
            assert ms >= 0.0
    finally:
        io.close()
    io.close()  # twice is harmless


@pytest.mark.gpu
@needs_cuda_python
def test_a_failing_cuda_call_is_named_on_a_gpu() -> None:
    if not _torch_cuda():
        pytest.skip("needs a CUDA GPU")
    with pytest.raises(BackendError, match="CUDA: cudaSetDevice failed with cudaErrorInvalidDevice"):
        open_io([], [], device="cuda:99", kind="cuda-python")


@pytest.mark.skipif(_torch_cuda(), reason="this machine has a CUDA GPU")
def test_no_gpu_is_seen_here() -> None:
    """What edge run --backend auto, the engines' compatibility check and edge info ask."""
    from edge.compat import current_machine
    from edge.stream.engines import _cuda_here

    assert cuda_io.cuda_device() is None and _cuda_here() is None
    machine = current_machine("tensorrt")
    assert "gpu" not in machine and "compute_capability" not in machine


@pytest.mark.gpu
@needs_cuda_python
def test_cuda_python_sees_the_gpu_torch_sees(monkeypatch: pytest.MonkeyPatch) -> None:
    if not _torch_cuda():
        pytest.skip("needs a CUDA GPU")
    by_torch = cuda_io.cuda_device()
    monkeypatch.setattr(cuda_io, "_torch_cuda", lambda: None)  # as beside a CPU-only torch
    by_cuda_python = cuda_io.cuda_device()
    assert by_torch is not None and by_torch["via"] == "torch"
    assert by_cuda_python is not None and by_cuda_python["via"] == "cuda-python"
    assert by_cuda_python["name"] == by_torch["name"]
    assert by_cuda_python["compute_capability"] == by_torch["compute_capability"]


class _Cuda12WithoutDriver:
    """cuda-python 12.6's runtime on a machine without NVIDIA's driver, as 12.6.2 behaves
    there (13.x, which the tests install, returns cudaErrorInsufficientDriver instead): every
    call raises RuntimeError("Failed to dlopen libcuda.so.1")."""

    class cudaError_t:  # cuda-python's name
        cudaSuccess = 0

    def __getattr__(self, name: str) -> object:
        def call(*args: object) -> object:
            raise RuntimeError("Failed to dlopen libcuda.so.1")

        return call


def test_cuda_python_12_without_a_driver_is_no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cuda_io, "cuda_runtime", _Cuda12WithoutDriver)
    monkeypatch.setattr(cuda_io, "_torch_cuda", lambda: None)
    assert cuda_io.cuda_device() is None  # edge run --backend auto goes on without a GPU
    spec = TensorSpec("image", (1, 3, 4, 4), "float32")
    with pytest.raises(
        BackendUnavailableError,
        match=r"CUDA: cudaSetDevice failed: Failed to dlopen libcuda.so.1 \(is NVIDIA's driver installed\?\)",
    ):
        open_io([spec], [spec], kind="cuda-python")
