r"""F12: distillation as a gradient denoiser under minibatch SGD (docs/theory.md §10).

A teacher trained by SGD on noisy labels y for T steps, then two students trained by SGD from 0:
one on the raw labels y, one on a fixed teacher's outputs :math:`\hat y = Xw_T` (run 0 of the SGD
teacher, or the GD teacher = the SGD teacher's mean). For each of a few eigendirections the figure
shows the Monte Carlo mean ± one SD of :math:`c_k = v_k^\top w` over ``train.seeds`` engine runs
(one compiled vmap, :func:`linkd.engine.simulate_seeds`) as shaded bands, the exact moments of
:func:`linkd.closed_form.sgd_moments` / :func:`~linkd.closed_form.sgd_teacher_student` as lines,
the full-batch GD trajectory beside them (dashed; the exact mean is GD, §10.1), and the variances on
a log axis with the raw-label noise floor (§10.2): the distilled student's variance decays
geometrically, the raw-label student's stays at the floor (§10.4).

The step is ``train.lr_fraction`` × the SGD second-moment limit :math:`1/\rho(\mathcal T)` (§10.3)
for plain SGD with or without replacement; for other optimizers or shuffled epochs (no closed form)
× GD's limit, and only the Monte Carlo bands and GD lines are drawn.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from linkd import closed_form as cf
from linkd import engine, stability
from linkd.config import OPTIMIZER_FIELDS, Field
from linkd.errors import ConfigError
from linkd.experiments._mse_common import DATA_SECTION, build_problem
from linkd.registry import Experiment, Result, register

__all__ = ["SCHEMA", "validate", "run", "figure"]

MODELS = ("teacher", "raw", "kd")

SCHEMA = {
    "data": {**DATA_SECTION, "noise": Field(float, 1.0, "label noise std σ in y = Xw* + σε", low=0.0)},
    "teacher": {
        "steps": Field(int, 40, "teacher SGD steps T on the labels y", low=1),
        "fixed": Field(str, "sgd", "the fixed teacher the students distil from: run 0 of the SGD teacher, or the GD "
                       "teacher (the SGD teacher's mean)", choices=("sgd", "gd")),
    },
    "student": {"steps": Field(int, 300, "student SGD steps (raw labels and teacher outputs)", low=1)},
    "train": {
        **OPTIMIZER_FIELDS,
        "batch_size": Field(int, 4, "minibatch size B", low=1),
        "lr_fraction": Field(float, 0.3, "η as a fraction of the stability limit (SGD second-moment limit 1/ρ(T) when "
                             "the closed form applies, else GD's 2/λ_max)", low=0.0, high=1.0, low_open=True,
                             high_open=True),
        "seeds": Field(int, 2000, "Monte Carlo runs per model (one compiled vmap)", low=2),
    },
    "record": {
        "every": Field(int, 5, "record every k steps", low=1),
        "directions": Field(list[int], (1, 4, 8), "1-based eigendirections drawn (at most 4)"),
    },
}


def _closed_form_applies(cfg) -> bool:
    """Exact moments exist for plain SGD steps drawn with or without replacement (docs/theory.md §10.1)."""
    return cfg.get("train.optimizer") == "gd" and cfg.get("train.sampling") in stability.SGD_EXACT_SAMPLINGS


def validate(cfg) -> None:
    n, d, B = cfg.get("data.n"), cfg.get("data.d"), cfg.get("train.batch_size")
    if cfg.get("train.sampling") != "with_replacement" and B > n:
        raise ConfigError("train.batch_size", B, f"1 <= batch_size <= data.n = {n} when sampling "
                          f"{cfg.get('train.sampling')!r}")
    dirs = cfg.get("record.directions")
    if not 1 <= len(dirs) <= 4 or any(not 1 <= k <= min(n, d) for k in dirs):
        raise ConfigError("record.directions", ",".join(map(str, dirs)),
                          f"1 to 4 indices in [1, min(data.n, data.d) = {min(n, d)}]")


def _step_size(cfg, X) -> tuple[float, float, str]:
    """(η, the limit it is a fraction of, the limit's name)."""
    B, samp, opt = cfg.get("train.batch_size"), cfg.get("train.sampling"), cfg.get("train.optimizer")
    if _closed_form_applies(cfg):
        limit, what = cf.sgd_lr_limit(X, batch_size=B, sampling=samp), "SGD second-moment limit 1/rho(T)"
    else:
        gd = 2.0 / float(np.linalg.eigvalsh(X.T @ X / X.shape[0])[-1])
        limit = gd if opt == "adam" else stability.momentum_limit(opt, gd, cfg.get("train.momentum"))[0]
        what = "GD stability limit"
    return cfg.get("train.lr_fraction") * limit, limit, what


def _spec(cfg, steps: int, batch: bool) -> engine.EngineSpec:
    return engine.EngineSpec(family="mse", optimizer=cfg.get("train.optimizer"), steps=steps,
                             record_every=cfg.get("record.every"),
                             batch_size=cfg.get("train.batch_size") if batch else None,
                             sampling=cfg.get("train.sampling"))


def _simulate(cfg, X, targets, V, lr, steps, key):
    """(Monte Carlo coefficients (S, R, d), final params (S, d), GD coefficients (R, d))."""
    d = engine.Data(jnp.asarray(X), jnp.asarray(targets), basis=jnp.asarray(V))
    hyper = engine.Hyper(lr=lr, momentum=cfg.get("train.momentum"))
    w0 = jnp.zeros(X.shape[1], jnp.asarray(X).dtype)
    mc = engine.simulate_seeds(w0, d, hyper, _spec(cfg, steps, True), key, cfg.get("train.seeds"), check=False)
    gd = engine.simulate(w0, d, hyper, _spec(cfg, steps, False), check=False)
    return np.asarray(mc.coeffs, np.float64), np.asarray(mc.params), np.asarray(gd.coeffs, np.float64)


def _record(metrics, summary, name, steps, mc, gd, pred, idx):
    """Monte Carlo bands, GD line and (when given) exact moments of one model, at directions ``idx``."""
    mm = engine.seed_moments(mc[:, :, idx], centre=None if pred is None else pred[0][:, idx], full=False)
    metrics.update({f"{name}_steps": np.asarray(steps), f"{name}_mc_mean": mm.mean, f"{name}_mc_var": mm.var,
                    f"{name}_gd": gd[:, idx]})
    if pred is None:
        return
    mean, var = pred[0][:, idx], pred[1][:, idx]
    metrics.update({f"{name}_cf_mean": mean, f"{name}_cf_var": var})
    zm = (mm.mean - mean) / np.maximum(mm.se_mean, 1e-300)
    zv = (mm.var - var) / np.where(mm.se_var > 0, mm.se_var, np.inf)
    summary[f"{name}_max_abs_z_mean"] = float(np.max(np.abs(zm[1:])))
    summary[f"{name}_max_abs_z_var"] = float(np.max(np.abs(zv[1:])))
    summary[f"{name}_mean_vs_gd"] = float(np.max(np.abs(mean - gd[:, idx])))


def run(cfg, ctx) -> Result:
    p = build_problem(cfg, ctx.seed)
    X, y = np.asarray(p.X, np.float64), np.asarray(p.y, np.float64)
    V = np.asarray(p.basis, np.float64)
    idx = [k - 1 for k in cfg.get("record.directions")]
    T, Ts = cfg.get("teacher.steps"), cfg.get("student.steps")
    lr, limit, what = _step_size(cfg, X)
    kt, ks, kk = jax.random.split(jax.random.key(ctx.seed + 7919), 3)
    t_mc, t_params, t_gd = _simulate(cfg, X, y, V, lr, T, kt)
    ctx.progress(1, 3)
    w_T = t_params[0] if cfg.get("teacher.fixed") == "sgd" else t_gd[-1] @ V.T
    r_mc, _, r_gd = _simulate(cfg, X, y, V, lr, Ts, ks)
    ctx.progress(2, 3)
    k_mc, _, k_gd = _simulate(cfg, X, X @ w_T, V, lr, Ts, kk)
    ctx.progress(3, 3)
    metrics = {"steps": _steps(Ts, cfg), "eigvals": np.asarray(p.eigvals),
               "directions": np.asarray(cfg.get("record.directions"))}
    summary = {"lr": lr, "limit": limit, "limit_kind": what, "gd_limit": 2.0 / float(p.eigvals[0]),
               "closed_form": _closed_form_applies(cfg), "seeds": cfg.get("train.seeds")}
    preds = _predictions(cfg, X, y, w_T, V, lr, summary, metrics, idx) if _closed_form_applies(cfg) else {}
    for name, steps, mc, gd in (("teacher", _steps(T, cfg), t_mc, t_gd), ("raw", _steps(Ts, cfg), r_mc, r_gd),
                                ("kd", _steps(Ts, cfg), k_mc, k_gd)):
        _record(metrics, summary, name, steps, mc, gd, preds.get(name), idx)
    summary["kd_over_raw_final_var"] = [float(v) for v in metrics["kd_mc_var"][-1] / metrics["raw_mc_var"][-1]]
    return Result(metrics, summary)


def _steps(T: int, cfg) -> np.ndarray:
    return engine.EngineSpec(steps=T, record_every=cfg.get("record.every")).recorded_steps


def _predictions(cfg, X, y, w_T, V, lr, summary, metrics, idx) -> dict:
    """Exact (mean, var) per model in the problem's basis, the raw-label floor and ρ(L)."""
    kw = dict(batch_size=cfg.get("train.batch_size"), sampling=cfg.get("train.sampling"),
              record_every=cfg.get("record.every"))
    tm = cf.sgd_moments(X, y, None, lr, cfg.get("teacher.steps"), **kw)
    ts = cf.sgd_teacher_student(X, y, w_T, None, lr, cfg.get("student.steps"), **kw)
    out = {}
    for name, m in (("teacher", tm), ("raw", ts.raw), ("kd", ts.kd)):
        R = V.T @ np.asarray(m.basis)  # closed-form basis -> the problem's basis
        cov = np.einsum("ij,tjk,lk->til", R, np.asarray(m.cov), R)
        out[name] = (np.asarray(m.mean) @ R.T, np.diagonal(cov, axis1=1, axis2=2))
    R = V.T @ ts.raw_floor.basis
    floor = np.diag(R @ ts.raw_floor.cov @ R.T)
    metrics["raw_floor_var"] = floor[idx]
    summary.update({"radius": ts.radius, "raw_floor_var": [float(v) for v in floor[idx]]})
    return out


def figure(metrics, summary, cfg) -> dict:
    from linkd.plotting import sgd as figures

    return {"sgd_denoising": figures.sgd_denoising(metrics, summary)}


register(Experiment(
    name="sgd_denoising",
    description="F12: SGD teacher, student on raw labels, student on teacher outputs: exact mean ± SD per direction "
                "vs Monte Carlo, beside GD (distillation as a gradient denoiser)",
    schema=SCHEMA, run=run, figures=figure, validate=validate,
    headline=("lr", "limit", "radius", "raw_max_abs_z_mean", "raw_max_abs_z_var", "kd_max_abs_z_var",
              "kd_over_raw_final_var"),
))
