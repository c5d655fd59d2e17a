r"""The objective, in the logits: the one definition of the training loss and the recorded metrics.

Objective at step t (mean over the batch of per-example losses, :mod:`linkd.losses`; docs/theory.md §2.2, §8):

.. math::  L_t(w) = \alpha_t\,\ell_\text{hard}(Xw, y) + (1-\alpha_t)\,\ell_\text{KD}(Xw, z_T; \tau)

with :math:`\alpha_t` = ``hyper.alpha`` (or 1 before ``spec.switch_step``: late distillation).
Loss families: ``mse`` (hard: :math:`\tfrac12(z-y)^2`, KD: :math:`\tfrac12(z-z_T)^2`), ``binary``
(hard: BCE on {0,1} labels, KD: BCE to :math:`\sigma(z_T/\tau)`), ``multiclass`` (hard: CE on
integer labels, KD: CE to :math:`\mathrm{softmax}(z_T/\tau)`); KD terms carry :math:`\tau^2` when
``spec.tau2_scale``.

* :func:`train_loss` — :math:`L_t` as a function of the logits z (every engine path uses it);
  :func:`objective` = ``train_loss(predict(params, X))``.
* :func:`step_metrics` — the recorded metrics from the logits (train and test).
* :func:`predict` — the outputs of any student: :math:`Xw` (linear, deep-linear: w end to end)
  or a two-layer network's :math:`f(X)` (docs/theory.md §11).
* :func:`logits`, :func:`xt_dot` — :math:`Xw` and :math:`X^\top g` as single dot products at
  ``Precision.HIGHEST`` (no TF32 on a GPU; :math:`X^\top` is never materialised).
* :func:`linear_grad` — :math:`(L_t, X^\top g)` with :math:`g = \partial L_t/\partial z`.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from linkd import losses
from linkd.engine.types import Array, EngineSpec, Hyper, Targets
from linkd.models import end_to_end
from linkd.networks import apply as network_apply
from linkd.networks import is_network

__all__ = ["HIGHEST", "logits", "predict", "xt_dot", "hard_loss", "kd_loss", "train_loss", "objective", "residual_errors",
           "step_metrics", "linear_grad"]

HIGHEST = jax.lax.Precision.HIGHEST


def logits(X: Array, w: Array) -> Array:
    """:math:`z = Xw` (X (n, d), w (d,) or (d, C)) as one dot at ``Precision.HIGHEST``."""
    return jax.lax.dot_general(X, w, (((X.ndim - 1,), (0,)), ((), ())), precision=HIGHEST)


def predict(params, X: Array) -> Array:
    """The student's outputs on X: :math:`Xw` with w the end-to-end weight (linear, deep-linear) or
    the network's :math:`f(X)` for a :class:`~linkd.networks.TwoLayer` (docs/theory.md §11)."""
    if is_network(params):
        return network_apply(params, X)
    return logits(X, end_to_end(params))


def xt_dot(X: Array, g: Array) -> Array:
    r""":math:`X^\top g` (X (n, d), g (n,) or (n, C)) contracting the batch axis of both: one
    BLAS call with X read in place (no transpose of X is formed), ``Precision.HIGHEST``."""
    return jax.lax.dot_general(X, g, (((0,), (0,)), ((), ())), precision=HIGHEST)


def hard_loss(family: str, z: Array, labels: Array) -> Array:
    """Per-example hard-label loss (mse: ½|z-y|², binary: BCE on {0,1}, multiclass: CE on int classes)."""
    if family == "mse":
        return losses.mse(z, labels.astype(z.dtype))
    if family == "binary":
        return losses.binary_soft_ce(z, labels.astype(z.dtype))
    return losses.softmax_ce(z, losses.one_hot(labels, z.shape[-1], z.dtype))


