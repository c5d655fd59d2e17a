r"""F6: convergence of soft-CE students to the Phuong–Lampert limit, n < d (docs/theory.md §1.2–1.3).

Isotropic Gaussian X (n, d), teacher :math:`w_*` of norm ``data.teacher_norm``, targets = teacher logits.
* Linear student from a random :math:`w_0`: distance :math:`\|w(t) - \hat w\|`, :math:`\hat w = Pw_* + (I-P)w_0`
  (:func:`~linkd.closed_form.pl_limit`).
* Deep-linear students (N in ``model.depths``), one vmapped engine sweep over ``model.init_scales`` (same
  random directions, scaled): distance to :math:`\hat w = Pw_* + (I-P)W_1(0)^\top h^\top`
  (:func:`~linkd.closed_form.pl_deep_limit`, h = :math:`W_N\cdots W_2` at the last step) for the main
  ``model.init_scale``; the frozen block :math:`\|W_1(t)(I-P) - W_1(0)(I-P)\|_F` at checkpoints; and the
  orthogonal part :math:`\|(I-P)w(t)\|` of the end-to-end weight for every init scale.
Training runs in chunks of 10, 100 and 1000 steps (three compilations per model), so the first layer
is read at log-spaced checkpoints; plain GD has no optimizer state, so chunking changes nothing.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from linkd import closed_form as cf
from linkd import data, engine, stability
from linkd.config import Field
from linkd.errors import ConfigError
from linkd.models import DeepLinear, init_deep_linear, init_linear
from linkd.registry import Experiment, Result, register
from linkd.spectral import projector

SCHEMA = {
    "data": {
        "n": Field(int, 10, "training points (n < d)", low=1),
        "d": Field(int, 40, "input dimension", low=2),
        "teacher_norm": Field(float, 2.0, "‖w*‖", low=0.0, low_open=True),
    },
    "model": {
        "depths": Field(list[int], (2, 3), "deep-linear depths N", low=2),
        "width": Field(int, 20, "hidden width", low=1),
        "init_scale": Field(float, 0.1, "main init scale (std × sqrt(fan_in)); must be in init_scales", low=0.0, low_open=True),
        "init_scales": Field(list[float], (0.01, 0.03, 0.1, 0.3), "init scales of the orthogonal-part panel", low=0.0, low_open=True),
    },
    "train": {
        "steps": Field(int, 20000, "GD steps (>= 100)", low=100),
        "lr_fraction": Field(float, 0.5, "η·N·L with L = λ_max(Σ̂)/4·max(1, ‖w*‖^(2−2/N)) (linear: N = 1)",
                             low=0.0, high=2.0, low_open=True, high_open=True),
    },
}


def validate(cfg) -> None:
    if cfg.get("data.n") >= cfg.get("data.d"):
        raise ConfigError("data.n", cfg.get("data.n"), f"n < data.d = {cfg.get('data.d')} (the limit depends on the init only when n < d)")
    if cfg.get("model.init_scale") not in cfg.get("model.init_scales"):
        raise ConfigError("model.init_scale", cfg.get("model.init_scale"),
                          "one of model.init_scales = " + ",".join(map(str, cfg.get("model.init_scales"))))


def _chunks(steps: int) -> list[int]:
    out, t = [], 0
    for size, upto in ((10, 100), (100, 1000), (1000, steps)):
        while t + size <= min(upto, steps):
            out.append(size)
            t += size
    if t < steps:  # remainder (steps not a multiple of the chunk sizes)
        out += [1] * (steps - t) if steps - t < 10 else [10] * ((steps - t) // 10) + [1] * ((steps - t) % 10)
    return out


def _train(params0, X, targets, lr, steps, batched: bool, basis):
    """Chunked GD; returns recorded steps, end-to-end w(t) (…, R, d), checkpoints and params there."""
    t, rec_steps, coeffs, ckpt, ckpt_params = 0, [np.zeros(1, np.int64)], None, [0], [params0]
    params = params0
    dat = engine.Data(X=X, targets=targets, basis=basis)
    for size in _chunks(steps):
        spec = engine.EngineSpec(family="binary", steps=size, record_every=1)
        if batched:
            tr = engine.sweep(params, dat, engine.Hyper(lr=lr), spec, batched=("params",))
            c = np.asarray(tr.coeffs)  # (S, size+1, d)
            coeffs = c if coeffs is None else np.concatenate([coeffs, c[:, 1:]], axis=1)
        else:
            tr = engine.simulate(params, dat, engine.Hyper(lr=lr), spec)
            c = np.asarray(tr.coeffs)
            coeffs = c if coeffs is None else np.concatenate([coeffs, c[1:]], axis=0)
        rec_steps.append(t + np.arange(1, size + 1))
        t += size
        params = tr.params
        ckpt.append(t)
        ckpt_params.append(params)
    return np.concatenate(rec_steps), coeffs, np.asarray(ckpt), ckpt_params


def run(cfg, ctx) -> Result:
    D, M, T = cfg["data"], cfg["model"], cfg["train"]
    n, d = D["n"], D["d"]
    k_x, k_w, k_lin, k_deep = jax.random.split(jax.random.key(ctx.seed), 4)
    X = data.isotropic(k_x, n, d)
    w_star = jax.random.normal(k_w, (d,), X.dtype)
    w_star = D["teacher_norm"] * w_star / jnp.linalg.norm(w_star)
    targets = X @ w_star
    P = projector(X)
    eye = jnp.eye(d, dtype=X.dtype)
    lam_max = float(jnp.linalg.eigvalsh(X.T @ X / n)[-1])
    L1 = stability.smoothness("binary", lam_max)  # λ_max/4
    metrics: dict = {"eigvals": np.asarray(jnp.linalg.eigvalsh(X.T @ X / n)[::-1]), "depths": np.asarray(M["depths"], np.int64),
                     "init_scales": np.asarray(M["init_scales"], dtype=np.float64)}
    summary: dict = {"n": n, "d": d, "rank": int(jnp.linalg.matrix_rank(X))}
    # linear
    w0 = init_linear(d, scale=M["init_scale"], key=k_lin)
    lr_lin = T["lr_fraction"] / L1
    steps, W, ckpt, _ = _train(w0, X, targets, lr_lin, T["steps"], False, eye)
    w_hat = np.asarray(cf.pl_limit(X, w_star, w0))
    metrics["steps"], metrics["checkpoints"] = steps, ckpt
    metrics["linear_dist"] = np.linalg.norm(W - w_hat[None, :], axis=1)
    orth_lin = np.linalg.norm(W - W @ np.asarray(P).T, axis=1)
    summary["linear"] = {"lr": lr_lin, "final_dist": float(metrics["linear_dist"][-1]),
                         "orth_part_max_change": float(np.max(np.abs(orth_lin - orth_lin[0]))),
                         "orth_part_norm": float(orth_lin[0])}
    main = list(M["init_scales"]).index(M["init_scale"])
    scales = jnp.asarray(M["init_scales"], X.dtype)
    widths = (M["width"],)
    ctx.progress(T["steps"], T["steps"] * (1 + len(M["depths"])), "GD steps")  # linear, then one per depth
    for i, N in enumerate(M["depths"]):
        base = init_deep_linear(d, widths * (N - 1), scale=1.0, key=jax.random.fold_in(k_deep, N))
        params0 = DeepLinear(tuple(scales.reshape((-1, 1, 1)) * Wl[None] for Wl in base.layers))
        lr = T["lr_fraction"] / (N * L1 * max(1.0, D["teacher_norm"] ** (2.0 - 2.0 / N)))
        _, Wd, _, cps = _train(params0, X, targets, lr, T["steps"], True, eye)  # Wd (S, R, d)
        frozen0 = np.asarray(jax.vmap(lambda W1: cf.pl_deep_invariant(W1, X))(params0.layers[0]))
        inv = np.stack([np.linalg.norm(np.asarray(jax.vmap(lambda W1: cf.pl_deep_invariant(W1, X))(p.layers[0])) - frozen0,
                                       axis=(1, 2)) for p in cps])  # (C, S)
        last = cps[-1]
        heads = [jax.tree_util.tree_map(lambda a: a[i], last) for i in range(len(M["init_scales"]))]
        w_hats = np.stack([np.asarray(cf.pl_deep_limit(X, w_star, params0.layers[0][i],
                                                       cf.pl_deep_head(h))) for i, h in enumerate(heads)])
        dist = np.linalg.norm(Wd - w_hats[:, None, :], axis=2)  # (S, R)
        orth = np.linalg.norm(Wd - np.einsum("srd,ed->sre", Wd, np.asarray(P)), axis=2)  # (S, R)
        row = np.linalg.norm(np.einsum("srd,ed->sre", Wd, np.asarray(P)) - np.asarray(P @ w_star)[None, None, :], axis=2)
        metrics[f"deep{N}_dist"] = dist[main]
        metrics[f"deep{N}_dist_all"] = dist
        metrics[f"deep{N}_orth"] = orth
        metrics[f"deep{N}_W1_invariant_err"] = inv[:, main]
        summary[f"deep{N}"] = {
            "lr": lr, "W1_invariant_max_err": float(inv.max()),
            "final_dist_main": float(dist[main, -1]),
            "final_rowspace_err": [float(v) for v in row[:, -1]],
            "final_orth_norm": [float(v) for v in orth[:, -1]],
            "init_orth_norm": [float(v) for v in orth[:, 0]],
            "orth_shrinks_with_init_scale": bool(np.all(np.diff(orth[:, -1]) > 0)),
        }
        ctx.progress(T["steps"] * (i + 2))
    summary["W1_invariant_max_err"] = max(summary[f"deep{N}"]["W1_invariant_max_err"] for N in M["depths"]) if M["depths"] else None
    return Result(metrics, summary)


def figure(metrics, summary, cfg) -> dict:
    from linkd.plotting import theory

    return {"pl_convergence": theory.pl_convergence(metrics, summary)}


register(Experiment(
    name="pl_convergence",
    description="F6: distance to the Phuong–Lampert limit vs steps (linear, deep linear), frozen orthogonal part",
    schema=SCHEMA, run=run, figures=figure, validate=validate,
))

__all__ = ["SCHEMA", "run", "validate", "figure"]
