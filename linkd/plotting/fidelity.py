"""Figures of the classification experiments: F3 confidence exaggeration, F8 fidelity, F9 ensemble
attention. Each draws from recorded arrays only (``linkd plot`` redraws a run without re-running)."""
from __future__ import annotations

import numpy as np

from linkd.plotting.style import MARKERS, PALETTE, new_figure, styled

__all__ = ["confidence_exaggeration", "fidelity", "ensemble_attention"]


@styled
def confidence_exaggeration(metrics, summary):
    """F3: φ(p_S(ŷ_T|x)) against φ(p_T(ŷ_T|x)) with the paper's protocol; one row per student (MSE,
    soft-CE at each τ), train (left) and test (right). Measured: points (first seed), OLS fit, bin
    means. Closed form: train MSE — the exact per-point prediction's bin means and OLS line; test —
    the Gaussian limit Y = βX. One legend below the panels (it covers no data)."""
    names = list(summary["students"])
    fig, axes = new_figure("double", nrows=len(names), ncols=2, aspect=0.30 * len(names) + 0.08, squeeze=False)
    titles = {"mse": "MSE student"}
    for r, name in enumerate(names):
        label = titles.get(name, f"soft-CE student, $\\tau={name[3:]}$")
        for c, split in enumerate(("train", "test")):
            _confidence_panel(axes[r, c], metrics, summary, name, split, label, r == len(names) - 1)
    handles, labels = [], []
    for ax in axes.ravel():
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h), labels.append(lab)
    fig.legend(handles, labels, loc="outside lower center", ncol=3)
    return fig


_CONF_LABELS = {
    "points": "examples (first seed)", "diag": "$Y = X$ (no deviation)", "fit": "OLS fit (measured)",
    "bins": "bin means (measured)", "pred_bins": "bin means, closed form (MSE, train)",
    "pred_fit": "OLS line, closed form (MSE, train)", "beta": r"test limit $Y = \beta X$, $\beta = w_S^\top\Sigma w_T/w_T^\top\Sigma w_T$",
}


def _confidence_panel(ax, metrics, summary, name, split, label, bottom):
    pre = f"{name}_{split}"
    x, y = np.asarray(metrics[f"{pre}_x"]), np.asarray(metrics[f"{pre}_y"])
    few = x.size < 2000  # a small training set: larger, more opaque points
    ax.scatter(x, y, s=6.0 if few else 1.5, color=PALETTE[5], alpha=0.6 if few else 0.3, linewidths=0, rasterized=True,
               label=_CONF_LABELS["points"])
    lo = float(min(np.quantile(x, 0.001), 0.0))
    hi = float(np.quantile(x, 0.995))
    grid = np.linspace(lo, hi, 2)
    ax.plot(grid, grid, color="0.4", ls=":", lw=0.9, label=_CONF_LABELS["diag"])
    slope, icpt = float(summary[f"{pre}_slope"]), float(summary[f"{pre}_intercept"])
    ax.plot(grid, icpt + slope * grid, color=PALETTE[1], lw=1.2, label=_CONF_LABELS["fit"])
    ax.plot(metrics[f"{pre}_bin_x"], metrics[f"{pre}_bin_y"], ls="none", marker=MARKERS[0], ms=3.5,
            color=PALETTE[0], label=_CONF_LABELS["bins"])
    extra = ""
    if split == "train" and name == "mse" and "mse_train_pred_bin_x" in metrics:
        px, py = np.asarray(metrics["mse_train_x"]), np.asarray(metrics["mse_train_pred_y"])
        ps = float(summary["mse_train_pred_slope"])
        ax.plot(grid, (py.mean() - ps * px.mean()) + ps * grid, color="k", ls="--", lw=0.9, label=_CONF_LABELS["pred_fit"])
        ax.plot(metrics["mse_train_pred_bin_x"], metrics["mse_train_pred_bin_y"], ls="none", marker=MARKERS[1],
                ms=5.0, mfc="none", color="k", label=_CONF_LABELS["pred_bins"])
        extra = f", closed form {ps:.2f}"
    if split == "test" and f"{name}_test_beta" in summary:
        beta = float(summary[f"{name}_test_beta"])
        ax.plot(grid, beta * grid, color="k", ls="--", lw=0.9, label=_CONF_LABELS["beta"])
        extra = f", $\\beta$ = {beta:.2f}"
    ylo = float(min(lo, np.quantile(y, 0.002)))
    ax.set_xlim(lo, hi)
    ax.set_ylim(ylo, max(hi, float(np.quantile(y, 0.998))))
    ax.set_xlabel(r"teacher confidence $X = \varphi(p_T(\hat y_T|x))$")
    ax.xaxis.label.set_visible(bottom)  # shown once, under the bottom row
    ax.set_ylabel(r"student $Y = \varphi(p_S(\hat y_T|x))$")
    m, sd, S = summary[f"{pre}_slope_mean"], summary[f"{pre}_slope_std"], summary["seeds"]
    ax.set_title(f"{label}, {split}: slope {m:.2f} $\\pm$ {sd:.2f} ({S} seeds){extra}", fontsize="small")


