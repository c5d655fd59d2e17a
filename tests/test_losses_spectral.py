"""Losses (values, gradients, τ² scaling, KL directions, smoothness) and spectral helpers."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from linkd import losses, spectral


def sig(u):
    return 1 / (1 + np.exp(-u))


def test_binary_soft_ce_value_and_gradient():
    z, p = jnp.asarray([-2.0, 0.0, 3.0]), jnp.asarray([0.1, 0.5, 0.9])
    expect = -(p * np.log(sig(z)) + (1 - p) * np.log(1 - sig(z)))
    np.testing.assert_allclose(losses.binary_soft_ce(z, p), expect, rtol=1e-13)
    g = jax.grad(lambda z: jnp.sum(losses.binary_soft_ce(z, p)))(z)
    np.testing.assert_allclose(g, sig(z) - p, rtol=1e-13)  # theory §1.1: ∇ = σ(z) − y
    # stable at huge logits
    assert np.isfinite(losses.binary_soft_ce(jnp.asarray([1e4, -1e4]), jnp.asarray([0.0, 1.0]))).all()


def test_softmax_ce_and_kd_tau_squared_scaling():
    zs, zt = jnp.asarray([[1.0, 2.0, 0.5]]), jnp.asarray([[0.0, 3.0, -1.0]])
    q = jax.nn.softmax(zt / 4.0)
    plain = -np.sum(q * jax.nn.log_softmax(zs / 4.0))
    np.testing.assert_allclose(losses.kd_softmax(zs, zt, 4.0, tau2_scale=False), [plain], rtol=1e-13)
    np.testing.assert_allclose(losses.kd_softmax(zs, zt, 4.0), [16 * plain], rtol=1e-13)
    # high-τ limit (Stanton §4.1): τ²-scaled KD gradient ≈ (z_S − z_T − mean shift)/C
    g = jax.grad(lambda z: jnp.sum(losses.kd_softmax(z, zt, 1e3)))(zs)
    d = (zs - zt) - jnp.mean(zs - zt)
    np.testing.assert_allclose(g, d / 3, rtol=1e-2, atol=1e-4)


def test_kl_directions_are_named_and_differ():
    zs, zt = jnp.asarray([[1.0, 0.0]]), jnp.asarray([[3.0, 0.0]])
    ps, pt = jax.nn.softmax(zs), jax.nn.softmax(zt)
    kl_ts = np.sum(pt * np.log(pt / ps))
    kl_st = np.sum(ps * np.log(ps / pt))
    np.testing.assert_allclose(losses.kl_teacher_student(zs, zt), [kl_ts], rtol=1e-12)
    np.testing.assert_allclose(losses.kl_student_teacher(zs, zt), [kl_st], rtol=1e-12)
    assert abs(kl_ts - kl_st) > 1e-3
    np.testing.assert_allclose(losses.kl_teacher_student(zt, zt), [0.0], atol=1e-15)


def test_mse_and_mixture_and_switch_weight():
    np.testing.assert_allclose(losses.mse(jnp.asarray([1.0, 3.0]), jnp.asarray([0.0, 1.0])), [0.5, 2.0])
    np.testing.assert_allclose(losses.mse(jnp.ones((2, 3)), jnp.zeros((2, 3))), [1.5, 1.5])
    assert float(losses.mixture(2.0, 4.0, 0.25)) == 3.5
    assert float(losses.hard_weight(jnp.asarray(4), 0.2, 5)) == 1.0
    assert float(losses.hard_weight(jnp.asarray(5), 0.2, 5)) == pytest.approx(0.2)
    assert float(losses.hard_weight(jnp.asarray(0), 0.2, None)) == pytest.approx(0.2)


@given(seed=st.integers(0, 1000))
def test_soft_ce_hessian_bounded_by_quarter_covariance(seed):
    """theory §1.1: Hessian of the mean soft CE ⪯ XᵀX/(4n); so L = λ_max/4 is a valid smoothness."""
    rng = np.random.default_rng(seed)
    X = jnp.asarray(rng.standard_normal((7, 4)))
    y = jnp.asarray(rng.uniform(size=7))
    w = jnp.asarray(rng.standard_normal(4))
    H = jax.hessian(lambda w: jnp.mean(losses.binary_soft_ce(X @ w, y)))(w)
    lam_max = float(jnp.linalg.eigvalsh(X.T @ X / 7)[-1])
    assert float(jnp.linalg.eigvalsh(X.T @ X / 28 - H)[0]) >= -1e-12
    assert float(jnp.linalg.eigvalsh(H)[-1]) <= losses.smoothness("binary", lam_max) + 1e-12


def test_stability_limits():
    assert losses.stability_limit("mse", 2.0) == pytest.approx(1.0)
    assert losses.stability_limit("binary", 2.0) == pytest.approx(4.0)
    assert losses.stability_limit("multiclass", 2.0) == pytest.approx(2.0)
    # without τ² scaling a high temperature flattens the KD term: the hard term (τ = 1) binds
    assert losses.stability_limit("binary", 2.0, tau=4.0, tau2_scale=False) == pytest.approx(4.0)
    with pytest.raises(ValueError, match="family"):
        losses.smoothness("hinge", 1.0)


# ---- spectral -----------------------------------------------------------------------------


def test_eigh_desc_sorted_rank_and_reconstruction():
    rng = np.random.default_rng(0)
    X = jnp.asarray(rng.standard_normal((5, 9)))
    sp = spectral.eigh_desc(X)
    lam = np.asarray(sp.eigvals)
    assert np.all(np.diff(lam) <= 0) and spectral.rank(sp) == 5
    assert np.all(lam[5:] == 0.0)  # exact zeros on the null space
    V = np.asarray(sp.basis)
    np.testing.assert_allclose(V.T @ V, np.eye(9), atol=1e-12)
    np.testing.assert_allclose(V @ np.diag(lam) @ V.T, np.asarray(X).T @ np.asarray(X) / 5, atol=1e-12)
    with pytest.raises(ValueError, match="2-D"):
        spectral.eigh_desc(jnp.ones(3))


def test_coefficients_roundtrip_projector_and_progress():
    rng = np.random.default_rng(1)
    X = jnp.asarray(rng.standard_normal((4, 7)))
    sp = spectral.eigh_desc(X)
    w = jnp.asarray(rng.standard_normal(7))
    np.testing.assert_allclose(spectral.from_coefficients(spectral.coefficients(w, sp.basis), sp.basis), w, atol=1e-13)
    P = spectral.projector(X)
    np.testing.assert_allclose(P @ P, P, atol=1e-12)
    np.testing.assert_allclose(P @ X.T, X.T, atol=1e-12)
    q = spectral.progress(jnp.asarray([1.0, 2.0, 3.0]), jnp.asarray([2.0, 0.0, 3.0]))
    np.testing.assert_allclose(q, [0.5, 0.0, 1.0])
    # min-norm coefficients vanish on the null space
    c = spectral.min_norm_coeffs(X, jnp.asarray(rng.standard_normal(4)), sp.basis)
    np.testing.assert_allclose(c[4:], 0.0, atol=1e-12)


# ------------------------------------------------------------------------------ temperature != 1 (issue 13)
@pytest.mark.parametrize("tau", [0.5, 2.5])
def test_binary_soft_ce_and_kd_binary_at_temperature(tau):
    z, zt = np.array([-2.0, 0.3, 3.0, 7.0]), np.array([1.0, -0.5, 2.0, -3.0])
    p = sig(zt / tau)
    u = z / tau
    log_sig = lambda v: -np.logaddexp(0.0, -v)  # noqa: E731  (stable log sigma)
    expect = -(p * log_sig(u) + (1 - p) * log_sig(-u))
    np.testing.assert_allclose(losses.binary_soft_ce(jnp.asarray(z), jnp.asarray(p), tau), expect, rtol=1e-13)
    np.testing.assert_allclose(losses.kd_binary(jnp.asarray(z), jnp.asarray(zt), tau, False), expect, rtol=1e-13)
    np.testing.assert_allclose(losses.kd_binary(jnp.asarray(z), jnp.asarray(zt), tau), tau**2 * expect, rtol=1e-13)
    g = jax.grad(lambda v: jnp.sum(losses.kd_binary(v, jnp.asarray(zt), tau)))(jnp.asarray(z))
    np.testing.assert_allclose(g, tau * (sig(u) - p), rtol=1e-12)  # tau^2 * (sigma(z/tau) - p) / tau


@pytest.mark.parametrize("tau", [0.5, 3.0])
def test_kd_softmax_gradient_at_temperature(tau):
    rng = np.random.default_rng(3)
    zs, zt = rng.normal(size=(5, 4)) * 2, rng.normal(size=(5, 4)) * 2

    def sm(z):
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    for scaled, factor in ((False, 1.0 / tau), (True, tau)):
        g = jax.grad(lambda v: jnp.sum(losses.kd_softmax(v, jnp.asarray(zt), tau, scaled)))(jnp.asarray(zs))
        np.testing.assert_allclose(g, factor * (sm(zs / tau) - sm(zt / tau)), rtol=1e-11, atol=1e-14)


def test_progress_keeps_the_sign_of_c_star():
    c_star = np.array([2.0, -4.0, -0.5, 0.0])
    c = np.array([1.0, -1.0, -0.5, 3.0])
    np.testing.assert_allclose(spectral.progress(jnp.asarray(c), jnp.asarray(c_star)), [0.5, 0.25, 1.0, 0.0], rtol=1e-15)
