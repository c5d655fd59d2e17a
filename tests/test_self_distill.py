"""Mobahi et al. self-distillation rounds: ε mode vs a direct matrix implementation, collapse, λ mode."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.optimize import brentq

from linkd import closed_form as cf

K = 30


def _mobahi_problem(noise=0.3, seed=0):
    """RBF ℓ = 0.2 on K = 30 grid points in [-1, 1], y = sin 3x + noise (docs/theory.md §3.2 check)."""
    rng = np.random.default_rng(seed)
    x = np.linspace(-1.0, 1.0, K)
    y = np.sin(3 * x) + noise * rng.standard_normal(K)
    G = np.asarray(cf.rbf_gram(x, x, 0.2)) / K
    return x, y, G, 0.02 * float(np.mean(y**2))


def _direct_rounds(G, y, eps, rounds):
    """Independent reference: brentq on the matrix form, then y_t = G (cI + G)^{-1} y_{t-1}."""
    n = G.shape[0]
    ys, cs = [y.copy()], []
    for _ in range(rounds):
        yp = ys[-1]
        if np.mean(yp**2) <= eps:
            break

        def h(c):
            return np.mean((c * np.linalg.solve(c * np.eye(n) + G, yp)) ** 2) - eps

        hi = 1.0
        while h(hi) < 0:
            hi *= 2
        c = brentq(h, 1e-300, hi, xtol=1e-300, rtol=1e-15)
        cs.append(c)
        ys.append(G @ np.linalg.solve(c * np.eye(n) + G, yp))
    return np.array(ys), np.array(cs)


def test_eps_mode_matches_direct_matrix_implementation():
    # noise 0.1: c_1 ≈ 0.03 ≫ round-off in the tiny eigenvalues of G. (With noise 0.3, c_1 ≈ 2e-9
    # and the root itself is only determined to ~1e-8 relative by a backward-stable eigh/solve.)
    _, y, G, eps = _mobahi_problem(noise=0.1)
    res = cf.self_distill_rounds(G, y, eps=eps, rounds=20)
    ys, cs = _direct_rounds(G, y, eps, 20)
    T = res.collapsed_at
    assert T == len(cs)
    np.testing.assert_allclose(np.asarray(res.y[: T + 1]), ys, atol=1e-10, rtol=0)
    np.testing.assert_allclose(np.asarray(res.c[:T]), cs, rtol=1e-10)
    # y_t = V B_t V^T y_0
    V = np.asarray(res.basis)
    for t in range(1, T + 1):
        np.testing.assert_allclose(V @ (np.asarray(res.B[t - 1]) * (V.T @ y)), np.asarray(res.y[t]), atol=1e-12)
    # every active round meets the constraint with equality
    resid = np.mean((np.asarray(res.y[1 : T + 1]) - np.asarray(res.y[:T])) ** 2, axis=1)
    np.testing.assert_allclose(resid, eps, rtol=1e-9)


def test_collapse_round_within_bounds_and_c_increasing():
    _, y, G, eps = _mobahi_problem()
    res = cf.self_distill_rounds(G, y, eps=eps, rounds=60)
    lo, hi = cf.collapse_round_bounds(y, K, eps)
    assert lo == pytest.approx(np.sqrt(50) - 1) and hi == pytest.approx(50.0)
    T = res.collapsed_at
    assert T == 9  # the reference run of docs/theory.md §3.2
    assert lo <= T <= hi
    c = np.asarray(res.c)
    assert np.all(np.diff(c[:T]) > 0)  # amplified regularisation
    assert np.all(np.isinf(c[T:]))
    assert float(np.mean(np.asarray(res.y[T]) ** 2)) <= eps < float(np.mean(np.asarray(res.y[T - 1]) ** 2))
    np.testing.assert_array_equal(np.asarray(res.y[T + 1 :]), 0.0)
    np.testing.assert_array_equal(np.asarray(res.B[T:]), 0.0)


def test_sparsification_ratio_decreases_every_round():
    _, y, G, eps = _mobahi_problem()
    res = cf.self_distill_rounds(G, y, eps=eps, rounds=60)
    T, d, B = res.collapsed_at, np.asarray(res.eigvals), np.asarray(res.B)
    assert np.all(np.diff(d) <= 0)  # descending
    big, small = 0, 8  # d_small < d_big, both well above round-off
    assert d[small] < d[big] and d[small] > 1e-8
    ratio = B[:T, small] / B[:T, big]
    assert np.all(np.diff(ratio) < 0)
    assert ratio[0] < 1.0
    # the factor of every direction shrinks every round
    assert np.all(np.diff(B[:T], axis=0) <= 0)


@given(st.integers(0, 10_000), st.integers(2, 12), st.floats(0.02, 0.5))
def test_collapse_bounds_random_spectra(seed, n, frac):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, n)) * np.exp(rng.uniform(-3, 0, n))[None, :]
    G = A @ A.T / n
    y = rng.standard_normal(n)
    eps = frac * float(np.mean(y**2))
    res = cf.self_distill_rounds(G, y, eps=eps, rounds=200)
    lo, hi = cf.collapse_round_bounds(y, n, eps)
    assert res.collapsed_at >= 0
    assert lo <= res.collapsed_at <= hi
    T = res.collapsed_at
    c = np.asarray(res.c[:T])
    assert np.all(c > 0) and np.all(np.diff(c) > 0)
    # each round moves y by exactly sqrt(K eps)
    step = np.linalg.norm(np.diff(np.asarray(res.y[: T + 1]), axis=0), axis=1)
    np.testing.assert_allclose(step, np.sqrt(n * eps), rtol=1e-8)


@given(st.integers(0, 10_000), st.sampled_from([1, 9]), st.floats(1e-3, 10.0), st.sampled_from([0, 5]))
def test_lambda_mode_factor(seed, n, lam, rounds):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, n))
    G = A @ A.T / n
    y = rng.standard_normal(n)
    res = cf.self_distill_rounds(G, y, lam=lam, rounds=rounds)
    d = np.asarray(res.eigvals)
    t = np.arange(1, rounds + 1)[:, None]
    np.testing.assert_allclose(np.asarray(res.B), (d / (d + lam))[None, :] ** t, rtol=1e-10, atol=1e-300)
    yt = y.copy()
    for r in range(rounds):
        yt = G @ np.linalg.solve(G + lam * np.eye(n), yt)
        np.testing.assert_allclose(np.asarray(res.y[r + 1]), yt, atol=1e-9)
    assert res.collapsed_at == -1
    np.testing.assert_allclose(np.asarray(res.c), lam)


def test_lambda_mode_jit_and_rank_deficient():
    x = np.array([0.0, 0.0, 1.0])  # duplicate point: G singular
    G = np.asarray(cf.rbf_gram(x, x, 1.0)) / 3
    y = np.array([1.0, -1.0, 0.5])
    res = jax.jit(cf.ridge_self_distill, static_argnums=3)(jnp.asarray(G), jnp.asarray(y), 0.1, 3)
    assert np.all(np.isfinite(np.asarray(res.y)))
    assert float(res.eigvals[-1]) == pytest.approx(0.0, abs=1e-14)
    np.testing.assert_allclose(np.asarray(res.B[:, -1]), 0.0, atol=1e-13)  # null direction never fitted


def test_gram_scale_invariance_and_kernel_predict():
    x, y, G, eps = _mobahi_problem(noise=0.1)
    r1 = cf.self_distill_rounds(G, y, eps=eps, rounds=12)
    r2 = cf.self_distill_rounds(7.0 * G, y, eps=eps, rounds=12)
    assert r1.collapsed_at == r2.collapsed_at
    np.testing.assert_allclose(np.asarray(r2.y), np.asarray(r1.y), atol=1e-9)
    np.testing.assert_allclose(np.asarray(r2.c[: r1.collapsed_at]), 7.0 * np.asarray(r1.c[: r1.collapsed_at]), rtol=1e-9)
    # in-sample predictions are the next round's targets
    f = np.asarray(cf.self_distill_predict(G, r1))
    assert f.shape == (12, K)
    np.testing.assert_allclose(f, np.asarray(r1.y[1:]), atol=1e-10)
    # single-round helper agrees
    xt = np.linspace(-1, 1, 50)
    g = np.asarray(cf.rbf_gram(xt, x, 0.2)) / K
    f_test = np.asarray(cf.self_distill_predict(g, r1))
    np.testing.assert_allclose(np.asarray(cf.kernel_predict(g, G, r1.y[2], r1.c[2])), f_test[2], atol=1e-10)
    np.testing.assert_array_equal(f_test[r1.collapsed_at :], 0.0)  # collapsed: f ≡ 0


def test_test_error_u_shape_with_noise_monotone_without():
    xt = np.linspace(-1, 1, 400)
    errs = {}
    for noise in (0.0, 0.3):
        x, y, G, eps = _mobahi_problem(noise=noise)
        r = cf.self_distill_rounds(G, y, eps=eps, rounds=30)
        g = np.asarray(cf.rbf_gram(xt, x, 0.2)) / K
        f = np.asarray(cf.self_distill_predict(g, r))[: r.collapsed_at + 1]
        errs[noise] = np.mean((f - np.sin(3 * xt)[None, :]) ** 2, axis=1)
    assert np.all(np.diff(errs[0.0]) > 0)  # smooth noiseless y: distillation only underfits
    e = errs[0.3]
    assert 1 <= np.argmin(e) < len(e) - 1  # noisy y: a few rounds help, then collapse hurts
    assert e[np.argmin(e)] < 0.5 * e[0]


def test_rbf_gram_values():
    a = np.array([[0.0, 0.0], [1.0, 0.0]])
    b = np.array([[0.0, 1.0]])
    g = np.asarray(cf.rbf_gram(a, b, 2.0))
    np.testing.assert_allclose(g, np.exp(-np.array([[1.0], [2.0]]) / 8.0), rtol=1e-14)


def test_validation():
    _, y, G, eps = _mobahi_problem()
    with pytest.raises(ValueError, match="exactly one"):
        cf.self_distill_rounds(G, y, rounds=3)
    with pytest.raises(ValueError, match="exactly one"):
        cf.self_distill_rounds(G, y, eps=eps, lam=0.1, rounds=3)
    with pytest.raises(ValueError, match="eps"):
        cf.self_distill_rounds(G, y, eps=-1.0, rounds=3)
    with pytest.raises(ValueError, match="lam"):
        cf.self_distill_rounds(G, y, lam=-1.0, rounds=3)
    with pytest.raises(ValueError, match="rounds"):
        cf.self_distill_rounds(G, y, eps=eps, rounds=-1)
    with pytest.raises(ValueError, match="G must be"):
        cf.self_distill_rounds(G[:3], y, eps=eps, rounds=3)
    with pytest.raises(ValueError, match="y must"):
        cf.self_distill_rounds(G, y[:3], eps=eps, rounds=3)
    with pytest.raises(ValueError, match="y0"):
        cf.collapse_round_bounds(y[:3], K, eps)
    # already collapsed at t = 0
    res = cf.self_distill_rounds(G, y, eps=10.0 * float(np.mean(y**2)), rounds=3)
    assert res.collapsed_at == 0 and np.all(np.isinf(np.asarray(res.c)))


def test_infeasible_round_interpolates_range_then_continues():
    v = np.array([1.0, 1.0, 0.0]) / math.sqrt(2.0)
    G = np.outer(v, v)  # rank 1: two null directions
    y = np.array([1.0, 0.0, 0.5])
    eps = 0.01 * float(np.mean(y**2))
    res = cf.self_distill_rounds(G, y, eps=eps, rounds=3)
    # null-space mass of y exceeds eps: no c > 0 meets the constraint, c_1 = 0 (fit the range exactly)
    assert float(res.c[0]) == 0.0
    np.testing.assert_allclose(np.asarray(res.y[1]), v * (v @ y), atol=1e-14)
    # from then on y lies in the range: an ordinary root, or collapse
    assert float(res.c[1]) > 0.0 or res.collapsed_at == 1
    assert np.all(np.isfinite(np.asarray(res.y)))


def test_predict_round_t_uses_c_t_and_y_t_minus_1_direct_solve():
    """f_t(x) = g_x^T (c_t I + G)^{-1} y_{t-1} by a plain numpy solve (round 1 fits y itself)."""
    x, y, G, eps = _mobahi_problem(noise=0.1)
    r = cf.self_distill_rounds(G, y, eps=eps, rounds=5)
    xt = np.linspace(-1, 1, 20)
    g = np.asarray(cf.rbf_gram(xt, x, 0.2)) / K
    f = np.asarray(cf.self_distill_predict(g, r))
    y_prev, Gn = np.asarray(y, np.float64), np.asarray(G, np.float64)
    for t in range(min(5, r.collapsed_at if r.collapsed_at >= 0 else 5)):
        a = np.linalg.solve(float(r.c[t]) * np.eye(K) + Gn, y_prev)
        np.testing.assert_allclose(f[t], g @ a, atol=1e-9 * np.abs(y).max())
        y_prev = Gn @ a
