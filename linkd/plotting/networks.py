r"""F13: wide two-layer networks against their linear prediction (docs/theory.md §11). Draws from
recorded arrays only: (a) the deviation from the linearised trajectory against the width, log-log,
with the fitted slopes and the :math:`m^{-1/2}` reference; (b, c) a distilled student network's
progress along K's eigenvectors (markers) against the §2.2 filters (lines) at two widths."""
from __future__ import annotations

import numpy as np

from linkd.plotting.style import MARKERS, PALETTE, new_figure, styled

__all__ = ["wide_network_figure"]


def _deviation_panel(ax, m, summary):
    ws = np.asarray(m["widths"], dtype=np.float64)
    series = [("ntk", "train", 0, PALETTE[0], MARKERS[0]), ("ntk", "test", 1, PALETTE[1], MARKERS[1])]
    if "deviation_mean_field" in m:
        series.append(("mean_field", "train", 0, PALETTE[2], MARKERS[2]))
    for sc, which, col, c, mk in series:
        dev = np.asarray(m[f"deviation_{sc}"])[:, :, col]  # (widths, seeds)
        mean = dev.mean(axis=1)
        slope = summary[f"slope_{which}_{sc}"]
        name = "NTK" if sc == "ntk" else "mean field"
        ax.plot(ws, mean, marker=mk, ms=3.5, color=c, lw=0.0, label=f"{name}, {which}: slope {slope:.2f}")
        fit = np.polyfit(np.log(ws), np.log(mean), 1)
        ax.plot(ws, np.exp(np.polyval(fit, np.log(ws))), color=c, lw=0.8, label="_nolegend_")
    ref = np.asarray(m["deviation_ntk"])[0, :, 0].mean() * (ws / ws[0]) ** -0.5
    ax.plot(ws, ref, color="0.4", ls="--", lw=0.7, label=r"$\propto m^{-1/2}$ (Lee et al.)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("width $m$")
    ax.set_ylabel(r"deviation $\max_t \mathrm{rms}(f_t - f_t^{\mathrm{lin}})/\mathrm{rms}(y)$")
    ax.legend(loc="lower left", fontsize="x-small", handlelength=1.4)
    ax.set_title("(a) network vs linearisation", fontsize="small")


def _progress_panel(ax, m, i, letter):
    q, F, el = np.asarray(m["progress"][i]), np.asarray(m["filter"][i]), np.asarray(m["eta_lambda"][i])
    s = np.asarray(m["steps"])
    for k in range(F.shape[1]):
        c = PALETTE[k % len(PALETTE)]
        ax.plot(s, F[:, k], color=c, lw=1.0, label=rf"$\eta\lambda_k={el[k]:.2g}$")
        ax.plot(s, q[:, k], ls="none", marker=MARKERS[k % len(MARKERS)], ms=3.0, mfc="none", color=c,
                label="_nolegend_")
    ax.plot([], [], color="0.3", lw=1.0, label="§2.2 filters")
    ax.plot([], [], color="0.3", ls="none", marker=MARKERS[0], ms=3.0, mfc="none", label="network")
    err = float(np.max(np.abs(q - F)))
    ax.set_xlabel("student GD step $t$")
    ax.set_ylabel(r"progress $q_k(t)$ along $u_k$")
    ax.set_ylim(-0.05, 1.45)
    ax.legend(loc="upper left", ncol=2, fontsize="x-small", handlelength=1.2, columnspacing=0.8)
    ax.set_title(f"({letter}) width {int(m['distill_widths'][i])}: max error {err:.1e}", fontsize="small")


@styled
def wide_network_figure(metrics, summary):
    """F13: (a) deviation against width; (b, c) distilled student progress vs the filters at two widths."""
    n = len(metrics["distill_widths"])
    fig, axes = new_figure("double", nrows=1, ncols=1 + n, aspect=0.36)
    _deviation_panel(axes[0], metrics, summary)
    for i in range(n):
        _progress_panel(axes[1 + i], metrics, i, "bcdefg"[i])
    return fig