def _mean_se(a):
    a = np.asarray(a, dtype=np.float64)
    se = a.std(axis=0, ddof=1) / np.sqrt(a.shape[0]) if a.shape[0] > 1 else np.zeros(a.shape[1:])
    return a.mean(axis=0), se


@styled
def fidelity(metrics, summary):
    """F8: test agreement (top) and disagreement D_test (bottom) against GD steps (left, log axis, one
    colour per distillation-set size n: lines = closed form from the spectrum, markers = Monte Carlo
    of the simulated students, mean ± s.e. over seeds) and against n (right: closed-form limit Pw*
    as a line, simulation after the step budget as markers; agreement and KL(p_T‖p_S)).
    One legend per column, below the panels (no legend covers data)."""
    fig, grid = new_figure("double", nrows=3, ncols=2, aspect=0.78,
                           gridspec_kw={"height_ratios": [1.0, 1.0, 0.22]})
    axes, keys = grid[:2], grid[2]
    for key in keys:
        key.axis("off")
    d, S = int(summary["d"]), int(summary["seeds"])
    _fidelity_steps(axes[:, 0], metrics, summary, d)
    keys[0].legend(*_dedup(axes[0, 0], axes[1, 0]), loc="center", ncol=3, fontsize="small")
    _fidelity_vs_n(axes[:, 1], metrics, summary, d, S)
    keys[1].legend(*_dedup(axes[0, 1], axes[1, 1]), loc="center", ncol=1, fontsize="small")
    return fig


def _dedup(*axes):
    handles, labels = [], []
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels and not lab.startswith("_"):
                handles.append(h), labels.append(lab)
    return handles, labels


def _fidelity_steps(col, metrics, summary, d):
    steps = np.asarray(metrics["steps"])
    pos = steps > 0
    predicted = "curve_steps" in metrics
    for j, n in enumerate(int(v) for v in metrics["n_curves"]):
        c = PALETTE[j % len(PALETTE)]
        lab = f"$n={n}$" + (r" $<d$" if n < d else r" $\geq d$")
        for ax, key in ((col[0], "agreement"), (col[1], "disagreement")):
            if f"n{n}_{key}" not in metrics:
                continue
            if predicted and f"n{n}_pred_{key}" in metrics:
                ax.plot(metrics["curve_steps"], np.mean(metrics[f"n{n}_pred_{key}"], axis=0), color=c, lw=1.1,
                        label=lab + ", closed form")
            mu, se = _mean_se(metrics[f"n{n}_{key}"])
            ax.errorbar(steps[pos], mu[pos], yerr=se[pos], ls="none", marker=MARKERS[j % len(MARKERS)], ms=3.0,
                        mfc="none", color=c, capsize=1.5, lw=0.7, label=lab + ", Monte Carlo")
    col[0].set_ylabel("test top-1 agreement")
    col[1].set_ylabel(r"test $D = E_x[(x^\top(w_S - w_*))^2]$")
    col[1].set_yscale("log")
    for ax in col:
        ax.set_xscale("log")
        ax.set_xlabel("GD step $t$")
    loss = {"mse": "MSE", "soft_ce": "soft-CE"}.get(summary.get("loss", "soft_ce"), "")
    col[0].set_title(f"against steps ($d={d}$, condition number {summary['condition_number']:.0f}, "
                     f"{loss} student)", fontsize="small")


