"""Running experiments into run directories (what ``linkd run``/``sweep``/``plot`` do), as
library functions so tests and scripts can call them without the CLI."""
from __future__ import annotations

import contextlib
import itertools
import json
import re
import time
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from linkd.config import Config, ConfigError, field_of, parse_value
from linkd.errors import LinkdError, RunDirError, RunDirExistsError, one_line
from linkd.experiments.base import Experiment, Result, RunContext, get, null_progress
from linkd.progress import Progress
from linkd.rundir import (RUN_FILES, Run, RunDir, atomic_write_json, collect_meta, json_safe, load_run,
                          utc_now)

__all__ = ["x64_mode", "execute", "draw_figures", "parse_grid", "grid_points", "point_name", "sweep"]


@contextlib.contextmanager
def x64_mode(enabled: bool) -> Iterator[None]:
    """Set ``jax_enable_x64`` for the block, restoring the previous value after."""
    import jax

    prev = bool(jax.config.jax_enable_x64)
    jax.config.update("jax_enable_x64", bool(enabled))
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", prev)


def _check_result(exp: Experiment, result: Any, what: str = "run") -> Result:
    if not (isinstance(result, tuple) and len(result) == 2):
        raise TypeError(f"experiment {exp.name!r}: {what}() must return Result(metrics, summary), "
                        f"got {type(result).__name__}")
    metrics, summary = result
    if not isinstance(metrics, Mapping) or not isinstance(summary, Mapping):
        raise TypeError(f"experiment {exp.name!r}: Result.metrics and Result.summary must be dicts")
    return Result({str(k): np.asarray(v) for k, v in metrics.items()}, dict(summary))


def draw_figures(run: Run, directory: str | Path, formats: Sequence[str] = ("pdf", "png"),
                 dpi: int = 300) -> list[Path]:
    """Draw a loaded run's figures (``Experiment.figures``, in the paper style) and save them."""
    import matplotlib.pyplot as plt

    from linkd.plotting import save_figure, use_style

    exp = get(run.config.experiment)
    if exp.figures is None:
        return []
    with use_style():
        figs = exp.figures(run.metrics, run.summary, run.config)
    try:
        paths: list[Path] = []
        for stem, fig in figs.items():
            paths += save_figure(fig, directory, stem, formats=formats, dpi=dpi)
        return paths
    finally:
        for fig in figs.values():
            plt.close(fig)


def _write_result(rd: RunDir, result: Result, figures: bool, formats: Sequence[str]) -> None:
    rd.write_metrics(result.metrics)
    rd.write_summary(result.summary)
    if figures:  # drawn from what was written, so `linkd plot` redraws the same figure
        draw_figures(load_run(rd.path), rd.path / "figures", formats)


def _cleanup(rd: RunDir, fresh: bool) -> None:
    """After a user error: remove what this run wrote, and the directory if we made it."""
    for name in RUN_FILES:
        with contextlib.suppress(FileNotFoundError):
            (rd.path / name).unlink()
    with contextlib.suppress(OSError):
        (rd.path / "figures").rmdir()
    if fresh:
        with contextlib.suppress(OSError):
            rd.path.rmdir()


def execute(config: Config, out: str | Path, *, overwrite: bool = False, quiet: bool = True,
            figures: bool = True, formats: Sequence[str] = ("pdf", "png"),
            command: list[str] | None = None, progress: Any = None) -> Path:
    """Run ``config`` into the run directory ``out``; returns its path.

    Writes ``config.toml`` and ``meta.json`` (status "running") first, then ``metrics.npz``,
    ``summary.json``, ``figures/`` and the final ``meta.json`` (status "complete", wall seconds).
    On a user error (:class:`LinkdError`, e.g. divergence) the files are removed again; on any
    other exception ``meta.json`` is left with status "failed: ...".
    """
    exp = get(config.experiment)
    seed, x64 = config.get("run.seed"), config.get("run.x64")
    with x64_mode(x64):  # refuse bad input before touching the disk
        config.validate()
    fresh = not Path(out).exists()
    rd = RunDir(out, overwrite=overwrite)
    t0 = time.perf_counter()
    meta = collect_meta(seeds={"run.seed": seed}, x64=x64, command=command, start_time=utc_now(),
                        experiment=exp.name, source=config.source)
    try:
        with x64_mode(x64):
            rd.write_config(config)
            rd.write_meta(meta)
            if progress is None:
                progress = Progress(config.source, unit="steps", quiet=quiet)
            ctx = RunContext(seed=seed, x64=x64, quiet=quiet, progress=progress)
            result = _check_result(exp, exp.run(config, ctx))
            if hasattr(progress, "close"):
                progress.close()
            _write_result(rd, result, figures and exp.figures is not None, formats)
    except LinkdError:
        _cleanup(rd, fresh)
        raise
    except BaseException as e:
        meta.update(status=f"failed: {type(e).__name__}: {one_line(str(e))[:300]}",
                    wall_seconds=time.perf_counter() - t0)
        with contextlib.suppress(Exception):
            rd.write_meta(meta)
        raise
    meta.update(status="complete", wall_seconds=time.perf_counter() - t0)
    rd.write_meta(meta)
    return rd.path


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
        return ";".join(_value_text(x) for x in v)
    if isinstance(v, bool):
        return "true" if v else "false"
    return repr(v) if isinstance(v, float) else str(v)


