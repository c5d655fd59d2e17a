r"""Gradient descent on the squared loss in the eigenbasis of :math:`\hat\Sigma` (docs/theory.md §2, §3.3, §6).

Loss :math:`L(w) = \frac{1}{2n}\|Xw - y\|^2`, GD :math:`w_{t+1} = w_t - \eta\nabla L(w_t)`.
In coordinates :math:`c_k = v_k^\top w` the dynamics decouple:

.. math::  c_k(t) = c_k^* + (1-\eta\lambda_k)^t\,(c_k(0) - c_k^*) \quad (\lambda_k > 0),
           \qquad c_k(t) = c_k(0) \quad (\lambda_k = 0),

with :math:`c_k^* = v_k^\top X^+ y`. Gradient flow replaces :math:`(1-\eta\lambda)^t` by
:math:`e^{-\lambda t}` — a different function with a different name (``gf_*``); the two are never
substituted silently. Both decays come from :mod:`linkd.closed_form.decay`.

Time arguments: in the ``*_trajectory`` functions an int ``steps`` means t = 0..steps; everywhere
a time (``t``, ``times``, ``T``, ``rounds``) may also be an array of any shape, which becomes the
leading axes of the output (neural-tangents convention); a scalar time gives shape (d,).
"""
from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
from jax.typing import ArrayLike

from linkd import stability
from linkd.closed_form import _checks as checks
from linkd.closed_form.decay import _gd_jax as _gd
from linkd.closed_form.decay import _gf_jax as _gf
from linkd.closed_form.matched import MatchedGap, _pairwise_gap
from linkd.errors import InputError

Array = jnp.ndarray

