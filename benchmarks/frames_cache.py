"""The frames a trial's engines saw, kept on disk, for reruns of what comes after them.

A trial of the tracker (benchmarks/ground_trial.py) spends ten minutes in the engines and one
in the tracker; a change to the tracker alone need not run the engines again. The frames of
one set are kept in a pickle whose name holds a key: the SHA-256 of what the frames depend on
(the drives, the engines' size, the weights, the tool versions) and of the source of every
module of edge/, plugins/ and the trial's own scripts but those that only read the frames
(``after``: the tracker and its scoring). A change to any other module changes the key, and
the frames are seen again. The files are the trial's own (pickles: load only those you wrote).
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def frames_key(parts: dict[str, Any], *, after: Iterable[str], root: Path = ROOT) -> str:
    """A key for frames made from ``parts`` (JSON-able: drives, sizes, weights' digests,
    versions) by the code under ``root`` (edge/, plugins/, benchmarks/), leaving out the
    modules ``after`` (paths relative to ``root``) that only read the frames."""
    skip = set(after)
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode())
    sources = [p for top in ("edge", "plugins", "benchmarks") for p in (root / top).rglob("*.py")]
    for path in sorted(sources):
        rel = path.relative_to(root).as_posix()
        if rel in skip:
            continue
        digest.update(rel.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def cached_frames(
    cache: Path | None, name: str, key: str, see: Callable[[], list[dict[str, Any]]]
) -> tuple[list[dict[str, Any]], str]:
    """Set ``name``'s frames: from ``cache`` (a folder; None: none kept) where it holds them
    under ``key``, else from ``see()``, then kept there. Also where they came from, for the
    record: "engines", or the cache file's name. A file that does not load (a disk fault, a
    Python too different) is said so, seen again and replaced."""
    if cache is None:
        return see(), "engines"
    path = cache / f"{name}_{key}.pkl"
    if path.is_file():
        try:
            with path.open("rb") as f:
                return pickle.load(f), path.name
        except Exception as exc:  # unpickling raises whatever the damaged bytes make of it
            print(
                f"frames cache {str(path)!r} does not load ({type(exc).__name__}): seeing the frames again",
                file=sys.stderr,
            )
    frames = see()
    cache.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    with part.open("wb") as f:
        pickle.dump(frames, f, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(part, path)  # whole or not at all: a run killed while writing leaves no half file
    return frames, "engines"
