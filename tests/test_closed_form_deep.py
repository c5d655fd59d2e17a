"""Deep-linear mode dynamics (docs/theory.md §7) against direct float64 simulation.

Routes compared: closed forms of linkd.closed_form.deep_linear vs scalar ODEs (scipy solve_ivp,
rtol 1e-12), vs full-matrix GD on all layers (numpy loop and the linkd engine), vs the hyp2f1 form
of g_N and the bracketed Newton inverse.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.integrate
from hypothesis import given, settings
from hypothesis import strategies as st

from linkd import closed_form as cf
from linkd import data, models, spectral
from linkd.errors import ConfigError, InputError, LinkdError

DEPTHS = (1, 2, 3, 4, 5, 8)


def scalar_ode(lam, c, s0, N, times):
    """σ̇ = Nλσ^{2−2/N}(c − σ) solved in the logit z of y = σ/c: ż = Nλc^{2−2/N} y^{1−2/N} (smooth through the
    escape, so the solver's error stays ~1e-12 instead of growing with the slope of σ)."""
    kappa = lam * c ** (2.0 - 2.0 / N)
    f = lambda t, z: N * kappa * np.exp((1.0 - 2.0 / N) * -np.logaddexp(0.0, -z))
    y0 = np.broadcast_to(s0, c.shape) / c
    sol = scipy.integrate.solve_ivp(f, (0.0, float(times[-1])), np.log(y0) - np.log1p(-y0),
                                    method="DOP853", rtol=1e-13, atol=1e-13, t_eval=times)
    return c * (1.0 / (1.0 + np.exp(-sol.y.T)))


# ------------------------------------------------------------------------------------ g_N


@pytest.mark.parametrize("N", DEPTHS)
def test_g_inverse_round_trip(N):
    y = np.concatenate([np.geomspace(1e-12, 0.5, 60), 1.0 - np.geomspace(0.5, 1e-9, 60)])
    back = cf.deep_g_inverse(cf.deep_g(y, depth=N), depth=N)
    assert np.max(np.abs(back - y) / y) < 1e-11 if N < 8 else np.max(np.abs(back - y)) < 1e-12
    G = np.linspace(-50.0 if N > 1 else 0.0, 8.0 / N, 301)  # 1 − y ≥ ~1e-4: g(y) is well conditioned there
    assert np.max(np.abs(cf.deep_g(cf.deep_g_inverse(G, depth=N), depth=N) - G) / np.maximum(1.0, np.abs(G))) < 1e-9


@pytest.mark.parametrize("N", (3, 4, 5, 8))
def test_table_inverse_matches_bracketed_newton(N):
    rng = np.random.default_rng(N)
    G = np.sinh(rng.uniform(-45.0, 4.0, 20000))
    a, b = cf.deep_g_inverse(G, depth=N), cf.deep_g_inverse_newton(G, depth=N)
    assert np.max(np.abs(a - b) / np.maximum(b, 1e-300)) < 1e-12
    assert np.all(np.diff(cf.deep_g_inverse(np.sort(G), depth=N)) >= 0)  # monotone


@pytest.mark.parametrize("N", DEPTHS)
def test_g_derivative(N):
    y = np.linspace(0.05, 0.95, 19)
    h = 1e-6
    fd = (cf.deep_g(y + h, depth=N) - cf.deep_g(y - h, depth=N)) / (2 * h)
    assert np.allclose(fd, 1.0 / (N * y ** (2 - 2 / N) * (1 - y)), rtol=1e-7)


# ------------------------------------------------------------------------------------ gradient flow


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 5), st.lists(st.floats(0.2, 3.0), min_size=1, max_size=4), st.floats(-5.0, -0.5),
       st.integers(0, 10**6))
def test_gf_matches_scalar_ode(N, lams, log_s0, seed):
    rng = np.random.default_rng(seed)
    lam = np.asarray(lams)
    c = rng.uniform(0.3, 2.0, lam.size)
    s0 = 10.0 ** log_s0 * c.min()
    t_end = 3.0 * float(np.max(cf.deep_escape_time(lam, c, s0, depth=N))) + 5.0
    times = np.linspace(0.0, t_end, 30)
    assert np.max(np.abs(cf.deep_gf_trajectory(lam, c, s0, times, depth=N) - scalar_ode(lam, c, s0, N, times))) < 1e-10


