"""Per-point confidence closed forms (docs/theory.md §9.3) against a direct float64 GD simulation
(plain numpy loop) and an independent OLS; and metrics.confidence_scatter's orientation."""
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linkd import closed_form as cf
from linkd import metrics


def gd(X, y, lr, steps):
    n = X.shape[0]
    w = np.zeros(X.shape[1])
    for _ in range(steps):
        w = w - lr * X.T @ (X @ w - y) / n
    return w


def problem(seed, n, d, decay, flip=0.2):
    rng = np.random.default_rng(seed)
    lam = np.arange(1.0, d + 1.0) ** -decay
    X = rng.standard_normal((n, d)) * np.sqrt(lam)
    w = rng.standard_normal(d)
    y = np.sign(X @ w)
    y = np.where(rng.random(n) < flip, -y, y)
    Xt = rng.standard_normal((500, d)) * np.sqrt(lam)
    lr = 0.9 / np.linalg.eigvalsh(X.T @ X / n)[-1]
    return X, y, Xt, lr, lam


def ols(x, y):
    """Independent OLS of y on x: normal equations of [1, x]."""
    A = np.stack([np.ones_like(x), x], axis=1)
    return np.linalg.lstsq(A, y, rcond=None)[0][1]


@settings(max_examples=8)
@given(seed=st.integers(0, 10_000), nd=st.sampled_from([(20, 60), (40, 40), (80, 15)]),
       decay=st.floats(0.0, 2.0), T=st.integers(1, 50), t=st.integers(1, 50))
def test_logits_and_slope_match_gd(seed, nd, decay, T, t):
    n, d = nd
    X, y, Xt, lr, _ = problem(seed, n, d, decay)
    wT = gd(X, y, lr, T)
    wS = gd(X, X @ wT, lr, t)
    c = cf.confidence_logits(X, y, lr, T, t, X_test=Xt)
    scale = max(1.0, np.abs(X @ wT).max())
    for got, want in ((c.train_T, X @ wT), (c.train_S, X @ wS), (c.test_T, Xt @ wT), (c.test_S, Xt @ wS)):
        assert np.max(np.abs(got - want)) / scale < 1e-10
    x, Y = y * (X @ wT), y * (X @ wS)
    sp = cf.ols_confidence_slope(c.a, c.F, c.g, n)
    assert sp.cov == pytest.approx(np.mean((x - x.mean()) * (Y - Y.mean())), abs=1e-11)
    assert sp.var == pytest.approx(np.var(x), abs=1e-11)
    assert sp.slope == pytest.approx(ols(x, Y), rel=1e-8)
    crit = cf.exaggeration_criterion(c.a, c.F, c.g, n)
    assert crit == pytest.approx((sp.slope - 1.0) * sp.var, abs=1e-11)


def test_slope_above_one_for_n_less_than_d_and_student_length():
    """n < d, MSE: slope > 1 at t = T and falls toward 1 as the student trains longer (from t = T on)."""
    X, y, _, lr, _ = problem(1, 50, 200, 1.0)
    slopes = []
    for t in (9, 30, 90, 300, 3000):
        c = cf.confidence_logits(X, y, lr, 30, t)
        slopes.append(float(cf.ols_confidence_slope(c.a, c.F, c.g, 50).slope))
    assert slopes[1] > 1.1 and np.all(np.diff(slopes[1:]) < 0) and abs(slopes[-1] - 1.0) < 1e-3  # not monotone before t = T


def test_two_level_affine_law():
    rng = np.random.default_rng(2)
    n, d, T, t = 20, 35, 6, 15
    U, _ = np.linalg.qr(rng.standard_normal((n, n)))
    V, _ = np.linalg.qr(rng.standard_normal((d, d)))
    lam = np.r_[np.full(8, 1.0), np.full(12, 0.2)]
    X = U @ np.diag(np.sqrt(n * lam)) @ V[:, :n].T
    y = np.sign(rng.standard_normal(n))
    lr = 0.9
    wT = gd(X, y, lr, T)
    wS = gd(X, X @ wT, lr, t)
    F = [1 - (1 - lr * l) ** T for l in (1.0, 0.2)]
    g = [1 - (1 - lr * l) ** t for l in (1.0, 0.2)]
    A, B = cf.two_level_affine(F[0], F[1], g[0], g[1])
    np.testing.assert_allclose(y * (X @ wS), A * y * (X @ wT) + B, atol=1e-12)
    # top level fully fitted: A = 1 + F2(1-g2)/(1-F2) > 1, B = 1 - A
    A1, B1 = cf.two_level_affine(1.0, F[1], 1.0, g[1])
    assert A1 == pytest.approx(1 + F[1] * (1 - g[1]) / (1 - F[1]), rel=1e-12) and B1 == pytest.approx(1 - A1, abs=1e-12)


def test_gaussian_test_slope_and_se_calibrated():
    rng = np.random.default_rng(3)
    d, N = 6, 4000
    G = rng.standard_normal((d, d))
    Sigma = G @ G.T / d + 0.2 * np.eye(d)
    L = np.linalg.cholesky(Sigma)
    wT, wS = rng.standard_normal(d), rng.standard_normal(d)
    wS = 0.7 * wT + 0.3 * wS
    g = cf.gaussian_test_slope(wT, wS, Sigma, N)
    z = []
    for _ in range(60):
        Xt = rng.standard_normal((N, d)) @ L.T
        x, Y = np.abs(Xt @ wT), np.sign(Xt @ wT) * (Xt @ wS)
        z.append((ols(x, Y) - g.beta) / g.se)
    z = np.array(z)
    assert abs(z.mean()) < 0.5 and 0.7 < z.std() < 1.3


def test_confidence_scatter_fits_student_on_teacher():
    """metrics.confidence_scatter regresses the student's confidence on the teacher's (not the reverse)."""
    rng = np.random.default_rng(4)
    zT = rng.normal(0, 2, 3000)
    zS = 0.5 * zT + rng.normal(0, 3, 3000)
    cs = metrics.confidence_scatter(jnp.asarray(zT), jnp.asarray(zS), logits=True)
    x, Y = np.abs(zT), np.sign(zT) * zS
    assert float(cs.slope) == pytest.approx(ols(x, Y), rel=1e-10)
    assert abs(float(cs.slope) - ols(Y, x)) > 0.1  # the reverse regression is clearly different
    assert float(cs.intercept) == pytest.approx(Y.mean() - float(cs.slope) * x.mean(), abs=1e-12)
