r"""F3: confidence deviations with the paper's protocol, and their closed form (Nagarajan et al.;
docs/theory.md §2.1, §9.3).

Teacher: a linear model trained by full-batch GD from zero on the squared loss to labels
:math:`\pm m` (``data.margin``; labels :math:`\mathrm{sign}(x\cdot w_*)`, each flipped with probability
``data.flip``), stopped after ``teacher.steps`` steps; its outputs are logits (m = 4: a confident
teacher, :math:`p_T \approx 0.98`). Students (GD from zero, ``student.steps`` steps — as long as the
teacher by default): an MSE student on the teacher's train logits, and soft-CE students on
:math:`\sigma(z_T/\tau)` (τ²-scaled) for each τ in ``student.taus``. Per example, the paper's protocol:
teacher's top class :math:`\hat y_T`, :math:`X = \varphi(p_T(\hat y_T|x))`, :math:`Y = \varphi(p_S(\hat y_T|x))`,
:math:`\varphi(p) = \ln\frac{p}{1-p}` (binary: X = |z_T|, Y = sign(z_T) z_S), OLS slope of Y on X, and
equal-count bin means (deciles by default) — train and test sets separately
(:func:`linkd.metrics.confidence_scatter`).

Closed forms drawn with the measurement (:mod:`linkd.closed_form.confidence`):

* train, MSE student: per-point logits from the SVD of X, :math:`z_S = U(g\circ F\circ a)` (exact);
  the label-class slope :math:`(S(gF^2) - S(F)S(gF))/(S(F^2) - S(F)^2)` (= the top-class slope when
  the teacher fits every training label);
* test, every student: the Gaussian limit :math:`Y \approx \beta X`,
  :math:`\beta = w_S^\top\Sigma w_T/w_T^\top\Sigma w_T` (intercept 0) with its standard error.

``data.seeds`` independent problems run under one ``vmap`` (:func:`linkd.engine.sweep`); the
scatter shows the first seed, the summary every seed's slopes.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from linkd import closed_form, data, engine, metrics, spectral, stability
from linkd.config import Field
from linkd.errors import ConfigError
from linkd.experiments._mse_common import population_spectrum
from linkd.registry import Experiment, Result, register

__all__ = ["SCHEMA", "validate", "run", "figure"]

_FRACTION = Field(float, 0.9, "η as a fraction of 1/L (L = λ_max(Σ̂) for MSE, λ_max/4 for soft-CE); < 2 is stable",
                  low=0.0, high=2.0, low_open=True, high_open=True)

SCHEMA = {
    "data": {
        "n": Field(int, 50, "number of training points", low=2),
        "d": Field(int, 200, "input dimension", low=1),
        "n_test": Field(int, 20000, "number of test points", low=2),
        "spectrum": Field(str, "power_law", "population spectrum kind", choices=("power_law", "exponential")),
        "exponent": Field(float, 1.0, "power-law exponent a (λ_k ∝ k^-a) or exponential rate", low=0.0),
        "teacher_profile": Field(float, 0.0, "ground truth coefficients c_k ∝ k^-profile"),
        "flip": Field(float, 0.2, "label-flip probability of the teacher's training labels", low=0.0, high=0.5,
                      high_open=True),
        "margin": Field(float, 4.0, "the teacher regresses on labels ±margin (its logit scale)", low=0.0,
                        low_open=True),
        "seeds": Field(int, 5, "independent problems (vmapped); the scatter shows the first", low=1),
    },
    "teacher": {
        "steps": Field(int, 30, "teacher GD steps on the noisy labels (early stopping)", low=1),
        "lr_fraction": _FRACTION,
    },
    "student": {
        "steps": Field(int, 30, "student GD steps (the paper's protocol: as long as the teacher)", low=1),
        "taus": Field(list[float], (1.0, 4.0), "temperatures τ of the soft-CE students (KD term scaled by τ²)",
                      low=0.0, low_open=True),
        "lr_fraction": _FRACTION,
    },
    "record": {
        "every": Field(int, 10, "record coefficient trajectories every k steps", low=1),
        "bins": Field(int, 10, "equal-count bins of the teacher confidence (10 = deciles)", low=1),
    },
}


def validate(cfg) -> None:
    if cfg.get("record.bins") > cfg.get("data.n"):
        raise ConfigError("record.bins", cfg.get("record.bins"), f"<= data.n = {cfg.get('data.n')}")


def _student_names(taus) -> list[str]:
    """``["mse", "tau1", "tau4", ...]``: the students' names in metrics.npz and summary.json."""
    return ["mse"] + [f"tau{float(t):g}" for t in taus]