@pytest.mark.parametrize("N", (1, 2, 3, 4))
def test_gf_init_limit_and_additivity(N):
    lam, c = np.array([2.0, 0.7, 0.1]), np.array([1.0, 3.0, 0.5])
    s0 = np.array([1e-3, 0.2, 1e-5])
    assert np.array_equal(cf.deep_gf_trajectory(lam, c, s0, 0.0, depth=N), s0)
    assert np.allclose(cf.deep_gf_trajectory(lam, c, s0, 1e9, depth=N), c, rtol=1e-14, atol=0)
    t1, t2 = 0.3, 1.1  # before saturation (σ(t1) < c is required of an init)
    mid = cf.deep_gf_trajectory(lam, c, s0, t1, depth=N)
    assert np.allclose(cf.deep_gf_trajectory(lam, c, mid, t2, depth=N), cf.deep_gf_trajectory(lam, c, s0, t1 + t2, depth=N),
                       rtol=1e-12, atol=0)


def _gf_grid(lam, c, s0, N, times):
    """The (4, 5) time grid's σ from the scalar ODE, laid out like the grid (times lead)."""
    return scalar_ode(lam, c, s0, N, times.ravel()).reshape(times.shape + c.shape)


def test_gf_times_lead_the_output():
    """A (4, 5) array of times gives out[i, j] = σ(times[i, j]) per mode, = the ODE solution there."""
    lam, c, s0, N = np.array([1.0, 2.0]), np.array([1.0, 0.7]), 0.01, 3
    times = np.linspace(0.0, 60.0, 20).reshape(4, 5)  # t = 0 through saturation
    out = cf.deep_gf_trajectory(lam, c, s0, times, depth=N)
    assert out.shape == (4, 5, 2) and np.array_equal(out[0, 0], [s0, s0])
    np.testing.assert_allclose(out, _gf_grid(lam, c, s0, N, times), rtol=1e-9)
    np.testing.assert_allclose(out[-1, -1], c, rtol=1e-6)  # saturated at the target
    with pytest.raises(AssertionError):  # planted bug: the grid read in column-major order
        np.testing.assert_allclose(out.transpose(1, 0, 2).reshape(4, 5, 2), _gf_grid(lam, c, s0, N, times), rtol=1e-9)


def test_saxe_sigmoid_and_linear_closed_forms():
    lam, c, t = np.array([0.5, 2.0]), np.array([1.5, 0.4]), np.linspace(0.0, 9.0, 10)
    assert np.allclose(cf.deep_gf_trajectory(lam, c, 0.01, t, depth=2),
                       c / (1 + (c / 0.01 - 1) * np.exp(-2 * lam * c * t[:, None])), rtol=1e-14)
    assert np.allclose(cf.deep_gf_trajectory(lam, c, 0.0, t, depth=1), c * (1 - np.exp(-lam * t[:, None])), rtol=1e-14)


# ------------------------------------------------------------------------------------ gradient descent


def numpy_matrix_gd(N, lam, c, s0, lr, steps, seed):
    """GD on all layers of a depth-N net in numpy (aligned design with Σ̂ = diag-in-V, Σ̂_yx = U diag(λc) Vᵀ)."""
    rng = np.random.default_rng(seed)
    r = lam.size
    V, _ = np.linalg.qr(rng.standard_normal((r + 1, r + 1)))
    U, _ = np.linalg.qr(rng.standard_normal((r + 1, r)))
    S = V @ np.diag(np.append(lam, 0.3)) @ V.T
    Syx = U @ np.diag(lam * c) @ V[:, :r].T
    frames = [V[:, :r]] + [np.linalg.qr(rng.standard_normal((r + 2, r)))[0] for _ in range(N - 1)] + [U]
    Ws = [frames[j + 1] @ np.diag(np.full(r, s0 ** (1 / N))) @ frames[j].T for j in range(N)]
    out = [np.diag(U.T @ prod(Ws) @ V[:, :r])]
    for _ in range(steps):
        E = prod(Ws) @ S - Syx
        grads = [prod(Ws[j + 1:], Ws[j].shape[0]).T @ E @ prod(Ws[:j], Ws[j].shape[1]).T for j in range(N)]
        Ws = [W - lr * g for W, g in zip(Ws, grads)]
        out.append(np.diag(U.T @ prod(Ws) @ V[:, :r]))
    return np.array(out)


