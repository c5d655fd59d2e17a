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

Everything is host numpy float64 (whatever jax's x64 flag says); the decays come from
:mod:`linkd.closed_form.decay`. Time arguments may be arrays (leading output axes); the test
distribution (``cov``, ``mean``) and the noise model are keyword-only.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import special

from linkd.closed_form import _checks as checks
from linkd.closed_form.decay import _gd

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


def _problem(fn: str, eigvals, coeffs_star, lr, T_teacher, t):
    """Validated λ (d,), c* (d,) or (d, C), η > 0, T (None or times >= 0), t (times >= 0)."""
    lam = checks.eigvals(fn, eigvals, xp=np)
    cs = checks.coeffs(fn, "coeffs_star", coeffs_star, lam.shape[0], xp=np)
    eta = checks.lr(fn, lr)
    T = None if T_teacher is None else _f64(checks.times(fn, "T_teacher", T_teacher, xp=np))
    if T is not None and T.ndim:
        raise checks.refuse(fn, "T_teacher", T, "None or one teacher time >= 0 (a scalar)")
    return lam, cs, eta, T, _f64(checks.times(fn, "t", t, xp=np))


def _distribution(fn: str, basis, cov, mean, d: int):
    """M = VᵀΣV and m = Vᵀμ for a basis (D, d), Σ (D, D) and μ (D,) or None."""
    V = _f64(basis)
    if V.ndim != 2 or V.shape[1] != d:
        raise checks.refuse(fn, "basis", f"shape {V.shape}", f"a 2-d array (D, {d}) whose columns are the eigenvectors")
    S = _f64(cov)
    if S.shape != (V.shape[0], V.shape[0]) or not np.all(np.isfinite(S)):
        raise checks.refuse(fn, "cov", f"shape {S.shape}", f"a finite covariance of shape ({V.shape[0]}, {V.shape[0]})")
    if mean is not None and (_f64(mean).shape != (V.shape[0],) or not np.all(np.isfinite(_f64(mean)))):
        raise checks.refuse(fn, "mean", f"shape {_f64(mean).shape}", f"None or a finite vector of shape ({V.shape[0]},)")
    M = V.T @ S @ V
    m = np.zeros(d) if mean is None else V.T @ _f64(mean)
    return M, m


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
    lam, cs, eta, T, t = _problem("fidelity_coeffs", eigvals, coeffs_star, lr, T_teacher, t)
    return _coeffs(lam, cs, eta, T, t)


def _coeffs(lam, cs, eta, T, t) -> FidelityCoeffs:
    F = np.ones_like(lam) if T is None else 1.0 - _gd(lam, eta, T, np)
    a = (F[:, None] * cs) if cs.ndim == 2 else F * cs
    dec = _gd(lam, eta, t, np)
    if cs.ndim == 2:
        dec = dec[..., None]
    e = -dec * a
    return FidelityCoeffs(a, a + e, e)


def train_disagreement(eigvals, coeffs_star, lr, T_teacher, t) -> np.ndarray:
    r""":math:`D_{train}(t) = \frac1n\|X(w_S - w_T)\|^2 = \sum_k \lambda_k e_k(t)^2` (summed over outputs)."""
    lam, cs, eta, T, t = _problem("train_disagreement", eigvals, coeffs_star, lr, T_teacher, t)
    e = _coeffs(lam, cs, eta, T, t).e
    e2 = np.sum(e * e, axis=-1) if cs.ndim == 2 else e * e  # multi-output: sum the columns
    return np.sum(lam * e2, axis=-1)


def test_disagreement(eigvals, basis, coeffs_star, lr, T_teacher, t, *, cov, mean=None) -> np.ndarray:
    r""":math:`D_{test}(t) = E_x[(x^\top(w_S - w_T))^2] = e^\top Me + (m^\top e)^2`, :math:`x\sim N(\mu,\Sigma)`,
    :math:`M = V^\top\Sigma V`, :math:`m = V^\top\mu` (multi-output: summed over output columns)."""
    fn = "test_disagreement"
    lam, cs, eta, T, t = _problem(fn, eigvals, coeffs_star, lr, T_teacher, t)
    M, m = _distribution(fn, basis, cov, mean, lam.shape[0])
    e = _coeffs(lam, cs, eta, T, t).e
    if cs.ndim == 1:
        e = e[..., None]  # (..., d, 1)
    quad = np.einsum("...kc,kl,...lc->...", e, M, e)
    lin = np.einsum("k,...kc->...c", m, e)
    return quad + np.sum(lin * lin, axis=-1)


def expected_test_disagreement(eigvals, basis, coeffs_star, lr, T_teacher, t, *, noise_std, n, cov,
                               mean=None) -> np.ndarray:
    r"""Label-noise average :math:`E_\xi[D_{test}(t)]` for :math:`y = Xw_* + \xi`, :math:`\xi\sim N(0, s^2I_n)`,
    X fixed: :math:`\sum_{kl}(M + mm^\top)_{kl}f_kf_l(\beta_k\beta_l + \delta_{kl}s^2/(n\lambda_k))`,
    :math:`f_k = -\rho_k^t(1-\rho_k^T)` (0 for :math:`\lambda_k = 0`); ``coeffs_star`` = the noise-free
    target coordinates :math:`\beta = V^\top w_*` (d,), ``noise_std`` = s, ``n`` = the number of rows of X."""
    fn = "expected_test_disagreement"
    lam, beta, eta, T, t = _problem(fn, eigvals, coeffs_star, lr, T_teacher, t)
    if beta.ndim != 1:
        raise checks.refuse(fn, "coeffs_star", f"shape {beta.shape}", f"a vector of shape ({lam.shape[0]},)")
    s = checks.scalar(fn, "noise_std", noise_std, strict=False)
    n = checks.integer(fn, "n", n, 1)
    M, m = _distribution(fn, basis, cov, mean, lam.shape[0])
    Q = M + np.outer(m, m)
    pos = lam > 0
    f = _coeffs(lam, pos.astype(np.float64), eta, T, t).e  # −ρ^t(1−ρ^T) on λ > 0
    b = beta * pos
    var = np.where(pos, s ** 2 / (n * np.where(pos, lam, 1.0)), 0.0)
    fb = f * b
    return np.einsum("...k,kl,...l->...", fb, Q, fb) + np.sum(f * f * (np.diag(Q) * var), axis=-1)


def _correlation(fn: str, rho) -> np.ndarray:
    r = _f64(rho)
    if not np.all(np.abs(r) <= 1.0 + 1e-12):  # NaN fails too
        raise checks.refuse(fn, "rho", r, "correlations in [-1, 1]")
    return np.clip(r, -1.0, 1.0)


def sheppard_agreement(rho) -> np.ndarray:
    r"""Centred Gaussian sign agreement :math:`1 - \arccos(\rho)/\pi` (Sheppard)."""
    return 1.0 - np.arccos(_correlation("sheppard_agreement", rho)) / np.pi


def bivariate_normal_cdf(h, k, rho) -> np.ndarray:
    r""":math:`\Phi_2(h, k; \rho) = P(U\le h, V\le k)`, standard normals with correlation ρ, |ρ| < 1.

    Plackett's identity :math:`\Phi_2 = \Phi(h)\Phi(k) + \int_0^\rho\varphi_2(h,k;r)\,dr`, with
    :math:`r = \sin\theta` (smooth integrand) and 96-point Gauss–Legendre quadrature: exact to
    float64 round-off (tested against ``scipy.stats.multivariate_normal``). Broadcasts."""
    rho = _correlation("bivariate_normal_cdf", rho)
    try:
        h, k, rho = np.broadcast_arrays(_f64(h), _f64(k), rho)
    except ValueError:
        raise checks.refuse("bivariate_normal_cdf", "k", f"shape {np.shape(k)}", f"a shape broadcastable with h {np.shape(h)}") from None
    top = np.arcsin(rho)
    th = 0.5 * top[..., None] * (_GL_NODES + 1.0)
    s, c = np.sin(th), np.cos(th)
    hh, kk = h[..., None], k[..., None]
    integrand = np.exp(-(hh * hh - 2.0 * hh * kk * s + kk * kk) / (2.0 * c * c))
    integral = 0.5 * top * np.sum(_GL_WEIGHTS * integrand, axis=-1) / (2.0 * np.pi)
    return special.ndtr(h) * special.ndtr(k) + integral


def _sqrt_psd(M: np.ndarray) -> np.ndarray:
    w, Q = np.linalg.eigh(0.5 * (M + M.T))
    return (Q * np.sqrt(np.clip(w, 0.0, None))) @ Q.T


def _pair(fn: str, a, b, M):
    """Validated a, b (..., d) and a metric M (d, d)."""
    a, b, M = _f64(a), _f64(b), _f64(M)
    if M.ndim != 2 or M.shape[0] != M.shape[1] or not np.all(np.isfinite(M)):
        raise checks.refuse(fn, "M", f"shape {M.shape}", "a finite square matrix (d, d)")
    for name, v in (("a", a), ("b", b)):
        if v.ndim < 1 or v.shape[-1] != M.shape[0]:
            raise checks.refuse(fn, name, f"shape {v.shape}", f"an array of shape (..., {M.shape[0]})")
    return a, b, M


def sigma_angle(a, b, M) -> np.ndarray:
    r"""Angle between a and b in the M-metric, :math:`\arccos(a^\top Mb/\sqrt{a^\top Ma\,b^\top Mb})`, computed
    stably as :math:`2\,\mathrm{atan2}(\|\hat a-\hat b\|, \|\hat a+\hat b\|)` on the whitened unit vectors
    :math:`\hat a = M^{1/2}a/\|M^{1/2}a\|` (no arccos round-off near 0)."""
    a, b, M = _pair("sigma_angle", a, b, M)
    return _angle(a, b, M)


def _angle(a, b, M) -> np.ndarray:
    R = _sqrt_psd(M)
    A, B = a @ R, b @ R
    A = A / np.linalg.norm(A, axis=-1, keepdims=True)
    B = B / np.linalg.norm(B, axis=-1, keepdims=True)
    return 2.0 * np.arctan2(np.linalg.norm(A - B, axis=-1), np.linalg.norm(A + B, axis=-1))


def sign_agreement(a, b, M, *, mean=None) -> np.ndarray:
    r""":math:`P(\mathrm{sign}(a^\top z) = \mathrm{sign}(b^\top z))` for :math:`z\sim N(m, M)`.

    ``a``, ``b`` (..., d) coordinates in the basis where the input has covariance ``M`` and mean
    ``mean`` (m). Centred (``mean`` None or 0): Sheppard :math:`1-\theta_\Sigma/\pi` (:func:`sigma_angle`);
    otherwise :math:`\Phi_2(h_a,h_b;\rho)+\Phi_2(-h_a,-h_b;\rho)`, :math:`\rho = \cos\theta_\Sigma`."""
    a, b, M = _pair("sign_agreement", a, b, M)
    theta = _angle(a, b, M)
    if mean is None or not np.any(_f64(mean)):
        return 1.0 - theta / np.pi
    m = _f64(mean)
    if m.shape != (M.shape[0],):
        raise checks.refuse("sign_agreement", "mean", f"shape {m.shape}", f"None or a vector of shape ({M.shape[0]},)")
    aMa = np.einsum("...k,kl,...l->...", a, M, a)
    bMb = np.einsum("...k,kl,...l->...", b, M, b)
    ha, hb = (a @ m) / np.sqrt(aMa), (b @ m) / np.sqrt(bMb)
    rho = np.clip(np.cos(theta), -1.0, 1.0)
    # P(a·z > 0, b·z > 0) = Φ2(h_a, h_b; ρ); the complementary quadrant Φ2(−h_a, −h_b; ρ)
    return bivariate_normal_cdf(ha, hb, rho) + bivariate_normal_cdf(-ha, -hb, rho)


def sign_agreement_curve(eigvals, basis, coeffs_star, lr, T_teacher, t, *, cov, mean=None) -> np.ndarray:
    r"""Teacher–student test sign agreement against student steps t (binary, scalar output):
    :func:`sign_agreement` of :math:`a` and :math:`b(t)` with :math:`M = V^\top\Sigma V`, :math:`m = V^\top\mu`.
    A student still at 0 (t = 0) has no sign: its agreement is returned as NaN."""
    fn = "sign_agreement_curve"
    lam, cs, eta, T, t = _problem(fn, eigvals, coeffs_star, lr, T_teacher, t)
    if cs.ndim != 1:
        raise checks.refuse(fn, "coeffs_star", f"shape {cs.shape}", f"a vector of shape ({lam.shape[0]},) (binary)")
    M, m = _distribution(fn, basis, cov, mean, lam.shape[0])
    fc = _coeffs(lam, cs, eta, T, t)
    a = np.broadcast_to(fc.a, fc.b.shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sign_agreement(a, fc.b, M, mean=None if mean is None else m)
