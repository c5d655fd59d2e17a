r"""Minibatch SGD on the squared loss: exact first and second moments (docs/theory.md §10).

Loss :math:`L(w) = \|Xw-y\|^2/2n`; each step draws B indices (with replacement, or B distinct ones
afresh each step) and moves :math:`w \leftarrow w - \eta g_B`, :math:`g_B = \frac1B\sum_{j} x_j r_j`,
:math:`r_i = x_i^\top w - y_i`. With :math:`\hat\Sigma = X^\top X/n`, :math:`b = X^\top y/n`,
:math:`A = I - \eta\hat\Sigma`, :math:`\bar g(m) = \hat\Sigma m - b`,
:math:`F(C) = \frac1n\sum_i (x_i^\top Cx_i)x_ix_i^\top` and :math:`s = \kappa/B`
(:func:`linkd.stability.sgd_noise_scale`), the mean :math:`m_t` and covariance :math:`C_t` obey

.. math::  m_{t+1} = Am_t + \eta b, \qquad
           C_{t+1} = AC_tA + \eta^2 s\,\big[F(C_t) + \tfrac1n\textstyle\sum_i r_i(m_t)^2x_ix_i^\top
           - \hat\Sigma C_t\hat\Sigma - \bar g(m_t)\bar g(m_t)^\top\big],

exactly (§10.1); :math:`S_t = C_t + m_tm_t^\top`. The recursion runs in the eigenbasis of
:math:`\hat\Sigma` at :math:`O(nd^2)` per step under ``jax.lax.scan`` (never a :math:`d^2\times d^2`
matrix), so coordinate k is :math:`c_k = v_k^\top w`: ``mean[:, k]`` = :math:`E\,c_k`, ``var[:, k]``
= :math:`\mathrm{Var}\,c_k`. The mean is exactly GD (§6.1). Further:

* :func:`sgd_noise_floor` — the stationary covariance :math:`C = \mathcal L(C) + \eta^2 s\,\frac1n\sum_i
  r_i^{*2}x_ix_i^\top` (§10.2), by conjugate gradients on :math:`I-\mathcal L` (self-adjoint);
* :func:`sgd_spectral_radius`, :func:`sgd_lr_limit` — :math:`\rho(\mathcal L)` and
  :math:`\eta_\max = 1/\rho(\mathcal T)` (§10.3; computed in :mod:`linkd.stability`);
* :func:`sgd_teacher_student` — a fixed teacher's outputs :math:`\hat y = Xw_T` vs the raw labels
  (§10.4): the first student's noise floor is 0, its variance decays as :math:`\rho(\mathcal L)^t`;
* :func:`sgd_expected_loss` — :math:`E\,L(w_t)` from the moments (exact);
  :func:`sgd_homogenized_risk` — the high-dimensional deterministic equivalent (homogenized SGD,
  Paquette et al.; §10.6), a renewal equation in the risk alone.
"""
from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from linkd import stability
from linkd.closed_form import _checks as checks
from linkd.errors import ConfigError

__all__ = [
    "SGDMoments",
    "NoiseFloor",
    "SGDDistillation",
    "sgd_moments",
    "sgd_noise_floor",
    "sgd_spectral_radius",
    "sgd_lr_limit",
    "sgd_teacher_student",
    "sgd_expected_loss",
    "sgd_homogenized_risk",
]

Array = jnp.ndarray
_HI = jax.lax.Precision.HIGHEST


class SGDMoments(NamedTuple):
    r"""Moments of :math:`w_t` in the eigenbasis of :math:`\hat\Sigma` at the recorded ``steps`` (R,):
    ``mean`` (R, d) :math:`E\,c_k`, ``var`` (R, d) :math:`\mathrm{Var}\,c_k`, ``cov`` (R, d, d)
    :math:`\mathrm{Cov}(c_k, c_l)` (None unless kept), ``final_cov`` (d, d) at the last step;
    ``eigvals`` (d,) and ``basis`` (d, d) (column k = :math:`v_k`) of :math:`\hat\Sigma`."""

    steps: np.ndarray
    mean: Array
    var: Array
    cov: Array | None
    final_cov: Array
    eigvals: Array
    basis: Array

    def second_moment(self, i: int = -1) -> Array:
        r""":math:`S = E[ww^\top] = V(C + mm^\top)V^\top` at recorded index ``i`` (needs ``cov`` unless i = -1)."""
        C = self.final_cov if i == -1 or self.cov is None else self.cov[i]
        m = self.mean[i]
        return self.basis @ (C + jnp.outer(m, m)) @ self.basis.T


