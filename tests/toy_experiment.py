"""A toy experiment kind that exercises the CLI plumbing (not a science experiment).

GD on the diagonal quadratic ½ Σ_k λ_k (w_k − 1)²: c_k(t) = 1 − (1 − ηλ_k)^t, compared with the
closed form. Imported by the CLI tests in-process, and by subprocesses through
``LINKD_EXPERIMENT_MODULES=toy_experiment``.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from linkd.config import ConfigError, Field
from linkd.errors import LinkdError
from linkd.experiments import Experiment, Result, register


class ToyDivergence(LinkdError):
    """Stands in for linkd.engine.DivergenceError."""


SCHEMA = {
    "data": {
        "spectrum": Field(list[float], [1.0, 0.5, 0.1], "eigenvalues λ_k", low=0.0, low_open=True),
        "noise": Field(float, 0.0, "noise std on the recorded coefficients", low=0.0),
    },
    "train": {
        "lr": Field(float, 0.5, "step size η", low=0.0, low_open=True),
        "steps": Field(int, 20, "number of GD steps", low=1),
        "method": Field(str, "gd", "update rule", choices=("gd", "gf")),
        "diverge": Field(bool, False, "raise a divergence error (tests)"),
    },
    "record": {"every": Field(int, 1, "record every k steps", low=1)},
    "output": {"label": Field(str | None, None, "optional legend label")},
}


def _trajectory(spectrum, lr, steps, every, seed, noise):
    lam = jnp.asarray(spectrum)
    t = jnp.arange(0, steps + 1, every)
    c = 1.0 - (1.0 - lr * lam[None, :]) ** t.astype(lam.dtype)[:, None]
    key = jax.random.key(seed)
    return t, lam, c + noise * jax.random.normal(key, c.shape, dtype=c.dtype)


def run(config, ctx):
    tr = config.train
    if tr.diverge:
        raise ToyDivergence(f"train.lr = {tr.lr}: the loss diverged at step 3; lower train.lr")
    t, lam, c = _trajectory(config.data.spectrum, tr.lr, tr.steps, config.record.every, ctx.seed,
                            config.data.noise)
    ctx.progress(tr.steps, tr.steps, "GD steps")
    pred = 1.0 - (1.0 - tr.lr * np.asarray(lam)[None, :]) ** np.asarray(t)[:, None]
    err = np.abs(np.asarray(c) - pred)
    summary = {"max_abs_error": err.max(), "final": np.asarray(c)[-1], "nan_example": float("nan"),
               "dtype": str(c.dtype)}
    return Result({"steps": np.asarray(t), "eigvals": np.asarray(lam), "coeffs": np.asarray(c)}, summary)


def run_sweep(config, points, ctx):
    """All points under one vmap over (seed, lr)."""
    seeds = jnp.asarray([p.get("run.seed", config.run.seed) for p in points])
    lrs = jnp.asarray([float(p.get("train.lr", config.train.lr)) for p in points])
    tr = config.train
    f = jax.vmap(lambda s, lr: _trajectory(config.data.spectrum, lr, tr.steps, config.record.every, s,
                                           config.data.noise)[2])
    cs = np.asarray(f(seeds, lrs))
    out = []
    for p, c in zip(points, cs):
        cfg = config.with_overrides(p)
        r = run(cfg, ctx)
        out.append(Result({**r.metrics, "coeffs": c}, {**r.summary, "vectorized": True}))
    return out


def figures(metrics, summary, config):
    from linkd.plotting import MARKERS, new_figure

    fig, ax = new_figure("single")
    for k in range(metrics["coeffs"].shape[1]):
        ax.plot(metrics["steps"], metrics["coeffs"][:, k], marker=MARKERS[k % len(MARKERS)],
                label=config.output.label or f"$k={k + 1}$")
    ax.set_xlabel("step $t$")
    ax.set_ylabel("$c_k(t)$")
    ax.legend()
    return {"toy_coeffs": fig}


def validate(config):
    lam_max = max(config.data.spectrum)
    if config.train.method == "gd" and config.train.lr * lam_max >= 2.0:
        raise ConfigError("train.lr", config.train.lr, f"0 < lr < {2.0 / lam_max:.4g} (stability limit 2/λ_max)",
                          "beyond the stability limit")


TOY = register(Experiment("toy", "toy GD on a diagonal quadratic (tests only)", SCHEMA, run, figures,
                          vectorized=("run.seed", "train.lr"), run_sweep=run_sweep, validate=validate,
                          figure_stems=("toy_coeffs",)),
               replace=True)
