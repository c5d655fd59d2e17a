r"""Aligned multi-output designs for deep-linear students (docs/theory.md §7, A-al): the input
covariance :math:`\hat\Sigma = V\mathrm{diag}(\lambda)V^\top` and the input–output covariance
:math:`\hat\Sigma_{yx} = \sum_{k\le r}\lambda_k c_k u_k v_k^\top` share the frame exactly."""
from __future__ import annotations

import math
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from linkd.data._checks import Array, _int
from linkd.data.designs import _random_orthogonal
from linkd.dtypes import default_float
from linkd.errors import ConfigError

__all__ = ["AlignedDesign", "aligned_design"]


class AlignedDesign(NamedTuple):
    r"""X (n, d), Y (n, m) with :math:`\hat\Sigma = X^\top X/n = V\mathrm{diag}(\lambda)V^\top` and
    :math:`\hat\Sigma_{yx} = Y^\top X/n = \sum_{k\le r}\lambda_k c_k u_k v_k^\top` exactly; ``V`` (d, d)
    orthogonal, ``U`` (m, r) orthonormal columns, ``eigvals`` (d,), ``strengths`` c (r,)."""

    X: Array
    Y: Array
    V: Array
    U: Array
    eigvals: Array
    strengths: Array


def aligned_design(key: Array, n: int, eigvals, strengths, n_out: int | None = None, *,
                   whitened: bool = False, noise: float = 0.0) -> AlignedDesign:
    r"""A design whose input and input–output covariances share the frame (§7, A-al).

    :math:`X = \sqrt n\,Q\,\mathrm{diag}(\sqrt\lambda)V^\top` (Q (n, d) orthonormal columns, V Haar),
    :math:`Y = X\,V_r\mathrm{diag}(c)U^\top + \text{noise}\cdot(I - QQ^\top)G`: the noise is orthogonal
    to the columns of X, so it changes Y but not :math:`\hat\Sigma_{yx}`. ``whitened=True`` sets
    :math:`\lambda \equiv 1`. Needs n ≥ d, r = len(strengths) ≤ min(d, m), c_k > 0, λ_k > 0.
    """
    n = _int("aligned_design", "n", n)
    lam = np.asarray(eigvals, dtype=np.float64)
    c = np.asarray(strengths, dtype=np.float64)
    d, r = lam.size, c.size
    m = r if n_out is None else _int("aligned_design", "n_out", n_out)
    if lam.ndim != 1 or d == 0 or not np.all(np.isfinite(lam) & (lam > 0)):
        raise ConfigError("eigvals", lam.tolist(), "a non-empty 1-d array of finite values > 0")
    if c.ndim != 1 or not np.all(np.isfinite(c) & (c > 0)) or not 1 <= r <= min(d, m):
        raise ConfigError("strengths", c.tolist(), f"1 to min(d, n_out) = {min(d, m)} finite values > 0")
    if n < d:
        raise ConfigError("n", n, f"n >= d = {d} (Σ̂ must have full rank d)")
    if not (math.isfinite(noise) and noise >= 0):
        raise ConfigError("noise", noise, "a finite value >= 0")
    if whitened:
        lam = np.ones_like(lam)
    dt = default_float()
    lam_j, c_j = jnp.asarray(lam, dt), jnp.asarray(c, dt)
    X, Y, V, U = _aligned_design(key, n, m, lam_j, c_j, jnp.asarray(float(noise), dt))
    return AlignedDesign(X, Y, V, U, lam_j, c_j)


@partial(jax.jit, static_argnums=(1, 2))
def _aligned_design(key, n, m, lam, c, noise):
    d, r = lam.shape[0], c.shape[0]
    kq, kv, ku, ke = jax.random.split(key, 4)
    Q, _ = jnp.linalg.qr(jax.random.normal(kq, (n, d), lam.dtype))
    V = _random_orthogonal(kv, d)
    U, _ = jnp.linalg.qr(jax.random.normal(ku, (m, r), lam.dtype))
    X = math.sqrt(n) * (Q * jnp.sqrt(lam)[None, :]) @ V.T
    G = jax.random.normal(ke, (n, m), lam.dtype)
    Y = X @ ((V[:, :r] * c[None, :]) @ U.T) + noise * (G - Q @ (Q.T @ G))
    return X, Y, V, U
