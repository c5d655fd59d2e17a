r"""F8: fidelity of a distilled linear student (Stanton et al., docs/theory.md §4.3, §9.1–9.2).

Teacher: a fixed linear model :math:`w_*` whose population logit :math:`w_*^\top x` has standard
deviation ``data.logit_scale``. Students: linear models trained by full-batch GD from zero on the
teacher's logits :math:`Xw_*` — squared loss (``train.loss = "mse"``, default: the finite-time
closed forms apply) or soft cross-entropy on :math:`\sigma(Xw_*)` (``"soft_ce"``, τ = 1) — with an
ill-conditioned input spectrum (:math:`\lambda_k\propto k^{-a}`). Measured on a fresh test set:
top-1 agreement (Stanton Eq. 2, a fraction), the mean squared logit difference
:math:`D_{test} = E[(x^\top(w_S - w_*))^2]` and predictive :math:`\mathrm{KL}(p_T\|p_S)` (Eq. 3, τ = 1).

* Against GD steps, for the distillation-set sizes ``data.n_curves``: lines are the exact
  finite-time predictions from the spectrum of :math:`\hat\Sigma` (MSE; :mod:`linkd.closed_form.fidelity`):
  agreement :math:`1 - \arccos(\rho_\Sigma(t))/\pi` (Sheppard, Σ-metric cosine of teacher and student)
  and :math:`D_{test}(t) = e^\top Me`, :math:`e_k = -(1-\eta\lambda_k)^t c^*_k` (:math:`e_k = -c^*_k` where
  :math:`\lambda_k = 0`); markers are Monte Carlo measurements of the simulated students on the test
  set. Agreement climbs steadily on a log-step axis: a plateau needs a gap in the spectrum
  (``proofs_check`` claim ``st.ill_conditioning_plateau``).
* Against n (``data.n_values``): the converged student is the closed form
  :math:`\hat w = P w_*`, :math:`P = X^+X` (:func:`linkd.closed_form.pl_limit`, the limit of both
  losses): for n < d the gap is set by span(X); for n ≥ d, :math:`\hat w = w_*`, agreement = 1 and
  KL = 0. Markers: the simulated student after ``train.steps`` steps (the same budget for every n).

Each distillation set is the first n rows of one pool per seed (nested sets); ``data.seeds`` seeds
run under one ``vmap`` (:func:`linkd.engine.sweep`, batched data); bars are ±1 standard error
over seeds.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from linkd import closed_form, data, engine, spectral
from linkd.config import Field
from linkd.errors import ConfigError
from linkd.experiments._mse_common import population_spectrum
from linkd.registry import Experiment, Result, register

__all__ = ["SCHEMA", "validate", "binary_kl_from_logits", "predicted_curves", "run", "figure"]

SCHEMA = {
    "data": {
        "d": Field(int, 50, "input dimension", low=1),
        "n_values": Field(list[int], (5, 10, 20, 30, 40, 50, 75, 100, 150),
                          "distillation-set sizes n for the against-n panel", low=1),
        "n_curves": Field(list[int], (25, 50, 150), "sizes n whose trajectories are drawn against steps", low=1),
        "n_test": Field(int, 20000, "number of test points (Monte Carlo markers)", low=2),
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
        "loss": Field(str, "mse", "student loss on the teacher's logits: squared loss (closed forms drawn) or soft "
                                  "cross-entropy at τ = 1", choices=("mse", "soft_ce")),
        "lr_fraction": Field(float, 0.9, "η as a fraction of 1/L, L = λ_max(Σ̂) (mse) or λ_max(Σ̂)/4 (soft_ce)",
                             low=0.0, high=2.0, low_open=True, high_open=True),
    },
    "record": {
        "every": Field(int, 10, "record the student weights every k steps (against-steps panel)", low=1),
        "points": Field(int, 25, "log-spaced recorded steps at which test metrics are measured (markers)", low=2),
        "curve_points": Field(int, 200, "log-spaced steps of the closed-form curves (lines)", low=2),
    },
}


def validate(cfg) -> None:
    if cfg.get("record.every") > cfg.get("train.steps"):
        raise ConfigError("record.every", cfg.get("record.every"), f"<= train.steps = {cfg.get('train.steps')}")
    if not cfg.get("data.n_values"):
        raise ConfigError("data.n_values", "[]", "at least one size n")


def _problem(cfg, seed: int):
    """Per seed: a pool of max(n) inputs, a test set, the teacher w* and the population covariance
    Σ = U diag(λ) Uᵀ; stacked on axis 0."""
    D = cfg["data"]
    lam = population_spectrum(D)
    n_max = max(max(D["n_values"]), max(D["n_curves"]))
    pools, tests, teachers, covs = [], [], [], []
    for key in jax.random.split(jax.random.key(seed), D["seeds"]):
        k_design, k_teacher = jax.random.split(key)
        design = data.make_design(k_design, n_max, D["d"], lam, n_test=D["n_test"], basis="random")
        assert design.basis is not None  # basis="random" always returns one
        w = data.linear_teacher(k_teacher, lam, basis=design.basis, profile=D["teacher_profile"])
        U = design.basis
        pop_std = jnp.sqrt(jnp.sum(lam * (U.T @ w) ** 2))
        pools.append(design.X)
        tests.append(design.X_test)
        teachers.append(w * (D["logit_scale"] / pop_std))
        covs.append(np.asarray((U * lam[None, :]) @ U.T))
    return jnp.stack(pools), jnp.stack(tests), jnp.stack(teachers), np.asarray(lam), np.stack(covs)


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


def _family(loss: str) -> str:
    return "mse" if loss == "mse" else "binary"


def _train(pool, w_star, ns, steps: int, every: int, fraction: float, record: bool, loss: str = "soft_ce"):
    """GD on the teacher's logits Xw* (squared loss, or soft CE on σ(Xw*)) for every (n in ``ns``,
    seed) pair in ONE vmapped sweep.

    Each member's set is the first n rows of its seed's pool, zero-padded to the pool size N:
    a zero row has logit 0 = teacher logit 0, so it adds nothing to the gradient, and scaling the
    step by N/n makes GD on the padded mean loss identical to GD on the n-row mean loss. Each n
    gets its own step ``fraction``/L(Σ̂_n) (max λ over seeds). Returns (trajectory with a leading
    axis len(ns)·S ordered n-major, per-n learning rates)."""
    S, N, d = pool.shape
    fam = _family(loss)
    Xs, lrs, lr_eff = [], [], []
    for n in ns:
        lr = engine.default_lr(pool[:, :n], fam, fraction)
        lrs.append(lr)
        Xs.append(pool * (jnp.arange(N) < n).astype(pool.dtype)[None, :, None])
        lr_eff += [lr * N / n] * S
    X = jnp.concatenate(Xs)
    W = jnp.concatenate([w_star] * len(ns))
    targets = jnp.einsum("snd,sd->sn", X, W)
    M = X.shape[0]
    basis = jnp.broadcast_to(jnp.eye(d, dtype=X.dtype), (M, d, d)) if record else None
    traj = engine.sweep(jnp.zeros((M, d), X.dtype), engine.Data(X=X, targets=targets, basis=basis),
                          engine.Hyper(lr=jnp.asarray(lr_eff, X.dtype)),
                          engine.EngineSpec(family=fam, steps=steps, record_every=every if record else steps),
                          batched=("params", "data", "hyper"))
    return traj, lrs


def predicted_curves(X, w_star, cov, lr: float, t) -> tuple[np.ndarray, np.ndarray]:
    """Closed-form test agreement and D_test of the MSE student on the logits of w* after t GD
    steps on X (docs/theory.md §9): the fixed teacher's coordinates in the full eigenbasis of Σ̂."""
    sp = spectral.eigh_desc(jnp.asarray(X))
    lam, V = np.asarray(sp.eigvals), np.asarray(sp.basis)
    c = V.T @ np.asarray(w_star)
    agree = closed_form.sign_agreement_curve(lam, V, c, lr, None, t, cov=cov)
    dis = closed_form.test_disagreement(lam, V, c, lr, None, t, cov=cov)
    return np.asarray(agree), np.asarray(dis)


