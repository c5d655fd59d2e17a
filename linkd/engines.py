r"""Faster exact paths for linear students: eigen-coordinates, the Gram matrix, the closed form.

Each path returns a :class:`linkd.dynamics.Trajectory` with the layout of
:func:`linkd.dynamics.simulate` (same recorded steps, coefficient shape, metric names, final
``params`` in the original coordinates, ``bad_step``; ``path`` names the path) and the same
numbers up to rounding. Every path uses the one engine core of :mod:`linkd.dynamics` (the loss
:func:`~linkd.dynamics.train_loss`, :func:`~linkd.dynamics.metrics`, the divergence update
:func:`~linkd.dynamics.update_bad_step`, the memory estimate :func:`~linkd.dynamics.estimate_bytes`)
(tested to 1e-12 in float64, ``tests/test_engines.py``). They do less work, not the same work
compiled differently:

* :func:`simulate_eigen` — GD / momentum / Nesterov in the coordinates of an orthonormal basis
  :math:`V` of :math:`\hat\Sigma` (``spectrum.basis``): :math:`Z = XV`, state :math:`c = V^\top w`,
  gradient :math:`Z^\top\ell'(Zc)/n`. These optimizers are rotation-equivariant, so the run is
  the same run in other coordinates. The state *is* the eigen-coefficient vector, so recording
  the top-m coefficients every step is a slice (no d × d read per step), and the predictions
  :math:`z = Zc` needed by the metrics are carried from the previous step's update. Only the
  directions with :math:`\lambda_k > 0` move (the gradient lies in the row space of X); the rest
  stay at their initial value, so with n < d the step costs :math:`O(nr)`, r = rank X, instead of
  :math:`O(nd)`. A *thin* basis (d × r, :func:`thin_spectrum`, from the SVD of X) is enough and
  never forms a d × d matrix. When r > d/2 (e.g. n > d) and no ``design`` is passed, Z would be as
  large as X: the step then uses X and V instead (:math:`z = X(Vc)`, gradient
  :math:`V^\top(X^\top g)`, 2nd + 2dr flops) and holds no copy of X. Adam is not
  rotation-equivariant: refused.
* :func:`simulate_gram` — squared loss only: the gradient is :math:`\hat\Sigma w - X^\top
  \bar y_t/n` with :math:`\hat\Sigma = X^\top X/n` precomputed (d × d): :math:`O(d^2)` per step
  instead of :math:`O(nd)`, the cheaper choice when n > d. X is read only at recorded steps.
* :func:`simulate_closed_form` — squared loss + plain GD, no minibatches, no switch: the
  coefficients come from :func:`linkd.closed_form.gd_mse_trajectory` at the recorded steps only
  (no simulation), metrics from :math:`z = Zc(t)` at those steps.
* :func:`simulate_auto` — picks the fastest exact path (:func:`select_path`) and says which one
  ran in ``trajectory.path``.

The Gram and closed-form paths evaluate the squared loss through its exact quadratic form in w
(resp. in eigen-coordinates) instead of a pass over X; these are identities of the same loss,
tested equal to the plain engine. Learning rates are not refused up front here (only
:func:`linkd.dynamics.simulate` does): a diverging run raises DivergenceError.

Recording (``data.basis``): any (d, m) basis works on every path. When it equals the first m
columns of ``spectrum.basis`` (the usual top-m eigen-directions), the eigen and closed-form paths
record by slicing the state; otherwise through a precomputed (m, r) map. ``record_top=m`` with
``data.basis=None`` records the first m *coordinates* of w — the axis-aligned basis
:math:`e_1..e_m` (``data.design(..., basis="axis")``) — without materialising any d × d or d × m
matrix: with :func:`thin_spectrum` a d = 100 000, n = 50 run needs only X, the d × n basis and the
recorded arrays. Every path computes its footprint before it starts (:func:`estimate_bytes`),
passes the one-line description to ``report`` (e.g. ``print``) and refuses with
:class:`~linkd.errors.MemoryBudgetError` what would not fit.

Nothing here is CPU-specific: on a GPU machine (``JAX_PLATFORMS=cuda``) the same code runs there.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from linkd import dynamics, losses
from linkd.closed_form.gd import gd_decay, gd_mse_trajectory
from linkd.errors import ConfigError
from linkd.spectral import Spectrum

Array = jnp.ndarray

PATHS = dynamics.PATHS
_EQUIVARIANT = ("gd", "momentum", "nesterov")

__all__ = [
    "PATHS",
    "Footprint",
    "thin_spectrum",
    "estimate_bytes",
    "select_path",
    "eigen_design",
    "simulate_eigen",
    "simulate_gram",
    "simulate_closed_form",
    "simulate_auto",
]


# --------------------------------------------------------------------------------------------
# helpers


def thin_spectrum(X: Array, *, rank_tol: float | None = None) -> Spectrum:
    r"""Eigenpairs of :math:`\hat\Sigma = X^\top X/n` with :math:`\lambda > 0` only, from the thin
    SVD of X: ``eigvals`` (r,) descending, ``basis`` (d, r), r = rank X. Costs
    :math:`O(\min(n,d)^2\max(n,d))` and never forms a d × d matrix. Same rank threshold and sign
    convention as :func:`linkd.spectral.eigh_desc` (largest-magnitude entry of each column > 0);
    for distinct eigenvalues its columns are the first r columns of ``eigh_desc(X).basis``."""
    from linkd.spectral import default_rank_tol

    X = jnp.asarray(X)
    n = X.shape[0]
    _, s, Vt = jnp.linalg.svd(X, full_matrices=False)
    lam = s * s / n
    tol = default_rank_tol(X) if rank_tol is None else rank_tol
    r = int(np.sum(np.asarray(lam) > tol * max(float(lam[0]), 0.0))) if lam.size else 0
    V = Vt[:r].T
    idx = jnp.argmax(jnp.abs(V), axis=0)
    signs = jnp.sign(V[idx, jnp.arange(r)])
    signs = jnp.where(signs == 0, 1.0, signs).astype(V.dtype)
    return Spectrum(lam[:r], V * signs[None, :])


Footprint = dynamics.Footprint
estimate_bytes = dynamics.estimate_bytes  # one memory estimate for every path (linkd.dynamics)


def _linear_params(w0, name="params") -> Array:
    if not isinstance(w0, (jax.Array, np.ndarray)):
        raise ConfigError(name, type(w0).__name__, "a linear weight array (d,) or (d, C); deep-linear models run on dynamics.simulate")
    return jnp.asarray(w0)


def _common_checks(w0, data: dynamics.Data, hyper: dynamics.Hyper, spec: dynamics.EngineSpec, record_top, what: str):
    dynamics.check_shapes(w0, data, spec.family)
    dynamics.check_targets_alpha(data, hyper, spec)
    if spec.batch_size is not None and spec.batch_size < data.X.shape[0]:
        raise ConfigError("batch_size", spec.batch_size, f"None (full batch) on the {what} path; minibatch SGD runs on dynamics.simulate")
    if record_top is not None:
        if data.basis is not None:
            raise ConfigError("record_top", record_top, "None when data.basis is given (record_top=m means the axis basis e_1..e_m)")
        if not (isinstance(record_top, (int, np.integer)) and 1 <= record_top <= data.X.shape[1]):
            raise ConfigError("record_top", record_top, f"an integer in [1, d = {data.X.shape[1]}]")


def _hyper_scalar(hyper: dynamics.Hyper):
    for name, h in zip(dynamics.Hyper._fields, hyper):
        if np.ndim(h) != 0:
            raise ConfigError(f"hyper.{name}", f"shape {np.shape(h)}", "a scalar (sweeps run on dynamics.sweep)")


# --------------------------------------------------------------------------------------------
# products


_dot0 = dynamics.xt_dot  # Aᵀ b contracting the leading axis, one dot at HIGHEST precision
_mv = dynamics.predict  # A b, one dot at HIGHEST precision


# --------------------------------------------------------------------------------------------
# coefficient recording


@dataclasses.dataclass(frozen=True)
class _Rec:
    """Static recording mode: ``none``; ``slice`` (the first m state coordinates, padded by the
    fixed coordinates ``fill`` when m > r); ``linear`` (M @ state + offset)."""

    mode: str = "none"
    m: int = 0


def _coeffs(c, rec: _Rec, M, offset):
    if rec.mode == "none":
        return None
    if rec.mode == "slice":
        r = c.shape[0]
        if rec.m <= r:
            return c[: rec.m]
        return jnp.concatenate([c, offset], axis=0)
    return _mv(M, c) + offset


def _coeff_map(V, w0_perp, c0_rest, data: dynamics.Data, record_top, spectrum_full_basis):
    """Choose how the state c (coordinates along the d × r basis V; w = w0_perp + V c) maps to the
    recorded coefficients. Returns (_Rec, M, offset) with host-side checks only."""
    r = V.shape[1]
    if data.basis is None and record_top is None:
        return _Rec("none"), None, None
    if data.basis is not None:
        B = jnp.asarray(data.basis)
        m = B.shape[1]
        if spectrum_full_basis is not None and m <= spectrum_full_basis.shape[1]:
            top = spectrum_full_basis[:, :m]
            if B.shape == top.shape and bool(jnp.all(B == top)):
                # the top-m eigen-directions: coefficients are state coordinates
                if m <= r:
                    return _Rec("slice", m), None, None
                return _Rec("slice", m), None, c0_rest[: m - r]
        M = _dot0(B, V)  # (m, r)
        return _Rec("linear", m), M, _dot0(B, w0_perp)
    m = int(record_top)
    return _Rec("linear", m), V[:m], w0_perp[:m]


# --------------------------------------------------------------------------------------------
# the compiled core: state-space GD with carried predictions


class _EigenArgs(NamedTuple):
    """The design in state coordinates and the predictions of the fixed part w0_perp of w
    (z = Z c + z_off; z_off ~ rounding on the train set, not on the test set). ``Z`` = XV_r
    (n × r) when materialised; otherwise ``Z`` is X and ``V`` the (d × r) basis: z = X(Vc) and
    the gradient Vᵀ(Xᵀg) — no n × r copy of X (used when r > d/2, :func:`linkd.dynamics.eigen_uses_design`)."""

    Z: Array
    V: Array | None
    Z_test: Array | None
    z_off: Array
    zt_off: Array | None
    pred: dynamics.Targets
    M: Array | None
    offset: Array | None


def _loss(z, tg: dynamics.Targets, hyper: dynamics.Hyper, t, spec: dynamics.EngineSpec):
    return dynamics.train_loss(z, tg.targets, tg.labels, hyper, t, spec)


def _eigen_traj(c0, a: _EigenArgs, hyper: dynamics.Hyper, spec: dynamics.EngineSpec, rec: _Rec):
    with jax.default_matmul_precision("highest"):
        hyper = dynamics.cast_hyper(hyper, a.Z.dtype)
        opt = dynamics.make_optimizer(spec, hyper)

        def fwd(c):
            return _mv(a.Z, c if a.V is None else _mv(a.V, c)) + a.z_off

        def grad(gz):
            g = _dot0(a.Z, gz)
            return g if a.V is None else _dot0(a.V, g)

        def zt_of(c):
            return None if a.Z_test is None else _mv(a.Z_test, c) + a.zt_off

        z0 = fwd(c0)
        limit = dynamics.divergence_limit(_loss(z0, a.pred, hyper, jnp.asarray(0), spec), spec)
        dloss = jax.value_and_grad(_loss)

        def step(carry, t):
            c, s, z, bad = carry
            loss, gz = dloss(z, a.pred, hyper, t, spec)
            upd, s = opt.update(grad(gz), s, c)
            c = optax.apply_updates(c, upd)
            z = fwd(c)
            return (c, s, z, dynamics.update_bad_step(bad, t, loss, jnp.all(jnp.isfinite(c)), limit)), None

        def record(carry, t):
            c, _, z, _ = carry
            return _coeffs(c, rec, a.M, a.offset), dynamics.metrics(z, zt_of(c), a.pred, hyper, t, spec)

        carry = (c0, opt.init(c0), z0, jnp.asarray(-1))
        carry, coeffs, metrics = dynamics.scan_recorded(carry, step, record, spec)
        return coeffs, metrics, carry[0], carry[3]


_eigen_jit = jax.jit(_eigen_traj, static_argnames=("spec", "rec"))


def _finish(coeffs, metrics, params, bad, hyper, spec, check, path) -> dynamics.Trajectory:
    if check:
        dynamics.raise_if_bad(bad, hyper, spec)
    return dynamics.Trajectory(spec.recorded_steps, coeffs, metrics, params, bad, path)


def eigen_design(X: Array, spectrum: Spectrum) -> Array:
    """:math:`Z = XV_r` (n, r): X in the coordinates of the directions with λ > 0."""
    r = int(np.sum(np.asarray(spectrum.eigvals) > 0))
    return _mv(jnp.asarray(X), jnp.asarray(spectrum.basis)[:, :r])


def simulate_eigen(
    w0,
    data: dynamics.Data,
    hyper: dynamics.Hyper,
    spec: dynamics.EngineSpec,
    spectrum: Spectrum,
    *,
    record_top: int | None = None,
    design: Array | None = None,
    check: bool = True,
    report: Callable[[str], Any] | None = None,
) -> dynamics.Trajectory:
    r"""Full-batch GD / momentum / Nesterov in the coordinates of ``spectrum.basis`` (see module doc).

    ``design``: :func:`eigen_design` ``(X, spectrum)`` computed once and reused by every run on the
    same data (it costs a pass of n·d·r flops, as much as r/4 steps).

    ``spectrum``: :func:`linkd.spectral.eigh_desc` (d × d) or :func:`thin_spectrum` (d × r); the
    columns with :math:`\lambda > 0` must span the row space of X (true for both). Coordinates
    with :math:`\lambda = 0` keep their initial value (their gradient is zero in exact arithmetic;
    :func:`linkd.dynamics.simulate` moves them by rounding noise only).
    ``data.basis``: any (d, m) recording basis; the top-m columns of ``spectrum.basis`` (compared
    exactly) are recorded by slicing the state. ``record_top=m`` (with ``data.basis=None``):
    record :math:`w_{1..m}` (the axis basis). Raises :class:`~linkd.errors.ConfigError` for Adam
    (not rotation-equivariant), minibatches or a deep model.
    """
    w0 = _linear_params(w0)
    if spec.optimizer not in _EQUIVARIANT:
        raise ConfigError("optimizer", spec.optimizer, f"one of {_EQUIVARIANT} on the eigen path (Adam is not rotation-equivariant; use dynamics.simulate)")
    _common_checks(w0, data, hyper, spec, record_top, "eigen")
    _hyper_scalar(hyper)
    n, d = data.X.shape
    r = int(np.sum(np.asarray(spectrum.eigvals) > 0))
    use_z = dynamics.eigen_uses_design(n, d, r, design is not None)
    dynamics.check_memory(estimate_bytes("eigen", w0, data, spec, spectrum=spectrum, record_top=record_top, design_given=use_z), report)
    Vfull = jnp.asarray(spectrum.basis)
    V = Vfull[:, :r]
    c0_all = _dot0(Vfull, w0)  # (d_basis[, C])
    c0 = c0_all[:r]
    w0_perp = w0 - _mv(V, c0)
    rec, M, offset = _coeff_map(V, w0_perp, c0_all[r:], data, record_top, Vfull)
    if design is not None and design.shape != (n, r):
        raise ConfigError("design", f"shape {tuple(design.shape)}", f"eigen_design(X, spectrum) of shape {(n, r)}")
    Z = (eigen_design(data.X, spectrum) if design is None else design) if use_z else data.X
    Zt = None if data.X_test is None else _mv(data.X_test, V)
    args = _EigenArgs(Z, None if use_z else V, Zt, _mv(data.X, w0_perp),
                      None if data.X_test is None else _mv(data.X_test, w0_perp), dynamics.Targets.of(data), M, offset)
    coeffs, metrics, c, bad = _eigen_jit(c0, args, hyper, spec, rec)
    params = w0_perp + _mv(V, c)
    return _finish(coeffs, metrics, params, bad, hyper, spec, check, "eigen")


# --------------------------------------------------------------------------------------------
# Gram-matrix path (squared loss)


class _GramArgs(NamedTuple):
    X: Array
    X_test: Array | None
    S: Array  # Σ̂ = XᵀX/n (d, d)
    b_t: Array  # Xᵀ z_T / n
    k_t: Array  # mean ½|z_T|²
    b_y: Array | None
    k_y: Array | None
    pred: dynamics.Targets
    basis: Array | None


def _gram_traj(w0, a: _GramArgs, hyper: dynamics.Hyper, spec: dynamics.EngineSpec, top: int):
    r"""The squared loss in its Gram form :math:`\tfrac12 w^\top\hat\Sigma w - \bar b_t^\top w + k_t`
    (the same loss as :func:`linkd.dynamics.train_loss`, tested equal) and its gradient."""
    with jax.default_matmul_precision("highest"):
        dtype = a.X.dtype
        hyper = dynamics.cast_hyper(hyper, dtype)
        opt = dynamics.make_optimizer(spec, hyper)

        def lin(t):
            if a.b_y is None:
                return a.b_t, a.k_t
            w = losses.hard_weight(t, hyper.alpha, spec.switch_step).astype(dtype)
            return w * a.b_y + (1.0 - w) * a.b_t, w * a.k_y + (1.0 - w) * a.k_t

        limit = dynamics.divergence_limit(_loss(_mv(a.X, w0), a.pred, hyper, jnp.asarray(0), spec), spec)

        def step(carry, t):
            w, s, bad = carry
            Sw = _mv(a.S, w)
            b, k = lin(t)
            loss = 0.5 * jnp.sum(w * Sw) - jnp.sum(b * w) + k
            upd, s = opt.update(Sw - b, s, w)
            w = optax.apply_updates(w, upd)
            return (w, s, dynamics.update_bad_step(bad, t, loss, jnp.all(jnp.isfinite(w)), limit)), None

        def record(carry, t):
            w = carry[0]
            zt = None if a.X_test is None else _mv(a.X_test, w)
            c = _dot0(a.basis, w) if a.basis is not None else (w[:top] if top else None)
            return c, dynamics.metrics(_mv(a.X, w), zt, a.pred, hyper, t, spec)

        carry = (w0, opt.init(w0), jnp.asarray(-1))
        carry, coeffs, metrics = dynamics.scan_recorded(carry, step, record, spec)
        return coeffs, metrics, carry[0], carry[2]


_gram_jit = jax.jit(_gram_traj, static_argnames=("spec", "top"))


@jax.jit
def _gram_matrix(X):
    return _dot0(X, X) / X.shape[0]


def _half_sq_mean(y):
    return jnp.mean(0.5 * (y * y if y.ndim == 1 else jnp.sum(y * y, axis=-1)))


def simulate_gram(
    w0,
    data: dynamics.Data,
    hyper: dynamics.Hyper,
    spec: dynamics.EngineSpec,
    *,
    record_top: int | None = None,
    check: bool = True,
    report: Callable[[str], Any] | None = None,
) -> dynamics.Trajectory:
    r"""Squared loss: steps on :math:`\hat\Sigma w - X^\top\bar y_t/n` with :math:`\bar y_t =
    \alpha_t y + (1-\alpha_t) z_T` (d × d per step; X only at recorded steps). Any optax optimizer
    of :class:`~linkd.dynamics.EngineSpec` works (no rotation is involved). The per-step loss used
    for divergence detection is :math:`\tfrac12 w^\top\hat\Sigma w - \bar b_t^\top w + k_t`; the
    recorded metrics are computed from :math:`z = Xw` exactly as in the plain engine."""
    w0 = _linear_params(w0)
    if spec.family != "mse":
        raise ConfigError("family", spec.family, "'mse' on the Gram path (the gradient is linear in w only for the squared loss)")
    _common_checks(w0, data, hyper, spec, record_top, "gram")
    _hyper_scalar(hyper)
    dynamics.check_memory(estimate_bytes("gram", w0, data, spec, record_top=record_top), report)
    X = data.X
    n = X.shape[0]
    S = _gram_matrix(X)
    lin = lambda y: (None, None) if y is None else (_dot0(X, y.astype(X.dtype)) / n, _half_sq_mean(y.astype(X.dtype)))  # noqa: E731
    (b_t, k_t), (b_y, k_y) = lin(data.targets), lin(data.labels)
    if b_t is None:  # hard labels only (alpha = 1)
        (b_t, k_t), (b_y, k_y) = (b_y, k_y), (None, None)
    assert b_t is not None and k_t is not None  # Data validation: targets or labels are given
    args = _GramArgs(X, data.X_test, S, b_t, k_t, b_y, k_y, dynamics.Targets.of(data), data.basis)
    coeffs, metrics, w, bad = _gram_jit(w0, args, hyper, spec, int(record_top or 0))
    return _finish(coeffs, metrics, w, bad, hyper, spec, check, "gram")


# --------------------------------------------------------------------------------------------
# closed form (squared loss, plain GD)


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
    pred: dynamics.Targets
    M: Array | None
    offset: Array | None


def _cf_metrics(C, a: _CFArgs, hyper: dynamics.Hyper, steps, spec: dynamics.EngineSpec, rec: _Rec):
    r"""Metrics at the recorded states without touching X: for a squared loss on target t,
    :math:`\tfrac{1}{2n}\|Zc - t\|^2 = \tfrac12\sum_k\lambda_k(c_k - c^*_{t,k})^2 + \min_t` (a sum
    of non-negative terms: no cancellation). O(R r) for the train metrics."""
    hyper = dynamics.cast_hyper(hyper, C.dtype)
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
            zt = _mv(a.Z_test, c) + a.zt_off
            p = a.pred
            if p.labels_test is not None:
                rec_["test_loss"] = jnp.mean(dynamics.hard_loss("mse", zt, p.labels_test))
                rec_["test_error"] = jnp.mean(dynamics.errors("mse", zt, p.labels_test, False))
            if p.targets_test is not None:
                rec_["test_kd_loss"] = jnp.mean(dynamics.kd_loss("mse", zt, p.targets_test, hyper.tau, spec.tau2_scale))
                rec_["test_fidelity_error"] = jnp.mean(dynamics.errors("mse", zt, p.targets_test, True))
        return _coeffs(c, rec, a.M, a.offset), rec_

    return jax.vmap(one)(C, steps)


_cf_metrics_jit = jax.jit(_cf_metrics, static_argnames=("spec", "rec"))


def _optimum(X, V, lam, target):
    """c* = (Vᵀ Xᵀ t / n) / λ and ½ mean |X V c* − t|² (the loss floor), O(nd + dr)."""
    n = X.shape[0]
    h = _dot0(V, _dot0(X, target)) / n
    cs = h / (lam if h.ndim == 1 else lam[:, None])
    res = _mv(X, _mv(V, cs)) - target
    return cs, 0.5 * jnp.mean(res * res if res.ndim == 1 else jnp.sum(res * res, axis=-1))


_optimum_jit = jax.jit(_optimum)


@functools.partial(jax.jit, static_argnames=("T",))
def _cf_first_bad(lam, lr, delta, lmin, limit, T: int):
    """First step t < T whose loss ½Σλ_k(1-ηλ_k)^{2t}δ_k² + L_min is non-finite or above limit (-1: none)."""
    lam_c = lam if delta.ndim == 1 else lam[:, None]

    def body(bad, t):
        dec = gd_decay(lam, lr, t)
        dec = dec if delta.ndim == 1 else dec[:, None]
        r = dec * delta
        loss = 0.5 * jnp.sum(lam_c * r * r) + lmin
        return dynamics.update_bad_step(bad, t, loss, jnp.asarray(True), limit), None

    bad, _ = jax.lax.scan(body, jnp.asarray(-1), jnp.arange(T))
    return bad


def simulate_closed_form(
    w0,
    data: dynamics.Data,
    hyper: dynamics.Hyper,
    spec: dynamics.EngineSpec,
    spectrum: Spectrum,
    *,
    record_top: int | None = None,
    check: bool = True,
    report: Callable[[str], Any] | None = None,
) -> dynamics.Trajectory:
    r"""Squared loss + plain GD, full batch, no switch: no simulation. With the effective target
    :math:`\bar y = \alpha y + (1-\alpha) z_T` (the α-mixture of two squared losses is one squared
    loss plus a constant), :math:`c^*_k = (V^\top X^\top\bar y/n)_k/\lambda_k` and
    :math:`c_k(t) = c_k^* + (1-\eta\lambda_k)^t(c_k(0) - c_k^*)` at the recorded steps
    (:func:`linkd.closed_form.gd_mse_trajectory`); coordinates with λ = 0 keep their init.
    Train metrics from the per-target quadratic forms in eigen-coordinates (no pass over X per
    record), test metrics from :math:`X_\text{test}Vc(t)`; O(nd + dr + Rr) in all. ``bad_step`` is found from the loss in eigen-coordinates
    when some :math:`|1-\eta\lambda_k| > 1` (only then can the loss grow)."""
    w0 = _linear_params(w0)
    if spec.family != "mse" or spec.optimizer != "gd":
        raise ConfigError("family/optimizer", f"{spec.family}/{spec.optimizer}", "mse/gd on the closed-form path")
    if spec.switch_step is not None:
        raise ConfigError("switch_step", spec.switch_step, "None on the closed-form path (use simulate_eigen or closed_form.switch_trajectory)")
    _common_checks(w0, data, hyper, spec, record_top, "closed-form")
    _hyper_scalar(hyper)
    dynamics.check_memory(estimate_bytes("closed_form", w0, data, spec, spectrum=spectrum, record_top=record_top), report)
    X = data.X
    dtype = X.dtype
    lam, Vfull = jnp.asarray(spectrum.eigvals), jnp.asarray(spectrum.basis)
    r = int(np.sum(np.asarray(lam) > 0))
    V, lam_r = Vfull[:, :r], lam[:r]
    c0_all = _dot0(Vfull, w0)
    c0 = c0_all[:r]
    w0_perp = w0 - _mv(V, c0)
    alpha = jnp.asarray(hyper.alpha, dtype)
    cs_t = min_t = cs_y = min_y = None
    if data.targets is not None:
        cs_t, min_t = _optimum_jit(X, V, lam_r, data.targets)
    if data.labels is not None:
        cs_y, min_y = _optimum_jit(X, V, lam_r, data.labels.astype(dtype))
    c_star = cs_y if cs_t is None else (cs_t if cs_y is None else alpha * cs_y + (1.0 - alpha) * cs_t)
    assert c_star is not None  # Data validation: targets or labels are given
    lam_c = lam_r if c_star.ndim == 1 else lam_r[:, None]
    lr = jnp.asarray(hyper.lr, dtype)
    steps = jnp.asarray(spec.recorded_steps)
    C = gd_mse_trajectory(lam_r, c_star, c0, lr, steps)  # (R, r[, C])
    rec, M, offset = _coeff_map(V, w0_perp, c0_all[r:], data, record_top, Vfull)
    Zt = None if data.X_test is None else _mv(data.X_test, V)
    Zt_perp = None if data.X_test is None else _mv(data.X_test, w0_perp)
    args = _CFArgs(lam_r, cs_t, min_t, cs_y, min_y, Zt, Zt_perp, dynamics.Targets.of(data), M, offset)
    coeffs, metrics = _cf_metrics_jit(C, args, hyper, steps, spec, rec)
    params = w0_perp + _mv(V, C[-1])
    bad = _cf_bad_step(lam_r, lam_c, lr, c0, c_star, C[-1], metrics["train_loss"][0], spec)
    return _finish(coeffs, metrics, params, bad, hyper, spec, check, "closed_form")


def _cf_bad_step(lam_r, lam_c, lr, c0, c_star, c_last, loss0, spec: dynamics.EngineSpec) -> Array:
    r"""First bad step of a closed-form run: searched only when some :math:`|1-\eta\lambda_k| > 1`
    (only then can the loss grow) or the final coefficients are not finite; -1 otherwise."""
    finite = bool(jnp.all(jnp.isfinite(c_last)))
    if float(jnp.max(jnp.abs(1.0 - lr * lam_r), initial=0.0)) <= 1.0 and finite:
        return jnp.asarray(-1)
    limit = dynamics.divergence_limit(loss0, spec)
    lmin = loss0 - 0.5 * jnp.sum(lam_c * (c0 - c_star) ** 2)
    bad = _cf_first_bad(lam_r, lr, c0 - c_star, lmin, limit, int(spec.steps))
    return jnp.asarray(spec.steps) if int(bad) < 0 and not finite else bad


# --------------------------------------------------------------------------------------------
# automatic choice


AutoTrajectory = dynamics.Trajectory  # older name: every Trajectory now carries ``.path``


def select_path(w0, data: dynamics.Data, hyper: dynamics.Hyper, spec: dynamics.EngineSpec, *, spectrum: Spectrum | None = None) -> str:
    """The fastest exact path for this run: ``closed_form`` (mse + gd, full batch, no switch),
    ``gram`` (mse, n > d), ``eigen`` (gd/momentum/nesterov, full batch, linear: when a spectrum
    is given, n < d, or coefficients are recorded), else ``plain`` (adam, deep-linear models,
    minibatches, swept hyper-parameters)."""
    n, d = data.X.shape
    if not isinstance(w0, (jax.Array, np.ndarray)):
        return "plain"
    if spec.batch_size is not None and spec.batch_size < n:
        return "plain"
    if any(np.ndim(h) != 0 for h in hyper):
        return "plain"
    if spec.family == "mse" and spec.optimizer == "gd" and spec.switch_step is None:
        return "closed_form"
    if spec.family == "mse" and n > d:
        return "gram"
    if spec.optimizer not in _EQUIVARIANT:
        return "plain"
    if spectrum is not None or n < d or data.basis is not None:
        return "eigen"
    return "plain"


def simulate_auto(
    w0,
    data: dynamics.Data,
    hyper: dynamics.Hyper,
    spec: dynamics.EngineSpec,
    spectrum: Spectrum | None = None,
    *,
    key: Array | None = None,
    record_top: int | None = None,
    path: str | None = None,
    check: bool = True,
    report: Callable[[str], Any] | None = None,
) -> AutoTrajectory:
    """Run on ``path`` (default :func:`select_path`); the result's ``.path`` names it. Without a
    ``spectrum`` the eigen and closed-form paths compute :func:`thin_spectrum` (SVD of X, never
    d × d). ``record_top`` (axis basis) is honoured on every path except ``plain``."""
    path = path or select_path(w0, data, hyper, spec, spectrum=spectrum)
    if path not in PATHS:
        raise ConfigError("path", path, f"one of {PATHS}")
    if path in ("eigen", "closed_form") and spectrum is None:
        spectrum = thin_spectrum(data.X)
    if path == "closed_form":
        assert spectrum is not None
        tr = simulate_closed_form(w0, data, hyper, spec, spectrum, record_top=record_top, check=check, report=report)
    elif path == "gram":
        tr = simulate_gram(w0, data, hyper, spec, record_top=record_top, check=check, report=report)
    elif path == "eigen":
        assert spectrum is not None
        tr = simulate_eigen(w0, data, hyper, spec, spectrum, record_top=record_top, check=check, report=report)
    else:
        if record_top is not None:
            raise ConfigError("record_top", record_top, "None on the plain path (pass data.basis)")
        dynamics.check_memory(estimate_bytes("plain", w0, data, spec), report)
        tr = dynamics.simulate(w0, data, hyper, spec, key, check=check)
    return tr._replace(path=path)
