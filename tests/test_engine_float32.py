"""Engine equalities in float32 and float64: the plain scan, the eigen, Gram and closed-form paths
(:mod:`linkd.engine`) and the closed form :func:`linkd.closed_form.gd_mse_trajectory`
(docs/theory.md §2.2, :math:`c_k(t) = c_k^* + (1-\\eta\\lambda_k)^t(c_k(0) - c_k^*)`) give one run.

Every path runs in the data's dtype and is compared with the plain engine in float64 on the same
(float32-representable) data, so a float32 path is checked against an independent, more precise
run rather than against a sibling with the same rounding. Tolerances, relative to each array's
largest entry: float64 1e-12 (round-off of ~30 steps), float32 2e-5 (~30 steps × eps_32 =
1.2e-7 × the spectrum's condition; measured ≤ 2e-6 on every path here).
"""
import jax.numpy as jnp
import numpy as np
import pytest

from linkd import closed_form, engine, spectral

DTYPES = {"float32": (jnp.float32, 2e-5), "float64": (jnp.float64, 1e-12)}
STEPS = 30
RECORDED = [0, 7, 14, 21, 28, 30]  # record_every=7, and the last step


def _problem(n, d, family, dtype, seed=0):
    """(w0, Data, Hyper, spec); the numbers are drawn in float64 and rounded to ``dtype`` once."""
    rng = np.random.default_rng(seed)
    r = lambda *s: rng.standard_normal(s)  # noqa: E731
    X, Xt = r(n, d) / np.sqrt(d), r(7, d) / np.sqrt(d)
    if family == "multiclass":
        W = r(d, 3)
        z, zt, w0 = X @ W, Xt @ W, 0.1 * r(d, 3)
        lab, labt = np.argmax(z + 0.5 * r(n, 3), 1).astype(np.int32), np.argmax(zt, 1).astype(np.int32)
    else:
        w = r(d)
        z, zt, w0 = X @ w, Xt @ w, 0.1 * r(d)
        lab = z + 0.3 * r(n) if family == "mse" else (z + 0.5 * r(n) > 0).astype(np.float64)
        labt = zt if family == "mse" else (zt > 0).astype(np.float64)
    f = lambda a: jnp.asarray(np.asarray(a, np.float32), dtype)  # noqa: E731  (float32-representable in both)
    i = lambda a: jnp.asarray(a) if a.dtype == np.int32 else f(a)  # noqa: E731
    Xd = f(X)
    basis = spectral.eigh_desc(Xd).basis[:, :4]
    data = engine.Data(Xd, f(z), labels=i(lab), basis=basis, X_test=f(Xt), targets_test=f(zt), labels_test=i(labt))
    lr = engine.default_lr(jnp.asarray(np.asarray(X, np.float32), jnp.float64), family, fraction=0.8)
    spec = engine.EngineSpec(family=family, steps=STEPS, record_every=7)
    return f(w0), data, engine.Hyper(lr=lr, tau=2.0, alpha=0.3), spec


def _as64(w0, data, hyper, spec):
    """The same run's inputs in float64 (the reference run), same basis vectors."""
    up = lambda a: None if a is None else (a if a.dtype == jnp.int32 else a.astype(jnp.float64))  # noqa: E731
    return up(w0), data._replace(**{k: up(v) for k, v in data._asdict().items()}), hyper, spec


def _close(got, ref, rtol, what=""):
    got, ref = np.asarray(got, np.float64), np.asarray(ref, np.float64)
    assert got.shape == ref.shape, what
    scale = max(1.0, float(np.max(np.abs(ref)))) if ref.size else 1.0
    err = float(np.max(np.abs(got - ref))) if ref.size else 0.0
    assert err <= rtol * scale, f"{what}: max |diff| {err:.3g} > {rtol:g} x {scale:.3g}"


def _assert_run(got, ref, dtype, rtol):
    """``got`` ran in ``dtype`` and equals the float64 reference run ``ref`` to ``rtol``."""
    assert got.params.dtype == dtype and got.coeffs.dtype == dtype
    np.testing.assert_array_equal(got.steps, ref.steps)
    assert list(got.metrics) == list(ref.metrics)
    for k in ref.metrics:
        _close(got.metrics[k], ref.metrics[k], rtol, k)
    _close(got.coeffs, ref.coeffs, rtol, "coeffs")
    _close(got.params, ref.params, rtol, "params")