def _problem(cfg, seed: int):
    """Designs, ±1 labels and Σ̂ eigenbases for ``data.seeds`` problems (stacked on axis 0), and
    the population covariance of each (for β)."""
    D = cfg["data"]
    lam = population_spectrum(D)
    out: dict[str, list[jax.Array]] = {k: [] for k in ("X", "X_test", "y", "eigvals", "basis", "cov")}
    for key in jax.random.split(jax.random.key(seed), D["seeds"]):
        k_design, k_teacher, k_flip = jax.random.split(key, 3)
        design = data.make_design(k_design, D["n"], D["d"], lam, n_test=D["n_test"], basis="random")
        assert design.basis is not None  # basis="random" always returns one
        w_star = data.linear_teacher(k_teacher, lam, basis=design.basis, profile=D["teacher_profile"])
        sp = spectral.eigh_desc(design.X)
        out["X"].append(design.X)
        out["X_test"].append(design.X_test)
        out["y"].append(2.0 * data.binary_hard_labels(design.X, w_star, flip=D["flip"], key=k_flip) - 1.0)
        out["eigvals"].append(sp.eigvals)
        out["basis"].append(sp.basis)
        out["cov"].append((design.basis * lam[None, :]) @ design.basis.T)
    return {k: jnp.stack(v) for k, v in out.items()}


def _train(P, targets, family: str, lr: float, steps: int, every: int, tau: float = 1.0):
    S, n, d = P["X"].shape
    return engine.sweep(
        jnp.zeros((S, d), P["X"].dtype), engine.Data(X=P["X"], targets=targets, basis=P["basis"]),
        engine.Hyper(lr=lr, tau=tau), engine.EngineSpec(family=family, steps=steps, record_every=every,
                                                             tau2_scale=True),
        batched=("params", "data"))


def _lr(P, family: str, fraction: float) -> float:
    """``fraction``/L with the largest λ_max(Σ̂) over seeds (one stable step for every member)."""
    lam_max = float(jnp.max(P["eigvals"][:, 0]))
    return fraction / stability.smoothness(family, lam_max, 1.0, True)


def _scatter(m, summary, name, split, zT, zS, bins):
    """The protocol on one split for every seed: seed 0's points and bin means, every seed's slope."""
    scat = [metrics.confidence_scatter(zT[s], zS[s], bins=bins, logits=True) for s in range(zT.shape[0])]
    slopes = np.array([float(c.slope) for c in scat])
    pre = f"{name}_{split}"
    m[f"{pre}_x"], m[f"{pre}_y"] = np.asarray(scat[0].x), np.asarray(scat[0].y)
    m[f"{pre}_bin_x"], m[f"{pre}_bin_y"] = np.asarray(scat[0].bin_x), np.asarray(scat[0].bin_y)
    m[f"{pre}_slopes"] = slopes
    m[f"{pre}_intercepts"] = np.array([float(c.intercept) for c in scat])
    dev = np.array([np.asarray(c.bin_y) - np.asarray(c.bin_x) for c in scat])  # bin deviations Y - X
    m[f"{pre}_bin_dev"] = dev
    summary[f"{pre}_slope"] = float(slopes[0])
    summary[f"{pre}_intercept"] = float(m[f"{pre}_intercepts"][0])
    summary[f"{pre}_slope_mean"] = float(slopes.mean())
    summary[f"{pre}_slope_std"] = float(slopes.std(ddof=1)) if slopes.size > 1 else 0.0
    summary[f"{pre}_seeds_with_slope_gt_1"] = int(np.sum(slopes > 1.0))
    summary[f"{pre}_bin_dev_lowest_highest"] = [float(dev[:, 0].mean()), float(dev[:, -1].mean())]
    x0 = np.asarray(scat[0].x)
    summary[f"{pre}_teacher_spread_10_90"] = float(np.quantile(x0, 0.9) - np.quantile(x0, 0.1))


def _predict_mse_train(m, summary, P, lr_T, lr_S, T, t, margin, bins):
    """Closed-form MSE-student logits on the training points (every seed) and their exact slopes."""
    S = P["X"].shape[0]
    label_slopes, top_slopes, errs = [], [], []
    for s in range(S):
        X, y = np.asarray(P["X"][s]), np.asarray(P["y"][s])
        c = closed_form.confidence_logits(X, margin * y, lr_T, T, t, lr_student=lr_S)
        cu = closed_form.confidence_logits(X, y, lr_T, T, t, lr_student=lr_S)  # labels ±1 in the slope formula
        label_slopes.append(float(closed_form.ols_confidence_slope(cu.a, cu.F, cu.g, X.shape[0]).slope))
        pc = metrics.confidence_scatter(jnp.asarray(c.train_T), jnp.asarray(c.train_S), bins=bins, logits=True)
        top_slopes.append(float(pc.slope))
        errs.append(float(np.max(np.abs(c.train_S - m["_zS_mse"][s]))))
        if s == 0:
            m["mse_train_pred_y"] = np.asarray(pc.y)
            m["mse_train_pred_bin_x"], m["mse_train_pred_bin_y"] = np.asarray(pc.bin_x), np.asarray(pc.bin_y)
    m["mse_train_pred_label_slopes"] = np.array(label_slopes)
    m["mse_train_pred_slopes"] = np.array(top_slopes)
    summary["mse_train_pred_slope"] = top_slopes[0]
    summary["mse_train_pred_label_slope_mean"] = float(np.mean(label_slopes))
    summary["mse_train_closed_form"] = {"max_abs_error": max(errs),
                                        "max_rel_error": max(errs) / float(np.max(np.abs(m["_zS_mse"])))}


