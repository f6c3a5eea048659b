"""The TensorRT plugin as TensorRT's builder sees it, where TensorRT's headers are
(``TENSORRT_INCLUDE``; its open-source repository's ``include/`` at a release tag will do):
its C++ compiled, its TensorRT-facing logic run by a harness without TensorRT's library
(plugin_without_tensorrt.cpp), its library built with nvcc; and an engine with it where
TensorRT is installed (marked, skipped here). The kernels' arithmetic: test_tensorrt_plugin.py."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
from pathlib import Path

import pytest

from plugins.roi_align import cuda_kernel
from tests.plugins.roi_align.test_tensorrt_plugin import GXX, NVCC, SRC, TRT_INCLUDE, boxes, pyramid


def _cuda_include() -> str | None:
    """A folder with the CUDA runtime's headers (cuda_runtime_api.h and what it includes)."""
    homes = [os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda"]
    homes += sorted(str(p) for p in Path("/usr/local").glob("cuda-*"))
    return next(
        (f"{h}/include" for h in homes if h and Path(h, "include", "crt", "host_defines.h").is_file()), None
    )


def test_plugin_source_compiles_against_tensorrt_headers() -> None:
    """The plugin's C++ (IPluginV3, its formats and fields) against TensorRT's headers, with g++
    and no nvcc: TENSORRT_INCLUDE may name the include folder of TensorRT's open-source
    repository at a release tag (10.3 is JetPack 6's)."""
    cuda = _cuda_include()
    if GXX is None or TRT_INCLUDE is None or cuda is None:
        pytest.skip("needs g++, TensorRT's headers (TENSORRT_INCLUDE) and the CUDA runtime's headers")
    result = subprocess.run(
        [
            *[
                GXX,
                "-std=c++17",
                "-fsyntax-only",
                "-Wall",
                "-Wextra",
                "-Werror",
                "-Wno-deprecated-declarations",
            ],
            *["-isystem", TRT_INCLUDE, "-isystem", cuda, str(SRC / "multilevel_roi_align_plugin.cpp")],
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]


def test_plugin_logic_without_tensorrts_library(tmp_path: Path) -> None:
    """The plugin as TensorRT's builder and runtime call it, with TensorRT's headers but not its
    library (plugin_without_tensorrt.cpp): fields as the ONNX parser passes them, their
    serialization, the formats offered per input (channel-last ones included) and what
    enqueue gives the kernel launcher for each, no GPU needed."""
    cuda = _cuda_include()
    if GXX is None or TRT_INCLUDE is None or cuda is None:
        pytest.skip("needs g++, TensorRT's headers (TENSORRT_INCLUDE) and the CUDA runtime's headers")
    exe = tmp_path / "plugin_without_tensorrt"
    build = subprocess.run(
        [
            *[GXX, "-std=c++17", "-O1", "-Wall", "-Wextra", "-Werror", "-Wno-deprecated-declarations"],
            *[
                "-isystem",
                TRT_INCLUDE,
                "-isystem",
                cuda,
                f"-I{SRC}",
                "-o",
                str(exe),
                '-DEDGE_KERNELS_DIGEST="0123abcd"',
            ],
            str(Path(__file__).with_name("plugin_without_tensorrt.cpp")),
        ],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    run = subprocess.run([str(exe)], capture_output=True, text=True)
    assert run.returncode == 0 and run.stdout.strip().endswith("failed: 0"), run.stdout
    assert int(run.stdout.split("checks: ")[1].split()[0]) >= 100


def test_plugin_library_builds_and_exports_its_creators(tmp_path: Path) -> None:
    if NVCC is None or TRT_INCLUDE is None:
        pytest.skip("needs nvcc and TensorRT's headers (set TENSORRT_INCLUDE to the folder with NvInfer.h)")
    lib = tmp_path / "libedge_roi_align_plugin.so"
    env = {**os.environ, "TENSORRT_INCLUDE": TRT_INCLUDE, "CUDA_ARCHS": "80", "OUT": str(lib)}
    result = subprocess.run(["bash", str(SRC / "build.sh")], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    symbols = subprocess.run(["nm", "-D", str(lib)], capture_output=True, text=True).stdout
    # what IPluginRegistry::loadLibrary looks up: the creators, and where to find TensorRT's logger
    assert " T getCreators" in symbols and " T setLoggerFinder" in symbols, symbols
    # the kernels' digest, for the timing-cache ID: the same sources give the same digest
    kernels = ("roi_align_kernel.cu", *cuda_kernel.HEADERS)  # build.sh's order
    digest = hashlib.sha256(b"".join((SRC / k).read_bytes() for k in kernels)).hexdigest()[:16]
    assert digest.encode() in lib.read_bytes()


@pytest.mark.tensorrt
@pytest.mark.skipif(
    importlib.util.find_spec("tensorrt") is None,
    reason="TensorRT is not installed (it cannot be installed in this workplace)",
)
def test_plugin_in_a_tensorrt_engine(tmp_path: Path) -> None:  # pragma: no cover - needs TensorRT
    import onnx
    import tensorrt as trt
    from onnx import TensorProto, helper

    from plugins.roi_align.onnx_export import DOMAIN, fused_node

    lib = tmp_path / "libedge_roi_align_plugin.so"
    subprocess.run(["bash", str(SRC / "build.sh")], env={**os.environ, "OUT": str(lib)}, check=True)
    feats, scales = pyramid(3, n=1)
    rois, _ = boxes(4, count=16)
    inputs = [
        helper.make_tensor_value_info("rois", TensorProto.FLOAT, list(rois.shape)),
        helper.make_tensor_value_info("batch", TensorProto.INT64, [rois.shape[0]]),
    ] + [
        helper.make_tensor_value_info(f"p{i}", TensorProto.FLOAT, list(f.shape)) for i, f in enumerate(feats)
    ]
    node = fused_node(
        [i.name for i in inputs],
        "y",
        output_size=7,
        spatial_scales=scales,
        sampling_ratio=2,
        aligned=True,
        min_level=2,
    )
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, [rois.shape[0], feats[0].shape[1], 7, 7])
    model = helper.make_model(
        helper.make_graph([node], "g", inputs, [out]),
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(DOMAIN, 1)],
    )
    onnx.save(model, tmp_path / "m.onnx")
    logger = trt.Logger(trt.Logger.WARNING)
    trt.get_plugin_registry().load_library(str(lib))
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    assert parser.parse_from_file(str(tmp_path / "m.onnx")), [
        str(parser.get_error(i)) for i in range(parser.num_errors)
    ]
    assert builder.build_serialized_network(network, builder.create_builder_config()) is not None
