"""Running experiments into run directories (what ``linkd run``/``sweep``/``plot`` do), as
library functions so tests and scripts can call them without the CLI."""
from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import time
from pathlib import Path
from typing import Any, Iterator, Mapping, NamedTuple, Sequence

import numpy as np

from linkd.atomic import atomic_write_json, json_safe
from linkd.config import Config, ConfigError, field_of, parse_value
from linkd.errors import InputError, LinkdError, RunDirError, one_line
from linkd.progress_report import Progress
from linkd.registry import Experiment, Result, RunContext, get, load_config, null_progress
from linkd.rundir import RUN_FILES, RunDir, collect_meta, staged_directory, utc_now

__all__ = ["figure_caption", "x64_mode", "Run", "load_run", "execute", "draw_figures", "parse_grid", "grid_points", "point_name",
           "execute_sweep", "provenance", "SWEEP_FORMAT"]

#: Version of the ``sweep.json`` layout (documented in the README, "Sweeps").
SWEEP_FORMAT = 1


@contextlib.contextmanager
def x64_mode(enabled: bool) -> Iterator[None]:
    """Set ``jax_enable_x64`` for the block, restoring the previous value after."""
    import jax

    from linkd.dtypes import x64_enabled

    prev = x64_enabled()
    jax.config.update("jax_enable_x64", bool(enabled))
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", prev)


class Run(NamedTuple):
    """A run directory loaded back (unpacks as ``config, metrics, summary, meta``)."""

    config: Config
    metrics: dict[str, np.ndarray]
    summary: dict[str, Any]
    meta: dict[str, Any]


def load_run(path: str | os.PathLike) -> Run:
    """Read a run directory (:mod:`linkd.rundir`) back; missing files raise :class:`RunDirError`
    naming them. The config is re-validated against its experiment kind's schema."""
    path = Path(path)
    if not path.is_dir():
        raise RunDirError(f"{path} is not a directory; give the run directory printed by `linkd run`")
    missing = [n for n in RUN_FILES if not (path / n).is_file()]
    if missing:
        raise RunDirError(f"{path} is not a complete run directory (missing {', '.join(missing)}); "
                          "re-run it with `linkd run`")
    config = load_config(path / "config.toml")
    with np.load(path / "metrics.npz", allow_pickle=False) as z:
        metrics = {k: z[k] for k in z.files}
    summary = json.loads((path / "summary.json").read_text())
    meta = json.loads((path / "meta.json").read_text())
    return Run(config, metrics, summary, meta)


def _check_result(exp: Experiment, result: Any, what: str = "run") -> Result:
    if not (isinstance(result, tuple) and len(result) == 2):
        raise InputError(f"experiment {exp.name!r}: {what}() must return Result(metrics, summary); "
                         f"got {type(result).__name__}")
    metrics, summary = result
    if not isinstance(metrics, Mapping) or not isinstance(summary, Mapping):
        raise InputError(f"experiment {exp.name!r}: Result.metrics and Result.summary must be dicts; "
                         f"got {type(metrics).__name__} and {type(summary).__name__}")
    return Result({str(k): np.asarray(v) for k, v in metrics.items()}, dict(summary))


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    return "true" if v is True else "false" if v is False else str(v)


def figure_caption(run: Run, stem: str) -> tuple[str, str]:
    """``(caption, keywords)`` of a run's figure: what it shows, the headline numbers, every
    resolved parameter, and where the run came from (command, config digest, versions)."""
    exp = get(run.config.experiment)
    values = [f"{sec}.{k} = {_fmt(v)}" for sec, vals in run.config.to_dict().items() for k, v in vals.items()]
    head = []
    for key in exp.headline:
        v: Any = run.summary
        for part in key.split("."):
            v = v.get(part) if isinstance(v, dict) else None
        if v is not None:
            head.append(f"{key} = {v:.3e}" if isinstance(v, float) else f"{key} = {v}")
    meta, git = run.meta, (run.meta.get("git") or {})
    lines = [
        f"{stem}: {run.config.description or exp.description}",
        *([f"Results: {'; '.join(head)}."] if head else []),
        f"Parameters ({meta.get('source') or run.config.source}, experiment {exp.name}): {'; '.join(values)}.",
        f"Config {meta.get('config_sha256') or run.config.digest()}; origin "
        f"{json.dumps(meta.get('config_origin') or dict(run.config.origin))}.",
        f"Command: {' '.join(meta.get('command') or [])}; reproduce with `linkd run config.toml` in the run "
        "directory.",
        f"linkd {meta.get('linkd_version')}, jax {(meta.get('versions') or {}).get('jax')}, backend "
        f"{meta.get('backend')}, x64 {meta.get('x64')}, git {git.get('commit') or 'n/a'}"
        + (" (dirty)" if git.get("dirty") else "") + f", started {meta.get('start_time')}.",
    ]
    return "\n".join(lines) + "\n", "; ".join(values)


