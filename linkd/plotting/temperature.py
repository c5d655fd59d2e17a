r"""F11: multiclass distillation at temperature τ (docs/theory.md §8). Draws from recorded arrays only:
simulation as markers, closed form (leading filter :math:`F_k`, with the 1/τ correction) as lines."""
from __future__ import annotations

import numpy as np

from linkd.plotting.style import MARKERS, PALETTE, new_figure, styled

__all__ = ["temperature_figure"]


def _log_idx(steps: np.ndarray, n: int = 12) -> np.ndarray:
    """About n indices evenly spread on a log-step axis (step 0 skipped)."""
    pos = np.flatnonzero(np.asarray(steps) > 0)
    targets = np.geomspace(steps[pos[0]], steps[pos[-1]], n)
    return np.unique(pos[np.searchsorted(steps[pos], targets).clip(0, pos.size - 1)])


def _curves(ax, m):
    """(a) p_k(s) at the smallest and largest τ (markers) over the leading filter F_k (lines)."""
    s, F, p, taus = m["steps"], m["filter"], m["progress"], m["taus"]
    idx = _log_idx(s)
    for k in range(F.shape[1]):
        c = PALETTE[k % len(PALETTE)]
        ax.plot(s[1:], F[1:, k], color=c, lw=1.0, label=rf"$k={k + 1}$")
        ax.plot(s[idx], p[-1][idx, k], ls="none", marker=MARKERS[0], ms=3.5, color=c, label="_nolegend_")
        ax.plot(s[idx], p[0][idx, k], ls="none", marker=MARKERS[1], ms=3.5, mfc="none", color=c, label="_nolegend_")
    ax.plot([], [], ls="none", marker=MARKERS[0], ms=3.5, color="0.3", label=rf"sim. $\tau={taus[-1]:g}$")
    ax.plot([], [], ls="none", marker=MARKERS[1], ms=3.5, mfc="none", color="0.3", label=rf"sim. $\tau={taus[0]:g}$")
    ax.set_xscale("log")
    ax.set_xlabel("GD step $s$")
    ax.set_ylabel(r"progress $p_k(s)$")
    ax.set_ylim(-0.02, 1.35)
    ax.legend(loc="upper left", ncol=2, fontsize="x-small", handlelength=1.2, columnspacing=0.8)
    ax.set_title(r"(a) lines: $F_k(s)=1-(1-\eta\lambda_k/C)^s$", fontsize="small")


def _per_tau(ax, m):
    """(b) p_k(s*) against τ at the step s* of the largest deviation: leading + 1/τ (lines), leading (dotted)."""
    s, F, p, pc, taus = m["steps"], m["filter"], m["progress"], m["correction"], m["taus"]
    j = int(np.argmax(np.max(np.abs(p[-1] - F), axis=1)))
    grid = np.geomspace(taus.min(), taus.max(), 200)
    for k in range(F.shape[1]):
        c = PALETTE[k % len(PALETTE)]
        ax.plot(grid, F[j, k] + pc[j, k] / grid, color=c, lw=1.0, label="_nolegend_")
        ax.axhline(F[j, k], color=c, lw=0.6, ls=":", label="_nolegend_")
        ax.plot(taus, p[:, j, k], ls="none", marker=MARKERS[k % len(MARKERS)], ms=3.5, mfc="none", color=c,
                label=rf"$k={k + 1}$")
    ax.plot([], [], color="0.3", lw=1.0, label=r"$F_k+\tau^{-1}p_k^{(1)}$")
    ax.plot([], [], color="0.3", lw=0.6, ls=":", label=r"$F_k$")
    ax.set_xscale("log", base=2)
    ax.set_xlabel(r"temperature $\tau$")
    ax.set_ylabel(rf"progress $p_k(s^*)$, $s^*={int(s[j])}$")
    lo, hi = np.min(p[:, j]), np.max(p[:, j])
    ax.set_ylim(lo - 0.05, hi + 0.45 * (hi - lo) + 0.05)
    ax.legend(loc="upper center", ncol=4, fontsize="x-small", handlelength=1.2, columnspacing=0.6)
    ax.set_title("(b) markers: simulation", fontsize="small")


def _errors(ax, m, summary):
    """(c) e0 and e1 against τ on log-log axes, reference slopes −1 and −2 through the last points."""
    taus, e0, e1 = m["taus"], m["e0"], m["e1"]
    ax.plot(taus, e0, marker=MARKERS[0], ms=3.5, color=PALETTE[0], lw=1.0,
            label=rf"$e_0$ (leading), slope {summary['e0_slope']:.2f}")
    ax.plot(taus, e1, marker=MARKERS[1], ms=3.5, color=PALETTE[1], lw=1.0,
            label=rf"$e_1$ (+$1/\tau$ corr.), slope {summary['e1_slope']:.2f}")
    ref = taus >= min(summary["fit_taus"]) / 2
    for e, slope, c in ((e0, -1.0, PALETTE[0]), (e1, -2.0, PALETTE[1])):
        a = e[-1] * taus[-1] ** (-slope)
        ax.plot(taus[ref], 2.5 * a * taus[ref] ** slope, color=c, ls="--", lw=0.7, label=rf"$\propto\tau^{{{slope:g}}}$")
    ax.axvline(summary["Lambda"], ymin=0.45, color="0.5", lw=0.6, ls=":", label="_nolegend_")
    ax.text(summary["Lambda"] * 1.08, 0.97, r"$\Lambda$ = max centred" + "\nteacher logit",
            transform=ax.get_xaxis_transform(), ha="left", va="top", fontsize="x-small", color="0.35")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel(r"temperature $\tau$")
    ax.set_ylabel(r"error $\max_{k,s}|p_k - \hat p_k|$")
    ax.legend(loc="lower left", fontsize="x-small", handlelength=1.6)
    ax.set_title("(c) errors against $\\tau$", fontsize="small")


@styled
def temperature_figure(metrics, summary):
    """F11: (a) progress curves, (b) progress against τ at a fixed step, (c) e0 and e1 against τ."""
    fig, axes = new_figure("double", nrows=1, ncols=3, aspect=0.36)
    _curves(axes[0], metrics)
    _per_tau(axes[1], metrics)
    _errors(axes[2], metrics, summary)
    return fig
