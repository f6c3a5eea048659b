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

Each recording's capture times begin at its own first frame, so a replay would start every
camera at once; once every camera has given its first frame the file is written again with
each one's ``start-offset``, how long after the first camera's its first frame came, which
edge run --realtime waits before replaying it (the cameras' things are then fused as they
were seen: edge.stream.object_sinks.FusedLines).
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
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
    """The replay rig's lines (``head``'s, then each camera's table's by name), and the lens
    files to copy beside it (target, source)."""

    path: Path
    head: tuple[str, ...]
    cameras: tuple[tuple[str, tuple[str, ...]], ...]
    lenses: tuple[tuple[Path, Path], ...]

    @property
    def text(self) -> str:
        lines = list(self.head)
        for name, table in self.cameras:
            lines += ["", f"[cameras.{toml_key(name)}]", *table]
        return "\n".join(lines) + "\n"

    def with_start_offsets(self, offsets: Mapping[str, float]) -> ReplayRig:
        """This rig with each camera's ``start-offset`` of ``offsets`` (start_offsets)."""
        tables = tuple(
            (name, (*table, f"start-offset = {toml_value(offsets[name])}") if name in offsets else table)
            for name, table in self.cameras
        )
        return replace(self, cameras=tables)


def start_offsets(firsts: Mapping[str, int | None]) -> dict[str, float]:
    """Each camera's start offset, in seconds to the millisecond, from its first frame's
    capture time (ns, one clock for all: a live camera's; None: a recording's own media
    time, not comparable, or no frame), after the earliest one's."""
    known = {name: t_ns for name, t_ns in firsts.items() if t_ns is not None}
    earliest = min(known.values(), default=0)
    return {name: round((t_ns - earliest) / 1e9, 3) for name, t_ns in known.items()}


def replay_rig(
    path: str | Path,
    recorded: Mapping[str, str],
    *,
    rig: str | Path | None = None,
    flipped: Collection[str] = (),
    keep_offsets: bool = False,
) -> ReplayRig:
    """The replay rig at ``path`` of the cameras ``recorded`` (name -> source, as
    recorded_source gives it), each with its settings in the ``rig`` file it was recorded
    from (its lens file copied beside ``path``; its flip left out for the ``flipped``). The
    rig's start offsets are left out (the drive's own are written as it begins), unless
    ``keep_offsets``: recordings recorded again, whose frames keep their places in their drive
    but share no clock to measure new ones by."""
    from edge.cli_rig import read_rig

    path = Path(path)
    tables: dict[str, dict[str, object]] = {}
    head = ["# a drive recorded by edge record; replay it with: edge run --rig THIS_FILE --realtime"]
    lens_files: dict[str, str] = {}
    if rig is not None:
        head.append(f"# each camera's settings are those of the rig {str(rig)!r}")
        read = read_rig(rig)
        lens_files = dict(read.settings["undistort"])  # beside the rig, as it reads them
        tables = {name: dict(table) for name, table in read.data["cameras"].items()}
        if "path-width" in read.data:
            head.append(f"path-width = {toml_value(read.data['path-width'])}")
    lenses = []
    cameras = []
    for name, source in recorded.items():
        lines = [f"source = {toml_string(source)}"]
        for key, value in tables.get(name, {}).items():
            # a live drive's own start offsets are added as its cameras give their first frames
            if key == "source" or (key == "start-offset" and not keep_offsets):
                continue
            if key == "flip" and name in flipped:
                continue
            if key == "undistort":
                lens = Path(lens_files[name])
                copied = path.with_name(f"{path.stem}-{name}{lens.suffix}")
                lenses.append((copied, lens))
                value = copied.name
            lines.append(f"{toml_key(key)} = {toml_value(value)}")
        cameras.append((name, tuple(lines)))
    return ReplayRig(path=path, head=tuple(head), cameras=tuple(cameras), lenses=tuple(lenses))


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


def write_replay_rig(replay: ReplayRig, *, lenses: bool = True) -> None:
    """The lens copies (unless not ``lenses``: written already), then the rig, each written
    whole (edge.util.fs.atomic_write_bytes)."""
    from edge.util.fs import atomic_write_bytes

    replay.path.parent.mkdir(parents=True, exist_ok=True)
    for copied, lens in replay.lenses if lenses else ():
        atomic_write_bytes(copied, lens.read_bytes())
    atomic_write_bytes(replay.path, replay.text.encode("utf-8"))