__all__ = [
    "StableLR",
    "stable_lr",
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
    return StableLR(stability.mse_convergent(lam_max), stability.mse_monotone(lam_max))


def gd_filter(eigvals: Array, lr, t) -> Array:
    r"""Teacher filter :math:`1-(1-\eta\lambda_k)^t` (0 where :math:`\lambda_k = 0`), shape ``t.shape + (d,)``."""
    lam = checks.eigvals("gd_filter", eigvals)
    return 1.0 - _gd(lam, checks.lr("gd_filter", lr), checks.times("gd_filter", "t", t))


def gf_filter(eigvals: Array, times) -> Array:
    r"""Gradient-flow filter :math:`1-e^{-\lambda_k t}` (the :math:`A(t) = I - e^{-tX X^\top}` of Nagarajan et al.)."""
    lam = checks.eigvals("gf_filter", eigvals)
    return 1.0 - _gf(lam, checks.times("gf_filter", "times", times))


def _targets(fn: str, lam: Array, coeffs_star, coeffs0) -> tuple[Array, Array]:
    """Validated c* and c(0) of equal shape (d,) or (d, C); c* replaced by c(0) where λ = 0 (no motion)."""
    cs = checks.coeffs(fn, "coeffs_star", coeffs_star, lam.shape[0])
    c0 = checks.coeffs(fn, "coeffs0", coeffs0, lam.shape[0])
    if c0.shape != cs.shape:
        raise checks.refuse(fn, "coeffs0", f"shape {tuple(c0.shape)}", f"the shape of coeffs_star {tuple(cs.shape)}")
    return jnp.where(_col(lam, cs) > 0, cs, c0), c0


def gd_mse_trajectory(eigvals: ArrayLike, coeffs_star: ArrayLike, coeffs0: ArrayLike, lr, steps) -> Array:
    r""":math:`c_k(t) = c_k^* + (1-\eta\lambda_k)^t (c_k(0) - c_k^*)`; :math:`c_k(t) = c_k(0)` if :math:`\lambda_k = 0`.

    Returns shape ``(steps + 1, d)`` for an int ``steps`` (t = 0..steps), or ``t.shape + (d,)``.
    ``coeffs_star`` may be (d,) or (d, C) (then the output gains the trailing C axis).
    """
    fn = "gd_mse_trajectory"
    lam = checks.eigvals(fn, eigvals)
    cs, c0 = _targets(fn, lam, coeffs_star, coeffs0)
    return _combine(cs, c0, _gd(lam, checks.lr(fn, lr), checks.steps(fn, "steps", steps)))


def gf_mse_trajectory(eigvals: Array, coeffs_star: Array, coeffs0: Array, times) -> Array:
    r"""Gradient flow: :math:`c_k(t) = c_k^* + e^{-\lambda_k t}(c_k(0) - c_k^*)`."""
    fn = "gf_mse_trajectory"
    lam = checks.eigvals(fn, eigvals)
    cs, c0 = _targets(fn, lam, coeffs_star, coeffs0)
    return _combine(cs, c0, _gf(lam, checks.steps(fn, "times", times)))


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
    fn = "teacher_student_filters"
    lam, eta = checks.eigvals(fn, eigvals), checks.lr(fn, lr)
    T = checks.times(fn, "T_teacher", T_teacher)
    return _mul(1.0 - _gd(lam, eta, checks.times(fn, "t_student", t_student)), 1.0 - _gd(lam, eta, T))


def gf_teacher_student_filters(eigvals: Array, T_teacher, t_student) -> Array:
    r"""Gradient flow: :math:`(1-e^{-\lambda t})(1-e^{-\lambda T})`, shape ``t.shape + (d,)``."""
    fn = "gf_teacher_student_filters"
    lam = checks.eigvals(fn, eigvals)
    T = checks.times(fn, "T_teacher", T_teacher)
    return _mul(1.0 - _gf(lam, checks.times(fn, "t_student", t_student)), 1.0 - _gf(lam, T))


def _monotone_lr(fn: str, lam: Array, lr) -> float:
    """η with 0 < η·λ_max < 1 (monotone GD filters: the matched time is unique)."""
    lam_max = float(jnp.max(lam))
    return checks.lr(fn, lr, below=1.0 / lam_max if lam_max > 0 else None,
                     why=" (lr * max(eigvals) < 1: monotone GD filters)")


def _log_decay_gd(lam: Array, lr) -> Array:
    """ln(1 − ηλ) per step; a placeholder where λ = 0 (those rows are left out)."""
    return jnp.log1p(-lr * jnp.where(lam > 0, lam, 1.0))


_NO_TIME = "lambda_i = 0 or residual 1 - q_i^S = 0: no finite matched time"


def exaggeration_gap(eigvals: Array, lr, T: int, t: int) -> MatchedGap:
    r"""Matched-progress gap ``gap[i, j]`` = :math:`q_j^T(\tau^*_i) - q_j^S(t;T)` for
    :math:`\lambda_i > \lambda_j > 0` (NaN elsewhere), where the teacher's time :math:`\tau^*_i` matches
    the student's progress on the larger direction: :math:`q_i^T(\tau^*_i) = q_i^S(t;T)`,
    :math:`\tau^*_i = \ln(1-q_i^S)/\ln(1-\eta\lambda_i)` (``tau_star``, in GD steps).

    Nagarajan et al.'s exaggeration (docs/theory.md §2.2, derived): every entry is ≥ 0 — at matched
    progress on a top direction the student has progressed less on a lower one. Needs
    :math:`0 < \eta\lambda_1 < 1` (monotone filters). Computed from the exact residual
    :math:`1 - q^S = a + b - ab`, :math:`a = (1-\eta\lambda)^t`, :math:`b = (1-\eta\lambda)^T`.
    Returns :class:`~linkd.closed_form.MatchedGap`.
    """
    fn = "exaggeration_gap"
    lam = checks.eigvals(fn, eigvals)
    eta = _monotone_lr(fn, lam, lr)
    a = _gd(lam, eta, checks.times(fn, "t", t))
    b = _gd(lam, eta, checks.times(fn, "T", T))
    return _pairwise_gap(a + b - a * b, _log_decay_gd(lam, eta), lam, lam > 0, _NO_TIME)


def exaggeration_gap_from_progress(eigvals: Array, lr, q_student: ArrayLike, min_residual: float = 1e-8) -> MatchedGap:
    r"""Pairwise gap of :func:`exaggeration_gap` for a *measured* student progress ``q_student``
    ((d,) or (..., d), e.g. from simulation): ``gap[..., i, j]`` = :math:`f_j(\tau^*_i) - q_j^S` with the
    GD teacher path :math:`f_j(\tau) = 1-(1-\eta\lambda_j)^\tau` and :math:`f_i(\tau^*_i) = q_i^S`.

    A measured residual :math:`1 - q_i` carries round-off (~1e-15 in float64), which makes
    :math:`\tau^*_i = \ln(1-q_i)/\ln(1-\eta\lambda_i)` meaningless once direction i has converged;
    rows with :math:`1 - q_i <` ``min_residual`` are therefore left out (NaN, ``excluded``)."""
    fn = "exaggeration_gap_from_progress"
    lam = checks.eigvals(fn, eigvals)
    return _gap_from_progress(fn, lam, _monotone_lr(fn, lam, lr), q_student, min_residual)


def _gap_from_progress(fn: str, lam: Array, eta, q_student, min_residual) -> MatchedGap:
    """The from-progress gap for validated λ and η (η·λ_max < 1)."""
    q = checks.floats(q_student)
    if q.ndim < 1 or q.shape[-1] != lam.shape[0]:
        raise checks.refuse(fn, "q_student", f"shape {tuple(q.shape)}", f"an array of shape (..., {lam.shape[0]})")
    mr = checks.scalar(fn, "min_residual", min_residual, strict=False)
    r = 1.0 - q
    reason = f"1 - q_i^S < min_residual = {mr:g} (converged: round-off makes the matched time meaningless) or lambda_i = 0"
    return _pairwise_gap(r, _log_decay_gd(lam, eta), lam, (r >= mr) & _lead(lam > 0, q.ndim - 1), reason)


def gf_exaggeration_gap(eigvals: Array, T, t) -> MatchedGap:
    r"""Gradient-flow version of :func:`exaggeration_gap` (:math:`\tau^*_i = -\ln(1-q_i^S)/\lambda_i`, in flow time)."""
    fn = "gf_exaggeration_gap"
    lam = checks.eigvals(fn, eigvals)
    a, b = _gf(lam, checks.times(fn, "t", t)), _gf(lam, checks.times(fn, "T", T))
    return _pairwise_gap(a + b - a * b, -jnp.where(lam > 0, lam, 1.0), lam, lam > 0, _NO_TIME)


def switch_trajectory(eigvals: Array, coeffs_star: Array, lr, T_teacher: int, t_switch: int, steps) -> Array:
    r"""Late distillation (docs/theory.md §2.3): GD from zero on the labels y for :math:`t_0` steps, then
    on the teacher's predictions :math:`\hat y = Xw_T`:

    .. math:: c_k(t) = (1-(1-\eta\lambda_k)^t)c_k^* \ (t \le t_0), \quad
              c_k(t) = c_k^{\hat y} + (1-\eta\lambda_k)^{t-t_0}(c_k(t_0) - c_k^{\hat y}) \ (t > t_0),

    :math:`c_k^{\hat y} = (1-(1-\eta\lambda_k)^T)c_k^*`. Output ``(steps + 1, d)`` or ``t.shape + (d,)``."""
    fn = "switch_trajectory"
    lam = checks.eigvals(fn, eigvals)
    cs = checks.coeffs(fn, "coeffs_star", coeffs_star, lam.shape[0], ndim=(1,))
    eta = checks.lr(fn, lr)
    T, t0 = checks.times(fn, "T_teacher", T_teacher), checks.times(fn, "t_switch", t_switch)
    t = checks.steps(fn, "steps", steps)
    k = t.ndim
    c_hat = (1.0 - _gd(lam, eta, T)) * cs
    c_t0 = (1.0 - _gd(lam, eta, t0)) * cs
    before = (1.0 - _gd(lam, eta, t)) * _lead(cs, k)
    after = _lead(c_hat, k) + _gd(lam, eta, jnp.maximum(t - t0, 0)) * _lead(c_t0 - c_hat, k)
    return jnp.where((t <= t0)[..., None], before, after)


def gd_self_distill_factor(eigvals: Array, lr, T: int, rounds) -> Array:
    r"""Factor on :math:`c_k^*` after ``rounds`` fits of T early-stopped GD steps from zero, each on the
    previous fit's train predictions (round 1 = the teacher fitted to y): :math:`(1-(1-\eta\lambda_k)^T)^{r}`
    (docs/theory.md §3.3). ``rounds``: a count r, or an array of counts (leading axes of the output)."""
    fn = "gd_self_distill_factor"
    lam = checks.eigvals(fn, eigvals)
    f = 1.0 - _gd(lam, checks.lr(fn, lr), checks.times(fn, "T", T))
    r = checks.times(fn, "rounds", rounds)
    return _lead(f, r.ndim) ** r[..., None].astype(f.dtype)
