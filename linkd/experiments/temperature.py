r"""F11: multiclass distillation at temperature τ, simulated and predicted mode by mode (docs/theory.md §8).

A linear softmax student (W₀ = 0) is distilled from a fixed teacher :math:`W_T` with the τ²-scaled
KD loss, one engine run per τ (one vmapped sweep). Along each eigendirection :math:`v_k` of Σ̂ the
centred coefficients :math:`\gamma_k = v_k^\top W J` give the progress
:math:`p_k(s) = \langle\gamma_k(s), \gamma_k^T\rangle/\|\gamma_k^T\|^2`, predicted by the leading
filter :math:`F_k(s) = 1 - (1 - \eta\lambda_k/C)^s` (Hinton et al. 2015, eq. 4: MSE on centred
logits, step η/C) plus the 1/τ correction. Recorded: measured and predicted progress per τ, the
errors :math:`e_0(\tau) = \max_{k,s}|p_k - F_k|` and :math:`e_1(\tau)` (after the correction), their
fitted log-log slopes over the regime τ ≥ ``record.fit_from``, the class-sum drift (exact invariant)
and the matched-progress gap of each measured student against the leading path.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from linkd import closed_form as cf
from linkd import data, engine, spectral, stability
from linkd.config import Field
from linkd.errors import ConfigError
from linkd.registry import Experiment, Result, register

__all__ = ["SCHEMA", "validate", "run", "figures"]

SCHEMA = {
    "data": {
        "n": Field(int, 300, "number of training points", low=2),
        "variances": Field(list[float], (3.0, 1.5, 0.8, 0.4, 0.2), "population variances of x (d = their number)",
                           low=0.0, low_open=True),
        "mean": Field(float, 0.3, "mean of every input coordinate (0 and symmetric = false still gives M3 != 0)"),
        "symmetric": Field(bool, False, "include each point and its negation (x -> -x symmetric: M3 = 0)"),
        "classes": Field(int, 4, "number of classes C", low=2),
        "teacher_scale": Field(float, 0.8, "teacher entries W_T ~ N(0, scale^2)", low=0.0, low_open=True),
    },
    "train": {
        "lr_fraction": Field(float, 0.3, "eta * lambda_max / C (descent needs eta < 4/lambda_max: fraction < 4/C)",
                             low=0.0, low_open=True),
        "steps": Field(int, 400, "GD steps s", low=1),
        "taus": Field(list[float], (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0), "temperatures tau",
                      low=0.0, low_open=True),
    },
    "record": {
        "fit_from": Field(float, 32.0, "fit the log-log slopes of e0, e1 over tau >= this", low=0.0, low_open=True),
        "gap_min_residual": Field(float, 0.05, "matched-progress gap: leave out rows with 1 - p_i below this "
                                  "(sigma* is ill-conditioned once the O(1/tau) deviation rivals the residual)",
                                  low=0.0, high=1.0, low_open=True, high_open=True),
    },
}


def validate(cfg) -> None:
    """Refuse a step past the descent bound η < 4/λ_max (docs/theory.md §8) and a fit with < 2 points."""
    C, frac = cfg.get("data.classes"), cfg.get("train.lr_fraction")
    limit = stability.tempered_descent(1.0) / C  # eta = lr_fraction * C / lambda_max < 4 / lambda_max
    if not frac < limit:
        raise ConfigError("train.lr_fraction", frac, f"0 < lr_fraction < 4/C = {limit:.4g} (eta < 4/lambda_max, "
                          "the descent bound of the tempered loss)")
    taus = cfg.get("train.taus")
    if sum(t >= cfg.get("record.fit_from") for t in taus) < 2:
        raise ConfigError("record.fit_from", cfg.get("record.fit_from"), "a value with >= 2 of train.taus at or above it")


def _problem(cfg, seed: int):
    D = cfg["data"]
    k_x, k_t = jax.random.split(jax.random.key(seed))
    var = jnp.asarray([float(v) for v in D["variances"]])
    X = data.gaussian_design(k_x, D["n"], var) + float(D["mean"])
    if D["symmetric"]:
        X = jnp.concatenate([X[: D["n"] // 2], -X[: D["n"] // 2]])
    W_T = float(D["teacher_scale"]) * jax.random.normal(k_t, (var.shape[0], D["classes"]), X.dtype)
    sp = spectral.eigh_desc(X)
    lr = float(cfg["train"]["lr_fraction"]) * D["classes"] / float(sp.eigvals[0])
    return X, W_T, sp.eigvals, sp.basis, lr


def run(cfg, ctx) -> Result:
    X, W_T, lam, V, lr = _problem(cfg, ctx.seed)
    C, steps = cfg["data"]["classes"], cfg["train"]["steps"]
    taus = np.asarray([float(t) for t in cfg["train"]["taus"]])
    ctx.progress(0, steps, "GD steps")  # every τ at once, under one vmap
    spec = engine.EngineSpec(family="multiclass", steps=steps, tau2_scale=True)
    d = X.shape[1]
    tr = engine.sweep(jnp.zeros((d, C), X.dtype), engine.Data(X, X @ W_T, basis=V),
                        engine.Hyper(lr=lr, tau=jnp.asarray(taus)), spec)
    ctx.progress(steps, steps)
    gT = V.T @ W_T
    s = np.asarray(tr.steps)
    assert tr.coeffs is not None  # the spec records coefficients
    p = np.asarray(cf.centred_progress(tr.coeffs, gT))  # (taus, S+1, d)
    F = np.asarray(cf.tempered_filter(lam, lr, s, num_classes=C))  # (S+1, d)
    g1 = cf.first_order_correction(lam, cf.third_moment(X, V), gT, jnp.zeros_like(gT), lr, jnp.asarray(s), num_classes=C)
    pc = np.asarray(cf.centred_progress(g1, gT))
    pred1 = F[None] + pc[None] / taus[:, None, None]
    e0 = np.max(np.abs(p - F[None]), axis=(1, 2))
    e1 = np.max(np.abs(p - pred1), axis=(1, 2))
    drift = np.max(np.abs(np.asarray(cf.class_sum(tr.params))))  # W_0 = 0: the class sums stay 0
    mr = cfg["record"]["gap_min_residual"]
    gap = np.asarray(cf.tempered_exaggeration_gap(lam, lr, p, num_classes=C, min_residual=mr).gap)  # (taus, S+1, d, d)
    metrics = {
        "steps": s, "eigvals": np.asarray(lam), "taus": taus, "progress": p, "filter": F,
        "correction": pc, "progress_predicted": pred1, "e0": e0, "e1": e1,
        "teacher_gamma": np.asarray(cf.centre_classes(gT)), "student_coeffs": np.asarray(tr.coeffs),
        "gap_min": _nan_extreme(np.nanmin, gap), "gap_max": _nan_extreme(np.nanmax, gap),
    }
    return Result(metrics, _summary(cfg, metrics, X, W_T, lr, drift))


def _nan_extreme(fn, gap: np.ndarray) -> np.ndarray:
    """Per-τ min or max over the defined gap entries (NaN: a pair or row left out); 0 when none is defined."""
    flat = gap.reshape(gap.shape[0], -1)
    has = np.any(np.isfinite(flat), axis=1)
    return np.where(has, fn(np.where(has[:, None], flat, 0.0), axis=1), 0.0)


def _summary(cfg, m, X, W_T, lr, drift) -> dict:
    taus, fit = m["taus"], m["taus"] >= cfg["record"]["fit_from"]
    slope = lambda e: float(np.polyfit(np.log(taus[fit]), np.log(e[fit]), 1)[0])
    Lam = float(np.max(np.abs(np.asarray(cf.centre_classes(X @ W_T)))))
    return {
        "lr": lr, "classes": int(cfg["data"]["classes"]), "Lambda": Lam,
        "e0": [float(v) for v in m["e0"]], "e1": [float(v) for v in m["e1"]],
        "e0_slope": slope(m["e0"]), "e1_slope": slope(m["e1"]),
        "fit_taus": [float(t) for t in taus[fit]],
        "closed_form_vs_simulation": {  # leading filter + 1/tau correction at the largest tau (progress is O(1))
            "tau": float(taus[-1]), "max_abs_error": float(m["e1"][-1]),
            "max_rel_error": float(m["e1"][-1] / np.max(np.abs(m["progress_predicted"][-1])))},
        "e1_over_e0_max_in_fit": float(np.max(m["e1"][fit] / m["e0"][fit])),
        "class_sum_drift": float(drift),
        "max_abs_correction": float(np.max(np.abs(m["correction"]))),
        "matched_gap_min": [float(v) for v in m["gap_min"]], "matched_gap_max": [float(v) for v in m["gap_max"]],
        "matched_gap_absmax_slope": slope(np.maximum(np.abs(m["gap_min"]), np.abs(m["gap_max"]))),
        "dtype": str(np.asarray(X).dtype),
    }


def figures(metrics, summary, cfg) -> dict:
    from linkd.plotting import temperature as plots

    return {"temperature": plots.temperature_figure(metrics, summary)}


register(Experiment(
    name="temperature",
    description="F11: softmax distillation at temperature tau, progress per eigendirection vs the leading filter "
                "and its 1/tau correction; errors e0, e1 against tau",
    schema=SCHEMA, run=run, figures=figures, validate=validate,
    headline=("e0_slope", "e1_slope", "class_sum_drift"),
))
