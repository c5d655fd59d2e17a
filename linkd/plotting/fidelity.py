"""Figures of the classification experiments: F3 confidence exaggeration, F8 fidelity, F9 ensemble
attention. Each draws from recorded arrays only (``linkd plot`` redraws a run without re-running)."""
from __future__ import annotations

import numpy as np

from linkd.plotting.style import MARKERS, PALETTE, new_figure, styled


@styled
def confidence_exaggeration(metrics, summary):
    """F3: φ(p_S(ŷ_T|x)) against φ(p_T(ŷ_T|x)), train and test panels, OLS line, binned means, y = x."""
    fig, axes = new_figure("double", nrows=1, ncols=2, aspect=0.40)
    for ax, split, title in ((axes[0], "train", "train set"), (axes[1], "test", "test set")):
        x, y = np.asarray(metrics[f"{split}_x"]), np.asarray(metrics[f"{split}_y"])
        ax.scatter(x, y, s=2.0, color=PALETTE[5], alpha=0.35, linewidths=0, rasterized=True,
                   label="examples")
        lo = float(min(x.min(), y.min(), 0.0))
        hi = float(max(np.quantile(x, 0.995), np.quantile(y, 0.995)))
        grid = np.linspace(lo, hi, 2)
        ax.plot(grid, grid, color="0.4", ls=":", lw=0.9, label="$Y = X$ (no deviation)")
        slope, icpt = float(summary[f"{split}_slope"]), float(summary[f"{split}_intercept"])
        ax.plot(grid, icpt + slope * grid, color=PALETTE[1], lw=1.2,
                label=f"OLS fit, slope {slope:.2f}")
        ax.plot(metrics[f"{split}_bin_x"], metrics[f"{split}_bin_y"], ls="none", marker=MARKERS[0],
                ms=3.5, color=PALETTE[0], label=f"binned means ({len(metrics[f'{split}_bin_x'])} equal-count bins)")
        ax.set_xlim(lo, hi)
        ax.set_ylim(min(lo, float(np.quantile(y, 0.002))), hi)
        ax.set_xlabel(r"teacher confidence $X = \varphi(p_T(\hat y_T|x))$")
        ax.set_ylabel(r"student confidence $Y = \varphi(p_S(\hat y_T|x))$")
        m, sd, S = summary[f"{split}_slope_mean"], summary[f"{split}_slope_std"], summary["seeds"]
        ax.set_title(f"{title}: slope {m:.2f} $\\pm$ {sd:.2f} over {S} seeds")
        ax.legend(loc="upper left", fontsize="small")
    return fig


def _mean_se(a):
    a = np.asarray(a, dtype=np.float64)
    se = a.std(axis=0, ddof=1) / np.sqrt(a.shape[0]) if a.shape[0] > 1 else np.zeros(a.shape[1:])
    return a.mean(axis=0), se


