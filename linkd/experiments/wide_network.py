r"""F13: wide two-layer networks against their linear prediction (docs/theory.md §11).

Networks :math:`f(x) = m^{-1/2}\sum_j a_j\phi(w_j^\top x/\sqrt d)` are trained by the engine
(full-batch GD on the squared loss, :math:`\eta` = ``lr_fraction``/:math:`\lambda_\max(K/n)` of each
init) at every width of ``widths.widths``; the linear prediction on the empirical NTK K of the init
(:func:`linkd.ntk.linearized`) gives the train and test outputs. Recorded: the deviation
:math:`D(m) = \max_t\mathrm{rms}(f_t - f_t^\text{lin})/\mathrm{rms}(y)` per width and seed, its
fitted log-log slope (against the :math:`m^{-1/2}` of Lee et al. 2019), the same for the mean-field
scaling (the negative control), and a distillation: a teacher network trained
``distill.teacher_steps`` steps, a student from the same init trained on its train outputs; the
student's progress :math:`q_k(t)` along K's eigenvectors against the §2.2 filters at the widths of
``distill.widths``.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from linkd import engine, networks, ntk
from linkd.config import Field
from linkd.dtypes import default_float
from linkd.errors import ConfigError
from linkd.registry import Experiment, Result, register

__all__ = ["SCHEMA", "validate", "run", "figures"]

SCHEMA = {
    "data": {
        "n": Field(int, 24, "number of training points x ~ N(0, I_d)", low=2),
        "d": Field(int, 4, "input dimension d", low=1),
        "n_test": Field(int, 16, "number of test points", low=1),
        "activation": Field(str, "relu", "activation phi", choices=networks.ACTIVATIONS),
    },
    "train": {
        "lr_fraction": Field(float, 0.9, "eta * lambda_max(K/n) of each init (the linear model is stable below 2)",
                             low=0.0, high=2.0, low_open=True, high_open=True),
        "steps": Field(int, 300, "GD steps", low=1),
    },
    "widths": {
        "widths": Field(list[int], tuple(2 ** k for k in range(6, 14)), "widths m of the deviation sweep", low=1),
        "seeds": Field(int, 2, "network inits per width", low=1),
        "mean_field": Field(bool, True, "also run the mean-field scaling m^-1 (negative control)"),
    },
    "distill": {
        "widths": Field(list[int], (64, 4096), "widths of the distillation panels", low=1),
        "teacher_steps": Field(int, 5, "GD steps of the teacher network on the labels", low=1),
        "student_steps": Field(int, 40, "GD steps of the student network on the teacher's train outputs", low=1),
        "directions": Field(int, 5, "eigen-directions of K shown (those the labels excite most)", low=1),
    },
}


def validate(cfg) -> None:
    """A slope needs two widths; the distillation shows at most n directions."""
    if len(set(cfg.get("widths.widths"))) < 2:
        raise ConfigError("widths.widths", cfg.get("widths.widths"), "at least two distinct widths (a slope is fitted)")
    if cfg.get("distill.directions") > cfg.get("data.n"):
        raise ConfigError("distill.directions", cfg.get("distill.directions"), f"at most data.n = {cfg.get('data.n')}")


def _data(cfg, seed: int):
    D = cfg["data"]
    kx, kt = jax.random.split(jax.random.key(seed))
    X = jax.random.normal(kx, (D["n"], D["d"]), default_float())
    Xt = jax.random.normal(kt, (D["n_test"], D["d"]), default_float())
    y = jnp.tanh(X @ jnp.arange(1.0, D["d"] + 1.0) / 3.0)
    return X, Xt, y


def _init(cfg, X, width: int, seed: int, scaling: str = "ntk"):
    """A network of this width (init key from the seed and the width), its NTK spectrum and its step."""
    p = networks.init_two_layer(jax.random.key(1000 * seed + width), X.shape[1], width,
                                activation=cfg["data"]["activation"], scaling=scaling)
    sp = ntk.kernel_spectrum(ntk.gram_two_layer(p, X))
    return p, sp, float(cfg["train"]["lr_fraction"]) / float(sp.eigvals[0])


def _deviation(cfg, width: int, seed: int, scaling: str) -> tuple[float, float]:
    """(train, test) deviation of one network from its linear prediction."""
    X, Xt, y = _data(cfg, seed)
    p, sp, lr = _init(cfg, X, width, seed + 1, scaling)
    spec = engine.EngineSpec(family="mse", steps=cfg["train"]["steps"])
    tr = engine.simulate(p, engine.Data(X, y, X_test=Xt), engine.Hyper(lr=lr), spec, check=False)
    lin = ntk.linearized(sp, networks.apply(p, X), y, lr, cfg["train"]["steps"], K_test=ntk.gram_two_layer(p, Xt, X),
                         f0_test=networks.apply(p, Xt))
    rms = lambda a: np.sqrt(np.mean(np.asarray(a) ** 2, axis=-1))  # noqa: E731
    s = float(rms(y))
    return (float(np.max(rms(tr.metrics["outputs"] - lin.train))) / s,
            float(np.max(rms(tr.metrics["test_outputs"] - lin.test))) / s)


def _distill(cfg, width: int, seed: int) -> dict:
    """Teacher network on y, student from the same init on its train outputs; progress along K's eigenvectors."""
    X, _, y = _data(cfg, seed)
    p, sp, lr = _init(cfg, X, width, seed + 1)
    C = cfg["distill"]
    teacher = engine.simulate(p, engine.Data(X, y), engine.Hyper(lr=lr), engine.EngineSpec(steps=C["teacher_steps"]),
                              check=False)
    student = engine.simulate(p, engine.Data(X, teacher.metrics["outputs"][-1]), engine.Hyper(lr=lr),
                              engine.EngineSpec(steps=C["student_steps"]), check=False)
    f0 = networks.apply(p, X)
    excite = np.abs(np.asarray(sp.basis.T @ (y - f0)))
    top = np.sort(np.argsort(-excite)[: C["directions"]])
    q = np.asarray(ntk.eigen_progress(sp, student.metrics["outputs"], f0, y))[:, top]
    F = np.asarray(ntk.distillation_progress(sp, lr, C["teacher_steps"], np.arange(C["student_steps"] + 1)))[:, top]
    return {"progress": q, "filter": F, "eta_lambda": lr * np.asarray(sp.eigvals)[top], "directions": top,
            "eigvals": np.asarray(sp.eigvals)}