@pytest.fixture(scope="module")
def reference():
    """Plain float64 runs, one per (n, d, family), keyed like the problems."""
    cache = {}

    def get(n, d, family):
        if (n, d, family) not in cache:
            w0, data, hyper, spec = _as64(*_problem(n, d, family, jnp.float64))
            cache[(n, d, family)] = engine.simulate(w0, data, hyper, spec)
        return cache[(n, d, family)]

    return get


@pytest.mark.parametrize("dtype_name", DTYPES)
@pytest.mark.parametrize("path", ["plain", "eigen", "gram", "closed_form"])
def test_every_mse_path_equals_the_float64_plain_run(path, dtype_name, reference):
    dtype, rtol = DTYPES[dtype_name]
    n, d = 10, 24  # n < d: a rank-deficient Σ̂, the null-space coordinates frozen at the init
    w0, data, hyper, spec = _problem(n, d, "mse", dtype)
    sp = spectral.eigh_desc(data.X)
    got = engine.simulate_auto(w0, data, hyper, spec, sp, path=path)
    assert got.path == path
    _assert_run(got, reference(n, d, "mse"), dtype, rtol)


@pytest.mark.parametrize("dtype_name", DTYPES)
@pytest.mark.parametrize("family", ["binary", "multiclass"])
def test_eigen_path_equals_the_float64_plain_run_at_temperature(family, dtype_name, reference):
    dtype, rtol = DTYPES[dtype_name]
    w0, data, hyper, spec = _problem(24, 10, family, dtype)  # τ = 2 (a KD term at τ ≠ 1)
    got = engine.simulate_eigen(w0, data, hyper, spec, spectral.eigh_desc(data.X))
    _assert_run(got, reference(24, 10, family), dtype, rtol)


def _closed_form_coeffs(data, w0, hyper, dtype):
    """c_k(t) of :func:`linkd.closed_form.gd_mse_trajectory` at the recorded steps, computed in
    ``dtype``. The mixed squared loss α·½(z − y)² + (1 − α)·½(z − z_T)² has the curvature of one
    squared loss and its minimiser at the target α·y + (1 − α)·z_T, so c* = V_kᵀX⁺(αy + (1 − α)z_T)."""
    sp = spectral.eigh_desc(data.X)
    target = hyper.alpha * data.labels + (1.0 - hyper.alpha) * data.targets
    c_star = spectral.coefficients(spectral.min_norm_solution(data.X, target), data.basis)
    c0 = spectral.coefficients(w0, data.basis)
    lam = sp.eigvals[:data.basis.shape[1]]
    out = closed_form.gd_mse_trajectory(lam, c_star, c0, hyper.lr, jnp.asarray(RECORDED))
    assert out.dtype == dtype
    return out


@pytest.mark.parametrize("dtype_name", DTYPES)
def test_engine_equals_the_closed_form(dtype_name, reference):
    """The plain engine's run (the one the path tests compare with) against the closed form."""
    dtype, rtol = DTYPES[dtype_name]
    w0, data, hyper, spec = _problem(10, 24, "mse", dtype)
    run = engine.simulate(w0, data, hyper, spec)
    assert run.coeffs.dtype == dtype and list(run.steps) == RECORDED
    _close(run.coeffs, _closed_form_coeffs(data, w0, hyper, dtype), rtol, "engine vs closed form")
    w64, d64, _, _ = _as64(w0, data, hyper, spec)
    _close(_closed_form_coeffs(data, w0, hyper, dtype), _closed_form_coeffs(d64, w64, hyper, jnp.float64), rtol,
           "closed form in dtype vs float64")


def test_the_tolerances_fail_on_a_planted_bug(reference):
    """The float32 tolerance catches a step size off by 1e-3 (a planted bug in the run) and a
    prediction perturbed by 1e-4 relative."""
    dtype, rtol = DTYPES["float32"]
    w0, data, hyper, spec = _problem(10, 24, "mse", dtype)
    ref = reference(10, 24, "mse")
    run = engine.simulate(w0, data, hyper, spec)
    _assert_run(run, ref, dtype, rtol)
    with pytest.raises(AssertionError, match="max"):
        _assert_run(engine.simulate(w0, data, hyper._replace(lr=hyper.lr * (1 + 1e-3)), spec), ref, dtype, rtol)
    with pytest.raises(AssertionError, match="coeffs"):
        _assert_run(run._replace(coeffs=run.coeffs * (1 + 1e-4)), ref, dtype, rtol)
