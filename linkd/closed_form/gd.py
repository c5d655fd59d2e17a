r"""Gradient descent on the squared loss in the eigenbasis of :math:`\hat\Sigma` (docs/theory.md §2, §3.3, §6).

Loss :math:`L(w) = \frac{1}{2n}\|Xw - y\|^2`, GD :math:`w_{t+1} = w_t - \eta\nabla L(w_t)`.
In coordinates :math:`c_k = v_k^\top w` the dynamics decouple:

.. math::  c_k(t) = c_k^* + (1-\eta\lambda_k)^t\,(c_k(0) - c_k^*) \quad (\lambda_k > 0),
           \qquad c_k(t) = c_k(0) \quad (\lambda_k = 0),

with :math:`c_k^* = v_k^\top X^+ y`. Gradient flow replaces :math:`(1-\eta\lambda)^t` by
:math:`e^{-\lambda t}` — a different function with a different name (``gf_*``); the two are never
substituted silently.

Time arguments: in the ``*_trajectory`` functions an int ``steps`` means t = 0..steps; everywhere
a time (``t``, ``times``, ``T``, ``rounds``) may also be an array of any shape, which becomes the
leading axes of the output (neural-tangents convention); a scalar time gives shape (d,).
"""
from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from linkd.errors import InputError

Array = jnp.ndarray

__all__ = [
    "StableLR",
    "stable_lr",
    "gd_decay",
    "gf_decay",
    "gd_filter",
    "gf_filter",
    "gd_mse_trajectory",
    "gf_mse_trajectory",
    "teacher_student_filters",
    "gf_teacher_student_filters",
    "exaggeration_gap",
    "gf_exaggeration_gap",
    "exaggeration_gap_from_progress",
    "switch_trajectory",
    "gd_self_distill_factor",
]


def _times(steps) -> Array:
    """int → arange(steps + 1); array → as is."""
    if np.ndim(steps) == 0 and isinstance(steps, (int, np.integer)):
        if steps < 0:
            raise InputError(f"closed_form.gd: steps must be an integer >= 0 or an array of steps; got {steps}")
        return jnp.arange(int(steps) + 1)
    return jnp.asarray(steps)


def _expand(t: Array, lam: Array):
    """Times (any shape) against eigenvalues (d,): returns t[..., None] and λ shaped (1,..,1, d)
    (explicit ranks: no implicit rank promotion)."""
    t, lam = jnp.asarray(t), jnp.asarray(lam)
    return t[..., None], _lead(lam, t.ndim)


def _lead(x: Array, k: int) -> Array:
    """Prepend k singleton axes."""
    x = jnp.asarray(x)
    return x.reshape((1,) * k + x.shape)


class StableLR(NamedTuple):
    r"""Step-size limits for GD on the squared loss: ``convergent`` = :math:`2/\lambda_\max`
    (η below it converges), ``monotone`` = :math:`1/\lambda_\max` (η below it keeps every filter
    :math:`1-(1-\eta\lambda)^t` monotone in t; docs/theory.md §2.2)."""

    convergent: float
    monotone: float


def stable_lr(eigvals: Array) -> StableLR:
    r""":math:`\eta < 2/\lambda_\max` (convergence), :math:`\eta < 1/\lambda_\max` (monotone filters)."""
    lam_max = float(jnp.max(jnp.asarray(eigvals)))
    if not lam_max > 0:
        raise InputError(f"stable_lr: eigvals must have a largest eigenvalue > 0; got max(eigvals) = {lam_max}")
    return StableLR(2.0 / lam_max, 1.0 / lam_max)


def gd_decay(eigvals: Array, lr, t) -> Array:
    r"""Residual factor :math:`(1-\eta\lambda_k)^t` of discrete GD; exactly 1 where :math:`\lambda_k = 0`.

    ``t`` (any shape, integer-valued) leads the output: shape ``t.shape + (d,)``."""
    tt, lam = _expand(t, eigvals)
    base = 1.0 - lr * lam
    # integer powers of a possibly negative base: |b|^t with the sign of b^t
    tf = tt.astype(base.dtype) if jnp.issubdtype(tt.dtype, jnp.integer) else tt
    mag = jnp.abs(base) ** tf
    odd = jnp.mod(tf, 2.0) == 1.0
    return jnp.where((base < 0) & odd, -mag, mag)


def gf_decay(eigvals: Array, times) -> Array:
    r"""Residual factor :math:`e^{-\lambda_k t}` of gradient flow (1 where :math:`\lambda_k = 0`)."""
    tt, lam = _expand(times, eigvals)
    tf = tt.astype(lam.dtype) if jnp.issubdtype(tt.dtype, jnp.integer) else tt
    return jnp.exp(-lam * tf)


def gd_filter(eigvals: Array, lr, t) -> Array:
    r"""Teacher filter :math:`1-(1-\eta\lambda_k)^t` (0 where :math:`\lambda_k = 0`)."""
    return 1.0 - gd_decay(eigvals, lr, t)