def _slope(ws, dev) -> float:
    return float(np.polyfit(np.log(np.asarray(ws, dtype=np.float64)), np.log(dev), 1)[0])


def run(cfg, ctx) -> Result:
    ws = [int(m) for m in cfg["widths"]["widths"]]
    S = cfg["widths"]["seeds"]
    scalings = ("ntk", "mean_field") if cfg["widths"]["mean_field"] else ("ntk",)
    total = len(ws) * S * len(scalings) + len(cfg["distill"]["widths"])
    done, dev = 0, {}
    for sc in scalings:
        rows = []
        for m in ws:
            rows.append([_deviation(cfg, m, ctx.seed + s, sc) for s in range(S)])
            done += S
            ctx.progress(done, total, "networks")
        dev[sc] = np.asarray(rows)  # (widths, seeds, 2)
    dist = []
    for m in cfg["distill"]["widths"]:
        dist.append(_distill(cfg, int(m), ctx.seed))
        done += 1
        ctx.progress(done, total, "networks")
    metrics = {"steps": np.arange(cfg["distill"]["student_steps"] + 1), "eigvals": dist[-1]["eigvals"],
               "widths": np.asarray(ws), "distill_widths": np.asarray(cfg["distill"]["widths"]),
               "deviation_ntk": dev["ntk"],
               "progress": np.stack([r["progress"] for r in dist]), "filter": np.stack([r["filter"] for r in dist]),
               "eta_lambda": np.stack([r["eta_lambda"] for r in dist])}
    if "mean_field" in dev:
        metrics["deviation_mean_field"] = dev["mean_field"]
    return Result(metrics, _summary(ws, dev, dist, cfg))


def _summary(ws, dev, dist, cfg) -> dict:
    out: dict = {"widths": ws, "activation": cfg["data"]["activation"], "lee_slope": -0.5}
    for sc, d in dev.items():
        mean = d.mean(axis=1)
        out[f"slope_train_{sc}"] = _slope(ws, mean[:, 0])
        out[f"slope_test_{sc}"] = _slope(ws, mean[:, 1])
        out[f"deviation_train_{sc}"] = [float(v) for v in mean[:, 0]]
        out[f"deviation_test_{sc}"] = [float(v) for v in mean[:, 1]]
    out["distill"] = [{"width": int(m), "max_abs_error": float(np.max(np.abs(r["progress"] - r["filter"]))),
                       "max_rel_error": float(np.max(np.abs(r["progress"] - r["filter"])) / np.max(np.abs(r["filter"])))}
                      for m, r in zip(cfg["distill"]["widths"], dist)]
    out["closed_form_vs_simulation"] = {"max_abs_error": out["distill"][-1]["max_abs_error"],
                                        "max_rel_error": out["distill"][-1]["max_rel_error"],
                                        "width": out["distill"][-1]["width"]}
    return out


def figures(metrics, summary, cfg) -> dict:
    from linkd.plotting import networks as plots

    return {"wide_network": plots.wide_network_figure(metrics, summary)}


register(Experiment(
    name="wide_network",
    description="F13: wide two-layer networks against their linear prediction: deviation vs width (log-log slope vs "
                "m^-1/2) and a distilled student's eigen-convergence vs the §2.2 filters at two widths",
    schema=SCHEMA, run=run, figures=figures, validate=validate,
    headline=("slope_train_ntk", "slope_test_ntk", "closed_form_vs_simulation"),
))
