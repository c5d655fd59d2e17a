"""Aggregating a sweep directory (``linkd sweep`` output): mean ± standard error over seeds.

A sweep directory holds ``sweep.json`` (the index, layout below) and one run directory per grid
point. :func:`aggregate` groups the points by every grid axis except ``run.seed`` and, for each
numeric scalar of the points' ``summary.json`` (nested keys joined by ``.``), gives the mean over
the seeds of the group and its standard error SE = s/√m (s the sample standard deviation over
the m seeds with a finite value; SE is NaN when m < 2). :func:`write_summary` writes the table as
``sweep_summary.csv`` and draws it against each grid axis (:mod:`linkd.plotting.sweep`).

``sweep.json`` (``format`` 1)::

    format          1
    experiment      experiment kind
    source          preset name or config file stem
    config_origin   where the base config came from (type, name, path, sha256 of the file)
    config_sha256   digest of the resolved base config (Config.digest)
    grid            {"section.key": [values, ...], ...}, in --grid order (first varies slowest)
    vectorized      true if the whole grid ran as one vmapped call
    base_config     the resolved base config, {section: {key: value}}
    points          [{"dir": point directory name, "params": {key: value}, "config_sha256": ...,
                      "summary": that point's summary.json}, ...] in grid order
    start_time, wall_seconds, command
    shard           only in a slice written by ``linkd sweep --shard I/N``: {"index": I, "count": N,
                    "points": [grid indices of its points]}; :func:`merge` (``linkd sweep --merge``)
                    combines the N slices into the directory one run writes (docs/distributed.md)
"""
from __future__ import annotations

import csv
import io
import json
import math
import re
import shutil
import time
from pathlib import Path
from typing import Any, Mapping, NamedTuple, Sequence

import numpy as np

from linkd.errors import ConfigError, RunDirError

__all__ = ["SEED_KEY", "CSV_NAME", "SweepTable", "is_sweep_dir", "load_index", "flatten_summary", "aggregate", "to_csv",
           "default_metrics", "write_summary", "sweep_caption", "merge"]

SEED_KEY = "run.seed"
CSV_NAME = "sweep_summary.csv"


class SweepTable(NamedTuple):
    """``groups[g]``: the non-seed grid values of group g; ``mean``/``se``/``n``: (G, M) arrays
    over ``metrics`` (n = seeds with a finite value)."""

    experiment: str
    axes: tuple[str, ...]
    groups: list[dict[str, Any]]
    metrics: tuple[str, ...]
    mean: np.ndarray
    se: np.ndarray
    n: np.ndarray


def is_sweep_dir(path: str | Path) -> bool:
    """Whether ``path`` is a sweep directory (holds the index ``sweep.json``)."""
    return (Path(path) / "sweep.json").is_file()


def load_index(path: str | Path) -> dict[str, Any]:
    """``sweep.json`` of the sweep directory ``path``."""
    f = Path(path) / "sweep.json"
    try:
        index = json.loads(f.read_text())
    except FileNotFoundError:
        raise RunDirError(f"{path} has no sweep.json; give the directory printed by `linkd sweep`") from None
    except json.JSONDecodeError as e:
        raise RunDirError(f"{f} is not valid JSON ({e.msg}); re-run the sweep") from None
    if not isinstance(index, dict) or not isinstance(index.get("points"), list) or "grid" not in index:
        raise RunDirError(f"{f} is not a linkd sweep index (no grid or points)")
    return index


def flatten_summary(summary: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """Numeric scalars of a summary (booleans and lists left out), nested keys joined by ``.``."""
    out: dict[str, float] = {}
    for k, v in summary.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flatten_summary(v, key + "."))
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out[key] = float(v)
        elif v is None and not k.startswith("_"):
            out[key] = math.nan  # a non-finite value written as null
    return out


def _key(v: Any) -> str:
    return json.dumps(v, sort_keys=True)


