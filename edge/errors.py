"""The one exception tree of `edge`.

Every error a user can cause derives from :class:`EdgeError`, so the CLI can print it
as one clear line instead of a traceback. Backend errors are mapped with
``raise ... from exc`` so the original cause stays attached.
"""

from __future__ import annotations

from typing import Any, ClassVar

# the exit status of a run whose outputs all stopped for good (a full disk with nothing left
# to delete, a failed card): a service told not to restart on it (RestartPreventExitStatus)
# shows it failed until a person sees to the disk, instead of failing again every few seconds
OUTPUTS_STOPPED = 3


class EdgeError(Exception):
    """Base class of every error raised on purpose by edge."""

    exit_status: ClassVar[int] = 2  # what the edge command exits with after saying it


class ConfigError(EdgeError, ValueError):
    """A setting, argument or configuration value is invalid."""


class UnknownModelError(ConfigError, KeyError):
    """A model name is not in the zoo."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class DependencyError(EdgeError):
    """An optional package that what was asked for needs is not installed."""


class CheckpointError(EdgeError):
    """A checkpoint cannot be read or does not fit the model."""


class ExportError(EdgeError):
    """A model could not be turned into ONNX."""


class BackendError(EdgeError):
    """An inference backend failed or is not available."""


class BackendUnavailableError(BackendError):
    """An optional backend (TensorRT, CUDA) is not installed on this machine."""


class EngineInputError(BackendError, ValueError):
    """Inputs given to an engine do not match its input specification."""


class ManifestError(EdgeError):
    """engines/manifest.json is missing, corrupt, or names something that is not there."""


class BuildError(EdgeError):
    """An engine build failed."""


class SourceError(EdgeError):
    """A frame source URI is invalid or the source cannot be opened or read."""


class SinkError(EdgeError):
    """An output sink URI is invalid or the sink cannot be written."""


class SinkStopped(SinkError):
    """A file sink stopped for good: its disk is full (``--keep-free``), its file is at the
    largest size allowed, or the system refused a write. What it wrote before is finished
    and kept; it takes no more frames, and the stream goes on without it. Or its disk failed
    to store what it wrote (edge.stream.durable): then what it wrote is left unfinished."""


class OutputsStopped(SinkStopped):
    """Every sink of ``edge run`` stopped for good, so the run ended: it would write nothing
    more. Exit status 3 (OUTPUTS_STOPPED)."""

    exit_status = OUTPUTS_STOPPED


class RecordingStopped(SinkError):
    """A sink ended ``edge record`` (a full disk, a failed write): ``data`` is the summary of
    what was recorded before, which is finished and kept."""

    def __init__(self, message: str, data: dict[str, Any]) -> None:
        super().__init__(message)
        self.data = data


class RecordingStoppedForGood(RecordingStopped, OutputsStopped):
    """``edge record`` ended by a sink that stopped for good (SinkStopped: a full disk with
    nothing left to delete, a failed or read-only card): exit status 3 (OUTPUTS_STOPPED), as
    OutputsStopped. Another failed write (a camera that changed its size under a single
    video) is a RecordingStopped, exit status 2: a service started again may record."""


class ReplayNotSaved(SinkError):
    """``edge replay`` evaluated its frames but could not write metrics.json (a disk another
    program filled): ``data`` is the report, which the command prints before the error."""

    def __init__(self, message: str, data: dict[str, Any]) -> None:
        super().__init__(message)
        self.data = data


class StreamEnded(EdgeError):
    """A sink's reader went away (the program reading standard output closed it): the stream
    ends as if its source had, and the other outputs are finalised."""


class DatasetError(EdgeError):
    """A dataset folder or file (Cityscapes layout) that is missing or malformed."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM) after part of a long job: ``data`` is the result of that part,
    marked incomplete, so it is not lost; ``original`` is the interrupt that stopped it.

    A KeyboardInterrupt, so code that knows nothing of it stops as for Ctrl-C.
    """

    def __init__(self, data: dict[str, Any], original: KeyboardInterrupt) -> None:
        super().__init__()
        self.data, self.original = data, original
