"""Closed forms checked against an independent route (scipy ODE solvers and matrix exponentials,
plain numpy recursions, scipy's bivariate normal, the defining equation), each check shown to fail
on a planted bug (the prediction perturbed); and a scan that every public closed form is named by
some test or claim outside the contract tables (docs/theory.md §6.9)."""
import re
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import scipy.stats
from scipy.integrate import solve_ivp

from linkd import closed_form as cf

ROOT = Path(__file__).resolve().parents[1]


def _bump(f, factor=1.0 + 1e-6):
    """The planted bug: ``f`` with its output scaled by ``factor`` (MatchedGap: the gap only)."""
    def g(*a, **k):
        out = f(*a, **k)
        return out._replace(gap=out.gap * factor) if isinstance(out, cf.MatchedGap) else np.asarray(out) * factor
    return g


def _spd(seed, d, zero=False):
    rng = np.random.default_rng(seed)
    Q = np.linalg.qr(rng.standard_normal((d, d)))[0]
    lam = np.sort(rng.uniform(0.2, 2.0, d))[::-1]
    if zero:
        lam[-1] = 0.0
    return Q @ np.diag(lam) @ Q.T, lam, Q


# ------------------------------------------------------------------------------------ gradient flow


def gf_decay_err(f):
    """e^{-λ_k t} against the diagonal of the matrix exponential expm(−tΣ) in Σ's eigenbasis."""
    S, lam, Q = _spd(1, 5)
    t = np.array([0.0, 0.3, 2.0, 7.5])
    ref = np.stack([np.diag(Q.T @ scipy.linalg.expm(-s * S) @ Q) for s in t])
    return float(np.max(np.abs(np.asarray(f(lam, t)) - ref)))


def _gf_ode(S, b, w0, t_end, t_eval):
    sol = solve_ivp(lambda _, w: -(S @ w - b), (0.0, t_end), w0, t_eval=t_eval, method="DOP853", rtol=1e-12,
                    atol=1e-14)
    return sol.y.T


def gf_trajectory_err(f):
    """Gradient flow ẇ = −(Σw − b) by scipy's DOP853, rank-deficient Σ, in coordinates Vᵀw."""
    S, lam, Q = _spd(2, 4, zero=True)
    rng = np.random.default_rng(3)
    b, w0 = S @ rng.standard_normal(4), rng.standard_normal(4)
    t = np.array([0.0, 0.5, 3.0])
    ref = _gf_ode(S, b, w0, 3.0, t) @ Q
    c_star = Q.T @ np.linalg.pinv(S) @ b
    return float(np.max(np.abs(np.asarray(f(lam, c_star, Q.T @ w0, t)) - ref)))


def gf_teacher_student_err(f):
    """Teacher: GF from 0 on y for time T; student: GF from 0 on the teacher's predictions; both by ODE."""
    S, lam, Q = _spd(4, 4)
    b = S @ np.random.default_rng(5).standard_normal(4)
    T, t = 1.5, np.array([0.4, 2.0])
    w_T = _gf_ode(S, b, np.zeros(4), T, [T])[-1]
    w_S = _gf_ode(S, S @ w_T, np.zeros(4), 2.0, t)
    ref = (w_S @ Q) / (Q.T @ np.linalg.solve(S, b))[None, :]
    return float(np.max(np.abs(np.asarray(f(lam, T, t)) - ref)))


def gf_gap_err(f):
    """The definition in plain numpy: q^S = (1−e^{−λt})(1−e^{−λT}), τ*_i = −ln(1−q_i)/λ_i,
    gap[i, j] = (1 − e^{−λ_j τ*_i}) − q_j for λ_i > λ_j > 0."""
    lam = np.array([1.5, 0.8, 0.3, 0.1])
    worst = 0.0
    for T, t in ((1.0, 2.0), (5.0, 0.5), (0.3, 8.0)):
        q = (1.0 - np.exp(-lam * t)) * (1.0 - np.exp(-lam * T))
        tau = -np.log1p(-q) / lam
        gap = (1.0 - np.exp(-lam[None, :] * tau[:, None])) - q[None, :]
        pairs = lam[:, None] > lam[None, :]
        got = np.asarray(f(lam, T, t).gap)
        assert np.array_equal(np.isfinite(got), pairs)
        worst = max(worst, float(np.max(np.abs(got[pairs] - gap[pairs]))))
    return worst


@pytest.mark.parametrize("check,f,tol", [
    (gf_decay_err, cf.gf_decay, 1e-12),
    (gf_trajectory_err, cf.gf_mse_trajectory, 1e-9),
    (gf_teacher_student_err, cf.gf_teacher_student_filters, 1e-9),
    (gf_gap_err, cf.gf_exaggeration_gap, 1e-12),
], ids=["gf_decay", "gf_mse_trajectory", "gf_teacher_student_filters", "gf_exaggeration_gap"])
def test_gradient_flow_forms_match_independent_routes_and_catch_a_planted_bug(check, f, tol):
    assert check(f) < tol
    assert check(_bump(f, 1.0 + 1e-4)) > tol


