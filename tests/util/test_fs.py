from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from edge.errors import ConfigError
from edge.util.fs import (
    atomic_path,
    atomic_torch_save,
    atomic_write_bytes,
    atomic_write_json,
    output_path_problem,
    require_writable,
    sha256_file,
)
from tests.conftest import strict_json


def test_failed_write_leaves_old_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "engine.bin"
    atomic_write_bytes(target, b"old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("crash mid-write")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["engine.bin"]


def test_json_written_is_strict_json(tmp_path: Path) -> None:
    """The manifest's writer: an SNR of outputs equal to torch's (inf) is null in the file,
    which a reader other than Python's (jq, a browser) takes; the rest as given."""
    import math

    import numpy as np

    from edge.verify import snr_db

    same = np.ones(4, np.float32)
    check = {"depth": {"snr_db": snr_db(same, same)}, "passed": True, "samples": [1.5, -math.inf]}
    assert math.isinf(check["depth"]["snr_db"])
    atomic_write_json(tmp_path / "m.json", check)
    got = strict_json((tmp_path / "m.json").read_text())
    assert got == {"depth": {"snr_db": None}, "passed": True, "samples": [1.5, None]}


def test_sha256(tmp_path: Path) -> None:
    p = tmp_path / "f"
    p.write_bytes(b"abc")
    assert sha256_file(p) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_torch_save_bytes_depend_only_on_the_content(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    state = {"w": torch.arange(6, dtype=torch.float32).reshape(2, 3), "n": torch.tensor(7)}
    atomic_torch_save(tmp_path / "a.pt", state)
    atomic_torch_save(tmp_path / "b" / "other_name.pt", {k: v.clone() for k, v in state.items()})
    # same bytes under another name and folder: a checkpoint's sha256 identifies its weights
    assert sha256_file(tmp_path / "a.pt") == sha256_file(tmp_path / "b" / "other_name.pt")
    loaded = torch.load(tmp_path / "a.pt")
    assert torch.equal(loaded["w"], state["w"]) and int(loaded["n"]) == 7
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pt", "b"]


def test_output_path_problem_names_what_is_in_the_way(tmp_path: Path) -> None:
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "a_dir").mkdir()
    assert output_path_problem(tmp_path / "new" / "deeper" / "out.json", folder=False) is None
    assert output_path_problem(tmp_path / "new" / "deeper", folder=True) is None
    assert output_path_problem(tmp_path / "a_dir", folder=True) is None
    assert output_path_problem(tmp_path / "a_file", folder=False) is None  # overwritten atomically
    assert output_path_problem(tmp_path / "a_file" / "out.json", folder=False) == (
        f"{str(tmp_path / 'a_file')!r} is a file, not a folder"
    )
    assert output_path_problem(tmp_path / "a_file" / "x" / "y", folder=True) == (
        f"{str(tmp_path / 'a_file')!r} is a file, not a folder"
    )
    assert output_path_problem(tmp_path / "a_file", folder=True) == (
        f"{str(tmp_path / 'a_file')!r} is a file, not a folder"
    )
    assert output_path_problem(tmp_path / "a_dir", folder=False) == (
        f"{str(tmp_path / 'a_dir')!r} is a folder; expected a file name"
    )
    # a name ending in '/' is a folder's, though none is there yet (Path would drop the '/')
    assert output_path_problem(f"{tmp_path}/new/", folder=False) == (
        f"'{tmp_path}/new/' names a folder (it ends in '/'); expected a file name"
    )
    assert output_path_problem(f"{tmp_path}/new/", folder=True) is None
    # a folder argument given a report's file name: refused while no such folder exists
    assert output_path_problem(tmp_path / "out" / "bench.md", folder=True) == (
        f"{str(tmp_path / 'out' / 'bench.md')!r} names a .md file; expected a folder for edge to write its "
        f"files in (e.g. {str(tmp_path / 'out' / 'bench')!r})"
    )
    assert output_path_problem(tmp_path / "run.v2", folder=True) is None  # a dotted name need not be a file
    (tmp_path / "report.md").write_text("x")
    assert output_path_problem(tmp_path / "report.md", folder=True) == (
        f"{str(tmp_path / 'report.md')!r} is a file, not a folder"
    )
    (tmp_path / "kept.json").mkdir()
    assert output_path_problem(tmp_path / "kept.json", folder=True) is None  # the user's own folder
    assert not list((tmp_path).glob("new")), "nothing is created by the check"
    assert not (tmp_path / "out").exists()


def test_output_path_problem_in_a_folder_without_write_permission(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("this user (root) may write anywhere: permissions cannot be tested")
        assert output_path_problem(locked / "out.mp4", folder=False) == (
            f"{str(locked)!r} is not writable by this user"
        )
    finally:
        locked.chmod(0o700)


def test_output_path_problem_on_a_read_only_filesystem_says_so(small_disk: Path) -> None:
    """Not "not writable by this user", which sends a user to the permissions: nobody may
    write there (a disk Linux remounted read-only after write errors)."""
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    try:
        assert output_path_problem(small_disk / "drives" / "drive.mkv", folder=False) == (
            f"{str(small_disk)!r} is on a read-only filesystem (mounted read-only, or made so by Linux "
            "after write errors, as from a failing SD card: see dmesg)"
        )
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)


def test_require_writable_names_the_output(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(
        ConfigError, match=r"^summary '.*/f/s.json' cannot be written: '.*/f' is a file, not a folder$"
    ):
        require_writable(tmp_path / "f" / "s.json", folder=False, what="summary")


def test_a_signal_as_the_temporary_file_is_made_leaves_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C the moment the hidden file exists, before the write knows its name (as a
    build interrupted at a file's start was, under load): it is still removed."""
    import signal
    import tempfile

    make = tempfile.mkstemp

    def then_interrupted(*args: object, **kwargs: object) -> tuple[int, str]:
        made = make(*args, **kwargs)  # type: ignore[call-overload]
        os.kill(os.getpid(), signal.SIGINT)  # a real signal, handled before this returns
        return made  # type: ignore[no-any-return]

    monkeypatch.setattr(tempfile, "mkstemp", then_interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_bytes(tmp_path / "out.bin", b"written")
    assert list(tmp_path.iterdir()) == [], "nothing is left, hidden or not"
