r"""F8: fidelity of a distilled linear student (Stanton et al., theory §4.3).

Teacher: a binary logistic model :math:`p_T(x) = \sigma(w_*^\top x)`, :math:`w_*` scaled so that
its population logit has standard deviation ``data.logit_scale``. Students: linear logistic models
trained by full-batch GD from zero on the soft labels :math:`\sigma(Xw_*)` (soft cross-entropy,
τ = 1), with an ill-conditioned input spectrum (:math:`\lambda_k\propto k^{-a}`). Measured on a
fresh test set: top-1 agreement (Stanton Eq. 2, a fraction) and predictive
:math:`\mathrm{KL}(p_T\|p_S)` (Eq. 3, τ = 1).

* Against GD steps, for the distillation-set sizes ``data.n_curves``: agreement rises on a log-step
  axis and stays below 1 after many steps, because the small-λ directions are learned at rate
  ∝ λ_k (the "optimization difficulty"). The converged student's values are drawn as lines.
* Against n (``data.n_values``): the converged student is the closed form
  :math:`\hat w = P w_*`, :math:`P = X^+X` (:func:`linkd.closed_form.pl_limit`): for n < d the gap is
  set by span(X); for n ≥ d, :math:`\hat w = w_*`, agreement = 1 and KL = 0. Markers: the simulated
  student after ``train.steps`` steps (the same budget for every n).

Each distillation set is the first n rows of one pool per seed (nested sets); ``data.seeds`` seeds
run under one ``vmap`` (:func:`linkd.dynamics.sweep`, batched data); bars are ±1 standard error.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from linkd import closed_form, data, dynamics
from linkd.config import Field
from linkd.errors import ConfigError
from linkd.experiments._mse_common import population_spectrum
from linkd.experiments.base import Experiment, Result, register

SCHEMA = {
    "data": {
        "d": Field(int, 50, "input dimension", low=1),
        "n_values": Field(list[int], (5, 10, 20, 30, 40, 50, 75, 100, 150),
                          "distillation-set sizes n for the against-n panel", low=1),
        "n_curves": Field(list[int], (25, 50, 150), "sizes n whose trajectories are drawn against steps", low=1),
        "n_test": Field(int, 2000, "number of test points", low=2),
        "spectrum": Field(str, "power_law", "population spectrum kind", choices=("power_law", "exponential")),
        "exponent": Field(float, 2.0, "power-law exponent a (λ_k ∝ k^-a) or exponential rate; "
                                      "condition number d^a", low=0.0),
        "teacher_profile": Field(float, 0.0, "teacher coefficients c_k ∝ k^-profile in the population eigenbasis"),
        "logit_scale": Field(float, 3.0, "population std of the teacher logit w*ᵀx (teacher confidence)",
                             low=0.0, low_open=True),
        "seeds": Field(int, 4, "independent pools, teachers and test sets (vmapped)", low=1),
    },
    "train": {
        "steps": Field(int, 10000, "student GD steps", low=1),
        "lr_fraction": Field(float, 0.9, "η as a fraction of 1/L, L = λ_max(Σ̂)/4 (soft-CE smoothness)",
                             low=0.0, high=2.0, low_open=True, high_open=True),
    },
    "record": {
        "every": Field(int, 10, "record the student weights every k steps (against-steps panel)", low=1),
        "points": Field(int, 60, "log-spaced recorded steps at which test metrics are evaluated", low=2),
    },
}


def validate(cfg) -> None:
    if cfg.get("record.every") > cfg.get("train.steps"):
        raise ConfigError("record.every", cfg.get("record.every"), f"<= train.steps = {cfg.get('train.steps')}")
    if not cfg.get("data.n_values"):
        raise ConfigError("data.n_values", "[]", "at least one size n")


def _problem(cfg, seed: int):
    """Per seed: a pool of max(n) inputs, a test set and the teacher w*; stacked on axis 0."""
    D = cfg["data"]
    lam = population_spectrum(D)
    n_max = max(max(D["n_values"]), max(D["n_curves"]))
    pools, tests, teachers = [], [], []
    for key in jax.random.split(jax.random.key(seed), D["seeds"]):
        k_design, k_teacher = jax.random.split(key)
        design = data.make_design(k_design, n_max, D["d"], lam, n_test=D["n_test"], basis="random")
        w = data.linear_teacher(k_teacher, lam, basis=design.basis, profile=D["teacher_profile"])
        U = design.basis
        pop_std = jnp.sqrt(jnp.sum(lam * (U.T @ w) ** 2))
        pools.append(design.X)
        tests.append(design.X_test)
        teachers.append(w * (D["logit_scale"] / pop_std))
    return jnp.stack(pools), jnp.stack(tests), jnp.stack(teachers), np.asarray(lam)


def _softplus(x):
    return np.logaddexp(0.0, x)


def binary_kl_from_logits(zT, zS) -> np.ndarray:
    r"""Mean over the last axis of :math:`\mathrm{KL}(\mathrm{Bern}\,\sigma(z_T)\|\mathrm{Bern}\,\sigma(z_S))`,
    computed from logits (stable in the tails): :math:`p(\mathrm{sp}(-z_S)-\mathrm{sp}(-z_T)) +
    (1-p)(\mathrm{sp}(z_S)-\mathrm{sp}(z_T))`, sp = softplus, p = σ(z_T)."""
    zT, zS = np.asarray(zT, np.float64), np.asarray(zS, np.float64)
    p = 0.5 * (1.0 + np.tanh(0.5 * zT))
    kl = p * (_softplus(-zS) - _softplus(-zT)) + (1.0 - p) * (_softplus(zS) - _softplus(zT))
    return np.mean(np.maximum(kl, 0.0), axis=-1)


def _agreement(zT, zS) -> np.ndarray:
    return np.mean((np.asarray(zT) > 0) == (np.asarray(zS) > 0), axis=-1)


def _train(pool, w_star, ns, steps: int, every: int, fraction: float, record: bool):
    """GD on the soft labels σ(Xw*) for every (n in ``ns``, seed) pair in ONE vmapped sweep.

    Each member's set is the first n rows of its seed's pool, zero-padded to the pool size N:
    a zero row has logit 0 = teacher logit 0, so it adds nothing to the gradient, and scaling the
    step by N/n makes GD on the padded mean loss identical to GD on the n-row mean loss. Each n
    gets its own step ``fraction``/L(Σ̂_n) (max λ over seeds). Returns (trajectory with a leading
    axis len(ns)·S ordered n-major, per-n learning rates)."""
    S, N, d = pool.shape
    Xs, lrs, lr_eff = [], [], []
    for n in ns:
        lr = dynamics.default_lr(pool[:, :n], "binary", fraction)
        lrs.append(lr)
        Xs.append(pool * (jnp.arange(N) < n).astype(pool.dtype)[None, :, None])
        lr_eff += [lr * N / n] * S
    X = jnp.concatenate(Xs)
    W = jnp.concatenate([w_star] * len(ns))
    targets = jnp.einsum("snd,sd->sn", X, W)
    M = X.shape[0]
    basis = jnp.broadcast_to(jnp.eye(d, dtype=X.dtype), (M, d, d)) if record else None
    traj = dynamics.sweep(jnp.zeros((M, d), X.dtype), dynamics.Data(X=X, targets=targets, basis=basis),
                          dynamics.Hyper(lr=jnp.asarray(lr_eff, X.dtype)),
                          dynamics.EngineSpec(family="binary", steps=steps, record_every=every if record else steps),
                          batched=("params", "data", "hyper"))
    return traj, lrs


def _log_indices(steps: np.ndarray, points: int) -> np.ndarray:
    pos = np.flatnonzero(steps > 0)
    targets = np.geomspace(steps[pos[0]], steps[pos[-1]], points)
    idx = pos[np.clip(np.searchsorted(steps[pos], targets), 0, pos.size - 1)]
    return np.unique(np.concatenate([[0], idx]))


def run(cfg, ctx) -> Result:
    D, Tr, R = cfg["data"], cfg["train"], cfg["record"]
    pool, X_test, w_star, lam = _problem(cfg, ctx.seed)
    S, _, d = pool.shape
    zT_test = np.asarray(jnp.einsum("snd,sd->sn", X_test, w_star))
    steps = Tr["steps"]
    n_values, n_curves = sorted(set(D["n_values"])), list(D["n_curves"])
    total = steps * (len(n_values) + len(n_curves))
    done = 0
    ctx.progress(done, total)

    def test_logits(W):  # W (S, ..., d) -> (S, ..., n_test)
        return np.einsum("std,s...d->s...t", np.asarray(X_test), np.asarray(W))

    m: dict[str, np.ndarray] = {"eigvals": lam, "n_values": np.asarray(n_values), "n_curves": np.asarray(n_curves)}
    summary: dict = {"d": d, "seeds": S, "condition_number": float(lam[0] / lam[-1]), "steps": steps,
                     "dtype": str(np.asarray(pool).dtype)}
    # --- against steps: one sweep over (n_curves x seeds), weights recorded every k steps
    traj, lrs = _train(pool, w_star, n_curves, steps, R["every"], Tr["lr_fraction"], record=True)
    done += steps * len(n_curves)
    ctx.progress(done, total)
    rec_steps = np.asarray(traj.steps)
    idx = _log_indices(rec_steps, R["points"])
    m["steps"] = rec_steps[idx]
    coeffs = np.asarray(traj.coeffs)[:, idx].reshape(len(n_curves), S, idx.size, d)
    fid_err = np.asarray(traj.metrics["train_fidelity_error"])[:, idx].reshape(len(n_curves), S, idx.size)
    for j, n in enumerate(n_curves):
        W = coeffs[j]  # (S, P, d), identity basis: coefficients = weights
        zS = test_logits(W)  # (S, P, n_test)
        m[f"n{n}_agreement"] = _agreement(zT_test[:, None, :], zS)  # (S, P)
        m[f"n{n}_kl"] = binary_kl_from_logits(zT_test[:, None, :], zS)
        # padded rows agree trivially (logit 0 vs 0 counts as agreement): rescale to the n real rows
        N = pool.shape[1]
        m[f"n{n}_train_fidelity_error"] = fid_err[j] * N / n
        m[f"n{n}_coeffs"] = W[0]
        w_lim = np.stack([np.asarray(closed_form.pl_limit(pool[s, :n], w_star[s])) for s in range(S)])
        z_lim = test_logits(w_lim)
        m[f"n{n}_limit_agreement"] = _agreement(zT_test, z_lim)
        m[f"n{n}_limit_kl"] = binary_kl_from_logits(zT_test, z_lim)
        summary[f"n{n}"] = {
            "lr": lrs[j],
            "final_agreement_mean": float(m[f"n{n}_agreement"][:, -1].mean()),
            "final_kl_mean": float(m[f"n{n}_kl"][:, -1].mean()),
            "limit_agreement_mean": float(m[f"n{n}_limit_agreement"].mean()),
            "limit_kl_mean": float(m[f"n{n}_limit_kl"].mean()),
        }
    # --- against n: one sweep over (n_values x seeds), final weights only
    traj, _ = _train(pool, w_star, n_values, steps, steps, Tr["lr_fraction"], record=False)
    done += steps * len(n_values)
    ctx.progress(done, total)
    W_end = np.asarray(traj.params).reshape(len(n_values), S, d)
    for key in ("agreement", "kl", "limit_agreement", "limit_kl", "limit_dist"):
        m[f"vs_n_{key}"] = np.zeros((S, len(n_values)))
    for j, n in enumerate(n_values):
        zS = test_logits(W_end[j])
        m["vs_n_agreement"][:, j] = _agreement(zT_test, zS)
        m["vs_n_kl"][:, j] = binary_kl_from_logits(zT_test, zS)
        w_lim = np.stack([np.asarray(closed_form.pl_limit(pool[s, :n], w_star[s])) for s in range(S)])
        z_lim = test_logits(w_lim)
        m["vs_n_limit_agreement"][:, j] = _agreement(zT_test, z_lim)
        m["vs_n_limit_kl"][:, j] = binary_kl_from_logits(zT_test, z_lim)
        m["vs_n_limit_dist"][:, j] = np.linalg.norm(w_lim - np.asarray(w_star), axis=1)
    big = np.asarray(n_values) >= d
    summary["limit_agreement_min_n_ge_d"] = float(m["vs_n_limit_agreement"][:, big].min()) if big.any() else None
    summary["limit_kl_max_n_ge_d"] = float(m["vs_n_limit_kl"][:, big].max()) if big.any() else None
    summary["sim_agreement_mean_by_n"] = {str(n): float(v) for n, v in zip(n_values, m["vs_n_agreement"].mean(0))}
    summary["limit_agreement_mean_by_n"] = {str(n): float(v)
                                            for n, v in zip(n_values, m["vs_n_limit_agreement"].mean(0))}
    summary["sim_kl_mean_by_n"] = {str(n): float(v) for n, v in zip(n_values, m["vs_n_kl"].mean(0))}
    return Result(m, summary)


def figure(metrics_, summary, cfg) -> dict:
    from linkd.plotting import fidelity as figures

    return {"fidelity": figures.fidelity(metrics_, summary)}


register(Experiment(
    name="fidelity",
    description="F8: test agreement and predictive KL(teacher||student) against GD steps and distillation-set size",
    schema=SCHEMA, run=run, figures=figure, validate=validate,
))
