r"""Distillation losses, per example and unreduced (the caller takes the mean over the batch).

Conventions (design.md): a loss sums over classes for each example; the :math:`\tau^2` factor of
Hinton et al. is an explicit option (``tau2_scale``); the KL direction is in the function name.

* :func:`mse`: :math:`\tfrac12\|z - y\|^2`.
* :func:`binary_soft_ce`: :math:`-[p\log\sigma(z/\tau) + (1-p)\log(1-\sigma(z/\tau))]`.
* :func:`softmax_ce`: :math:`-\sum_j q_j \log\mathrm{softmax}(z/\tau)_j`.
* :func:`kd_binary`, :func:`kd_softmax`: cross-entropy to the teacher's tempered distribution,
  times :math:`\tau^2` when ``tau2_scale``.
* :func:`mixture`: :math:`\alpha\,\ell_\text{hard} + (1-\alpha)\,\ell_\text{KD}` (α = hard weight).
* :func:`hard_weight`: the switch schedule, α_t = 1 before ``switch_step`` (hard labels only),
  α afterwards (late distillation, Nagarajan et al. §2.3).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from linkd import stability
from linkd.dtypes import default_float

__all__ = [
    "mse",
    "binary_soft_ce",
    "softmax_ce",
    "one_hot",
    "kd_binary",
    "kd_softmax",
    "kl_teacher_student",
    "kl_student_teacher",
    "mixture",
    "hard_weight",
    "smoothness",
    "stability_limit",
]

Array = jnp.ndarray


def mse(z: Array, y: Array) -> Array:
    r"""Squared error :math:`\tfrac12\sum_j (z_j - y_j)^2` per example; z, y of shape (n,) or (n, C)."""
    r = z - y
    return 0.5 * (r * r if r.ndim == 1 else jnp.sum(r * r, axis=-1))


def binary_soft_ce(z: Array, p: Array, tau: float | Array = 1.0) -> Array:
    r"""Binary cross-entropy of target probability p against :math:`\sigma(z/\tau)` (stable form)."""
    u = z / tau
    return jax.nn.softplus(u) - p * u  # = -[p log σ(u) + (1-p) log(1-σ(u))]


def softmax_ce(z: Array, q: Array, tau: float | Array = 1.0) -> Array:
    r"""Cross-entropy :math:`-\sum_j q_j\log\mathrm{softmax}(z/\tau)_j`; z, q of shape (n, C)."""
    return -jnp.sum(q * jax.nn.log_softmax(z / tau, axis=-1), axis=-1)


def one_hot(labels: Array, num_classes: int, dtype=None) -> Array:
    """Integer labels (n,) → one-hot (n, C)."""
    return jax.nn.one_hot(labels, num_classes, dtype=dtype or default_float())


def kd_binary(z_s: Array, z_t: Array, tau: float | Array = 1.0, tau2_scale: bool = True) -> Array:
    r""":math:`\tau^2\,\mathrm{CE}(\sigma(z_T/\tau), \sigma(z_S/\tau))` (τ² only if ``tau2_scale``)."""
    loss = binary_soft_ce(z_s, jax.nn.sigmoid(z_t / tau), tau)
    return loss * tau * tau if tau2_scale else loss


def kd_softmax(z_s: Array, z_t: Array, tau: float | Array = 1.0, tau2_scale: bool = True) -> Array:
    r""":math:`\tau^2\,\mathrm{CE}(\mathrm{softmax}(z_T/\tau), \mathrm{softmax}(z_S/\tau))`."""
    loss = softmax_ce(z_s, jax.nn.softmax(z_t / tau, axis=-1), tau)
    return loss * tau * tau if tau2_scale else loss


def kl_teacher_student(z_s: Array, z_t: Array, tau: float | Array = 1.0) -> Array:
    r""":math:`\mathrm{KL}(p_T\,\|\,p_S)` with :math:`p = \mathrm{softmax}(z/\tau)` (Stanton et al.'s direction)."""
    lt = jax.nn.log_softmax(z_t / tau, axis=-1)
    ls = jax.nn.log_softmax(z_s / tau, axis=-1)
    return jnp.sum(jnp.exp(lt) * (lt - ls), axis=-1)


def kl_student_teacher(z_s: Array, z_t: Array, tau: float | Array = 1.0) -> Array:
    r""":math:`\mathrm{KL}(p_S\,\|\,p_T)` (Guo et al.'s direction, before their ×10)."""
    return kl_teacher_student(z_t, z_s, tau)


def mixture(hard: Array, soft: Array, alpha: float | Array) -> Array:
    r""":math:`\alpha\,\ell_\text{hard} + (1-\alpha)\,\ell_\text{KD}`."""
    return alpha * hard + (1.0 - alpha) * soft


def hard_weight(step: Array, alpha: float | Array, switch_step: int | None) -> Array:
    """Weight of the hard-label loss at ``step``: α always (``switch_step=None``), else 1 for
    step < switch_step and α from then on."""
    if switch_step is None:
        return jnp.asarray(alpha)
    return jnp.where(step < switch_step, 1.0, alpha)


def smoothness(family: str, lam_max: float, tau: float = 1.0, tau2_scale: bool = True) -> float:
    r"""Upper bound L on the Hessian's largest eigenvalue of the mean loss, for a linear model
    (:func:`linkd.stability.smoothness`): ``mse`` :math:`\lambda_\max`, ``binary``
    :math:`\lambda_\max/(4\tau^2)`, ``multiclass`` :math:`\lambda_\max/(2\tau^2)` (KD terms ×τ² with
    ``tau2_scale``); a mixture takes the max over its parts."""
    return stability.smoothness(family, lam_max, tau, tau2_scale)


def stability_limit(family: str, lam_max: float, tau: float = 1.0, tau2_scale: bool = True) -> float:
    r"""Largest stable GD step :math:`2/L` (docs/theory.md §1.2, §2.2; :func:`linkd.stability.gd_limit`)."""
    return stability.gd_limit(family, lam_max, tau, tau2_scale)