# ------------------------------------------------------------------------------------ temperature


def tempered_decay_err(f):
    """ρ^t, ρ = 1 − ηλ/C, by repeated multiplication (ρ < 0 for ηλ > C: signs alternate), τ-free."""
    lam, C = np.array([2.0, 1.2, 0.4, 0.0]), 3
    lr = 0.95 * 4.0 / lam[0]  # below the descent bound 4/λ_max; ηλ_1/C = 1.27 > 1
    ref = np.cumprod(np.vstack([np.ones(4), np.tile(1.0 - lr * lam / C, (30, 1))]), axis=0)
    return float(np.max(np.abs(np.asarray(f(lam, lr, np.arange(31), num_classes=C)) - ref)))


def tempered_gap_err(f):
    """Against :func:`matched_progress_gap` on a numpy-recorded tempered reference path 1 − ρ^s
    (interpolation in the log residual: a different algorithm, exact on geometric paths)."""
    lam, C, lr = np.array([1.0, 0.6, 0.3, 0.1]), 4, 2.2
    rho = 1.0 - lr * lam / C
    ref = 1.0 - np.cumprod(np.vstack([np.ones(4), np.tile(rho, (500, 1))]), axis=0)
    q = (1.0 - rho ** 9) * (1.0 - rho ** 14)  # a student at step 9 on a teacher of 14 steps (step η/C)
    want = np.asarray(cf.matched_progress_gap(ref, q, eigvals=lam).gap)
    got = np.asarray(f(lam, lr, q, num_classes=C).gap)
    assert np.array_equal(np.isfinite(got), np.isfinite(want))
    return float(np.nanmax(np.abs(got - want)))


@pytest.mark.parametrize("check,f,tol", [
    (tempered_decay_err, cf.tempered_decay, 1e-13),
    (tempered_gap_err, cf.tempered_exaggeration_gap, 1e-10),
], ids=["tempered_decay", "tempered_exaggeration_gap"])
def test_tempered_forms_match_independent_routes_and_catch_a_planted_bug(check, f, tol):
    assert check(f) < tol
    assert check(_bump(f, 1.0 + 1e-4)) > tol


# ------------------------------------------------------------------------------------ sign agreement


def sheppard_err(f):
    """1 − arccos(ρ)/π against 2·P(U ≤ 0, V ≤ 0) from scipy's bivariate normal CDF."""
    rho = np.array([-0.95, -0.3, 0.0, 0.4, 0.99])
    ref = [2.0 * scipy.stats.multivariate_normal.cdf([0.0, 0.0], mean=[0.0, 0.0], cov=[[1.0, r], [r, 1.0]])
           for r in rho]
    return float(np.max(np.abs(np.asarray(f(rho)) - ref)))


def sigma_angle_err(f):
    """arccos(aᵀMb/√(aᵀMa·bᵀMb)) in plain numpy, at angles away from 0 and π (no arccos round-off)."""
    rng = np.random.default_rng(7)
    M, _, _ = _spd(8, 5)
    a, b = rng.standard_normal((20, 5)), rng.standard_normal((20, 5))
    cos = np.einsum("nk,kl,nl->n", a, M, b) / np.sqrt(np.einsum("nk,kl,nl->n", a, M, a) * np.einsum("nk,kl,nl->n", b, M, b))
    keep = np.abs(cos) < 0.99
    return float(np.max(np.abs(np.asarray(f(a, b, M))[keep] - np.arccos(cos[keep]))))


@pytest.mark.parametrize("check,f,tol", [
    (sheppard_err, cf.sheppard_agreement, 1e-12),
    (sigma_angle_err, cf.sigma_angle, 1e-12),
], ids=["sheppard_agreement", "sigma_angle"])
def test_agreement_forms_match_independent_routes_and_catch_a_planted_bug(check, f, tol):
    assert check(f) < tol
    assert check(_bump(f, 1.0 + 1e-6)) > tol


# ------------------------------------------------------------------------------------ self-distillation


def round_c_err(f):
    """The defining equation (1/K)Σ(c z_k/(c + d_k))² = ε at the returned c, relative to ε, plus the
    two ends: ``inf`` when mean(z²) ≤ ε (collapse) and 0 when the null space alone leaves more than ε."""
    d, z = np.array([3.0, 1.0, 0.2, 0.05, 0.0]), np.array([1.0, -0.4, 0.7, 0.3, 0.05])
    worst = 0.0
    for eps in (0.01, 0.1, 0.3):
        c = f(d, z, eps)
        worst = max(worst, abs(np.mean((c * z / (c + d)) ** 2) - eps) / eps)
    assert f(d, z, 1.0) == np.inf and f(d, np.array([0, 0, 0, 0, 1.0]), 0.1) == 0.0
    return worst


