"""Tests for linkd.data: spectra, designs, teachers, labels, geometries, augmentations."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from linkd import data

F64 = jnp.float64
HALF_PI = math.pi / 2
# Compiles dominate the runtime: most tests share one sample size and one dimension so that the
# library's jitted kernels are compiled once per shape and reused.
N = 20000
DIM = 10


def key(i=0):
    """PRNG key for the statistical tests. The library is key-implementation agnostic; "rbg" keys
    compile ~8x faster than the default threefry on CPU, and compiles dominate this file's runtime.
    The default implementation is exercised in ``test_default_threefry_keys``."""
    return jax.random.key(i, impl="rbg")


def tf_key(i=0):
    """Default (threefry) PRNG key."""
    return jax.random.key(i)


def angles(X, w):
    """θ̄ = angle between rows of X and w⊥, computed stably with arctan2 (numpy float64)."""
    X, w = np.asarray(X, np.float64), np.asarray(w, np.float64)
    w = w / np.linalg.norm(w)
    a = X @ w
    perp = np.linalg.norm(X - a[:, None] * w[None, :], axis=1)
    return np.arctan2(np.abs(a), perp)


def ks_distance(samples, cdf):
    """Kolmogorov–Smirnov distance between the empirical CDF of samples and a continuous cdf."""
    x = np.sort(np.asarray(samples))
    F = np.asarray(cdf(x), np.float64)
    n = x.size
    i = np.arange(1, n + 1)
    return max(np.max(i / n - F), np.max(F - (i - 1) / n))


# ------------------------------------------------------------------------------------------------
# spectra
# ------------------------------------------------------------------------------------------------
def _check_spectrum(lam, d):
    lam = np.asarray(lam)
    assert lam.shape == (d,)
    assert np.all(lam > 0) and np.all(np.isfinite(lam))
    assert np.all(np.diff(lam) <= 0)


DIMS = st.sampled_from([1, 2, DIM, 40])  # few distinct shapes: each new shape costs a compile


@given(d=DIMS, exponent=st.floats(0.0, 3.0), scale=st.floats(0.1, 10.0))
def test_power_law_spectrum(d, exponent, scale):
    lam = data.power_law_spectrum(d, exponent, scale)
    _check_spectrum(lam, d)
    assert lam.dtype == F64
    np.testing.assert_allclose(lam, scale * np.arange(1, d + 1) ** (-exponent), rtol=1e-13)


@given(d=DIMS, rate=st.floats(0.0, 2.0), scale=st.floats(0.1, 10.0))
def test_exponential_spectrum(d, rate, scale):
    lam = data.exponential_spectrum(d, rate, scale)
    _check_spectrum(lam, d)
    np.testing.assert_allclose(lam, scale * np.exp(-rate * np.arange(d)), rtol=1e-13)


@given(
    d=DIMS,
    spikes=st.lists(st.floats(1.0, 100.0), min_size=0, max_size=5),
    bulk=st.floats(0.01, 1.0),
)
def test_spiked_spectrum(d, spikes, bulk):
    spikes = spikes[:d]
    lam = data.spiked_spectrum(d, spikes, bulk)
    _check_spectrum(lam, d)
    m = len(spikes)
    np.testing.assert_array_equal(lam[:m], sorted(spikes, reverse=True))
    np.testing.assert_array_equal(lam[m:], np.full(d - m, bulk))


def test_explicit_spectrum_sorts_and_make_spectrum_dispatches():
    np.testing.assert_array_equal(data.explicit_spectrum([1.0, 3.0, 2.0]), [3.0, 2.0, 1.0])
    np.testing.assert_array_equal(data.make_spectrum("explicit", values=[1.0, 3.0, 2.0]), [3.0, 2.0, 1.0])
    np.testing.assert_array_equal(data.make_spectrum("explicit", 3, values=[1.0, 3.0, 2.0]), [3.0, 2.0, 1.0])
    np.testing.assert_array_equal(data.make_spectrum("power_law", 7, exponent=2.0), data.power_law_spectrum(7, 2.0))
    np.testing.assert_array_equal(data.make_spectrum("exponential", 7, rate=0.5), data.exponential_spectrum(7, 0.5))
    np.testing.assert_array_equal(data.make_spectrum("spiked", 7, spikes=[5.0]), data.spiked_spectrum(7, [5.0]))


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: data.power_law_spectrum(0), "d"),
        (lambda: data.power_law_spectrum(3.5), "d"),
        (lambda: data.power_law_spectrum(True), "d"),
        (lambda: data.power_law_spectrum(4, exponent=-1.0), "exponent"),
        (lambda: data.power_law_spectrum(4, scale=0.0), "scale"),
        (lambda: data.power_law_spectrum(4, scale=float("inf")), "scale"),
        (lambda: data.exponential_spectrum(4, rate=-0.1), "rate"),
        (lambda: data.exponential_spectrum(4, scale=-1.0), "scale"),
        (lambda: data.exponential_spectrum(10, rate=1e4), "rate"),
        (lambda: data.spiked_spectrum(2, [5.0, 4.0, 3.0]), "spikes"),
        (lambda: data.spiked_spectrum(4, [0.5], bulk=1.0), "spikes"),
        (lambda: data.spiked_spectrum(4, [5.0], bulk=0.0), "bulk"),
        (lambda: data.explicit_spectrum([1.0, 0.0]), "values"),
        (lambda: data.explicit_spectrum([1.0, float("nan")]), "values"),
        (lambda: data.explicit_spectrum([]), "values"),
        (lambda: data.make_spectrum("zipf", 4), "kind"),
        (lambda: data.make_spectrum("power_law", 4, rate=1.0), "rate"),
        (lambda: data.make_spectrum("power_law", None), "d"),
        (lambda: data.make_spectrum("explicit", 4, values=[1.0, 2.0]), "d"),
    ],
)
def test_spectrum_bad_inputs_name_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_make_spectrum_lists_allowed_kinds():
    with pytest.raises(ValueError) as e:
        data.make_spectrum("zipf", 4)
    for kind in data.SPECTRUM_KINDS:
        assert kind in str(e.value)
    assert "zipf" in str(e.value)


# ------------------------------------------------------------------------------------------------
# bases and designs
# ------------------------------------------------------------------------------------------------
@given(d=st.sampled_from([1, 2, DIM]), seed=st.integers(0, 2**31 - 1))
def test_random_orthogonal_is_orthogonal(d, seed):
    Q = np.asarray(data.random_orthogonal(key(seed), d))
    assert Q.shape == (d, d)
    np.testing.assert_allclose(Q.T @ Q, np.eye(d), atol=1e-12)
    np.testing.assert_allclose(Q @ Q.T, np.eye(d), atol=1e-12)


def test_random_orthogonal_is_haar_unbiased():
    # Without the sign fix, QR's diagonal is biased to one sign; Haar has E[Q] = 0.
    Qs = jax.vmap(lambda k: data.random_orthogonal(k, 3))(jax.random.split(key(1), 4000))
    mean = np.asarray(Qs).mean(axis=0)
    se = math.sqrt(1 / 3 / 4000)  # Var Q_ij = 1/d
    assert np.max(np.abs(mean)) < 5 * se


def test_gaussian_design_covariance():
    n, lam = N, data.spiked_spectrum(DIM, [4.0, 2.0], bulk=0.5)
    U = data.random_orthogonal(key(2), DIM)
    X = np.asarray(data.gaussian_design(key(3), n, lam, U))
    assert X.shape == (n, DIM)
    Sigma = np.asarray(U) @ np.diag(np.asarray(lam)) @ np.asarray(U).T
    S = X.T @ X / n
    se = np.sqrt((np.outer(np.diag(Sigma), np.diag(Sigma)) + Sigma**2) / n)  # sd of each entry
    assert np.all(np.abs(S - Sigma) < 5 * se)
    assert np.abs(X.mean(axis=0)).max() < 5 * math.sqrt(4.0 / n)
    assert np.max(np.abs(S - Sigma)) > 0  # it is a sample, not the population


def test_gaussian_design_axis_equals_identity_basis():
    lam = data.power_law_spectrum(DIM, 1.0)
    X_axis = data.gaussian_design(key(4), N, lam)
    X_eye = data.gaussian_design(key(4), N, lam, jnp.eye(DIM))
    np.testing.assert_allclose(X_axis, X_eye, rtol=0, atol=1e-15)
    # axis-aligned: column variances are the eigenvalues
    np.testing.assert_allclose(np.asarray(X_axis).var(axis=0), lam, rtol=5 * math.sqrt(2 / N))


def test_make_design():
    lam = data.power_law_spectrum(DIM, 1.0)
    des = data.make_design(key(6), N, DIM, lam, n_test=N)
    assert isinstance(des, data.Design)
    assert des.X.shape == (N, DIM) and des.X_test.shape == (N, DIM)
    np.testing.assert_array_equal(des.eigvals, lam)
    np.testing.assert_allclose(des.basis.T @ des.basis, np.eye(DIM), atol=1e-12)
    axis = data.make_design(key(6), N, DIM, lam, n_test=N, basis="axis")
    assert axis.basis is None
    # same subkeys: the random-basis design is the axis design rotated by the basis
    np.testing.assert_allclose(des.X, axis.X @ des.basis.T, atol=1e-13)
    given_basis = data.make_design(key(6), N, DIM, lam, n_test=N, basis=des.basis)
    np.testing.assert_array_equal(given_basis.X, des.X)
    assert not np.allclose(des.X, des.X_test)
    assert data.make_design(key(6), N, DIM, lam, n_test=0).X_test.shape == (0, DIM)
    with pytest.raises(ValueError, match="eigvals"):
        data.make_design(key(6), 30, 4, lam)
    with pytest.raises(ValueError, match="basis"):
        data.make_design(key(6), 30, DIM, lam, basis="haar")
    with pytest.raises(ValueError, match="eigvals"):
        data.gaussian_design(key(6), 3, jnp.array([1.0, -1.0]))
    with pytest.raises(ValueError, match="n"):
        data.gaussian_design(key(6), 0, lam)


# ------------------------------------------------------------------------------------------------
# teachers
# ------------------------------------------------------------------------------------------------
@given(
    d=st.sampled_from([1, 2, DIM]),
    profile=st.floats(-1.0, 2.0),
    norm=st.floats(0.1, 10.0),
    seed=st.integers(0, 1000),
    rotate=st.booleans(),
)
def test_linear_teacher_norm_and_profile(d, profile, norm, seed, rotate):
    U = data.random_orthogonal(key(seed + 1), d) if rotate else None
    w = data.linear_teacher(key(seed), d, basis=U, profile=profile, norm=norm)
    assert w.shape == (d,) and w.dtype == F64
    np.testing.assert_allclose(np.linalg.norm(w), norm, rtol=1e-12)
    c = np.asarray(w if U is None else U.T @ w)
    mag = np.arange(1, d + 1) ** (-profile)
    np.testing.assert_allclose(np.abs(c), norm * mag / np.linalg.norm(mag), rtol=1e-10, atol=1e-14)


def test_linear_teacher_accepts_eigvals_and_random_signs():
    lam = data.power_law_spectrum(400, 1.0)
    w = np.asarray(data.linear_teacher(key(7), lam))
    assert w.shape == (400,)
    frac_pos = np.mean(w > 0)
    assert abs(frac_pos - 0.5) < 5 * math.sqrt(0.25 / 400)
    with pytest.raises(ValueError, match="norm"):
        data.linear_teacher(key(7), 4, norm=0.0)
    with pytest.raises(ValueError, match="basis"):
        data.linear_teacher(key(7), 4, basis=jnp.eye(3))


def test_multiclass_teacher():
    d, C = DIM, 2000
    U = data.random_orthogonal(key(8), d)
    W = data.multiclass_teacher(key(9), d, C, scale=2.5, basis=U, profile=1.0)
    assert W.shape == (d, C)
    np.testing.assert_allclose(np.linalg.norm(W, axis=0), 2.5, rtol=1e-12)
    A = np.asarray(U.T @ W)
    power = (A**2).mean(axis=1)  # ∝ k^{-2} in expectation
    assert power[:2].mean() > 20 * power[-3:].mean()
    W_flat = data.multiclass_teacher(key(9), d, C, profile=0.0)
    p = (np.asarray(W_flat) ** 2).mean(axis=1)
    assert p.max() / p.min() < 2.0
    with pytest.raises(ValueError, match="n_classes"):
        data.multiclass_teacher(key(9), d, 1)


# ------------------------------------------------------------------------------------------------
# labels
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def binary_setup():
    X = data.gaussian_design(key(10), N, data.power_law_spectrum(DIM, 0.5))
    w = data.linear_teacher(key(11), DIM, norm=3.0)
    return X, w


def test_regression_labels(binary_setup):
    X, w = binary_setup
    np.testing.assert_allclose(data.regression_labels(key(12), X, w), X @ w, rtol=0, atol=1e-15)
    y = data.regression_labels(key(12), X, w, noise=0.7)
    resid = np.asarray(y - X @ w)
    assert abs(resid.std() - 0.7) < 5 * 0.7 / math.sqrt(2 * resid.size)
    W = data.multiclass_teacher(key(13), DIM, 3)
    assert data.regression_labels(key(12), X, W, noise=0.1).shape == (N, 3)
    with pytest.raises(ValueError, match="noise"):
        data.regression_labels(key(12), X, w, noise=-1.0)


def test_binary_soft_and_hard_labels(binary_setup):
    X, w = binary_setup
    p = np.asarray(data.binary_soft_labels(X, w))
    assert p.shape == (N,) and np.all((p > 0) & (p < 1))
    p2 = np.asarray(data.binary_soft_labels(X, w, tau=2.0))
    np.testing.assert_allclose(p2, 1 / (1 + np.exp(-np.asarray(X @ w) / 2)), rtol=1e-12)
    y = np.asarray(data.binary_hard_labels(X, w, key=key(14)))
    assert y.dtype == np.float64 and set(np.unique(y)) <= {0.0, 1.0}
    np.testing.assert_array_equal(y, (p > 0.5).astype(float))
    np.testing.assert_array_equal(data.binary_hard_labels(X, w), y)
    with pytest.raises(ValueError, match="tau"):
        data.binary_soft_labels(X, w, tau=0.0)
    with pytest.raises(ValueError, match="flip"):
        data.binary_hard_labels(X, w, flip=1.5, key=key(14))


@pytest.mark.parametrize("flip", [0.05, 0.3, 1.0])
def test_binary_flip_rate(binary_setup, flip):
    X, w = binary_setup
    clean = np.asarray(data.binary_hard_labels(X, w, key=key(15)))
    noisy = np.asarray(data.binary_hard_labels(X, w, flip=flip, key=key(15)))
    rate = np.mean(clean != noisy)
    assert abs(rate - flip) <= 5 * math.sqrt(flip * (1 - flip) / clean.size) + 1e-12


def test_softmax_and_multiclass_hard_labels():
    X = data.gaussian_design(key(16), N, data.power_law_spectrum(DIM, 0.5))
    W = data.multiclass_teacher(key(17), DIM, 5, scale=2.0)
    P = np.asarray(data.softmax_labels(X, W))
    assert P.shape == (N, 5) and np.all(P > 0)
    np.testing.assert_allclose(P.sum(axis=1), 1.0, atol=1e-13)
    P_hot = np.asarray(data.softmax_labels(X, W, tau=0.5))
    assert P_hot.max(axis=1).mean() > P.max(axis=1).mean()  # lower temperature is sharper
    clean = np.asarray(data.multiclass_hard_labels(X, W, key=key(18)))
    assert clean.dtype == np.int32 and clean.shape == (N,)
    np.testing.assert_array_equal(clean, P.argmax(axis=1))
    np.testing.assert_array_equal(data.multiclass_hard_labels(X, W), clean)
    # flip = 1: every label is changed to a different class, uniformly among the other C-1
    all_flipped = np.asarray(data.multiclass_hard_labels(X, W, flip=1.0, key=key(18)))
    assert np.all(all_flipped != clean) and all_flipped.min() >= 0 and all_flipped.max() < 5
    shift = (all_flipped - clean) % 5
    counts = np.bincount(shift, minlength=5)[1:]
    assert np.all(np.abs(counts / N - 0.25) < 5 * math.sqrt(0.25 * 0.75 / N))
    noisy = np.asarray(data.multiclass_hard_labels(X, W, flip=0.2, key=key(18)))
    assert abs(np.mean(noisy != clean) - 0.2) < 5 * math.sqrt(0.2 * 0.8 / N)
    # sampled labels: the clean sample does not depend on flip; flipped ones always differ
    s0 = np.asarray(data.multiclass_hard_labels(X, W, sample=True, key=key(19)))
    s1 = np.asarray(data.multiclass_hard_labels(X, W, flip=1.0, sample=True, key=key(19)))
    assert np.all(s0 != s1)


def test_multiclass_sampled_frequencies():
    x = jnp.cos(jnp.arange(float(DIM)))[None, :]
    X = jnp.tile(x, (N, 1))
    W = data.multiclass_teacher(key(20), DIM, 5, scale=0.5)
    p = np.asarray(data.softmax_labels(x, W))[0]
    y = np.asarray(data.multiclass_hard_labels(X, W, sample=True, key=key(21)))
    freq = np.bincount(y, minlength=5) / y.size
    assert np.all(np.abs(freq - p) < 5 * np.sqrt(p * (1 - p) / y.size))


# ------------------------------------------------------------------------------------------------
# Phuong–Lampert geometries
# ------------------------------------------------------------------------------------------------
N_KS = N


@pytest.mark.parametrize(
    "kind, params, d",
    [
        ("margin_cone", {"psi_max": math.pi / 3}, 10),
        ("margin_cone", {"psi_max": HALF_PI, "radius": "chi"}, 10),
        ("power_law", {"beta": 0.4, "radius": 2.0}, 10),
        ("power_law", {"beta": 3.0}, DIM),
        ("isotropic", {}, 10),
        ("isotropic", {"radius": 1.0}, 3),
        ("isotropic", {}, 50),
    ],
)
def test_geometry_angle_distribution_matches_exact_p(kind, params, d):
    w = data.linear_teacher(key(22), d, norm=2.0)
    X = data.geometry(kind, key(23), N_KS, w, **params)
    assert X.shape == (N_KS, d) and X.dtype == F64
    th = angles(X, w)
    assert np.all((th >= 0) & (th <= HALF_PI + 1e-12))
    dist = ks_distance(th, lambda t: data.geometry_p(kind, t, d, **params))
    assert dist < 0.02, dist


def test_margin_cone_margin_and_radius():
    w = data.linear_teacher(key(24), 10)
    psi_max = math.pi / 3
    X = data.margin_cone(key(25), N_KS, w, psi_max)
    th = angles(X, w)
    assert th.min() >= HALF_PI - psi_max - 1e-9  # no mass within γ = π/6 of the boundary
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, rtol=1e-13)
    assert abs(np.mean(X @ w > 0) - 0.5) < 5 * math.sqrt(0.25 / N_KS)  # fair signs
    Xc = np.asarray(data.margin_cone(key(25), N_KS, w, psi_max, radius="chi"))
    r2 = (Xc**2).sum(axis=1)  # ~ chi-square with 10 dof
    assert abs(r2.mean() - 10) < 5 * math.sqrt(20 / N_KS)
    X3 = np.asarray(data.margin_cone(key(25), N_KS, w, psi_max, radius=3.0))
    np.testing.assert_allclose(np.linalg.norm(X3, axis=1), 3.0, rtol=1e-13)
    assert angles(Xc, w).min() >= HALF_PI - psi_max - 1e-9  # θ̄ does not depend on the radius
    with pytest.raises(ValueError, match="psi_max"):
        data.margin_cone(key(25), 10, w, 2.0)
    with pytest.raises(ValueError, match="radius"):
        data.margin_cone(key(25), 10, w, radius="gauss")
    with pytest.raises(ValueError, match="w_star"):
        data.margin_cone(key(25), 10, jnp.zeros(4))


def test_exact_p_functions():
    t = jnp.linspace(0.0, HALF_PI, N)  # same shape as the KS tests' angles: compiled kernels are reused
    # isotropic: d=2 uniform angle, d=3 sin θ̄ uniform (Archimedes)
    np.testing.assert_allclose(data.isotropic_p(t, 2), 2 * t / math.pi, atol=1e-12)
    np.testing.assert_allclose(data.isotropic_p(t, 3), jnp.sin(t), atol=1e-12)
    np.testing.assert_allclose(data.power_law_angle_p(t, 2.0), (2 * t / math.pi) ** 2, atol=1e-15)
    # margin cone: zero below γ, linear on [γ, π/2], γ = π/6 for ψ_max = π/3
    pm = np.asarray(data.margin_cone_p(t, math.pi / 3))
    assert np.all(pm[np.asarray(t) < math.pi / 6 - 1e-12] == 0)
    np.testing.assert_allclose(data.margin_cone_p(jnp.array([math.pi / 3, HALF_PI]), math.pi / 3), [0.5, 1.0], atol=1e-14)
    t_wide = jnp.linspace(-1.0, 3.0, N)
    for kind, params in [("margin_cone", {"psi_max": 1.0}), ("power_law", {"beta": 0.7}), ("isotropic", {})]:
        p = np.asarray(data.geometry_p(kind, t, 3, **params))
        assert p[0] == 0.0 and abs(p[-1] - 1.0) < 1e-12 and np.all(np.diff(p) >= -1e-15)
        # clipped outside [0, π/2]
        out = np.asarray(data.geometry_p(kind, t_wide, 3, **params))
        assert np.all(out[np.asarray(t_wide) <= 0] == 0.0) and np.all(np.abs(out[np.asarray(t_wide) >= HALF_PI] - 1) < 1e-12)
    with pytest.raises(ValueError, match="kind"):
        data.geometry_p("cone", t, 3)
    with pytest.raises(ValueError, match="beta"):
        data.power_law_angle_p(t, 0.0)
    with pytest.raises(ValueError, match="d"):
        data.isotropic_p(t, 1)


def test_geometry_dispatch_equals_direct():
    w, n = data.linear_teacher(key(26), 10), N_KS
    np.testing.assert_array_equal(data.geometry("margin_cone", key(27), n, w, psi_max=1.0), data.margin_cone(key(27), n, w, 1.0))
    np.testing.assert_array_equal(data.geometry("power_law", key(27), n, w, beta=2.0), data.power_law_angle(key(27), n, w, 2.0))
    np.testing.assert_array_equal(data.geometry("isotropic", key(27), n, w), data.isotropic(key(27), n, 10))
    np.testing.assert_array_equal(data.isotropic(key(27), n, 10), jax.random.normal(key(27), (n, 10), F64))
    with pytest.raises(ValueError, match="margin_cone"):
        data.geometry("sphere", key(27), 9, w)
    with pytest.raises(ValueError, match="beta"):
        data.geometry("margin_cone", key(27), 9, w, beta=1.0)


# ------------------------------------------------------------------------------------------------
# augmentations
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def X_aug():
    return data.gaussian_design(key(30), N, data.power_law_spectrum(DIM, 1.0))


@given(rate=st.floats(0.0, 0.95), seed=st.integers(0, 100))
def test_feature_mask_rate(X_aug, rate, seed):
    Xm = np.asarray(data.feature_mask(key(seed), X_aug, rate))
    X = np.asarray(X_aug)
    zero = Xm == 0
    assert abs(zero.mean() - rate) <= 5 * math.sqrt(rate * (1 - rate) / X.size) + 1e-12
    np.testing.assert_array_equal(Xm[~zero], X[~zero])  # kept entries untouched
    Xr = np.asarray(data.feature_mask(key(seed), X_aug, rate, rescale=True))
    np.testing.assert_allclose(Xr, Xm / (1 - rate), rtol=1e-14)


def test_feature_noise_and_scale(X_aug):
    X = np.asarray(X_aug)
    E = np.asarray(data.feature_noise(key(31), X_aug, 0.3)) - X
    assert abs(E.std() - 0.3) < 5 * 0.3 / math.sqrt(2 * E.size)
    np.testing.assert_array_equal(data.feature_noise(key(31), X_aug, 0.0), X)
    Xs = np.asarray(data.feature_scale(key(32), X_aug, 0.5))
    ratio = Xs / X
    np.testing.assert_allclose(ratio, ratio[:, :1] * np.ones((1, DIM)), rtol=1e-12)  # one factor per row
    logs = np.log(ratio[:, 0])
    assert np.all(ratio > 0) and abs(logs.std() - 0.5) < 5 * 0.5 / math.sqrt(2 * N)
    np.testing.assert_array_equal(data.augment("none", key(33), X_aug, 123.0), X)
    np.testing.assert_array_equal(data.augment("noise", key(33), X_aug, 0.2), data.feature_noise(key(33), X_aug, 0.2))
    np.testing.assert_array_equal(data.augment("mask", key(33), X_aug, 0.2), data.feature_mask(key(33), X_aug, 0.2))
    np.testing.assert_array_equal(data.augment("scale", key(33), X_aug, 0.2), data.feature_scale(key(33), X_aug, 0.2))
    for call, name in [
        (lambda: data.feature_noise(key(0), X_aug, -0.1), "sigma"),
        (lambda: data.feature_mask(key(0), X_aug, 1.0), "rate"),
        (lambda: data.feature_scale(key(0), X_aug, float("nan")), "spread"),
        (lambda: data.augment("cutout", key(0), X_aug, 0.1), "kind"),
    ]:
        with pytest.raises(ValueError, match=name):
            call()


def test_augment_strength_can_be_traced(X_aug):
    strengths = jnp.array([0.0, 0.1, 0.5])
    out = jax.vmap(lambda s: data.feature_mask(key(34), X_aug, s))(strengths)
    assert out.shape == (3, N, DIM)
    np.testing.assert_array_equal(out[0], X_aug)
    np.testing.assert_array_equal(out[2], data.feature_mask(key(34), X_aug, 0.5))


# ------------------------------------------------------------------------------------------------
# determinism, keys, dtypes
# ------------------------------------------------------------------------------------------------
_W = np.linspace(-1.0, 1.0, DIM)
_X = np.cos(np.arange(N * DIM, dtype=np.float64)).reshape(N, DIM) * np.arange(1.0, N + 1.0)[:, None] / N
_WC = np.cos(np.arange(DIM * 5.0)).reshape(DIM, 5)

RANDOM_FUNCTIONS = {
    "random_orthogonal": lambda k: data.random_orthogonal(k, DIM),
    "gaussian_design": lambda k: data.gaussian_design(k, N, data.power_law_spectrum(DIM)),
    "make_design": lambda k: data.make_design(k, N, DIM, data.power_law_spectrum(DIM), n_test=N).X_test,
    "linear_teacher": lambda k: data.linear_teacher(k, DIM),
    "multiclass_teacher": lambda k: data.multiclass_teacher(k, DIM, 5),
    "regression_labels": lambda k: data.regression_labels(k, _X, _W, noise=0.5),
    "binary_hard_labels": lambda k: data.binary_hard_labels(_X, _W, flip=0.5, key=k),
    "multiclass_hard_labels": lambda k: data.multiclass_hard_labels(_X, _WC, flip=0.5, sample=True, key=k),
    "margin_cone": lambda k: data.margin_cone(k, N, _W, radius="chi"),
    "power_law_angle": lambda k: data.power_law_angle(k, N, _W, 2.0),
    "isotropic": lambda k: data.isotropic(k, N, DIM),
    "feature_noise": lambda k: data.feature_noise(k, _X, 0.3),
    "feature_mask": lambda k: data.feature_mask(k, _X, 0.5),
    "feature_scale": lambda k: data.feature_scale(k, _X, 0.3),
}


@pytest.mark.parametrize("name", sorted(RANDOM_FUNCTIONS))
def test_same_key_same_output_different_key_different(name):
    f = RANDOM_FUNCTIONS[name]
    a, b, c = f(key(40)), f(key(40)), f(key(41))
    assert isinstance(a, jax.Array)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize(
    "name", ["linear_teacher", "margin_cone"]
)
def test_jit_matches_eager(name):  # the wrappers' argument checks must not break under jit
    f = RANDOM_FUNCTIONS[name]
    np.testing.assert_allclose(jax.jit(f)(key(42)), f(key(42)), rtol=1e-12, atol=1e-14)


def test_float32_when_x64_off():
    assert data.linear_teacher(key(2), 4).dtype == F64  # compiled under x64 first: no stale cache below
    with jax.enable_x64(False):
        assert data.power_law_spectrum(4).dtype == jnp.float32
        X = data.gaussian_design(key(0), 5, np.ones(4))  # numpy float64 eigvals
        w = data.linear_teacher(key(2), 4)
        assert X.dtype == jnp.float32 and w.dtype == jnp.float32
        # numpy float64 inputs are cast to the default dtype
        assert data.feature_noise(key(5), np.ones((3, 4)), 0.1).dtype == jnp.float32


def test_numpy_inputs_give_jax_outputs():
    out = data.binary_soft_labels(_X, _W)
    assert isinstance(out, jax.Array) and out.dtype == F64
    assert isinstance(data.explicit_spectrum(np.array([2.0, 1.0])), jax.Array)


@pytest.mark.parametrize("name", ["gaussian_design", "margin_cone"])
def test_default_threefry_keys(name):
    f = RANDOM_FUNCTIONS[name]
    a, b, c = f(tf_key(40)), f(tf_key(40)), f(tf_key(41))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.shape == f(key(40)).shape and a.dtype == f(key(40)).dtype


def test_label_samplers_take_the_key_as_a_keyword_only_argument():
    """Convention: an optional key is keyword-only (``key=``); the key-first positional form
    ``f(key, X, w)`` is refused by the signature, and a different key gives different labels."""
    X = jax.random.normal(key(40), (30, 4))
    w, W = jnp.asarray([1.0, -0.5, 0.2, 0.0]), jax.random.normal(key(41), (4, 3))
    for f, t, kw in ((data.binary_hard_labels, w, {"flip": 0.3}), (data.multiclass_hard_labels, W, {"flip": 0.3, "sample": True})):
        new = np.asarray(f(X, t, **kw, key=key(42)))
        np.testing.assert_array_equal(np.asarray(f(X, t, **kw, key=key(42))), new)
        assert not np.array_equal(np.asarray(f(X, t, **kw, key=key(43))), new)  # the key is used
        with pytest.raises(TypeError, match="positional"):
            f(key(42), X, t, **kw)
