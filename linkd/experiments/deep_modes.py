r"""F10: deep-linear students mode by mode (docs/theory.md §7).

On an aligned design (:func:`linkd.data.aligned_design`: :math:`\hat\Sigma` and :math:`\hat\Sigma_{yx}`
share the frame) a depth-N linear net with balanced aligned init σ₀ is trained by matrix GD with the
linkd engine; its mode strengths :math:`\sigma_k = u_k^\top W_e v_k` (markers) are overlaid on the
gradient-flow closed form :math:`g_N(\sigma_k/c_k) = g_N(\sigma_0/c_k) + \lambda_k c_k^{2-2/N}t` at
t = η·step (lines), for N = 1..4. Further panels: GD against the modified flow (O(ε²)) and plain flow
(O(ε)); a linear teacher distilled into a deep student (engine) against the §7.3 closed form; time
dilation R(N) (§7.4b, markers: scalar-ODE half-times); the §7.4a gap examples against depth.
"""
from __future__ import annotations

import math

import jax
import numpy as np
import scipy.integrate
import scipy.optimize

from linkd import closed_form as cf
from linkd import data, engine, models, spectral, stability
from linkd.config import ConfigError, Field
from linkd.registry import Experiment, Result, register

__all__ = ["SCHEMA", "validate", "run", "figures"]

SCHEMA = {
    "data": {
        "n": Field(int, 48, "examples (n >= d)", low=1),
        "eigvals": Field(list[float], (3.0, 2.0, 1.0, 0.5, 0.3, 0.2), "eigenvalues lambda of the input covariance (d of them)",
                         low=0.0, low_open=True),
        "strengths": Field(list[float], (1.0, 0.7, 0.4), "mode strengths c_k (r <= min(d, n_out))", low=0.0, low_open=True),
        "n_out": Field(int, 4, "outputs m", low=1),
        "noise": Field(float, 0.3, "label noise orthogonal to the columns of X (leaves the cross-covariance unchanged)",
                       low=0.0),
        "whitened": Field(bool, False, "replace the eigenvalues by 1 (whitened inputs)"),
    },
    "model": {
        "depths": Field(list[int], (1, 2, 3, 4), "student depths N", low=1),
        "sigma0": Field(float, 1e-2, "balanced aligned init: every mode strength sigma0 (0 < sigma0 < min c)",
                        low=0.0, low_open=True),
        "width": Field(int, 5, "hidden width (>= r)", low=1),
    },
    "train": {
        "eps": Field(float, 0.02, "step size per mode, max_k eta lambda_k c_k^(2-2/N) (sets eta per depth)",
                     low=0.0, low_open=True),
        "t_end": Field(float, 25.0, "gradient-flow time eta * steps", low=0.0, low_open=True),
        "records": Field(int, 400, "about this many recorded steps per run", low=2),
    },
    "modified": {
        "depth": Field(int, 3, "depth of the GD vs modified-flow panel (one mode, lambda = c = 1)", low=1),
        "eps": Field(list[float], (0.04, 0.02), "step sizes eps (each halving divides the modified-flow error by 4)",
                     low=0.0, low_open=True),
        "y0": Field(float, 1e-3, "init sigma0/c", low=0.0, low_open=True, high=1.0, high_open=True),
    },
    "distill": {
        "teacher_time": Field(float, 0.6, "linear teacher (zero init) trained to GF time T", low=0.0, low_open=True),
        "student_depth": Field(int, 3, "student depth N", low=1),
        "student_sigma0": Field(float, 1e-3, "student init", low=0.0, low_open=True),
        "t_end": Field(float, 200.0, "student GF time", low=0.0, low_open=True),
    },
    "dilation": {
        "depths": Field(list[int], (1, 2, 3, 4, 5, 6), "depths of the R(N) panel", low=1),
        "Q": Field(list[float], (0.2, 0.5, 0.8), "teacher progress Q = a/c", low=0.0, low_open=True, high=1.0),
        "sigma0": Field(float, 1e-4, "init sigma0/c", low=0.0, low_open=True),
    },
}