def _predict_test(m, summary, name, P, wT, wS):
    """Gaussian test slope β and its SE for every seed (population covariance of each seed)."""
    g = [closed_form.gaussian_test_slope(np.asarray(wT[s]), np.asarray(wS[s]), np.asarray(P["cov"][s]),
                                         P["X_test"].shape[1]) for s in range(wT.shape[0])]
    m[f"{name}_test_beta"] = np.array([float(v.beta) for v in g])
    m[f"{name}_test_beta_se"] = np.array([float(v.se) for v in g])
    z = (m[f"{name}_test_slopes"] - m[f"{name}_test_beta"]) / m[f"{name}_test_beta_se"]
    summary[f"{name}_test_beta"] = float(m[f"{name}_test_beta"][0])
    summary[f"{name}_test_beta_mean"] = float(m[f"{name}_test_beta"].mean())
    summary[f"{name}_test_slope_minus_beta_max_se"] = float(np.max(np.abs(z)))


def run(cfg, ctx) -> Result:
    P = _problem(cfg, ctx.seed)
    T, t, k = cfg["teacher"]["steps"], cfg["student"]["steps"], cfg["record"]["every"]
    margin, bins, taus = cfg["data"]["margin"], cfg["record"]["bins"], cfg["student"]["taus"]
    names = _student_names(taus)
    lr_T = _lr(P, "mse", cfg["teacher"]["lr_fraction"])
    lr_S = {"mse": _lr(P, "mse", cfg["student"]["lr_fraction"])}
    total = T + t * len(names)
    ctx.progress(0, total, "GD steps")
    teacher = _train(P, margin * P["y"], "mse", lr_T, T, k)
    wT = teacher.params
    zT, zT_test = jnp.einsum("snd,sd->sn", P["X"], wT), jnp.einsum("snd,sd->sn", P["X_test"], wT)
    m = {"eigvals": np.asarray(P["eigvals"][0]), "teacher_steps": np.asarray(teacher.steps),
         "teacher_coeffs": np.asarray(teacher.coeffs[0])}
    summary = {"seeds": int(P["X"].shape[0]), "students": names, "taus": list(taus), "margin": margin, "bins": bins,
               "lr_teacher": lr_T, "dtype": str(np.asarray(P["X"]).dtype), "flip": cfg["data"]["flip"],
               "teacher_train_accuracy_mean": float(jnp.mean((P["y"] * zT) > 0))}
    for i, name in enumerate(names):
        fam, tau = ("mse", 1.0) if name == "mse" else ("binary", float(taus[i - 1]))
        lr = lr_S["mse"] if fam == "mse" else _lr(P, "binary", cfg["student"]["lr_fraction"])
        st = _train(P, zT, fam, lr, t, k, tau)
        ctx.progress(T + t * (i + 1), total)
        wS = st.params
        m["steps"] = np.asarray(st.steps)
        m[f"{name}_coeffs"] = np.asarray(st.coeffs[0])
        summary[f"lr_{name}"] = lr
        if name == "mse":
            m["_zS_mse"] = np.asarray(jnp.einsum("snd,sd->sn", P["X"], wS))
        _scatter(m, summary, name, "train", zT, jnp.einsum("snd,sd->sn", P["X"], wS), bins)
        _scatter(m, summary, name, "test", zT_test, jnp.einsum("snd,sd->sn", P["X_test"], wS), bins)
        _predict_test(m, summary, name, P, wT, wS)
    _predict_mse_train(m, summary, P, lr_T, lr_S["mse"], T, t, margin, bins)
    del m["_zS_mse"]
    return Result(m, summary)


def figure(metrics_, summary, cfg) -> dict:
    from linkd.plotting import fidelity as figures

    return {"confidence": figures.confidence_exaggeration(metrics_, summary)}


register(Experiment(
    name="confidence",
    description="F3: teacher vs student confidence (paper protocol) on train and test, MSE and soft-CE τ students, "
                "with the closed-form prediction",
    schema=SCHEMA, run=run, figures=figure, validate=validate,
    headline=("mse_train_slope", "mse_test_slope", "mse_test_beta"),
))