def kd_loss(family: str, z: Array, z_t: Array, tau: Array, tau2_scale: bool) -> Array:
    """Per-example distillation loss to the teacher outputs ``z_t`` at temperature τ."""
    if family == "mse":
        return losses.mse(z, z_t)
    if family == "binary":
        return losses.kd_binary(z, z_t, tau, tau2_scale)
    return losses.kd_softmax(z, z_t, tau, tau2_scale)


def train_loss(z: Array, targets: Array | None, labels: Array | None, hyper: Hyper, step, spec: EngineSpec) -> Array:
    r"""The training loss :math:`L_t` as a function of the logits z (mean over the batch).

    ``targets=None``: hard labels only (the caller ensures α = 1); ``labels=None``: KD only."""
    if targets is None:
        assert labels is not None, "train_loss needs targets or labels"  # Data validation guarantees one
        return jnp.mean(hard_loss(spec.family, z, labels))
    kd = kd_loss(spec.family, z, targets, hyper.tau, spec.tau2_scale)
    if labels is None:
        return jnp.mean(kd)
    a = losses.hard_weight(step, hyper.alpha, spec.switch_step).astype(z.dtype)
    return jnp.mean(losses.mixture(hard_loss(spec.family, z, labels), kd, a))


def objective(params, X, targets, labels, hyper: Hyper, step, spec: EngineSpec) -> Array:
    """Mean loss :math:`L_t` at ``step`` of the student ``params`` (linear, deep-linear or a network)."""
    return train_loss(predict(params, X), targets, labels, hyper, step, spec)


def residual_errors(family: str, z: Array, ref: Array, ref_is_logits: bool) -> Array:
    """0-1 disagreement (classification) or squared error (mse) per example."""
    if family == "mse":
        r = z - ref.astype(z.dtype)
        return r * r if r.ndim == 1 else jnp.sum(r * r, axis=-1)
    if family == "binary":
        return ((z > 0) != ((ref > 0) if ref_is_logits else (ref > 0.5))).astype(z.dtype)
    lab = jnp.argmax(ref, axis=-1) if ref_is_logits else ref
    return (jnp.argmax(z, axis=-1).astype(lab.dtype) != lab).astype(z.dtype)


def step_metrics(z: Array, z_test: Array | None, tg: Targets, hyper: Hyper, step, spec: EngineSpec) -> dict:
    """The recorded metrics from train logits z and test logits ``z_test`` (or None), in a fixed
    order: train_loss, train_fidelity_error, train_error, test_loss, test_error, test_kd_loss,
    test_fidelity_error (each present when its inputs are)."""
    fam = spec.family
    rec = {"train_loss": train_loss(z, tg.targets, tg.labels, hyper, step, spec)}
    if tg.targets is not None:
        rec["train_fidelity_error"] = jnp.mean(residual_errors(fam, z, tg.targets, True))
    if tg.labels is not None:
        rec["train_error"] = jnp.mean(residual_errors(fam, z, tg.labels, False))
    if z_test is not None:
        if tg.labels_test is not None:
            rec["test_loss"] = jnp.mean(hard_loss(fam, z_test, tg.labels_test))
            rec["test_error"] = jnp.mean(residual_errors(fam, z_test, tg.labels_test, False))
        if tg.targets_test is not None:
            rec["test_kd_loss"] = jnp.mean(kd_loss(fam, z_test, tg.targets_test, hyper.tau, spec.tau2_scale))
            rec["test_fidelity_error"] = jnp.mean(residual_errors(fam, z_test, tg.targets_test, True))
    return rec


def linear_grad(z: Array, X: Array, tg: Targets, hyper: Hyper, step, spec: EngineSpec) -> tuple[Array, Array]:
    r"""Loss and gradient of a linear student from its logits z = Xw: :math:`(L_t,\ X^\top g)` with
    :math:`g = \partial L_t/\partial z` (the per-example loss derivative over n; autodiff in z only,
    elementwise), one dot contracting X's batch axis (:func:`xt_dot`)."""
    loss, gz = jax.value_and_grad(train_loss)(z, tg.targets, tg.labels, hyper, step, spec)
    return loss, xt_dot(X, gz)