def prod(Ws, eye=None):
    if not Ws:
        return np.eye(eye)
    M = Ws[0]
    for W in Ws[1:]:
        M = W @ M
    return M


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 4), st.lists(st.floats(0.2, 2.0), min_size=1, max_size=3), st.floats(0.05, 0.9),
       st.floats(-3.0, -1.0), st.integers(0, 10**6))
def test_gd_recursion_matches_matrix_gd(N, lams, frac, log_s0, seed):
    lam = np.asarray(lams)
    c = np.random.default_rng(seed).uniform(0.3, 1.5, lam.size)
    s0 = 10.0 ** log_s0 * c.min()
    lr = frac * (2.0 / N) / float(np.max(lam * c ** (2 - 2 / N)))  # eps_k up to 0.9 x the bound 2/N
    pred = cf.deep_gd_trajectory(lam, c, s0, lr, 40, depth=N)
    assert np.max(np.abs(pred - numpy_matrix_gd(N, lam, c, s0, lr, 40, seed))) < 1e-12


# matrix GD by the linkd engine vs the recursion (and off-mode entries): claim dl.gd_scalar_recursion,
# run by tests/test_proofs_check.py.


@pytest.mark.parametrize("N", (2, 3, 4))
def test_modified_flow_is_second_order(N):
    errs = []
    for eps in (0.04, 0.02):
        K = int((cf.deep_g(0.999, depth=N) - cf.deep_g(1e-2, depth=N)) / eps)
        gd = cf.deep_gd_trajectory([1.0], [1.0], 1e-2, eps, K, depth=N)
        errs.append(np.max(np.abs(gd - cf.deep_modified_flow([1.0], [1.0], 1e-2, eps, K, depth=N))))
    assert 3.5 < errs[0] / errs[1] < 4.5 and errs[0] < 0.2 * 0.04**2


# ------------------------------------------------------------------------------------ distillation, §7.4


def test_distilled_student_is_the_flow_on_teacher_strengths():
    lam, c = np.array([1.0, 0.3]), np.array([1.0, 2.0])
    a = cf.deep_teacher_strengths(lam, c, 2.0)  # linear teacher, zero init, GF
    assert np.allclose(a, c * (1 - np.exp(-2.0 * lam)), rtol=1e-14)
    assert np.allclose(cf.deep_teacher_strengths(lam, c, 7, lr=0.5), c * (1 - (1 - 0.5 * lam) ** 7), rtol=1e-13)
    t = np.linspace(0.0, 40.0, 9)
    assert np.max(np.abs(cf.deep_distilled_trajectory(lam, a, 1e-3, t, depth=3) - scalar_ode(lam, a, 1e-3, 3, t))) < 1e-10


def test_time_dilation_n2_formula_and_quoted_values():
    Q, c, s0 = np.array([0.2, 0.5, 0.9]), 1.3, 1e-4
    n2 = (1 / Q) * np.log(Q * c / s0 - 1) / np.log(c / s0 - 1)
    assert np.allclose(cf.deep_time_dilation(Q, c, s0, depth=2), n2, rtol=1e-13)
    R = [float(cf.deep_time_dilation(0.2, 1.0, 1e-4, depth=N)) for N in (1, 2, 3, 4, 6)]
    assert np.allclose(R, [0.999, 4.13, 4.85, 4.97, 5.00], atol=6e-3)


def test_matched_gap_excludes_ill_conditioned_rows():
    lam, c = np.array([1.0, 0.5]), np.array([1.0, 1.0])
    q = np.array([[0.5, 0.2], [1 - 1e-8, 0.9], [0.9, 0.5]])
    g = cf.deep_matched_progress_gap(lam, c, 1e-3, q, depth=3)
    assert g.excluded.tolist() == [False, True, False] and g.n_excluded == 1 and "min_residual" in g.reason
    assert np.isnan(g.gap[1]).all() and np.allclose(g.gap[[0, 2], 0], 0.0, atol=1e-12)
    # the reference at tau* has progressed on mode 1 exactly as much as the student
    assert np.allclose(cf.deep_gf_trajectory(lam, c, 1e-3, g.tau_star[[0, 2]], depth=3)[:, 0], [0.5, 0.9], rtol=1e-12)


# ------------------------------------------------------------------------------------ data, models, spectral


