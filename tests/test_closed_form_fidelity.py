"""Finite-time fidelity closed forms (docs/theory.md §9.1–9.2) against a direct float64 GD simulation
(a plain numpy loop, independent of linkd's engine) and exact/MC references."""
import numpy as np
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st

from linkd import closed_form as cf


def problem(seed, n, d, C=1, decay=1.0, noise=0.3):
    rng = np.random.default_rng(seed)
    lam = np.arange(1.0, d + 1.0) ** -decay
    Q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    X = (rng.standard_normal((n, d)) * np.sqrt(lam)) @ Q.T + 0.3 * Q[:, 0]
    W = rng.standard_normal((d,) if C == 1 else (d, C))
    y = X @ W + noise * rng.standard_normal((n,) if C == 1 else (n, C))
    return X, y, W, Q @ np.diag(lam) @ Q.T, 0.5 * Q[:, 1] - 0.2 * Q[:, 3]


def gd(X, y, lr, steps):
    """Plain GD on (1/2n)||Xw - y||^2 from 0; all iterates (steps + 1, d[, C])."""
    n = X.shape[0]
    w = np.zeros((X.shape[1],) + y.shape[1:])
    out = [w]
    for _ in range(steps):
        w = w - lr * X.T @ (X @ w - y) / n
        out.append(w)
    return np.stack(out)


def spectrum(X, y):
    n = X.shape[0]
    lam, V = np.linalg.eigh(X.T @ X / n)
    lam, V = lam[::-1], V[:, ::-1]
    lam = np.where(lam > 1e-12 * lam[0], lam, 0.0)
    c = V.T @ np.linalg.pinv(X) @ y
    return lam, V, c


def run(seed, n, d, C, T, t):
    X, y, W, Sigma, mu = problem(seed, n, d, C)
    lam, V, c = spectrum(X, y)
    lr = 0.9 / lam[0]
    wT = gd(X, y, lr, T)[-1]
    WS = gd(X, X @ wT, lr, t)
    return X, y, W, Sigma, mu, lam, V, c, lr, wT, WS


@settings(max_examples=6)
@given(seed=st.integers(0, 10_000), n=st.sampled_from([6, 15, 40]), d=st.sampled_from([5, 12, 20]),
       C=st.sampled_from([1, 3]), T=st.integers(1, 40), t=st.integers(1, 40))
def test_disagreement_matches_gd(seed, n, d, C, T, t):
    X, y, W, Sigma, mu, lam, V, c, lr, wT, WS = run(seed, n, d, C, T, t)
    steps = np.arange(t + 1)
    E = WS - wT[None]
    Et = E if C > 1 else E[..., None]
    d_train = np.mean(np.sum((np.einsum("nd,td...->tn...", X, Et)) ** 2, axis=-1), axis=1)
    Q = Sigma + np.outer(mu, mu)
    d_test = np.einsum("tic,ij,tjc->t", Et, Q, Et)
    p_train = cf.train_disagreement(lam, c, lr, T, steps)
    p_test = cf.test_disagreement(lam, V, c, lr, T, steps, cov=Sigma, mean=mu)
    scale = max(1.0, d_train.max(), d_test.max())
    assert np.max(np.abs(p_train - d_train)) / scale < 1e-10
    assert np.max(np.abs(p_test - d_test)) / scale < 1e-10
    fc = cf.fidelity_coeffs(lam, c, lr, T, steps)
    np.testing.assert_allclose(np.einsum("dk,tk...->td...", V, fc.b), WS, atol=1e-9 * max(1.0, np.abs(WS).max()))


def test_disagreement_limits_and_monotone():
    X, y, W, Sigma, mu, lam, V, c, lr, wT, WS = run(3, 30, 10, 1, 25, 5)
    t = np.arange(200)
    D = cf.train_disagreement(lam, c, lr, 25, t)
    assert np.all(np.diff(D) <= 1e-15)  # decreasing for eta lambda_max <= 1
    assert D[-1] < 1e-8 * D[0]  # the student converges to the teacher (both in the row space)
    assert cf.train_disagreement(lam, c, lr, None, 0) == pytest.approx(np.sum(lam * c * c), rel=1e-12)