def draw_figures(run: Run, directory: str | Path, formats: Sequence[str] = ("pdf", "png"),
                 dpi: int = 300) -> list[Path]:
    """Draw a loaded run's figures (``Experiment.figures``, in the paper style) and save them, each
    with its parameters in the file metadata and in ``<stem>.caption.txt`` (:func:`figure_caption`);
    other formats of the same figures are removed (no stale rendering is left)."""
    import matplotlib.pyplot as plt

    from linkd.plotting import save_figure, use_style

    exp = get(run.config.experiment)
    if exp.figures is None:
        return []
    with use_style():
        figs = exp.figures(run.metrics, run.summary, run.config)
    try:
        if sorted(figs) != sorted(exp.stems):
            raise InputError(f"experiment {exp.name!r}: figures() must draw the stems it declares, "
                             f"Experiment.figure_stems = {list(exp.stems)}; got {sorted(figs)}")
        paths: list[Path] = []
        for stem, fig in figs.items():
            caption, keywords = figure_caption(run, stem)
            paths += save_figure(fig, directory, stem, formats=formats, dpi=dpi, caption=caption,
                                 title=f"{stem}: {run.config.description or exp.description}", keywords=keywords)
        return paths
    finally:
        for fig in figs.values():
            plt.close(fig)


def _write_result(rd: RunDir, result: Result, figures: bool, formats: Sequence[str]) -> None:
    rd.write_metrics(result.metrics)
    rd.write_summary(result.summary)
    if figures:  # drawn from what was written, so `linkd plot` redraws the same figure
        draw_figures(load_run(rd.path), rd.path / "figures", formats)


def provenance(config: Config) -> dict[str, Any]:
    """What ``meta.json`` records about the config: where it came from (preset name, file path,
    location and the file's SHA-256, or the kind's built-in defaults) and the digest of the
    resolved values (:meth:`Config.digest`)."""
    return {"source": config.source, "config_origin": dict(config.origin), "config_sha256": config.digest()}


def execute(config: Config, out: str | Path, *, overwrite: bool = False, quiet: bool = True,
            figures: bool = True, formats: Sequence[str] = ("pdf", "png"),
            command: list[str] | None = None, progress: Any = None) -> Path:
    """Run ``config`` into the run directory ``out``; returns its path.

    The run is built in a staging directory beside ``out`` (``config.toml`` and ``meta.json`` with
    status "running" first, then ``metrics.npz``, ``summary.json``, ``figures/`` and the final
    ``meta.json``) and renamed to ``out`` only when it completed (:func:`staged_directory`): with
    ``overwrite`` the previous run is replaced only then. On a user error (:class:`LinkdError`,
    e.g. divergence) nothing is left behind; on any other exception (a bug) a new ``out`` keeps
    ``meta.json`` with status "failed: ..." for inspection.
    """
    exp = get(config.experiment)
    seed, x64 = config.get("run.seed"), config.get("run.x64")
    with x64_mode(x64):  # refuse bad input before touching the disk
        config.validate()
    t0 = time.perf_counter()
    meta = collect_meta(seeds={"run.seed": seed}, x64=x64, command=command, start_time=utc_now(),
                        experiment=exp.name, **provenance(config))
    with staged_directory(out, overwrite=overwrite) as staging:
        rd = RunDir(staging)
        try:
            with x64_mode(x64):
                rd.write_config(config)
                rd.write_meta(meta)
                if progress is None:
                    progress = Progress(config.source, quiet=quiet)
                ctx = RunContext(seed=seed, x64=x64, quiet=quiet, progress=progress)
                result = _check_result(exp, exp.run(config, ctx))
                if hasattr(progress, "close"):
                    progress.close()
                _write_result(rd, result, figures and exp.figures is not None, formats)
        except LinkdError:
            raise
        except BaseException as e:
            meta.update(status=f"failed: {type(e).__name__}: {one_line(str(e))[:300]}",
                        wall_seconds=time.perf_counter() - t0)
            with contextlib.suppress(Exception):
                rd.write_meta(meta)
            raise
        meta.update(status="complete", wall_seconds=time.perf_counter() - t0)
        rd.write_meta(meta)
    return Path(out)


