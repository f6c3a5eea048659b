"""edge.util.proc: /proc/PID/stat fields after a command name that may hold parentheses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from edge.util.proc import stat_fields, thread_states


def test_the_fields_begin_after_the_last_closing_parenthesis(tmp_path: Path) -> None:
    stat = tmp_path / "stat"
    # a command named "a) (b S 1" is written "(a) (b S 1)"; the state is the D after it
    stat.write_text("4242 (a) (b S 1) D 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 98765 0\n")
    fields = stat_fields(stat)
    assert fields[0] == "D"
    assert fields[19] == "98765"


def test_a_file_that_is_no_stat_line_is_an_index_error(tmp_path: Path) -> None:
    stat = tmp_path / "stat"
    stat.write_text("not a stat line\n")
    with pytest.raises(IndexError, match="holds no stat line"):
        stat_fields(stat)
    with pytest.raises(OSError):
        stat_fields(tmp_path / "missing")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux's /proc")
def test_a_real_process_whose_name_holds_parentheses_and_spaces(tmp_path: Path) -> None:
    """A real child renamed to ``x) (y`` (prctl PR_SET_NAME via /proc/self/comm): its state
    is read as running or sleeping and its start time as no earlier than this process's."""
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time; open('/proc/self/comm', 'w').write('x) (y'); print('named', flush=True); "
            "time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == "named\n"
        assert Path(f"/proc/{child.pid}/comm").read_text() == "x) (y\n"
        fields = stat_fields(f"/proc/{child.pid}/stat")
        assert fields[0] in ("R", "S")  # running on to its sleep, or in it
        assert int(fields[19]) >= int(stat_fields(f"/proc/{os.getpid()}/stat")[19])
        # its one thread, read the same way
        assert thread_states(child.pid) in (["R"], ["S"])
    finally:
        child.kill()
        child.wait()


def test_a_process_that_is_not_there_has_no_threads() -> None:
    assert thread_states(2**22 + 7) == []
    assert "R" in thread_states()  # this one, reading its own states, is running