def validate(cfg) -> None:
    c = cfg["data"]["strengths"]
    if cfg["model"]["sigma0"] >= min(c):
        raise ConfigError("model.sigma0", cfg["model"]["sigma0"], f"0 < model.sigma0 < min(data.strengths) = {min(c)}")
    if cfg["model"]["width"] < len(c):
        raise ConfigError("model.width", cfg["model"]["width"], f"model.width >= r = {len(c)} (number of strengths)")
    for N in cfg["model"]["depths"]:
        if not cfg["train"]["eps"] < stability.deep_mode_bound(N):
            raise ConfigError("train.eps", cfg["train"]["eps"], f"0 < train.eps < 2/N = {stability.deep_mode_bound(N):.4g} for depth N = {N} "
                              "(stability bound, docs/theory.md §7.2)")
    if max(cfg["dilation"]["Q"]) * 0.5 <= cfg["dilation"]["sigma0"]:
        raise ConfigError("dilation.sigma0", cfg["dilation"]["sigma0"], "dilation.sigma0 < min(Q)/2")


def _design(cfg, seed):
    d = cfg["data"]
    return data.aligned_design(jax.random.key(seed), d["n"], np.asarray(d["eigvals"]), np.asarray(d["strengths"]),
                               d["n_out"], whitened=d["whitened"], noise=d["noise"])


