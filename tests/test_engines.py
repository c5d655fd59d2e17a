"""Faster exact paths (linkd.engine: eigen, gram, closed form) give engine.simulate's numbers to 1e-12 in float64."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from linkd import engine, models, spectral
from linkd.errors import ConfigError, DivergenceError

TOL = dict(rtol=1e-12, atol=1e-12)


def problem(n, d, family, seed=0, C=3):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) / np.sqrt(d)
    Xt = rng.standard_normal((7, d)) / np.sqrt(d)
    if family == "multiclass":
        W = rng.standard_normal((d, C))
        z, zt = X @ W, Xt @ W
        lab = np.argmax(z + 0.5 * rng.standard_normal(z.shape), 1).astype(np.int32)
        labt = np.argmax(zt, 1).astype(np.int32)
        w0 = 0.1 * rng.standard_normal((d, C))
    else:
        w = rng.standard_normal(d)
        z, zt = X @ w, Xt @ w
        if family == "mse":
            lab, labt = z + 0.3 * rng.standard_normal(n), zt
        else:
            lab, labt = (z + 0.5 * rng.standard_normal(n) > 0).astype(float), (zt > 0).astype(float)
        w0 = 0.1 * rng.standard_normal(d)
    j = jnp.asarray
    return j(w0), j(X), j(z), j(lab), j(Xt), j(zt), j(labt)


def assert_same(a, b, coeffs=True):
    np.testing.assert_array_equal(a.steps, b.steps)
    assert list(a.metrics) == list(b.metrics)
    for k in a.metrics:
        np.testing.assert_allclose(a.metrics[k], b.metrics[k], err_msg=k, **TOL)
    if coeffs:
        assert (a.coeffs is None) == (b.coeffs is None)
        if a.coeffs is not None:
            assert a.coeffs.shape == b.coeffs.shape
            np.testing.assert_allclose(a.coeffs, b.coeffs, **TOL)
    np.testing.assert_allclose(a.params, b.params, **TOL)
    assert int(a.bad_step) == int(b.bad_step)


CASES = [(24, 10), (10, 24)]  # n > d and n < d


def setup(n, d, family, every, m=4, labels=True, alpha=0.3, optimizer="gd", switch=None, steps=30):
    w0, X, z, lab, Xt, zt, labt = problem(n, d, family)
    sp = spectral.eigh_desc(X)
    data = engine.Data(X, z, labels=lab if labels else None, basis=sp.basis[:, :m], X_test=Xt, targets_test=zt, labels_test=labt)
    lr = engine.default_lr(X, family, fraction=0.8)
    spec = engine.EngineSpec(family=family, optimizer=optimizer, steps=steps, record_every=every, switch_step=switch)
    return w0, data, engine.Hyper(lr=lr, tau=2.0, alpha=alpha, momentum=0.5), spec, sp


# (n, d, family, record_every): n > d and n < d, every family, record every 1 and 7
EIGEN_CASES = [(24, 10, "mse", 1), (10, 24, "mse", 7), (24, 10, "binary", 7), (10, 24, "binary", 1),
               (24, 10, "multiclass", 1), (10, 24, "multiclass", 7)]


@pytest.mark.parametrize("n,d,family,every", EIGEN_CASES)
def test_eigen_equals_plain(n, d, family, every):
    w0, data, hyper, spec, sp = setup(n, d, family, every)
    ref = engine.simulate(w0, data, hyper, spec)
    got = engine.simulate_eigen(w0, data, hyper, spec, sp)
    assert_same(got, ref)
    assert got.path == "eigen" and ref.path == "plain"
    # n > d: r = d > d/2, so the step runs on X and V (no n x r copy of X); n < d: on Z = XV
    if n < d:  # a thin basis (SVD, d x r) gives the same run
        assert_same(engine.simulate_eigen(w0, data, hyper, spec, engine.thin_spectrum(data.X)), ref)


@pytest.mark.parametrize("optimizer,switch", [("momentum", 9), ("nesterov", None)])
def test_eigen_momentum_nesterov_switch(optimizer, switch):
    w0, data, hyper, spec, sp = setup(10, 24, "binary", 7, optimizer=optimizer, switch=switch)
    assert_same(engine.simulate_eigen(w0, data, hyper, spec, sp), engine.simulate(w0, data, hyper, spec))


@pytest.mark.parametrize("n,d,every,labels,switch,optimizer", [
    (24, 10, 1, True, None, "gd"), (24, 10, 7, False, None, "gd"), (10, 24, 7, True, 11, "momentum"), (24, 10, 7, True, None, "adam"),
])
def test_gram_equals_plain(n, d, every, labels, switch, optimizer):
    w0, data, hyper, spec, sp = setup(n, d, "mse", every, labels=labels, switch=switch, optimizer=optimizer)
    assert_same(engine.simulate_gram(w0, data, hyper, spec), engine.simulate(w0, data, hyper, spec))


@pytest.mark.parametrize("n,d,every,labels", [(24, 10, 1, True), (10, 24, 7, True), (24, 10, 7, False)])
def test_closed_form_equals_plain(n, d, every, labels):
    w0, data, hyper, spec, sp = setup(n, d, "mse", every, labels=labels)
    ref = engine.simulate(w0, data, hyper, spec)
    assert_same(engine.simulate_closed_form(w0, data, hyper, spec, sp), ref)
    if n < d:
        assert_same(engine.simulate_closed_form(w0, data, hyper, spec, engine.thin_spectrum(data.X)), ref)


def test_closed_form_reports_the_divergence_step():
    w0, data, hyper, spec, sp = setup(24, 10, "mse", 7, steps=60)
    lam_max = float(sp.eigvals[0])
    hyper = hyper._replace(lr=3.0 / lam_max)
    ref = engine.simulate(w0, data, hyper, spec, check=False)
    cf = engine.simulate_closed_form(w0, data, hyper, spec, sp, check=False)
    assert int(ref.bad_step) > 0 and int(cf.bad_step) == int(ref.bad_step)
    with pytest.raises(DivergenceError):
        engine.simulate_closed_form(w0, data, hyper, spec, sp)
    with pytest.raises(DivergenceError):
        engine.simulate_eigen(w0, data, hyper, spec, sp)


def test_arbitrary_recording_basis_and_record_top():
    w0, data, hyper, spec, sp = setup(10, 24, "binary", 7)
    rng = np.random.default_rng(5)
    B = jnp.asarray(np.linalg.qr(rng.standard_normal((24, 5)))[0])
    d2 = data._replace(basis=B)
    assert_same(engine.simulate_eigen(w0, d2, hyper, spec, sp), engine.simulate(w0, d2, hyper, spec))
    # record_top=m == the axis basis e_1..e_m
    d3 = data._replace(basis=None)
    ref = engine.simulate(w0, data._replace(basis=jnp.eye(24)[:, :6]), hyper, spec)
    got = engine.simulate_eigen(w0, d3, hyper, spec, engine.thin_spectrum(data.X), record_top=6)
    assert_same(got, ref)
    # more recorded eigen-directions than the rank: the null directions stay at their init
    d4 = data._replace(basis=sp.basis[:, :15])
    assert_same(engine.simulate_eigen(w0, d4, hyper, spec, sp), engine.simulate(w0, d4, hyper, spec))


@pytest.mark.parametrize("n,d,family,optimizer,path", [
    (24, 10, "mse", "gd", "closed_form"),
    (24, 10, "mse", "momentum", "gram"),
    (10, 24, "binary", "gd", "eigen"),
    (24, 10, "multiclass", "adam", "plain"),
])
def test_auto_picks_and_matches(n, d, family, optimizer, path):
    w0, data, hyper, spec, sp = setup(n, d, family, 7, optimizer=optimizer)
    got = engine.simulate_auto(w0, data, hyper, spec, sp)
    assert got.path == path
    assert_same(got, engine.simulate(w0, data, hyper, spec))


def test_refusals():
    w0, data, hyper, spec, sp = setup(10, 24, "binary", 7)
    with pytest.raises(ConfigError, match="optimizer"):
        engine.simulate_eigen(w0, data, hyper, engine.EngineSpec(family="binary", optimizer="adam"), sp)
    with pytest.raises(ConfigError, match="family"):
        engine.simulate_gram(w0, data, hyper, spec)
    with pytest.raises(ConfigError, match="batch_size"):
        engine.simulate_eigen(w0, data, hyper, engine.EngineSpec(family="binary", batch_size=4), sp)
    deep = models.init_deep_linear(24, [5], scale=1.0, key=jax.random.key(0))
    with pytest.raises(ConfigError, match="params"):
        engine.simulate_eigen(deep, data, hyper, spec, sp)
    assert engine.select_path(deep, data, hyper, spec) == "plain"


def test_large_d_axis_basis_reports_footprint_first():
    n, d, m = 50, 20_000, 10  # X is 8 MB; a d x d basis would be 3.2 GB (benchmarks/run.py runs d = 100 000)
    rng = np.random.default_rng(0)
    X = jnp.asarray(rng.standard_normal((n, d)) / np.sqrt(d))
    z = X @ jnp.asarray(rng.standard_normal(d))
    data = engine.Data(X, z)
    spec = engine.EngineSpec(family="binary", steps=40, record_every=10)
    hyper = engine.Hyper(lr=1.0)
    log = []
    sp = engine.thin_spectrum(X)
    assert sp.basis.shape == (d, n)
    tr = engine.simulate_eigen(jnp.zeros(d), data, hyper, spec, sp, record_top=m, report=log.append)
    assert len(log) == 1 and "MiB" in log[0]
    fp = engine.estimate_bytes("eigen", jnp.zeros(d), data, spec, spectrum=sp, record_top=m)
    assert fp.total < 3 * X.nbytes  # X + thin basis + small: no d x d
    assert tr.coeffs.shape == (5, m)
    # same first coordinates as the plain engine on a basis of identity columns (d x m, cheap)
    ref = engine.simulate(jnp.zeros(d), data._replace(basis=jnp.eye(d, m)), hyper, spec)
    np.testing.assert_allclose(tr.coeffs, ref.coeffs, **TOL)
    np.testing.assert_allclose(tr.metrics["train_loss"], ref.metrics["train_loss"], **TOL)


def test_hard_labels_only_on_every_path():
    """Data(targets=None), alpha = 1: every mse path runs on the labels alone, equal to plain."""
    w0, data, hyper, spec, sp = setup(24, 10, "mse", 7)
    data = data._replace(targets=None, targets_test=None)
    hyper = hyper._replace(alpha=1.0)
    ref = engine.simulate(w0, data, hyper, spec)
    assert "train_fidelity_error" not in ref.metrics and "train_error" in ref.metrics
    for path in ("closed_form", "gram"):  # (the eigen path shares the plain engine's loss code)
        got = engine.simulate_auto(w0, data, hyper, spec, sp, path=path)
        assert got.path == path
        assert_same(got, ref)


def test_engine_modules_use_no_private_name_of_another():
    """The fast paths share the one engine core through its public names: no module of
    linkd.engine imports a private (``_``) name from another."""
    import ast
    import inspect
    import pkgutil

    bad = []
    for info in pkgutil.iter_modules(engine.__path__):
        mod = __import__(f"linkd.engine.{info.name}", fromlist=["_"])
        for n in ast.walk(ast.parse(inspect.getsource(mod))):
            if isinstance(n, ast.ImportFrom) and (n.module or "").startswith("linkd"):
                bad += [f"{info.name}: {a.name}" for a in n.names if a.name.startswith("_")]
    assert bad == []


def test_analytic_residual_factor_against_exact_integer_powers():
    """The closed-form path's own (1-ηλ)^t (exp/log1p route) against numpy's repeated products,
    for ηλ < 1, > 1 (negative base, odd and even t) and = 1; a one-step-late planted factor fails."""
    from linkd.engine.analytic import gd_residual

    lam, lr = np.array([1e-6, 0.3, 1.0, 1.5, 1.99]), 1.0
    t = np.array([0, 1, 2, 7, 40, 301])
    ref = np.stack([np.prod(np.tile(1.0 - lr * lam, (k, 1)), axis=0) for k in t])  # products, no pow
    got = np.asarray(gd_residual(jnp.asarray(lam), lr, jnp.asarray(t)))
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-300)
    assert np.all(got[0] == 1.0)
    late = np.asarray(gd_residual(jnp.asarray(lam), lr, jnp.asarray(t + 1)))
    assert not np.allclose(late, ref, rtol=1e-6)
