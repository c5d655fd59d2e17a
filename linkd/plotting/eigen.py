"""Figures of the squared-loss eigen-dynamics (F1 eigen-convergence, F2 exaggeration, F4 late
distillation). Each draws from recorded arrays only: simulation as markers, closed form as lines."""
from __future__ import annotations

import numpy as np

from linkd.plotting.labels import snap_zero, tolerance_note, zero_tolerance
from linkd.plotting.style import MARKERS, PALETTE, new_figure, styled

__all__ = ["progress_curves", "parametric_progress", "gap_title", "late_distillation"]


def _marker_idx(steps: np.ndarray, n: int = 14) -> np.ndarray:
    """About n indices spread evenly on a log-step axis (skipping step 0)."""
    s = np.asarray(steps)
    pos = np.flatnonzero(s > 0)
    if pos.size <= n:
        return pos
    targets = np.geomspace(s[pos[0]], s[pos[-1]], n)
    return np.unique(pos[np.searchsorted(s[pos], targets).clip(0, pos.size - 1)])


@styled
def progress_curves(metrics, summary):
    """F1: q_k(t) for several k; teacher and student panels; log-step axis."""
    fig, axes = new_figure("double", nrows=1, ncols=2, aspect=0.42, sharey=True)
    dirs = [int(k) for k in metrics["directions"]]
    lam = metrics["eigvals"]
    c_star = metrics["c_star"]
    for ax, who, title in ((axes[0], "teacher", "teacher (labels $y$)"),
                           (axes[1], "student", r"student (teacher outputs $\hat y$)")):
        steps = metrics[f"{who}_steps"]
        q = metrics[f"{who}_q"]
        pred = metrics[f"{who}_coeffs_closed_form"]
        safe = np.where(c_star == 0, 1.0, c_star)
        q_pred = np.where(c_star == 0, 0.0, pred / safe[None, :])
        idx = _marker_idx(steps)
        for j, k in enumerate(dirs):
            c = PALETTE[j % len(PALETTE)]
            ax.plot(steps[1:], q_pred[1:, k - 1], color=c, lw=1.0,
                    label=rf"$k={k}$, $\lambda_k={lam[k - 1]:.2g}$")
            ax.plot(steps[idx], q[idx, k - 1], ls="none", marker=MARKERS[j % len(MARKERS)], color=c,
                    mfc="none")
        ax.set_xscale("log")
        ax.set_xlabel("GD step $t$")
        ax.set_title(title)
    axes[0].set_ylabel(r"progress $q_k(t) = c_k(t)/c_k^*$")
    axes[1].set_ylabel(r"progress $q_k(t)$")
    axes[0].plot([], [], color="0.3", lw=1.0, label="closed form (lines)")
    axes[0].plot([], [], color="0.3", ls="none", marker="o", mfc="none", label="simulation (markers)")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=4)  # below the panels: covers no data
    axes[1].text(0.97, 0.6, f"simulation vs closed form:\nmax rel. error {summary['max_rel_error']:.1e}",
                 transform=axes[1].transAxes, ha="right", va="center")
    return fig


@styled
def parametric_progress(metrics, summary):
    """F2: q_j against q_i (i = top direction), teacher path vs student path."""
    fig, ax = new_figure("single", aspect=0.8)
    dirs = [int(k) for k in metrics["directions"]]
    i = dirs[0] - 1
    lam = metrics["eigvals"]
    T = int(metrics["teacher_steps"][-1])
    lr = float(summary["lr"])
    # teacher path from closed form over a long, fine time grid (continuous τ)
    tau = np.concatenate([[0.0], np.geomspace(1e-2, 1e6, 600)])

    def f(k, t):
        return 1.0 - (1.0 - lr * lam[k]) ** t

    sq = metrics["student_q"]
    steps = metrics["student_steps"]
    idx = _marker_idx(steps, 12)
    t_fine = np.concatenate([[0.0], np.geomspace(1e-2, 1e6, 600)])
    for j, k in enumerate(dirs[1:]):
        c = PALETTE[j % len(PALETTE)]
        ax.plot(f(i, tau), f(k - 1, tau), color=c, ls="--", lw=1.0)
        ax.plot(f(i, t_fine) * f(i, T), f(k - 1, t_fine) * f(k - 1, T), color=c, lw=1.0,
                label=rf"$j={k}$")
        ax.plot(sq[idx, i], sq[idx, k - 1], ls="none", marker=MARKERS[j % len(MARKERS)], color=c, mfc="none")
    ax.plot([], [], color="0.3", ls="--", label="teacher path")
    ax.plot([], [], color="0.3", label="student path")
    ax.plot([], [], color="0.3", ls="none", marker="o", mfc="none", label="student (sim.)")
    ax.set_xlabel(rf"progress on higher direction $q_{{{i + 1}}}$")
    ax.set_ylabel(r"progress on lower direction $q_j$")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.legend(loc="upper left")
    gmin = summary.get("exaggeration_gap_min")
    if gmin is not None:
        ax.set_title(gap_title(float(gmin), summary.get("dtype", "float64")), fontsize="small")
    return fig


def gap_title(gmin: float, dtype="float64") -> str:
    """Title of F2: the smallest gap :math:`q_j^T(\\tau^*) - q_j^S` (docs/theory.md §6.3), with round-off
    (:func:`~linkd.plotting.labels.zero_tolerance` at scale 1) shown as 0 and the tolerance stated."""
    tol = zero_tolerance(1.0, dtype)
    g = float(snap_zero(gmin, tol))
    shown = "0" if g == 0.0 else f"{g:.2g}"
    return f"smallest gap $q_j^T(\\tau^*) - q_j^S$ = {shown}\n({tolerance_note(tol)})"


@styled
def late_distillation(metrics, summary):
    """F4: test MSE against steps for hard labels, distillation, and the switch at t₀."""
    fig, ax = new_figure("single", aspect=0.75)
    s = metrics["steps"]
    idx = _marker_idx(s, 16)
    labels = {"hard": "hard labels $y$", "kd": r"distillation $\hat y$",
              "switch": rf"switch at $t_0={summary['switch_step']}$"}
    for j, name in enumerate(("hard", "kd", "switch")):
        c = PALETTE[j]
        ax.plot(s[1:], metrics[f"{name}_test_mse_closed_form"][1:], color=c, label=labels[name])
        ax.plot(s[idx], metrics[f"{name}_test_mse"][idx], ls="none", marker=MARKERS[j], color=c, mfc="none")
    ax.axvline(summary["switch_step"], color="0.6", lw=0.6, ls=":")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("GD step $t$")
    ax.set_ylabel(r"test MSE $\|X_{\mathrm{test}}(w_t - w^*)\|^2/n_{\mathrm{test}}$")
    ax.legend(loc="best", title="lines: closed form; markers: simulation")
    return fig
