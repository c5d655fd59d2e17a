"""F10: deep-linear mode dynamics (docs/theory.md §7), drawn from the recorded arrays of
``linkd run deep_modes``: simulation as markers, closed forms as lines."""
from __future__ import annotations

import numpy as np
from matplotlib.lines import Line2D

from linkd.plotting.style import MARKERS, PALETTE, new_figure, styled

__all__ = ["deep_modes"]


def _markers(t: np.ndarray, y: np.ndarray, levels=(0.05, 0.2, 0.5, 0.8, 0.95), k: int = 6) -> np.ndarray:
    """Recorded indices to mark: the first record past each level of y (so a fast transition gets
    markers too) plus k log-spaced records; y is the closed-form curve, the marker shows the simulation."""
    idx = [int(np.argmax(y >= lv)) for lv in levels if np.any(y >= lv)]
    pos = np.flatnonzero(t > 0)
    if pos.size:
        grid = np.geomspace(t[pos[0]], t[pos[-1]], k)
        idx += list(pos[np.searchsorted(t[pos], grid).clip(0, pos.size - 1)])
    return np.unique(np.asarray(idx, dtype=int))


def _depth_panel(ax, metrics, N, show_ylabel):
    t, sim, gf = metrics[f"N{N}_time"], metrics[f"N{N}_sim"], metrics[f"N{N}_gf"]
    c, lam = metrics["strengths"], metrics["eigvals"]
    for k in range(c.size):
        col = PALETTE[k % len(PALETTE)]
        idx = _markers(t, gf[:, k] / c[k])
        ax.plot(t[1:], gf[1:, k] / c[k], color=col, lw=1.0, label=rf"$\lambda_{k + 1} c_{k + 1}={lam[k] * c[k]:.2g}$")
        ax.plot(t[idx], sim[idx, k] / c[k], ls="none", marker=MARKERS[k % len(MARKERS)], ms=3.0, mfc="none", color=col)
    ax.set_title(f"depth $N={N}$")
    ax.set_xscale("log")
    ax.set_xlabel(r"time $t=\eta\,\mathrm{step}$")
    ax.set_ylim(-0.03, 1.08)
    ax.set_ylabel(r"$\sigma_k(t)/c_k$" if show_ylabel else r"$\sigma_k/c_k$")


def _modified_panel(ax, metrics, summary):
    eps = metrics["mod_eps"]
    for j, e in enumerate(eps):
        t = metrics[f"mod{j}_time"]
        ax.plot(t[1:], metrics[f"mod{j}_err_flow"][1:], color=PALETTE[j], ls="--", lw=1.0,
                label=rf"plain flow, $\varepsilon={e:g}$")
        ax.plot(t[1:], metrics[f"mod{j}_err_modified"][1:], color=PALETTE[j], lw=1.0,
                label=rf"modified, $\varepsilon={e:g}$")
    ax.set_yscale("log")
    ax.set_ylim(1e-12, 1e4)  # headroom for the legend: the errors dip (sign changes) anywhere below
    ax.set_xlabel(r"time $t=\varepsilon k$")
    ax.set_ylabel(r"$|y_\mathrm{GD}(k)-\tilde y(t)|$")
    N = summary["modified_equation"]["depth"]
    ax.set_title(f"GD vs flows ($N={N}$)")
    ax.legend(loc="upper left", fontsize="x-small", ncol=1)


def _distill_panel(ax, metrics, summary):
    t, sim, pred, ref = (metrics[k] for k in ("student_time", "student_sim", "student_gf", "reference_gf"))
    c, a = metrics["strengths"], metrics["teacher_strengths"]
    for k in range(c.size):
        col = PALETTE[k % len(PALETTE)]
        idx = _markers(t, pred[:, k] / a[k])
        ax.plot(t[1:], ref[1:, k] / c[k], color=col, lw=0.8, ls=":")
        ax.plot(t[1:], pred[1:, k] / c[k], color=col, lw=1.0)
        ax.plot(t[idx], sim[idx, k] / c[k], ls="none", marker=MARKERS[k % len(MARKERS)], ms=3.5, mfc="none", color=col)
        ax.axhline(a[k] / c[k], color=col, lw=0.6, ls="--")
    N = summary["distillation"]["student_depth"]
    ax.plot([], [], color="0.3", lw=1.0, label="student, closed form")
    ax.plot([], [], color="0.3", lw=0.8, ls=":", label="reference (on $Y$)")
    ax.plot([], [], color="0.3", lw=0.6, ls="--", label="teacher $Q_k$")
    ax.set_ylim(-0.03, 1.5)
    ax.set_xscale("log")
    ax.legend(loc="upper left", fontsize="x-small", ncol=1)
    ax.set_title(f"teacher $\\to$ depth-{N} student")
    ax.set_xlabel("student time $t$")
    ax.set_ylabel(r"$\sigma^S_k(t)/c_k$")


