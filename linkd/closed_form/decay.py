r"""The decay kernel shared by every closed form (docs/theory.md §2.2, §6.1).

Gradient descent with step η multiplies the residual along an eigen-direction of curvature λ by
:math:`\rho = 1-\eta\lambda` per step, so by :math:`\rho^t` after t steps (:func:`gd_decay`);
gradient flow multiplies it by :math:`e^{-\lambda t}` (:func:`gf_decay`), a different function
with a different name. The closed forms build on these two: MSE trajectories and filters
:math:`1-\rho^t` (§6.1–§6.4), the self-distillation factor :math:`(1-\rho^T)^r` (§3.3), the
tempered student with :math:`\rho = 1-\eta\lambda/C` (§8), the deep-linear N = 1, 2 flows (§7.1),
and the fidelity and confidence forms (§9).

Signed powers: for :math:`1 < \eta\lambda < 2` the base is negative and :math:`\rho^t =
(-1)^t|\rho|^t` for integer t; a negative base with a non-integer t has no real power (NaN).
:math:`\lambda = 0` gives exactly 1. A time of any shape leads the output: ``t.shape + (d,)``.

The kernel is written once over an array namespace: ``jax.numpy`` for the jax closed forms (in
the eigenvalues' floating dtype), ``numpy`` float64 for the host closed forms (§7, §9).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from linkd.closed_form import _checks as checks

__all__ = ["gd_decay", "gf_decay"]


def _signed_power(base, t, xp=jnp):
    r""":math:`b^t` for real b: :math:`|b|^t` with the sign :math:`(-1)^t` where b < 0 and t is an
    integer; NaN where b < 0 and t is not an integer. Broadcasts."""
    mag = xp.abs(base) ** t
    whole = xp.floor(t) == t
    odd = whole & (xp.mod(t, 2.0) == 1.0)
    neg = base < 0
    return xp.where(neg & ~whole, xp.nan, xp.where(neg & odd, -mag, mag))


def _lead_times(lam, t, xp=jnp):
    """Times (any shape) against eigenvalues (d,): ``t[..., None]`` in the eigenvalues' dtype and λ
    with ``t.ndim`` leading singleton axes (explicit ranks: no implicit rank promotion)."""
    lam, t = xp.asarray(lam), xp.asarray(t)
    return t.astype(lam.dtype)[..., None], lam.reshape((1,) * t.ndim + lam.shape)


def _gd(lam, lr, t, xp=jnp):
    r""":math:`(1-\eta\lambda_k)^t` for validated inputs, shape ``t.shape + (d,)``."""
    tt, ll = _lead_times(lam, t, xp)
    return _signed_power(1.0 - lr * ll, tt, xp)


def _gf(lam, t, xp=jnp):
    r""":math:`e^{-\lambda_k t}` for validated inputs, shape ``t.shape + (d,)``."""
    tt, ll = _lead_times(lam, t, xp)
    return xp.exp(-ll * tt)


_gd_jax = jax.jit(_gd)  # the jax closed forms: one compiled program per shape and dtype
_gf_jax = jax.jit(_gf)


def gd_decay(eigvals, lr, t):
    r"""Residual factor :math:`(1-\eta\lambda_k)^t` of discrete GD; exactly 1 where :math:`\lambda_k = 0`.

    ``t`` (any shape, integer-valued where :math:`\eta\lambda_k > 1`) leads the output: shape
    ``t.shape + (d,)``, in the dtype of ``eigvals``."""
    lam = checks.eigvals("gd_decay", eigvals)
    return _gd_jax(lam, checks.lr("gd_decay", lr), checks.times("gd_decay", "t", t))


def gf_decay(eigvals, times):
    r"""Residual factor :math:`e^{-\lambda_k t}` of gradient flow (1 where :math:`\lambda_k = 0`),
    shape ``times.shape + (d,)``."""
    lam = checks.eigvals("gf_decay", eigvals)
    return _gf_jax(lam, checks.times("gf_decay", "times", times))
