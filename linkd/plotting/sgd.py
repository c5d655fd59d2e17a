"""F12: minibatch SGD, distillation as a gradient denoiser (docs/theory.md §10). Drawn from recorded
arrays only: Monte Carlo mean ± one SD as shaded bands, the exact moments as lines, full-batch GD
dashed, and the per-direction variances on a log axis with the raw-label noise floor."""
from __future__ import annotations

import numpy as np

from linkd.plotting.style import PALETTE, new_figure, styled

__all__ = ["sgd_denoising"]

_TITLES = {"teacher": "teacher (labels $y$)", "raw": "student, labels $y$",
           "kd": r"student, teacher outputs $\hat y$"}


def _bands(ax, metrics, name: str, j: int, color) -> None:
    s = metrics[f"{name}_steps"]
    m, sd = metrics[f"{name}_mc_mean"][:, j], np.sqrt(metrics[f"{name}_mc_var"][:, j])
    ax.fill_between(s, m - sd, m + sd, color=color, alpha=0.25, lw=0, label="Monte Carlo mean ± SD")
    ax.plot(s, metrics[f"{name}_gd"][:, j], color="0.2", ls="--", lw=0.9, label="full-batch GD")
    if f"{name}_cf_mean" in metrics:
        cm, csd = metrics[f"{name}_cf_mean"][:, j], np.sqrt(metrics[f"{name}_cf_var"][:, j])
        ax.plot(s, cm, color=color, lw=1.0, label="exact mean")
        ax.plot(s, cm + csd, color=color, lw=0.8, ls=":", label="exact mean ± SD")
        ax.plot(s, cm - csd, color=color, lw=0.8, ls=":", label="_nolegend_")


def _variances(ax, metrics, j: int) -> None:
    for name, color in (("raw", PALETTE[1]), ("kd", PALETTE[2])):
        s, v = metrics[f"{name}_steps"], metrics[f"{name}_mc_var"][:, j]
        ok = (s > 0) & (v > 0)
        ax.plot(s[ok], v[ok], color=color, lw=0, marker="o", ms=2.0, label=f"Var, {name} (Monte Carlo)")
        if f"{name}_cf_var" in metrics:
            cv = metrics[f"{name}_cf_var"][:, j]
            good = (s > 0) & (cv > 0)
            ax.plot(s[good], cv[good], color=color, lw=1.0, label=f"Var, {name} (exact)")
    if "raw_floor_var" in metrics:
        ax.axhline(metrics["raw_floor_var"][j], color="0.4", lw=0.8, ls="-.", label="noise floor (raw labels)")
    ax.set_yscale("log")


@styled
def sgd_denoising(metrics, summary):
    """Rows: eigendirections; columns: teacher, student on y, student on ŷ (mean ± SD bands), variances."""
    dirs = [int(k) for k in metrics["directions"]]
    lam = metrics["eigvals"]
    fig, axes = new_figure("double", nrows=len(dirs), ncols=4, aspect=0.28 * len(dirs) + 0.12, squeeze=False)
    for i, k in enumerate(dirs):
        for c, name in enumerate(("teacher", "raw", "kd")):
            ax = axes[i, c]
            _bands(ax, metrics, name, i, PALETTE[c])
            ax.set_ylabel(rf"$c_{{{k}}}$" + (rf" ($\lambda={lam[k - 1]:.2g}$)" if c == 0 else ""))
            ax.set_xlabel("SGD step $t$")
            if i == 0:
                ax.set_title(_TITLES[name])
        _variances(axes[i, 3], metrics, i)
        axes[i, 3].set_ylabel(rf"Var $c_{{{k}}}$")
        axes[i, 3].set_xlabel("SGD step $t$")
        if i == 0:
            axes[i, 3].set_title("variances (students)")
    handles, labels = [], []
    for ax in (axes[0, 2], axes[0, 3]):
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="outside lower center", ncol=4)
    note = (f"η = {summary['lr']:.3g} ({summary['lr'] / summary['limit']:.2g} × {summary['limit_kind']}"
            f" = {summary['limit']:.3g}); {summary['seeds']} runs per model")
    fig.suptitle(note)
    return fig
