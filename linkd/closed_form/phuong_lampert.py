r"""Phuong & Lampert (ICML 2019): where a soft-label (distillation) student ends up (docs/theory.md §1).

Notation: :math:`X\in\mathbb{R}^{n\times d}` (rows :math:`x_i`), :math:`P = X^+X` the orthogonal
projector onto the row space, teacher :math:`w_*`, soft labels :math:`y_i = \sigma(w_*^\top x_i)`.
The soft cross-entropy gradient :math:`\nabla L(w) = \tfrac1n\sum_i(\sigma(w^\top x_i) - y_i)x_i`
lies in :math:`\mathrm{span}\{x_i\}`, hence:

* linear student, GD or GF, any :math:`w_0`: :math:`(I-P)w_t = (I-P)w_0` and
  :math:`w_t \to \hat w = Pw_* + (I-P)w_0` (:func:`pl_limit`); :math:`\hat w = w_*` when rank X = d.
* deep linear student :math:`w = (W_N\cdots W_1)^\top`: :math:`W_1(t)(I-P) = W_1(0)(I-P)` for every t
  (:func:`pl_deep_invariant`), so at a global minimum
  :math:`\hat w = Pw_* + (I-P)W_1(0)^\top (W_N\cdots W_2)(\infty)^\top` (:func:`pl_deep_limit`).

All functions are pure ``jax.numpy`` (jit-friendly); numpy or JAX arrays in, JAX arrays out.
"""
from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

from linkd.errors import InputError
from linkd.models import DeepLinear
from linkd.spectral import projector

Array = jnp.ndarray

__all__ = [
    "pl_limit",
    "pl_deep_invariant",
    "pl_deep_head",
    "pl_deep_limit",
    "pl_orthogonal_part",
    "PLCounterexample",
    "pl_risk_counterexample",
]


def _as_2d(X, fn: str, name: str = "X") -> Array:
    X = jnp.asarray(X)
    if X.ndim != 2:
        raise InputError(f"{fn}: {name} must be a 2-D array (n, d); got shape {X.shape}")
    return X


def _check_vec(w, d: int, name: str, fn: str) -> Array:
    w = jnp.asarray(w)
    if w.ndim not in (1, 2) or w.shape[0] != d:
        raise InputError(f"{fn}: {name} must have shape (d,) or (d, C) with d = {d}; got shape {w.shape}")
    return w


def pl_limit(X: Array, w_star: Array, w0: Array | None = None) -> Array:
    r"""Limit of GD/GF on the soft cross-entropy from :math:`w_0`: :math:`\hat w = Pw_* + (I-P)w_0`.

    :math:`P = X^+X` (pseudo-inverse, so rank deficiency n < d is exact). ``w0=None`` means
    :math:`w_0 = 0`, giving :math:`\hat w = Pw_*`; if rank X = d, :math:`\hat w = w_*` for every
    :math:`w_0`. ``w_star``/``w0`` of shape (d,) or (d, C) (one column per output).
    """
    X = _as_2d(X, "pl_limit")
    d = X.shape[1]
    w_star = _check_vec(w_star, d, "w_star", "pl_limit")
    P = projector(X)
    if w0 is None:
        return P @ w_star
    w0 = _check_vec(w0, d, "w0", "pl_limit")
    if w0.shape != w_star.shape:
        raise InputError(f"pl_limit: w0 must have the shape of w_star {w_star.shape}; got {w0.shape}")
    return P @ w_star + (w0 - P @ w0)


def pl_orthogonal_part(X: Array, w: Array) -> Array:
    r"""The part of ``w`` outside the data span, :math:`(I-P)w` (frozen under soft-CE training)."""
    X = _as_2d(X, "pl_orthogonal_part")
    w = _check_vec(w, X.shape[1], "w", "pl_orthogonal_part")
    return w - projector(X) @ w