def point_name(point: Mapping[str, Any]) -> str:
    """Directory name of a sweep point: ``train.lr=0.1,run.seed=3`` (unsafe characters -> ``_``)."""
    name = ",".join(f"{k}={_value_text(v)}" for k, v in point.items())
    return re.sub(r"[^A-Za-z0-9._=,;+-]", "_", name)


def sweep(config: Config, grid: Mapping[str, Sequence[Any]], out: str | Path, *, overwrite: bool = False,
          quiet: bool = True, figures: bool = True, formats: Sequence[str] = ("pdf", "png"),
          command: list[str] | None = None) -> Path:
    """Run every grid point into ``out/<point_name>/`` and write the index ``out/sweep.json``.

    If every grid key is in ``Experiment.vectorized`` and it has ``run_sweep``, the whole grid is
    one ``run_sweep`` call (one ``vmap``); otherwise points run one after another with progress.
    All points are validated before anything runs.
    """
    exp = get(config.experiment)
    points = grid_points(grid)
    with x64_mode(config.get("run.x64")):  # validation may build arrays
        configs = [config.with_overrides(p) for p in points]
    names = [point_name(p) for p in points]
    if len(set(names)) != len(names):
        raise ConfigError("--grid", json.dumps(json_safe(dict(grid))), "distinct values per axis",
                          "two grid points map to the same directory")
    root = Path(out)
    if root.is_dir() and any(root.iterdir()) and not overwrite:
        raise RunDirExistsError(f"{root} exists and is not empty; pass --overwrite to replace it "
                                "or choose another --out")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RunDirError(f"cannot create sweep directory {root}: {e.strerror}") from None
    vectorized = exp.run_sweep is not None and set(grid) <= set(exp.vectorized)
    x64 = config.get("run.x64")
    start, t0 = utc_now(), time.perf_counter()
    entries: list[dict[str, Any]] = []

    def write_point(i: int, result: Result, wall: float) -> None:
        rd = RunDir(root / names[i], overwrite=overwrite)
        rd.write_config(configs[i])
        meta = collect_meta(seeds={"run.seed": configs[i].get("run.seed")}, x64=x64, command=command,
                            start_time=start, wall_seconds=wall, status="complete", experiment=exp.name,
                            source=config.source,
                            sweep={"index": i, "point": points[i], "vectorized": vectorized})
        rd.write_meta(meta)
        _write_result(rd, result, figures and exp.figures is not None, formats)
        entries.append({"dir": names[i], "params": points[i], "summary": result.summary})

    with x64_mode(x64):
        if vectorized:
            ctx = RunContext(seed=config.get("run.seed"), x64=x64, quiet=quiet,
                             progress=Progress(f"{config.source} sweep", unit="steps", quiet=quiet))
            results = exp.run_sweep(config, points, ctx)
            if len(results) != len(points):
                raise TypeError(f"experiment {exp.name!r}: run_sweep returned {len(results)} results "
                                f"for {len(points)} points")
            wall = time.perf_counter() - t0
            for i, r in enumerate(results):
                write_point(i, _check_result(exp, r, "run_sweep"), wall)
        else:
            with Progress(f"{config.source} sweep", total=len(points), unit="runs", quiet=quiet) as prog:
                for i, c in enumerate(configs):
                    t1 = time.perf_counter()
                    ctx = RunContext(seed=c.get("run.seed"), x64=x64, quiet=True, progress=null_progress)
                    write_point(i, _check_result(exp, exp.run(c, ctx)), time.perf_counter() - t1)
                    prog(i + 1)
    index = {
        "experiment": exp.name, "source": config.source, "grid": dict(grid), "vectorized": vectorized,
        "base_config": config.to_dict(), "points": entries, "start_time": start,
        "wall_seconds": time.perf_counter() - t0, "command": command,
    }
    atomic_write_json(root / "sweep.json", index, note_nonfinite=True)
    return root
