"""Sweep aggregate figure: each chosen summary metric against each grid axis, mean ± SE over seeds.

Axes carry the readable labels of :mod:`linkd.plotting.labels` (``train.lr_fraction`` is drawn as
"step size :math:`\\eta\\lambda_{\\max}`", docs/theory.md §2.2); a metric with a natural scale is
drawn with values within its round-off tolerance shown as 0 (:func:`metric_tolerances`), and the
tolerance is stated in the figure title and the caption.
"""
from __future__ import annotations

import json
from typing import Any, Sequence

import numpy as np

from linkd.plotting.labels import label, quantity, snap_zero, tolerance_note, zero_tolerance
from linkd.plotting.style import MARKERS, PALETTE, new_figure, styled

__all__ = ["sweep_summary", "metric_tolerances"]


def _numeric(values: Sequence) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def _text(v) -> str:
    return "+".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)


def metric_tolerances(experiment: str, metrics: Sequence[str], dtype: Any = np.float64) -> dict[str, float]:
    """Round-off tolerance of each metric (:func:`~linkd.plotting.labels.zero_tolerance` of its
    natural scale in ``dtype``); 0 for metrics that are never snapped (errors, unknown keys)."""
    out = {}
    for m in metrics:
        q = quantity(m, experiment)
        out[m] = zero_tolerance(q.scale if q else None, dtype)
    return out


@styled
def sweep_summary(table, metrics: Sequence[str], dtype: Any = np.float64):
    """Rows: ``metrics``; columns: the non-seed grid axes. In the panel of axis a, one line per
    combination of the other axes, error bars ±1 SE over seeds; each column's legend sits in a strip
    below it (none when the grid has one axis), so no legend covers data. Means and SEs within a
    metric's round-off tolerance (``dtype``: the runs' float type) are drawn as 0."""
    tols = metric_tolerances(table.experiment, metrics, dtype)
    axes_keys, M = list(table.axes), len(metrics)
    C, legends = len(axes_keys), len(axes_keys) > 1
    w = "double" if C > 1 else "single"
    aspect = (0.62 if C == 1 else 1.25 / C) * (M + 0.3 * legends) + 0.08
    fig, grid = new_figure(w, nrows=M + legends, ncols=C, squeeze=False, aspect=min(aspect, 1.33),
                           gridspec_kw={"height_ratios": [1.0] * M + [0.3] * legends})
    axes = grid[:M]
    for col, a in enumerate(axes_keys):
        others = [k for k in axes_keys if k != a]
        lines: dict[str, list[int]] = {}
        for g, vals in enumerate(table.groups):
            lines.setdefault(json.dumps({k: vals[k] for k in others}, sort_keys=True), []).append(g)
        for row, metric in enumerate(metrics):
            ax = axes[row, col]
            m = table.metrics.index(metric)
            for j, (lkey, members) in enumerate(lines.items()):
                xs = [table.groups[g][a] for g in members]
                x = np.asarray(xs, np.float64) if _numeric(xs) else np.arange(len(xs), dtype=np.float64)
                order = np.argsort(x, kind="stable")
                mu = snap_zero(table.mean[members, m][order], tols[metric])
                se = snap_zero(table.se[members, m][order], tols[metric])
                name = ", ".join(f"{label(k, table.experiment)} = {_text(v)}" for k, v in json.loads(lkey).items())
                ax.errorbar(x[order], mu, yerr=np.where(np.isfinite(se), se, 0.0), color=PALETTE[j % 8],
                            marker=MARKERS[j % 8], ms=3.0, mfc="none", capsize=2, lw=1.0, label=name or "mean ± SE")
                if not _numeric(xs):
                    ax.set_xticks(np.arange(len(xs)), [_text(xs[i]) for i in order])
            if _numeric(xs) and min(xs) > 0 and max(xs) / min(xs) >= 100:
                ax.set_xscale("log")
            ax.set_xlabel(label(a, table.experiment))
            ax.set_ylabel(label(metric, table.experiment, wrap=24))
        if legends:
            grid[M, col].axis("off")
            grid[M, col].legend(*axes[0, col].get_legend_handles_labels(), loc="center", ncol=min(len(lines), 2))
    n_seeds = int(table.n.max()) if table.n.size else 0
    title = f"mean ± SE over {n_seeds} seeds" if n_seeds > 1 else "one seed per point (no error bars)"
    snapped = sorted({t for t in tols.values() if t > 0})
    fig.suptitle(title + "".join(f"\n{tolerance_note(t)}" for t in snapped), fontsize="small")
    return fig
