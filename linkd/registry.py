"""The experiment registry: what an experiment kind declares, the presets, and config loading.

An experiment module in ``linkd/experiments/`` builds an :class:`Experiment` and calls
:func:`register` at import time; the registry imports every module of that package on first use
(by name, through :mod:`importlib`: a plugin hook, so this module sits below
``linkd.experiments`` in the import graph). :func:`load_config` resolves a
preset name / TOML path / ``kind:NAME`` to a validated :class:`~linkd.config.Config`.
"""
from __future__ import annotations

import difflib
import functools
import hashlib
import importlib
import os
import pkgutil
import typing
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import numpy as np

from linkd.config import Config, ConfigError, Field, Schema, build_config, read_toml
from linkd.errors import InputError
from linkd.progress_report import ProgressCallback

__all__ = [
    "Experiment", "Result", "RunContext", "RUN_SECTION", "register", "get", "names",
    "all_experiments", "Preset", "list_presets", "find_preset", "preset_dirs", "null_progress",
    "unregister", "load_config", "KIND_PREFIX",
]


def null_progress(done: int, total: int | None = None, unit: str | None = None) -> None:
    """A progress callback that reports nothing."""


#: Every experiment's config has this section (added by :attr:`Experiment.full_schema`):
#: ``--seed N`` is ``--set run.seed=N`` and ``--x64`` is ``--set run.x64=true``, so the written
#: ``config.toml`` alone reproduces a run.
RUN_SECTION: Mapping[str, Field] = MappingProxyType({
    "seed": Field(int, 0, "root seed; every PRNG key derives from it", low=0),
    "x64": Field(bool, False, "run in float64 (jax_enable_x64)"),
})


class Result(NamedTuple):
    """What :attr:`Experiment.run` returns.

    ``metrics``: name -> array, written to ``metrics.npz`` (include at least ``steps``,
    ``eigvals`` and each trained model's coefficient trajectory). ``summary``: JSON-able scalars,
    lists and nested dicts, written to ``summary.json`` (numpy scalars are converted; for each
    closed-form comparison give ``max_abs_error`` and ``max_rel_error``).
    """

    metrics: dict[str, np.ndarray]
    summary: dict[str, Any]


class RunContext(NamedTuple):
    """Per-run settings not in the experiment's own sections.

    ``seed`` and ``x64`` mirror ``config.run`` (the CLI has already set ``jax_enable_x64``).
    ``progress(done, total, unit)`` reports ``done`` of ``total`` items of the unit that moves
    (``"GD steps"`` summed over every training of the run, ``"geometries"``, ...); call it from
    host code (e.g. between trainings) or ignore it. ``quiet`` asks for no other output.
    """

    seed: int = 0
    x64: bool = False
    quiet: bool = True
    progress: ProgressCallback = null_progress


@dataclass(frozen=True)
class Experiment:
    """One experiment kind.

    - ``run(config, ctx) -> Result``: config in, arrays out; no files, no plotting.
    - ``figures(metrics, summary, config) -> {stem: Figure}``: draws from recorded arrays only
      (``linkd plot`` calls it on a loaded run; never re-runs). Drawn inside
      :func:`linkd.plotting.use_style`.
    - ``vectorized``: dotted config keys (e.g. ``"run.seed"``, ``"train.lr"``) that
      ``run_sweep(config, points, ctx) -> [Result, ...]`` can batch under one ``vmap``; ``points``
      is a list of ``{key: value}`` dicts (typed, validated), results in the same order. A sweep
      whose keys are all in ``vectorized`` makes one ``run_sweep`` call; otherwise it loops ``run``.
    - ``validate(config)``: cross-field checks; raise :class:`ConfigError` naming key, value and
      what is allowed.
    - ``headline``: summary keys ``linkd run`` prints after the run directory (e.g. the maximum
      closed-form error).
    - ``figure_stems``: the file stems ``figures`` draws (default: the kind's name, one figure);
      a run that draws another set is refused, so ``linkd figures`` knows its outputs up front.
    """

    name: str
    description: str
    schema: Schema
    run: Callable[[Config, RunContext], Result]
    figures: Callable[[Mapping[str, np.ndarray], Mapping[str, Any], Config], dict] | None = None
    vectorized: tuple[str, ...] = ()
    run_sweep: Callable[[Config, Sequence[Mapping[str, Any]], RunContext], list[Result]] | None = None
    validate: Callable[[Config], None] | None = None
    headline: tuple[str, ...] = ()
    figure_stems: tuple[str, ...] | None = None
    full_schema: Schema = field(init=False, repr=False, compare=False)

    @property
    def stems(self) -> tuple[str, ...]:
        """The figure stems a run draws: ``figure_stems``, else ``(name,)``; ``()`` without ``figures``."""
        if self.figures is None:
            return ()
        return tuple(self.figure_stems) if self.figure_stems is not None else (self.name,)

    def __post_init__(self):
        if "run" in self.schema:
            raise InputError(f"Experiment {self.name!r}: schema must not define section [run] (reserved: seed, x64); got schema sections {sorted(self.schema)}")
        full = {"run": dict(RUN_SECTION), **{s: dict(f) for s, f in self.schema.items()}}
        object.__setattr__(self, "full_schema", MappingProxyType(full))
        for key in self.vectorized:
            sec, _, k = key.partition(".")
            if k not in full.get(sec, {}):
                raise InputError(f"Experiment {self.name!r}: vectorized key {key!r} must be a schema key section.name; it is not in the schema")


