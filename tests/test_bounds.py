"""Phuong–Lampert angles, p(θ), risk bound, exact isotropic risk and Monte Carlo learning curves."""
import itertools
import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import beta as beta_dist

from linkd import bounds, data
from linkd import closed_form as cf
from linkd.errors import InputError


def _unit(d, k=0):
    return jnp.zeros(d).at[k].set(1.0)


# ------------------------------------------------------------------------------ angles and p(θ)
def test_angle_to_boundary_hand_cases():
    w = jnp.array([2.0, 0.0, 0.0])
    X = jnp.array([[3.0, 0.0, 0.0], [0.0, 1.0, -1.0], [1.0, 1.0, 0.0], [-1.0, 0.0, math.sqrt(3.0)], [0.0, 0.0, 0.0]])
    got = np.asarray(bounds.angle_to_boundary(X, w))
    np.testing.assert_allclose(got, [math.pi / 2, 0.0, math.pi / 4, math.pi / 6, 0.0], atol=1e-12)
    assert float(bounds.angle_to_boundary(X[2], w)) == pytest.approx(math.pi / 4)
    # scale invariant in x and in w*
    np.testing.assert_allclose(np.asarray(bounds.angle_to_boundary(-7.0 * X, 0.1 * w)), got, atol=1e-12)


def test_angle_of_margin_cone_samples_respects_margin():
    w = _unit(6)
    X = data.margin_cone(jax.random.key(0), 2000, w, math.pi / 3)
    th = np.asarray(bounds.angle_to_boundary(X, w))
    assert th.min() >= math.pi / 6 - 1e-12 and th.max() <= math.pi / 2 + 1e-12


def test_empirical_p_hand_values_and_vectorised():
    p = bounds.empirical_p(jnp.array([0.5, 0.2, 0.1, 0.2]))
    np.testing.assert_allclose(np.asarray(p(jnp.array([0.0, 0.1, 0.15, 0.2, 0.49, 0.5, 2.0]))),
                               [0.0, 0.25, 0.25, 0.75, 0.75, 1.0, 1.0])
    assert p(jnp.zeros((3, 2))).shape == (3, 2)
    assert float(jax.jit(p)(0.2)) == 0.75


def test_iso_gaussian_p_matches_data_and_samples():
    th = jnp.linspace(0.0, math.pi / 2, 7)
    np.testing.assert_allclose(np.asarray(bounds.iso_gaussian_p(th, 20)), np.asarray(data.isotropic_p(th, 20)), atol=1e-12)
    X = jax.random.normal(jax.random.key(1), (40_000, 5))
    pe = bounds.empirical_p(bounds.angle_to_boundary(X, _unit(5)))
    np.testing.assert_allclose(np.asarray(pe(th)), np.asarray(bounds.iso_gaussian_p(th, 5)), atol=0.01)


# ------------------------------------------------------------------------------ the bound
def test_bound_margin_cone_is_exactly_two_to_minus_n():
    p = lambda t: data.margin_cone_p(t, math.pi / 3)  # noqa: E731
    n = jnp.arange(1, 13)
    exact = 2.0 ** -np.arange(1, 13)
    # 3001 points put β = π/6 on the grid: the minimum is attained exactly
    np.testing.assert_allclose(np.asarray(bounds.pl_bound(n, p, grid=3001)), exact, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(bounds.pl_bound(n, p, grid=jnp.array([0.1, math.pi / 6, 1.0]))), exact, rtol=1e-12)
    # the default 2001-point grid misses π/6 by < 1e-3 rad: a valid (larger) bound within 1.3%
    default = np.asarray(bounds.pl_bound(n, p))
    assert np.all(default >= exact * (1 - 1e-12)) and np.all(default <= 1.013 * exact)


def test_bound_shapes_monotone_and_capped():
    p = lambda t: data.power_law_angle_p(t, 0.7)  # noqa: E731
    n = jnp.arange(1, 40).reshape(3, 13)
    b = np.asarray(bounds.pl_bound(n, p))
    assert b.shape == (3, 13)
    assert np.all(np.diff(b.ravel()) <= 0) and np.all(b <= 1.0)
    assert np.ndim(bounds.pl_bound(5, p)) == 0
    # n = 0: p(β) + 1 ≥ 1 → capped at 1
    assert float(bounds.pl_bound(0, p)) == 1.0


@given(st.floats(0.3, 3.0), st.integers(2, 500))
def test_power_law_bound_rate(beta, n):
    p = lambda t: data.power_law_angle_p(t, beta)  # noqa: E731
    gamma = min(math.pi / 2, math.pi / (2 * beta * n) * math.log(n))
    u = 2 * gamma / math.pi
    rate = u**beta + (1 - u) ** (beta * n)
    # with γ on the grid the bound is at most the rate; the default grid is within 0.1%
    grid = jnp.sort(jnp.append(jnp.linspace(0.0, math.pi / 2, 2001), gamma))
    assert float(bounds.pl_bound(n, p, grid=grid)) <= rate + 1e-15
    assert float(bounds.pl_bound(n, p)) <= rate * 1.001 + 1e-15