def test_expected_disagreement_matches_noise_average():
    """Average of the exact D_test over 4000 label-noise draws = the closed form, within 3.5 SE."""
    rng = np.random.default_rng(5)
    n, d, s, T, t = 8, 12, 0.5, 10, 7
    X, _, w, Sigma, mu = problem(5, n, d)
    lam, V, _ = spectrum(X, X @ w)
    lr = 0.9 / lam[0]
    P = np.linalg.pinv(X)
    Fl = np.where(lam > 0, 1.0 - (1.0 - lr * lam) ** T, 0.0)
    R = 4000
    Y = (X @ w)[None] + s * rng.standard_normal((R, n))
    C = (V.T @ P @ Y.T).T  # c* per draw
    E = -np.where(lam > 0, (1.0 - lr * lam) ** t, 0.0) * Fl * C  # e in the eigenbasis (R, d)
    M, m = V.T @ Sigma @ V, V.T @ mu
    Dt = np.einsum("rk,kl,rl->r", E, M + np.outer(m, m), E)
    pred = cf.expected_test_disagreement(lam, V, V.T @ w, lr, T, t, noise_std=s, n=n, cov=Sigma, mean=mu)
    assert abs(Dt.mean() - pred) < 3.5 * Dt.std(ddof=1) / np.sqrt(R)
    assert cf.expected_test_disagreement(lam, V, V.T @ w, lr, T, t, noise_std=0.0, n=n, cov=Sigma, mean=mu) < pred  # noise adds


@settings(max_examples=8)
@given(h=st.floats(-3, 3), k=st.floats(-3, 3), rho=st.floats(-0.98, 0.98))
def test_bivariate_normal_cdf_matches_scipy(h, k, rho):
    ref = scipy.stats.multivariate_normal(mean=[0, 0], cov=[[1, rho], [rho, 1]]).cdf([h, k])
    assert cf.bivariate_normal_cdf(h, k, rho) == pytest.approx(ref, abs=2e-7)  # scipy's own accuracy ~1e-8


def test_bivariate_normal_cdf_exact_special_values():
    assert cf.bivariate_normal_cdf(0.0, 0.0, 0.3) == pytest.approx(0.25 + np.arcsin(0.3) / (2 * np.pi), abs=1e-15)
    assert cf.bivariate_normal_cdf(1.0, -0.5, 0.0) == pytest.approx(scipy.stats.norm.cdf(1) * scipy.stats.norm.cdf(-0.5),
                                                                    abs=1e-15)


def test_sign_agreement_mc_centred_and_not():
    rng = np.random.default_rng(7)
    d = 5
    G = rng.standard_normal((d, d))
    M = G @ G.T / d + 0.1 * np.eye(d)
    a, b = rng.standard_normal(d), rng.standard_normal(d)
    m = 0.7 * rng.standard_normal(d)
    Z = rng.multivariate_normal(np.zeros(d), M, size=400_000)
    for mean in (None, m):
        Zs = Z if mean is None else Z + mean
        mc = np.mean(np.sign(Zs @ a) == np.sign(Zs @ b))
        se = np.sqrt(mc * (1 - mc) / Z.shape[0])
        assert abs(cf.sign_agreement(a, b, M, mean=mean) - mc) < 3.5 * se
    euclid = 1.0 - np.arccos(a @ b / np.linalg.norm(a) / np.linalg.norm(b)) / np.pi
    assert cf.sign_agreement(a, b, np.eye(d)) == pytest.approx(euclid, abs=1e-12)


def test_sign_agreement_curve_endpoints():
    X, _, _, Sigma, mu, lam, V, c, lr, wT, _ = run(11, 40, 8, 1, 20, 3)
    A = cf.sign_agreement_curve(lam, V, c, lr, 20, np.array([1.0, 1e6]), cov=Sigma)
    assert A[-1] == pytest.approx(1.0, abs=1e-12) and A[0] < 1.0
    A_mu = cf.sign_agreement_curve(lam, V, c, lr, 20, np.array([5.0]), cov=Sigma, mean=mu)
    direct = cf.sign_agreement(wT, gd(X, X @ wT, lr, 5)[-1], Sigma, mean=mu)
    assert A_mu[0] == pytest.approx(direct, abs=1e-10)