def _log_indices(steps: np.ndarray, points: int) -> np.ndarray:
    pos = np.flatnonzero(steps > 0)
    targets = np.geomspace(steps[pos[0]], steps[pos[-1]], points)
    idx = pos[np.clip(np.searchsorted(steps[pos], targets), 0, pos.size - 1)]
    return np.unique(np.concatenate([[0], idx]))


def _against_steps(m, summary, cfg, pool, X_test, w_star, covs, zT_test):
    """One sweep over (n_curves x seeds), weights recorded every k steps; MC measurements at
    log-spaced steps and (MSE) the closed-form curves on a finer log grid."""
    D, Tr, R = cfg["data"], cfg["train"], cfg["record"]
    S, N, d = pool.shape
    n_curves, steps, loss = list(D["n_curves"]), Tr["steps"], Tr["loss"]
    traj, lrs = _train(pool, w_star, n_curves, steps, R["every"], Tr["lr_fraction"], record=True, loss=loss)
    rec_steps = np.asarray(traj.steps)
    idx = _log_indices(rec_steps, R["points"])
    m["steps"] = rec_steps[idx]
    m["curve_steps"] = np.unique(np.round(np.geomspace(1.0, steps, R["curve_points"])))
    coeffs = np.asarray(traj.coeffs)[:, idx].reshape(len(n_curves), S, idx.size, d)
    fid_err = np.asarray(traj.metrics["train_fidelity_error"])[:, idx].reshape(len(n_curves), S, idx.size)
    Xt = np.asarray(X_test)
    for j, n in enumerate(n_curves):
        W = coeffs[j]  # (S, P, d), identity basis: coefficients = weights
        zS = np.einsum("std,spd->spt", Xt, W)  # (S, P, n_test)
        m[f"n{n}_agreement"] = _agreement(zT_test[:, None, :], zS)  # (S, P)
        m[f"n{n}_kl"] = binary_kl_from_logits(zT_test[:, None, :], zS)
        m[f"n{n}_disagreement"] = np.mean((zS - zT_test[:, None, :]) ** 2, axis=-1)  # MC D_test
        # train: MSE error to the teacher's logits (D_train) or the 0-1 disagreement (soft CE), on the n real rows
        m[f"n{n}_train_fidelity_error"] = fid_err[j] * N / n
        m[f"n{n}_coeffs"] = W[0]
        w_lim = np.stack([np.asarray(closed_form.pl_limit(pool[s, :n], w_star[s])) for s in range(S)])
        z_lim = np.einsum("std,sd->st", Xt, w_lim)
        m[f"n{n}_limit_agreement"] = _agreement(zT_test, z_lim)
        m[f"n{n}_limit_kl"] = binary_kl_from_logits(zT_test, z_lim)
        info = {"lr": lrs[j], "final_agreement_mean": float(m[f"n{n}_agreement"][:, -1].mean()),
                "final_kl_mean": float(m[f"n{n}_kl"][:, -1].mean()),
                "limit_agreement_mean": float(m[f"n{n}_limit_agreement"].mean()),
                "limit_kl_mean": float(m[f"n{n}_limit_kl"].mean())}
        if loss == "mse":
            _closed_form_curves(m, info, n, pool[:, :n], w_star, covs, lrs[j], X_test.shape[1])
        summary[f"n{n}"] = info


