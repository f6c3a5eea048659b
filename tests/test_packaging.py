"""What `pip install edge-perception` puts on a machine: the sdist and the wheel built from it, as
`python -m build` makes them (setuptools' PEP 517 hooks, offline), hold every file of the three
packages. The wheel once left out the TensorRT plugin's sources, which a TensorRT build on a
Jetson compiles, so an installed edge failed there with FileNotFoundError."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("edge", "plugins", "calib")
NOT_SHIPPED = shutil.ignore_patterns("__pycache__", "*.pyc", "build", "*.egg-info")


def _hook(hook: str, tree: Path, out: Path) -> Path:
    """Run setuptools' ``hook`` (build_sdist, build_wheel) in ``tree``; the file it wrote."""
    code = f"import sys; from setuptools import build_meta; print(build_meta.{hook}(sys.argv[1]))"
    proc = subprocess.run(
        [sys.executable, "-c", code, str(out)], cwd=tree, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    # a deprecation today is a build the newest setuptools refuses later (pip takes the newest):
    # project.license as a table had until 2027-02-18
    assert "SetuptoolsDeprecationWarning" not in proc.stderr, proc.stderr[-3000:]
    return out / proc.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, set[str]]:
    """(sdist, wheel, the packages' files): a copy of the source tree (the checkout stays as it
    was), its sdist, and the wheel built from the unpacked sdist."""
    pytest.importorskip(
        "setuptools", reason="setuptools builds the sdist and wheel (pip install -e '.[dev]')"
    )
    base = tmp_path_factory.mktemp("packaging")
    tree, out = base / "tree", base / "dist"
    out.mkdir()
    for name in PACKAGES:
        shutil.copytree(ROOT / name, tree / name, ignore=NOT_SHIPPED)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, tree / name)
    files = {
        p.relative_to(tree).as_posix() for name in PACKAGES for p in (tree / name).rglob("*") if p.is_file()
    }
    sdist = _hook("build_sdist", tree, out)
    with tarfile.open(sdist) as tar:
        # the safe filter where this Python has it (3.10.12 on)
        tar.extractall(base / "unpacked", **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    (unpacked,) = (base / "unpacked").iterdir()
    return sdist, _hook("build_wheel", unpacked, out), files


def test_the_sdist_and_the_wheel_hold_every_file_of_the_packages(built: tuple[Path, Path, set[str]]) -> None:
    sdist, wheel, files = built
    assert any(f.endswith(".cu") for f in files) and any(f.endswith(".pt") for f in files)
    with tarfile.open(sdist) as tar:
        top = tar.getnames()[0].split("/")[0]
        in_sdist = {n.removeprefix(f"{top}/") for n in tar.getnames() if tar.getmember(n).isfile()}
    assert sorted(files - in_sdist) == []
    with zipfile.ZipFile(wheel) as whl:
        in_wheel = {n for n in whl.namelist() if n.split("/")[0] in PACKAGES}
    assert sorted(files - in_wheel) == []
    assert sorted(in_wheel - files) == []  # nothing the source tree does not have


def test_an_installed_wheel_finds_its_plugin_sources_and_weights(
    built: tuple[Path, Path, set[str]], tmp_path: Path
) -> None:
    """The wheel unpacked (what pip does with a pure-Python wheel) and imported from elsewhere:
    the plugin's sources are there, byte for byte the checkout's, and so are the weights."""
    from edge.models.zoo import WEIGHTS_DIR
    from plugins.roi_align.tensorrt_library import kernels_digest

    site = tmp_path / "site-packages"
    with zipfile.ZipFile(built[1]) as whl:
        whl.extractall(site)
    code = (
        "import json, edge, plugins, calib\n"
        "from edge.models.zoo import WEIGHTS_DIR\n"
        "from plugins.roi_align.tensorrt_library import SRC, kernels_digest\n"
        "print(json.dumps({'modules': [m.__file__ for m in (edge, plugins, calib)], 'src': str(SRC),\n"
        "    'digest': kernels_digest(), 'weights': sorted(p.name for p in WEIGHTS_DIR.glob('*.pt'))}))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(site), "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    said = json.loads(proc.stdout.strip().splitlines()[-1])
    assert all(Path(m).is_relative_to(site) for m in said["modules"]), said["modules"]
    assert Path(said["src"]).is_relative_to(site)
    assert said["digest"] == kernels_digest()
    assert said["weights"] == sorted(p.name for p in WEIGHTS_DIR.glob("*.pt"))
