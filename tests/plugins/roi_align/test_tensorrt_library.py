"""The plugin library a TensorRT build of a panoptic model gets without --plugin-lib
(plugins/roi_align/tensorrt_library.py): built once with nvcc into edge's cache, named by what
went into it, the same kernels' digest as build.sh; where it cannot be built, why."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
from pathlib import Path

import pytest

from edge.cli_build import build_parser, default_roi_align_plugin, requests_from_args, roi_align_plugin_for
from edge.errors import BackendUnavailableError, BuildError
from plugins.roi_align import tensorrt_library as lib
from tests.plugins.roi_align.test_tensorrt_plugin import NVCC, SRC, TRT_INCLUDE


def test_kernels_digest_is_build_shs() -> None:
    script = (SRC / "build.sh").read_text()
    listed = re.search(r"digest=\$\(cat (.*?) \| sha256sum", script, re.S)
    assert listed is not None
    files = re.findall(r'"\$here"/([\w.]+)', listed.group(1))
    assert tuple(files) == lib.KERNEL_FILES  # the same files in the same order
    out = subprocess.run(
        ["bash", "-c", f"cd {SRC} && cat {' '.join(files)} | sha256sum | cut -c1-16"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert lib.kernels_digest() == out


def test_headers_are_found_where_told(tmp_path: Path) -> None:
    (tmp_path / "NvInfer.h").write_text("// stand-in\n")
    assert lib.tensorrt_include({"TENSORRT_INCLUDE": str(tmp_path)}) == tmp_path
    jetpack = Path("/usr/include/x86_64-linux-gnu/NvInfer.h")
    if not jetpack.is_file():
        assert lib.tensorrt_include({"TENSORRT_INCLUDE": str(tmp_path / "none")}) is None
        assert lib.tensorrt_include({}) is None


def test_why_it_is_not_built(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert lib.default_plugin(compute_capability=None) == (
        None,
        "no CUDA GPU is seen here (torch or cuda-python), so its architecture is unknown",
    )
    assert (
        lib.default_plugin(compute_capability="8.x")[1]
        == "the GPU's compute capability '8.x' is not MAJOR.MINOR"
    )
    if lib.tensorrt_include({}) is None:  # the real build, without TensorRT's headers
        monkeypatch.setenv("TENSORRT_INCLUDE", str(tmp_path))
        assert lib.default_plugin(compute_capability="8.7") == (
            None,
            "TensorRT's headers (NvInfer.h) were not found: set TENSORRT_INCLUDE to their folder",
        )
    with pytest.raises(
        BuildError, match=r"GPU architectures must be SM numbers such as 87 or 90, got \[12\]"
    ):
        lib.build_plugin_library([12], include=tmp_path, cache_dir=tmp_path)


def test_an_install_without_the_plugins_sources_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where TensorRT's headers are (a Jetson) but edge was installed without the plugin's
    sources, the build goes on without the plugin and says which files are missing where; it
    raised FileNotFoundError from the kernels' digest. A wheel ships them (test_packaging)."""
    from plugins.roi_align import cuda_kernel

    (tmp_path / "NvInfer.h").write_text("// stand-in\n")
    monkeypatch.setenv("TENSORRT_INCLUDE", str(tmp_path))
    gone = tmp_path / "site-packages" / "plugins" / "roi_align" / "tensorrt"
    monkeypatch.setattr(cuda_kernel, "SRC", gone)
    monkeypatch.setattr(lib, "SRC", gone)
    path, why = lib.default_plugin(compute_capability="8.7")
    assert path is None
    assert why == (
        f"the RoIAlign plugin cannot be built: {', '.join((*lib.PLUGIN_SOURCES, *lib.HEADERS))} not in "
        f"{str(gone)!r} (this install of edge lacks the plugin's sources; reinstall edge-perception, "
        "or pip install -e from a checkout)"
    )
    with pytest.raises(BackendUnavailableError, match=r"the RoIAlign CUDA kernel cannot be built: "):
        cuda_kernel.build_library([87], cache_dir=tmp_path)


def test_a_build_without_tensorrt_or_a_panoptic_model_asks_for_no_plugin(
    capsys: pytest.CaptureFixture[str],
) -> None:
    parse = build_parser().parse_args
    for argv in (
        ["--models", "panoptic_fpn_tiny"],  # ONNX Runtime
        ["--models", "depth_tiny", "--backend", "tensorrt"],  # no RoIAlign
        ["--models", "panoptic_fpn_tiny", "--backend", "tensorrt", "--no-roi-align-plugin"],
        ["--models", "panoptic_fpn_tiny", "--backend", "tensorrt", "--plugin-lib", "my.so"],
    ):
        assert default_roi_align_plugin(parse(argv)) is None, argv
    if importlib.util.find_spec("tensorrt") is None:  # the build stops at once, saying how to install it
        assert (
            default_roi_align_plugin(parse(["--models", "panoptic_fpn_tiny", "--backend", "tensorrt"]))
            is None
        )
        # edge bench's builds ask the same
        assert roi_align_plugin_for(backend="tensorrt", models=["panoptic_fpn_tiny", "depth_tiny"]) is None
    assert capsys.readouterr().err == ""
    # a library found goes to the panoptic models alone
    args = parse(["--models", "panoptic_fpn_tiny", "depth_tiny", "--backend", "tensorrt"])
    found = Path("libedge_roi_align_plugin-0123.so")
    requests = {r.model: r for r in requests_from_args(args, roi_align_plugin=found)}
    assert requests["panoptic_fpn_tiny"].plugin_libraries == (found,)
    assert requests["panoptic_fpn_tiny"].roi_align_form == "plugin"
    assert requests["depth_tiny"].plugin_libraries == ()


@pytest.mark.skipif(
    NVCC is None or TRT_INCLUDE is None,
    reason="needs nvcc and TensorRT's headers (set TENSORRT_INCLUDE to the folder with NvInfer.h)",
)
def test_the_library_is_built_once_and_kept(tmp_path: Path) -> None:
    assert TRT_INCLUDE is not None
    include = Path(TRT_INCLUDE)
    built = lib.build_plugin_library([80], include=include, cache_dir=tmp_path)
    assert built.parent == tmp_path and re.fullmatch(r"libedge_roi_align_plugin-[0-9a-f]{16}\.so", built.name)
    stamp = built.stat().st_mtime_ns
    assert lib.build_plugin_library([80], include=include, cache_dir=tmp_path) == built
    assert built.stat().st_mtime_ns == stamp  # found, not built again
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == [built.name]
    symbols = subprocess.run(["nm", "-D", str(built)], capture_output=True, text=True).stdout
    assert " T getCreators" in symbols and " T setLoggerFinder" in symbols
    assert lib.kernels_digest().encode() in built.read_bytes()
    # other architectures, or other headers, are another library
    nvcc = lib.find_nvcc()
    assert lib.library_path([87], include=include, nvcc=nvcc, cache_dir=tmp_path) != built
    other = tmp_path / "other_include"
    other.mkdir()
    (other / "NvInferVersion.h").write_text("#define NV_TENSORRT_MAJOR 99\n")
    assert lib.library_path([80], include=other, nvcc=nvcc, cache_dir=tmp_path) != built
    assert os.access(built, os.R_OK)