def _closed_form_curves(m, info, n, Xn, w_star, covs, lr, n_test):
    """Closed-form agreement/D_test per seed on the fine grid (lines) and at the measured steps;
    the MC deviation of the simulated students in binomial standard errors."""
    S = Xn.shape[0]
    fine = [predicted_curves(Xn[s], w_star[s], covs[s], lr, m["curve_steps"]) for s in range(S)]
    at = [predicted_curves(Xn[s], w_star[s], covs[s], lr, m["steps"]) for s in range(S)]
    m[f"n{n}_pred_agreement"] = np.stack([f[0] for f in fine])
    m[f"n{n}_pred_disagreement"] = np.stack([f[1] for f in fine])
    pa, pd = np.stack([a[0] for a in at]), np.stack([a[1] for a in at])
    ok = np.asarray(m["steps"]) > 0  # the t = 0 student has no sign
    se = np.sqrt(np.clip(pa * (1.0 - pa), 1e-300, None) / n_test)
    z = np.abs(m[f"n{n}_agreement"] - pa)[:, ok] / se[:, ok]
    info["closed_form_agreement"] = {"max_abs_error": float(np.max(np.abs(m[f"n{n}_agreement"] - pa)[:, ok])),
                                     "max_error_in_se": float(np.max(z)),
                                     "mean_error_in_se": float(np.mean(m[f"n{n}_agreement"][:, ok] - pa[:, ok]) /
                                                               np.mean(se[:, ok]))}
    rel = np.abs(m[f"n{n}_disagreement"] - pd) / pd
    info["closed_form_disagreement"] = {"max_abs_error": float(np.max(np.abs(m[f"n{n}_disagreement"] - pd))),
                                        "max_rel_error": float(np.max(rel))}


