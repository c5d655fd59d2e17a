"""Figures of the theory reproductions: F5 Phuong–Lampert risk, F6 convergence to the
Phuong–Lampert limit, F7 self-distillation rounds. Each draws from recorded arrays only."""
from __future__ import annotations

import numpy as np
from matplotlib.ticker import MaxNLocator

from linkd.plotting.style import MARKERS, PALETTE, new_figure, styled

_GEOM_TITLES = {
    "margin_cone": "margin cone",
    "power_law": "power-law angle",
    "isotropic": "isotropic Gaussian",
}


def _positive(y):
    y = np.asarray(y, dtype=float)
    return np.where(y > 0, y, np.nan)


@styled
def pl_risk(metrics, summary):
    """F5: E[R_n] against n (log-y), one panel per geometry; MC ± SE markers, bound (dashed),
    exact isotropic risk (line), deep-linear students (extra markers)."""
    geoms = list(summary["geometries"])
    fig, axes = new_figure("double", nrows=1, ncols=len(geoms), aspect=0.36)
    axes = np.atleast_1d(axes)
    ns = np.asarray(metrics["ns"], dtype=float)
    deep_ns = np.asarray(metrics["deep_ns"], dtype=float)
    depths = [int(N) for N in np.asarray(metrics["deep_depths"])]
    for ax, g in zip(axes, geoms):
        mean, se = np.asarray(metrics[f"{g}_mc_mean"]), np.asarray(metrics[f"{g}_mc_se"])
        ax.plot(ns, metrics[f"{g}_bound"], color="0.2", ls="--", label=r"bound $\min_\beta p(\beta)+p(\pi/2-\beta)^n$")
        if g == "isotropic":
            ax.plot(ns, _positive(metrics["isotropic_exact"]), color=PALETTE[2], lw=1.0, label=r"exact $E[R_n]$ (isotropic)")
        pos = mean > 0
        lower = np.minimum(se, 0.95 * mean)  # keep the error bar above 0 on the log axis
        ax.errorbar(ns[pos], mean[pos], yerr=np.vstack([lower[pos], se[pos]]), ls="none", marker=MARKERS[0],
                    color=PALETTE[0], mfc="none", label=r"linear $\hat w_n = P_n w_*$ (MC $\pm$ SE)")
        for j, N in enumerate(depths):
            key = f"{g}_deep{N}_risk_mean"
            if key not in metrics:
                continue
            m, e = np.asarray(metrics[key]), np.asarray(metrics[f"{g}_deep{N}_risk_se"])
            ok = m > 0
            x = deep_ns * (1.0 + 0.06 * (j + 1))  # small offset so markers do not hide each other
            ax.errorbar(x[ok], m[ok], yerr=np.vstack([np.minimum(e, 0.95 * m)[ok], e[ok]]), ls="none",
                        marker=MARKERS[j + 1], color=PALETTE[j + 1], ms=3.5,
                        label=rf"deep linear $N={N}$ (trained, {summary.get('deep_sets', '?')} sets)")
            lin = metrics.get(f"{g}_deep{N}_linear_same_sets_mean")
            if lin is not None and j == 0:
                ok2 = np.asarray(lin) > 0
                ax.plot(deep_ns[ok2] * 1.0, np.asarray(lin)[ok2], ls="none", marker="x", color="0.35", ms=4,
                        label="linear on the same sets")
        ax.set_xscale("log")
        ax.set_yscale("log")
        floor = 1e-9
        hidden = ns[~(mean > floor)]
        if np.any(mean[mean > 0] < floor) or hidden.size:
            ax.set_ylim(bottom=floor)
        ax.set_xlabel("training-set size $n$")
        ax.set_title(_GEOM_TITLES.get(g, g))
        if hidden.size:
            ax.text(0.03, 0.03, f"MC mean $<10^{{-9}}$ (not shown)\nfor $n\\geq{int(hidden.min())}$", transform=ax.transAxes,
                    ha="left", va="bottom", fontsize=6)
    axes[0].set_ylabel(r"expected risk $E[R(\hat w_n)]$")
    for ax in axes[1:]:
        ax.set_ylabel(r"$E[R(\hat w_n)]$")
    handles, labels = axes[-1].get_legend_handles_labels()
    seen = dict(zip(labels, handles))
    for ax in axes[:-1]:
        h, lab = ax.get_legend_handles_labels()
        for a, b in zip(lab, h):
            seen.setdefault(a, b)
    fig.legend(list(seen.values()), list(seen.keys()), loc="outside lower center", ncols=3)
    return fig


