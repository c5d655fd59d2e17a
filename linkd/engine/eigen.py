r"""The eigen path: GD / momentum / Nesterov in the coordinates of an orthonormal eigenbasis (docs/theory.md §2.2).

With :math:`V` an orthonormal basis of :math:`\hat\Sigma` (``spectrum.basis``), :math:`Z = XV`,
state :math:`c = V^\top w` and gradient :math:`Z^\top\ell'(Zc)/n`. These optimizers are
rotation-equivariant, so the run is the same run in other coordinates. The state *is* the
eigen-coefficient vector, so recording the top-m coefficients every step is a slice (no d × d
read per step), and the predictions :math:`z = Zc` needed by the metrics are carried from the
previous step's update. Only the directions with :math:`\lambda_k > 0` move (the gradient lies in
the row space of X); the rest stay at their initial value, so with n < d the step costs
:math:`O(nr)`, r = rank X, instead of :math:`O(nd)`. A *thin* basis (d × r,
:func:`linkd.engine.thin_spectrum`) is enough and never forms a d × d matrix. When r > d/2 (e.g.
n > d) and no ``design`` is passed, Z would be as large as X: the step then uses X and V instead
(:math:`z = X(Vc)`, gradient :math:`V^\top(X^\top g)`) and holds no copy of X. Adam is not
rotation-equivariant: refused.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from linkd.engine.checks import hyper_scalar, linear_params, path_checks
from linkd.engine.divergence import divergence_limit, finish, update_bad_step
from linkd.engine.memory import check_memory, eigen_uses_design, estimate_bytes
from linkd.engine.objective import logits, step_metrics, train_loss, xt_dot
from linkd.engine.optimizers import cast_hyper, make_optimizer
from linkd.engine.recording import CoeffRecord, coeff_map, read_coeffs, scan_recorded
from linkd.engine.types import Array, Data, EngineSpec, Hyper, Targets, Trajectory
from linkd.errors import ConfigError
from linkd.spectral import Spectrum

__all__ = ["EQUIVARIANT", "eigen_design", "simulate_eigen"]

EQUIVARIANT = ("gd", "momentum", "nesterov")


class _EigenArgs(NamedTuple):
    """The design in state coordinates and the predictions of the fixed part w0_perp of w
    (z = Z c + z_off; z_off ~ rounding on the train set, not on the test set). ``Z`` = XV_r
    (n × r) when materialised; otherwise ``Z`` is X and ``V`` the (d × r) basis: z = X(Vc) and
    the gradient Vᵀ(Xᵀg) — no n × r copy of X (used when r > d/2,
    :func:`linkd.engine.memory.eigen_uses_design`)."""

    Z: Array
    V: Array | None
    Z_test: Array | None
    z_off: Array
    zt_off: Array | None
    pred: Targets
    M: Array | None
    offset: Array | None


def _loss(z, tg: Targets, hyper: Hyper, t, spec: EngineSpec):
    return train_loss(z, tg.targets, tg.labels, hyper, t, spec)


def _eigen_traj(c0, a: _EigenArgs, hyper: Hyper, spec: EngineSpec, rec: CoeffRecord):
    with jax.default_matmul_precision("highest"):
        hyper = cast_hyper(hyper, a.Z.dtype)
        opt = make_optimizer(spec, hyper)

        def fwd(c):
            return logits(a.Z, c if a.V is None else logits(a.V, c)) + a.z_off

        def grad(gz):
            g = xt_dot(a.Z, gz)
            return g if a.V is None else xt_dot(a.V, g)

        def zt_of(c):
            return None if a.Z_test is None else logits(a.Z_test, c) + a.zt_off

        z0 = fwd(c0)
        limit = divergence_limit(_loss(z0, a.pred, hyper, jnp.asarray(0), spec), spec)
        dloss = jax.value_and_grad(_loss)

        def step(carry, t):
            c, s, z, bad = carry
            loss, gz = dloss(z, a.pred, hyper, t, spec)
            upd, s = opt.update(grad(gz), s, c)
            c = optax.apply_updates(c, upd)
            z = fwd(c)
            return (c, s, z, update_bad_step(bad, t, loss, jnp.all(jnp.isfinite(c)), limit)), None

        def record(carry, t):
            c, _, z, _ = carry
            return read_coeffs(c, rec, a.M, a.offset), step_metrics(z, zt_of(c), a.pred, hyper, t, spec)

        carry = (c0, opt.init(c0), z0, jnp.asarray(-1))
        carry, coeffs, metrics = scan_recorded(carry, step, record, spec)
        return coeffs, metrics, carry[0], carry[3]


_eigen_jit = jax.jit(_eigen_traj, static_argnames=("spec", "rec"))


def eigen_design(X: Array, spectrum: Spectrum) -> Array:
    """:math:`Z = XV_r` (n, r): X in the coordinates of the directions with λ > 0."""
    r = int(np.sum(np.asarray(spectrum.eigvals) > 0))
    return logits(jnp.asarray(X), jnp.asarray(spectrum.basis)[:, :r])


def simulate_eigen(
    w0,
    data: Data,
    hyper: Hyper,
    spec: EngineSpec,
    spectrum: Spectrum,
    *,
    record_top: int | None = None,
    design: Array | None = None,
    check: bool = True,
    report: Callable[[str], Any] | None = None,
) -> Trajectory:
    r"""Full-batch GD / momentum / Nesterov in the coordinates of ``spectrum.basis`` (see module doc).

    ``design``: :func:`eigen_design` ``(X, spectrum)`` computed once and reused by every run on the
    same data (it costs a pass of n·d·r flops, as much as r/4 steps).

    ``spectrum``: :func:`linkd.spectral.eigh_desc` (d × d) or :func:`linkd.engine.thin_spectrum`
    (d × r); the columns with :math:`\lambda > 0` must span the row space of X (true for both).
    Coordinates with :math:`\lambda = 0` keep their initial value (their gradient is zero in exact
    arithmetic; :func:`linkd.engine.simulate` moves them by rounding noise only).
    ``data.basis``: any (d, m) recording basis; the top-m columns of ``spectrum.basis`` (compared
    exactly) are recorded by slicing the state. ``record_top=m`` (with ``data.basis=None``):
    record :math:`w_{1..m}` (the axis basis). Raises :class:`~linkd.errors.ConfigError` for Adam
    (not rotation-equivariant), minibatches or a deep model.
    """
    w0 = linear_params(w0)
    if spec.optimizer not in EQUIVARIANT:
        raise ConfigError("optimizer", spec.optimizer, f"one of {EQUIVARIANT} on the eigen path (Adam is not rotation-equivariant; use engine.simulate)")
    path_checks(w0, data, hyper, spec, record_top, "eigen")
    hyper_scalar(hyper)
    n, d = data.X.shape
    r = int(np.sum(np.asarray(spectrum.eigvals) > 0))
    use_z = eigen_uses_design(n, d, r, design is not None)
    check_memory(estimate_bytes("eigen", w0, data, spec, spectrum=spectrum, record_top=record_top, design_given=use_z), report)
    Vfull = jnp.asarray(spectrum.basis)
    V = Vfull[:, :r]
    c0_all = xt_dot(Vfull, w0)  # (d_basis[, C])
    c0 = c0_all[:r]
    w0_perp = w0 - logits(V, c0)
    rec, M, offset = coeff_map(V, w0_perp, c0_all[r:], data, record_top, Vfull)
    if design is not None and design.shape != (n, r):
        raise ConfigError("design", f"shape {tuple(design.shape)}", f"eigen_design(X, spectrum) of shape {(n, r)}")
    Z = (eigen_design(data.X, spectrum) if design is None else design) if use_z else data.X
    Zt = None if data.X_test is None else logits(data.X_test, V)
    args = _EigenArgs(Z, None if use_z else V, Zt, logits(data.X, w0_perp),
                      None if data.X_test is None else logits(data.X_test, w0_perp), Targets.of(data), M, offset)
    coeffs, metrics, c, bad = _eigen_jit(c0, args, hyper, spec, rec)
    params = w0_perp + logits(V, c)
    return finish(coeffs, metrics, params, bad, hyper, spec, check, "eigen")