def aggregate(index: Mapping[str, Any]) -> SweepTable:
    """Group the points by the non-seed grid axes; mean, SE and count over seeds per metric."""
    axes = tuple(k for k in index["grid"] if k != SEED_KEY)
    flat = [flatten_summary(p.get("summary") or {}) for p in index["points"]]
    metrics = tuple(dict.fromkeys(k for f in flat for k in f))
    groups: dict[str, tuple[dict[str, Any], list[int]]] = {}
    for i, p in enumerate(index["points"]):
        vals = {a: p["params"][a] for a in axes}
        groups.setdefault(_key(vals), (vals, []))[1].append(i)
    G, M = len(groups), len(metrics)
    mean, se, n = np.full((G, M), np.nan), np.full((G, M), np.nan), np.zeros((G, M), np.int64)
    for g, (_, members) in enumerate(groups.values()):
        for m, name in enumerate(metrics):
            x = np.asarray([flat[i].get(name, np.nan) for i in members], np.float64)
            x = x[np.isfinite(x)]
            n[g, m] = x.size
            if x.size:
                mean[g, m] = x.mean()
            if x.size > 1:
                se[g, m] = x.std(ddof=1) / math.sqrt(x.size)
    return SweepTable(str(index.get("experiment", "")), axes, [v for v, _ in groups.values()], metrics, mean, se, n)


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "+".join(_cell(x) for x in v)
    return "true" if v is True else "false" if v is False else str(v)


def to_csv(table: SweepTable) -> str:
    """Long format, one row per (group, metric): the grid values, ``metric``, ``n``, ``mean``, ``se``
    (``nan`` where undefined)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([*table.axes, "metric", "n", "mean", "se"])
    for g, vals in enumerate(table.groups):
        for m, name in enumerate(table.metrics):
            w.writerow([*(_cell(vals[a]) for a in table.axes), name, int(table.n[g, m]),
                        repr(float(table.mean[g, m])), repr(float(table.se[g, m]))])
    return buf.getvalue()


def default_metrics(table: SweepTable) -> list[str]:
    """The experiment's headline keys present in the table, else its first six metrics."""
    try:
        from linkd.registry import get

        headline = [k for k in get(table.experiment).headline if k in table.metrics]
    except ConfigError:
        headline = []
    return headline or list(table.metrics[:6])


def write_summary(root: str | Path, formats: Sequence[str] = ("pdf", "png"), metrics: Sequence[str] = (),
                  out: str | Path | None = None) -> list[Path]:
    """Write ``root/sweep_summary.csv`` and, for ``formats``, the figure ``sweep_summary`` (mean ± SE
    against each grid axis; into ``out``, default ``root/figures``). Returns the paths written."""
    from linkd.atomic import atomic_write_text

    root = Path(root)
    index = load_index(root)
    table = aggregate(index)
    unknown = [m for m in metrics if m not in table.metrics]
    if unknown:
        raise ConfigError("--metric", ",".join(unknown), "numeric summary keys: " + ", ".join(table.metrics),
                          "not in the sweep's summaries")
    paths = [atomic_write_text(root / CSV_NAME, to_csv(table))]
    if formats and table.axes and table.metrics:
        from linkd.plotting.style import save_figure
        from linkd.plotting.sweep import sweep_summary

        chosen = list(metrics) or default_metrics(table)
        dtype = np.float64 if (index.get("base_config") or {}).get("run", {}).get("x64", True) else np.float32
        fig = sweep_summary(table, chosen, dtype)
        caption = sweep_caption(index, table, chosen, dtype)
        paths += save_figure(fig, Path(out) if out else root / "figures", "sweep_summary", formats=formats,
                             caption=caption, title=f"{index.get('source', '')} sweep")
        import matplotlib.pyplot as plt

        plt.close(fig)
    return paths


def sweep_caption(index: Mapping[str, Any], table: SweepTable, metrics: Sequence[str], dtype: Any = np.float64) -> str:
    """The sweep figure's caption: what is drawn against what, the labels' keys, the round-off
    tolerances, the grid and the base config."""
    from linkd.plotting.labels import label, tolerance_note
    from linkd.plotting.sweep import metric_tolerances

    seeds = index["grid"].get(SEED_KEY)
    grid = "; ".join(f"{k} = {', '.join(_cell(v) for v in vals)}" for k, vals in index["grid"].items())
    keys = "; ".join(f"{label(k, table.experiment)} = {k}" for k in (*metrics, *table.axes))
    tols = metric_tolerances(table.experiment, metrics, dtype)
    snapped = "; ".join(f"{m}: {tolerance_note(t)}" for m, t in tols.items() if t > 0)
    lines = [
        f"Sweep of {index.get('source')} ({index.get('experiment')}): {', '.join(metrics)} against "
        f"{', '.join(table.axes)}; mean ± standard error over "
        + (f"{len(seeds)} seeds (run.seed)" if seeds else "1 seed (no run.seed axis: no error bars)") + ".",
        f"Labels: {keys}.",
        *([f"Round-off (√ε of {np.dtype(dtype).name} times the quantity's scale): {snapped}."] if snapped else []),
        f"Grid: {grid}.",
        f"Base config {index.get('config_sha256', '?')} from {json.dumps(index.get('config_origin', {}))}.",
        "Command: " + " ".join(index.get("command") or []),
    ]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------- merge