def test_isotropic_bound_is_vacuous():
    b = np.asarray(bounds.pl_bound(jnp.array([1, 5, 19, 100]), lambda t: bounds.iso_gaussian_p(t, 20)))
    assert np.all(b > 0.95)


# ------------------------------------------------------------------------------ exact isotropic risk
def test_iso_expected_risk_reference_values():
    got = bounds.iso_gaussian_expected_risk(np.array([1, 5, 10, 19]), 20)
    # docs/theory.md §6 numbers (4 digits, partly from Monte Carlo); the quadrature gives
    # .44150, .33780, .25000 (exact: Beta(5,5) is symmetric), .05850
    np.testing.assert_allclose(got, [0.4415, 0.3379, 0.2501, 0.0584], atol=2e-4)
    assert got[2] == pytest.approx(0.25, abs=1e-12)
    # symmetry B(n/2, (d-n)/2) ↔ B((d-n)/2, n/2): R(n) + R(d-n) = 1/2
    assert got[0] + got[3] == pytest.approx(0.5, abs=1e-12)
    assert bounds.iso_gaussian_expected_risk(20, 20) == 0.0 and bounds.iso_gaussian_expected_risk(25, 20) == 0.0
    assert bounds.iso_gaussian_expected_risk(0, 20) == 0.5
    assert np.all(np.diff(bounds.iso_gaussian_expected_risk(np.arange(0, 21), 20)) < 0)


@given(st.integers(2, 60), st.data())
def test_iso_expected_risk_vs_independent_quadrature(d, drawn):
    n = drawn.draw(st.integers(1, d - 1))
    # independent route: E[arccos √B] in x-space with scipy.stats (the library integrates over φ)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = beta_dist(n / 2, (d - n) / 2).expect(lambda b: np.arccos(np.sqrt(b)), epsabs=0, epsrel=1e-12) / math.pi
    assert bounds.iso_gaussian_expected_risk(n, d) == pytest.approx(ref, rel=1e-9)


def test_iso_expected_risk_vs_monte_carlo():
    d = 20
    w = _unit(d, 3)
    ns = [1, 5, 10, 19]
    sample = lambda k, m: jax.random.normal(k, (m, d))  # noqa: E731
    exact = bounds.iso_gaussian_expected_risk(np.array(ns), d)
    # 2000 training sets, exact per-set risk ∠(ŵ, w*)/π
    lc = bounds.mc_learning_curve(jax.random.key(0), sample, w, ns, 2000, 1, risk_fn=bounds.iso_gaussian_risk)
    assert np.all(np.abs(np.asarray(lc.mean) - exact) <= 3 * np.asarray(lc.se))
    assert np.all(np.asarray(lc.se) < 2e-3)
    # the student of the Monte Carlo is pl_limit from w0 = 0
    X = sample(jax.random.key(2), 5)
    np.testing.assert_allclose(np.asarray(bounds.student_projection(X, w)), np.asarray(cf.pl_limit(X, w)), atol=1e-12)


# ------------------------------------------------------------------------------ bound ≥ Monte Carlo risk
GEOMETRIES = {
    # name: (d, sampler, exact p)
    "margin_cone": (10, lambda k, m, w: data.margin_cone(k, m, w, math.pi / 3), lambda t: data.margin_cone_p(t, math.pi / 3)),
    "power_law": (10, lambda k, m, w: data.power_law_angle(k, m, w, 2.0), lambda t: data.power_law_angle_p(t, 2.0)),
    "cone_pi2": (50, lambda k, m, w: data.margin_cone(k, m, w, math.pi / 2), lambda t: data.margin_cone_p(t, math.pi / 2)),
}


@pytest.mark.parametrize("name", list(GEOMETRIES))
def test_bound_dominates_monte_carlo_risk(name):
    """P_x = the empirical distribution of a pool of 1e5 draws of the geometry. The bound with p =
    the pool's empirical CDF of θ̄ is rigorous for that P_x; it also matches the exact-p bound of the
    geometry to 0.01. (Resampling a pool keeps the Monte Carlo cheap to compile.)"""
    d, sampler, p_exact = GEOMETRIES[name]
    w = _unit(d, 1)
    pool = sampler(jax.random.key(4), 100_000, w)
    sample = lambda k, m: pool[jax.random.randint(k, (m,), 0, pool.shape[0])]  # noqa: E731
    ns = np.array([1, 2, 4, 8])
    lc = bounds.mc_learning_curve(jax.random.key(3), sample, w, ns, 500, 1000)
    mean, se = np.asarray(lc.mean), np.asarray(lc.se)
    b_emp = np.asarray(bounds.pl_bound(jnp.asarray(ns), bounds.empirical_p(bounds.angle_to_boundary(pool, w))))
    b_exact = np.asarray(bounds.pl_bound(jnp.asarray(ns), p_exact))
    np.testing.assert_allclose(b_emp, b_exact, atol=0.01)
    assert np.all(mean <= b_emp + 3 * se), (mean, se, b_emp)
    assert np.all(mean <= b_exact + 3 * se)
    # strong monotonicity in expectation (within 3 SE)
    assert np.all(np.diff(mean) <= 3 * np.sqrt(se[1:] ** 2 + se[:-1] ** 2))
    if name == "margin_cone":  # bound 2^-n is exponential in n
        np.testing.assert_allclose(b_exact, 2.0 ** -ns, rtol=0.02)
    if name == "cone_pi2":  # docs/theory.md §1.4: .061, .025, .012, .0049 for n = 1, 2, 4, 8; bound 1, .75, .53, .35
        np.testing.assert_allclose(mean, [0.061, 0.025, 0.012, 0.0049], atol=3 * se.max() + 1e-3)
        np.testing.assert_allclose(b_exact, [1.0, 0.75, 0.53, 0.35], atol=0.01)