# ------------------------------------------------------------------------------ registry

_REGISTRY: dict[str, Experiment] = {}


def register(exp: Experiment, *, replace: bool = False) -> Experiment:
    """Add an experiment kind (at import of its module). Returns ``exp``."""
    if not isinstance(exp, Experiment):
        raise InputError(f"register: exp must be an Experiment; got {type(exp).__name__}")
    if exp.name in _REGISTRY and not replace and _REGISTRY[exp.name] is not exp:
        raise InputError(f"register: exp.name must be a new experiment name; got {exp.name!r}, which is already registered")
    _REGISTRY[exp.name] = exp
    return exp


def unregister(name: str) -> None:
    """Remove a kind (tests)."""
    _REGISTRY.pop(name, None)


_INFRA = {"base", "runner"}  # modules of the package that are not experiment kinds


@functools.cache
def _discover() -> None:
    """Import every module of ``linkd.experiments`` once, so their ``register`` calls run, then
    the modules named in ``$LINKD_EXPERIMENT_MODULES`` (comma-separated; your own kinds)."""
    pkg = importlib.import_module("linkd.experiments")
    for mod in pkgutil.iter_modules(pkg.__path__):
        if mod.name not in _INFRA and not mod.name.startswith("_"):
            importlib.import_module(f"linkd.experiments.{mod.name}")
    for name in os.environ.get("LINKD_EXPERIMENT_MODULES", "").split(","):
        if name.strip():
            importlib.import_module(name.strip())


def names() -> tuple[str, ...]:
    """Registered experiment kinds, sorted."""
    _discover()
    return tuple(sorted(_REGISTRY))