def _dilation_panel(ax, metrics):
    Ns, Qs, R, R_ode = (metrics[k] for k in ("dilation_depths", "dilation_Q", "dilation_R", "dilation_R_ode"))
    for i, Q in enumerate(Qs):
        col = PALETTE[i % len(PALETTE)]
        ax.plot(Ns, R[i], color=col, lw=1.0, label=rf"$Q={Q:g}$")
        ax.plot(Ns, R_ode[i], ls="none", marker=MARKERS[i % len(MARKERS)], ms=3.5, mfc="none", color=col)
        ax.axhline(1.0 / Q, color=col, lw=0.5, ls=":")
    ax.set_xlabel("depth $N$")
    ax.set_ylabel(r"dilation $R(N)=t^S_{1/2}/t^R_{1/2}$")
    ax.set_title(r"time dilation (dotted: $1/Q$)")
    ax.set_xticks(Ns)
    ax.set_ylim(0.0, 1.6 / float(np.min(Qs)))
    handles, labels = ax.get_legend_handles_labels()
    handles += [Line2D([], [], color="0.3", lw=1.0), Line2D([], [], color="0.3", ls="none", marker="o", mfc="none", ms=3.0)]
    labels += ["closed form", "scalar ODE"]
    ax.legend(handles, labels, loc="upper left", fontsize="x-small", ncol=2, columnspacing=0.8)


def _gap_panel(ax, metrics):
    Ns = metrics["gap_depths"]
    ax.plot(Ns, metrics["gap_ordered"], color=PALETTE[0], marker="o", ms=3.0, lw=1.0,
            label=r"$\lambda=(1,1/2,1/4)$, $c\equiv1$")
    ax.plot(Ns, metrics["gap_whitened"], color=PALETTE[1], marker="s", ms=3.0, lw=1.0,
            label=r"whitened, $c=(1,1/2,1/4)$")
    ax.axhline(0.0, color="0.5", lw=0.5)
    ax.set_xticks(Ns)
    ax.set_ylim(-0.01, 0.2)
    ax.set_xlabel("depth $N$")
    ax.set_ylabel(r"gap $q^R_2(\tau^*)-q^S_2$ (mode 2)")
    ax.set_title("matched-progress gap")
    ax.legend(loc="upper right", fontsize="x-small")


@styled
def deep_modes(metrics, summary):
    """F10: row 1, σ_k(t)/c_k for each depth (engine GD markers on GF closed-form lines); row 2, GD vs
    modified/plain flow, teacher→student, time dilation R(N), gap against depth."""
    depths = [int(N) for N in metrics["depths"]][:4]
    fig, axes = new_figure("double", aspect=0.62, nrows=2, ncols=4)
    for j in range(4):
        if j < len(depths):
            _depth_panel(axes[0, j], metrics, depths[j], j == 0)
        else:
            axes[0, j].set_axis_off()
    handles, labels = axes[0, 0].get_legend_handles_labels()
    handles += [Line2D([], [], color="0.3", lw=1.0), Line2D([], [], color="0.3", ls="none", marker="o", mfc="none", ms=3.0)]
    labels += ["GF closed form (lines)", "matrix GD, linkd engine (markers)"]
    fig.legend(handles, labels, loc="outside upper center", ncol=len(labels))  # above the panels: covers no data
    _modified_panel(axes[1, 0], metrics, summary)
    _distill_panel(axes[1, 1], metrics, summary)
    _dilation_panel(axes[1, 2], metrics)
    _gap_panel(axes[1, 3], metrics)
    return fig
