"""The training engine: sweeps equal loops, one trace per shape, reproducible minibatches,
divergence reporting, shape/memory refusals, recording layout, optimizers, deep-linear models."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from linkd import dynamics, losses, models, spectral
from linkd.errors import ConfigError, DivergenceError, MemoryBudgetError


def problem(n=16, d=10, seed=0, classes=None):
    rng = np.random.default_rng(seed)
    X = jnp.asarray(rng.standard_normal((n, d)) / np.sqrt(d))
    if classes is None:
        w = rng.standard_normal(d)
        return X, jnp.asarray(X @ w), jnp.asarray((X @ w > 0).astype(float))
    W = rng.standard_normal((d, classes))
    z = X @ W
    return X, jnp.asarray(z), jnp.asarray(np.argmax(z, 1).astype(np.int32))


def test_recorded_steps_include_zero_and_last():
    assert list(dynamics.EngineSpec(steps=10, record_every=4).recorded_steps) == [0, 4, 8, 10]
    assert list(dynamics.EngineSpec(steps=8, record_every=4).recorded_steps) == [0, 4, 8]
    X, z, _ = problem()
    sp = spectral.eigh_desc(X)
    tr = dynamics.simulate(jnp.zeros(10), dynamics.Data(X, z, basis=sp.basis[:, :3]), dynamics.Hyper(lr=0.5),
                           dynamics.EngineSpec(steps=10, record_every=4))
    assert tr.coeffs.shape == (4, 3) and tr.metrics["train_loss"].shape == (4,)
    # record every 4 gives the same states as record every 1 at those steps
    full = dynamics.simulate(jnp.zeros(10), dynamics.Data(X, z, basis=sp.basis[:, :3]), dynamics.Hyper(lr=0.5),
                             dynamics.EngineSpec(steps=10, record_every=1))
    np.testing.assert_array_equal(full.coeffs[np.array([0, 4, 8, 10])], tr.coeffs)


@pytest.mark.parametrize("family", ["mse", "binary", "multiclass"])
def test_vmapped_sweep_equals_loop_of_single_runs(family):
    X, z, lab = problem(classes=3 if family == "multiclass" else None)
    d = X.shape[1]
    w0 = jnp.zeros((d, 3)) if family == "multiclass" else jnp.zeros(d)
    sp = spectral.eigh_desc(X)
    data = dynamics.Data(X, z, labels=lab, basis=sp.basis, X_test=X[:5], targets_test=z[:5], labels_test=lab[:5])
    spec = dynamics.EngineSpec(family=family, steps=25, record_every=5)
    lrs, taus, alphas = jnp.asarray([0.1, 0.4, 0.8]), jnp.asarray([1.0, 2.0, 4.0]), jnp.asarray([0.0, 0.3, 1.0])
    sw = dynamics.sweep(w0, data, dynamics.Hyper(lr=lrs, tau=taus, alpha=alphas), spec)
    assert sw.coeffs.shape[0] == 3
    for i in range(3):
        one = dynamics.simulate(w0, data, dynamics.Hyper(lr=float(lrs[i]), tau=float(taus[i]), alpha=float(alphas[i])), spec)
        np.testing.assert_allclose(sw.coeffs[i], one.coeffs, rtol=1e-12, atol=1e-12)
        for k in one.metrics:
            np.testing.assert_allclose(sw.metrics[k][i], one.metrics[k], rtol=1e-12, atol=1e-12)


def test_sweep_over_seeds_of_the_init_equals_loop():
    X, z, _ = problem()
    keys = jax.random.split(jax.random.key(3), 4)
    w0s = jnp.stack([models.init_linear(10, scale=1.0, key=k) for k in keys])
    spec = dynamics.EngineSpec(steps=20, record_every=10)
    data = dynamics.Data(X, z, basis=jnp.eye(10))
    sw = dynamics.sweep(w0s, data, dynamics.Hyper(lr=0.3), spec, batched=("params",))
    for i in range(4):
        np.testing.assert_allclose(sw.coeffs[i], dynamics.simulate(w0s[i], data, dynamics.Hyper(lr=0.3), spec).coeffs, rtol=1e-12, atol=1e-13)


def test_trajectory_traces_once_per_shape_not_per_call():
    X, z, _ = problem(n=13, d=7)
    spec = dynamics.EngineSpec(steps=9, record_every=3)
    data = dynamics.Data(X, z)
    dynamics.simulate(jnp.zeros(7), data, dynamics.Hyper(lr=0.1), spec)
    before = dynamics.trace_count()
    for lr in (0.2, 0.3, 0.4):  # new values, same shapes: no retrace
        dynamics.simulate(jnp.zeros(7), data, dynamics.Hyper(lr=lr, tau=2.0), spec)
    assert dynamics.trace_count() == before
    X2, z2, _ = problem(n=14, d=7)
    dynamics.simulate(jnp.zeros(7), dynamics.Data(X2, z2), dynamics.Hyper(lr=0.1), spec)  # new shape: one trace
    assert dynamics.trace_count() == before + 1
    # sweeps compile once too
    sw_before = dynamics.trace_count()
    for _ in range(2):
        dynamics.sweep(jnp.zeros(7), data, dynamics.Hyper(lr=jnp.asarray([0.1, 0.2])), spec)
    assert dynamics.trace_count() == sw_before + 1


def test_minibatch_sgd_is_reproducible_from_its_key():
    X, z, _ = problem(n=30)
    spec = dynamics.EngineSpec(steps=40, batch_size=6, record_every=10)
    data = dynamics.Data(X, z, basis=jnp.eye(10))
    a = dynamics.simulate(jnp.zeros(10), data, dynamics.Hyper(lr=0.3), spec, key=jax.random.key(11))
    b = dynamics.simulate(jnp.zeros(10), data, dynamics.Hyper(lr=0.3), spec, key=jax.random.key(11))
    c = dynamics.simulate(jnp.zeros(10), data, dynamics.Hyper(lr=0.3), spec, key=jax.random.key(12))
    np.testing.assert_array_equal(a.coeffs, b.coeffs)
    assert not np.allclose(a.coeffs, c.coeffs)
    full = dynamics.simulate(jnp.zeros(10), data, dynamics.Hyper(lr=0.3), dynamics.EngineSpec(steps=40, record_every=10))
    assert not np.allclose(a.coeffs[-1], full.coeffs[-1])  # minibatching really happened
    with pytest.raises(ConfigError, match="key"):
        dynamics.simulate(jnp.zeros(10), data, dynamics.Hyper(lr=0.3), spec)


def test_diverging_learning_rate_raises_naming_the_first_bad_step():
    X, z, _ = problem()
    lam_max = float(spectral.eigh_desc(X).eigvals[0])
    spec = dynamics.EngineSpec(steps=400, record_every=1)
    data = dynamics.Data(X, z)
    hyper = dynamics.Hyper(lr=2.6 / lam_max)
    raw = dynamics.simulate(jnp.zeros(10), data, hyper, spec, check=False)
    loss = np.asarray(raw.metrics["train_loss"])
    limit = spec.blowup * (1 + abs(loss[0]))
    expected = int(np.flatnonzero(~np.isfinite(loss) | (loss > limit))[0])
    with pytest.raises(DivergenceError, match=f"diverged at step {expected} of 400") as e:
        dynamics.simulate(jnp.zeros(10), data, hyper, spec)
    assert e.value.step == expected and e.value.member is None
    # in a sweep, the error names the member
    with pytest.raises(DivergenceError, match="sweep member 1"):
        dynamics.sweep(jnp.zeros(10), data, dynamics.Hyper(lr=jnp.asarray([0.5, 2.6]) / lam_max), spec)


def test_check_lr_refuses_past_the_stability_limit():
    X, _, _ = problem()
    lam_max = float(spectral.eigh_desc(X).eigvals[0])
    dynamics.check_lr(1.9 / lam_max, X, "mse")
    with pytest.raises(ConfigError, match=r"train.lr = .*0 < train.lr < 2/L"):
        dynamics.check_lr(2.1 / lam_max, X, "mse", name="train.lr")
    dynamics.check_lr(7.9 / lam_max, X, "binary")  # soft CE: L = λ_max / 4
    with pytest.raises(ConfigError):
        dynamics.check_lr(8.1 / lam_max, X, "binary")
    assert dynamics.default_lr(X, "mse") * lam_max == pytest.approx(0.9)


def test_shape_mismatch_names_the_field():
    X, z, _ = problem()
    with pytest.raises(ConfigError, match="params"):
        dynamics.simulate(jnp.zeros(9), dynamics.Data(X, z), dynamics.Hyper(lr=0.1), dynamics.EngineSpec(steps=2))
    with pytest.raises(ConfigError, match="targets"):
        dynamics.simulate(jnp.zeros(10), dynamics.Data(X, z[:-1]), dynamics.Hyper(lr=0.1), dynamics.EngineSpec(steps=2))
    with pytest.raises(ConfigError, match="basis"):
        dynamics.simulate(jnp.zeros(10), dynamics.Data(X, z, basis=jnp.eye(9)), dynamics.Hyper(lr=0.1), dynamics.EngineSpec(steps=2))
    with pytest.raises(ConfigError, match="family"):
        dynamics.EngineSpec(family="hinge")


def test_run_that_would_not_fit_is_refused_before_it_starts(monkeypatch):
    X, z, _ = problem()
    spec = dynamics.EngineSpec(steps=10**6, record_every=1)
    data = dynamics.Data(X, z, basis=jnp.eye(10))
    need = dynamics.record_bytes(spec, data, jnp.zeros(10))
    assert need > (10**6 + 1) * 10 * 8  # at least the coefficient record
    monkeypatch.setenv("LINKD_MEMORY_LIMIT", str(need // 2))
    with pytest.raises(MemoryBudgetError, match="GiB") as e:
        dynamics.simulate(jnp.zeros(10), data, dynamics.Hyper(lr=0.1), spec)
    assert e.value.needed_bytes == need


def test_heavy_ball_momentum_matches_numpy_reference():
    X, z, _ = problem()
    spec = dynamics.EngineSpec(optimizer="momentum", steps=30, record_every=30)
    tr = dynamics.simulate(jnp.zeros(10), dynamics.Data(X, z), dynamics.Hyper(lr=0.2, momentum=0.8), spec)
    Xn, zn = np.asarray(X), np.asarray(z)
    w, v = np.zeros(10), np.zeros(10)
    for _ in range(30):  # optax.sgd(momentum): v = g + μ v, w -= η v
        g = Xn.T @ (Xn @ w - zn) / len(zn)
        v = g + 0.8 * v
        w = w - 0.2 * v
    np.testing.assert_allclose(tr.params, w, rtol=1e-12)


@pytest.mark.parametrize("opt", ["nesterov", "adam"])
def test_other_optimizers_decrease_the_loss(opt):
    X, z, _ = problem()
    tr = dynamics.simulate(jnp.zeros(10), dynamics.Data(X, z), dynamics.Hyper(lr=0.05, momentum=0.9),
                           dynamics.EngineSpec(optimizer=opt, steps=200, record_every=200))
    assert float(tr.metrics["train_loss"][-1]) < 0.1 * float(tr.metrics["train_loss"][0])


def test_float32_inputs_run_in_float32():
    X, z, _ = problem()
    tr = dynamics.simulate(jnp.zeros(10, jnp.float32), dynamics.Data(X.astype(jnp.float32), z.astype(jnp.float32), basis=jnp.eye(10, dtype=jnp.float32)),
                           dynamics.Hyper(lr=0.3), dynamics.EngineSpec(steps=5))
    assert tr.coeffs.dtype == jnp.float32 and tr.params.dtype == jnp.float32


def test_alpha_mixture_and_switch_weighting():
    X, z, lab = problem()
    data = dynamics.Data(X, z, labels=lab)
    w = jnp.asarray(np.random.default_rng(1).standard_normal(10))
    spec = dynamics.EngineSpec(family="binary", steps=1, switch_step=5)
    h = dynamics.Hyper(lr=0.1, tau=2.0, alpha=0.25)
    zs = X @ w
    hard = jnp.mean(losses.binary_soft_ce(zs, lab))
    kd = jnp.mean(losses.kd_binary(zs, z, 2.0))
    before = dynamics.objective(w, X, z, lab, dynamics._cast_hyper(h, X.dtype), jnp.asarray(3), spec)
    after = dynamics.objective(w, X, z, lab, dynamics._cast_hyper(h, X.dtype), jnp.asarray(5), spec)
    np.testing.assert_allclose(before, hard, rtol=1e-14)
    np.testing.assert_allclose(after, 0.25 * hard + 0.75 * kd, rtol=1e-14)


def test_simulate_until_reaches_tolerance_or_says_why():
    X, z, _ = problem(n=8, d=12)
    z = z / jnp.linalg.norm(z) * 2.0
    spec = dynamics.EngineSpec(family="binary", steps=50_000)
    lr = dynamics.default_lr(X, "binary", fraction=1.0)
    res = dynamics.simulate_until(jnp.zeros(12), dynamics.Data(X, z), dynamics.Hyper(lr=lr), spec, grad_tol=1e-11)
    assert float(res.grad_norm) <= 1e-11 and 0 < int(res.steps) < 50_000
    with pytest.raises(DivergenceError, match="grad_tol"):
        dynamics.simulate_until(jnp.zeros(12), dynamics.Data(X, z), dynamics.Hyper(lr=lr), dynamics.EngineSpec(family="binary", steps=3), grad_tol=1e-11)


# ---- deep linear -------------------------------------------------------------------------------


def test_deep_linear_shapes_and_end_to_end():
    p = models.init_deep_linear(6, (5, 4), scale=1.0, key=jax.random.key(0))
    assert [W.shape for W in p.layers] == [(5, 6), (4, 5), (1, 4)]
    W1, W2, W3 = p.layers
    np.testing.assert_allclose(models.end_to_end(p), (W3 @ W2 @ W1)[0], rtol=1e-14)
    X = jnp.ones((3, 6))
    np.testing.assert_allclose(models.predict(p, X), X @ (W3 @ W2 @ W1)[0], rtol=1e-13)
    pm = models.init_deep_linear(6, (5,), n_out=3, scale=1.0, key=jax.random.key(1))
    assert models.end_to_end(pm).shape == (6, 3) and models.depth(pm) == 2


@pytest.mark.parametrize("widths,n_out", [((4,), None), ((5, 7), None), ((6, 6), 3)])
def test_balanced_init_is_balanced(widths, n_out):
    p = models.init_deep_linear(6, widths, n_out=n_out, scale=0.7, key=jax.random.key(2), balanced=True)
    for Wj, Wj1 in zip(p.layers[:-1], p.layers[1:]):
        np.testing.assert_allclose(Wj1.T @ Wj1, Wj @ Wj.T, atol=1e-12)
    np.testing.assert_allclose(jnp.linalg.norm(models.end_to_end(p)), 0.7, rtol=1e-12)


def test_balanced_init_needs_wide_enough_layers():
    with pytest.raises(ValueError, match="width"):
        models.init_deep_linear(6, (2,), n_out=3, scale=1.0, key=jax.random.key(0), balanced=True)


def test_deep_linear_trains_through_the_engine_and_keeps_W1_off_span():
    X, z, _ = problem(n=5, d=12)
    p0 = models.init_deep_linear(12, (6,), scale=0.3, key=jax.random.key(4))
    tr = dynamics.simulate(p0, dynamics.Data(X, z, basis=jnp.eye(12)), dynamics.Hyper(lr=0.2),
                           dynamics.EngineSpec(family="binary", steps=300, record_every=100))
    Q = jnp.eye(12) - spectral.projector(X)
    np.testing.assert_allclose(tr.params.layers[0] @ Q, p0.layers[0] @ Q, atol=1e-10)
    assert float(tr.metrics["train_loss"][-1]) < float(tr.metrics["train_loss"][0])
    np.testing.assert_allclose(tr.coeffs[-1], models.end_to_end(tr.params), atol=1e-13)
