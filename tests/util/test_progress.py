"""edge.util.progress: a bar drawn in place on a terminal, a line every so often off one."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.conftest import ROOT, OnTerminal

# ten steps of 0.1 s, a line every 0.25 s off a terminal; "closed" once the bar is closed and
# its logging thread gone, then 0.6 s more in which a thread left running would print again
SCRIPT = textwrap.dedent(
    """
    import sys, threading, time
    from edge.util.progress import progress_bar

    bar = progress_bar(total=10, desc="work", unit="step", log_every_s=0.25, enabled=sys.argv[1] == "on")
    for step in range(10):
        time.sleep(0.1)
        bar.update(1)
        bar.set_postfix({"loss": f"{1 / (step + 1):.2f}"}, refresh=False)
    bar.close()
    names = [t.name for t in threading.enumerate()]
    print("closed", "edge-status-log" in names, file=sys.stderr, flush=True)
    time.sleep(0.6)
    """
)


def _script(tmp_path: Path) -> list[str]:
    path = tmp_path / "bar.py"
    path.write_text(SCRIPT)
    return [sys.executable, str(path)]


def _off_terminal(cmd: list[str]) -> str:
    """Standard error, a pipe, of ``cmd`` run to its end."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # bytes: text mode would turn the carriage returns looked for into newlines
    done = subprocess.run(cmd, env=env, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stderr.decode()


def test_off_a_terminal_the_bar_is_a_line_every_so_often(tmp_path: Path) -> None:
    err = _off_terminal([*_script(tmp_path), "on"])
    assert "\r" not in err, "no bar redrawn in place: a log gets whole lines"
    before, closed, after = err.partition("closed False\n")
    assert closed and not after, f"the logging thread ended with the bar, and said nothing after: {err!r}"
    lines = before.splitlines()
    assert len(lines) >= 2, err
    counts = []
    for line in lines:
        # stamped with the time, then the bar's own text: count, rate and postfix
        found = re.fullmatch(
            r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d work: +\d+% (\d+)/10 \[.*step/s, loss=[\d.]+\]", line
        )
        assert found, line
        counts.append(int(found.group(1)))
    assert counts == sorted(counts) and counts[-1] > counts[0], counts


def test_on_a_terminal_the_bar_is_drawn_in_place(tmp_path: Path) -> None:
    with OnTerminal([*_script(tmp_path), "on"]) as run:
        code, _, err = run.finish()
    assert code == 0, err
    assert "\r" in err.replace("\r\n", "") and "10/10" in err
    assert not re.search(r"^\d{4}-\d\d-\d\d ", err, re.M), "no logged lines on a terminal"


def test_quiet_draws_nothing_anywhere(tmp_path: Path) -> None:
    assert _off_terminal([*_script(tmp_path), "off"]) == "closed False\n"
    with OnTerminal([*_script(tmp_path), "off"]) as run:
        code, _, err = run.finish()
    assert code == 0 and err == "closed False\r\n"


def test_a_command_off_a_terminal_writes_whole_lines(tmp_path: Path) -> None:
    """Before, edge make-synthetic (like bench, train and calibrate) drew its bar into a log
    too: carriage returns, one line of every redraw."""

    def cmd(out: str) -> list[str]:
        args = ["make-synthetic", "--out", str(tmp_path / out), "--sequences", "1", "--frames", "4"]
        return [sys.executable, "-m", "edge.cli", *args, "--size", "64x128", "--gt-every", "2"]

    err = _off_terminal(cmd("piped"))
    assert "\r" not in err
    with OnTerminal(cmd("shown")) as run:
        code, out, err = run.finish()
    assert code == 0 and "wrote 4 frames" in out, err
    assert "synthetic val: 100%" in err and "4/4" in err  # the bar, on a terminal