class NoiseFloor(NamedTuple):
    r"""Stationary moments (docs/theory.md §10.2), coordinates in the eigenbasis of :math:`\hat\Sigma`:
    ``mean`` (d,) :math:`v_k^\top X^+y` (0 on the null space, where the init stays), ``cov`` (d, d)
    (0 on the null space), ``residual`` (n,) :math:`r^* = XX^+y - y`, ``radius``
    :math:`\rho(\mathcal L)`, CG ``iterations``; ``eigvals``, ``basis`` as in :class:`SGDMoments`."""

    mean: np.ndarray
    cov: np.ndarray
    residual: np.ndarray
    radius: float
    iterations: int
    eigvals: np.ndarray
    basis: np.ndarray

    @property
    def var(self) -> np.ndarray:
        """Per-direction stationary variance :math:`\\mathrm{Var}\\,c_k` (d,)."""
        return np.diag(self.cov).copy()


class SGDDistillation(NamedTuple):
    r"""A student under SGD on the raw labels (``raw``) and on a fixed teacher's outputs
    :math:`\hat y = Xw_T` (``kd``), their noise floors, and :math:`\rho(\mathcal L)` (``radius``): the
    ``kd`` covariance decays to 0 at that geometric rate, the ``raw`` one to ``raw_floor.cov``."""

    raw: SGDMoments
    kd: SGDMoments
    raw_floor: NoiseFloor
    kd_floor: NoiseFloor
    radius: float


def _problem(fn: str, X, y=None):
    """Validated X (n, d) and y (n,) as float arrays."""
    Xa = checks.floats(X)
    if Xa.ndim != 2 or Xa.shape[0] < 1 or Xa.shape[1] < 1:
        raise checks.refuse(fn, "X", f"shape {tuple(Xa.shape)}", "a 2-d array (n, d) with n, d >= 1")
    if y is None:
        return Xa, None
    ya = checks.floats(y).astype(Xa.dtype)
    if ya.shape != (Xa.shape[0],):
        raise checks.refuse(fn, "y", f"shape {tuple(ya.shape)}", f"shape ({Xa.shape[0]},) (one target per row of X)")
    return Xa, ya


def _scale(fn: str, n: int, batch_size, sampling: str) -> float:
    B = checks.integer(fn, "batch_size", batch_size, 1)
    try:
        return stability.sgd_noise_scale(n, B, sampling)
    except ConfigError as e:
        raise checks.refuse(fn, e.key, e.value, e.allowed) from None


def _recorded(steps: int, every: int) -> np.ndarray:
    s = np.arange(0, steps + 1, every)
    return s if s[-1] == steps else np.append(s, steps)


def _step(Xt, y, lam, lr, scale):
    """One step of the exact (m, C) recursion in eigen-coordinates (docs/theory.md §10.1)."""
    n = Xt.shape[0]
    bt = jnp.dot(y, Xt, precision=_HI) / n
    a = 1.0 - lr * lam

    def step(carry, _):
        m, C = carry
        g = lam * m - bt
        r = jnp.dot(Xt, m, precision=_HI) - y
        q = jnp.sum(jnp.dot(Xt, C, precision=_HI) * Xt, axis=1) + r * r
        F = jnp.dot(Xt.T * q[None, :], Xt, precision=_HI) / n
        C = a[:, None] * C * a[None, :] + (lr * lr * scale) * (F - lam[:, None] * C * lam[None, :] - jnp.outer(g, g))
        return (m - lr * g, 0.5 * (C + C.T)), None

    return step


@functools.partial(jax.jit, static_argnames=("steps", "every", "keep_cov"))
def _scan(Xt, y, lam, m0, C0, lr, scale, steps: int, every: int, keep_cov: bool):
    step = _step(Xt, y, lam, lr, scale)
    n_full, rem = divmod(steps, every)

    def rec(c):
        return c[0], jnp.diagonal(c[1]), (c[1] if keep_cov else None)

    def outer(c, _):
        c, _ = jax.lax.scan(step, c, None, length=every)
        return c, rec(c)

    c, rs = jax.lax.scan(outer, (m0, C0), None, length=n_full)
    out = [jnp.concatenate([x0[None], xs]) if x0 is not None else None for x0, xs in zip(rec((m0, C0)), rs)]
    if rem:
        c, _ = jax.lax.scan(step, c, None, length=rem)
        out = [jnp.concatenate([o, x[None]]) if x is not None and o is not None else None for o, x in zip(out, rec(c))]
    return out[0], out[1], out[2], c[1]