def gf_filter(eigvals: Array, times) -> Array:
    r"""Gradient-flow filter :math:`1-e^{-\lambda_k t}` (the :math:`A(t) = I - e^{-tX X^\top}` of Nagarajan et al.)."""
    return 1.0 - gf_decay(eigvals, times)


def gd_mse_trajectory(eigvals: ArrayLike, coeffs_star: ArrayLike, coeffs0: ArrayLike, lr, steps) -> Array:
    r""":math:`c_k(t) = c_k^* + (1-\eta\lambda_k)^t (c_k(0) - c_k^*)`; :math:`c_k(t) = c_k(0)` if :math:`\lambda_k = 0`.

    Returns shape ``(steps + 1, d)`` for an int ``steps`` (t = 0..steps), or ``t.shape + (d,)``.
    ``coeffs_star`` may be (d,) or (d, C) (then the output gains the trailing C axis).
    """
    lam = jnp.asarray(eigvals)
    cs, c0 = jnp.asarray(coeffs_star), jnp.asarray(coeffs0)
    cs = jnp.where(_col(lam, cs) > 0, cs, c0)  # λ = 0: no motion, the "target" is the init
    dec = gd_decay(lam, lr, _times(steps))
    return _combine(cs, c0, dec)


def gf_mse_trajectory(eigvals: Array, coeffs_star: Array, coeffs0: Array, times) -> Array:
    r"""Gradient flow: :math:`c_k(t) = c_k^* + e^{-\lambda_k t}(c_k(0) - c_k^*)`."""
    lam = jnp.asarray(eigvals)
    cs, c0 = jnp.asarray(coeffs_star), jnp.asarray(coeffs0)
    cs = jnp.where(_col(lam, cs) > 0, cs, c0)
    dec = gf_decay(lam, _times(times))
    return _combine(cs, c0, dec)


def _mul(a: Array, b: Array) -> Array:
    """Product with explicit rank alignment (leading singleton axes on the lower-rank factor)."""
    k = a.ndim - b.ndim
    return (a * _lead(b, k)) if k >= 0 else (_lead(a, -k) * b)


def _combine(cs: Array, c0: Array, dec: Array) -> Array:
    """decay·c0 + (1 − decay)·c* (exactly c0 at t = 0 and c* at decay 0), decay of shape
    t.shape + (d,), coefficients of shape (d,) or (d, C)."""
    k = dec.ndim - 1
    if cs.ndim == 2:
        dec = dec[..., None]
    return dec * _lead(c0, k) + (1.0 - dec) * _lead(cs, k)


def _col(lam: Array, like: Array) -> Array:
    return lam if like.ndim == 1 else lam[:, None]


def teacher_student_filters(eigvals: Array, lr, T_teacher: int, t_student) -> Array:
    r"""Student filter :math:`(1-(1-\eta\lambda_k)^{t})(1-(1-\eta\lambda_k)^{T})` (docs/theory.md §2.2).

    A teacher trained T steps from zero has :math:`c_k = f_k(T)c_k^*`; a student trained t steps
    from zero on the teacher's train predictions has :math:`c_k = f_k(t)f_k(T)c_k^*`.
    Output shape ``t.shape + (d,)``."""
    return _mul(gd_filter(eigvals, lr, t_student), gd_filter(eigvals, lr, T_teacher))


def gf_teacher_student_filters(eigvals: Array, T_teacher, t_student) -> Array:
    r"""Gradient flow: :math:`(1-e^{-\lambda t})(1-e^{-\lambda T})`."""
    return _mul(gf_filter(eigvals, t_student), gf_filter(eigvals, T_teacher))


def _gap(residual: Array, log_decay: Array) -> Array:
    r"""Pairwise gap in residual form. With the student's residual :math:`r_k = 1 - q_k^S` and the
    teacher path :math:`q_j^T(\tau) = 1 - e^{\tau\ell_j}` (:math:`\ell_j` = log of the per-step
    decay), :math:`\tau^*_i = \ln r_i / \ell_i` and ``gap[i, j]`` = :math:`q_j^T(\tau^*_i) - q_j^S
    = r_j - e^{\tau^*_i \ell_j}`. Residuals avoid the cancellation in :math:`\ln(1 - q)` for q ≈ 1."""
    tau_star = jnp.log(residual) / log_decay  # (d,); +inf where r_i = 0 (fully converged)
    return residual[None, :] - jnp.exp(tau_star[:, None] * log_decay[None, :])


def _log_decay_gd(lam: Array, lr) -> Array:
    if not float(lr) * float(jnp.max(lam)) < 1.0:
        raise InputError(f"gd log decay: lr must satisfy 0 < lr * max(eigvals) < 1 (monotone GD filters); got lr = {lr}")
    return jnp.log1p(-lr * jnp.where(lam > 0, lam, 1.0))


