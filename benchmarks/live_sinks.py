"""What the Foxglove outputs cost a run: the same drive through the bundled tiny engines
(ONNX Runtime, 256x512) as fast as they take it, into ``null://`` (nothing), ``drive.mcap``
(every picture, the boxes, objects, 3D scene and warnings in a file), ``foxglove://`` with nobody
connected (only the objects line is made a frame), and ``foxglove://`` with a client
subscribed to every channel as it is advertised (a real WebSocket client on 127.0.0.1,
reading on a thread of its own, as Foxglove would).

Each case runs ``--frames`` frames through the Python API (edge.stream.pipeline.Pipeline),
the cases interleaved ``--rounds`` times; reported per case: the median fps and mean post
stage (fusion, tracks, drawing), and the fps as a ratio to ``null://`` measured in the same
round (this machine's speed drifts between runs).

    python benchmarks/live_sinks.py --out benchmarks/results/live_sinks_cpu.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import build_bundled, write_runs  # noqa: E402

CASES = ("null", "mcap", "foxglove_unwatched", "foxglove_watched")


class Watcher:
    """A Foxglove client subscribing to every channel as it is advertised, on its own thread."""

    def __init__(self, url: str) -> None:
        self.url, self.messages, self.bytes = url, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self._thread.start()

    async def _run(self) -> None:
        from aiohttp import ClientSession, WSMsgType

        from edge.viewer.foxglove import SUBPROTOCOL

        async with ClientSession() as session, session.ws_connect(self.url, protocols=[SUBPROTOCOL]) as ws:
            subs = 0
            while not self._stop.is_set():
                try:
                    msg = await ws.receive(timeout=0.2)
                except (TimeoutError, asyncio.TimeoutError):  # one class from 3.11 on
                    continue
                if msg.type == WSMsgType.TEXT:
                    text = json.loads(msg.data)
                    if text["op"] == "advertise" and text["channels"]:
                        channels = text["channels"]
                        wanted = [{"id": subs + i, "channelId": c["id"]} for i, c in enumerate(channels)]
                        subs += len(wanted)
                        await ws.send_str(json.dumps({"op": "subscribe", "subscriptions": wanted}))
                elif msg.type == WSMsgType.BINARY:
                    self.messages += 1
                    self.bytes += len(msg.data)
                else:
                    return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def one_run(case: str, engines: Path, frames: int, work: Path) -> dict[str, Any]:
    from edge.stream.engines import EngineSet
    from edge.stream.pipeline import Pipeline
    from edge.stream.sinks import open_sink
    from edge.stream.sources import open_source

    uri = {"null": "null://", "mcap": str(work / f"drive-{time.time_ns()}.mcap")}.get(
        case, "foxglove://127.0.0.1:0"
    )
    sink: Any = open_sink(uri)
    watcher = Watcher(sink.url) if case == "foxglove_watched" else None
    if case == "mcap":
        sink.match_engines(("panoptic", "depth"))
    engines_set = EngineSet.from_manifest(engines)
    try:
        source = open_source(f"synthetic://?size=256x512&frames={frames}&seed=0")
        pipe = Pipeline(source=source, engines=engines_set, sinks=[sink])
        t0 = time.perf_counter()
        pipe.run()
        wall = time.perf_counter() - t0
    finally:
        engines_set.close()
        if watcher is not None:
            watcher.stop()
    summary = pipe.tracker.summary()
    row: dict[str, Any] = {
        "case": case,
        "frames_out": summary["frames_out"],
        "fps": round(summary["frames_out"] / wall, 2),
        "post_ms_mean": summary["stages_ms"].get("postprocess", {}).get("mean"),
        "sink_ms_mean": summary["stages_ms"].get("sink", {}).get("mean"),
    }
    if case == "mcap":
        row["file_bytes"] = Path(uri).stat().st_size
    if watcher is not None:
        row["client_messages"], row["client_bytes"] = watcher.messages, watcher.bytes
        row["frames_sent"], row["frames_missed"] = sink.server.frames_sent, sink.server.frames_missed
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=68)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="edge-live-sinks-") as tmp:
        work = Path(tmp)
        build_bundled(("panoptic_fpn_tiny", "depth_tiny"), 256, 512, work / "engines")
        one_run("null", work / "engines", 8, work)  # warm: the engines' first runs
        for r in range(args.rounds):
            for case in CASES:
                row = {"round": r, **one_run(case, work / "engines", args.frames, work)}
                print(row, flush=True)
                runs.append(row)
    cases: dict[str, Any] = {}
    for case in CASES:
        rows = [x for x in runs if x["case"] == case]
        null = {n["round"]: n["fps"] for n in runs if n["case"] == "null"}
        ratios = [x["fps"] / null[x["round"]] for x in rows]
        cases[case] = {
            "fps_median": statistics.median(x["fps"] for x in rows),
            "fps_over_null_median": round(statistics.median(ratios), 3),
            "post_ms_mean_median": statistics.median(x["post_ms_mean"] for x in rows),
        }
    print(json.dumps(cases, indent=2))
    write_runs(
        args.out,
        what=__doc__.split("\n\n")[0].replace("\n", " "),
        runs=runs,
        baseline=None,
        frames=args.frames,
        rounds=args.rounds,
        cases=cases,
    )


if __name__ == "__main__":
    main()