def sgd_moments(X, y, w0, lr, steps: int, *, batch_size: int, cov0=None, sampling: str = "with_replacement",
                record_every: int = 1, keep_cov: bool = True) -> SGDMoments:
    r"""Exact mean and covariance of minibatch SGD from :math:`w_0` (``None``: 0; a random init has mean
    ``w0`` and covariance ``cov0``, default 0) at steps 0, k, 2k, …, ``steps`` (docs/theory.md §10.1).

    ``sampling``: ``"with_replacement"`` (κ = 1) or ``"without_replacement"`` (B distinct indices
    each step, κ = (n−B)/(n−1)). Exact for any ``lr`` > 0 (past :func:`sgd_lr_limit` the moments grow).
    ``keep_cov=False`` records only the variances (R, d): use it for large d and many records.
    Cost :math:`O(nd^2)` per step; float dtype of X."""
    fn = "sgd_moments"
    Xa, ya = _problem(fn, X, y)
    n, d = Xa.shape
    eta = checks.lr(fn, lr)
    scale = _scale(fn, n, batch_size, sampling)
    T = checks.integer(fn, "steps", steps, 0)
    k = checks.integer(fn, "record_every", record_every, 1)
    w = jnp.zeros(d, Xa.dtype) if w0 is None else checks.coeffs(fn, "w0", w0, d, ndim=(1,)).astype(Xa.dtype)
    C0 = jnp.zeros((d, d), Xa.dtype) if cov0 is None else checks.floats(cov0).astype(Xa.dtype)
    if C0.shape != (d, d):
        raise checks.refuse(fn, "cov0", f"shape {tuple(C0.shape)}", f"a ({d}, {d}) covariance of w0")
    lam_h, V_h = _eig_host(Xa)
    V, lam = jnp.asarray(V_h, Xa.dtype), jnp.asarray(lam_h, Xa.dtype)
    with jax.default_matmul_precision("highest"):
        Xt, m0, Ct = Xa @ V, V.T @ w, V.T @ C0 @ V
    mean, var, cov, final = _scan(Xt, ya, lam, m0, Ct, jnp.asarray(eta, Xa.dtype), jnp.asarray(scale, Xa.dtype),
                                  T, k, bool(keep_cov))
    return SGDMoments(_recorded(T, k), mean, var, cov, final, lam, V)


def _eig_host(X) -> tuple[np.ndarray, np.ndarray]:
    """Eigenpairs of Σ̂ in float64 numpy with the conventions of :func:`linkd.spectral.eigh_desc`
    (descending, eigenvalues below the rank threshold set to 0, largest-magnitude entry of each
    eigenvector positive); host LAPACK, no per-shape compilation."""
    Xh = checks.host(X)
    lam, V = np.linalg.eigh(Xh.T @ Xh / Xh.shape[0])
    lam, V = lam[::-1].copy(), V[:, ::-1].copy()
    tol = max(Xh.shape) * np.finfo(np.float64).eps * 10  # spectral.default_rank_tol for float64
    lam[lam <= tol * max(lam[0], 0.0)] = 0.0
    signs = np.sign(V[np.argmax(np.abs(V), axis=0), np.arange(V.shape[1])])
    return lam, V * np.where(signs == 0, 1.0, signs)[None, :]


def _rowspace(X, y):
    """Host float64 row-space data in the eigenbasis of Σ̂: (lam (d,), V (d, d), r, Xr (n, r), w_inf coords)."""
    lam, V = _eig_host(X)
    r = int(np.sum(lam > 0))
    Xr = checks.host(X) @ V[:, :r]
    c_inf = np.zeros(lam.size)
    c_inf[:r] = (Xr.T @ checks.host(y)) / (Xr.shape[0] * lam[:r])
    return lam, V, r, Xr, c_inf


def _cg(apply, Q: np.ndarray, tol: float, max_iter: int) -> tuple[np.ndarray, int]:
    """Conjugate gradients for ``apply(C) = Q`` on symmetric matrices (Frobenius inner product)."""
    C = np.zeros_like(Q)
    R = Q.copy()
    P = R.copy()
    rr = float(np.sum(R * R))
    stop = (tol * float(np.linalg.norm(Q))) ** 2
    for it in range(1, max_iter + 1):
        if rr <= stop:
            return C, it - 1
        AP = apply(P)
        alpha = rr / float(np.sum(P * AP))
        C, R = C + alpha * P, R - alpha * AP
        rr_new = float(np.sum(R * R))
        P = R + (rr_new / rr) * P
        rr = rr_new
    return C, max_iter