def _train(D, params0, targets, lr, steps, records):
    every = max(1, steps // records)
    spec = engine.EngineSpec(family="mse", steps=int(steps), record_every=every)
    tr = engine.simulate(params0, engine.Data(D.X, targets, basis=D.V), engine.Hyper(lr=lr), spec)
    ms = spectral.mode_strengths(tr.coeffs, D.U)
    return np.asarray(tr.steps), np.asarray(ms.strengths), np.asarray(ms.off_mode), tr.params


def _depth_plan(cfg, lam, c, N):
    """(η, GD steps) of the depth-N run: η = eps / max_k λ_k c_k^(2−2/N), steps = ⌈t_end/η⌉."""
    tr = cfg["train"]
    lr = tr["eps"] / float(np.max(lam * c ** (2.0 - 2.0 / N)))
    return lr, math.ceil(tr["t_end"] / lr)


def _distill_plan(cfg, lam, c):
    """(η_T, T, teacher strengths a, η, GD steps) of the teacher → deep student run."""
    ds, tr = cfg["distill"], cfg["train"]
    lr_T = tr["eps"] / float(np.max(lam))
    T = math.ceil(ds["teacher_time"] / lr_T)
    a = cf.deep_teacher_strengths(lam, c, T, lr=lr_T)  # linear GD teacher: c(1 − (1 − ηλ)^T)
    lr = tr["eps"] / float(np.max(lam * a ** (2.0 - 2.0 / ds["student_depth"])))
    return lr_T, T, a, lr, math.ceil(ds["t_end"] / lr)


def _total_steps(cfg, lam, c) -> int:
    """GD steps of the whole run: every depth run, the linear teacher and the deep student."""
    _, T, _, _, steps = _distill_plan(cfg, lam, c)
    return sum(_depth_plan(cfg, lam, c, N)[1] for N in cfg["model"]["depths"]) + T + steps


def _depth_runs(cfg, D, lam, c, seed, ctx):
    m, tr = cfg["model"], cfg["train"]
    metrics, summary = {}, {}
    total, done = _total_steps(cfg, lam, c), 0
    ctx.progress(0, total, "GD steps")
    for i, N in enumerate(m["depths"]):
        lr, steps = _depth_plan(cfg, lam, c, N)
        p0 = models.init_deep_aligned(D.V, D.U, m["sigma0"], N, (m["width"],) * (N - 1), key=jax.random.key(seed + 1 + i))
        st, s, off, _ = _train(D, p0, D.Y, lr, steps, tr["records"])
        gf = cf.deep_gf_trajectory(lam, c, m["sigma0"], st * lr, depth=N)
        gd = cf.deep_gd_trajectory(lam, c, m["sigma0"], lr, steps, depth=N)[st]
        metrics.update({f"N{N}_steps": st, f"N{N}_time": st * lr, f"N{N}_sim": s, f"N{N}_gf": gf, f"N{N}_off_mode": off})
        summary[f"N{N}"] = {"lr": lr, "steps": steps, "sim_vs_gd_recursion": float(np.max(np.abs(s - gd))),
                            "sim_vs_gradient_flow": float(np.max(np.abs(s - gf))), "max_off_mode": float(off.max())}
        done += steps
        ctx.progress(done, total, "GD steps")
    return metrics, summary


def _modified(cfg):
    mo = cfg["modified"]
    N, y0 = mo["depth"], mo["y0"]
    metrics, errs_mod, errs_gf = {}, [], []
    for j, eps in enumerate(mo["eps"]):
        K = math.ceil((cf.deep_g(0.999, depth=N) - cf.deep_g(y0, depth=N)) / eps)
        gd = cf.deep_gd_trajectory([1.0], [1.0], y0, eps, K, depth=N)[:, 0]
        mod = cf.deep_modified_flow([1.0], [1.0], y0, eps, K, depth=N)[:, 0]
        gf = cf.deep_gf_trajectory([1.0], [1.0], y0, eps * np.arange(K + 1.0), depth=N)[:, 0]
        metrics.update({f"mod{j}_time": eps * np.arange(K + 1.0), f"mod{j}_err_modified": np.abs(gd - mod),
                        f"mod{j}_err_flow": np.abs(gd - gf)})
        errs_mod.append(float(np.max(np.abs(gd - mod))))
        errs_gf.append(float(np.max(np.abs(gd - gf))))
    metrics["mod_eps"] = np.asarray(mo["eps"])
    ratio = lambda e: [e[i] / e[i + 1] for i in range(len(e) - 1)]
    return metrics, {"depth": N, "y0": y0, "eps": list(mo["eps"]), "sup_error_modified": errs_mod,
                     "sup_error_flow": errs_gf, "halving_ratio_modified": ratio(errs_mod),
                     "halving_ratio_flow": ratio(errs_gf), "C2": [e / x ** 2 for e, x in zip(errs_mod, mo["eps"])]}


def _distill(cfg, D, lam, c, seed):
    ds, tr = cfg["distill"], cfg["train"]
    N = ds["student_depth"]
    lr_T, T, a, lr, steps = _distill_plan(cfg, lam, c)
    w0 = np.zeros((D.X.shape[1], D.Y.shape[1]))
    _, a_sim, _, w_T = _train(D, jax.numpy.asarray(w0, D.X.dtype), D.Y, lr_T, T, 2)
    p0 = models.init_deep_aligned(D.V, D.U, ds["student_sigma0"], N, (cfg["model"]["width"],) * (N - 1),
                                  key=jax.random.key(seed + 100))
    st, s, off, _ = _train(D, p0, D.X @ w_T, lr, steps, tr["records"])
    t = st * lr
    pred = cf.deep_distilled_trajectory(lam, a, ds["student_sigma0"], t, depth=N)
    ref = cf.deep_gf_trajectory(lam, c, ds["student_sigma0"], t, depth=N)
    gd = cf.deep_gd_trajectory(lam, a, ds["student_sigma0"], lr, steps, depth=N)[st]
    metrics = {"student_time": t, "student_sim": s, "student_gf": pred, "reference_gf": ref, "teacher_strengths": a,
               "teacher_strengths_sim": a_sim[-1]}
    return metrics, {"teacher_steps": T, "teacher_lr": lr_T, "student_depth": N, "student_lr": lr,
                     "Q": (a / c).tolist(), "teacher_vs_closed_form": float(np.max(np.abs(a_sim[-1] - a))),
                     "student_vs_gd_recursion": float(np.max(np.abs(s - gd))),
                     "student_vs_gradient_flow": float(np.max(np.abs(s - pred))), "max_off_mode": float(off.max())}


def _half_time(c, s0, N):
    """Scalar ODE σ̇ = Nσ^{2−2/N}(c − σ) (λ = 1) to σ = c/2: an independent route to R(N)."""
    t_end = 4.0 * float(cf.deep_escape_time([1.0], [c], s0, depth=N)[0]) + 10.0 / c
    f = lambda t, s: N * np.abs(s) ** (2.0 - 2.0 / N) * (c - s)
    sol = scipy.integrate.solve_ivp(f, (0.0, t_end), [s0], method="DOP853", rtol=1e-12, atol=1e-15, dense_output=True)
    return scipy.optimize.brentq(lambda t: sol.sol(t)[0] - 0.5 * c, 0.0, t_end, xtol=1e-13)


def _dilation(cfg):
    dl = cfg["dilation"]
    Ns, Qs, s0 = np.asarray(dl["depths"]), np.asarray(dl["Q"]), dl["sigma0"]
    R = np.array([[float(cf.deep_time_dilation(Q, 1.0, s0, depth=int(N))) for N in Ns] for Q in Qs])
    R_ode = np.array([[_half_time(Q, s0, int(N)) / _half_time(1.0, s0, int(N)) for N in Ns] for Q in Qs])
    return ({"dilation_depths": Ns, "dilation_Q": Qs, "dilation_R": R, "dilation_R_ode": R_ode},
            {"R": {f"Q={Q:g}": R[i].tolist() for i, Q in enumerate(Qs)},
             "R_closed_vs_ode_max_rel": float(np.max(np.abs(R - R_ode) / R_ode))})


def _gaps():
    """The §7.4a examples: mode-2 gap, σ₀ = 1e-3, teacher (depth N) to q₁ = 0.9, student to 0.9·Q₁."""
    out = {}
    for name, lam, c in (("ordered", (1.0, 0.5, 0.25), (1.0, 1.0, 1.0)), ("whitened", (1.0, 1.0, 1.0), (1.0, 0.5, 0.25))):
        lam, c, g = np.asarray(lam), np.asarray(c), []
        for N in (1, 2, 3, 4):
            T = (cf.deep_g(0.9, depth=N) - cf.deep_g(1e-3 / c[0], depth=N)) / (lam[0] * c[0] ** (2 - 2 / N))
            a = cf.deep_gf_trajectory(lam, c, 1e-3, np.float64(T), depth=N)
            t = (cf.deep_g(0.9, depth=N) - cf.deep_g(1e-3 / a[0], depth=N)) / (lam[0] * a[0] ** (2 - 2 / N))
            qS = cf.deep_distilled_trajectory(lam, a, 1e-3, np.asarray([t]), depth=N) / c[None, :]
            g.append(float(cf.deep_matched_progress_gap(lam, c, 1e-3, qS, depth=N).gap[0, 1]))
        out[name] = np.asarray(g)
    return {"gap_depths": np.arange(1, 5), "gap_ordered": out["ordered"], "gap_whitened": out["whitened"]}


def run(cfg, ctx) -> Result:
    D = _design(cfg, ctx.seed)
    r = len(cfg["data"]["strengths"])
    lam, c = np.asarray(D.eigvals)[:r], np.asarray(D.strengths)
    metrics = {"eigvals": np.asarray(D.eigvals), "strengths": c, "depths": np.asarray(cfg["model"]["depths"])}
    m1, s1 = _depth_runs(cfg, D, lam, c, ctx.seed, ctx)
    m2, s2 = _modified(cfg)
    m3, s3 = _distill(cfg, D, lam, c, ctx.seed)
    total = _total_steps(cfg, lam, c)
    ctx.progress(total, total, "GD steps")
    m4, s4 = _dilation(cfg)
    m5 = _gaps()
    metrics.update({**m1, **m2, **m3, **m4, **m5})
    metrics["steps"] = metrics[f"N{cfg['model']['depths'][-1]}_steps"]  # the deepest run's recorded steps
    exact_errs = [v["sim_vs_gd_recursion"] for v in s1.values()] + [s3["student_vs_gd_recursion"]]
    summary = {"sigma0": cfg["model"]["sigma0"], "depth_runs": s1, "modified_equation": s2, "distillation": s3,
               "dilation": s4, "gap_ordered": m5["gap_ordered"].tolist(), "gap_whitened": m5["gap_whitened"].tolist(),
               "max_abs_error": max(exact_errs),
               "max_rel_error": max(exact_errs) / float(np.max(c)),
               "max_off_mode": max([v["max_off_mode"] for v in s1.values()] + [s3["max_off_mode"]]),
               "dtype": str(np.asarray(D.X).dtype)}
    return Result(metrics, summary)


def figures(metrics, summary, cfg) -> dict:
    from linkd.plotting import deep_modes as figs

    return {"deep_modes": figs.deep_modes(metrics, summary)}


register(Experiment(
    name="deep_modes",
    description="F10: deep-linear mode strengths sigma_k(t)/c_k for N = 1-4 (engine vs closed form), GD vs modified "
                "flow, teacher -> deep student, time dilation R(N), gap vs depth",
    schema=SCHEMA, run=run, figures=figures, validate=validate,
    headline=("max_abs_error", "max_off_mode", "modified_equation.halving_ratio_modified"),
))
