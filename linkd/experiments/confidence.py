r"""F3: confidence exaggeration (Nagarajan et al., theory §2.1, §2.5(c)).

A binary logistic teacher is trained by full-batch GD from zero on noisy hard labels (labels
1{x·w* > 0}, each flipped with probability ``data.flip``) and early-stopped after
``teacher.steps`` steps. A logistic student of the same architecture is trained by GD from zero on
the teacher's soft labels σ(z_T/τ) (the KD loss, τ²-scaled). For every example the pair

.. math:: X = \varphi(p_T(\hat y_T|x)), \qquad Y = \varphi(p_S(\hat y_T|x)), \qquad \varphi(p)=\log\frac{p}{1-p}

is computed from logits (binary: X = |z_T|, Y = sign(z_T)·z_S), on the train and the test set,
with the OLS slope of Y on X and equal-count binned means (:func:`linkd.metrics.confidence_scatter`).
Slope > 1 ⇔ exaggeration (student under-confident where the teacher is unsure, over-confident where
it is sure). Binary rather than multiclass: in the binary case φ(p_T(ŷ_T|x)) is exactly the teacher's
margin |z_T| and the linear eigen-analysis of §2.2 applies to one logit, so the figure can be read
against the theory; the paper's plots are multiclass (their φ uses the top-class probability).

``data.seeds`` independent problems (design, labels, noise) run under one ``vmap``
(:func:`linkd.dynamics.sweep`, batched data); the scatter shows the first, the summary reports the
slope of every seed.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from linkd import data, dynamics, losses, metrics, spectral
from linkd.config import Field
from linkd.experiments._mse_common import population_spectrum
from linkd.experiments.base import Experiment, Result, register

_FRACTION = Field(float, 0.9, "η as a fraction of 1/L, L = λ_max(Σ̂)/4 (soft-CE smoothness); < 2 is stable",
                  low=0.0, high=2.0, low_open=True, high_open=True)

SCHEMA = {
    "data": {
        "n": Field(int, 200, "number of training points", low=2),
        "d": Field(int, 100, "input dimension", low=1),
        "n_test": Field(int, 2000, "number of test points", low=2),
        "spectrum": Field(str, "power_law", "population spectrum kind", choices=("power_law", "exponential")),
        "exponent": Field(float, 1.0, "power-law exponent a (λ_k ∝ k^-a) or exponential rate", low=0.0),
        "teacher_profile": Field(float, 0.5, "ground truth coefficients c_k ∝ k^-profile"),
        "flip": Field(float, 0.2, "label-flip probability of the teacher's training labels", low=0.0, high=0.5,
                      high_open=True),
        "seeds": Field(int, 5, "independent problems (vmapped); the scatter shows the first", low=1),
    },
    "teacher": {
        "steps": Field(int, 30, "teacher GD steps on the noisy hard labels (early stopping)", low=1),
        "lr_fraction": _FRACTION,
    },
    "student": {
        "steps": Field(int, 100, "student GD steps on the teacher's soft labels", low=1),
        "tau": Field(float, 1.0, "distillation temperature τ (KD term scaled by τ²)", low=0.0, low_open=True),
        "lr_fraction": _FRACTION,
    },
    "record": {
        "every": Field(int, 10, "record train/test metrics every k steps", low=1),
        "bins": Field(int, 20, "equal-count bins of the teacher confidence for the binned means", low=1),
    },
}


def _problem(cfg, seed: int):
    """Designs, labels and Σ̂ eigenbases for ``data.seeds`` problems (stacked on axis 0)."""
    D = cfg["data"]
    lam = population_spectrum(D)
    out = {k: [] for k in ("X", "X_test", "y", "y_test", "w_star", "eigvals", "basis")}
    for key in jax.random.split(jax.random.key(seed), D["seeds"]):
        k_design, k_teacher, k_flip = jax.random.split(key, 3)
        design = data.make_design(k_design, D["n"], D["d"], lam, n_test=D["n_test"], basis="random")
        w_star = data.linear_teacher(k_teacher, lam, basis=design.basis, profile=D["teacher_profile"])
        sp = spectral.eigh_desc(design.X)
        out["X"].append(design.X)
        out["X_test"].append(design.X_test)
        out["y"].append(data.binary_hard_labels(k_flip, design.X, w_star, flip=D["flip"]))
        out["y_test"].append(data.binary_hard_labels(None, design.X_test, w_star))
        out["w_star"].append(w_star)
        out["eigvals"].append(sp.eigvals)
        out["basis"].append(sp.basis)
    return {k: jnp.stack(v) for k, v in out.items()}


def _lr(eigvals, fraction: float, tau: float = 1.0) -> float:
    """The smallest (over seeds) ``fraction``/L step, so every member of the vmapped sweep is stable."""
    lam_max = float(jnp.max(eigvals[:, 0]))
    return fraction / losses.smoothness("binary", lam_max, tau, True)


def run(cfg, ctx) -> Result:
    P = _problem(cfg, ctx.seed)
    T, t, k = cfg["teacher"]["steps"], cfg["student"]["steps"], cfg["record"]["every"]
    tau = cfg["student"]["tau"]
    S, n, d = P["X"].shape
    w0 = jnp.zeros((S, d), P["X"].dtype)
    lr_T = _lr(P["eigvals"], cfg["teacher"]["lr_fraction"])
    lr_S = _lr(P["eigvals"], cfg["student"]["lr_fraction"], tau)
    ctx.progress(0, T + t)
    teacher = dynamics.sweep(
        w0, dynamics.Data(X=P["X"], targets=jnp.zeros((S, n), P["X"].dtype), labels=P["y"], basis=P["basis"],
                          X_test=P["X_test"], labels_test=P["y_test"]),
        dynamics.Hyper(lr=lr_T, alpha=1.0), dynamics.EngineSpec(family="binary", steps=T, record_every=k),
        batched=("params", "data"))
    ctx.progress(T, T + t)
    wT = teacher.params
    zT, zT_test = jnp.einsum("snd,sd->sn", P["X"], wT), jnp.einsum("snd,sd->sn", P["X_test"], wT)
    student = dynamics.sweep(
        w0, dynamics.Data(X=P["X"], targets=zT, labels=None, basis=P["basis"], X_test=P["X_test"],
                          targets_test=zT_test, labels_test=P["y_test"]),
        dynamics.Hyper(lr=lr_S, tau=tau), dynamics.EngineSpec(family="binary", steps=t, record_every=k),
        batched=("params", "data"))
    ctx.progress(T + t, T + t)
    wS = student.params
    zS, zS_test = jnp.einsum("snd,sd->sn", P["X"], wS), jnp.einsum("snd,sd->sn", P["X_test"], wS)

    bins = cfg["record"]["bins"]
    m = {"eigvals": np.asarray(P["eigvals"][0]), "steps": np.asarray(student.steps),
         "teacher_steps": np.asarray(teacher.steps), "student_steps": np.asarray(student.steps)}
    summary = {"lr_teacher": lr_T, "lr_student": lr_S, "seeds": S, "dtype": str(np.asarray(P["X"]).dtype),
               "bins": bins}
    for split, a, b in (("train", zT, zS), ("test", zT_test, zS_test)):
        scat = [metrics.confidence_scatter(a[s], b[s], bins=bins, logits=True) for s in range(S)]
        slopes = np.array([float(c.slope) for c in scat])
        m[f"{split}_x"], m[f"{split}_y"] = np.asarray(scat[0].x), np.asarray(scat[0].y)
        m[f"{split}_bin_x"], m[f"{split}_bin_y"] = np.asarray(scat[0].bin_x), np.asarray(scat[0].bin_y)
        m[f"{split}_slopes"] = slopes
        m[f"{split}_intercepts"] = np.array([float(c.intercept) for c in scat])
        summary[f"{split}_slope"] = float(slopes[0])
        summary[f"{split}_intercept"] = float(m[f"{split}_intercepts"][0])
        summary[f"{split}_slope_mean"] = float(slopes.mean())
        summary[f"{split}_slope_std"] = float(slopes.std(ddof=1)) if S > 1 else 0.0
        summary[f"{split}_slope_gt_1"] = bool(slopes[0] > 1.0)
        summary[f"{split}_seeds_with_slope_gt_1"] = int(np.sum(slopes > 1.0))
        summary[f"{split}_agreement"] = float(np.mean([metrics.top1_agreement(a[s], b[s]) for s in range(S)]))
    # accuracies (test against clean labels) and the coefficient trajectories in the Σ̂ eigenbasis
    for who, traj in (("teacher", teacher), ("student", student)):
        m[f"{who}_coeffs"] = np.asarray(traj.coeffs[0])
        m[f"{who}_test_error"] = np.asarray(traj.metrics["test_error"])
        summary[f"{who}_final_test_error_mean"] = float(np.mean(m[f"{who}_test_error"][:, -1]))
    m["teacher_train_error"] = np.asarray(teacher.metrics["train_error"])
    m["student_train_fidelity_error"] = np.asarray(student.metrics["train_fidelity_error"])
    summary["teacher_best_test_error_mean"] = float(np.mean(np.min(m["teacher_test_error"], axis=1)))
    summary["teacher_final_train_error_mean"] = float(np.mean(m["teacher_train_error"][:, -1]))
    summary["flip"] = cfg["data"]["flip"]
    return Result(m, summary)


def figure(metrics_, summary, cfg) -> dict:
    from linkd.plotting import fidelity as figures

    return {"confidence": figures.confidence_exaggeration(metrics_, summary)}


register(Experiment(
    name="confidence",
    description="F3: logit-scale teacher vs student confidence (train/test), OLS slope and binned means",
    schema=SCHEMA, run=run, figures=figure,
))
