"""What a file sink would write over, refused before it writes: the run's own source, and
(where asked) a recording that exists; the folder a dir:// sink names; and the options a
sink's ``?`` gives that it does not take."""

from __future__ import annotations

import os
import stat
from collections.abc import Collection
from pathlib import Path
from urllib.parse import SplitResult, parse_qsl

from edge.errors import SinkError
from edge.stream.disk import format_bytes


def dir_sink_folder(uri: str, parts: SplitResult) -> Path:
    """The folder a dir:// sink writes; a SinkError for a URI that names none (a bare
    ``dir://`` would be the current folder, among whatever else is there)."""
    name = parts.netloc + parts.path
    if not name:
        raise SinkError(
            f"sink {uri!r} names no folder: give one, e.g. dir://frames/ (dir://. is this folder)"
        )
    return Path(name)


def refuse_an_earlier_file(uri: str, path: Path) -> None:
    """SinkError when ``path`` is a file already (an earlier recording): said with its size
    and time, and what to do instead. An empty file holds nothing to keep (``touch``, a
    shell's ``>`` made ready for the run): it is replaced."""
    import datetime as dt

    try:
        st = path.stat()
    except OSError:  # nothing there, or nothing to read: checked_output has said what is wrong
        return
    if not stat.S_ISREG(st.st_mode) or st.st_size == 0:
        return
    when = dt.datetime.fromtimestamp(st.st_mtime).strftime("%Y-%m-%d %H:%M")
    raise SinkError(
        f"sink {uri!r}: {str(path)!r} already exists ({format_bytes(st.st_size)}, written {when}), and "
        "it is kept: give another name, move it away, or add --overwrite to replace it (--segment names "
        "each file anew)"
    )


def refuse_the_source(what: str, target: str | Path, source: Path | None) -> None:
    """SinkError when ``what`` (``sink 'x.mp4'``, ``the summary``) would write ``target``
    over ``source``, the file or folder the run reads (sources.source_file)."""
    # a video is renamed over it when the run ends; PNGs would land among its images
    if source is not None and same_path(Path(target), source):
        raise SinkError(f"{what} would write over the source it reads, {str(source)!r}; give it another name")


def check_written_file(what: str, path: str | Path, source: str) -> None:
    """Refuse, before a run, a file it writes besides its sinks (``what``: the summary, the
    heartbeat) that cannot be written there or would write over the file ``source`` reads."""
    from edge.stream.sources import source_file
    from edge.util.fs import require_writable

    require_writable(path, folder=False, what=what)
    refuse_the_source(f"the {what} {str(path)!r}", path, source_file(source))


def same_path(a: Path, b: Path) -> bool:
    """Whether paths ``a`` and ``b`` name one file or folder (links and other spellings too)."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return os.path.abspath(a) == os.path.abspath(b)


def sink_options(uri: str, query: str, keys: Collection[str], takes: str) -> dict[str, str]:
    """Sink ``uri``'s options (``query``) by name, each one of ``keys`` given once; a SinkError
    saying what it ``takes`` for another, for one given twice, or for a ``?`` that names none."""
    given: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key not in keys:
            raise SinkError(f"sink {uri!r}: unknown option {key!r}; it takes {takes}")
        if key in given:
            raise SinkError(f"sink {uri!r}: {key}= is given twice; give it once")
        given[key] = value
    if query and not given:  # "?&": nothing parse_qsl reports
        raise SinkError(f"sink {uri!r}: option {query!r} names none; it takes {takes}")
    return given
