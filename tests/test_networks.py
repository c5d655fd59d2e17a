"""Two-layer networks (docs/theory.md §11): the empirical NTK against an explicit Jacobian, the analytic
kernel against Monte Carlo, 1-D quadrature and neural-tangents' layer recursion, the linearised
trajectory against GD on jax.linearize, and the engine against a numpy GD loop; each check also
shown to fail on a planted bug."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree
from scipy import integrate
from scipy.special import erf
from scipy.stats import norm

from linkd import engine, networks, ntk
from linkd.errors import ConfigError, InputError, MemoryBudgetError

ACTS = ("relu", "erf")


def _close(a, b, tol) -> bool:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return a.shape == b.shape and float(np.max(np.abs(a - b))) <= tol * max(1.0, float(np.max(np.abs(b))))


def _problem(n=6, d=3, m=7, act="relu", scaling="ntk", seed=0):
    kx, kp = jax.random.split(jax.random.key(seed))
    X = jax.random.normal(kx, (n, d), jnp.float64)
    return X, networks.init_two_layer(kp, d, m, activation=act, scaling=scaling)


def _np_net(p):
    """numpy copies of the parameters and the activation pair (an independent route)."""
    W, a = np.asarray(p.W), np.asarray(p.a)
    if p.activation == "relu":
        return W, a, (lambda u: np.maximum(u, 0.0)), (lambda u: (u > 0).astype(np.float64))
    return W, a, erf, (lambda u: 2.0 / math.sqrt(math.pi) * np.exp(-u * u))


# ------------------------------------------------------------------------------ empirical NTK


@pytest.mark.parametrize("act", ACTS)
def test_jacobian_and_gram_equal_the_explicit_jacfwd_jacobian(act):
    X, p = _problem(act=act)
    X2 = X[:4] * 0.5 + 0.1
    flat, unravel = ravel_pytree(p)
    J = np.asarray(jax.jacfwd(lambda th: networks.apply(unravel(th), X))(flat))
    J2 = np.asarray(jax.jacfwd(lambda th: networks.apply(unravel(th), X2))(flat))
    assert _close(ntk.jacobian(p, X), J, 1e-13)
    for K in (ntk.gram(p, X, block=3).K, ntk.gram_two_layer(p, X)):
        assert _close(K, J @ J.T, 1e-13)
    for K in (ntk.gram(p, X, X2, block=3).K, ntk.gram_two_layer(p, X, X2)):
        assert _close(K, J @ J2.T, 1e-13)
    assert not _close(ntk.gram_two_layer(p, X) * (1 + 1e-9), J @ J.T, 1e-13)  # planted bug is caught
    bad = p.replace(a=jnp.ones_like(p.a))  # the a^2 weights dropped
    assert not _close(ntk.gram_two_layer(bad, X), J @ J.T, 1e-6)


def test_blocked_gram_equals_unblocked_and_respects_the_budget():
    X, p = _problem(n=9, m=11)
    full = np.asarray(ntk.gram(p, X, block=9).K)
    for b in (1, 4):
        g = ntk.gram(p, X, block=b)
        assert g.block == b and _close(g.K, full, 1e-14)
        assert g.peak_bytes == ntk.gram_bytes(9, 9, 11 * 4, b)
    budget = ntk.gram_bytes(9, 9, 44, 4)
    g = ntk.gram(p, X, max_bytes=budget)  # 3 balanced blocks of 3 rows
    assert g.peak_bytes <= budget and g.block == 3 and _close(g.K, full, 1e-14)
    with pytest.raises(MemoryBudgetError):
        ntk.gram(p, X, max_bytes=8 * 3 * 81)  # K (held three times) alone fills it
    with pytest.raises(MemoryBudgetError):
        ntk.jacobian(p, X, max_bytes=100)
    with pytest.raises(InputError):
        ntk.gram(p, X, block=0)


# ------------------------------------------------------------------------------ infinite width


def _quadrature(act, s11, s12, s22):
    """E[phi phi'] and E[phi' phi'] by 1-D quadrature over u (the inner Gaussian integral in closed form)."""
    s1, s2 = math.sqrt(s11), math.sqrt(s22)
    rho = s12 / (s1 * s2)
    c = math.sqrt(1.0 - rho * rho)
    if act == "relu":
        f = lambda mu, s: mu * norm.cdf(mu / s) + s * norm.pdf(mu / s)  # noqa: E731  E[relu(mu + sZ)]
        g = lambda mu, s: norm.cdf(mu / s)  # noqa: E731  E[1(mu + sZ > 0)]
        phi, dphi = (lambda u: max(u, 0.0)), (lambda u: float(u > 0))
    else:
        f = lambda mu, s: erf(mu / math.sqrt(1 + 2 * s * s))  # noqa: E731
        g = lambda mu, s: 2 / math.sqrt(math.pi) / math.sqrt(1 + 2 * s * s) * math.exp(-mu * mu / (1 + 2 * s * s))  # noqa: E731
        phi, dphi = erf, (lambda u: 2 / math.sqrt(math.pi) * math.exp(-u * u))
    out = []
    for outer, inner in ((phi, f), (dphi, g)):
        integrand = lambda z: norm.pdf(z) * outer(s1 * z) * inner(s2 * rho * z, s2 * c)  # noqa: E731
        out.append(integrate.quad(integrand, -12, 0, epsabs=1e-13, epsrel=1e-12)[0]
                   + integrate.quad(integrand, 0, 12, epsabs=1e-13, epsrel=1e-12)[0])
    return out


@pytest.mark.parametrize("act", ACTS)
def test_dual_kernels_equal_quadrature(act):
    for s11, s12, s22 in ((1.0, 0.3, 0.8), (2.0, -1.1, 1.5), (0.5, 0.49, 0.6), (1.3, 0.0, 0.7)):
        got = [float(v) for v in ntk.dual_kernels(act, s11, s12, s22)]
        want = _quadrature(act, s11, s12, s22)
        assert _close(got, want, 1e-9), (s11, s12, s22, got, want)
        assert not _close([got[0], 1.01 * got[1]], want, 1e-9)  # planted bug is caught


def _nt_relu_ntk(x1, x2):
    """neural-tangents' kernel recursion for stax.serial(Dense(m, W_std=1, b_std=None), Relu(),
    Dense(1, W_std=1, b_std=None)), ntk parameterization, written from its source: inputs give
    nngp = x.x'/d, ntk = 0; Dense: nngp <- W_std^2 nngp, ntk <- nngp + W_std^2 ntk; ABRelu(0, 1):
    angle = arctan2(sqrt(prod - nngp^2), nngp), dot_sigma = 1/2 - angle/(2 pi),
    nngp <- sqrt(prod - nngp^2)/(2 pi) + dot_sigma nngp, ntk <- ntk dot_sigma."""
    d = x1.shape[0]
    cov1, cov2, nngp, k_ntk = x1 @ x1 / d, x2 @ x2 / d, x1 @ x2 / d, 0.0
    k_ntk = nngp + k_ntk  # Dense 1 (W_std = 1)
    root = math.sqrt(max(cov1 * cov2 - nngp * nngp, 0.0))
    angle = math.atan2(root, nngp)
    dot_sigma = 0.5 - angle / (2 * math.pi)
    nngp, k_ntk = root / (2 * math.pi) + dot_sigma * nngp, k_ntk * dot_sigma
    return nngp + k_ntk  # Dense 2 (W_std = 1)


def test_relu_kernel_equals_neural_tangents_recursion():
    X = np.asarray(jax.random.normal(jax.random.key(3), (5, 7), jnp.float64))
    Theta = np.asarray(ntk.analytic_ntk(jnp.asarray(X)))
    nt = np.array([[_nt_relu_ntk(X[i], X[j]) for j in range(5)] for i in range(5)])
    assert _close(Theta, nt, 1e-14)
    assert not _close(Theta * (1 + 1e-12), nt, 1e-14)


@pytest.mark.parametrize("act", ACTS)
def test_analytic_kernel_equals_monte_carlo_at_large_width(act):
    X, p = _problem(n=4, d=5, m=2 ** 14, act=act, seed=4)
    K = np.asarray(ntk.gram_two_layer(p, X))
    W, a, phi, dphi = _np_net(p)
    Xn = np.asarray(X)
    U = Xn @ W.T / math.sqrt(5)
    terms = phi(U)[:, None] * phi(U)[None] + (Xn @ Xn.T / 5)[..., None] * a * a * dphi(U)[:, None] * dphi(U)[None]
    se = terms.std(-1, ddof=1) / math.sqrt(W.shape[0])
    Theta = np.asarray(ntk.analytic_ntk(X, activation=act))
    assert np.max(np.abs(K - Theta) / se) < 4.5
    assert np.max(np.abs(K - 1.1 * Theta) / se) > 4.5  # planted bug is caught


# ------------------------------------------------------------------------------ linearised dynamics


def _linearized_gd(p, X, Xt, y, lr, T):
    """GD on the linearised network (jax.linearize at theta_0, transpose of its jvp), outputs per step."""
    flat, unravel = ravel_pytree(p)
    f0, jvp = jax.linearize(lambda th: networks.apply(unravel(th), X), flat)
    ft0, jvp_t = jax.linearize(lambda th: networks.apply(unravel(th), Xt), flat)
    vjp = jax.linear_transpose(jvp, flat)

    @jax.jit
    def run(delta0):
        def step(delta, _):
            (g,) = vjp((f0 + jvp(delta) - y) / X.shape[0])
            delta = delta - lr * g
            return delta, (f0 + jvp(delta), ft0 + jvp_t(delta))

        _, (tr, te) = jax.lax.scan(step, delta0, None, length=T)
        return tr, te

    tr, te = run(jnp.zeros_like(flat))
    return np.concatenate([np.asarray(f0)[None], tr]), np.concatenate([np.asarray(ft0)[None], te])


@pytest.mark.parametrize("act,width", [("relu", 5), ("erf", 1)])
def test_linearized_trajectory_equals_gd_on_jax_linearize(act, width):
    X, p = _problem(n=8, d=3, m=width, act=act, seed=5)  # width 1: p = 4 < n, K has a null space
    Xt = X[:3] * 0.7 - 0.2
    y = jnp.sin(2.0 * X[:, 0])
    sp = ntk.kernel_spectrum(ntk.gram_two_layer(p, X))
    lr, T = 0.9 / float(sp.eigvals[0]), 40
    want_train, want_test = _linearized_gd(p, X, Xt, y, lr, T)
    lin = ntk.linearized(sp, networks.apply(p, X), y, lr, T, K_test=ntk.gram_two_layer(p, Xt, X),
                         f0_test=networks.apply(p, Xt))
    assert _close(lin.train, want_train, 1e-10) and _close(lin.test, want_test, 1e-10)
    bad = ntk.linearized(sp, networks.apply(p, X), y, lr * (1 + 1e-6), T, K_test=ntk.gram_two_layer(p, Xt, X),
                         f0_test=networks.apply(p, Xt))
    assert not _close(bad.train, want_train, 1e-10)  # planted bug is caught
    q = ntk.eigen_progress(sp, lin.train, networks.apply(p, X), y)
    F = ntk.predicted_progress(sp, lr, np.arange(T + 1))
    excited = np.abs(np.asarray(sp.basis.T @ (y - networks.apply(p, X)))) > 1e-8
    assert _close(np.asarray(q)[:, excited], np.asarray(F)[:, excited], 1e-10)


def test_linearized_refuses_bad_shapes():
    X, p = _problem()
    sp = ntk.kernel_spectrum(ntk.gram_two_layer(p, X))
    with pytest.raises(InputError):
        ntk.linearized(sp, jnp.zeros(3), jnp.zeros(6), 0.1, 3)
    with pytest.raises(InputError):
        ntk.linearized(sp, jnp.zeros(6), jnp.zeros(6), 0.1, 3, K_test=jnp.zeros((2, 6)))
    with pytest.raises(InputError):
        networks.init_two_layer(jax.random.key(0), 3, 4, activation="tanh")


# ------------------------------------------------------------------------------ the engine


def _numpy_gd(p, X, z_t, lr, T, family, tau):
    """The same GD in numpy with hand-written gradients (MSE, or tau^2-scaled binary KD)."""
    W, a, phi, dphi = _np_net(p)
    W, a, X, z_t = W.copy(), a.copy(), np.asarray(X), np.asarray(z_t)
    n, d = X.shape
    s = p.output_scale
    sig = lambda z: 1.0 / (1.0 + np.exp(-z))  # noqa: E731
    for _ in range(T):
        U = X @ W.T / math.sqrt(d)
        z = s * phi(U) @ a
        g = (z - z_t) / n if family == "mse" else tau * (sig(z / tau) - sig(z_t / tau)) / n
        ga = s * phi(U).T @ g
        gW = s * ((g[:, None] * dphi(U)) * a[None, :]).T @ X / math.sqrt(d)
        W, a = W - lr * gW, a - lr * ga
    return W, a


@pytest.mark.parametrize("act,scaling,family", [("relu", "ntk", "mse"), ("erf", "mean_field", "mse"),
                                                ("erf", "ntk", "binary")])
def test_engine_trains_a_network_like_numpy(act, scaling, family):
    X, p = _problem(n=10, d=3, m=16, act=act, scaling=scaling, seed=6)
    Xt = X[:4] + 0.3
    z_t = jnp.tanh(X[:, 1] - X[:, 0])
    tau, T = 2.5, 15
    lr = 0.3 * engine.lr_limit(p, X, engine.EngineSpec(family=family), tau=tau)[0]
    spec = engine.EngineSpec(family=family, steps=T, record_every=5)
    tr = engine.simulate(p, engine.Data(X, z_t, X_test=Xt), engine.Hyper(lr=lr, tau=tau), spec)
    W, a = _numpy_gd(p, X, z_t, lr, T, family, tau)
    assert isinstance(tr.params, networks.TwoLayer) and tr.params.scaling == scaling
    assert _close(tr.params.W, W, 1e-11) and _close(tr.params.a, a, 1e-11)
    assert not _close(tr.params.a, a * (1 + 1e-8), 1e-11)  # planted bug is caught
    assert tr.metrics["outputs"].shape == (4, 10) and tr.metrics["test_outputs"].shape == (4, 4)
    assert _close(tr.metrics["outputs"][-1], networks.apply(tr.params, X), 1e-13)
    assert _close(tr.metrics["test_outputs"][0], networks.apply(p, Xt), 1e-13)


def test_engine_refuses_a_step_past_the_ntk_limit_and_reports_divergence():
    X, p = _problem(n=10, d=3, m=64, seed=8)
    y = jnp.sin(X[:, 0])
    lam = float(ntk.kernel_spectrum(ntk.gram_two_layer(p, X)).eigvals[0])
    limit, what = engine.lr_limit(p, X, engine.EngineSpec())
    assert abs(limit - 2.0 / lam) <= 1e-6 * limit and "NTK" in what  # the power iteration finds 2/lambda_max(K/n)
    spec = engine.EngineSpec(steps=50)
    with pytest.raises(ConfigError, match="past the stability limit"):
        engine.simulate(p, engine.Data(X, y), engine.Hyper(lr=2.05 / lam), spec)
    tr = engine.simulate(p, engine.Data(X, y), engine.Hyper(lr=40.0 / lam), spec, check=False)
    assert int(tr.bad_step) >= 0
    with pytest.raises(ConfigError, match="basis"):
        engine.simulate(p, engine.Data(X, y, basis=jnp.eye(3)), engine.Hyper(lr=0.5 / lam), spec)


def test_engine_memory_estimate_counts_the_width(monkeypatch):
    X, p = _problem(n=10, d=3, m=4096, seed=9)
    data = engine.Data(X, jnp.zeros(10))
    fp = engine.estimate_bytes("plain", p, data, engine.EngineSpec(steps=10))
    assert fp.work == 4 * 10 * 4096 * 8 and fp.record == 11 * (8 + 10) * 8
    monkeypatch.setenv("LINKD_MEMORY_LIMIT", str(fp.total))  # 80 % of it is not enough
    with pytest.raises(MemoryBudgetError):
        engine.simulate(p, data, engine.Hyper(lr=0.1), engine.EngineSpec(steps=10), check=False)