def pl_deep_invariant(W1_0: Array, X: Array) -> Array:
    r""":math:`W_1(0)(I-P)` — the block of the first layer that GD/GF never changes.

    Exact for any depth N ≥ 2, any init and any step size: :math:`\partial L/\partial W_1 =
    (W_N\cdots W_2)^\top\nabla L(w)^\top` has rows in the row space of X, so
    :math:`W_1(t)(I-P) = W_1(0)(I-P)` for all t (docs/theory.md §1.3). Shape (d_1, d).
    """
    X = _as_2d(X, "pl_deep_invariant")
    W1_0 = jnp.asarray(W1_0)
    if W1_0.ndim != 2 or W1_0.shape[1] != X.shape[1]:
        raise InputError(f"pl_deep_invariant: W1_0 must have shape (d_1, d) with d = {X.shape[1]}; got shape {W1_0.shape}")
    return W1_0 - W1_0 @ projector(X)


def pl_deep_head(params: DeepLinear) -> Array:
    r"""The product of the upper layers :math:`W_N\cdots W_2` (shape (d_out, d_1))."""
    if not isinstance(params, DeepLinear) or len(params.layers) < 2:
        raise InputError(f"pl_deep_head: params must be a DeepLinear with at least 2 layers; got {type(params).__name__} with {len(getattr(params, 'layers', ()))} layers")
    M = jnp.asarray(params.layers[1])
    for W in params.layers[2:]:
        M = W @ M
    return M


def pl_deep_limit(X: Array, w_star: Array, W1_0: Array, head: Array) -> Array:
    r"""End-to-end weight of a deep linear student at a global minimum of the soft-CE loss:
    :math:`\hat w = Pw_* + (I-P)W_1(0)^\top h^\top`, with ``head`` :math:`h = W_N\cdots W_2` taken
    at the end of training (:func:`pl_deep_head`; shape (d_1,) or (1, d_1) for a scalar output,
    (C, d_1) for C outputs).

    Only the orthogonal part depends on the trajectory (through ``head``); it is exactly zero when
    rank X = d and scales with the init of :math:`W_1` (docs/theory.md §1.3).
    """
    X = _as_2d(X, "pl_deep_limit")
    d = X.shape[1]
    w_star = _check_vec(w_star, d, "w_star", "pl_deep_limit")
    frozen = pl_deep_invariant(W1_0, X)  # (d_1, d)
    head = jnp.asarray(head)
    if head.ndim == 1:
        head = head[None, :]
    if head.ndim != 2 or head.shape[1] != frozen.shape[0]:
        raise InputError(f"pl_deep_limit: head must have shape (d_1,) or (C, d_1) with d_1 = {frozen.shape[0]}; got {head.shape}")
    orth = (head @ frozen).T  # (d, C)
    if w_star.ndim == 1:
        if orth.shape[1] != 1:
            raise InputError(f"pl_deep_limit: w_star must have as many outputs as head ({orth.shape[1]}); got one output")
        orth = orth[:, 0]
    return projector(X) @ w_star + orth


class PLCounterexample(NamedTuple):
    """Data of the per-realisation counterexample to monotonicity (docs/theory.md §1.5)."""

    w_star: Array  # teacher e_1
    X1: Array  # training set {x_1}, shape (1, 3)
    X2: Array  # training set {x_1, x_2}, shape (2, 3)
    z: Array  # test point


def pl_risk_counterexample() -> PLCounterexample:
    r""":math:`w_* = e_1`, :math:`x_1=(1,1,0)`, :math:`x_2=(1,0,1)`, :math:`z=(1,0,-2.5)`:
    :math:`\hat w(\{x_1\}) = (1,1,0)/2` classifies z correctly, :math:`\hat w(\{x_1,x_2\}) =
    (2/3,1/3,1/3)` misclassifies it — more data can raise the risk of one realisation; the
    monotonicity of Phuong–Lampert is a statement in expectation only."""
    w_star = jnp.array([1.0, 0.0, 0.0])
    x1 = jnp.array([1.0, 1.0, 0.0])
    x2 = jnp.array([1.0, 0.0, 1.0])
    z = jnp.array([1.0, 0.0, -2.5])
    return PLCounterexample(w_star, x1[None, :], jnp.stack([x1, x2]), z)
