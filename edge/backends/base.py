"""The Engine protocol every backend implements, and input checking shared by them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol, runtime_checkable

import numpy as np
from typing_extensions import Self

from edge.errors import EngineInputError


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int, ...]
    dtype: str  # numpy dtype name, e.g. "float32"

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}

    @classmethod
    def from_json(cls, obj: Mapping[str, object]) -> TensorSpec:
        shape = obj["shape"]
        if not isinstance(shape, list):
            raise TypeError("shape must be a list")
        return cls(str(obj["name"]), tuple(int(d) for d in shape), str(obj["dtype"]))


@runtime_checkable
class Engine(Protocol):
    """A loaded model: fixed input/output specs and a synchronous ``infer``."""

    @property
    def inputs(self) -> list[TensorSpec]: ...

    @property
    def outputs(self) -> list[TensorSpec]: ...

    def infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]: ...

    def close(self) -> None: ...

    def __enter__(self) -> Engine: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class EngineBase:
    """Context-manager plumbing and feed validation for concrete engines."""

    name = "engine"
    _inputs: list[TensorSpec]

    @property
    def inputs(self) -> list[TensorSpec]:
        return list(self._inputs)

    def close(self) -> None:  # backends with resources override this
        return None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def check_feeds(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Feeds as contiguous arrays of the expected dtype; clear errors otherwise."""
        expected = {s.name for s in self._inputs}
        missing = expected - set(feeds)
        extra = set(feeds) - expected
        if missing or extra:
            raise EngineInputError(
                f"{self.name}: inputs {sorted(feeds)} do not match the engine's inputs "
                f"{sorted(expected)} (missing: {sorted(missing)}, unexpected: {sorted(extra)})"
            )
        out = {}
        for spec in self._inputs:
            arr = np.asarray(feeds[spec.name])
            if tuple(arr.shape) != spec.shape:
                raise EngineInputError(
                    f"{self.name}: input {spec.name!r} has shape {tuple(arr.shape)}, "
                    f"expected {spec.shape} (engines are built for one input size; "
                    "rebuild with edge build --size HxW for another)"
                )
            if arr.dtype != np.dtype(spec.dtype):
                if not np.can_cast(arr.dtype, spec.dtype, casting="same_kind"):
                    raise EngineInputError(
                        f"{self.name}: input {spec.name!r} has dtype {arr.dtype}, expected {spec.dtype}"
                    )
                arr = arr.astype(spec.dtype)
            out[spec.name] = np.ascontiguousarray(arr)
        return out
