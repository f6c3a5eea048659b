"""What edge's main job reaches outside its folder: network connections and files.

Runs the README's ``edge demo`` (builds the engines, runs the stream) in an empty folder
with a home of its own, under ``strace -f`` for connect(2) and sendto(2), and lists every
connection other than to local sockets, the names asked of DNS, and every file left in
that home. A control first: a plain ONNX Runtime session in another new home, kept alive
``--control-s`` seconds (ONNX Runtime's telemetry uploader of the PyPI builds for Linux
starts within about 10 s), shows what strace sees when something does reach out. Both run
without the variables that turn ONNX Runtime's telemetry off and without those of CI
services, which it also heeds. Needs strace.

    python benchmarks/offline_trial.py --out benchmarks/results/offline_cpu.json
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import write_runs  # noqa: E402
from tests.util.test_ort import SESSION, home_env, kept  # noqa: E402

CONNECT = re.compile(r"connect\(\d+, \{sa_family=(AF_\w+), (.*?)\}")
SENDTO = re.compile(r'sendto\(\d+, "((?:[^"\\]|\\.)*)"')


def dns_names(log: str) -> list[str]:
    """The names asked of a DNS server in strace's sendto lines (a query's name follows its
    12-byte header as length-prefixed labels)."""
    names: set[str] = set()
    for escaped in SENDTO.findall(log):
        payload = escaped.encode("latin-1").decode("unicode_escape").encode("latin-1")
        labels: list[str] = []
        at = 12
        while at < len(payload) and 0 < payload[at] < 64 and at + 1 + payload[at] <= len(payload):
            labels.append(payload[at + 1 : at + 1 + payload[at]].decode("ascii", "replace"))
            at += 1 + payload[at]
        if labels:
            names.add(".".join(labels))
    return sorted(names)


def traced(argv: list[str], *, home: Path, cwd: Path, log: Path) -> dict[str, Any]:
    """Run ``argv`` under strace; its exit status, the connections it made other than to
    local (AF_UNIX) sockets, and the files it left in ``home``."""
    done = subprocess.run(
        ["strace", "-f", "-qq", "-s", "512", "-e", "trace=connect,sendto", "-o", str(log), *argv],
        env=home_env(home),
        cwd=cwd,
        capture_output=True,
        text=True,
    )
    text = log.read_text()
    connections = [
        f"{family} {where}"
        for family, where in CONNECT.findall(text)
        if family not in ("AF_UNIX", "AF_NETLINK")
    ]
    return {
        "argv": [Path(argv[0]).name, *argv[1:]],
        "exit_status": done.returncode,
        "stderr_tail": done.stderr.splitlines()[-3:],
        "connections": connections,
        "dns_names_asked": dns_names(text) if connections else [],
        "files_in_home": kept(home),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--control-s", type=float, default=20.0, help="how long the control session lives")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/offline_cpu.json")
    args = ap.parse_args()
    if shutil.which("strace") is None:
        print("error: the trial needs strace (apt-get install strace)", file=sys.stderr)
        return 2
    from importlib import metadata

    edge = str(Path(sys.executable).parent / "edge")
    with tempfile.TemporaryDirectory(prefix="edge-offline-") as tmp:
        root = Path(tmp)
        control_code = f"import onnxruntime as ort, time\n{SESSION}\ntime.sleep({args.control_s})\n"
        control = traced(
            [sys.executable, "-c", control_code], home=root / "control-home", cwd=root, log=root / "c.log"
        )
        work = root / "work"
        work.mkdir()
        demo = traced([edge, "demo"], home=root / "demo-home", cwd=work, log=root / "d.log")
        demo["outputs"] = sorted(str(p.relative_to(work)) for p in work.rglob("*") if p.is_file())
    runs = [{"onnxruntime": metadata.version("onnxruntime"), "control": control, "edge_demo": demo}]
    for name, run in (("control", control), ("edge demo", demo)):
        print(f"{name}: exit {run['exit_status']}, {len(run['connections'])} connection(s)")
        for line in run["connections"][:5]:
            print(f"  {line}")
        print(f"  DNS names asked: {run['dns_names_asked'] or 'none'}")
        print(f"  files in its home: {run['files_in_home'] or 'none'}")
    write_runs(
        args.out,
        what="network connections and files in $HOME of the README's edge demo under strace, beside "
        "a plain ONNX Runtime session (the control), both without telemetry switches in their environment",
        runs=runs,
        baseline=None,
        control_s=args.control_s,
    )
    return 0 if demo["exit_status"] == 0 and not demo["connections"] and not demo["files_in_home"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