def get(name: str) -> Experiment:
    """The registered kind ``name``; unknown names raise :class:`ConfigError` listing the known."""
    _discover()
    try:
        return _REGISTRY[name]
    except KeyError:
        near = difflib.get_close_matches(name, list(_REGISTRY), n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        raise ConfigError("experiment", name, ", ".join(sorted(_REGISTRY)) or "none registered",
                          "unknown experiment kind" + hint) from None


def all_experiments() -> tuple[Experiment, ...]:
    """Every registered kind, sorted by name."""
    return tuple(_REGISTRY[n] for n in names())


# ------------------------------------------------------------------------------- presets


class Preset(NamedTuple):
    """A preset file: ``name`` (file stem), its experiment kind, description, path, whether
    ``linkd figures`` draws it, and ``location`` (where it was found, see :func:`preset_dirs`)."""

    name: str
    experiment: str
    description: str
    path: Path
    figure: bool
    location: str = ""


def _source_checkout() -> Path | None:
    """The repository root if linkd runs from a source checkout (editable install), else None."""
    root = Path(__file__).resolve().parents[1]
    return root if (root / "pyproject.toml").is_file() and (root / "experiments").is_dir() else None


def _location(d: Path) -> str:
    if os.fspath(d) in os.environ.get("LINKD_PRESETS", "").split(os.pathsep):
        return "LINKD_PRESETS"
    if d.resolve() == Path(__file__).resolve().parent / "presets":
        return "installed package"
    return "source checkout" if d.name == "experiments" else str(d)


def preset_dirs() -> list[Path]:
    """Where presets live, first match wins: directories in ``$LINKD_PRESETS``
    (``os.pathsep``-separated), the source checkout's top-level ``experiments/`` (editable
    installs), then the installed package data ``linkd/presets/`` (the same files, shipped in the
    wheel from ``experiments/``)."""
    extra = [Path(p) for p in os.environ.get("LINKD_PRESETS", "").split(os.pathsep) if p]
    root = _source_checkout()
    dirs = [*extra, *([root / "experiments"] if root else []), Path(__file__).resolve().parent / "presets"]
    return [d for d in dirs if d.is_dir()]


def _preset(path: Path) -> Preset:
    t = read_toml(path)
    return Preset(path.stem, str(t.get("experiment", "?")), str(t.get("description", "")), path,
                  bool(t.get("figure", True)), _location(path.parent))


def find_preset(name: str) -> Preset | None:
    """Preset ``name`` (``<dir>/<name>.toml`` in the first of :func:`preset_dirs` holding it), or None."""
    if not name or "/" in name or "\\" in name or name.startswith("."):
        return None
    for d in preset_dirs():
        p = d / f"{name}.toml"
        if p.is_file():
            return _preset(p)
    return None


def list_presets() -> list[Preset]:
    """Every preset, sorted by name (a malformed file raises :class:`ConfigError`)."""
    seen: dict[str, Preset] = {}
    for d in preset_dirs():
        for p in sorted(d.glob("*.toml")):
            if p.stem not in seen:
                seen[p.stem] = _preset(p)
    return [seen[k] for k in sorted(seen)]


# ------------------------------------------------------------------------- loading configs

KIND_PREFIX = "kind:"


def _file_sha256(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def _unknown_experiment(src: str, problem: str = "unknown experiment") -> typing.NoReturn:
    presets = [p.name for p in list_presets()]
    kinds = [KIND_PREFIX + k for k in names()]
    near = difflib.get_close_matches(src, sorted({*presets, *names()}), n=2)
    hint = f" (did you mean {' or '.join(near)}?)" if near else ""
    searched = ", ".join(str(d) for d in preset_dirs()) or "no preset directory found"
    raise ConfigError("EXPERIMENT", src,
                      f"a preset ({', '.join(presets) or 'none found'}; searched {searched}), a path to a "
                      f".toml file, or an experiment kind's built-in defaults ({', '.join(kinds)})",
                      problem + hint)


def load_config(experiment_or_path: str | Path, overrides: Sequence[str] | Mapping[str, Any] = (), *,
                check: bool = True) -> Config:
    """Resolve a TOML path, a preset name or ``kind:NAME``, apply ``overrides`` and validate
    (the experiment's cross-field ``validate`` too, unless ``check=False``: then call
    ``config.validate()``).

    A bare name is a preset (``<preset dir>/<name>.toml``, see
    :func:`linkd.experiments.preset_dirs`) and nothing else: a missing preset is an error, never a
    silent fall-back to an experiment kind's built-in defaults, which must be asked for as
    ``kind:NAME``. ``config.origin`` records where the config came from (path and SHA-256 of the
    file, or the kind).
    """
    src = str(experiment_or_path)
    path = Path(src)
    if src.startswith(KIND_PREFIX):
        kind = src[len(KIND_PREFIX):]
        if kind not in names():
            _unknown_experiment(src, "unknown experiment kind")
        table, source, where = {"experiment": kind}, kind, ""
        origin = {"type": "experiment defaults", "name": kind}
    elif src.endswith(".toml") or path.is_file():
        table, source, where = read_toml(path), path.stem, str(path)
        origin = {"type": "file", "name": path.stem, "path": str(path.resolve()), "sha256": _file_sha256(path)}
    elif (preset := find_preset(src)) is not None:
        table, source, where = read_toml(preset.path), src, str(preset.path)
        origin = {"type": "preset", "name": src, "path": str(preset.path), "location": preset.location,
                  "sha256": _file_sha256(preset.path)}
    else:
        why = ("no preset of that name (the experiment kind's built-in defaults are "
               f"{KIND_PREFIX}{src})" if src in names() else "unknown experiment")
        _unknown_experiment(src, why)
    declared = table.get("experiment")
    if not isinstance(declared, str):
        raise ConfigError(f"{where}: experiment", declared, "an experiment kind: " + ", ".join(names()),
                          "missing or not a string")
    exp = get(declared)
    return build_config(declared, exp.full_schema, table, overrides, source=source, origin=origin,
                        validate=exp.validate, where=where, check=check)
