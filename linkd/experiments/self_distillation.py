r"""F7: self-distillation rounds in a kernel space (Mobahi, Farajtabar & Bartlett 2020; docs/theory.md §3).

K points on a grid in [-1, 1], RBF kernel (lengthscale ℓ), :math:`G = g(x_j, x_k)/K`, labels
:math:`y = \sin(\omega x) + \sigma\,\xi`. ε-mode rounds (:func:`~linkd.closed_form.self_distill_rounds`):
round t fits :math:`y_{t-1}` under :math:`\tfrac1K\|f(x) - y_{t-1}\|^2 \le \varepsilon`,
:math:`\varepsilon = \texttt{eps\_fraction}\cdot\mathrm{mean}(y^2)`; round 1 is the ordinary fit to the labels,
rounds ≥ 2 are self-distillation. Recorded: per-direction factors :math:`B_t[k,k]`, the multipliers
:math:`c_t`, the collapse round :math:`T_c` with :func:`~linkd.closed_form.collapse_round_bounds`, and the
test error :math:`\mathrm{mean}((f_t(x) - \sin\omega x)^2)` against rounds for the noisy labels and for the
clean labels :math:`\sin\omega x` (each with its own ε). Everything is closed form (float64 numpy).
"""
from __future__ import annotations

import jax
import numpy as np

from linkd import closed_form as cf
from linkd.config import Field
from linkd.registry import Experiment, Result, register

SCHEMA = {
    "data": {
        "K": Field(int, 30, "training points (grid on [-1, 1])", low=2),
        "lengthscale": Field(float, 0.2, "RBF lengthscale ℓ", low=0.0, low_open=True),
        "frequency": Field(float, 3.0, "ω in y = sin(ωx) + noise"),
        "noise": Field(float, 0.3, "label noise std σ", low=0.0),
        "n_test": Field(int, 400, "test points (grid on [-1, 1])", low=2),
    },
    "rounds": {
        "rounds": Field(int, 14, "rounds to run (rounds after collapse give f ≡ 0)", low=1),
        "eps_fraction": Field(float, 0.02, "ε = eps_fraction · mean(y²)", low=0.0, high=1.0, low_open=True, high_open=True),
        "directions": Field(list[int], (1, 3, 6, 10, 15), "1-based eigendirections k whose B_t[k,k] is plotted", low=1),
    },
}


def validate(cfg) -> None:
    from linkd.errors import ConfigError

    K = cfg.get("data.K")
    bad = [k for k in cfg.get("rounds.directions") if k > K]
    if bad:
        raise ConfigError("rounds.directions", bad[0], f"1-based indices in [1, data.K = {K}]")


def _one(G, g_test, y, f_true, eps_fraction, rounds):
    eps = eps_fraction * float(np.mean(y * y))
    res = cf.self_distill_rounds(G, y, eps=eps, rounds=rounds)
    f = np.asarray(cf.self_distill_predict(g_test, res))  # (R, m), rounds 1..R
    err = np.mean((f - f_true[None, :]) ** 2, axis=1)
    b = cf.collapse_round_bounds(y, G.shape[0], eps)
    return res, f, err, eps, b


def run(cfg, ctx) -> Result:
    D, R = cfg["data"], cfg["rounds"]
    K, ell, w = D["K"], D["lengthscale"], D["frequency"]
    x = np.linspace(-1.0, 1.0, K)
    xt = np.linspace(-1.0, 1.0, D["n_test"])
    noise = np.asarray(jax.random.normal(jax.random.key(ctx.seed), (K,)), dtype=np.float64)
    y_clean = np.sin(w * x)
    y_noisy = y_clean + D["noise"] * noise
    f_true = np.sin(w * xt)
    G = np.asarray(cf.rbf_gram(x, x, ell), dtype=np.float64) / K
    g_test = np.asarray(cf.rbf_gram(xt, x, ell), dtype=np.float64) / K
    rounds = np.arange(1, R["rounds"] + 1)
    # `steps` (run-directory contract): the recorded axis, here the self-distillation round t
    metrics = {"rounds": rounds, "steps": rounds, "x": x, "x_test": xt, "y_noisy": y_noisy, "y_clean": y_clean,
               "f_true_test": f_true, "directions": np.asarray(R["directions"], np.int64)}
    summary = {"K": K, "lengthscale": ell}
    for name, y in (("noisy", y_noisy), ("clean", y_clean)):
        res, f, err, eps, b = _one(G, g_test, y, f_true, R["eps_fraction"], R["rounds"])
        T = int(res.collapsed_at)
        metrics[f"{name}_B"] = np.asarray(res.B)
        metrics[f"{name}_c"] = np.asarray(res.c)
        metrics[f"{name}_test_mse"] = err
        metrics[f"{name}_f_test"] = f
        if name == "noisy":
            metrics["eigvals"] = np.asarray(res.eigvals)
        valid = err if T < 0 else err[: T + 1]  # up to and including the first collapsed round (f ≡ 0)
        c_fin = np.asarray(res.c)[np.isfinite(np.asarray(res.c))]
        best = int(np.argmin(valid)) + 1
        summary[name] = {
            "eps": eps, "collapse_round": T, "collapse_bounds": [b.lower, b.upper],
            "collapse_within_bounds": bool(T < 0 or b.lower <= T <= b.upper),
            "c": [float(v) for v in c_fin], "c_strictly_increasing": bool(np.all(np.diff(c_fin) > 0)),
            "test_mse": [float(v) for v in err],
            "best_round": best, "best_distillation_round": best - 1,
            "best_test_mse": float(valid.min()), "first_round_test_mse": float(err[0]),
            "monotone_increasing_until_collapse": bool(np.all(np.diff(valid) > 0)),
        }
    summary["u_shape_noisy"] = bool(summary["noisy"]["best_distillation_round"] >= 1
                                    and summary["noisy"]["best_round"] < len(err))
    ctx.progress(2 * R["rounds"], 2 * R["rounds"], "rounds")  # noisy and clean labels
    return Result(metrics, summary)


def figure(metrics, summary, cfg) -> dict:
    from linkd.plotting import theory

    return {"self_distillation": theory.self_distillation(metrics, summary)}


register(Experiment(
    name="self_distillation",
    description="F7: Mobahi self-distillation rounds on an RBF kernel: factors B_t, c_t, collapse, test error vs rounds",
    schema=SCHEMA, run=run, figures=figure, validate=validate,
))

__all__ = ["SCHEMA", "run", "validate", "figure"]
