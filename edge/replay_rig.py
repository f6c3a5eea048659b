"""``edge record --rig car.toml 'drive/{camera}.mkv' --replay-rig drive/replay.toml``: a rig
file that replays the drive being recorded, each camera's source its recording and its
other settings the car's rig's, so that ``edge run --rig drive/replay.toml --realtime`` runs
the drive as the live cameras would have been run, wherever the folder is copied to.

A rig's relative paths are beside it (edge.cli_rig.beside), so the written sources and lens
files are named from the replay rig's folder; a camera's lens file is copied there (a car's
calibration is not on the desktop the drive is replayed on). A flip the recording made is
not made again: that camera's flip is left out. The file is written as the recording starts
(a dash camera's recording ends when the car is switched off), atomically, and an earlier
one of other content is refused before anything opens, as a recording that exists is.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from edge.errors import ConfigError
from edge.util.toml_text import toml_key, toml_string, toml_value


def recorded_source(name: str, sinks: Sequence[str], *, folder: Path) -> str:
    """What replays camera ``name``'s recording, from ``folder`` (the replay rig's): its
    first video or dir:// sink's name (recorded in segments, the name plays them all:
    edge.stream.playlist.played_segments; earlier drives' too, as they are numbered on)."""
    from edge.stream.sink_refusals import dir_sink_folder
    from edge.stream.sinks import sink_file
    from edge.stream.video import VIDEO_SUFFIXES

    for uri in sinks:
        path = sink_file(uri)
        if urlsplit(uri).scheme == "dir":
            path = dir_sink_folder(uri, urlsplit(uri))
        elif path is None or path.suffix.lower() not in VIDEO_SUFFIXES:
            continue
        return os.path.relpath(path, folder)
    raise ConfigError(
        f"--replay-rig: camera {name!r} records to no video or dir:// sink (its sinks: "
        f"{', '.join(sinks) or 'none'}); a replay rig's sources are the cameras' recordings"
    )


@dataclass(frozen=True)
class ReplayRig:
    """The replay rig's text, and the lens files to copy beside it (target, source)."""

    path: Path
    text: str
    lenses: tuple[tuple[Path, Path], ...]


def replay_rig(
    path: str | Path,
    recorded: Mapping[str, str],
    *,
    rig: str | Path | None = None,
    flipped: Collection[str] = (),
) -> ReplayRig:
    """The replay rig at ``path`` of the cameras ``recorded`` (name -> source, as
    recorded_source gives it), each with its settings in the ``rig`` file it was recorded
    from (its lens file copied beside ``path``; its flip left out for the ``flipped``)."""
    from edge.cli_rig import read_rig

    path = Path(path)
    tables: dict[str, dict[str, object]] = {}
    lines = ["# a drive recorded by edge record; replay it with: edge run --rig THIS_FILE --realtime"]
    lens_files: dict[str, str] = {}
    if rig is not None:
        lines[0] += f"\n# each camera's settings are those of the rig {str(rig)!r}"
        read = read_rig(rig)
        lens_files = dict(read.settings["undistort"])  # beside the rig, as it reads them
        tables = {name: dict(table) for name, table in read.data["cameras"].items()}
        if "path-width" in read.data:
            lines.append(f"path-width = {toml_value(read.data['path-width'])}")
    lenses = []
    for name, source in recorded.items():
        lines += ["", f"[cameras.{toml_key(name)}]", f"source = {toml_string(source)}"]
        for key, value in tables.get(name, {}).items():
            if key == "source" or (key == "flip" and name in flipped):
                continue
            if key == "undistort":
                lens = Path(lens_files[name])
                copied = path.with_name(f"{path.stem}-{name}{lens.suffix}")
                lenses.append((copied, lens))
                value = copied.name
            lines.append(f"{toml_key(key)} = {toml_value(value)}")
    return ReplayRig(path=path, text="\n".join(lines) + "\n", lenses=tuple(lenses))


def check_replay_rig(replay: ReplayRig, *, overwrite: bool) -> None:
    """A ConfigError, before anything is recorded, for a replay rig or lens copy that would
    write over a file of other content (an earlier drive's) without ``overwrite``, and for
    a lens file that cannot be read."""
    wanted: list[tuple[Path, bytes]] = [(replay.path, replay.text.encode("utf-8"))]
    for copied, lens in replay.lenses:
        try:
            wanted.append((copied, lens.read_bytes()))
        except OSError as exc:
            raise ConfigError(
                f"--replay-rig: lens file {str(lens)!r} cannot be read: {exc.strerror}"
            ) from exc
    for target, data in wanted:
        if overwrite or not target.exists():
            continue
        try:
            same = target.read_bytes() == data
        except OSError:
            same = False
        if not same:
            raise ConfigError(
                f"--replay-rig: {str(target)!r} exists, and is not this recording's (an earlier "
                "drive's?): name another file, or give --overwrite to replace it"
            )


def write_replay_rig(replay: ReplayRig) -> None:
    """The lens copies, then the rig, each written whole (edge.util.fs.atomic_write_bytes)."""
    from edge.util.fs import atomic_write_bytes

    replay.path.parent.mkdir(parents=True, exist_ok=True)
    for copied, lens in replay.lenses:
        atomic_write_bytes(copied, lens.read_bytes())
    atomic_write_bytes(replay.path, replay.text.encode("utf-8"))