# ---------------------------------------------------------------------------------- sweeps


def parse_grid(config: Config, items: Sequence[str]) -> dict[str, list[Any]]:
    """``["train.lr=0.1,0.2", "run.seed=0,1"]`` -> ``{"train.lr": [0.1, 0.2], "run.seed": [0, 1]}``.

    Values are parsed with the field's type; for list-valued fields separate values with ``;``.
    """
    grid: dict[str, list[Any]] = {}
    for item in items:
        key, eq, text = item.partition("=")
        key = key.strip()
        if not eq or not text.strip():
            raise ConfigError("--grid", item, "key=v1,v2,... with a dotted key, e.g. train.lr=0.1,0.2",
                              "malformed grid axis")
        f = field_of(config.schema, key, text)
        if key in grid:
            raise ConfigError("--grid", item, "each key once", f"{key} is given twice")
        if key == "run.x64":
            raise ConfigError("--grid", item, "any key but run.x64 (use --x64 for the whole sweep)",
                              "cannot sweep precision")
        sep = ";" if f.spec.is_list else ","
        grid[key] = [parse_value(key, f, v) for v in text.split(sep)]
    if not grid:
        raise ConfigError("--grid", "", "at least one --grid key=v1,v2,...", "no grid axes")
    return grid


def grid_points(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Cartesian product, first key varying slowest."""
    keys = list(grid)
    return [dict(zip(keys, vals)) for vals in itertools.product(*(grid[k] for k in keys))]


def _value_text(v: Any) -> str:
    if isinstance(v, (tuple, list)):
        return "+".join(_value_text(x) for x in v)
    if isinstance(v, bool):
        return "true" if v else "false"
    return repr(v) if isinstance(v, float) else str(v)


def point_name(point: Mapping[str, Any]) -> str:
    """Directory name of a sweep point, ``train.lr=0.1,run.seed=3``: list values joined by ``+``,
    any character a POSIX shell would need quoted replaced by ``_`` (the name starts with a key,
    never with ``-``), so ``cd train.lr=0.1,run.seed=3`` works as typed."""
    name = ",".join(f"{k}={_value_text(v)}" for k, v in point.items())
    return re.sub(r"[^A-Za-z0-9._=,+-]", "_", name)


def _sweep_index(exp: Experiment, config: Config, grid, vectorized: bool, entries, start: str, t0: float,
                 command) -> dict[str, Any]:
    return {
        "format": SWEEP_FORMAT, "experiment": exp.name, **provenance(config), "grid": dict(grid),
        "vectorized": vectorized, "base_config": config.to_dict(), "points": entries, "start_time": start,
        "wall_seconds": time.perf_counter() - t0, "command": command,
    }


def _selected_results(exp: Experiment, config: Config, configs: list[Config], points: list[dict[str, Any]],
                      vectorized: bool, quiet: bool, t0: float, select: Sequence[int] | None,
                      gather: Any) -> Iterator[tuple[int, Result, float]]:
    """``_sweep_results`` of the ``select``-ed points (global indices kept), then ``gather``-ed, in grid order."""
    if select is None and gather is None:
        yield from _sweep_results(exp, config, configs, points, vectorized, quiet, t0)
        return
    chosen = list(range(len(points)) if select is None else select)
    local = []
    if chosen:
        mine = _sweep_results(exp, config, [configs[j] for j in chosen], [points[j] for j in chosen], vectorized,
                              quiet, t0)
        local = [(chosen[k], r, w) for k, r, w in mine]
    yield from sorted(gather(local) if gather is not None else local, key=lambda t: t[0])


def _sweep_results(exp: Experiment, config: Config, configs: list[Config], points: list[dict[str, Any]],
                   vectorized: bool, quiet: bool, t0: float) -> Iterator[tuple[int, Result, float]]:
    """``(index, checked result, wall seconds)`` for every grid point: one ``run_sweep`` call when
    ``vectorized`` (progress in the unit the experiment reports, e.g. GD steps, all points moving
    together), else ``run`` point after point with progress counted in sweep points."""
    x64 = config.get("run.x64")
    if vectorized:
        with Progress(f"{config.source} sweep ({len(points)} points, vectorized)", quiet=quiet) as prog:
            ctx = RunContext(seed=config.get("run.seed"), x64=x64, quiet=quiet, progress=prog)
            assert exp.run_sweep is not None  # `vectorized` implies run_sweep
            results = exp.run_sweep(config, points, ctx)
        if len(results) != len(points):
            raise InputError(f"experiment {exp.name!r}: run_sweep must return one result per point; "
                             f"got {len(results)} results for {len(points)} points")
        wall = time.perf_counter() - t0
        for i, r in enumerate(results):
            yield i, _check_result(exp, r, "run_sweep"), wall
        return
    with Progress(f"{config.source} sweep", total=len(points), unit="points", quiet=quiet) as prog:
        for i, c in enumerate(configs):
            t1 = time.perf_counter()
            ctx = RunContext(seed=c.get("run.seed"), x64=x64, quiet=True, progress=null_progress)
            result = _check_result(exp, exp.run(c, ctx))
            yield i, result, time.perf_counter() - t1
            prog(i + 1)


def execute_sweep(config: Config, grid: Mapping[str, Sequence[Any]], out: str | Path, *, overwrite: bool = False,
          quiet: bool = True, figures: bool = True, formats: Sequence[str] = ("pdf", "png"),
          command: list[str] | None = None, select: Sequence[int] | None = None, gather: Any = None,
          write: bool = True, index_extra: Mapping[str, Any] | None = None) -> Path | None:
    """Run every grid point into ``out/<point_name>/``, write the index ``out/sweep.json`` and the
    aggregate ``out/sweep_summary.csv`` (mean ± SE over seeds, :mod:`linkd.sweeps`; ``linkd plot
    SWEEP_DIR`` draws it).

    If every grid key is in ``Experiment.vectorized`` and it has ``run_sweep``, the whole grid is
    one ``run_sweep`` call (one ``vmap``); otherwise points run one after another with progress.
    All points are validated before anything runs; the sweep is built beside ``out`` and swapped
    in when complete (:func:`~linkd.rundir.staged_directory`).

    Several processes (:mod:`linkd.distributed`, docs/distributed.md): ``select`` the grid indices
    this call computes (``--shard``, or this process's part), ``gather`` a function taking this
    process's ``[(index, Result, wall)]`` and returning every process's, ``write=False`` on the
    processes that only compute (returns None), ``index_extra`` keys added to ``sweep.json``. Each
    point is computed exactly as by the full sweep (same function, same inputs).
    """
    from linkd import sweeps

    exp = get(config.experiment)
    points = grid_points(grid)
    with x64_mode(config.get("run.x64")):  # validation may build arrays
        configs = [config.with_overrides(p) for p in points]
    names = [point_name(p) for p in points]
    if len(set(names)) != len(names):
        raise ConfigError("--grid", json.dumps(json_safe(dict(grid))), "distinct values per axis",
                          "two grid points map to the same directory")
    vectorized = exp.run_sweep is not None and set(grid) <= set(exp.vectorized)
    x64 = config.get("run.x64")
    start, t0 = utc_now(), time.perf_counter()
    entries: list[dict[str, Any]] = []
    if not write:
        with x64_mode(x64):
            for _ in _selected_results(exp, config, configs, points, vectorized, quiet, t0, select, gather):
                pass
        return None
    with staged_directory(out, overwrite=overwrite) as root, x64_mode(x64):

        def write_point(i: int, result: Result, wall: float) -> None:
            rd = RunDir(root / names[i])
            rd.write_config(configs[i])
            meta = collect_meta(seeds={"run.seed": configs[i].get("run.seed")}, x64=x64, command=command,
                                start_time=start, wall_seconds=wall, status="complete", experiment=exp.name,
                                **provenance(configs[i]),
                                sweep={"index": i, "point": points[i], "vectorized": vectorized})
            rd.write_meta(meta)
            _write_result(rd, result, figures and exp.figures is not None, formats)
            entries.append({"dir": names[i], "params": points[i], "config_sha256": configs[i].digest(),
                            "summary": result.summary})

        for i, result, wall in _selected_results(exp, config, configs, points, vectorized, quiet, t0, select, gather):
            write_point(i, result, wall)
        index = {**_sweep_index(exp, config, grid, vectorized, entries, start, t0, command), **(index_extra or {})}
        atomic_write_json(root / "sweep.json", index, note_nonfinite=True)
        sweeps.write_summary(root, formats=())  # the CSV; `linkd plot SWEEP_DIR` draws it
    return Path(out)
