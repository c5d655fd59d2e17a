r"""Mobahi, Farajtabar & Bartlett (NeurIPS 2020): self-distillation rounds in a kernel space (docs/theory.md §3).

K training points, :math:`G[j,k] = \tfrac1K g(x_j,x_k)` (PSD), :math:`g_x[k] = \tfrac1K g(x,x_k)`.
One round fits :math:`f(x) = g_x^\top(cI+G)^{-1}y` under :math:`\tfrac1K\sum_k(f(x_k)-y_k)^2 \le \varepsilon`;
train predictions :math:`G(cI+G)^{-1}y`. With :math:`G = V\,\mathrm{diag}(d)\,V^\top` (columns of
``basis`` = eigenvectors, ``eigvals`` d descending) and :math:`z = V^\top y`, c solves

.. math::  h(c) = \tfrac1K\sum_k \Big(\frac{c\,z_k}{c+d_k}\Big)^2 = \varepsilon ,

increasing in c from :math:`h(0)` to :math:`\|y\|^2/K`: a root exists iff :math:`\|y\|^2/K > \varepsilon`,
otherwise the solution is :math:`f\equiv 0` (**collapse**). Rounds: :math:`y_0 = y`,
:math:`y_t = G(c_tI+G)^{-1}y_{t-1} = V B_t V^\top y_0`, :math:`B_t[k,k] = \prod_{i\le t} d_k/(d_k+c_i)`,
:math:`f_t(x) = g_x^\top(c_tI+G)^{-1}y_{t-1}`.

* :func:`self_distill_rounds` — ε mode (per-round :math:`c_t`, host root finding with
  :func:`scipy.optimize.brentq`, float64 numpy) or λ mode (fixed :math:`c_t = \lambda`, pure jax).
* :func:`ridge_self_distill` — λ mode (Born-again ridge), factor :math:`(d_k/(d_k+\lambda))^t`; jit-friendly.
* :func:`collapse_round_bounds` — :math:`\|y_0\|/\sqrt{K\varepsilon} - 1 \le T_c \le \|y_0\|^2/(K\varepsilon)`.
* :func:`kernel_predict`, :func:`self_distill_predict` — :math:`f_t` on test points.
* :func:`rbf_gram` — the Gaussian kernel matrix (without the 1/K).

Eigen-directions with :math:`d_k = 0` get factor 0 (they are never fitted); with :math:`c = 0` too
(an infeasible constraint, see :func:`solve_round_c`) the factor is defined as 0, never 0/0.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike
from scipy.optimize import brentq

from linkd.closed_form import _checks as checks
from linkd.errors import InputError

Array = jnp.ndarray

__all__ = [
    "SelfDistillResult",
    "CollapseBounds",
    "self_distill_rounds",
    "ridge_self_distill",
    "solve_round_c",
    "collapse_round_bounds",
    "kernel_predict",
    "self_distill_predict",
    "rbf_gram",
]


class SelfDistillResult(NamedTuple):
    """Result of R self-distillation rounds.

    Attributes:
      y: (R+1, K) train targets :math:`y_0, \\dots, y_R` (row 0 is the input y). Rows after a
        collapse are exactly 0 (the round's solution is :math:`f\\equiv 0`).
      c: (R,) regularisation :math:`c_t` of rounds 1..R (``inf`` for rounds at/after collapse).
      B: (R, K) diagonal factors :math:`B_t[k,k]` in the eigenbasis (0 after collapse).
      eigvals: (K,) eigenvalues d of G, descending (tiny negative round-off clipped to 0).
      basis: (K, K) orthonormal eigenvectors of G (column k ↔ ``eigvals[k]``).
      collapsed_at: :math:`T_c`, the first t with :math:`\\|y_t\\|^2/K \\le \\varepsilon` (round
        t+1 would return f ≡ 0); -1 if no collapse within R rounds (always -1 in λ mode).
    """

    y: Array
    c: Array
    B: Array
    eigvals: Array
    basis: Array
    collapsed_at: int


class CollapseBounds(NamedTuple):
    """Bounds on the collapse round :math:`T_c` (docs/theory.md §3.2)."""

    lower: float
    upper: float


def _check_gram(G, fn: str) -> Array:
    G = jnp.asarray(G)
    if G.ndim != 2 or G.shape[0] != G.shape[1]:
        raise InputError(f"{fn}: G must be a square (K, K) Gram matrix; got shape {G.shape}")
    return G


def _check_y(y, K: int, fn: str, name: str = "y") -> Array:
    y = jnp.asarray(y)
    if y.shape != (K,):
        raise InputError(f"{fn}: {name} must have shape (K,) = ({K},); got shape {y.shape}")
    return y


def _check_rounds(rounds, fn: str) -> int:
    if not isinstance(rounds, (int, np.integer)) or isinstance(rounds, bool) or rounds < 0:
        raise InputError(f"{fn}: rounds must be an integer >= 0; got {rounds!r}")
    return int(rounds)


def _eigh_desc(G: Array):
    """Eigenpairs of the symmetrised G, descending, negative round-off clipped to 0."""
    d, V = jnp.linalg.eigh(0.5 * (G + G.T))
    d, V = d[::-1], V[:, ::-1]
    return jnp.maximum(d, 0.0), V


def _ratio(d, c):
    """d/(d+c) with 0 where d + c = 0 (no 0/0)."""
    s = d + c
    return jnp.where(s > 0, d / jnp.where(s > 0, s, 1.0), 0.0)


def ridge_self_distill(G: Array, y: Array, lam: float | Array, rounds: int) -> SelfDistillResult:
    r"""Born-again ridge: :math:`y_t = (G(G+\lambda I)^{-1})^t y_0`, :math:`B_t = (d/(d+\lambda))^t`.

    ``lam`` ≥ 0: a scalar (the same λ every round) or an array of shape (rounds,) (λ_t per round).
    Pure jax (jit with ``rounds`` static). For a linear model with features X, :math:`G = XX^\top/n`
    and the ridge weight is :math:`(X^\top X + n\lambda I)^{-1}X^\top y`.
    """
    G = _check_gram(G, "ridge_self_distill")
    K = G.shape[0]
    y = _check_y(y, K, "ridge_self_distill")
    rounds = _check_rounds(rounds, "ridge_self_distill")
    lam = jnp.asarray(lam, dtype=G.dtype)
    if lam.ndim == 0:
        lam = jnp.full((rounds,), lam)
    if lam.shape != (rounds,):
        raise InputError(f"ridge_self_distill: lam must be a scalar or have shape (rounds,) = ({rounds},); got {lam.shape}")
    try:
        bad = bool(jnp.any(lam < 0))
    except Exception:  # traced under jit: cannot check on the host
        bad = False
    if bad:
        raise InputError(f"ridge_self_distill: lam must be >= 0; got {lam}")
    ys, lams, B, d, V = _ridge_rounds(G, y, lam)
    return SelfDistillResult(ys, lams, B, d, V, -1)


@jax.jit
def _ridge_rounds(G: Array, y: Array, lam: Array):
    """(y_0..y_R, λ_t, B_t, d, V) of the Born-again ridge rounds, one compiled program."""
    d, V = _eigh_desc(G)
    A = _ratio(d[None, :], lam[:, None])  # (R, K) per-round factor
    B = jnp.cumprod(A, axis=0)
    z0 = V.T @ y
    ys = jnp.concatenate([y[None, :], (B * z0[None, :]) @ V.T], axis=0)
    return ys, lam, B, d, V


def _h(c: float, z2: np.ndarray, d: np.ndarray, eps: float) -> float:
    """h(c) − ε with h(c) = mean((c z/(c+d))²); at c = 0 only the null directions count."""
    if c == 0.0:
        return float(np.mean(np.where(d > 0, 0.0, z2)) - eps)
    r = c / (c + d)
    return float(np.mean(r * r * z2) - eps)


def solve_round_c(eigvals, z, eps: float) -> float:
    r"""The root c > 0 of :math:`\tfrac1K\sum_k (c z_k/(c+d_k))^2 = \varepsilon` (host, brentq,
    relative accuracy ~1e-15).

    Returns ``inf`` if :math:`\|z\|^2/K \le \varepsilon` (collapse: f ≡ 0) and 0 if even c → 0
    leaves a residual above ε (the part of y in the null space of G has mean square ≥ ε; the
    round then interpolates y on the range of G).
    """
    d = checks.eigvals("solve_round_c", eigvals, xp=np)
    z2 = checks.coeffs("solve_round_c", "z", z, d.shape[0], xp=np, ndim=(1,)) ** 2
    eps = checks.scalar("solve_round_c", "eps", eps)
    if np.mean(z2) <= eps:
        return float("inf")
    if _h(0.0, z2, d, eps) >= 0.0:
        return 0.0
    hi = max(float(np.max(d)), 1e-300)
    for _ in range(2100):
        if _h(hi, z2, d, eps) > 0.0:
            break
        hi *= 2.0
    else:  # pragma: no cover - h(∞) = mean(z²) − ε > 0, so the loop always breaks
        raise RuntimeError("solve_round_c: could not bracket the root")
    return float(brentq(_h, 0.0, hi, args=(z2, d, eps), xtol=1e-300, rtol=4 * np.finfo(float).eps, maxiter=500))


def self_distill_rounds(
    G: Array, y: Array, eps: float | None = None, lam: float | Array | None = None, rounds: int = 10
) -> SelfDistillResult:
    r"""R rounds of self-distillation, :math:`y_t = G(c_tI+G)^{-1}y_{t-1}` (docs/theory.md §3.2).

    Exactly one of:

    * ``eps`` > 0 (Mobahi's constraint): each :math:`c_t` solves
      :math:`\tfrac1K\sum_k(c\,z_k/(c+d_k))^2 = \varepsilon`, :math:`z = V^\top y_{t-1}`
      (:func:`solve_round_c`, scipy brentq on the host, float64 numpy — not jittable). Rounds stop at
      collapse: once :math:`\|y_t\|^2/K \le \varepsilon` (``collapsed_at = t``), later rows of ``y``
      and ``B`` are 0 and later ``c`` are ``inf``. Shapes stay fixed at ``rounds``.
    * ``lam`` ≥ 0 (fixed ridge, Born-again): :func:`ridge_self_distill`, factor :math:`(d/(d+\lambda))^t`.

    ``G`` is the (K, K) Gram matrix *including* the 1/K (its scale does not change y_t or
    :math:`T_c`: c scales with it). Returns :class:`SelfDistillResult`.
    """
    if (eps is None) == (lam is None):
        raise InputError(f"self_distill_rounds: eps/lam must be exactly one of eps (> 0, constraint mode) or lam (>= 0, fixed ridge mode); got eps={eps!r}, lam={lam!r}")
    G = _check_gram(G, "self_distill_rounds")
    K = G.shape[0]
    y = _check_y(y, K, "self_distill_rounds")
    rounds = _check_rounds(rounds, "self_distill_rounds")
    if lam is not None:
        return ridge_self_distill(G, y, lam, rounds)
    assert eps is not None  # exactly one of eps / lam, checked above
    eps = float(eps)
    if not (eps > 0 and np.isfinite(eps)):
        raise InputError(f"self_distill_rounds: eps must be a finite number > 0; got {eps!r}")
    dtype = G.dtype
    Gn = np.asarray(G, dtype=np.float64)
    d, V = np.linalg.eigh(0.5 * (Gn + Gn.T))
    d, V = np.maximum(d[::-1], 0.0), V[:, ::-1]
    z0 = V.T @ np.asarray(y, dtype=np.float64)
    B = np.zeros((rounds, K))
    cs = np.full(rounds, np.inf)
    ys = np.zeros((rounds + 1, K))
    ys[0] = np.asarray(y, dtype=np.float64)
    b = np.ones(K)
    collapsed_at = -1
    for t in range(rounds + 1):
        z = b * z0
        if np.mean(z * z) <= eps:
            collapsed_at = t
            break
        if t == rounds:
            break
        c = solve_round_c(d, z, eps)
        s = d + c
        b = b * np.where(s > 0, d / np.where(s > 0, s, 1.0), 0.0)
        cs[t], B[t] = c, b
        ys[t + 1] = V @ (b * z0)
    out = lambda a: jnp.asarray(a, dtype=dtype)  # noqa: E731
    return SelfDistillResult(out(ys), out(cs), out(B), out(d), out(V), collapsed_at)


def collapse_round_bounds(y0: ArrayLike, K: int, eps: float) -> CollapseBounds:
    r"""Bounds on the collapse round :math:`T_c` (first t with :math:`\|y_t\|^2/K \le\varepsilon`):

    .. math::  \frac{\|y_0\|}{\sqrt{K\varepsilon}} - 1 \;\le\; T_c \;\le\; \frac{\|y_0\|^2}{K\varepsilon}.

    Derivation (docs/theory.md §3.2, [D]): every round moves y by exactly :math:`\sqrt{K\varepsilon}` and
    :math:`\langle y_{t-1}, y_{t-1}-y_t\rangle \ge K\varepsilon`, so
    :math:`\|y_0\| - t\sqrt{K\varepsilon} \le \|y_t\|` and :math:`\|y_t\|^2 \le \|y_0\|^2 - tK\varepsilon`.
    (The second gives the strict :math:`T_c < \|y_0\|^2/(K\varepsilon)`; the sharper-looking
    :math:`T_c \le \|y_0\|^2/(K\varepsilon) - 1` is false: K = 1 with ratio 1.5 collapses at T_c = 1.
    The published bound, in terms of the spectrum, was not retrieved.)
    ``y0``: the (K,) targets, or a scalar taken as :math:`\|y_0\|`.
    """
    if not isinstance(K, (int, np.integer)) or K < 1:
        raise InputError(f"collapse_round_bounds: K must be an integer >= 1; got {K!r}")
    eps = float(eps)
    if not eps > 0:
        raise InputError(f"collapse_round_bounds: eps must be > 0; got {eps!r}")
    y0 = np.asarray(y0, dtype=np.float64)
    if y0.ndim == 0:
        norm = float(y0)
        if norm < 0:
            raise InputError(f"collapse_round_bounds: y0 as a scalar is the norm ||y0|| and must be >= 0; got {norm}")
    elif y0.shape == (K,):
        norm = float(np.linalg.norm(y0))
    else:
        raise InputError(f"collapse_round_bounds: y0 must have shape (K,) = ({K},) or be a scalar norm; got shape {y0.shape}")
    ratio = norm * norm / (K * eps)
    return CollapseBounds(float(np.sqrt(ratio) - 1.0), float(ratio))


def kernel_predict(g_test: Array, G: Array, y_prev: Array, c: float | Array) -> Array:
    r"""One round's function on test points, :math:`f(x) = g_x^\top(cI+G)^{-1}y_{\text{prev}}`.

    ``g_test`` (m, K) holds :math:`g_x[k] = \tfrac1K g(x, x_k)` (the same scaling as G). ``c = inf``
    gives f ≡ 0 (collapse); c + d_k = 0 directions are dropped (pseudo-inverse). Pure jax.
    """
    G = _check_gram(G, "kernel_predict")
    K = G.shape[0]
    g_test = jnp.asarray(g_test)
    if g_test.ndim != 2 or g_test.shape[1] != K:
        raise InputError(f"kernel_predict: g_test must have shape (m, K) with K = {K}; got {g_test.shape}")
    y_prev = _check_y(y_prev, K, "kernel_predict", "y_prev")
    if not checks.traced(c) and not bool(np.all(np.asarray(c) >= 0)):  # NaN fails too
        raise checks.refuse("kernel_predict", "c", c, "a regularisation c >= 0 (inf: collapse, f = 0)")
    d, V = _eigh_desc(G)
    c = jnp.asarray(c, dtype=G.dtype)
    s = c + d
    inv = jnp.where(s > 0, 1.0 / jnp.where(s > 0, s, 1.0), 0.0)
    return g_test @ (V @ (inv * (V.T @ y_prev)))


def self_distill_predict(g_test: Array, result: SelfDistillResult) -> Array:
    r""":math:`f_t(x) = g_x^\top(c_tI+G)^{-1}y_{t-1}` for t = 1..R on test points: shape (R, m).

    Uses the eigenpairs stored in ``result``; rounds at/after collapse (c = inf) give 0.
    With ``g_test = G`` this returns ``result.y[1:]``.
    """
    if not isinstance(result, SelfDistillResult):
        raise checks.refuse("self_distill_predict", "result", type(result).__name__,
                            "a SelfDistillResult (from self_distill_rounds or ridge_self_distill)")
    V, d = result.basis, result.eigvals
    g_test = jnp.asarray(g_test)
    if g_test.ndim != 2 or g_test.shape[1] != d.shape[0]:
        raise InputError(f"self_distill_predict: g_test must have shape (m, K) with K = {d.shape[0]}; got {g_test.shape}")
    s = result.c[:, None] + d[None, :]  # (R, K)
    inv = jnp.where(s > 0, 1.0 / jnp.where(s > 0, s, 1.0), 0.0)
    coef = inv * (result.y[:-1] @ V)  # (R, K): (c_t I + G)^{-1} y_{t-1} in the eigenbasis
    return coef @ (g_test @ V).T  # (R, m)


def rbf_gram(x1: ArrayLike, x2: ArrayLike, lengthscale: float) -> Array:
    r"""Gaussian kernel matrix :math:`g(a,b) = \exp(-\|a-b\|^2/(2\ell^2))`, shape (n1, n2).

    ``x1``, ``x2``: (n,) (scalar inputs) or (n, p). No 1/K factor: Mobahi's
    :math:`G = ` ``rbf_gram(x, x, ℓ) / K`` and :math:`g_x = ` ``rbf_gram(x_test, x, ℓ) / K``.
    """
    a, b = jnp.asarray(x1), jnp.asarray(x2)
    a = a[:, None] if a.ndim == 1 else a
    b = b[:, None] if b.ndim == 1 else b
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise InputError(f"rbf_gram: x1, x2 must have shapes (n1,) / (n1, p) and (n2,) / (n2, p); got {a.shape}, {b.shape}")
    if not lengthscale > 0:
        raise InputError(f"rbf_gram: lengthscale must be > 0; got {lengthscale!r}")
    return _rbf(a, b, lengthscale)


@jax.jit
def _rbf(a: Array, b: Array, lengthscale) -> Array:
    diff = a[:, None, :] - b[None, :, :]
    return jnp.exp(-jnp.sum(diff * diff, axis=-1) / (2.0 * lengthscale * lengthscale))