@styled
def fidelity(metrics, summary):
    """F8: test agreement (top) and KL(p_T‖p_S) (bottom) against GD steps (left, log axis, one curve
    per distillation-set size n, converged student as a dotted line) and against n (right: closed-form
    limit Pw* as a line, simulation after the step budget as markers)."""
    fig, axes = new_figure("double", nrows=2, ncols=2, aspect=0.62, sharex="col")
    d, S = int(summary["d"]), int(summary["seeds"])
    steps = np.asarray(metrics["steps"])
    pos = steps > 0
    for j, n in enumerate(int(v) for v in metrics["n_curves"]):
        c = PALETTE[j % len(PALETTE)]
        lab = f"$n={n}$" + (r" $<d$" if n < d else r" $\geq d$")
        for row, key in ((0, "agreement"), (1, "kl")):
            mu, se = _mean_se(metrics[f"n{n}_{key}"])
            ax = axes[row, 0]
            ax.plot(steps[pos], mu[pos], color=c, lw=1.2, label=lab)
            ax.fill_between(steps[pos], (mu - se)[pos], (mu + se)[pos], color=c, alpha=0.2, lw=0, label="_nolegend_")
            lim = float(np.mean(metrics[f"n{n}_limit_{key}"]))
            if key == "agreement" or lim > 1e-3 * float(np.min(mu)):  # KL = 0 (n >= d) is off a log axis
                ax.axhline(lim, color=c, ls=":", lw=0.9, label="_nolegend_")
    axes[0, 0].plot([], [], color="0.4", ls=":", lw=0.9, label=r"converged ($\hat w = Pw_*$)")
    axes[0, 0].set_ylabel("test top-1 agreement")
    axes[1, 0].set_ylabel(r"test KL$(p_T\,\|\,p_S)$ [nats]")
    axes[1, 0].set_yscale("log")
    axes[1, 0].set_xscale("log")
    axes[1, 0].set_xlabel("GD step $t$")
    axes[0, 0].set_xlabel("GD step $t$")  # shared with the panel below, which shows it
    axes[0, 0].xaxis.label.set_visible(False)
    axes[0, 0].legend(loc="lower right", fontsize="small")
    axes[0, 0].set_title(f"against steps ($d={d}$, condition number {summary['condition_number']:.0f})")

    n = np.asarray(metrics["n_values"], dtype=np.float64)
    for row, key in ((0, "agreement"), (1, "kl")):
        ax = axes[row, 1]
        mu, se = _mean_se(metrics[f"vs_n_limit_{key}"])
        ax.plot(n, mu, color=PALETTE[0], lw=1.2, label=r"closed form $\hat w = Pw_*$ ($t\to\infty$)")
        mu, se = _mean_se(metrics[f"vs_n_{key}"])
        ax.errorbar(n, mu, yerr=se, ls="none", marker=MARKERS[1], ms=3.5, mfc="none", color=PALETTE[1],
                    capsize=2, label=f"simulation, $t={int(summary['steps'])}$")
        ax.axvline(d, color="0.6", ls="--", lw=0.8, label="_nolegend_")
    axes[0, 1].text(d, 0.55, " $n=d$", transform=axes[0, 1].get_xaxis_transform(), color="0.4", ha="left",
                    va="bottom", fontsize="small")
    axes[0, 1].set_ylabel("test top-1 agreement")
    kl_lim = np.asarray(metrics["vs_n_limit_kl"])
    floor = max(float(np.min(metrics["vs_n_kl"])) / 3.0, 1e-8)
    axes[1, 1].set_yscale("symlog", linthresh=floor)
    axes[1, 1].set_ylim(0.0, None)
    axes[1, 1].set_ylabel(r"test KL$(p_T\,\|\,p_S)$ [nats]")
    axes[1, 1].set_xscale("log")
    axes[1, 1].set_xlabel("distillation-set size $n$")
    axes[0, 1].set_xlabel("distillation-set size $n$")  # shown on the panel below
    axes[0, 1].xaxis.label.set_visible(False)
    axes[0, 1].legend(loc="lower right", fontsize="small")
    axes[0, 1].set_title(f"against $n$ (mean $\\pm$ s.e. over {S} seeds)")
    del kl_lim
    return fig


_AUG_SYMBOL = {"noise": r"feature-noise std $\sigma_a$", "mask": r"masking rate $\rho$"}


def _band(ax, x, a, color, marker, label, ls="-"):
    mu, se = _mean_se(np.asarray(a).T)  # a: (G, S) -> mean over seeds
    ax.errorbar(x, mu, yerr=se, color=color, marker=marker, ms=3.5, mfc="none", capsize=2, lw=1.1, ls=ls,
                label=label)


@styled
def ensemble_attention(metrics, summary):
    """F9: against augmentation strength: teacher–teacher attention IoU, T–S fidelity (and T1–T2
    agreement), MI(top1_T, top1_S), and the student's train–test gap; mean ± s.e. over seeds."""
    fig, axes = new_figure("double", nrows=1, ncols=4, aspect=0.30)
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
    ax.legend(loc="best", fontsize="small")

    ax = axes[1]
    _band(ax, x, metrics["fidelity"], PALETTE[0], MARKERS[0], "ensemble–student")
    _band(ax, x, metrics["teacher_agreement"], PALETTE[2], MARKERS[2], "teacher–teacher", ls="--")
    ax.set_ylabel("test top-1 agreement")
    ax.set_title(f"fidelity: paper $\\downarrow$ ({verdict('fidelity')})", fontsize="small")
    ax.legend(loc="best", fontsize="small")

    ax = axes[2]
    _band(ax, x, metrics["mi"], PALETTE[3], MARKERS[3], "MI")
    ax.set_ylabel(r"MI$(\hat y_T, \hat y_S)$ [nats]")
    ax.set_title(f"MI: paper $\\downarrow$ ({verdict('mi')})", fontsize="small")

    ax = axes[3]
    _band(ax, x, metrics["gap"], PALETTE[1], MARKERS[1], "student")
    _band(ax, x, metrics["teacher_gap"], PALETTE[4], MARKERS[4], "teachers", ls="--")
    ax.set_ylabel("train $-$ test accuracy")
    ax.set_title(f"gap: paper $\\downarrow$ ({verdict('gap')})", fontsize="small")
    ax.legend(loc="best", fontsize="small")
    for ax in axes:
        ax.set_xlabel(xlabel)
    return fig