def _against_n(m, summary, cfg, pool, X_test, w_star, zT_test):
    D, Tr = cfg["data"], cfg["train"]
    S, _, d = pool.shape
    n_values, steps = sorted(set(D["n_values"])), Tr["steps"]
    traj, _ = _train(pool, w_star, n_values, steps, steps, Tr["lr_fraction"], record=False, loss=Tr["loss"])
    W_end = np.asarray(traj.params).reshape(len(n_values), S, d)
    Xt = np.asarray(X_test)
    for key in ("agreement", "kl", "limit_agreement", "limit_kl", "limit_dist"):
        m[f"vs_n_{key}"] = np.zeros((S, len(n_values)))
    for j, n in enumerate(n_values):
        zS = np.einsum("std,sd->st", Xt, W_end[j])
        m["vs_n_agreement"][:, j] = _agreement(zT_test, zS)
        m["vs_n_kl"][:, j] = binary_kl_from_logits(zT_test, zS)
        w_lim = np.stack([np.asarray(closed_form.pl_limit(pool[s, :n], w_star[s])) for s in range(S)])
        z_lim = np.einsum("std,sd->st", Xt, w_lim)
        m["vs_n_limit_agreement"][:, j] = _agreement(zT_test, z_lim)
        m["vs_n_limit_kl"][:, j] = binary_kl_from_logits(zT_test, z_lim)
        m["vs_n_limit_dist"][:, j] = np.linalg.norm(w_lim - np.asarray(w_star), axis=1)
    big = np.asarray(n_values) >= d
    summary["limit_agreement_min_n_ge_d"] = float(m["vs_n_limit_agreement"][:, big].min()) if big.any() else None
    summary["limit_kl_max_n_ge_d"] = float(m["vs_n_limit_kl"][:, big].max()) if big.any() else None
    for key, arr in (("sim_agreement", "vs_n_agreement"), ("limit_agreement", "vs_n_limit_agreement"),
                     ("sim_kl", "vs_n_kl")):
        summary[f"{key}_mean_by_n"] = {str(n): float(v) for n, v in zip(n_values, m[arr].mean(0))}


def run(cfg, ctx) -> Result:
    D, Tr = cfg["data"], cfg["train"]
    pool, X_test, w_star, lam, covs = _problem(cfg, ctx.seed)
    S, _, d = pool.shape
    zT_test = np.asarray(jnp.einsum("snd,sd->sn", X_test, w_star))
    total = Tr["steps"] * (len(set(D["n_values"])) + len(D["n_curves"]))
    ctx.progress(0, total, "GD steps")
    m: dict[str, np.ndarray] = {"eigvals": lam, "n_values": np.asarray(sorted(set(D["n_values"]))),
                                "n_curves": np.asarray(D["n_curves"])}
    summary: dict = {"d": d, "seeds": S, "condition_number": float(lam[0] / lam[-1]), "steps": Tr["steps"],
                     "loss": Tr["loss"], "n_test": int(X_test.shape[1]), "dtype": str(np.asarray(pool).dtype)}
    _against_steps(m, summary, cfg, pool, X_test, w_star, covs, zT_test)
    ctx.progress(Tr["steps"] * len(D["n_curves"]), total)
    _against_n(m, summary, cfg, pool, X_test, w_star, zT_test)
    ctx.progress(total, total)
    if Tr["loss"] == "mse":
        summary["closed_form_agreement_max_error_in_se"] = max(
            summary[f"n{n}"]["closed_form_agreement"]["max_error_in_se"] for n in D["n_curves"])
    return Result(m, summary)


def figure(metrics_, summary, cfg) -> dict:
    from linkd.plotting import fidelity as figures

    return {"fidelity": figures.fidelity(metrics_, summary)}


register(Experiment(
    name="fidelity",
    description="F8: test agreement and disagreement against GD steps (closed form + Monte Carlo) and against "
                "distillation-set size",
    schema=SCHEMA, run=run, figures=figure, validate=validate,
    headline=("closed_form_agreement_max_error_in_se",),
))
