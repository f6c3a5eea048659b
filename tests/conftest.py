from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pty
import signal
import struct
import subprocess
import termios
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from edge.build import BuildRequest, build_all
from edge.models import create_model
from edge.util.ort import keep_offline
from tests.disks import DiskUnavailable, ext4_on_loop, in_group, throttled

TEST_SIZE = (128, 256)
# the ONNX IR version of the models tests make by hand: onnx 1.23 writes its own newest (14)
# by default, which ONNX Runtime 1.23 (IR 11, the newest for Python 3.10) refuses
IR_VERSION = 10
ROOT = Path(__file__).resolve().parents[1]

# the tests, and the processes they start, send ONNX Runtime's telemetry nowhere and keep no
# device id of it (tests/util/test_ort.py starts its own without this)
keep_offline()

# Without a GPU, Triton kernels run under Triton's CPU interpreter. Triton reads this when it
# is first imported, so it is set here, before any test imports it.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")


@pytest.fixture(scope="session", autouse=True)
def _interruptible_children() -> None:
    """Tests send SIGINT to the `edge` and build_engines.py processes they start.

    A shell script that starts pytest in the background makes it ignore SIGINT, children
    inherit that, and an `edge run` that ignores SIGINT (as it should: that is how a
    background job asks not to be stopped by Ctrl-C) never stops. With a handler here the
    children start with SIGINT's default instead, however pytest was started.
    """
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def stop_process(proc: subprocess.Popen[str]) -> None:
    """Kill a test's child process if it is still running, so a failed test leaves none."""
    if proc.poll() is None:
        proc.kill()
        proc.communicate()


def wait_for(proc: subprocess.Popen[str], ready: Callable[[], bool], *, timeout: float = 120) -> None:
    """Poll until ``ready()`` holds while ``proc`` runs; fail with its output if it ends first
    or ``timeout`` seconds pass (killed first: its output is read only once it has ended)."""
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None or time.monotonic() > deadline:
            ended = proc.poll() is not None
            if not ended:
                proc.kill()
            out, err = proc.communicate()
            why = "it ended" if ended else f"{timeout:g} s passed"
            pytest.fail(f"{why} before it was ready: {(out or '')[-2000:]}{(err or '')[-4000:]}")
        time.sleep(0.01)


