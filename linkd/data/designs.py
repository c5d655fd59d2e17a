r"""Gaussian designs (docs/theory.md §2.2): rows :math:`x \sim N(0, U\,\mathrm{diag}(\lambda)\,U^\top)`
with a Haar-random, axis-aligned or explicit orthonormal basis U; :func:`make_design` draws a
train/test pair from one population."""
from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp

from linkd.data._checks import Array, _basis, _eigvals, _int, _matrix
from linkd.dtypes import default_float
from linkd.errors import InputError

__all__ = ["random_orthogonal", "gaussian_design", "Design", "make_design"]


def random_orthogonal(key: Array, d: int) -> Array:
    r"""Haar-distributed orthogonal (d, d) matrix: Q from the QR of a Gaussian matrix, with
    column signs fixed by :math:`\mathrm{sign}(\mathrm{diag}\,R)` (Mezzadri 2007)."""
    return _random_orthogonal(key, _int("random_orthogonal", "d", d))


@partial(jax.jit, static_argnums=1)
def _random_orthogonal(key, d):
    Q, R = jnp.linalg.qr(jax.random.normal(key, (d, d), default_float()))
    s = jnp.sign(jnp.diagonal(R))
    return Q * jnp.where(s == 0, 1.0, s)[None, :]


def gaussian_design(key: Array, n: int, eigvals, basis=None) -> Array:
    r"""X (n, D) with i.i.d. rows :math:`x \sim N(0, U\,\mathrm{diag}(\lambda)\,U^\top)`.

    ``basis=None`` is axis-aligned (U = I, D = d): :math:`X = G\,\mathrm{diag}(\sqrt\lambda)` computed
    as ``G * sqrt(λ)[None, :]``, no identity is materialised. Otherwise ``basis`` (D, d) has
    orthonormal columns :math:`u_k` (usually D = d) and :math:`X = G\,\mathrm{diag}(\sqrt\lambda)\,U^\top`.
    For a given key the Gaussian G is the same in both paths, so ``basis=jnp.eye(d)`` reproduces
    ``basis=None``.
    """
    fn = "gaussian_design"
    n = _int(fn, "n", n)
    lam = _eigvals(fn, eigvals)
    d = lam.shape[0]
    return _gaussian_design(key, n, lam, _basis(fn, basis, d))


@partial(jax.jit, static_argnums=1)
def _gaussian_design(key, n, lam, U):
    Z = jax.random.normal(key, (n, lam.shape[0]), lam.dtype) * jnp.sqrt(lam)[None, :]
    return Z if U is None else Z @ U.T


class Design(NamedTuple):
    """A train/test pair from one population :math:`N(0, U\\,\\mathrm{diag}(\\lambda)\\,U^\\top)`:
    ``X`` (n, d), ``X_test`` (n_test, d), population ``eigvals`` (d,) and ``basis`` (d, d) whose
    column k is :math:`u_k` (None = axis-aligned, :math:`u_k = e_k`)."""

    X: Array
    X_test: Array
    eigvals: Array
    basis: Array | None


def make_design(key: Array, n: int, d: int, eigvals, n_test: int = 1000, basis="random") -> Design:
    """Train (n, d) and test (n_test, d) sets from the same Gaussian population.

    ``basis``: ``'random'`` (Haar orthogonal, drawn from ``key``), ``'axis'`` (stored as None), or an
    explicit (d, d) orthogonal array. ``eigvals`` must have length d (see :func:`make_spectrum`).
    Keys: the basis, train and test draws use independent subkeys of ``key``.
    """
    fn = "make_design"
    n = _int(fn, "n", n)
    d = _int(fn, "d", d)
    n_test = _int(fn, "n_test", n_test, lo=0)
    lam = _eigvals(fn, eigvals)
    if lam.shape[0] != d:
        raise InputError(f"{fn}: eigvals must have length d={d}; got {lam.shape[0]}")
    k_basis, k_train, k_test = jax.random.split(key, 3)
    U: Array | None
    if isinstance(basis, str):
        if basis == "random":
            U = random_orthogonal(k_basis, d)
        elif basis == "axis":
            U = None
        else:
            raise InputError(f"{fn}: basis must be 'random', 'axis' or a (d, d) array; got {basis!r}")
    else:
        if basis is None:
            raise InputError(f"{fn}: basis must be 'random', 'axis' or a (d, d) array; got None")
        explicit = _matrix(fn, "basis", basis)
        if explicit.shape != (d, d):
            raise InputError(f"{fn}: an explicit basis must have shape ({d}, {d}); got {explicit.shape}")
        U = explicit
    X = gaussian_design(k_train, n, lam, U)
    X_test = gaussian_design(k_test, n_test, lam, U) if n_test > 0 else jnp.zeros((0, d), default_float())
    return Design(X, X_test, lam, U)
