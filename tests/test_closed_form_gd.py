"""GD closed forms (docs/theory.md §2, §3.3, §6 items 1-4) against direct float64 simulation.

Agreement target: relative error <= 1e-10 (the math is exact; simulation accumulates round-off).
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linkd import closed_form as cf
from linkd import engine, spectral

TOL = 1e-10


def design(seed: int, n: int, d: int, decay: float):
    """X (n, d) with population spectrum k^-decay in a random basis, noisy labels y."""
    rng = np.random.default_rng(seed)
    lam = np.arange(1.0, d + 1.0) ** -decay
    Q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    X = (rng.standard_normal((n, d)) * np.sqrt(lam)[None, :]) @ Q.T
    w = rng.standard_normal(d)
    y = X @ w + 0.3 * rng.standard_normal(n)
    return jnp.asarray(X), jnp.asarray(y)


def rel_err(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def run_mse(X, targets, lr, steps, w0=None, basis=None, **kw):
    d = X.shape[1]
    w0 = jnp.zeros(d) if w0 is None else w0
    spec = engine.EngineSpec(family="mse", steps=steps, record_every=1, **kw.pop("spec", {}))
    return engine.simulate(w0, engine.Data(X=X, targets=targets, basis=basis, **kw), engine.Hyper(lr=lr), spec)


sizes = st.sampled_from([(8, 12), (12, 8), (20, 20), (5, 30)])  # n < d, n > d, n = d
fracs = st.floats(0.02, 0.98)  # η as a fraction of the convergence limit 2/λ_max
step_counts = st.sampled_from([1, 7, 40])


@settings(max_examples=12)  # each new shape/step count compiles a scan
@given(size=sizes, seed=st.integers(0, 10_000), decay=st.floats(0.0, 2.0), frac=fracs, steps=step_counts)
def test_teacher_trajectory_matches_simulation(size, seed, decay, frac, steps):
    n, d = size
    X, y = design(seed, n, d, decay)
    sp = spectral.eigh_desc(X)
    lr = frac * cf.stable_lr(sp.eigvals).convergent
    w0 = jnp.asarray(np.random.default_rng(seed + 1).standard_normal(d))
    traj = run_mse(X, y, lr, steps, w0=w0, basis=sp.basis)
    c_star = spectral.min_norm_coeffs(X, y, sp.basis)
    pred = cf.gd_mse_trajectory(sp.eigvals, c_star, spectral.coefficients(w0, sp.basis), lr, steps)
    assert pred.shape == (steps + 1, d)
    assert rel_err(traj.coeffs, pred) <= TOL


@settings(max_examples=12)  # each new shape/step count compiles a scan
@given(size=sizes, seed=st.integers(0, 10_000), frac=st.floats(0.02, 0.49), T=st.sampled_from([3, 25]), t=step_counts)
def test_distilled_student_matches_composed_filter(size, seed, frac, T, t):
    n, d = size
    X, y = design(seed, n, d, 1.0)
    sp = spectral.eigh_desc(X)
    lr = frac * cf.stable_lr(sp.eigvals).convergent
    teacher = run_mse(X, y, lr, T)
    student = run_mse(X, X @ teacher.params, lr, t, basis=sp.basis)
    c_star = spectral.min_norm_coeffs(X, y, sp.basis)
    pred = cf.teacher_student_filters(sp.eigvals, lr, T, jnp.arange(t + 1)) * c_star[None, :]
    assert rel_err(student.coeffs, pred) <= TOL


@settings(max_examples=12)  # each new shape/step count compiles a scan
@given(seed=st.integers(0, 10_000), frac=st.floats(0.05, 0.45), T=st.sampled_from([4, 15]), rounds=st.integers(1, 4))
def test_self_distillation_rounds_match_factor(seed, frac, T, rounds):
    X, y = design(seed, 10, 16, 1.0)
    sp = spectral.eigh_desc(X)
    lr = frac * cf.stable_lr(sp.eigvals).convergent
    targets = y
    for _ in range(rounds):
        w = run_mse(X, targets, lr, T).params
        targets = X @ w
    c_star = spectral.min_norm_coeffs(X, y, sp.basis)
    pred = cf.gd_self_distill_factor(sp.eigvals, lr, T, rounds) * c_star
    assert rel_err(spectral.coefficients(w, sp.basis), pred) <= TOL


@settings(max_examples=12)  # each new shape/step count compiles a scan
@given(size=sizes, seed=st.integers(0, 10_000), frac=st.floats(0.05, 0.45), T=st.sampled_from([5, 30]), t0=st.sampled_from([0, 7, 20]))
def test_switch_schedule_matches_closed_form(size, seed, frac, T, t0):
    n, d = size
    X, y = design(seed, n, d, 1.0)
    sp = spectral.eigh_desc(X)
    lr = frac * cf.stable_lr(sp.eigvals).convergent
    y_hat = X @ run_mse(X, y, lr, T).params
    steps = 30
    traj = run_mse(X, y_hat, lr, steps, basis=sp.basis, labels=y, spec={"switch_step": t0})
    c_star = spectral.min_norm_coeffs(X, y, sp.basis)
    pred = cf.switch_trajectory(sp.eigvals, c_star, lr, T, t0, steps)
    assert rel_err(traj.coeffs, pred) <= TOL


# ---- neural-tangents style properties: t = 0, t = ∞, additivity ------------------------------


@given(seed=st.integers(0, 1000), frac=st.floats(0.05, 0.95), t1=st.integers(0, 30), t2=st.integers(0, 30))
def test_gd_trajectory_init_limit_additivity(seed, frac, t1, t2):
    rng = np.random.default_rng(seed)
    lam = jnp.asarray(np.sort(rng.uniform(0.0, 2.0, 9))[::-1].copy()).at[-2:].set(0.0)  # rank-deficient
    cs, c0 = jnp.asarray(rng.standard_normal(9)), jnp.asarray(rng.standard_normal(9))
    lr = frac * cf.stable_lr(lam).convergent
    traj = cf.gd_mse_trajectory(lam, cs, c0, lr, jnp.asarray([0, t1, t1 + t2, 100_000]))
    np.testing.assert_allclose(traj[0], c0, rtol=0, atol=0)
    # additivity: run t1, restart from there for t2
    restarted = cf.gd_mse_trajectory(lam, cs, traj[1], lr, jnp.asarray(t2))
    np.testing.assert_allclose(restarted, traj[2], rtol=1e-12, atol=1e-12)
    # the limit: c* on λ > 0, untouched init on λ = 0 (no NaN from rank deficiency)
    limit = jnp.where(lam > 0, cs, c0)
    np.testing.assert_allclose(traj[3], limit, atol=1e-8)
    assert np.all(np.isfinite(traj))


@given(seed=st.integers(0, 1000), t1=st.floats(0, 10), t2=st.floats(0, 10))
def test_gf_trajectory_init_limit_additivity(seed, t1, t2):
    rng = np.random.default_rng(seed)
    lam = jnp.asarray(np.sort(rng.uniform(0.1, 2.0, 6))[::-1].copy()).at[-1].set(0.0)
    cs, c0 = jnp.asarray(rng.standard_normal(6)), jnp.asarray(rng.standard_normal(6))
    traj = cf.gf_mse_trajectory(lam, cs, c0, jnp.asarray([0.0, t1, t1 + t2, 1e6]))
    np.testing.assert_allclose(traj[0], c0, atol=0)
    np.testing.assert_allclose(cf.gf_mse_trajectory(lam, cs, traj[1], jnp.asarray(t2)), traj[2], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(traj[3], jnp.where(lam > 0, cs, c0), atol=1e-12)


def test_gd_and_gf_are_different_functions_but_agree_as_lr_to_zero():
    lam = jnp.asarray([2.0, 1.0, 0.25])
    t_flow = 3.0
    for lr, tol in [(1e-2, 3e-2), (1e-4, 3e-4)]:
        steps = int(round(t_flow / lr))
        gd = cf.gd_filter(lam, lr, steps)
        gf = cf.gf_filter(lam, t_flow)
        assert not np.allclose(gd, gf, rtol=1e-9)  # never silently the same
        np.testing.assert_allclose(gd, gf, rtol=tol)


def test_time_axis_leads_output_for_any_shape():
    lam = jnp.asarray([1.0, 0.5, 0.0])
    t = jnp.arange(6).reshape(2, 3)
    assert cf.gd_filter(lam, 0.5, t).shape == (2, 3, 3)
    assert cf.teacher_student_filters(lam, 0.5, 10, t).shape == (2, 3, 3)
    assert cf.gd_mse_trajectory(lam, jnp.ones(3), jnp.zeros(3), 0.5, t).shape == (2, 3, 3)
    assert cf.gd_mse_trajectory(lam, jnp.ones((3, 4)), jnp.zeros((3, 4)), 0.5, 5).shape == (6, 3, 4)


def test_negative_base_powers_are_exact_integer_powers():
    # 1 < ηλ < 2: (1-ηλ)^t alternates in sign; must equal repeated multiplication
    lam, lr = jnp.asarray([1.0]), 1.7
    expect = np.cumprod(np.r_[1.0, np.full(12, 1 - lr)])
    np.testing.assert_allclose(cf.gd_decay(lam, lr, jnp.arange(13))[:, 0], expect, rtol=1e-14)


def test_closed_forms_under_jit_match_eager():
    lam = jnp.asarray([1.0, 0.3, 0.01])
    f = jax.jit(cf.teacher_student_filters)
    np.testing.assert_array_equal(f(lam, 0.5, 20, jnp.arange(5)), cf.teacher_student_filters(lam, 0.5, 20, jnp.arange(5)))


def test_stable_lr_limits():
    s = cf.stable_lr(jnp.asarray([4.0, 1.0, 0.0]))
    assert s.convergent == pytest.approx(0.5) and s.monotone == pytest.approx(0.25)
    with pytest.raises(ValueError, match="eigvals"):
        cf.stable_lr(jnp.zeros(3))


# ---- exaggeration (Nagarajan et al.) ----------------------------------------------------------


@pytest.mark.parametrize("decay", [0.5, 1.0, 2.0])
@pytest.mark.parametrize("frac", [0.1, 0.5, 0.9])
def test_exaggeration_gap_nonnegative_on_grid(decay, frac):
    lam = jnp.arange(1.0, 21.0) ** -decay
    lr = frac / float(lam[0])  # η λ_max = frac < 1
    for T in (1, 10, 100, 1000):
        for t in (1, 5, 50, 500, 5000):
            gap = cf.exaggeration_gap(lam, lr, T, t).gap
            assert float(jnp.nanmin(gap)) >= -1e-12, (T, t, float(jnp.nanmin(gap)))
    # and it is strictly positive somewhere at finite times: the effect exists
    assert float(jnp.nanmax(cf.exaggeration_gap(lam, lr, 10, 10).gap)) > 1e-3


def test_gf_exaggeration_gap_nonnegative():
    lam = jnp.arange(1.0, 11.0) ** -1.0
    for T in (0.5, 5.0, 50.0):
        for t in (0.5, 5.0, 50.0):
            assert float(jnp.nanmin(cf.gf_exaggeration_gap(lam, T, t).gap)) >= -1e-12


def test_exaggeration_check_detects_wrongly_composed_student_filter():
    lam = jnp.arange(1.0, 21.0) ** -1.0
    lr = 0.9 / float(lam[0])
    right = cf.teacher_student_filters(lam, lr, 30, 45)
    assert float(jnp.nanmin(cf.exaggeration_gap_from_progress(lam, lr, right).gap)) >= -1e-12
    # wrong: filters composed by a geometric mean instead of a product
    wrong = jnp.sqrt(right)
    assert float(jnp.nanmin(cf.exaggeration_gap_from_progress(lam, lr, wrong).gap)) < -1e-2
    # wrong: student progress perturbed up by 0.1% from direction 6 on (directions 1-5 unchanged)
    bumped = right.at[5:].multiply(1.0 + 1e-3)
    assert float(jnp.nanmin(cf.exaggeration_gap_from_progress(lam, lr, bumped).gap)) < 0.0


def test_exaggeration_gap_refuses_non_monotone_lr():
    with pytest.raises(ValueError, match="lr"):
        cf.exaggeration_gap(jnp.asarray([1.0, 0.5]), 1.5, 10, 10)


def test_no_exaggeration_when_teacher_interpolates():
    """theory §2.2 caveat: T → ∞ with rank X = n ≤ d ⇒ ŷ = y ⇒ student path = teacher path."""
    X, y = design(3, 10, 30, 1.0)
    sp = spectral.eigh_desc(X)
    lr = 0.9 / float(sp.eigvals[0])
    qS = cf.teacher_student_filters(sp.eigvals, lr, 10**9, jnp.arange(0, 200, 10))
    qT = cf.gd_filter(sp.eigvals, lr, jnp.arange(0, 200, 10))
    np.testing.assert_allclose(qS, qT, atol=1e-12)
