"""Sweep aggregate figure: each chosen summary metric against each grid axis, mean ± SE over seeds."""
from __future__ import annotations

import json
from typing import Sequence

import numpy as np

from linkd.plotting.style import MARKERS, PALETTE, new_figure, styled


def _numeric(values: Sequence) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def _text(v) -> str:
    return "+".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)


@styled
def sweep_summary(table, metrics: Sequence[str]):
    """Rows: ``metrics``; columns: the non-seed grid axes. In the panel of axis a, one line per
    combination of the other axes, error bars ±1 SE over seeds; each column's legend sits in a strip
    below it (none when the grid has one axis), so no legend covers data."""
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
                mu, se = table.mean[members, m][order], table.se[members, m][order]
                label = ", ".join(f"{k}={_text(v)}" for k, v in json.loads(lkey).items()) or "mean ± SE"
                ax.errorbar(x[order], mu, yerr=np.where(np.isfinite(se), se, 0.0), color=PALETTE[j % 8],
                            marker=MARKERS[j % 8], ms=3.0, mfc="none", capsize=2, lw=1.0, label=label)
                if not _numeric(xs):
                    ax.set_xticks(np.arange(len(xs)), [_text(xs[i]) for i in order])
            if _numeric(xs) and min(xs) > 0 and max(xs) / min(xs) >= 100:
                ax.set_xscale("log")
            ax.set_xlabel(a)
            ax.set_ylabel(metric if len(metric) <= 28 else "…" + metric[-27:])
        if legends:
            grid[M, col].axis("off")
            grid[M, col].legend(*axes[0, col].get_legend_handles_labels(), loc="center", ncol=min(len(lines), 2))
    n_seeds = int(table.n.max()) if table.n.size else 0
    fig.suptitle(f"mean ± SE over {n_seeds} seeds" if n_seeds > 1 else "one seed per point (no error bars)")
    return fig