@styled
def pl_convergence(metrics, summary):
    """F6: distance to the PL limit (log-log), frozen first-layer block, orthogonal part vs init scale."""
    fig, axes = new_figure("double", nrows=1, ncols=3, aspect=0.34)
    steps = np.asarray(metrics["steps"], dtype=float)
    pos = steps > 0
    depths = [int(N) for N in np.asarray(metrics["depths"])]
    ax = axes[0]
    ax.plot(steps[pos], np.asarray(metrics["linear_dist"])[pos], color=PALETTE[0], label="linear")
    for j, N in enumerate(depths):
        ax.plot(steps[pos], np.asarray(metrics[f"deep{N}_dist"])[pos], color=PALETTE[j + 1], ls=("--", ":", "-.")[j % 3],
                label=f"deep linear $N={N}$")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("GD step $t$")
    ax.set_ylabel(r"$\|w(t)-\hat w\|$")
    ax.set_title(r"distance to the limit $\hat w$")
    ax.legend(loc="lower left")
    ax = axes[1]
    cs = np.asarray(metrics["checkpoints"], dtype=float)
    cpos = cs > 0
    floor = 1e-17
    for j, N in enumerate(depths):
        v = np.maximum(np.asarray(metrics[f"deep{N}_W1_invariant_err"]), floor)
        ax.plot(cs[cpos], v[cpos], color=PALETTE[j + 1], marker=MARKERS[j + 1], mfc="none", ls="-", label=f"$N={N}$")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylim(floor / 2, 1e-8)
    ax.set_xlabel("GD step $t$")
    ax.set_ylabel(r"$\|W_1(t)(I-P)-W_1(0)(I-P)\|_F$")
    ax.set_title("frozen block of the first layer")
    ax.legend(loc="upper left")
    ax = axes[2]
    scales = np.asarray(metrics["init_scales"], dtype=float)
    for i, sc in enumerate(scales):
        for j, N in enumerate(depths):
            ax.plot(steps[pos], np.asarray(metrics[f"deep{N}_orth"])[i, pos], color=PALETTE[i % len(PALETTE)],
                    ls=("-", "--", ":")[j % 3], label="_nolegend_")
    for i, sc in enumerate(scales):
        ax.plot([], [], color=PALETTE[i % len(PALETTE)], label=f"init scale {sc:g}")
    for j, N in enumerate(depths):
        ax.plot([], [], color="0.3", ls=("-", "--", ":")[j % 3], label=f"$N={N}$")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("GD step $t$")
    lo = min(float(np.nanmin(np.asarray(metrics[f"deep{N}_orth"])[:, pos])) for N in depths) if depths else 1e-6
    ax.set_ylim(bottom=lo * 1e-3)
    ax.set_ylabel(r"$\|(I-P)\,w(t)\|$")
    ax.set_title("orthogonal part of $w$ (deep)")
    ax.legend(loc="lower right", ncols=2, fontsize=6)
    return fig


@styled
def self_distillation(metrics, summary):
    """F7: B_t[k,k] over rounds (log-y), c_t over rounds with the collapse round and its bounds,
    test error against rounds for noisy vs clean labels."""
    fig, axes = new_figure("double", nrows=1, ncols=3, aspect=0.33)
    rounds = np.asarray(metrics["rounds"])
    s = summary["noisy"]
    T = int(s["collapse_round"])
    last = T if T > 0 else len(rounds)
    ax = axes[0]
    B = np.asarray(metrics["noisy_B"])
    d = np.asarray(metrics["eigvals"])
    for j, k in enumerate(np.asarray(metrics["directions"])):
        ax.plot(rounds[:last], _positive(B[:last, k - 1]), color=PALETTE[j % len(PALETTE)], marker=MARKERS[j % len(MARKERS)],
                mfc="none", label=rf"$k={k}$ ($d_k$={d[k - 1]:.1e})")
    ax.set_yscale("log")
    ax.set_xlabel("round $t$")
    ax.set_ylabel(r"factor $B_t[k,k]$")
    ax.set_title("per-direction factors (noisy $y$)")
    ax.legend(loc="lower left")
    ax = axes[1]
    for j, name in enumerate(("noisy", "clean")):
        c = np.asarray(metrics[f"{name}_c"])
        ok = np.isfinite(c) & (c > 0)
        ax.plot(rounds[ok], c[ok], color=PALETTE[j], marker=MARKERS[j], mfc="none",
                label=f"{name} $y$: $T_c={summary[name]['collapse_round']}$")
    lo, hi = s["collapse_bounds"]
    ax.axvline(T, color=PALETTE[0], lw=0.6, ls=":", label="_nolegend_")
    ax.axvspan(max(lo, 0), min(hi, rounds[-1] + 0.5), color=PALETTE[0], alpha=0.08, lw=0, label="_nolegend_")
    ax.set_yscale("log")
    ax.set_xlabel("round $t$")
    ax.set_ylabel(r"multiplier $c_t$")
    ax.set_title(r"regularisation $c_t$ grows")
    ax.legend(loc="lower right", title=f"noisy: $T_c={T}\\in[{lo:.2f}, {hi:.0f}]$ (shaded)")
    ax = axes[2]
    for j, name in enumerate(("noisy", "clean")):
        e = np.asarray(metrics[f"{name}_test_mse"])
        ax.plot(rounds, e, color=PALETTE[j], marker=MARKERS[j], mfc="none",
                label=f"{name} labels (best round {summary[name]['best_round']})")
    ax.set_yscale("log")
    ax.set_xlabel("round $t$ ($t=1$: fit to labels)")
    ax.set_ylabel(r"test MSE to $\sin(\omega x)$")
    ax.set_title("test error vs rounds")
    for a in axes:
        a.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(loc="lower right")
    return fig


__all__ = ["pl_risk", "pl_convergence", "self_distillation"]
