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

Host numpy float64 (whatever jax's x64 flag says); the filters come from :mod:`linkd.closed_form.decay`.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from linkd.closed_form import _checks as checks
from linkd.closed_form.decay import _gd

__all__ = [
    "ConfidenceLogits",
    "confidence_logits",
    "SlopeParts",
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


def confidence_logits(X, y, lr, T_teacher, t_student, *, X_test=None, lr_student=None) -> ConfidenceLogits:
    r"""Teacher (T GD steps on y from 0) and student (t steps on the teacher's train logits) logits
    from the SVD of X: train :math:`U(F\circ a)`, :math:`U(g\circ F\circ a)`; test
    :math:`\sum_k (x\cdot v_k/s_k)F_ka_k` and the same with :math:`g_kF_k`. Zero singular values
    (rank-deficient X) carry no motion and are dropped. ``lr_student`` (default ``lr``): the
    student's step, :math:`g_k = 1-(1-\eta_S\lambda_k)^t`."""
    fn = "confidence_logits"
    X = _f64(X)
    if X.ndim != 2 or X.shape[0] == 0 or not np.all(np.isfinite(X)):
        raise checks.refuse(fn, "X", f"shape {X.shape}", "a finite 2-d array (n, d), n >= 1")
    yv = _f64(y)
    if yv.shape != (X.shape[0],):
        raise checks.refuse(fn, "y", f"shape {yv.shape}", f"a vector of shape ({X.shape[0]},)")
    eta = checks.lr(fn, lr)
    eta_s = eta if lr_student is None else checks.lr(fn, lr_student, name="lr_student")
    T = checks.scalar(fn, "T_teacher", T_teacher, strict=False)
    t = checks.scalar(fn, "t_student", t_student, strict=False)
    U, s, V = _svd(X)
    lam = s * s / U.shape[0]
    a = U.T @ yv
    F = 1.0 - _gd(lam, eta, np.float64(T), np)
    g = 1.0 - _gd(lam, eta_s, np.float64(t), np)
    zT, zS = U @ (F * a), U @ (g * F * a)
    tT = tS = None
    if X_test is not None:
        Xt = _f64(X_test)
        if Xt.ndim != 2 or Xt.shape[1] != X.shape[1]:
            raise checks.refuse(fn, "X_test", f"shape {Xt.shape}", f"None or a 2-d array (m, {X.shape[1]})")
        P = (Xt @ V) / s
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


def _spectral_sums(a, phi, n: int) -> np.ndarray:
    r""":math:`S(\phi) = \frac1n\sum_k a_k^2\phi_k` (a = Uᵀy)."""
    return np.sum(a ** 2 * phi, axis=-1) / n


def _spectral(fn: str, a, F, g, n):
    """Validated a (r,), filters F and g (..., r) and n >= 1."""
    a, F, g = _f64(a), _f64(F), _f64(g)
    if a.ndim != 1:
        raise checks.refuse(fn, "a", f"shape {a.shape}", "a vector (r,) (the coordinates U^T y)")
    for name, v in (("F", F), ("g", g)):
        if v.ndim < 1 or v.shape[-1] != a.shape[0]:
            raise checks.refuse(fn, name, f"shape {v.shape}", f"an array of shape (..., {a.shape[0]})")
    return a, F, g, checks.integer(fn, "n", n, 1)


def ols_confidence_slope(a, F, g, n: int) -> SlopeParts:
    r"""Exact OLS slope of :math:`y_iz_{S,i}` on :math:`y_iz_{T,i}` (labels ±1, any n, d):
    :math:`(S(gF^2) - S(F)S(gF))/(S(F^2) - S(F)^2)`, :math:`S(\phi) = \frac1n\sum_k a_k^2\phi_k`."""
    a, F, g, n = _spectral("ols_confidence_slope", a, F, g, n)
    SF, SgF = _spectral_sums(a, F, n), _spectral_sums(a, g * F, n)
    cov = _spectral_sums(a, g * F * F, n) - SF * SgF
    var = _spectral_sums(a, F * F, n) - SF * SF
    return SlopeParts(cov / var, cov, var, SF, SgF)


def exaggeration_criterion(a, F, g, n: int) -> np.ndarray:
    r""":math:`S(F)S(h) - S(Fh)`, :math:`h = F(1-g)`: positive iff the OLS slope exceeds 1
    (it equals (slope − 1)·var)."""
    a, F, g, n = _spectral("exaggeration_criterion", a, F, g, n)
    h = F * (1.0 - g)
    return _spectral_sums(a, F, n) * _spectral_sums(a, h, n) - _spectral_sums(a, F * h, n)


def two_level_affine(F1, F2, g1, g2) -> tuple[np.ndarray, np.ndarray]:
    r"""Two-level spectrum (:math:`\lambda_1 > \lambda_2`, n ≤ d): :math:`y z_S = A\,y z_T + B` on every
    training point, :math:`A = (g_1F_1 - g_2F_2)/(F_1 - F_2)`, :math:`B = g_2F_2 - AF_2`."""
    F1, F2, g1, g2 = (_f64(v) for v in (F1, F2, g1, g2))
    if np.any(F1 == F2) or not np.all(np.isfinite(F1 - F2)):
        raise checks.refuse("two_level_affine", "F2", F2, "finite filters with F2 != F1 (two distinct levels)")
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
    fn = "gaussian_test_slope"
    wT, wS, C = _f64(w_T), _f64(w_S), _f64(cov)
    if wT.ndim != 1 or wS.shape != wT.shape:
        raise checks.refuse(fn, "w_S", f"shape {wS.shape}", f"the shape of w_T {wT.shape} (a vector)")
    if C.shape != (wT.shape[0], wT.shape[0]):
        raise checks.refuse(fn, "cov", f"shape {C.shape}", f"a covariance of shape ({wT.shape[0]}, {wT.shape[0]})")
    n_test = checks.integer(fn, "n_test", n_test, 1)
    tt, ss, st = wT @ C @ wT, wS @ C @ wS, wS @ C @ wT
    if not tt > 0:
        raise checks.refuse(fn, "w_T", wT, "a vector with w_T^T cov w_T > 0")
    beta = st / tt
    resid = max(float(ss - beta * beta * tt), 0.0)
    se = np.sqrt(resid) / (np.sqrt(n_test) * np.sqrt(1.0 - 2.0 / np.pi) * np.sqrt(tt))
    return GaussianSlope(np.float64(beta), np.float64(se))