def signal_when(
    cmd: list[str],
    ready: Callable[[], bool],
    *,
    sig: int = signal.SIGINT,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> tuple[int, str, str]:
    """Run ``cmd`` (PYTHONPATH: this checkout), send ``sig`` once ``ready()`` holds, and
    return (exit status, stdout, stderr). The process is killed if the test fails first."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(proc, ready, timeout=timeout)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=timeout)
    finally:
        stop_process(proc)
    return proc.returncode, out, err


class OnTerminal:
    """``cmd`` (PYTHONPATH: this checkout) with its standard error on a terminal (a pty), as
    a user's is, and standard output a pipe; a thread reads what it draws on the terminal
    (the terminal shows ``\n`` as ``\r\n``). Killed on leaving, if still running."""

    def __init__(self, cmd: list[str], *, cwd: Path | None = None) -> None:
        main_fd, terminal_fd = pty.openpty()
        # a new pty is 0 columns wide, where tqdm draws nothing: give it a terminal's size
        fcntl.ioctl(terminal_fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        try:
            self.proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=terminal_fd)
        finally:
            os.close(terminal_fd)
        self._fd = main_fd
        self._seen: list[bytes] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self._fd, 4096)
            except OSError:  # EIO: the process and its children closed the terminal
                break
            if not chunk:
                break
            self._seen.append(chunk)

    @property
    def stderr(self) -> str:
        return b"".join(self._seen).decode(errors="replace")

    def wait_for(self, ready: Callable[[str], bool], *, timeout: float = 120) -> None:
        """Until ``ready(stderr so far)``; fail with it if the process ends or time runs out."""
        deadline = time.monotonic() + timeout
        while not ready(self.stderr):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                why = "it ended" if self.proc.poll() is not None else f"{timeout:g} s passed"
                pytest.fail(f"{why} before it was ready: {self.stderr[-4000:]}")
            time.sleep(0.01)

    def finish(self, *, timeout: float = 60) -> tuple[int, str, str]:
        """(exit status, stdout, stderr) once it has ended."""
        out, _ = self.proc.communicate(timeout=timeout)
        self._reader.join(timeout=10)
        return self.proc.returncode, out.decode(), self.stderr

    def __enter__(self) -> OnTerminal:
        return self

    def __exit__(self, *exc: object) -> None:
        stop_process(self.proc)  # type: ignore[arg-type]
        self._reader.join(timeout=10)
        os.close(self._fd)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 1 MiB filesystem (tmpfs) to fill; skips where mounting one is not allowed (a
    user without CAP_SYS_ADMIN). Unmounted after the test, whatever it left there."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"mounting a 1 MiB tmpfs to fill was refused: {mounted.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=True)


def fill_disk(disk: Path, leave: int = 0) -> Path:
    """Write a file on ``disk`` until no more than ``leave`` bytes are free (the way another
    program would fill it); its path."""
    import shutil

    filler = disk / "filler.bin"
    with open(filler, "ab", buffering=0) as fh:
        while (free := shutil.disk_usage(disk).free) > leave:
            try:
                fh.write(b"\0" * min(free - leave, 1 << 16))
            except OSError:  # the last page is gone
                break
    return filler


class FailingDisk:
    """A real ext4 filesystem (``path``) on a loop device whose sparse image lies on a small
    tmpfs: once ``fail()`` fills that tmpfs, the disk fails every write back (EIO), as a
    failing SD card does, while its filesystem goes on accepting writes into the kernel's
    cache and saying it has room."""

    def __init__(self, root: Path) -> None:
        self.back, self.path = root / "back", root / "disk"

    def fail(self) -> None:
        fill_disk(self.back)

    def abort(self) -> None:
        """Make ext4 give up on the disk now, as it does after write errors: every write is
        then refused with EROFS, while the mount still has no read-only flag."""
        step = ["mount", "-o", "remount,abort", str(self.path)]
        done = subprocess.run(step, capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"ext4 here cannot be made to give up: {' '.join(step)}: {done.stderr.strip()}")


@contextlib.contextmanager
def _disk_or_skip(what: str) -> Iterator[None]:
    """Skips the test, saying why, where ``what`` cannot be made (tests.disks)."""
    try:
        yield
    except DiskUnavailable as exc:
        pytest.skip(f"{what} could not be made: {exc}")


@pytest.fixture
def failing_disk(tmp_path: Path) -> Iterator[FailingDisk]:
    """A FailingDisk of 64 MiB (skipped where one cannot be made). Taken apart after the test."""
    disk = FailingDisk(tmp_path)
    disk.back.mkdir()
    disk.path.mkdir()
    with _disk_or_skip("a failing disk"), ext4_on_loop(disk.back / "disk.img", disk.path, on_tmpfs=True):
        yield disk


class SlowDisk:
    """A real ext4 filesystem (``path``) on a loop device that stores no more than
    ``bytes_per_s`` for the processes in its blkio cgroup, as a slow SD card: writes go into
    the kernel's cache as fast as ever, and a flush waits for the disk."""

    def __init__(self, path: Path, group: Path, bytes_per_s: int) -> None:
        self.path, self.group, self.bytes_per_s = path, group, bytes_per_s

    def command(self, argv: list[str]) -> list[str]:
        """``argv`` run in the disk's cgroup: what it writes there is stored that slowly."""
        return in_group(self.group, argv)


@pytest.fixture
def slow_disk(tmp_path: Path) -> Iterator[SlowDisk]:
    """A SlowDisk of 64 MiB storing 128 KiB/s; skips where cgroup v1's blkio controller is
    not mounted (a cgroup v2 system) or a loop device cannot be made. Taken apart after."""
    path = tmp_path / "disk"
    path.mkdir()
    rate = 128 << 10
    name = f"edge-test-{os.getpid()}-{tmp_path.name}"
    with (
        _disk_or_skip("a slow disk"),
        ext4_on_loop(tmp_path / "disk.img", path) as loop,
        throttled(loop, rate, name) as group,
    ):
        yield SlowDisk(path, group, rate)


def source_images(uri: str) -> list[np.ndarray]:
    """Every frame's picture that the source ``uri`` gives, in order."""
    from edge.stream.sources import open_source

    src = open_source(uri)
    images = []
    while (frame := src.read()) is not None:
        images.append(frame.image)
    src.close()
    return images


def informative_model(name: str, seed: int = 0) -> torch.nn.Module:
    """A zoo model whose random heads give well-separated scores (no near-ties)."""
    model = create_model(name, seed=seed)
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        if hasattr(model, "roi_heads"):
            w = model.roi_heads.box_predictor.cls_score.weight
            w.copy_(torch.randn(w.shape, generator=gen) * 0.3)
            o = model.rpn.head.cls_logits.weight
            o.copy_(torch.randn(o.shape, generator=gen) * 0.3)
    return model


def strict_json(text: str) -> Any:
    """``text`` read as JSON (RFC 8259) is: Python's reader takes NaN and Infinity, which
    other programs' refuse, so here they fail the test."""

    def refuse(name: str) -> None:
        raise AssertionError(f"{name} in JSON written for other programs: no JSON (RFC 8259) number")

    return json.loads(text, parse_constant=refuse)


def engines_of_kind(engines: Path, kind: str, folder: Path) -> Path:
    """A copy of ``engines`` at ``folder`` whose manifest lists its ``kind`` engine alone
    ("panoptic" or "depth"): a folder a run finds one engine in."""
    import shutil

    shutil.copytree(engines, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["engines"] = {k: e for k, e in manifest["engines"].items() if e["kind"] == kind}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def _listing(folder: Path) -> list[tuple[str, int, int]]:
    return sorted(
        (p.relative_to(folder).as_posix(), p.stat().st_size, p.stat().st_mtime_ns)
        for p in folder.rglob("*")
        if p.is_file()
    )


def made_once(
    tmp_path_factory: pytest.TempPathFactory, name: str, make: Callable[[Path], None]
) -> Iterator[Path]:
    """A folder ``make`` fills, once for the whole run: under pytest-xdist the first worker
    to ask makes it where the run's workers share a folder and the others wait for it (each
    had built the same engines, about 45 s of CPU). The tests only read it: one that changed
    it would race the other worker, so a change fails the run at its end."""
    if os.environ.get("PYTEST_XDIST_WORKER") is None:
        out = tmp_path_factory.mktemp(name)
        make(out)
        yield out
        return
    shared = tmp_path_factory.getbasetemp().parent  # this run's, beside each worker's own
    out, done = shared / name, shared / f"{name}.done"
    with open(shared / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, or its worker dies
        if not done.exists():
            if out.exists():  # a worker that died while making it
                import shutil

                shutil.rmtree(out)
            out.mkdir()
            make(out)
            done.write_text(json.dumps(_listing(out)))
    made = [tuple(row) for row in json.loads(done.read_text())]
    yield out
    if _listing(out) != made:
        raise AssertionError(f"a test changed the shared folder {out}: copy it first (shutil.copytree)")


@pytest.fixture(scope="session")
def tiny_engines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Real tiny engines built once per run with the real build pipeline."""
    reqs = [
        BuildRequest(model=m, height=TEST_SIZE[0], width=TEST_SIZE[1])
        for m in ("panoptic_fpn_tiny", "depth_tiny")
    ]
    yield from made_once(tmp_path_factory, "engines", lambda out: build_all(reqs, out, show_progress=False))


@pytest.fixture(scope="session")
def panoptic_exports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """informative_model("panoptic_fpn_tiny") exported at TEST_SIZE, once per run in each
    RoIAlign form ("standard", "plugin"), each file alone in its folder. The export, pass
    and parity tests read the same model. An export takes ~20 s on 2 cores, so the standard
    form is the plugin export expanded, which is what export_onnx does for it (the same
    bytes); the engines built by ``tiny_engines`` go through export_onnx's own standard path."""
    files = {
        "plugin": Path("plugin", "panoptic_fpn_tiny_plugin.onnx"),
        "standard": Path("standard", "panoptic_fpn_tiny_standard.onnx"),
    }

    def make(out: Path) -> None:
        import onnx

        from edge.export import export_onnx
        from plugins.roi_align.passes import expand

        metadata = {"edge.model": "panoptic_fpn_tiny"}
        for path in files.values():
            (out / path).parent.mkdir()
        plugin = export_onnx(
            informative_model("panoptic_fpn_tiny"),
            out / files["plugin"],
            height=TEST_SIZE[0],
            width=TEST_SIZE[1],
            metadata=metadata,
            roi_align="plugin",
        )
        proto = expand(onnx.load(str(plugin)))
        for key, value in metadata.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.save_model(proto, str(out / files["standard"]))

    for out in made_once(tmp_path_factory, "panoptic_exports", make):
        yield {form: out / path for form, path in files.items()}


def demo_requests(height: int, width: int) -> list[BuildRequest]:
    """What ``edge demo`` builds (its models, the bundled weights), at ``height`` x ``width``."""
    from edge.build import DEFAULT_MODELS
    from edge.models.zoo import bundled_weights

    return [
        BuildRequest(model=m, height=height, width=width, checkpoint=bundled_weights(m))
        for m in DEFAULT_MODELS
    ]


@pytest.fixture(scope="session")
def demo_engines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Tiny engines with the bundled demo weights, so frames hold instances (random weights
    find none)."""
    reqs = demo_requests(*TEST_SIZE)
    yield from made_once(
        tmp_path_factory, "demo_engines", lambda out: build_all(reqs, out, show_progress=False)
    )


@pytest.fixture(scope="session")
def demo_full_engines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The engines ``edge demo`` builds (its models and size, the bundled weights), once per
    run: the demo's test starts from them and the tests of full-size frames read them."""
    from edge.build import DEFAULT_SIZE

    reqs = demo_requests(*DEFAULT_SIZE)
    yield from made_once(
        tmp_path_factory, "demo_full_engines", lambda out: build_all(reqs, out, show_progress=False)
    )


def skip_where_onnxruntime_cannot_quantize(model: Path) -> None:
    """Skip a test that quantizes ``model`` where the installed ONNX Runtime's quantizer cannot
    (calib.quantize.check_quantizer: 1.19 on the panoptic models), with its reason."""
    import onnx

    from calib.quantize import check_quantizer
    from edge.errors import DependencyError

    try:
        check_quantizer(onnx.load(str(model), load_external_data=False), model)
    except DependencyError as exc:
        pytest.skip(str(exc))
