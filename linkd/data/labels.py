r"""Labels from a teacher (docs/theory.md §1.1, §8): regression :math:`y = Xw_* + \text{noise}\,\varepsilon`,
soft binary :math:`\sigma(Xw_*/\tau)`, hard binary :math:`1\{Xw_* > 0\}` with flips, softmax
:math:`\mathrm{softmax}(XW_*/\tau)` and hard multiclass labels (argmax or sampled, with flips).
Keys are keyword-only and needed only when something is drawn."""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from linkd.data._checks import Array, _concrete, _matrix, _real
from linkd.errors import InputError

__all__ = ["regression_labels", "binary_soft_labels", "binary_hard_labels", "softmax_labels", "multiclass_hard_labels"]


def _logits(fn: str, X, w, ndim) -> Array:
    X = _matrix(fn, "X", X)
    w = _matrix(fn, "w_star" if ndim == (1,) else "W_star", w, ndim=ndim)
    if w.shape[0] != X.shape[1]:
        raise InputError(f"{fn}: teacher weights have {w.shape[0]} rows but X has d={X.shape[1]} columns")
    return X @ w


def regression_labels(key: Array, X, w_star, noise: float = 0.0) -> Array:
    r""":math:`y = X w_* + \text{noise}\cdot\varepsilon`, :math:`\varepsilon\sim N(0, I)`; w_star (d,) or
    (d, C) → y (n,) or (n, C). noise ≥ 0."""
    fn = "regression_labels"
    noise = _real(fn, "noise", noise, lo=0.0)
    return _regression_labels(key, _logits(fn, X, w_star, (1, 2)), noise)


@jax.jit
def _regression_labels(key, z, noise):
    return z + noise * jax.random.normal(key, z.shape, z.dtype)


def binary_soft_labels(X, w_star, tau: float = 1.0) -> Array:
    r"""Teacher probabilities :math:`\sigma(X w_* / \tau)`, shape (n,); tau > 0."""
    tau = _real("binary_soft_labels", "tau", tau, lo=0.0, lo_open=True)
    return jax.nn.sigmoid(_logits("binary_soft_labels", X, w_star, (1,)) / tau)


def binary_hard_labels(X, w_star, *, flip: float = 0.0, key: Array | None = None) -> Array:
    r"""Hard labels :math:`1\{X w_* > 0\}` as floats in {0, 1}, each flipped independently with
    probability ``flip`` ∈ [0, 1]; ``key`` (keyword-only) is needed only when flip > 0."""
    fn = "binary_hard_labels"
    flip = _real(fn, "flip", flip, lo=0.0, hi=1.0)
    z = _logits(fn, X, w_star, (1,))
    y = (z > 0).astype(z.dtype)
    if key is None:
        if _concrete(flip) == 0.0:
            return y
        raise InputError(f"{fn}: key must be a PRNG key when flip > 0; got None")
    return _flip_binary(key, y, flip)


@jax.jit
def _flip_binary(key, y, flip):
    return jnp.where(jax.random.bernoulli(key, flip, y.shape), 1.0 - y, y)


def softmax_labels(X, W_star, tau: float = 1.0) -> Array:
    r"""Teacher class probabilities :math:`\mathrm{softmax}(X W_*/\tau)`, shape (n, C); tau > 0."""
    tau = _real("softmax_labels", "tau", tau, lo=0.0, lo_open=True)
    return jax.nn.softmax(_logits("softmax_labels", X, W_star, (2,)) / tau, axis=-1)


def multiclass_hard_labels(
    X, W_star, *, flip: float = 0.0, sample: bool = False, tau: float = 1.0, key: Array | None = None
) -> Array:
    r"""Integer labels (n,) int32: :math:`\arg\max_j (XW_*)_j`, or (``sample=True``) a draw from
    :math:`\mathrm{softmax}(XW_*/\tau)`; then each label is, with probability ``flip`` ∈ [0, 1],
    replaced by a uniformly random *different* class ((y + U{1..C−1}) mod C).

    The sampling and flipping use fixed, separate subkeys of ``key``, so the clean labels for a
    given key do not depend on ``flip``. ``key`` (keyword-only) is needed only when flip > 0 or
    sample=True."""
    fn = "multiclass_hard_labels"
    flip = _real(fn, "flip", flip, lo=0.0, hi=1.0)
    tau = _real(fn, "tau", tau, lo=0.0, lo_open=True)
    z = _logits(fn, X, W_star, (2,))
    n, C = z.shape
    if key is None:
        if sample or _concrete(flip) != 0.0:
            raise InputError(f"{fn}: key must be a PRNG key when sample=True or flip > 0; got None")
        return jnp.argmax(z, axis=-1).astype(jnp.int32)
    return _multiclass_hard_labels(key, z, flip, tau, bool(sample))


@partial(jax.jit, static_argnums=4)
def _multiclass_hard_labels(key, z, flip, tau, sample):
    n, C = z.shape
    k_sample, k_flip, k_shift = jax.random.split(key, 3)
    if sample:
        y = jax.random.categorical(k_sample, z / tau, axis=-1).astype(jnp.int32)
    else:
        y = jnp.argmax(z, axis=-1).astype(jnp.int32)
    if C < 2:
        return y
    flipped = jax.random.bernoulli(k_flip, flip, (n,))
    shift = jax.random.randint(k_shift, (n,), 1, C, dtype=jnp.int32)
    return jnp.where(flipped, (y + shift) % C, y)
