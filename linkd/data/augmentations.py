r"""Feature augmentations, the linear analogue of Guo et al.'s (docs/theory.md §5.2): Gaussian
noise :math:`X + \sigma\varepsilon`, random masking (optionally rescaled by :math:`1/(1-\rho)`),
per-example scaling :math:`e^{s g_i}x_i`; :func:`augment` dispatches by name with one strength."""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from linkd.data._checks import Array, _kind, _matrix, _real

__all__ = ["AUGMENT_KINDS", "feature_noise", "feature_mask", "feature_scale", "augment"]

AUGMENT_KINDS = ("noise", "mask", "scale", "none")


def feature_noise(key: Array, X, sigma: float) -> Array:
    r"""Gaussian feature noise :math:`X + \sigma\,\varepsilon`, :math:`\varepsilon_{ij}\sim N(0,1)`; sigma ≥ 0."""
    sigma = _real("feature_noise", "sigma", sigma, lo=0.0)
    return _feature_noise(key, _matrix("feature_noise", "X", X, ndim=(1, 2)), sigma)


@jax.jit
def _feature_noise(key, X, sigma):
    return X + sigma * jax.random.normal(key, X.shape, X.dtype)


def feature_mask(key: Array, X, rate: float, rescale: bool = False) -> Array:
    r"""Random feature masking: each entry zeroed independently with probability ``rate`` ∈ [0, 1);
    with ``rescale=True`` the kept entries are divided by 1 − rate (inverted dropout, unbiased)."""
    rate = _real("feature_mask", "rate", rate, lo=0.0, hi=1.0, hi_open=True)
    return _feature_mask(key, _matrix("feature_mask", "X", X, ndim=(1, 2)), rate, bool(rescale))


@partial(jax.jit, static_argnums=3)
def _feature_mask(key, X, rate, rescale):
    out = jnp.where(jax.random.bernoulli(key, 1.0 - rate, X.shape), X, 0.0)
    return out / (1.0 - rate) if rescale else out


def feature_scale(key: Array, X, spread: float) -> Array:
    r"""Per-example scaling :math:`x_i \mapsto e^{\text{spread}\,g_i} x_i`, :math:`g_i\sim N(0,1)`; spread ≥ 0."""
    spread = _real("feature_scale", "spread", spread, lo=0.0)
    return _feature_scale(key, _matrix("feature_scale", "X", X), spread)


@jax.jit
def _feature_scale(key, X, spread):
    g = jax.random.normal(key, (X.shape[0],), X.dtype)
    return jnp.exp(spread * g)[:, None] * X


def augment(kind: str, key: Array, X, strength: float) -> Array:
    """Dispatch an augmentation by name with one ``strength``: ``'noise'`` (sigma), ``'mask'``
    (rate, no rescale), ``'scale'`` (spread), ``'none'`` (returns X, strength ignored)."""
    _kind("augment", kind, AUGMENT_KINDS)
    if kind == "noise":
        return feature_noise(key, X, strength)
    if kind == "mask":
        return feature_mask(key, X, strength)
    if kind == "scale":
        return feature_scale(key, X, strength)
    return _matrix("augment", "X", X, ndim=(1, 2))
