r"""Finite-time fidelity of a distilled linear student, from the spectrum (docs/theory.md §9.1–9.2).

MSE, plain GD from zero, :math:`\rho_k = 1-\eta\lambda_k` (λ from :math:`\hat\Sigma = X^\top X/n`,
eigenvectors :math:`v_k`, columns of V), :math:`c^*_k = v_k^\top X^\top y/(n\lambda_k)`. Teacher after
T steps :math:`a_k = (1-\rho_k^T)c^*_k`; student after t steps on :math:`\hat y = Xw_T`:
:math:`b_k = (1-\rho_k^t)a_k`; the unmatched part :math:`e_k = b_k - a_k = -\rho_k^t(1-\rho_k^T)c^*_k`.
Directions with :math:`\lambda_k = 0` never move: :math:`a_k = b_k = e_k = 0` for a trained teacher.
``T_teacher=None`` means a fixed teacher with coordinates :math:`a = c^*` in every direction (e.g.
:math:`w_*` whose logits are the targets; then :math:`e_k = -a_k` where :math:`\lambda_k = 0`).

* Train disagreement :math:`D_{train} = \frac1n\|Xw_S - Xw_T\|^2 = \sum_k\lambda_k e_k^2`.
* Test disagreement, :math:`x\sim N(\mu,\Sigma)`: :math:`D_{test} = e^\top Me + (m^\top e)^2`,
  :math:`M = V^\top\Sigma V`, :math:`m = V^\top\mu` (multi-output: summed over output columns).
* Label-noise average (:math:`y = Xw_* + \xi`, :math:`\xi\sim N(0,s^2I)`, X fixed):
  :math:`E[c^*_kc^*_l] = \beta_k\beta_l + \delta_{kl}s^2/(n\lambda_k)`, :math:`\beta = V^\top w_*`,
  :math:`E[D_{test}] = \sum_{kl}(M+mm^\top)_{kl}f_kf_lE[c^*_kc^*_l]`, :math:`f_k = -\rho_k^t(1-\rho_k^T)`.
* Sign agreement of two linear models a, b on :math:`x\sim N(\mu,\Sigma)` (coordinates in V):
  centred, Sheppard :math:`1-\arccos(\rho_\Sigma)/\pi`, :math:`\rho_\Sigma = a^\top Mb/\sqrt{a^\top Ma\,b^\top Mb}`;
  non-centred :math:`\Phi_2(h_a,h_b;\rho_\Sigma)+\Phi_2(-h_a,-h_b;\rho_\Sigma)`,
  :math:`h_a = m^\top a/\sqrt{a^\top Ma}`. The Euclidean angle is right only for :math:`\Sigma\propto I`.

Everything is host numpy (float64); time arguments may be arrays (leading output axes).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import special

__all__ = [
    "FidelityCoeffs",
    "fidelity_coeffs",
    "train_disagreement",
    "test_disagreement",
    "expected_test_disagreement",
    "sheppard_agreement",
    "bivariate_normal_cdf",
    "sigma_angle",
    "sign_agreement",
    "sign_agreement_curve",
]

_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(96)


def _f64(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def _decay(lam: np.ndarray, lr: float, t) -> np.ndarray:
    r""":math:`\rho_k^t`, shape ``t.shape + (d,)``; 1 where :math:`\lambda_k = 0` (no motion)."""
    t = _f64(t)
    rho = 1.0 - float(lr) * lam
    out = np.power(rho, t[..., None])
    return np.where(lam > 0, out, 1.0)


class FidelityCoeffs(NamedTuple):
    """Eigen-coordinates (in V) of the teacher ``a`` (d[, C]), the student ``b`` and the unmatched
    part ``e = b - a`` (t.shape + (d[, C]))."""

    a: np.ndarray
    b: np.ndarray
    e: np.ndarray


def fidelity_coeffs(eigvals, coeffs_star, lr, T_teacher, t) -> FidelityCoeffs:
    r""":math:`a_k = (1-\rho_k^T)c^*_k`, :math:`b_k(t) = (1-\rho_k^t)a_k`, :math:`e_k = -\rho_k^t a_k`.

    ``T_teacher=None``: a fixed teacher with coordinates :math:`a_k = c^*_k` in EVERY direction (e.g. a
    given :math:`w_*`, ``coeffs_star`` = :math:`V^\top w_*` in a full basis, whose logits :math:`Xw_*` are the
    targets); the student never moves along :math:`\lambda_k = 0`, so there :math:`e_k = -a_k`.
    ``coeffs_star`` (d,) or (d, C); ``t`` any shape (leading axes of ``b`` and ``e``)."""
    lam = _f64(eigvals)
    cs = _f64(coeffs_star)
    F = np.ones_like(lam) if T_teacher is None else 1.0 - _decay(lam, lr, T_teacher)
    a = (F[:, None] * cs) if cs.ndim == 2 else F * cs
    dec = _decay(lam, lr, t)
    if cs.ndim == 2:
        dec = dec[..., None]
    e = -dec * a
    return FidelityCoeffs(a, a + e, e)


def train_disagreement(eigvals, coeffs_star, lr, T_teacher, t) -> np.ndarray:
    r""":math:`D_{train}(t) = \frac1n\|X(w_S - w_T)\|^2 = \sum_k \lambda_k e_k(t)^2` (summed over outputs)."""
    lam = _f64(eigvals)
    e = fidelity_coeffs(lam, coeffs_star, lr, T_teacher, t).e
    e2 = np.sum(e * e, axis=-1) if _f64(coeffs_star).ndim == 2 else e * e  # multi-output: sum the columns
    return np.sum(lam * e2, axis=-1)


def _M_m(basis, cov, mean):
    V = _f64(basis)
    M = V.T @ _f64(cov) @ V
    m = np.zeros(V.shape[1]) if mean is None else V.T @ _f64(mean)
    return M, m


def test_disagreement(eigvals, basis, coeffs_star, lr, T_teacher, t, cov, mean=None) -> np.ndarray:
    r""":math:`D_{test}(t) = E_x[(x^\top(w_S - w_T))^2] = e^\top Me + (m^\top e)^2`, :math:`x\sim N(\mu,\Sigma)`,
    :math:`M = V^\top\Sigma V`, :math:`m = V^\top\mu` (multi-output: summed over output columns)."""
    M, m = _M_m(basis, cov, mean)
    e = fidelity_coeffs(eigvals, coeffs_star, lr, T_teacher, t).e
    if _f64(coeffs_star).ndim == 1:
        e = e[..., None]  # (..., d, 1)
    quad = np.einsum("...kc,kl,...lc->...", e, M, e)
    lin = np.einsum("k,...kc->...c", m, e)
    return quad + np.sum(lin * lin, axis=-1)


def expected_test_disagreement(eigvals, basis, beta, noise_std, n, lr, T_teacher, t, cov, mean=None) -> np.ndarray:
    r"""Label-noise average :math:`E_\xi[D_{test}(t)]` for :math:`y = Xw_* + \xi`, :math:`\xi\sim N(0, s^2I_n)`,
    X fixed: :math:`\sum_{kl}(M + mm^\top)_{kl}f_kf_l(\beta_k\beta_l + \delta_{kl}s^2/(n\lambda_k))`,
    :math:`f_k = -\rho_k^t(1-\rho_k^T)` (0 for :math:`\lambda_k = 0`), ``beta`` = :math:`V^\top w_*` (d,)."""
    lam = _f64(eigvals)
    M, m = _M_m(basis, cov, mean)
    Q = M + np.outer(m, m)
    pos = lam > 0
    f = fidelity_coeffs(lam, pos.astype(np.float64), lr, T_teacher, t).e  # −ρ^t(1−ρ^T) on λ > 0
    b = _f64(beta) * pos
    var = np.where(pos, float(noise_std) ** 2 / (int(n) * np.where(pos, lam, 1.0)), 0.0)
    fb = f * b
    return np.einsum("...k,kl,...l->...", fb, Q, fb) + np.sum(f * f * (np.diag(Q) * var), axis=-1)


def sheppard_agreement(rho) -> np.ndarray:
    r"""Centred Gaussian sign agreement :math:`1 - \arccos(\rho)/\pi` (Sheppard)."""
    return 1.0 - np.arccos(np.clip(_f64(rho), -1.0, 1.0)) / np.pi


def bivariate_normal_cdf(h, k, rho) -> np.ndarray:
    r""":math:`\Phi_2(h, k; \rho) = P(U\le h, V\le k)`, standard normals with correlation ρ, |ρ| < 1.

    Plackett's identity :math:`\Phi_2 = \Phi(h)\Phi(k) + \int_0^\rho\varphi_2(h,k;r)\,dr`, with
    :math:`r = \sin\theta` (smooth integrand) and 96-point Gauss–Legendre quadrature: exact to
    float64 round-off (tested against ``scipy.stats.multivariate_normal``). Broadcasts."""
    h, k, rho = np.broadcast_arrays(_f64(h), _f64(k), _f64(rho))
    top = np.arcsin(np.clip(rho, -1.0, 1.0))
    th = 0.5 * top[..., None] * (_GL_NODES + 1.0)
    s, c = np.sin(th), np.cos(th)
    hh, kk = h[..., None], k[..., None]
    integrand = np.exp(-(hh * hh - 2.0 * hh * kk * s + kk * kk) / (2.0 * c * c))
    integral = 0.5 * top * np.sum(_GL_WEIGHTS * integrand, axis=-1) / (2.0 * np.pi)
    return special.ndtr(h) * special.ndtr(k) + integral


def _sqrt_psd(M: np.ndarray) -> np.ndarray:
    w, Q = np.linalg.eigh(0.5 * (M + M.T))
    return (Q * np.sqrt(np.clip(w, 0.0, None))) @ Q.T


def sigma_angle(a, b, M) -> np.ndarray:
    r"""Angle between a and b in the M-metric, :math:`\arccos(a^\top Mb/\sqrt{a^\top Ma\,b^\top Mb})`, computed
    stably as :math:`2\,\mathrm{atan2}(\|\hat a-\hat b\|, \|\hat a+\hat b\|)` on the whitened unit vectors
    :math:`\hat a = M^{1/2}a/\|M^{1/2}a\|` (no arccos round-off near 0)."""
    R = _sqrt_psd(_f64(M))
    A, B = _f64(a) @ R, _f64(b) @ R
    A = A / np.linalg.norm(A, axis=-1, keepdims=True)
    B = B / np.linalg.norm(B, axis=-1, keepdims=True)
    return 2.0 * np.arctan2(np.linalg.norm(A - B, axis=-1), np.linalg.norm(A + B, axis=-1))


def sign_agreement(a, b, M, m=None) -> np.ndarray:
    r""":math:`P(\mathrm{sign}(a^\top z) = \mathrm{sign}(b^\top z))` for :math:`z\sim N(m, M)`.

    ``a``, ``b`` (..., d) coordinates in the basis where the input has covariance ``M`` and mean ``m``.
    Centred (``m`` None or 0): Sheppard :math:`1-\theta_\Sigma/\pi` (:func:`sigma_angle`); otherwise
    :math:`\Phi_2(h_a,h_b;\rho)+\Phi_2(-h_a,-h_b;\rho)`, :math:`\rho = \cos\theta_\Sigma`."""
    a, b, M = _f64(a), _f64(b), _f64(M)
    theta = sigma_angle(a, b, M)
    if m is None or not np.any(_f64(m)):
        return 1.0 - theta / np.pi
    m = _f64(m)
    aMa = np.einsum("...k,kl,...l->...", a, M, a)
    bMb = np.einsum("...k,kl,...l->...", b, M, b)
    ha, hb = (a @ m) / np.sqrt(aMa), (b @ m) / np.sqrt(bMb)
    rho = np.cos(theta)
    # P(a·z > 0, b·z > 0) = Φ2(h_a, h_b; ρ); the complementary quadrant Φ2(−h_a, −h_b; ρ)
    return bivariate_normal_cdf(ha, hb, rho) + bivariate_normal_cdf(-ha, -hb, rho)


def sign_agreement_curve(eigvals, basis, coeffs_star, lr, T_teacher, t, cov, mean=None) -> np.ndarray:
    r"""Teacher–student test sign agreement against student steps t (binary, scalar output):
    :func:`sign_agreement` of :math:`a` and :math:`b(t)` with :math:`M = V^\top\Sigma V`, :math:`m = V^\top\mu`.
    A student still at 0 (t = 0) has no sign: its agreement is returned as NaN."""
    M, m = _M_m(basis, cov, mean)
    fc = fidelity_coeffs(eigvals, coeffs_star, lr, T_teacher, t)
    a = np.broadcast_to(fc.a, fc.b.shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sign_agreement(a, fc.b, M, None if mean is None else m)