def exaggeration_gap(eigvals: Array, lr, T: int, t: int) -> Array:
    r"""Matrix ``gap[i, j]`` = :math:`q_j^T(\tau^*) - q_j^S(t;T)` for :math:`\lambda_i > \lambda_j > 0`
    (0 elsewhere), where the teacher's time :math:`\tau^*` matches the student's progress on the
    larger direction: :math:`q_i^T(\tau^*) = q_i^S(t;T)`, :math:`\tau^* = \ln(1-q)/\ln(1-\eta\lambda_i)`.

    Nagarajan et al.'s exaggeration (docs/theory.md §2.2, derived): every entry is ≥ 0 — at matched
    progress on a top direction the student has progressed less on a lower one. Needs
    :math:`0 < \eta\lambda_1 < 1` (monotone filters). Computed from the exact residual
    :math:`1 - q^S = a + b - ab`, :math:`a = (1-\eta\lambda)^t`, :math:`b = (1-\eta\lambda)^T`.
    """
    lam = jnp.asarray(eigvals)
    ld = _log_decay_gd(lam, lr)
    a, b = gd_decay(lam, lr, jnp.asarray(t)), gd_decay(lam, lr, jnp.asarray(T))
    return _mask_pairs(_gap(a + b - a * b, ld), lam)


def exaggeration_gap_from_progress(eigvals: Array, lr, q_student: Array, min_residual: float = 1e-8) -> Array:
    r"""Pairwise gap of :func:`exaggeration_gap` for a *measured* student progress vector
    ``q_student`` (d,) (e.g. from simulation): ``gap[i, j]`` = :math:`f_j(\tau^*_i) - q_j^S` with the
    GD teacher path :math:`f_j(\tau) = 1-(1-\eta\lambda_j)^\tau` and :math:`f_i(\tau^*_i) = q_i^S`.

    A measured residual :math:`1 - q_i` carries round-off (~1e-15 in float64), which makes
    :math:`\tau^*_i = \ln(1-q_i)/\ln(1-\eta\lambda_i)` meaningless once direction i has converged;
    rows with :math:`1 - q_i <` ``min_residual`` are therefore left out (set to 0)."""
    lam = jnp.asarray(eigvals)
    r = 1.0 - jnp.asarray(q_student)
    gap = _gap(r, _log_decay_gd(lam, lr))
    return jnp.where((r >= min_residual)[:, None], _mask_pairs(gap, lam), 0.0)


def gf_exaggeration_gap(eigvals: Array, T, t) -> Array:
    r"""Gradient-flow version of :func:`exaggeration_gap` (:math:`\tau^* = -\ln(1-q)/\lambda_i`)."""
    lam = jnp.asarray(eigvals)
    a, b = gf_decay(lam, jnp.asarray(t)), gf_decay(lam, jnp.asarray(T))
    return _mask_pairs(_gap(a + b - a * b, -jnp.where(lam > 0, lam, 1.0)), lam)


def _mask_pairs(gap: Array, lam: Array) -> Array:
    """Keep entries with λ_i > λ_j > 0; zero elsewhere (NaN-free)."""
    valid = (lam[:, None] > lam[None, :]) & (lam[None, :] > 0)
    return jnp.where(valid, jnp.nan_to_num(gap, nan=0.0), 0.0)


def switch_trajectory(eigvals: Array, coeffs_star: Array, lr, T_teacher: int, t_switch: int, steps) -> Array:
    r"""Late distillation (docs/theory.md §2.3): GD from zero on the labels y for :math:`t_0` steps, then
    on the teacher's predictions :math:`\hat y = Xw_T`:

    .. math:: c_k(t) = (1-(1-\eta\lambda_k)^t)c_k^* \ (t \le t_0), \quad
              c_k(t) = c_k^{\hat y} + (1-\eta\lambda_k)^{t-t_0}(c_k(t_0) - c_k^{\hat y}) \ (t > t_0),

    :math:`c_k^{\hat y} = (1-(1-\eta\lambda_k)^T)c_k^*`. Output ``(steps + 1, d)`` or ``t.shape + (d,)``."""
    lam = jnp.asarray(eigvals)
    cs = jnp.asarray(coeffs_star)
    t = _times(steps)
    k = t.ndim
    c_hat = gd_filter(lam, lr, T_teacher) * cs
    c_t0 = gd_filter(lam, lr, t_switch) * cs
    before = gd_filter(lam, lr, t) * _lead(cs, k)
    after = _lead(c_hat, k) + gd_decay(lam, lr, jnp.maximum(t - t_switch, 0)) * _lead(c_t0 - c_hat, k)
    return jnp.where((t <= t_switch)[..., None], before, after)


def gd_self_distill_factor(eigvals: Array, lr, T: int, rounds) -> Array:
    r"""Factor on :math:`c_k^*` after ``rounds`` fits of T early-stopped GD steps from zero, each on the
    previous fit's train predictions (round 1 = the teacher fitted to y): :math:`(1-(1-\eta\lambda_k)^T)^{r}`
    (docs/theory.md §3.3). ``rounds``: a count r, or an array of counts (leading axes of the output)."""
    r = jnp.asarray(rounds)
    f = gd_filter(eigvals, lr, T)
    rr = r[..., None]
    return _lead(f, r.ndim) ** rr.astype(f.dtype)
