"""Which engines a stream runs: the newest build in a manifest that fits the filters.

EngineSet opens the chosen panoptic and depth engines (both at one input size, checked
against this machine); choose_entries is the choice alone, on manifest entries.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.backends import Engine, open_engine
from edge.compat import check_compatible
from edge.errors import ManifestError
from edge.manifest import Manifest, refuse_a_file


@dataclass
class EngineSet:
    panoptic: Engine | None
    depth: Engine | None
    depth_range: tuple[float, float] = (0.1, 100.0)
    # the frame sizes stretched so far (prepare says once of each that the engines stretch)
    stretched_sizes: set[tuple[int, int]] = field(default_factory=set, repr=False, compare=False)
    # the kinds of engine said to give NaN or inf (edge.stream.nonfinite, once each)
    nonfinite_said: set[str] = field(default_factory=set, repr=False, compare=False)
    # each camera's frames in a row with things in the semantic map and no detection, and
    # whether that was said (edge.stream.blind, once)
    blind_streaks: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)
    blind_said: bool = field(default=False, repr=False, compare=False)
    # how frames of another shape go in: "stretch", "pad" or "crop" (fit.py), unless a
    # camera says its own (Pipeline's fit)
    fit: str = "stretch"
    # the manifest entries of the engines (what each is: described), and their folder: what
    # they were built from
    entries: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)
    root: Path | None = None

    @property
    def input_hw(self) -> tuple[int, int]:
        engine = self.panoptic or self.depth
        assert engine is not None  # from_manifest guarantees one
        shape = engine.inputs[0].shape
        return int(shape[2]), int(shape[3])

    @property
    def described(self) -> dict[str, str]:
        """What each engine is, from its manifest entry:
        {"panoptic": "panoptic_fpn_tiny onnxruntime fp32 256x512"}."""
        return {kind: describe_entry(entry) for kind, entry in self.entries.items()}

    @property
    def kinds(self) -> tuple[str, ...]:
        """The kinds of engine this set runs: ("panoptic", "depth"), or one of them."""
        return tuple(k for k in ("panoptic", "depth") if getattr(self, k) is not None)

    def close(self) -> None:
        for e in (self.panoptic, self.depth):
            if e is not None:
                e.close()

    @classmethod
    def open(
        cls,
        engines_dir: str | Path,
        *,
        backend: str = "auto",
        panoptic: str | None = None,
        depth: str | None = None,
        precision: str | None = None,
        size: tuple[int, int] | None = None,
        threads: int | None = None,
        device: str | None = None,
        fit: str = "stretch",
    ) -> EngineSet:
        """from_manifest with the engine options a stream uses (half the cores each, the torch
        device); backend ``auto`` takes the fastest backend here that the folder has engines for
        (choose_backend). ``fit``: how frames of another shape go in (fit.py)."""
        from edge.stream import default_engine_options

        if backend == AUTO:
            backend, device = choose_backend(
                engines_dir, panoptic=panoptic, depth=depth, precision=precision, size=size, device=device
            )
        return cls.from_manifest(
            engines_dir,
            backend=backend,
            panoptic=panoptic,
            depth=depth,
            precision=precision,
            size=size,
            engine_options=default_engine_options(backend, threads, device),
            fit=fit,
        )

    @classmethod
    def from_manifest(
        cls,
        engines_dir: str | Path,
        *,
        backend: str = "onnxruntime",
        panoptic: str | None = None,
        depth: str | None = None,
        size: tuple[int, int] | None = None,
        precision: str | None = None,
        engine_options: dict[str, Any] | None = None,
        fit: str = "stretch",
    ) -> EngineSet:
        """The panoptic and depth engines recorded in ``engines_dir/manifest.json``.

        ``engine_options`` go to the backend (e.g. ``intra_op_threads`` for ONNX Runtime).
        """
        from edge.stream.fit import check_fit

        check_fit(fit)
        root, builds = chosen_builds(
            engines_dir, backend=backend, panoptic=panoptic, depth=depth, precision=precision, size=size
        )
        engines: dict[str, Engine | None] = {"panoptic": None, "depth": None}
        for kind, (entry, path) in builds.items():
            options = dict(engine_options or {})
            if backend == "tensorrt":  # its plugins, and whether it embeds the lean runtime
                from edge.backends.tensorrt_folder import engine_load_options

                options.update(engine_load_options(entry, root))
            engines[kind] = open_engine(path, backend=backend, **options)
        cfg = builds["depth"][0].get("config", {}) if "depth" in builds else {}
        rng = (float(cfg.get("min_depth", 0.1)), float(cfg.get("max_depth", 100.0)))
        say_seven_bit({k: (e, engines[k]) for k, (e, _) in builds.items()})
        entries = {k: e for k, (e, _) in builds.items()}
        return cls(engines["panoptic"], engines["depth"], rng, fit=fit, entries=entries, root=root)


def chosen_builds(
    engines_dir: str | Path,
    *,
    backend: str,
    panoptic: str | None = None,
    depth: str | None = None,
    precision: str | None = None,
    size: tuple[int, int] | None = None,
) -> tuple[Path, dict[str, tuple[dict[str, Any], Path]]]:
    """The folder, and for each kind that runs the manifest entry of the newest build that fits
    the filters with its artifact's path (within the folder, and there): what
    EngineSet.from_manifest opens, and what edge profile times (edge.layer_profile)."""
    root, manifest = _manifest_of(engines_dir)
    chosen = _fitting_entries(
        manifest, root, backend=backend, panoptic=panoptic, depth=depth, precision=precision, size=size
    )
    shapes = {tuple(e["inputs"][0]["shape"]) for e in chosen.values() if e}
    if len(shapes) > 1:
        raise ManifestError(
            f"panoptic and depth engines have different input shapes {sorted(shapes)}; "
            "build both at one --size"
        )
    builds: dict[str, tuple[dict[str, Any], Path]] = {}
    for kind, entry in chosen.items():
        if entry is None:
            continue
        path = manifest.resolve(str(entry["artifact"]["path"]))
        if not path.is_file():
            raise ManifestError(
                f"{str(manifest.path)!r} names {path.name}, which is missing; "
                f"rebuild with edge build --out {root}"
            )
        builds[kind] = (entry, path)
    return root, builds


def say_seven_bit(opened: dict[str, tuple[dict[str, Any], Any]]) -> None:
    """Warn of INT8 engines (by kind: their entry, and the engine that ran it or what it said,
    its ``seven_bit_weights``) whose weights went on 7 bits: a CPU without VNNI, where INT8
    gains nothing."""
    seven_bit = [
        str(entry.get("model"))
        for entry, engine in opened.values()
        if entry.get("precision") == "int8" and getattr(engine, "seven_bit_weights", False)
    ]
    if seven_bit:
        from edge.backends.onnxruntime import int8_without_vnni_advice

        print(f"warning: {int8_without_vnni_advice(seven_bit)}", file=sys.stderr)


AUTO = "auto"


def choose_backend(
    engines_dir: str | Path,
    *,
    panoptic: str | None = None,
    depth: str | None = None,
    precision: str | None = None,
    size: tuple[int, int] | None = None,
    device: str | None = None,
) -> tuple[str, str | None]:
    """(backend, torch device) for ``--backend auto``: of the backends the folder holds
    engines for (that fit the filters and this machine), one with both kinds where there is
    one, and of those the fastest here: with a CUDA GPU TensorRT, then torch on CUDA, then
    ONNX Runtime; without one ONNX Runtime, then torch on the CPU. ``device`` (torch only)
    leaves torch alone to choose."""
    root, manifest = _manifest_of(engines_dir)
    held = {str(e.get("backend")) for e in manifest.engines.values()}
    if device is not None:
        order: tuple[str, ...] = ("torch",)
    elif held & {"tensorrt", "torch"} and (gpu := _cuda_here()) is not None:
        # a GPU that only cuda-python sees runs TensorRT; torch there is a CPU build, slower
        # than ONNX Runtime
        order = (
            ("tensorrt", "torch", "onnxruntime") if gpu == "torch" else ("tensorrt", "onnxruntime", "torch")
        )
    else:
        order = ("onnxruntime", "torch", "tensorrt")
    candidates = [b for b in order if b in held] or list(order[:1])
    refusals: list[ManifestError] = []
    fitting: list[tuple[int, str]] = []  # (kinds it has, backend), in the order of preference
    for backend in candidates:
        try:
            chosen = _fitting_entries(
                manifest,
                root,
                backend=backend,
                panoptic=panoptic,
                depth=depth,
                precision=precision,
                size=size,
            )
        except ManifestError as exc:  # EngineMismatchError is one
            refusals.append(exc)
            continue
        fitting.append((sum(e is not None for e in chosen.values()), backend))
    if fitting:
        # a backend with both kinds beats a faster one with only depth (or only panoptic)
        backend = max(fitting, key=lambda f: f[0])[1]
        if backend == "torch" and device is None:
            device = "cuda" if order[:2] == ("tensorrt", "torch") else "cpu"
        return backend, device
    if len(refusals) == 1:
        raise refusals[0]
    common = _refused_by_every_backend(
        list(manifest.engines.values()),
        candidates,
        where=repr(str(root)),
        models={"panoptic": panoptic, "depth": depth},
        precision=precision,
        size=size,
    )
    if common is not None:
        raise common
    raise ManifestError(
        f"none of the engines in {str(root)!r} fits (--backend auto tried "
        + ", ".join(candidates)
        + "): "
        + "; ".join(f"{b}: {exc}" for b, exc in zip(candidates, refusals, strict=True))
    )


def _refused_by_every_backend(
    entries: list[dict[str, Any]],
    backends: list[str],
    *,
    where: str,
    models: dict[str, str | None],
    precision: str | None,
    size: tuple[int, int] | None,
) -> ManifestError | None:
    """The one reason no backend tried fits, where a flag asks for what the folder holds
    under none of them (a model, a precision, a size): said once, with the folder's engines,
    rather than once a backend. None where the backends were refused for different reasons."""
    mine = [e for e in entries if e.get("backend") in backends]
    tried = " or ".join(backends)
    held = ", ".join(sorted(f"{e.get('kind')} {describe_entry(e)}" for e in entries)) or "no engines"
    for kind, model in models.items():
        if model is not None and not any(e.get("model") == model and e.get("kind") == kind for e in mine):
            return ManifestError(
                f"{where} holds no {kind} engine for {model!r} for {tried}; {_engines_of(entries, model)}"
            )
    if precision is not None and not any(e.get("precision") == precision for e in mine):
        have = sorted({str(e.get("precision")) for e in mine})
        return ManifestError(
            f"{where} holds no {precision} engine for {tried} (it holds: {held}): run its "
            f"{' or '.join(have)} ones with --precision {have[0]}, or build {precision} ones with "
            f"edge build --precision {precision}" + (" --calib-data URI" if precision == "int8" else "")
        )
    hws = sorted({hw for hw in map(_entry_hw, mine) if hw})
    if size is not None and tuple(size) not in hws:
        shown = " or ".join(f"{h}x{w}" for h, w in hws)
        return ManifestError(
            f"{where} holds no engine at {size[0]}x{size[1]} for {tried} (it holds: {held}): run those "
            f"at {shown} with --size, or build some with edge build --size {size[0]}x{size[1]}"
        )
    return None


def _manifest_of(engines_dir: str | Path) -> tuple[Path, Manifest]:
    root = Path(engines_dir)
    refuse_a_file(root)
    if not root.is_dir():
        raise ManifestError(
            f"engines directory {str(root)!r} does not exist; build engines first, e.g. "
            f"edge build --out {root}"
        )
    return root, Manifest.load(root, must_exist=True)


def _fitting_entries(
    manifest: Manifest,
    root: Path,
    *,
    backend: str,
    panoptic: str | None,
    depth: str | None,
    precision: str | None,
    size: tuple[int, int] | None,
) -> dict[str, dict[str, Any] | None]:
    """choose_entries on the manifest, each chosen entry checked as sound and fit for this machine."""
    chosen = choose_entries(
        list(manifest.engines.values()),
        backend=backend,
        panoptic=panoptic,
        depth=depth,
        precision=precision,
        size=size,
        where=repr(str(manifest.path)),
    )
    for entry in chosen.values():
        if entry is not None:
            manifest.check_engine_entry(entry)
            check_compatible(entry, root)
    return chosen


def _cuda_here() -> str | None:
    """Who sees a CUDA GPU here: "torch", "cuda-python" (a CPU torch beside it), or None."""
    from edge.backends.cuda_io import cuda_device

    gpu = cuda_device()
    return None if gpu is None else gpu["via"]


def choose_entries(
    entries: list[dict[str, Any]],
    *,
    backend: str,
    panoptic: str | None = None,
    depth: str | None = None,
    precision: str | None = None,
    size: tuple[int, int] | None = None,
    where: str = "the manifest",
) -> dict[str, dict[str, Any] | None]:
    """The manifest entry to run for each kind: the newest build that fits the filters.

    Without ``size``, when the newest panoptic and depth engines differ in input size, both
    come from the newest size at which each kind was built (one frame feeds both).
    """

    def candidates(kind: str, model: str | None, hw: tuple[int, int] | None) -> list[dict[str, Any]]:
        found = [
            e
            for e in entries
            if e.get("kind") == kind
            and e.get("backend") == backend
            and (model is None or e.get("model") == model)
            and (precision is None or e.get("precision") == precision)
            and (hw is None or _entry_hw(e) == tuple(hw))
        ]
        return sorted(found, key=lambda e: str(e.get("built_at")))

    wanted = " ".join(
        [backend] + ([precision] if precision else []) + ([f"{size[0]}x{size[1]}"] if size else [])
    )
    models = {"panoptic": panoptic, "depth": depth}
    found = {k: candidates(k, m, size) for k, m in models.items()}
    for kind, model in models.items():
        if model is not None and not found[kind]:
            raise ManifestError(
                f"{where} has no {wanted} {kind} engine for {model!r}; " + _engines_of(entries, model)
            )
    if not any(found.values()):
        held = sorted(f"{e.get('kind')} {describe_entry(e)}" for e in entries)
        raise ManifestError(
            f"{where} lists no {wanted} panoptic or depth engine; "
            + (f"it lists: {', '.join(held)}" if held else "it lists no engines (build some first)")
            + _selection_hint(entries, backend=backend, precision=precision, size=size)
        )
    if size is None and found["panoptic"] and found["depth"]:
        newest = {k: _entry_hw(v[-1]) for k, v in found.items()}
        if newest["panoptic"] != newest["depth"]:
            both = {_entry_hw(e) for e in found["panoptic"]} & {_entry_hw(e) for e in found["depth"]}
            if not both:
                sizes = ", ".join(f"{k} {hw[0]}x{hw[1]}" if hw else f"{k} ?" for k, hw in newest.items())
                raise ManifestError(
                    f"{where} has no size at which both a panoptic and a depth engine were built ({sizes}); "
                    "build both at one --size, or pass --size to run the engines built at that size"
                )

            def latest(hw: tuple[int, int] | None) -> str:
                return max(str(e.get("built_at")) for v in found.values() for e in v if _entry_hw(e) == hw)

            hw = max(both, key=latest)
            found = {k: [e for e in v if _entry_hw(e) == hw] for k, v in found.items()}
    return {k: v[-1] if v else None for k, v in found.items()}


def _selection_hint(
    entries: list[dict[str, Any]], *, backend: str, precision: str | None, size: tuple[int, int] | None
) -> str:
    """The flag that selects engines the folder does hold, where one flag is what is off."""
    backends = sorted({str(e.get("backend")) for e in entries} - {backend})
    mine = [e for e in entries if e.get("backend") == backend]
    if not mine:
        return f" (run those with --backend {' or '.join(backends)})" if backends else ""
    if precision is not None and not any(e.get("precision") == precision for e in mine):
        have = sorted({str(e.get("precision")) for e in mine})
        return f" (its {backend} engines are {', '.join(have)}: --precision {have[0]})"
    if size is not None:
        fitting = [e for e in mine if precision is None or e.get("precision") == precision]
        sizes = sorted({hw for hw in map(_entry_hw, fitting) if hw})
        if sizes and tuple(size) not in sizes:
            shown = ", ".join(f"{h}x{w}" for h, w in sizes)
            flag = f"--size {shown}" if len(sizes) == 1 else "one of them with --size"
            return f" (its {backend} engines are at {shown}: {flag})"
    return ""


def describe_entry(entry: dict[str, Any]) -> str:
    """A build in a few words: model, backend, precision and input size."""
    hw = _entry_hw(entry)
    size = f"{hw[0]}x{hw[1]}" if hw else "?"
    return f"{entry.get('model')} {entry.get('backend')} {entry.get('precision')} {size}"


def _engines_of(entries: Any, model: str) -> str:
    """What the manifest does hold for ``model``, so a wrong flag is obvious from the error."""
    have = [
        f"{e.get('kind')} {describe_entry(e).split(' ', 1)[1]}" for e in entries if e.get("model") == model
    ]
    if not have:
        return f"it lists no engine for {model!r} (build one with: edge build --models {model})"
    return f"engines it lists for {model!r}: {', '.join(sorted(have))}"


def _entry_hw(entry: dict[str, Any]) -> tuple[int, int] | None:
    try:
        shape = entry["inputs"][0]["shape"]
        return int(shape[2]), int(shape[3])
    except (KeyError, IndexError, TypeError, ValueError):
        return None