def _fidelity_vs_n(col, metrics, summary, d, S):
    n = np.asarray(metrics["n_values"], dtype=np.float64)
    for ax, key in ((col[0], "agreement"), (col[1], "kl")):
        mu, se = _mean_se(metrics[f"vs_n_limit_{key}"])
        ax.plot(n, mu, color=PALETTE[0], lw=1.2, label=r"closed form $\hat w = Pw_*$ ($t\to\infty$)")
        mu, se = _mean_se(metrics[f"vs_n_{key}"])
        ax.errorbar(n, mu, yerr=se, ls="none", marker=MARKERS[1], ms=3.5, mfc="none", color=PALETTE[1],
                    capsize=2, label=f"simulation, $t={int(summary['steps'])}$")
        ax.axvline(d, color="0.6", ls="--", lw=0.8, label="_nolegend_")
        ax.set_xscale("log")
        ax.set_xlabel("distillation-set size $n$")
    col[0].text(d, 0.05, " $n=d$", transform=col[0].get_xaxis_transform(), color="0.4", ha="left",
                va="bottom", fontsize="small")
    col[0].set_ylabel("test top-1 agreement")
    floor = max(float(np.min(metrics["vs_n_kl"])) / 3.0, 1e-8)
    col[1].set_yscale("symlog", linthresh=floor)
    col[1].set_ylim(0.0, None)
    col[1].set_ylabel(r"test KL$(p_T\,\|\,p_S)$ [nats]")
    col[0].set_title(f"against $n$ (mean $\\pm$ s.e. over {S} seeds)", fontsize="small")


_AUG_SYMBOL = {"noise": r"feature-noise std $\sigma_a$", "mask": r"masking rate $\rho$"}


def _band(ax, x, a, color, marker, label, ls="-"):
    mu, se = _mean_se(np.asarray(a).T)  # a: (G, S) -> mean over seeds
    ax.errorbar(x, mu, yerr=se, color=color, marker=marker, ms=3.5, mfc="none", capsize=2, lw=1.1, ls=ls,
                label=label)


@styled
def ensemble_attention(metrics, summary):
    """F9: against augmentation strength: teacher–teacher attention IoU, T–S fidelity (and T1–T2
    agreement), MI(top1_T, top1_S), and the student's train–test gap; mean ± s.e. over seeds. Each
    panel's legend sits in its own strip below it, so no legend covers data."""
    fig, grid = new_figure("double", nrows=2, ncols=4, aspect=0.36, gridspec_kw={"height_ratios": [1.0, 0.17]})
    axes, keys = grid[0], grid[1]
    for key in keys:
        key.axis("off")
    x = np.asarray(metrics["strengths"], dtype=np.float64)
    xlabel = _AUG_SYMBOL.get(summary.get("augment"), "augmentation strength")
    dirs = summary.get("directions", {})

    def verdict(*keys):
        ok = [dirs[k]["reproduced"] for k in keys if k in dirs]
        return "reproduced" if ok and all(ok) else ("NOT reproduced" if not any(ok) else "partly reproduced")

    ax = axes[0]
    _band(ax, x, metrics["iou_topk"], PALETTE[0], MARKERS[0], "top-$k$ masks")
    _band(ax, x, metrics["iou_thr"], PALETTE[1], MARKERS[1], "threshold masks", ls="--")
    ax.set_ylabel("teacher–teacher attention IoU")
    ax.set_title(f"IoU: paper $\\downarrow$ ({verdict('iou_topk', 'iou_thr')})", fontsize="small")
    keys[0].legend(*ax.get_legend_handles_labels(), loc="center", fontsize="small")

    ax = axes[1]
    _band(ax, x, metrics["fidelity"], PALETTE[0], MARKERS[0], "ensemble–student")
    _band(ax, x, metrics["teacher_agreement"], PALETTE[2], MARKERS[2], "teacher–teacher", ls="--")
    ax.set_ylabel("test top-1 agreement")
    ax.set_title(f"fidelity: paper $\\downarrow$ ({verdict('fidelity')})", fontsize="small")
    keys[1].legend(*ax.get_legend_handles_labels(), loc="center", fontsize="small")

    ax = axes[2]
    _band(ax, x, metrics["mi"], PALETTE[3], MARKERS[3], "MI")
    ax.set_ylabel(r"MI$(\hat y_T, \hat y_S)$ [nats]")
    ax.set_title(f"MI: paper $\\downarrow$ ({verdict('mi')})", fontsize="small")

    ax = axes[3]
    _band(ax, x, metrics["gap"], PALETTE[1], MARKERS[1], "student")
    _band(ax, x, metrics["teacher_gap"], PALETTE[4], MARKERS[4], "teachers", ls="--")
    ax.set_ylabel("train $-$ test accuracy")
    ax.set_title(f"gap: paper $\\downarrow$ ({verdict('gap')})", fontsize="small")
    keys[3].legend(*ax.get_legend_handles_labels(), loc="center", fontsize="small")
    for ax in axes:
        ax.set_xlabel(xlabel)
    return fig