def _refuse_unstable(fn: str, X, lr: float, B: int, sampling: str) -> float:
    """ρ(𝓛) at ``lr``; an InputError naming lr, the batch size and the limit when it is >= 1."""
    lo, hi, _ = stability.sgd_radius_bracket(X, lr, B, sampling, tol=1e-12, max_iter=20000)
    if lo >= 1.0:
        limit = stability.sgd_second_moment(checks.host(X), B, sampling, tol=1e-8)
        raise checks.refuse(fn, "lr", lr, f"a number in (0, {limit:.6g}), the SGD second-moment limit for "
                                          f"batch_size = {B} ({sampling}; docs/theory.md §10.3)")
    return 0.5 * (lo + hi)


def sgd_noise_floor(X, y, lr, *, batch_size: int, sampling: str = "with_replacement", tol: float = 1e-13,
                    max_iter: int = 100_000) -> NoiseFloor:
    r"""The stationary mean and covariance of SGD (docs/theory.md §10.2): :math:`m = X^+y` and
    :math:`(I - \mathcal L)C = \eta^2 s\,\frac1n\sum_i r_i^{*2}x_ix_i^\top` on the row space, solved
    by conjugate gradients (:math:`I-\mathcal L` is self-adjoint and positive definite when
    :math:`\rho(\mathcal L) < 1`; ``lr`` past :func:`sgd_lr_limit` is refused). Zero when the
    labels are interpolated (:math:`r^* = 0`, e.g. n ≤ d with full row rank or :math:`y = Xw_T`)."""
    fn = "sgd_noise_floor"
    Xa, ya = _problem(fn, X, y)
    eta = checks.lr(fn, lr)
    B = checks.integer(fn, "batch_size", batch_size, 1)
    s = _scale(fn, Xa.shape[0], B, sampling)
    rho = _refuse_unstable(fn, Xa, eta, B, sampling)
    lam, V, r, Xr, c_inf = _rowspace(Xa, ya)
    resid = Xr @ c_inf[:r] - checks.host(ya)
    Q = eta * eta * s * (Xr.T * resid**2) @ Xr / Xr.shape[0]
    Cr, it = _cg(lambda C: C - stability.sgd_second_moment_map(C, lam[:r], Xr, eta, s), Q, tol, max_iter)
    C = np.zeros((lam.size, lam.size))
    C[:r, :r] = 0.5 * (Cr + Cr.T)
    return NoiseFloor(c_inf, C, resid, rho, it, lam, V)


def sgd_spectral_radius(X, lr, *, batch_size: int, sampling: str = "with_replacement", tol: float = 1e-10) -> float:
    r""":math:`\rho(\mathcal L)` of the second-moment map at step ``lr`` on the row space of X: the
    covariance contracts as :math:`\rho^t` iff it is < 1 (docs/theory.md §10.3; power iteration on the
    map, bracketed by Collatz–Wielandt bounds, :func:`linkd.stability.sgd_radius`)."""
    fn = "sgd_spectral_radius"
    Xa, _ = _problem(fn, X)
    B = checks.integer(fn, "batch_size", batch_size, 1)
    _scale(fn, Xa.shape[0], B, sampling)
    return stability.sgd_radius(checks.host(Xa), checks.lr(fn, lr), B, sampling, tol=tol)


def sgd_lr_limit(X, *, batch_size: int, sampling: str = "with_replacement", tol: float = 1e-10) -> float:
    r"""The SGD second-moment limit :math:`\eta_\max = 1/\rho(\mathcal T)` (docs/theory.md §10.3):
    :math:`\rho(\mathcal L(\eta)) < 1` iff :math:`\eta < \eta_\max`; at most :math:`2/\lambda_\max`."""
    fn = "sgd_lr_limit"
    Xa, _ = _problem(fn, X)
    B = checks.integer(fn, "batch_size", batch_size, 1)
    _scale(fn, Xa.shape[0], B, sampling)
    return stability.sgd_second_moment(checks.host(Xa), B, sampling, tol=tol)


