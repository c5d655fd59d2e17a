r"""Per-point confidence of a distilled linear student (Nagarajan et al.'s plot; docs/theory.md §9.3).

MSE teacher and student, plain GD from zero, labels :math:`y_i = \pm1`. SVD :math:`X = USV^\top`,
:math:`\lambda_k = s_k^2/n`, :math:`\rho_k = 1-\eta\lambda_k`, :math:`a = U^\top y`, teacher filter
:math:`F_k = 1-\rho_k^T`, student filter :math:`g_k = 1-\rho_k^t`. Then, per point,

* train: :math:`z_T = U(F\circ a)`, :math:`z_S = U(g\circ F\circ a)`;
* test: :math:`z(x) = \sum_k (x\cdot v_k/s_k)\,(F_k \text{ or } g_kF_k)\,a_k`.

Binary, teacher's top class, :math:`\varphi(p) = \ln\frac{p}{1-p}`: X = |z_T|, Y = sign(z_T) z_S.
The OLS slope of label-class confidence :math:`y_iz_{S,i}` on :math:`y_iz_{T,i}` is exact for any n, d:
with :math:`S(\phi) = \frac1n\sum_k a_k^2\phi_k`,

.. math:: \text{slope} = \frac{S(gF^2) - S(F)S(gF)}{S(F^2) - S(F)^2},\qquad
          \text{slope} > 1 \iff S(F)S(h) > S(Fh),\ h = F(1-g);

it equals the teacher-top-class slope when the teacher's train accuracy is 1. Two-level spectrum
(:math:`\lambda_1 > \lambda_2`, n ≤ d): :math:`yz_S = A\,yz_T + B` on every training point,
:math:`A = (g_1F_1 - g_2F_2)/(F_1 - F_2)`, :math:`B = g_2F_2 - AF_2`.
Test points :math:`x\sim N(0,\Sigma)`, any two linear models: :math:`E[\mathrm{sign}(z_T)z_S\,|\,|z_T|] = \beta|z_T|`,
:math:`\beta = w_S^\top\Sigma w_T/w_T^\top\Sigma w_T`: the test OLS slope tends to β (intercept 0), with
:math:`SE = \sqrt{w_S^\top\Sigma w_S - \beta^2 w_T^\top\Sigma w_T}/(\sqrt{n_{test}}\sqrt{1-2/\pi}\,\|w_T\|_\Sigma)`.

Host numpy, float64.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = [
    "ConfidenceLogits",
    "confidence_logits",
    "SlopeParts",
    "spectral_sums",
    "ols_confidence_slope",
    "exaggeration_criterion",
    "two_level_affine",
    "GaussianSlope",
    "gaussian_test_slope",
]


def _f64(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


class ConfidenceLogits(NamedTuple):
    """Per-point logits: ``train_T``, ``train_S`` (n,), ``test_T``, ``test_S`` (n_test,) (None
    without test inputs); the spectral ingredients ``a`` = Uᵀy, ``F``, ``g`` (rank r) and ``s``."""

    train_T: np.ndarray
    train_S: np.ndarray
    test_T: np.ndarray | None
    test_S: np.ndarray | None
    a: np.ndarray
    F: np.ndarray
    g: np.ndarray
    s: np.ndarray


def _svd(X, rank_tol: float = 1e-12):
    U, s, Vt = np.linalg.svd(_f64(X), full_matrices=False)
    r = int(np.sum(s > rank_tol * max(float(s[0]), 1e-300))) if s.size else 0
    return U[:, :r], s[:r], Vt[:r].T


def confidence_logits(X, y, lr, T_teacher, t_student, X_test=None, lr_student=None) -> ConfidenceLogits:
    r"""Teacher (T GD steps on y from 0) and student (t steps on the teacher's train logits) logits
    from the SVD of X: train :math:`U(F\circ a)`, :math:`U(g\circ F\circ a)`; test
    :math:`\sum_k (x\cdot v_k/s_k)F_ka_k` and the same with :math:`g_kF_k`. Zero singular values
    (rank-deficient X) carry no motion and are dropped. ``lr_student`` (default ``lr``): the
    student's step, :math:`g_k = 1-(1-\eta_S\lambda_k)^t`."""
    U, s, V = _svd(X)
    n = U.shape[0]
    lam = s * s / n
    rho = 1.0 - float(lr) * lam
    a = U.T @ _f64(y)
    F = 1.0 - rho ** float(T_teacher)
    rho_s = rho if lr_student is None else 1.0 - float(lr_student) * lam
    g = 1.0 - rho_s ** float(t_student)
    zT, zS = U @ (F * a), U @ (g * F * a)
    tT = tS = None
    if X_test is not None:
        P = (_f64(X_test) @ V) / s
        tT, tS = P @ (F * a), P @ (g * F * a)
    return ConfidenceLogits(zT, zS, tT, tS, a, F, g, s)


class SlopeParts(NamedTuple):
    """OLS of label-class confidence Y = y z_S on x = y z_T over the n training points:
    ``slope`` = ``cov``/``var``, ``cov`` = S(gF²) − S(F)S(gF), ``var`` = S(F²) − S(F)², and the means
    ``mean_x`` = S(F), ``mean_y`` = S(gF) (population normalisation 1/n)."""

    slope: np.ndarray
    cov: np.ndarray
    var: np.ndarray
    mean_x: np.ndarray
    mean_y: np.ndarray


def spectral_sums(a, phi, n: int) -> np.ndarray:
    r""":math:`S(\phi) = \frac1n\sum_k a_k^2\phi_k` (a = Uᵀy)."""
    return np.sum(_f64(a) ** 2 * _f64(phi), axis=-1) / int(n)


def ols_confidence_slope(a, F, g, n: int) -> SlopeParts:
    r"""Exact OLS slope of :math:`y_iz_{S,i}` on :math:`y_iz_{T,i}` (labels ±1, any n, d):
    :math:`(S(gF^2) - S(F)S(gF))/(S(F^2) - S(F)^2)`."""
    F, g = _f64(F), _f64(g)
    SF, SgF = spectral_sums(a, F, n), spectral_sums(a, g * F, n)
    cov = spectral_sums(a, g * F * F, n) - SF * SgF
    var = spectral_sums(a, F * F, n) - SF * SF
    return SlopeParts(cov / var, cov, var, SF, SgF)


def exaggeration_criterion(a, F, g, n: int) -> np.ndarray:
    r""":math:`S(F)S(h) - S(Fh)`, :math:`h = F(1-g)`: positive iff the OLS slope exceeds 1
    (it equals (slope − 1)·var)."""
    F, g = _f64(F), _f64(g)
    h = F * (1.0 - g)
    return spectral_sums(a, F, n) * spectral_sums(a, h, n) - spectral_sums(a, F * h, n)


def two_level_affine(F1, F2, g1, g2) -> tuple[np.ndarray, np.ndarray]:
    r"""Two-level spectrum (:math:`\lambda_1 > \lambda_2`, n ≤ d): :math:`y z_S = A\,y z_T + B` on every
    training point, :math:`A = (g_1F_1 - g_2F_2)/(F_1 - F_2)`, :math:`B = g_2F_2 - AF_2`."""
    F1, F2, g1, g2 = (_f64(v) for v in (F1, F2, g1, g2))
    A = (g1 * F1 - g2 * F2) / (F1 - F2)
    return A, g2 * F2 - A * F2


class GaussianSlope(NamedTuple):
    """Test-set limit ``beta`` of the OLS confidence slope and its standard error ``se`` at n_test points."""

    beta: float | np.ndarray
    se: float | np.ndarray


def gaussian_test_slope(w_T, w_S, cov, n_test: int) -> GaussianSlope:
    r""":math:`\beta = w_S^\top\Sigma w_T/w_T^\top\Sigma w_T` and
    :math:`SE = \sqrt{w_S^\top\Sigma w_S - \beta^2w_T^\top\Sigma w_T}/(\sqrt{n_{test}}\sqrt{1-2/\pi}\,\|w_T\|_\Sigma)`
    for x ~ N(0, Σ) (any two linear models)."""
    wT, wS, C = _f64(w_T), _f64(w_S), _f64(cov)
    tt, ss, st = wT @ C @ wT, wS @ C @ wS, wS @ C @ wT
    beta = st / tt
    resid = max(float(ss - beta * beta * tt), 0.0)
    se = np.sqrt(resid) / (np.sqrt(int(n_test)) * np.sqrt(1.0 - 2.0 / np.pi) * np.sqrt(tt))
    return GaussianSlope(np.float64(beta), np.float64(se))
