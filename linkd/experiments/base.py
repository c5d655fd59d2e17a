"""The experiment interface: what an experiment kind declares and what the CLI calls.

An experiment module in ``linkd/experiments/`` builds an :class:`Experiment` and calls
:func:`register` at import time; the registry imports every module of the package on first use.
"""
from __future__ import annotations

import difflib
import functools
import importlib
import os
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import numpy as np

from linkd.config import Config, ConfigError, Field, Schema, read_toml

__all__ = [
    "Experiment", "Result", "RunContext", "RUN_SECTION", "register", "get", "names",
    "all_experiments", "Preset", "list_presets", "find_preset", "preset_dirs", "null_progress",
]


def null_progress(done: int, total: int | None = None) -> None:
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
    ``progress(done, total)`` reports training steps; call it from host code (e.g. between
    chunks of a scan) or ignore it. ``quiet`` asks for no other output.
    """

    seed: int = 0
    x64: bool = False
    quiet: bool = True
    progress: Callable[[int, int | None], None] = null_progress


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
    full_schema: Schema = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        if "run" in self.schema:
            raise ValueError(f"experiment {self.name!r}: section [run] is reserved (seed, x64)")
        full = {"run": dict(RUN_SECTION), **{s: dict(f) for s, f in self.schema.items()}}
        object.__setattr__(self, "full_schema", MappingProxyType(full))
        for key in self.vectorized:
            sec, _, k = key.partition(".")
            if k not in full.get(sec, {}):
                raise ValueError(f"experiment {self.name!r}: vectorized key {key!r} is not in its schema")


# ------------------------------------------------------------------------------ registry

_REGISTRY: dict[str, Experiment] = {}


def register(exp: Experiment, *, replace: bool = False) -> Experiment:
    """Add an experiment kind (at import of its module). Returns ``exp``."""
    if not isinstance(exp, Experiment):
        raise TypeError(f"register() takes an Experiment, got {type(exp).__name__}")
    if exp.name in _REGISTRY and not replace and _REGISTRY[exp.name] is not exp:
        raise ValueError(f"experiment {exp.name!r} is already registered")
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
    root = Path(__file__).resolve().parents[2]
    return root if (root / "pyproject.toml").is_file() and (root / "experiments").is_dir() else None


def _location(d: Path) -> str:
    if os.fspath(d) in os.environ.get("LINKD_PRESETS", "").split(os.pathsep):
        return "LINKD_PRESETS"
    if d.resolve() == Path(__file__).resolve().parents[1] / "presets":
        return "installed package"
    return "source checkout" if d.name == "experiments" else str(d)


def preset_dirs() -> list[Path]:
    """Where presets live, first match wins: directories in ``$LINKD_PRESETS``
    (``os.pathsep``-separated), the source checkout's top-level ``experiments/`` (editable
    installs), then the installed package data ``linkd/presets/`` (the same files, shipped in the
    wheel from ``experiments/``)."""
    extra = [Path(p) for p in os.environ.get("LINKD_PRESETS", "").split(os.pathsep) if p]
    root = _source_checkout()
    dirs = [*extra, *([root / "experiments"] if root else []), Path(__file__).resolve().parents[1] / "presets"]
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