_SAME = ("format", "experiment", "source", "config_sha256", "grid", "vectorized", "base_config")


def _restore_nonfinite(index: dict[str, Any]) -> dict[str, Any]:
    """``index`` with the values that ``_nonfinite`` lists (written as null) put back as floats."""
    for path, text in (index.pop("_nonfinite", None) or {}).items():
        tokens = [t for t in re.findall(r"[^.\[\]]+", path)]
        node: Any = index
        for t in tokens[:-1]:
            node = node[int(t)] if isinstance(node, list) else node[t]
        last = tokens[-1]
        if isinstance(node, list):
            node[int(last)] = float(text)
        else:
            node[last] = float(text)
    return index


def merge(dirs: Sequence[str | Path], out: str | Path, *, overwrite: bool = False,
          command: list[str] | None = None) -> Path:
    """Combine the slices written by ``linkd sweep --shard I/N`` (every I of one N, same experiment,
    base config and grid) into ``out``: the sweep directory one ``linkd sweep`` run writes, byte
    for byte apart from the timing and command fields (``start_time``, ``wall_seconds``,
    ``command``, and per point ``meta.json``'s). Point directories are copied; ``out`` is built
    beside its final path and swapped in when complete."""
    from linkd.atomic import atomic_write_json
    from linkd.rundir import staged_directory

    if not dirs:
        raise ConfigError("--merge", "", "the directories written by `linkd sweep --shard I/N`", "none given")
    shards = []
    for d in dirs:
        index = _restore_nonfinite(load_index(d))
        shard = index.get("shard")
        if not isinstance(shard, dict):
            raise RunDirError(f"{d} is not a slice of a sweep (no \"shard\" in its sweep.json); "
                              "--merge takes the directories written by `linkd sweep --shard I/N`")
        shards.append((Path(d), index, shard))
    first = shards[0][1]
    count = shards[0][2]["count"]
    for d, index, shard in shards:
        for k in _SAME:
            if index.get(k) != first.get(k):
                raise RunDirError(f"{d} is a slice of another sweep ({k} differs from {shards[0][0]}'s)")
        if shard["count"] != count:
            raise RunDirError(f"{d} is slice {shard['index']}/{shard['count']}, not of {count}")
    have = sorted(s["index"] for _, _, s in shards)
    if have != list(range(count)):
        missing = sorted(set(range(count)) - set(have))
        twice = sorted({i for i in have if have.count(i) > 1})
        raise RunDirError(f"--merge needs each of the {count} slices once; "
                          + (f"missing {', '.join(f'{i}/{count}' for i in missing)}" if missing else "")
                          + ("; " if missing and twice else "")
                          + (f"given twice: {', '.join(f'{i}/{count}' for i in twice)}" if twice else ""))
    t0 = time.perf_counter()
    entries: list[tuple[int, Path, dict[str, Any]]] = []
    for d, index, shard in shards:
        if len(shard["points"]) != len(index["points"]):
            raise RunDirError(f"{d}/sweep.json: shard lists {len(shard['points'])} points, index has "
                              f"{len(index['points'])}")
        entries += [(int(i), d, e) for i, e in zip(shard["points"], index["points"])]
    entries.sort(key=lambda t: t[0])
    n = math.prod(len(v) for v in first["grid"].values())
    if [i for i, _, _ in entries] != list(range(n)):
        raise RunDirError(f"the slices hold grid points {[i for i, _, _ in entries]}, not 0..{n - 1}")
    with staged_directory(out, overwrite=overwrite) as root:
        for _, d, e in entries:
            shutil.copytree(d / e["dir"], root / e["dir"])
        merged = {k: v for k, v in first.items() if k != "shard"}
        merged.update(points=[e for _, _, e in entries],
                      start_time=min(str(ix.get("start_time")) for _, ix, _ in shards),
                      wall_seconds=sum(float(ix.get("wall_seconds") or 0.0) for _, ix, _ in shards)
                      + time.perf_counter() - t0,
                      command=command if command is not None else first.get("command"))
        atomic_write_json(root / "sweep.json", merged, note_nonfinite=True)
        write_summary(root, formats=())
    return Path(out)