def sgd_teacher_student(X, y, w_teacher, w0, lr, steps: int, *, batch_size: int,
                        sampling: str = "with_replacement", record_every: int = 1,
                        keep_cov: bool = True) -> SGDDistillation:
    r"""Students under SGD from ``w0`` (``None``: 0) on the raw labels y and on a fixed teacher's outputs
    :math:`\hat y = Xw_T` (docs/theory.md §10.4): exact moments of both, both noise floors (the
    teacher-output one is 0: :math:`\hat y` is interpolated at :math:`Pw_T`) and :math:`\rho(\mathcal L)`,
    the geometric rate at which the distilled student's covariance vanishes."""
    fn = "sgd_teacher_student"
    Xa, ya = _problem(fn, X, y)
    wT = checks.coeffs(fn, "w_teacher", w_teacher, Xa.shape[1], ndim=(1,)).astype(Xa.dtype)
    with jax.default_matmul_precision("highest"):
        y_hat = Xa @ wT
    raw = sgd_moments(Xa, ya, w0, lr, steps, batch_size=batch_size, sampling=sampling, record_every=record_every,
                      keep_cov=keep_cov)
    kd = sgd_moments(Xa, y_hat, w0, lr, steps, batch_size=batch_size, sampling=sampling, record_every=record_every,
                     keep_cov=keep_cov)
    raw_floor = sgd_noise_floor(Xa, ya, lr, batch_size=batch_size, sampling=sampling)
    kd_floor = sgd_noise_floor(Xa, y_hat, lr, batch_size=batch_size, sampling=sampling)
    return SGDDistillation(raw, kd, raw_floor, kd_floor, raw_floor.radius)


def sgd_expected_loss(moments: SGDMoments, X, y) -> np.ndarray:
    r""":math:`E\,L(w_t) = \tfrac12\sum_k\lambda_k[\mathrm{Var}\,c_k + (E\,c_k - c_k^*)^2] + \|r^*\|^2/2n`
    at the recorded steps of ``moments`` (exact; :math:`c^* = V^\top X^+y`, docs/theory.md §10.6)."""
    fn = "sgd_expected_loss"
    Xa, ya = _problem(fn, X, y)
    lam, V = checks.host(moments.eigvals), checks.host(moments.basis)
    if V.shape[0] != Xa.shape[1]:
        raise checks.refuse(fn, "X", f"shape {tuple(Xa.shape)}", f"the design of the moments (d = {V.shape[0]})")
    Xt, yh = checks.host(Xa) @ V, checks.host(ya)
    pos = lam > 0
    c_star = np.zeros_like(lam)
    c_star[pos] = (Xt[:, pos].T @ yh) / (Xt.shape[0] * lam[pos])
    floor = float(np.sum((Xt[:, pos] @ c_star[pos] - yh) ** 2)) / (2 * Xt.shape[0])
    dev = checks.host(moments.mean) - c_star[None, :]
    return 0.5 * (checks.host(moments.var) + dev * dev) @ lam + floor


def sgd_homogenized_risk(X, y, w0, lr, steps: int, *, batch_size: int) -> np.ndarray:
    r"""Deterministic equivalent of :math:`E\,L(w_t)`, t = 0..``steps`` (homogenized SGD in discrete
    time, docs/theory.md §10.6): the gradient-noise covariance :math:`(1/B)[M(w) - \bar g\bar g^\top]`
    is replaced by :math:`(2L(w)/B)\hat\Sigma`, which closes the recursion on the risk alone,

    .. math::  \psi_t = L(w_t^{GD}) + \frac{\eta^2}{B}\sum_{s<t}\Big(\sum_k\lambda_k^2
               (1-\eta\lambda_k)^{2(t-1-s)}\Big)\psi_s ,

    computed in O(d) per step (the kernel is a sum of geometric sequences). Exact for no finite
    problem; the gap to :func:`sgd_expected_loss` shrinks as n, d grow with η ∝ 1/d."""
    fn = "sgd_homogenized_risk"
    Xa, ya = _problem(fn, X, y)
    eta = float(checks.lr(fn, lr))
    B = checks.integer(fn, "batch_size", batch_size, 1)
    T = checks.integer(fn, "steps", steps, 0)
    lam, V, r, Xr, c_inf = _rowspace(Xa, ya)
    n, d = Xa.shape
    w = np.zeros(d) if w0 is None else checks.host(checks.coeffs(fn, "w0", w0, d, ndim=(1,)))
    lr_, a2 = lam[:r], (1.0 - eta * lam[:r]) ** 2
    e0 = (V.T @ w)[:r] - c_inf[:r]
    floor = float(np.sum((Xr @ c_inf[:r] - checks.host(ya)) ** 2)) / (2 * n)
    psi, u = np.empty(T + 1), np.zeros(r)
    for t in range(T + 1):
        psi[t] = 0.5 * float(np.sum(lr_ * e0 * e0 * a2**t)) + floor + eta * eta / B * float(np.sum(lr_**2 * u))
        u = a2 * u + psi[t]
    return psi