def test_aligned_design_shares_the_frame():
    lam, c = np.array([3.0, 1.0, 0.5]), np.array([1.0, 0.4])
    for whitened in (False, True):
        D = data.aligned_design(jax.random.key(0), 30, lam, c, 4, whitened=whitened, noise=0.5)
        n = D.X.shape[0]
        lam_used = np.ones(3) if whitened else lam
        assert np.allclose(D.X.T @ D.X / n, D.V @ np.diag(lam_used) @ D.V.T, atol=1e-13)
        target = (D.U * jnp.asarray(lam_used[:2] * c)[None, :]) @ D.V[:, :2].T
        assert np.allclose(D.Y.T @ D.X / n, target, atol=1e-13)
        assert np.allclose(D.U.T @ D.U, np.eye(2), atol=1e-14)
    assert float(jnp.linalg.norm(D.Y - D.X @ jnp.linalg.pinv(D.X) @ D.Y)) > 1.0  # the noise is there, orthogonal to X


def test_balanced_aligned_init():
    D = data.aligned_design(jax.random.key(1), 10, [2.0, 1.0, 0.5], [1.0, 0.5], 3)
    p = models.init_deep_aligned(D.V, D.U, jnp.asarray([0.1, 0.02]), 3, (4, 5), key=jax.random.key(2))
    W1, W2, W3 = p.layers
    assert np.allclose(W2.T @ W2, W1 @ W1.T, atol=1e-14) and np.allclose(W3.T @ W3, W2 @ W2.T, atol=1e-14)
    ms = spectral.mode_strengths(spectral.coefficients(models.end_to_end(p), D.V), D.U)
    assert np.allclose(ms.strengths, [0.1, 0.02], rtol=1e-13) and float(ms.off_mode) < 1e-15


def test_mode_strengths_reads_diagonal_and_largest_off_entry():
    U = jnp.eye(3)[:, :2]
    coeffs = jnp.zeros((2, 4, 3)).at[:, 0, 0].set(1.5).at[:, 1, 1].set(0.5).at[1, 2, 1].set(-0.25)
    ms = spectral.mode_strengths(coeffs, U)
    assert np.allclose(ms.strengths, [[1.5, 0.5], [1.5, 0.5]]) and np.allclose(ms.off_mode, [0.0, 0.25])


# ------------------------------------------------------------------------------------ refusals


@pytest.mark.parametrize("call,field", [
    (lambda: cf.deep_gf_trajectory([1.0], [1.0], 1.0, [1.0], depth=3), "coeffs0"),  # sigma0 = c
    (lambda: cf.deep_gf_trajectory([1.0], [1.0], 2.0, [1.0], depth=2), "coeffs0"),
    (lambda: cf.deep_gf_trajectory([1.0], [1.0], 0.0, [1.0], depth=2), "coeffs0"),
    (lambda: cf.deep_gf_trajectory([1.0], [1.0], -0.1, [1.0], depth=1), "coeffs0"),
    (lambda: cf.deep_gf_trajectory([1.0], [1.0], 0.1, [1.0], depth=0), "depth"),
    (lambda: cf.deep_gf_trajectory([1.0], [1.0], 0.1, [1.0], depth=2.5), "depth"),
    (lambda: cf.deep_g(0.5, depth=-1), "depth"),
    (lambda: cf.deep_gd_trajectory([1.0], [1.0], 0.1, 0.5, 10, depth=4), "lr"),  # eps = 0.5 = 2/N
    (lambda: cf.deep_modified_flow([2.0], [1.0], 0.1, 0.6, 10, depth=2), "lr"),
    (lambda: cf.deep_gd_trajectory([1.0], [-1.0], 0.1, 0.1, 10, depth=2), "coeffs_star"),
    (lambda: cf.deep_time_dilation(0.2, 1.0, 0.2, depth=3), "coeffs0"),
    (lambda: models.init_deep_aligned(jnp.eye(2), jnp.eye(2), 0.1, 0, key=jax.random.key(0)), "depth"),
    (lambda: data.aligned_design(jax.random.key(0), 2, [1.0, 1.0, 1.0], [1.0]), "n"),
])
def test_bad_input_is_refused_naming_the_field(call, field):
    with pytest.raises(LinkdError) as e:
        call()
    msg = str(e.value)
    assert "\n" not in msg
    if isinstance(e.value, InputError):  # a closed form's argument: "<function>: <argument> must be ...; got ..."
        assert f": {field} must be" in msg and "; got " in msg
    else:  # a config key (data, models)
        assert isinstance(e.value, ConfigError) and msg.startswith(f"{field} = ") and "allowed:" in msg
