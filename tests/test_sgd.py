"""Minibatch SGD (docs/theory.md §10): the exact moment recursion, noise floor, stability limit and the
engine's SGD path, each against an independent route (the explicit d² × d² Kronecker recursion and
dense linear algebra in numpy, scipy's root finder, GD closed forms, Monte Carlo over engine runs),
with planted-bug negative tests and the refusal past the second-moment limit."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import brentq

from linkd import closed_form as cf
from linkd import engine, stability
from linkd.config import OPTIMIZER_FIELDS
from linkd.errors import ConfigError, InputError

# ------------------------------------------------------------------------------ independent routes


def problem(n=12, d=4, seed=0, noise=0.5):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * np.sqrt(np.linspace(2.0, 0.5, d))
    y = X @ rng.standard_normal(d) + noise * rng.standard_normal(n)
    return X, y


def kron_maps(X, lr, kappa_over_B):
    """Dense d² × d² matrices of C -> ACA and of the SGD second-moment map (numpy, vec = row-major)."""
    n, d = X.shape
    S = X.T @ X / n
    A = np.eye(d) - lr * S
    K4 = sum(np.kron(np.outer(x, x), np.outer(x, x)) for x in X) / n
    return A, S, K4, np.kron(A, A) + lr * lr * kappa_over_B * (K4 - np.kron(S, S))


def kron_moments(X, y, w0, C0, lr, kappa_over_B, steps):
    """(m_t, S_t = E ww^T) by the explicit Kronecker recursion on the second moment (not the covariance)."""
    n, d = X.shape
    A, S, K4, _ = kron_maps(X, lr, kappa_over_B)
    b = X.T @ y / n
    m, Sm = w0.copy(), C0 + np.outer(w0, w0)
    out = [(m.copy(), Sm.copy())]
    for _ in range(steps):
        rho = (K4 @ Sm.reshape(-1)).reshape(d, d)  # (1/n) sum_i (x_i^T S x_i) x_i x_i^T
        rho += sum((yi * yi - 2 * yi * (x @ m)) * np.outer(x, x) for x, yi in zip(X, y)) / n
        gg = S @ Sm @ S - np.outer(S @ m, b) - np.outer(b, S @ m) + np.outer(b, b)
        Am = A @ m
        Sm = (np.kron(A, A) @ Sm.reshape(-1)).reshape(d, d) + lr * (np.outer(Am, b) + np.outer(b, Am)) \
            + lr * lr * np.outer(b, b) + lr * lr * kappa_over_B * (rho - gg)
        m = Am + lr * b
        out.append((m.copy(), Sm.copy()))
    return out


def closed_to_w(mom, i):
    """(mean, second moment) in w-coordinates at recorded index i."""
    V = np.asarray(mom.basis)
    m = V @ np.asarray(mom.mean[i])
    C = V @ np.asarray(mom.cov[i]) @ V.T
    return m, C + np.outer(m, m)


# ------------------------------------------------------------------------------ the recursion


@pytest.mark.parametrize("sampling,kappa", [("with_replacement", lambda n, B: 1.0),
                                            ("without_replacement", lambda n, B: (n - B) / (n - 1))])
def test_recursion_equals_kronecker_route(sampling, kappa):
    X, y = problem()
    rng = np.random.default_rng(3)
    w0 = rng.standard_normal(4)
    C0 = np.diag(rng.uniform(0.1, 0.4, 4))
    B, lr, T = 3, 0.3, 25
    mom = cf.sgd_moments(X, y, w0, lr, T, batch_size=B, cov0=C0, sampling=sampling)
    ref = kron_moments(X, y, w0, C0, lr, kappa(12, B) / B, T)
    for t in (0, 1, 7, T):
        m, S = closed_to_w(mom, t)
        np.testing.assert_allclose(m, ref[t][0], rtol=0, atol=1e-12)
        np.testing.assert_allclose(S, ref[t][1], rtol=0, atol=1e-12)
    # planted bug: the other sampling's factor must be visible to the same comparison
    other = "without_replacement" if sampling == "with_replacement" else "with_replacement"
    bad = cf.sgd_moments(X, y, w0, lr, T, batch_size=B, cov0=C0, sampling=other)
    assert np.max(np.abs(closed_to_w(bad, T)[1] - ref[T][1])) > 1e-4


@settings(max_examples=4, deadline=None)
@given(n=st.integers(3, 9), d=st.integers(1, 4), B=st.integers(1, 5), frac=st.floats(0.05, 1.3),
       seed=st.integers(0, 10**6))
def test_recursion_matches_kronecker_on_random_problems(n, d, B, frac, seed):
    X, y = problem(n, d, seed)
    lr = frac / float(np.linalg.eigvalsh(X.T @ X / n)[-1])  # also past the SGD limit: still exact
    w0 = np.random.default_rng(seed + 1).standard_normal(d)
    mom = cf.sgd_moments(X, y, w0, lr, 6, batch_size=B)
    ref = kron_moments(X, y, w0, np.zeros((d, d)), lr, 1.0 / B, 6)
    m, S = closed_to_w(mom, 6)
    scale = max(1.0, float(np.max(np.abs(ref[6][1]))))
    np.testing.assert_allclose(S / scale, ref[6][1] / scale, rtol=0, atol=1e-11)
    np.testing.assert_allclose(m, ref[6][0], rtol=0, atol=1e-11 * scale)


def test_step_zero_is_the_init_and_the_mean_is_gd():
    X, y = problem(20, 5, 1)
    w0 = np.linspace(-1, 1, 5)
    C0 = 0.1 * np.eye(5)
    mom = cf.sgd_moments(X, y, w0, 0.2, 40, batch_size=2, cov0=C0, record_every=10)
    V = np.asarray(mom.basis)
    np.testing.assert_allclose(np.asarray(mom.mean[0]), V.T @ w0, atol=1e-15)
    np.testing.assert_allclose(np.asarray(mom.cov[0]), V.T @ C0 @ V, atol=1e-15)
    assert list(mom.steps) == [0, 10, 20, 30, 40]
    gd = np.asarray(cf.gd_mse_trajectory(np.asarray(mom.eigvals), V.T @ np.linalg.lstsq(X, y, rcond=None)[0],
                                         V.T @ w0, 0.2, np.asarray(mom.steps)))
    np.testing.assert_allclose(np.asarray(mom.mean), gd, atol=1e-12)
    var_only = cf.sgd_moments(X, y, w0, 0.2, 40, batch_size=2, cov0=C0, record_every=10, keep_cov=False)
    assert var_only.cov is None
    np.testing.assert_allclose(np.asarray(var_only.var), np.asarray(mom.var), atol=1e-15)


def test_expected_loss_and_homogenized_risk():
    X, y = problem(30, 4, 2)
    lr = 0.1
    mom = cf.sgd_moments(X, y, None, lr, 15, batch_size=3)
    ref = kron_moments(X, y, np.zeros(4), np.zeros((4, 4)), lr, 1 / 3, 15)
    direct = [float(np.trace(X.T @ X / 30 @ S) / 2 - y @ X @ m / 30 + y @ y / 60) for m, S in ref]
    np.testing.assert_allclose(cf.sgd_expected_loss(mom, X, y), direct, atol=1e-12)
    # B -> infinity: the homogenized risk is the GD loss
    hom = cf.sgd_homogenized_risk(X, y, None, lr, 15, batch_size=10**12)
    w, gd_loss = np.zeros(4), []
    for _ in range(16):
        gd_loss.append(float(np.sum((X @ w - y) ** 2) / 60))
        w = w - lr * X.T @ (X @ w - y) / 30
    np.testing.assert_allclose(hom, gd_loss, atol=1e-12)


# ------------------------------------------------------------------------------ floor and limit


def test_noise_floor_equals_dense_linear_solve():
    X, y = problem(15, 3, 4)
    B, lr = 2, 0.2
    fl = cf.sgd_noise_floor(X, y, lr, batch_size=B)
    _, _, _, L = kron_maps(X, lr, 1 / B)
    r = X @ np.linalg.lstsq(X, y, rcond=None)[0] - y
    Q = lr * lr / B * sum(ri * ri * np.outer(x, x) for x, ri in zip(X, r)) / 15
    C = np.linalg.solve(np.eye(9) - L, Q.reshape(-1)).reshape(3, 3)
    V = fl.basis
    np.testing.assert_allclose(V @ fl.cov @ V.T, C, atol=1e-13)
    np.testing.assert_allclose(fl.radius, np.max(np.abs(np.linalg.eigvals(L))), atol=1e-9)
    # a distilled student (interpolable targets) has no floor
    kd = cf.sgd_noise_floor(X, X @ np.ones(3), lr, batch_size=B)
    assert np.max(np.abs(kd.cov)) < 1e-15
    assert np.max(np.abs(V @ fl.cov @ V.T - 1.01 * C)) > 1e-4  # planted bug: a 1% error is visible


def test_lr_limit_is_the_root_of_the_dense_spectral_radius():
    X, _ = problem(12, 4, 5)
    for B, samp, kap in ((1, "with_replacement", 1.0), (3, "with_replacement", 1.0),
                         (3, "without_replacement", 9 / 11)):
        def radius(lr):
            return np.max(np.abs(np.linalg.eigvals(kron_maps(X, lr, kap / B)[3]))) - 1.0

        gd = 2.0 / float(np.linalg.eigvalsh(X.T @ X / 12)[-1])
        root = brentq(radius, 1e-4, gd * (1 - 1e-9), xtol=1e-15)
        assert cf.sgd_lr_limit(X, batch_size=B, sampling=samp) == pytest.approx(root, rel=1e-9)
        assert cf.sgd_lr_limit(X, batch_size=B, sampling=samp) < gd
        lr = 0.7 * root
        assert cf.sgd_spectral_radius(X, lr, batch_size=B, sampling=samp) == pytest.approx(radius(lr) + 1, rel=1e-8)
    big = cf.sgd_lr_limit(X, batch_size=10**9)
    assert big == pytest.approx(2.0 / float(np.linalg.eigvalsh(X.T @ X / 12)[-1]), rel=1e-6)


def test_stability_functions_against_dense_maps():
    X, _ = problem(10, 3, 11)
    lr, B = 0.3, 2
    _, S, K4, L = kron_maps(X, lr, 1 / B)
    dense = np.max(np.abs(np.linalg.eigvals(L)))
    lo, hi, _ = stability.sgd_radius_bracket(X, lr, B)
    assert lo <= dense + 1e-12 and dense <= hi + 1e-12
    assert stability.sgd_radius(X, lr, B) == pytest.approx(dense, rel=1e-9)
    C = np.random.default_rng(0).standard_normal((3, 3))
    C = C + C.T
    lam, Xr = stability.sgd_rowspace(X)
    U = np.linalg.svd(X, full_matrices=False)[2].T  # the basis of sgd_rowspace
    np.testing.assert_allclose(U @ stability.sgd_fourth_moment(U.T @ C @ U, Xr) @ U.T,
                               (K4 @ C.reshape(-1)).reshape(3, 3), atol=1e-12)
    np.testing.assert_allclose(U @ stability.sgd_second_moment_map(U.T @ C @ U, lam, Xr, lr, 1 / B) @ U.T,
                               (L @ C.reshape(-1)).reshape(3, 3), atol=1e-12)
    lo_e, hi_e, _ = stability.sgd_limit_bracket(X, B)
    eta = stability.sgd_second_moment(X, B)
    assert lo_e <= eta <= hi_e and hi_e - lo_e < 1e-9 * eta
    assert np.max(np.abs(np.linalg.eigvals(kron_maps(X, 0.999 * eta, 1 / B)[3]))) < 1.0
    assert np.max(np.abs(np.linalg.eigvals(kron_maps(X, 1.001 * eta, 1 / B)[3]))) > 1.0
    stop = stability.sgd_limit_bracket(X, B, decide_lr=0.5 * eta)  # decided early: the bracket is loose
    assert stop[0] > 0.5 * eta and stop[2] < stability.sgd_limit_bracket(X, B)[2]


def test_teacher_student_pipeline():
    X, y = problem(16, 3, 12)
    w_T = np.array([0.5, -1.0, 0.2])
    lr = 0.4 * cf.sgd_lr_limit(X, batch_size=2)
    res = cf.sgd_teacher_student(X, y, w_T, None, lr, 60, batch_size=2, record_every=30)
    ref_kd = kron_moments(X, X @ w_T, np.zeros(3), np.zeros((3, 3)), lr, 1 / 2, 60)
    ref_raw = kron_moments(X, y, np.zeros(3), np.zeros((3, 3)), lr, 1 / 2, 60)
    np.testing.assert_allclose(closed_to_w(res.kd, 2)[1], ref_kd[60][1], atol=1e-12)
    np.testing.assert_allclose(closed_to_w(res.raw, 2)[1], ref_raw[60][1], atol=1e-12)
    assert np.max(np.abs(res.kd_floor.cov)) < 1e-15 and np.min(np.diag(res.raw_floor.cov)) > 0
    assert res.radius == pytest.approx(cf.sgd_spectral_radius(X, lr, batch_size=2), rel=1e-8)
    kd_var = np.asarray(res.kd.var)  # the distilled student's variance falls towards 0, the raw one's does not
    assert np.all(kd_var[2] < 2 * res.radius ** 30 * kd_var[1]) and np.all(np.asarray(res.raw.var[2]) > 0.5 * res.raw_floor.var)


def test_engine_sgd_limit_applies_only_to_plain_sgd_on_mse():
    X, _ = problem(20, 3, 13)
    Xj, w = jnp.asarray(X), jnp.zeros(3)
    spec = engine.EngineSpec(steps=3, batch_size=2)
    assert engine.limits.sgd_applies(w, Xj, spec)
    lo, hi = engine.limits.sgd_limit(w, Xj, spec)
    assert lo == pytest.approx(cf.sgd_lr_limit(X, batch_size=2), rel=1e-6) and hi >= lo
    for other in (engine.EngineSpec(steps=3), engine.EngineSpec(steps=3, batch_size=2, optimizer="momentum"),
                  engine.EngineSpec(steps=3, batch_size=2, sampling="shuffled"),
                  engine.EngineSpec(steps=3, batch_size=20, sampling="without_replacement"),
                  engine.EngineSpec(family="binary", steps=3, batch_size=2)):
        assert not engine.limits.sgd_applies(w, Xj, other) and engine.limits.sgd_limit(w, Xj, other) is None
    assert engine.limits.sgd_applies(w, Xj, engine.EngineSpec(steps=3, batch_size=40))  # B > n: still stochastic


def test_closed_forms_refuse_bad_arguments():
    X, y = problem()
    limit = cf.sgd_lr_limit(X, batch_size=2)
    with pytest.raises(InputError, match=r"sgd_noise_floor: lr .*batch_size = 2"):
        cf.sgd_noise_floor(X, y, 1.01 * limit, batch_size=2)
    cf.sgd_noise_floor(X, y, 0.99 * limit, batch_size=2)
    with pytest.raises(InputError, match="batch_size"):
        cf.sgd_moments(X, y, None, 0.1, 5, batch_size=0)
    with pytest.raises(InputError, match="sampling"):
        cf.sgd_moments(X, y, None, 0.1, 5, batch_size=2, sampling="shuffled")
    with pytest.raises(InputError, match="y"):
        cf.sgd_moments(X, y[:-1], None, 0.1, 5, batch_size=2)
    with pytest.raises(ConfigError, match="batch_size"):
        stability.sgd_noise_scale(5, 6, "without_replacement")


# ------------------------------------------------------------------------------ the engine


def test_engine_refuses_a_step_past_the_sgd_limit_with_one_line():
    X, y = problem(30, 4, 6)
    limit = cf.sgd_lr_limit(X, batch_size=2)
    data = engine.Data(jnp.asarray(X), jnp.asarray(y))
    spec = engine.EngineSpec(steps=5, batch_size=2)
    with pytest.raises(ConfigError) as e:
        engine.simulate(jnp.zeros(4), data, engine.Hyper(lr=1.02 * limit), spec, jax.random.key(0))
    msg = str(e.value)
    assert "\n" not in msg and "hyper.lr" in msg and "batch_size = 2" in msg and f"{limit:.6g}" in msg
    assert 1.02 * limit < 2.0 / float(np.linalg.eigvalsh(X.T @ X / 30)[-1])  # GD alone would accept it
    engine.simulate(jnp.zeros(4), data, engine.Hyper(lr=0.98 * limit), spec, jax.random.key(0))


def test_monte_carlo_matches_the_moments_and_a_planted_bug_fails():
    X, y = problem(24, 3, 7)
    B, lr, T, S = 2, 0.5 * cf.sgd_lr_limit(X, batch_size=2), 12, 5000
    w0 = np.array([1.0, -0.5, 0.3])
    for samp in ("with_replacement", "without_replacement"):
        mom = cf.sgd_moments(X, y, w0, lr, T, batch_size=B, sampling=samp, record_every=4)
        V = np.asarray(mom.basis)
        data = engine.Data(jnp.asarray(X), jnp.asarray(y), basis=jnp.asarray(V))
        spec = engine.EngineSpec(steps=T, record_every=4, batch_size=B, sampling=samp)
        tr = engine.simulate_seeds(jnp.asarray(w0), data, engine.Hyper(lr=lr), spec, jax.random.key(9), S)
        assert tr.coeffs.shape == (S, 4, 3)
        mc = engine.seed_moments(tr.coeffs, centre=np.asarray(mom.mean))
        z_mean = (mc.mean[1:] - np.asarray(mom.mean[1:])) / mc.se_mean[1:]
        z_cov = (mc.cov[1:] - np.asarray(mom.cov[1:])) / mc.se_cov[1:]
        assert np.max(np.abs(z_mean)) < 4.5 and np.max(np.abs(z_cov)) < 4.5, samp
        wrong = cf.sgd_moments(X, y, w0, lr, T, batch_size=2 * B, sampling=samp, record_every=4)  # planted bug
        assert np.max(np.abs((mc.cov[1:] - np.asarray(wrong.cov[1:])) / mc.se_cov[1:])) > 6


def test_seed_moments_match_numpy():
    c = np.random.default_rng(0).standard_normal((50, 3, 2))
    mm = engine.seed_moments(c)
    for r in range(3):
        np.testing.assert_allclose(mm.cov[r], np.cov(c[:, r].T), atol=1e-14)
    np.testing.assert_allclose(mm.se_mean, c.std(axis=0, ddof=1) / np.sqrt(50), atol=1e-14)
    assert engine.seed_moments(c, full=False).cov is None


def test_random_init_covariance_and_fixed_keys():
    X, y = problem(10, 2, 8)
    C0 = np.array([[0.5, 0.2], [0.2, 0.3]])
    data = engine.Data(jnp.asarray(X), jnp.asarray(y), basis=jnp.eye(2))
    spec = engine.EngineSpec(steps=2, batch_size=3)
    tr = engine.simulate_seeds(jnp.zeros(2), data, engine.Hyper(lr=0.05), spec, jax.random.key(1), 3000,
                               init_cov=jnp.asarray(C0), chunk=1000)
    mm = engine.seed_moments(tr.coeffs, centre=np.zeros((3, 2)))
    assert np.max(np.abs((mm.cov[0] - C0) / mm.se_cov[0])) < 4.5
    again = engine.simulate_seeds(jnp.zeros(2), data, engine.Hyper(lr=0.05), spec, jax.random.key(1), 3000,
                                  init_cov=jnp.asarray(C0), chunk=1000)
    np.testing.assert_array_equal(tr.coeffs, again.coeffs)


def test_shuffled_epochs_visit_every_row_once_per_epoch():
    from linkd.engine import sampling

    spec = engine.EngineSpec(steps=1, batch_size=3, sampling="shuffled")
    key, n = jax.random.key(4), 12
    def steps(key):
        state = sampling.sampler_init(key, n, spec)
        out = []
        for t in range(8):
            idx, state = sampling.draw(state, key, jnp.asarray(t), n, spec)
            out.append(idx)
        return jnp.stack(out)

    seen = list(np.asarray(jax.jit(steps)(key)))
    for e in range(2):
        assert sorted(np.concatenate(seen[4 * e:4 * e + 4]).tolist()) == list(range(12))
    assert not np.array_equal(np.concatenate(seen[:4]), np.concatenate(seen[4:]))
    with pytest.raises(ConfigError, match="sampling"):
        engine.EngineSpec(batch_size=2, sampling="bootstrap")


@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
def test_momentum_and_adam_run_on_minibatches(optimizer):
    X, y = problem(20, 3, 9)
    data = engine.Data(jnp.asarray(X), jnp.asarray(y), basis=jnp.eye(3))
    spec = engine.EngineSpec(optimizer=optimizer, steps=50, record_every=10, batch_size=4, sampling="shuffled")
    tr = engine.simulate_seeds(jnp.zeros(3), data, engine.Hyper(lr=0.02, momentum=0.5), spec, jax.random.key(2), 8)
    assert tr.coeffs.shape == (8, 6, 3) and np.all(np.isfinite(tr.coeffs))
    assert np.std(np.asarray(tr.coeffs[:, -1]), axis=0).min() > 0  # the seeds differ
    loss = np.asarray(tr.metrics["train_loss"])
    assert np.all(loss[:, -1] < loss[:, 0])


def test_optimizer_config_keys_match_the_engine():
    from linkd.engine.types import OPTIMIZERS, SAMPLINGS

    assert OPTIMIZER_FIELDS["optimizer"].choices == OPTIMIZERS
    assert OPTIMIZER_FIELDS["sampling"].choices == SAMPLINGS
