r"""Eigen-geometry of the empirical covariance :math:`\hat\Sigma = X^\top X / n`.

Notation (docs/theory.md): :math:`\hat\Sigma = \sum_k \lambda_k v_k v_k^\top` with
:math:`\lambda_1 \ge \lambda_2 \ge \dots`, coordinate :math:`c_k(w) = v_k^\top w`,
progress :math:`q_k = c_k / c_k^*`, projector onto the row space :math:`P = X^+ X`.

Directions with :math:`\lambda_k = 0` (rank deficiency, n < d) are exact zeros here: eigenvalues
below ``rank_tol`` are set to 0 so that closed forms keep those coordinates at their init.
"""
from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from linkd.errors import InputError

__all__ = [
    "Spectrum",
    "covariance",
    "default_rank_tol",
    "eigh_desc",
    "rank",
    "coefficients",
    "from_coefficients",
    "min_norm_solution",
    "min_norm_coeffs",
    "projector",
    "progress",
    "ModeStrengths",
    "mode_strengths",
]

Array = jnp.ndarray


class Spectrum(NamedTuple):
    """Eigen-decomposition of :math:`\\hat\\Sigma`: ``eigvals`` (d,) descending, ``basis`` (d, d)
    whose column k is :math:`v_k`."""

    eigvals: Array
    basis: Array


def covariance(X: Array) -> Array:
    r""":math:`\hat\Sigma = X^\top X / n`."""
    X = jnp.asarray(X)
    return X.T @ X / X.shape[0]


def default_rank_tol(X: Array) -> float:
    """Relative threshold under which an eigenvalue of Σ̂ counts as 0 (LAPACK rank convention)."""
    n, d = X.shape
    return float(max(n, d) * np.finfo(np.asarray(X).dtype).eps * 10)


def eigh_desc(X: Array, *, rank_tol: float | None = None) -> Spectrum:
    r"""Eigenpairs of :math:`\hat\Sigma = X^\top X/n`, sorted descending.

    Eigenvalues :math:`\lambda_k \le \text{rank\_tol}\cdot\lambda_1` are set to exactly 0 (the
    null space of X; rank ``r = rank X``), so ``(eigvals > 0).sum() == rank X``.
    Sign convention: each :math:`v_k` has its largest-magnitude entry positive (deterministic).
    """
    X = jnp.asarray(X)
    if X.ndim != 2:
        raise InputError(f"eigh_desc: X must be a 2-D array (n, d); got shape {X.shape}")
    tol = default_rank_tol(X) if rank_tol is None else rank_tol
    lam, V = jnp.linalg.eigh(covariance(X))
    lam, V = lam[::-1], V[:, ::-1]
    lam = jnp.where(lam > tol * jnp.maximum(lam[0], 0.0), lam, 0.0)
    idx = jnp.argmax(jnp.abs(V), axis=0)
    signs = jnp.sign(V[idx, jnp.arange(V.shape[1])])
    signs = jnp.where(signs == 0, 1.0, signs).astype(V.dtype)
    return Spectrum(lam, V * signs[None, :])


def rank(spectrum: Spectrum) -> int:
    """Number of nonzero eigenvalues (= rank X)."""
    return int(jnp.sum(spectrum.eigvals > 0))


def coefficients(w: Array, basis: Array) -> Array:
    r"""Coordinates :math:`c_k = v_k^\top w` (w of shape (d,) or (d, C); basis (d, m))."""
    return jnp.tensordot(basis, w, axes=([0], [0]))


def from_coefficients(c: Array, basis: Array) -> Array:
    r""":math:`w = \sum_k c_k v_k` (inverse of :func:`coefficients` for a full basis)."""
    return jnp.tensordot(basis, c, axes=([1], [0]))


def min_norm_solution(X: Array, y: Array) -> Array:
    r"""Minimum-norm least-squares solution :math:`X^+ y` (the GD limit from zero init)."""
    return jnp.linalg.pinv(jnp.asarray(X)) @ jnp.asarray(y)


def min_norm_coeffs(X: Array, y: Array, basis: Array) -> Array:
    r""":math:`c_k^* = v_k^\top X^+ y` (docs/theory.md §2.2)."""
    return coefficients(min_norm_solution(X, y), basis)


def projector(X: Array) -> Array:
    r"""Orthogonal projector onto the row space of X, :math:`P = X^+ X` (d × d)."""
    X = jnp.asarray(X)
    return jnp.linalg.pinv(X) @ X


def progress(c: Array, c_star: Array) -> Array:
    r"""Progress :math:`q_k = c_k / c_k^*`; 0 where :math:`c_k^* = 0` (no 0/0 NaN)."""
    c, c_star = jnp.asarray(c), jnp.asarray(c_star)
    safe = jnp.where(c_star == 0, 1.0, c_star)
    return jnp.where(c_star == 0, 0.0, c / safe)


class ModeStrengths(NamedTuple):
    """``strengths`` (..., r): :math:`u_k^\top W_e v_k`; ``off_mode`` (...): the largest |entry| of
    :math:`V^\top W_e^\top U` off that diagonal (0 for an aligned deep-linear run, docs/theory.md §7)."""

    strengths: Array
    off_mode: Array


def mode_strengths(coeffs: Array, U: Array) -> ModeStrengths:
    r"""Mode strengths from recorded coefficients ``coeffs`` = :math:`V^\top W_e^\top` ((..., d_b, m), as
    recorded by the engine with ``Data(basis=V)``) and output frame ``U`` (m, r): the diagonal of
    :math:`M = V^\top W_e^\top U` and its largest off-diagonal entry (per record)."""
    M = jnp.einsum("...im,mk->...ik", jnp.asarray(coeffs), jnp.asarray(U))
    r = M.shape[-1]
    diag = jnp.diagonal(M[..., :r, :], axis1=-2, axis2=-1)
    mask = jnp.zeros(M.shape[-2:], bool).at[jnp.arange(r), jnp.arange(r)].set(True)
    off = jnp.max(jnp.abs(jnp.where(jnp.broadcast_to(mask, M.shape), 0.0, M)), axis=(-2, -1))
    return ModeStrengths(diag, off)