def test_atom_mixture_exact_expected_risk_monotone():
    """Uniform mixture of 5 atoms in R^3: E[R_n] by enumerating all 5^n training sets, vs MC."""
    atoms = jnp.array([[1.0, 1.0, 0.0], [1.0, 0.0, 1.0], [1.0, 0.0, -2.5], [-0.3, 1.0, 0.4], [0.2, -0.5, 1.0]])
    w = _unit(3, 0)
    truth = np.sign(np.asarray(atoms @ w))

    def risk(idx):
        wh = np.asarray(bounds.student_projection(atoms[jnp.array(idx)], w))
        return np.mean(np.sign(np.asarray(atoms) @ wh) != truth)

    exact = [np.mean([risk(idx) for idx in itertools.product(range(5), repeat=n)]) for n in (1, 2, 3)]
    assert np.all(np.diff(exact) <= 1e-12)  # monotone in expectation ...
    # ... although one realisation gets worse with more data: atom 2 is z of docs/theory.md §1.5
    z = np.asarray(atoms[2])
    w1, w2 = (np.asarray(bounds.student_projection(atoms[jnp.array(i)], w)) for i in ([0], [0, 1]))
    assert np.sign(w1 @ z) == truth[2] and np.sign(w2 @ z) != truth[2]

    def sample(k, m):
        return atoms[jax.random.randint(k, (m,), 0, 5)]

    lc = bounds.mc_learning_curve(jax.random.key(5), sample, w, [1, 2, 3], 2000, 1,
                             risk_fn=lambda wh, ws: jnp.mean((jnp.sign(atoms @ wh) != jnp.sign(atoms @ ws)).astype(wh.dtype)))
    assert np.all(np.abs(np.asarray(lc.mean) - exact) <= 3 * np.asarray(lc.se) + 1e-12)


def test_validation():
    p = bounds.empirical_p(jnp.array([0.3]))
    with pytest.raises(InputError, match="grid"):
        bounds.pl_bound(3, p, grid=1)
    with pytest.raises(InputError, match="grid"):
        bounds.pl_bound(3, p, grid=jnp.array([2.0]))
    with pytest.raises(InputError, match="n must"):
        bounds.pl_bound(-1, p)
    with pytest.raises(InputError, match="n must"):
        bounds.iso_gaussian_expected_risk(1.5, 20)
    with pytest.raises(InputError, match="d must"):
        bounds.iso_gaussian_expected_risk(1, 0)
    with pytest.raises(InputError, match="w_star"):
        bounds.angle_to_boundary(jnp.ones((2, 3)), jnp.zeros(3))
    with pytest.raises(InputError, match="ns"):
        bounds.mc_learning_curve(jax.random.key(0), lambda k, m: jnp.ones((m, 3)), _unit(3), [0], 5, 5)
    with pytest.raises(InputError, match="n_sets"):
        bounds.mc_learning_curve(jax.random.key(0), lambda k, m: jnp.ones((m, 3)), _unit(3), [1], 1, 5)


def test_geometry_risk_has_the_right_limits():
    for kind, prm in (("margin_cone", {"psi_max": 5 * np.pi / 12}), ("power_law", {"beta": 2.0})):
        r = bounds.geometry_risk(kind, 20, np.array([0.0, 0.7, np.pi / 2]), **prm)
        assert r[0] == 0.0 and r[2] == pytest.approx(0.5, abs=1e-12)  # w = w*: no error; w ⟂ w*: a coin flip
        assert 0.0 < r[1] < 0.5
    # the margin cone has no mass within gamma = pi/2 - psi_max of the boundary: R(phi) = 0 for phi <= gamma
    assert bounds.geometry_risk("margin_cone", 20, np.pi / 12 - 1e-9, psi_max=5 * np.pi / 12) == 0.0
    np.testing.assert_allclose(bounds.geometry_risk("isotropic", 20, [0.3]), [0.3 / np.pi])