def test_solve_round_c_solves_its_equation_and_catches_a_planted_bug():
    assert round_c_err(cf.solve_round_c) < 1e-13
    assert round_c_err(lambda d, z, eps: cf.solve_round_c(d, z, eps) * (1.0 + 1e-6)) > 1e-13


# ------------------------------------------------------------------------------------ deep linear


def _half_time_ode(lam, c, s0, N):
    """Time for σ̇ = Nλσ^{2−2/N}(c − σ) from σ₀ to reach c/2 (scipy, in u = ln σ)."""
    def rhs(_, u):
        return [N * lam * np.exp(u[0] * (1.0 - 2.0 / N)) * (c - np.exp(u[0]))]

    def half(_, u):
        return u[0] - np.log(c / 2.0)

    half.terminal = True
    sol = solve_ivp(rhs, (0.0, 1e12), [np.log(s0)], events=half, method="DOP853", rtol=1e-11, atol=1e-12)
    return float(sol.t_events[0][0])


def escape_err(f):
    """Relative gap between the ODE half-time and the escape-time scale, as σ₀ → 0 (N = 2, 3: the gap
    shrinks like 1/ln(c/σ₀) and σ₀^{1/3}); N = 1: the residual c − σ falls by e at t = 1/λ (ODE)."""
    lam, c = 0.7, 1.3
    errs = []
    for N, s0s in ((2, (1e-3, 1e-9)), (3, (1e-3, 1e-9))):
        rel = [abs(_half_time_ode(lam, c, s0, N) / float(f([lam], [c], s0, depth=N)[0]) - 1.0) for s0 in s0s]
        assert rel[1] < rel[0]  # the scale is the σ₀ → 0 asymptote
        errs.append(rel[1])
    t1 = float(f([lam], [c], 0.2, depth=1)[0])
    sol = solve_ivp(lambda _, s: lam * (c - s), (0.0, t1), [0.2], method="DOP853", rtol=1e-12, atol=1e-14)
    errs.append(abs((c - sol.y[0, -1]) / (c - 0.2) - np.exp(-1.0)))
    return errs


def test_deep_escape_time_is_the_small_init_half_time_and_catches_a_planted_bug():
    e2, e3, e1 = escape_err(cf.deep_escape_time)
    assert e2 < 0.1 and e3 < 0.05 and e1 < 1e-10
    b2, b3, b1 = escape_err(_bump(cf.deep_escape_time, 1.3))
    assert b2 > 0.2 and b3 > 0.2 and b1 > 1e-3


# ------------------------------------------------------------------------------------ coverage scan


def _unnamed(names, files):
    text = "\n".join(p.read_text() for p in files)
    return sorted(n for n in names if not re.search(rf"\b{re.escape(n)}\b", text))


def _public_callables():
    return [n for n in cf.__all__ if not isinstance(getattr(cf, n), type)]


def test_every_public_closed_form_is_named_by_a_test_or_claim():
    """Outside the contract tables (which check only dtypes and refusals), every public closed form
    appears in a test or a claim: the places where it meets an independent route."""
    files = [p for p in sorted((ROOT / "tests").glob("test_*.py")) if p.name != "test_closed_form_contract.py"]
    files += sorted((ROOT / "proofs_check").glob("*.py"))
    assert _unnamed(_public_callables(), files) == []


def test_the_coverage_scan_finds_a_planted_unnamed_name(tmp_path):
    planted = tmp_path / "test_x.py"
    planted.write_text("cf.alpha_form(lam, 0.1, 3)\ncf.alpha_form_extra(1)\n")
    assert _unnamed(["alpha_form", "alpha_form_extra", "beta_form"], [planted]) == ["beta_form"]


def test_deep_step_sizes_against_the_scalar_mode_recursion():
    """ε_k = ηλ_k c_k^{2−2/N} (docs/theory.md §7.2), checked independently: one GD step of the scalar
    mode recursion w ← w + ηλ w^{N−1}(c − w^N) near σ = c has multiplier 1 − N ε (so the linearised
    error factor read off the recursion gives ε); and a step past 2/N is refused."""
    from linkd.errors import InputError

    lam, c, N, lr = np.array([1.5, 0.7]), np.array([0.9, 1.3]), 3, 0.05
    eps = cf.deep_step_sizes(lam, c, N, lr)
    h = 1e-7
    w_star = c ** (1.0 / N)
    w = w_star + h
    w_next = w + lr * lam * w ** (N - 1) * (c - w ** N)
    multiplier = (w_next - w_star) / h
    np.testing.assert_allclose((1.0 - multiplier) / N, eps, rtol=1e-5)
    assert not np.allclose((1.0 - multiplier) / N, 1.1 * eps, rtol=1e-5)  # a planted 10% error is seen
    with pytest.raises(InputError, match="lr"):
        cf.deep_step_sizes(lam, c, N, 2.0 / N / float(np.min(lam * c ** (2 - 2 / N))))
