"""Closed forms of multiclass distillation at temperature τ (docs/theory.md §8) against independent
float64 routes: plain numpy recursions (leading order, 1/τ correction), the linkd engine (full
softmax KD at τ), direct sums (the S kernel); properties over random spectra, C, τ and η."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linkd import closed_form as cf
from linkd import engine, losses
from linkd.closed_form import gd, temperature
from linkd.errors import InputError


def _data(seed, n=80, d=4, C=3, mean=0.3, symmetric=False):
    rng = np.random.default_rng(seed)
    X = mean + rng.standard_normal((n, d)) * np.sqrt(np.linspace(2.0, 0.3, d))
    if symmetric:
        X = np.concatenate([X[: n // 2], -X[: n // 2]])
    W_T = 0.8 * rng.standard_normal((d, C))
    lam, V = np.linalg.eigh(X.T @ X / X.shape[0])
    return X, W_T, lam[::-1].copy(), V[:, ::-1].copy()


def _J(C):
    return np.eye(C) - np.ones((C, C)) / C


def _numpy_leading(X, W_T, W0, lr, C, steps):
    """GD on MSE of centred logits, step η/C: W ← W − (η/C) Σ̂ (W − W_T) J; returns V-free W_s J."""
    n = X.shape[0]
    S, J = X.T @ X / n, _J(C)
    W, out = W0.copy(), [W0 @ J]
    for _ in range(steps):
        W = W - lr / C * S @ (W - W_T) @ J
        out.append(W @ J)
    return np.stack(out)


def _numpy_correction(X, W_T, W0, lr, C, steps, V):
    """γ¹(s+1) = ρ γ¹(s) − (η/2C) Vᵀ(1/n)XᵀB(s), B from the leading-order logits (rows: (Jz)² − (Jz_T)²,
    centred); the direct recursion, no S kernel. Returns (steps+1, d, C) in the eigenbasis."""
    n, J = X.shape[0], _J(C)
    lead = _numpy_leading(X, W_T, W0, lr, C, steps)
    ZT = X @ W_T @ J
    lam = np.diag(V.T @ (X.T @ X / n) @ V)
    rho = 1.0 - lr * lam / C
    g, out = np.zeros((V.shape[1], C)), [np.zeros((V.shape[1], C))]
    for s in range(steps):
        Z = X @ lead[s]
        B = (Z * Z - ZT * ZT) @ J
        g = rho[:, None] * g - lr / (2 * C) * V.T @ (X.T @ B) / n
        out.append(g)
    return np.stack(out)


# ------------------------------------------------------------------------------------ exact recursions


@settings(max_examples=5)
@given(seed=st.integers(0, 10_000), C=st.integers(2, 4), frac=st.floats(0.05, 0.95), general=st.booleans())
def test_leading_and_correction_match_numpy_recursions(seed, C, frac, general):
    X, W_T, lam, V = _data(seed, C=C)
    lr = frac * 4.0 / lam[0]  # anywhere below the descent bound (rho may be negative for C <= 3)
    W0 = np.random.default_rng(seed + 1).standard_normal(W_T.shape) if general else np.zeros_like(W_T)
    steps = 25
    lead = np.einsum("dk,sdc->skc", V, _numpy_leading(X, W_T, W0, lr, C, steps))
    pred = np.asarray(temperature.tempered_trajectory(lam, V.T @ W_T, V.T @ W0, lr, steps, num_classes=C))
    scale = max(1.0, np.abs(lead).max())
    assert np.abs(pred - lead).max() / scale < 1e-11
    corr = _numpy_correction(X, W_T, W0, lr, C, steps, V)
    got = np.asarray(temperature.first_order_correction(lam, temperature.third_moment(X, V), V.T @ W_T, V.T @ W0, lr, steps,
                                                        num_classes=C))
    assert np.abs(got - corr).max() / max(1.0, np.abs(corr).max()) < 1e-10


def test_time_zero_returns_the_init():
    X, W_T, lam, V = _data(3, C=4)
    lr = 0.3 * 4 / lam[0]
    g0 = np.random.default_rng(0).standard_normal(W_T.shape)
    traj = np.asarray(temperature.tempered_trajectory(lam, V.T @ W_T, g0, lr, np.asarray([0]), num_classes=4))
    np.testing.assert_array_equal(traj[0], np.asarray(temperature.centre_classes(g0)))
    assert np.all(np.asarray(temperature.tempered_filter(lam, lr, 0, num_classes=4)) == 0.0)
    c = np.asarray(temperature.first_order_correction(lam, temperature.third_moment(X, V), V.T @ W_T, g0, lr, 3, num_classes=4))
    assert np.all(c[0] == 0.0) and np.abs(c[1:]).max() > 1e-3


# ------------------------------------------------------------------------------------ against the engine


def _engine_progress(X, W_T, V, lr, taus, steps):
    spec = engine.EngineSpec(family="multiclass", steps=steps, tau2_scale=True)
    d = engine.Data(jnp.asarray(X), jnp.asarray(X @ W_T), basis=jnp.asarray(V))
    tr = engine.sweep(jnp.zeros(W_T.shape), d, engine.Hyper(lr=lr, tau=jnp.asarray(taus)), spec)
    return np.asarray(temperature.centred_progress(tr.coeffs, V.T @ W_T)), np.asarray(tr.params)


def test_engine_softmax_student_follows_filter_plus_correction():
    X, W_T, lam, V = _data(7, n=120, d=4, C=4)
    lr, steps, taus = 0.3 * 4 / lam[0], 100, (64.0, 128.0, 256.0)
    p, W = _engine_progress(X, W_T, V, lr, taus, steps)
    M3 = temperature.third_moment(X, V)
    F = np.asarray(temperature.progress_prediction(lam, M3, V.T @ W_T, lr, steps, num_classes=4, tau=taus[0], order=0))
    P1 = np.asarray(temperature.progress_prediction(lam, M3, V.T @ W_T, lr, steps, num_classes=4, tau=taus[0]))
    np.testing.assert_allclose(F, np.asarray(temperature.tempered_filter(lam, lr, np.arange(steps + 1), num_classes=4)), atol=1e-15)
    t = np.asarray(taus)[:, None, None]
    e0 = np.abs(p - F[None]).max(axis=(1, 2))
    e1 = np.abs(p - F[None] - (P1 - F)[None] * taus[0] / t).max(axis=(1, 2))
    assert np.all(np.abs(e0[:-1] / e0[1:] - 2.0) < 0.25)  # O(1/τ)
    assert np.all(np.abs(e1[:-1] / e1[1:] - 4.0) < 0.5)  # O(1/τ²)
    assert np.all(e1 < 0.2 * e0)
    assert np.abs(W.sum(axis=-1)).max() < 1e-12  # class-sum invariant from W_0 = 0


def test_kd_gradient_matches_autodiff_and_sums_to_zero_over_classes():
    X, W_T, lam, V = _data(11, C=3)
    W = np.random.default_rng(1).standard_normal(W_T.shape)
    for tau in (0.7, 5.0):
        g = jax.grad(lambda w: jnp.mean(losses.kd_softmax(jnp.asarray(X) @ w, jnp.asarray(X @ W_T), tau)))(jnp.asarray(W))
        cf = np.asarray(temperature.kd_gradient(X, W, W_T, tau=tau))
        assert np.abs(cf - np.asarray(g)).max() < 1e-13 * max(1.0, np.abs(cf).max())
        assert np.abs(np.asarray(temperature.class_sum(cf))).max() < 1e-14


def test_binary_limit_is_mse_gd_with_a_quarter_step():
    lam = np.array([2.0, 1.0, 0.5, 0.0])
    c, c0 = np.array([1.0, -2.0, 0.5, 3.0]), np.array([0.1, 0.2, 0.3, 0.4])
    got = np.asarray(temperature.binary_logit_limit(lam, c, c0, 1.5, 20))
    np.testing.assert_allclose(got, np.asarray(gd.gd_mse_trajectory(lam, c, c0, 1.5 / 4, 20)), rtol=0, atol=0)
    with pytest.raises(InputError, match="binary_logit_limit: lr must be"):
        temperature.binary_logit_limit(lam, c, c0, 8.0 / 2.0 + 0.01, 5)


# ------------------------------------------------------------------------------------ vanishing correction


def test_correction_vanishes_for_two_classes_and_symmetric_data():
    X, W_T, lam, V = _data(5, C=2)
    lr = 0.5 * 2 / lam[0]
    gT = V.T @ W_T
    c = np.asarray(temperature.first_order_correction(lam, temperature.third_moment(X, V), gT, np.zeros_like(gT), lr, 30,
                                                      num_classes=2))
    assert np.abs(c).max() < 1e-15
    Xs, W_T4, lam_s, V_s = _data(5, C=4, symmetric=True)
    M3 = np.asarray(temperature.third_moment(Xs, V_s))
    assert np.abs(M3).max() < 1e-14
    gT = V_s.T @ W_T4
    c = np.asarray(temperature.first_order_correction(lam_s, M3, gT, np.zeros_like(gT), 0.3 * 4 / lam_s[0], 30, num_classes=4))
    assert np.abs(c).max() < 1e-14
    X4, _, lam4, V4 = _data(5, C=4)  # the generic control: not zero
    gT = V4.T @ W_T4
    c = np.asarray(temperature.first_order_correction(lam4, temperature.third_moment(X4, V4), gT, np.zeros_like(gT),
                                                      0.3 * 4 / lam4[0], 30, num_classes=4))
    assert np.abs(c).max() > 1e-2


# ------------------------------------------------------------------------------------ kernels


@settings(max_examples=20)
@given(rho=st.floats(-0.99, 1.0), mu=st.floats(-0.99, 1.0), s=st.integers(0, 60))
def test_s_kernel_equals_the_direct_sum(rho, mu, s):
    direct = sum(rho ** (s - 1 - j) * mu**j for j in range(s))
    scale = sum(abs(rho) ** (s - 1 - j) * abs(mu) ** j for j in range(s))  # bound on the terms' size
    got = float(temperature.s_kernel(jnp.asarray(rho), jnp.asarray(mu), jnp.asarray(float(s))))
    assert abs(got - direct) <= 1e-13 * max(1.0, scale)


def test_s_kernel_is_continuous_at_rho_equal_mu():
    rho, s = 0.97, 200.0
    at = float(temperature.s_kernel(jnp.asarray(rho), jnp.asarray(rho), jnp.asarray(s)))
    assert at == pytest.approx(s * rho ** (s - 1), rel=1e-14)
    for eps in (1e-15, 1e-12, 1e-9, 1e-6):
        near = float(temperature.s_kernel(jnp.asarray(rho), jnp.asarray(rho * (1 + eps)), jnp.asarray(s)))
        assert abs(near - at) / at < 2 * s * eps + 1e-14  # dS/dμ ~ s²/2·ρ^{s-2}: a smooth limit, no cancellation
    for lam in (0.5, 0.5 + 1e-13):  # the GF kernel too
        e = float(temperature.e_kernel(jnp.asarray(0.5), jnp.asarray(lam), jnp.asarray(3.0), num_classes=4))
        assert e == pytest.approx(3.0 * np.exp(-0.5 * 3.0 / 4), rel=1e-12)


def test_gradient_flow_is_the_small_step_limit_of_gd():
    X, W_T, lam, V = _data(9, C=3)
    M3, gT, t = temperature.third_moment(X, V), V.T @ W_T, 6.0
    gf = np.asarray(temperature.gf_first_order_correction(lam, M3, gT, np.zeros_like(gT), np.asarray([t]), num_classes=3))[0]
    gf_f = np.asarray(temperature.gf_tempered_filter(lam, t, num_classes=3))
    errs = []
    for eta in (0.02, 0.01):
        s = int(round(t / eta))
        gd_c = np.asarray(temperature.first_order_correction(lam, M3, gT, np.zeros_like(gT), eta, np.asarray([s]), num_classes=3))[0]
        errs.append(np.abs(gd_c - gf).max())
        assert np.abs(np.asarray(temperature.tempered_filter(lam, eta, s, num_classes=3)) - gf_f).max() < 0.05 * eta
    assert errs[1] < 0.6 * errs[0] and errs[1] < 0.05  # O(η)
    np.testing.assert_allclose(np.asarray(temperature.gf_tempered_trajectory(lam, gT, np.zeros_like(gT), t, num_classes=3)),
                               gf_f[:, None] * np.asarray(temperature.centre_classes(gT)), atol=1e-14)


# ------------------------------------------------------------------------------------ progress and gaps


def test_progress_of_the_teacher_is_one_and_zero_where_undefined():
    gT = np.array([[1.0, -1.0, 2.0], [0.5, 0.5, 0.5]])  # second row centres to 0
    p = np.asarray(temperature.centred_progress(np.stack([gT, 0.5 * gT, np.zeros_like(gT)]), gT))
    np.testing.assert_allclose(p, [[1.0, 0.0], [0.5, 0.0], [0.0, 0.0]], atol=1e-15)


def test_matched_progress_gap_reproduces_the_gd_gap_from_a_measured_path():
    lam = np.array([1.0, 0.6, 0.3, 0.1])
    lr, T_t = 0.9, 12
    ref = np.asarray(gd.gd_filter(lam, lr, np.arange(400)))  # a "measured" reference path at every step
    q = np.asarray(gd.teacher_student_filters(lam, lr, T_t, 7))
    got = np.asarray(cf.matched_progress_gap(ref, q, eigvals=lam).gap)
    want = np.asarray(gd.exaggeration_gap_from_progress(lam, lr, q).gap)
    valid = np.isfinite(got)
    assert valid.sum() == 6  # the pairs λ_i > λ_j > 0
    assert np.abs(got[valid] - want[valid]).max() < 1e-10  # log(1 - q) of a path read from q: ~eps/(1 - q)
    short = np.asarray(cf.matched_progress_gap(ref[:2], q, eigvals=lam).gap)  # progress never reached: left out, not guessed
    assert np.all(np.isnan(short[1:]))
    tg = np.asarray(temperature.tempered_exaggeration_gap(lam, 3.0, q, num_classes=4).gap)
    np.testing.assert_allclose(tg, np.asarray(gd.exaggeration_gap_from_progress(lam, 3.0 / 4, q).gap), atol=0)


# ------------------------------------------------------------------------------------ refusals


@pytest.mark.parametrize("call,field", [
    (lambda lam, g, M3: temperature.tempered_prediction(lam, M3, g, np.zeros_like(g), 0.1, 5, num_classes=3, tau=0.0), "tau"),
    (lambda lam, g, M3: temperature.tempered_prediction(lam, M3, g, np.zeros_like(g), 0.1, 5, num_classes=3, tau=-2.0), "tau"),
    (lambda lam, g, M3: temperature.tempered_filter(lam, 0.1, 5, num_classes=1), "num_classes"),
    (lambda lam, g, M3: temperature.first_order_correction(lam, M3, g, np.zeros_like(g), 4.0 / 2.0, 5, num_classes=3), "lr"),
    (lambda lam, g, M3: temperature.tempered_trajectory(lam, g, g, -0.1, 5, num_classes=3), "lr"),
    (lambda lam, g, M3: temperature.temperature_lr(lam, 1), "num_classes"),
])
def test_bad_input_is_refused_naming_the_field(call, field):
    lam = np.array([2.0, 1.0, 0.5])
    g = np.ones((3, 3))
    with pytest.raises(InputError) as e:
        call(lam, g, np.zeros((3, 3, 3)))
    msg = str(e.value)
    assert f": {field} must be" in msg and "; got " in msg and "\n" not in msg
