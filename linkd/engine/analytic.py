r"""The closed-form path: squared loss + plain GD, full batch, no switch — no simulation (docs/theory.md §2.2).

With the effective target :math:`\bar y = \alpha y + (1-\alpha) z_T` (the α-mixture of two
squared losses is one squared loss plus a constant), :math:`c^*_k = (V^\top X^\top\bar
y/n)_k/\lambda_k` and

.. math::  c_k(t) = (1-\eta\lambda_k)^t\,c_k(0) + \bigl(1 - (1-\eta\lambda_k)^t\bigr)\,c_k^*

at the recorded steps; coordinates with λ = 0 keep their init. The residual factor is computed
here (:func:`gd_residual`, as :math:`\exp(t\log|1-\eta\lambda|)` with ``log1p``), independently of
:mod:`linkd.closed_form`, which the engine is checked against. Train metrics come from the
per-target quadratic forms in eigen-coordinates (no pass over X per record), test metrics from
:math:`X_\text{test}Vc(t)`; O(nd + dr + Rr) in all.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from linkd import losses
from linkd.engine.checks import hyper_scalar, linear_params, path_checks
from linkd.engine.divergence import divergence_limit, finish, update_bad_step
from linkd.engine.memory import check_memory, estimate_bytes
from linkd.engine.objective import hard_loss, kd_loss, logits, residual_errors, xt_dot
from linkd.engine.optimizers import cast_hyper
from linkd.engine.recording import CoeffRecord, coeff_map, read_coeffs
from linkd.engine.types import Array, Data, EngineSpec, Hyper, Targets, Trajectory
from linkd.errors import ConfigError
from linkd.spectral import Spectrum

__all__ = ["gd_residual", "simulate_closed_form"]


def gd_residual(lam: Array, lr, t) -> Array:
    r""":math:`(1-\eta\lambda_k)^t` for integer-valued t (any shape; it leads the output, shape
    ``t.shape + (r,)``) as :math:`\pm\exp(t\log|1-\eta\lambda_k|)`, the logarithm through
    ``log1p(-ηλ)`` when ηλ < 1 (no rounding of 1 − ηλ) and ``log(ηλ - 1)`` otherwise; exactly 1 at t = 0."""
    lam = jnp.asarray(lam)
    x = lr * lam
    below = x < 1.0
    logmag = jnp.where(below, jnp.log1p(-jnp.where(below, x, 0.0)), jnp.log(jnp.where(below, 1.0, x - 1.0)))
    t = jnp.asarray(t)
    tt = (t.astype(lam.dtype) if jnp.issubdtype(t.dtype, jnp.integer) else t)[..., None]
    lm = logmag.reshape((1,) * t.ndim + logmag.shape)
    mag = jnp.where(tt == 0, 1.0, jnp.exp(tt * jnp.where(tt == 0, 0.0, lm)))
    odd = jnp.mod(tt, 2.0) == 1.0
    return jnp.where(~below.reshape(lm.shape) & odd, -mag, mag)


class _CFArgs(NamedTuple):
    """Closed-form metric inputs: eigenvalues (r,), per-target optima c*_t, c*_y and minima
    (½ mean squared residual at the optimum), the test design in state coordinates."""

    lam: Array
    cs_t: Array | None
    min_t: Array | None
    cs_y: Array | None
    min_y: Array | None
    Z_test: Array | None
    zt_off: Array | None
    pred: Targets
    M: Array | None
    offset: Array | None


def _test_metrics(zt, p: Targets, hyper: Hyper, spec: EngineSpec) -> dict:
    rec = {}
    if p.labels_test is not None:
        rec["test_loss"] = jnp.mean(hard_loss("mse", zt, p.labels_test))
        rec["test_error"] = jnp.mean(residual_errors("mse", zt, p.labels_test, False))
    if p.targets_test is not None:
        rec["test_kd_loss"] = jnp.mean(kd_loss("mse", zt, p.targets_test, hyper.tau, spec.tau2_scale))
        rec["test_fidelity_error"] = jnp.mean(residual_errors("mse", zt, p.targets_test, True))
    return rec


def _cf_metrics(C, a: _CFArgs, hyper: Hyper, steps, spec: EngineSpec, rec: CoeffRecord):
    r"""Metrics at the recorded states without touching X: for a squared loss on target t,
    :math:`\tfrac{1}{2n}\|Zc - t\|^2 = \tfrac12\sum_k\lambda_k(c_k - c^*_{t,k})^2 + \min_t` (a sum
    of non-negative terms: no cancellation). O(R r) for the train metrics."""
    hyper = cast_hyper(hyper, C.dtype)
    lam = a.lam if C.ndim == 2 else a.lam[:, None]

    def q(c, cs, mn):
        e = c - cs
        return 0.5 * jnp.sum(lam * e * e) + mn

    def one(c, t):
        qt = None if a.cs_t is None else q(c, a.cs_t, a.min_t)
        qy = None if a.cs_y is None else q(c, a.cs_y, a.min_y)
        if qy is None or qt is None:
            rec_ = {"train_loss": qt if qy is None else qy}
        else:
            w = losses.hard_weight(t, hyper.alpha, spec.switch_step).astype(C.dtype)
            rec_ = {"train_loss": losses.mixture(qy, qt, w)}
        if qt is not None:
            rec_["train_fidelity_error"] = 2.0 * qt
        if qy is not None:
            rec_["train_error"] = 2.0 * qy
        if a.Z_test is not None:
            rec_.update(_test_metrics(logits(a.Z_test, c) + a.zt_off, a.pred, hyper, spec))
        return read_coeffs(c, rec, a.M, a.offset), rec_

    return jax.vmap(one)(C, steps)


_cf_metrics_jit = jax.jit(_cf_metrics, static_argnames=("spec", "rec"))


def _optimum(X, V, lam, target):
    """c* = (Vᵀ Xᵀ t / n) / λ and ½ mean |X V c* − t|² (the loss floor), O(nd + dr)."""
    n = X.shape[0]
    h = xt_dot(V, xt_dot(X, target)) / n
    cs = h / (lam if h.ndim == 1 else lam[:, None])
    res = logits(X, logits(V, cs)) - target
    return cs, 0.5 * jnp.mean(res * res if res.ndim == 1 else jnp.sum(res * res, axis=-1))


_optimum_jit = jax.jit(_optimum)


@jax.jit
def _coeff_path(lam, c_star, c0, lr, steps):
    """c(t) = ρ^t c(0) + (1 − ρ^t) c* at ``steps`` (R,): shape (R, r[, C]); exactly c(0) at t = 0."""
    dec = gd_residual(lam, lr, steps)
    if c_star.ndim == 2:
        dec = dec[..., None]
    return dec * c0[None] + (1.0 - dec) * c_star[None]


@functools.partial(jax.jit, static_argnames=("T",))
def _cf_first_bad(lam, lr, delta, lmin, limit, T: int):
    """First step t < T whose loss ½Σλ_k(1-ηλ_k)^{2t}δ_k² + L_min is non-finite or above limit (-1: none)."""
    lam_c = lam if delta.ndim == 1 else lam[:, None]

    def body(bad, t):
        dec = gd_residual(lam, lr, t)
        dec = dec if delta.ndim == 1 else dec[:, None]
        r = dec * delta
        loss = 0.5 * jnp.sum(lam_c * r * r) + lmin
        return update_bad_step(bad, t, loss, jnp.asarray(True), limit), None

    bad, _ = jax.lax.scan(body, jnp.asarray(-1), jnp.arange(T))
    return bad


def _targets_optimum(X, V, lam_r, data: Data, alpha):
    """Per-target optima and loss floors, and the α-mixed optimum c*."""
    cs_t = min_t = cs_y = min_y = None
    if data.targets is not None:
        cs_t, min_t = _optimum_jit(X, V, lam_r, data.targets)
    if data.labels is not None:
        cs_y, min_y = _optimum_jit(X, V, lam_r, data.labels.astype(X.dtype))
    c_star = cs_y if cs_t is None else (cs_t if cs_y is None else alpha * cs_y + (1.0 - alpha) * cs_t)
    assert c_star is not None  # Data validation: targets or labels are given
    return (cs_t, min_t, cs_y, min_y), c_star


def simulate_closed_form(
    w0,
    data: Data,
    hyper: Hyper,
    spec: EngineSpec,
    spectrum: Spectrum,
    *,
    record_top: int | None = None,
    check: bool = True,
    report: Callable[[str], Any] | None = None,
) -> Trajectory:
    r"""Squared loss + plain GD, full batch, no switch: the coefficients at the recorded steps from
    the closed form of the module docstring. ``bad_step`` is found from the loss in
    eigen-coordinates when some :math:`|1-\eta\lambda_k| > 1` (only then can the loss grow)."""
    w0 = linear_params(w0)
    if spec.family != "mse" or spec.optimizer != "gd":
        raise ConfigError("family/optimizer", f"{spec.family}/{spec.optimizer}", "mse/gd on the closed-form path")
    if spec.switch_step is not None:
        raise ConfigError("switch_step", spec.switch_step, "None on the closed-form path (use simulate_eigen or closed_form.switch_trajectory)")
    path_checks(w0, data, hyper, spec, record_top, "closed-form")
    hyper_scalar(hyper)
    check_memory(estimate_bytes("closed_form", w0, data, spec, spectrum=spectrum, record_top=record_top), report)
    X = data.X
    dtype = X.dtype
    lam, Vfull = jnp.asarray(spectrum.eigvals), jnp.asarray(spectrum.basis)
    r = int(np.sum(np.asarray(lam) > 0))
    V, lam_r = Vfull[:, :r], lam[:r]
    c0_all = xt_dot(Vfull, w0)
    c0 = c0_all[:r]
    w0_perp = w0 - logits(V, c0)
    (cs_t, min_t, cs_y, min_y), c_star = _targets_optimum(X, V, lam_r, data, jnp.asarray(hyper.alpha, dtype))
    lam_c = lam_r if c_star.ndim == 1 else lam_r[:, None]
    lr = jnp.asarray(hyper.lr, dtype)
    steps = jnp.asarray(spec.recorded_steps)
    C = _coeff_path(lam_r, c_star, c0, lr, steps)  # (R, r[, C])
    rec, M, offset = coeff_map(V, w0_perp, c0_all[r:], data, record_top, Vfull)
    Zt = None if data.X_test is None else logits(data.X_test, V)
    Zt_perp = None if data.X_test is None else logits(data.X_test, w0_perp)
    args = _CFArgs(lam_r, cs_t, min_t, cs_y, min_y, Zt, Zt_perp, Targets.of(data), M, offset)
    coeffs, metrics = _cf_metrics_jit(C, args, hyper, steps, spec, rec)
    params = w0_perp + logits(V, C[-1])
    bad = _cf_bad_step(lam_r, lam_c, lr, c0, c_star, C[-1], metrics["train_loss"][0], spec)
    return finish(coeffs, metrics, params, bad, hyper, spec, check, "closed_form")


def _cf_bad_step(lam_r, lam_c, lr, c0, c_star, c_last, loss0, spec: EngineSpec) -> Array:
    r"""First bad step of a closed-form run: searched only when some :math:`|1-\eta\lambda_k| > 1`
    (only then can the loss grow) or the final coefficients are not finite; -1 otherwise."""
    finite = bool(jnp.all(jnp.isfinite(c_last)))
    if float(jnp.max(jnp.abs(1.0 - lr * lam_r), initial=0.0)) <= 1.0 and finite:
        return jnp.asarray(-1)
    limit = divergence_limit(loss0, spec)
    lmin = loss0 - 0.5 * jnp.sum(lam_c * (c0 - c_star) ** 2)
    bad = _cf_first_bad(lam_r, lr, c0 - c_star, lmin, limit, int(spec.steps))
    return jnp.asarray(spec.steps) if int(bad) < 0 and not finite else bad
