r"""The Gram path (squared loss): steps on :math:`\hat\Sigma w - X^\top\bar y_t/n` (docs/theory.md §2.2).

With :math:`\hat\Sigma = X^\top X/n` precomputed (d × d) and :math:`\bar y_t = \alpha_t y +
(1-\alpha_t) z_T`, a step costs :math:`O(d^2)` instead of :math:`O(nd)`: the cheaper choice when
n > d. X is read only at recorded steps. The loss used for divergence detection is the exact
quadratic form :math:`\tfrac12 w^\top\hat\Sigma w - \bar b_t^\top w + k_t` of the same loss.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from linkd import losses
from linkd.engine.checks import hyper_scalar, linear_params, path_checks
from linkd.engine.divergence import divergence_limit, finish, update_bad_step
from linkd.engine.memory import check_memory, estimate_bytes
from linkd.engine.objective import logits, step_metrics, train_loss, xt_dot
from linkd.engine.optimizers import cast_hyper, make_optimizer
from linkd.engine.recording import scan_recorded
from linkd.engine.types import Array, Data, EngineSpec, Hyper, Targets, Trajectory
from linkd.errors import ConfigError

__all__ = ["simulate_gram"]


class _GramArgs(NamedTuple):
    X: Array
    X_test: Array | None
    S: Array  # Σ̂ = XᵀX/n (d, d)
    b_t: Array  # Xᵀ z_T / n
    k_t: Array  # mean ½|z_T|²
    b_y: Array | None
    k_y: Array | None
    pred: Targets
    basis: Array | None


def _gram_traj(w0, a: _GramArgs, hyper: Hyper, spec: EngineSpec, top: int):
    r"""The squared loss in its Gram form :math:`\tfrac12 w^\top\hat\Sigma w - \bar b_t^\top w + k_t`
    (the same loss as :func:`linkd.engine.objective.train_loss`, tested equal) and its gradient."""
    with jax.default_matmul_precision("highest"):
        dtype = a.X.dtype
        hyper = cast_hyper(hyper, dtype)
        opt = make_optimizer(spec, hyper)

        def lin(t):
            if a.b_y is None:
                return a.b_t, a.k_t
            w = losses.hard_weight(t, hyper.alpha, spec.switch_step).astype(dtype)
            return w * a.b_y + (1.0 - w) * a.b_t, w * a.k_y + (1.0 - w) * a.k_t

        z0 = logits(a.X, w0)
        limit = divergence_limit(train_loss(z0, a.pred.targets, a.pred.labels, hyper, jnp.asarray(0), spec), spec)

        def step(carry, t):
            w, s, bad = carry
            Sw = logits(a.S, w)
            b, k = lin(t)
            loss = 0.5 * jnp.sum(w * Sw) - jnp.sum(b * w) + k
            upd, s = opt.update(Sw - b, s, w)
            w = optax.apply_updates(w, upd)
            return (w, s, update_bad_step(bad, t, loss, jnp.all(jnp.isfinite(w)), limit)), None

        def record(carry, t):
            w = carry[0]
            zt = None if a.X_test is None else logits(a.X_test, w)
            c = xt_dot(a.basis, w) if a.basis is not None else (w[:top] if top else None)
            return c, step_metrics(logits(a.X, w), zt, a.pred, hyper, t, spec)

        carry = (w0, opt.init(w0), jnp.asarray(-1))
        carry, coeffs, metrics = scan_recorded(carry, step, record, spec)
        return coeffs, metrics, carry[0], carry[2]


_gram_jit = jax.jit(_gram_traj, static_argnames=("spec", "top"))


@jax.jit
def _gram_matrix(X):
    return xt_dot(X, X) / X.shape[0]


def _half_sq_mean(y):
    return jnp.mean(0.5 * (y * y if y.ndim == 1 else jnp.sum(y * y, axis=-1)))


def simulate_gram(
    w0,
    data: Data,
    hyper: Hyper,
    spec: EngineSpec,
    *,
    record_top: int | None = None,
    check: bool = True,
    report: Callable[[str], Any] | None = None,
) -> Trajectory:
    r"""Squared loss: steps on :math:`\hat\Sigma w - X^\top\bar y_t/n` with :math:`\bar y_t =
    \alpha_t y + (1-\alpha_t) z_T` (d × d per step; X only at recorded steps). Any optax optimizer
    of :class:`~linkd.engine.EngineSpec` works (no rotation is involved). The per-step loss used
    for divergence detection is :math:`\tfrac12 w^\top\hat\Sigma w - \bar b_t^\top w + k_t`; the
    recorded metrics are computed from :math:`z = Xw` exactly as in the plain engine."""
    w0 = linear_params(w0)
    if spec.family != "mse":
        raise ConfigError("family", spec.family, "'mse' on the Gram path (the gradient is linear in w only for the squared loss)")
    path_checks(w0, data, hyper, spec, record_top, "gram")
    hyper_scalar(hyper)
    check_memory(estimate_bytes("gram", w0, data, spec, record_top=record_top), report)
    X = data.X
    n = X.shape[0]
    S = _gram_matrix(X)
    lin = lambda y: (None, None) if y is None else (xt_dot(X, y.astype(X.dtype)) / n, _half_sq_mean(y.astype(X.dtype)))  # noqa: E731
    (b_t, k_t), (b_y, k_y) = lin(data.targets), lin(data.labels)
    if b_t is None:  # hard labels only (alpha = 1)
        (b_t, k_t), (b_y, k_y) = (b_y, k_y), (None, None)
    assert b_t is not None and k_t is not None  # Data validation: targets or labels are given
    args = _GramArgs(X, data.X_test, S, b_t, k_t, b_y, k_y, Targets.of(data), data.basis)
    coeffs, metrics, w, bad = _gram_jit(w0, args, hyper, spec, int(record_top or 0))
    return finish(coeffs, metrics, w, bad, hyper, spec, check, "gram")
