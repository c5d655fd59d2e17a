"""The training engine: sweeps equal loops, one trace per shape, reproducible minibatches,
divergence reporting, shape/memory refusals, recording layout, optimizers, deep-linear models."""
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from linkd import engine, losses, models, spectral
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
    assert list(engine.EngineSpec(steps=10, record_every=4).recorded_steps) == [0, 4, 8, 10]
    assert list(engine.EngineSpec(steps=8, record_every=4).recorded_steps) == [0, 4, 8]
    X, z, _ = problem()
    sp = spectral.eigh_desc(X)
    tr = engine.simulate(jnp.zeros(10), engine.Data(X, z, basis=sp.basis[:, :3]), engine.Hyper(lr=0.5),
                           engine.EngineSpec(steps=10, record_every=4))
    assert tr.coeffs.shape == (4, 3) and tr.metrics["train_loss"].shape == (4,)
    # record every 4 gives the same states as record every 1 at those steps
    full = engine.simulate(jnp.zeros(10), engine.Data(X, z, basis=sp.basis[:, :3]), engine.Hyper(lr=0.5),
                             engine.EngineSpec(steps=10, record_every=1))
    np.testing.assert_array_equal(full.coeffs[np.array([0, 4, 8, 10])], tr.coeffs)


@pytest.mark.parametrize("family", ["mse", "binary", "multiclass"])
def test_vmapped_sweep_equals_loop_of_single_runs(family):
    X, z, lab = problem(classes=3 if family == "multiclass" else None)
    d = X.shape[1]
    w0 = jnp.zeros((d, 3)) if family == "multiclass" else jnp.zeros(d)
    sp = spectral.eigh_desc(X)
    data = engine.Data(X, z, labels=lab, basis=sp.basis, X_test=X[:5], targets_test=z[:5], labels_test=lab[:5])
    spec = engine.EngineSpec(family=family, steps=25, record_every=5)
    lrs, taus, alphas = jnp.asarray([0.1, 0.4, 0.8]), jnp.asarray([1.0, 2.0, 4.0]), jnp.asarray([0.0, 0.3, 1.0])
    sw = engine.sweep(w0, data, engine.Hyper(lr=lrs, tau=taus, alpha=alphas), spec)
    assert sw.coeffs.shape[0] == 3
    for i in range(3):
        one = engine.simulate(w0, data, engine.Hyper(lr=float(lrs[i]), tau=float(taus[i]), alpha=float(alphas[i])), spec)
        member = sw.member(i)
        np.testing.assert_allclose(member.coeffs, one.coeffs, rtol=1e-12, atol=1e-12)
        for k in one.metrics:
            np.testing.assert_allclose(member.metrics[k], one.metrics[k], rtol=1e-12, atol=1e-12)


def test_sweep_over_seeds_of_the_init_equals_loop():
    X, z, _ = problem()
    keys = jax.random.split(jax.random.key(3), 4)
    w0s = jnp.stack([models.init_linear(10, scale=1.0, key=k) for k in keys])
    spec = engine.EngineSpec(steps=20, record_every=10)
    data = engine.Data(X, z, basis=jnp.eye(10))
    sw = engine.sweep(w0s, data, engine.Hyper(lr=0.3), spec, batched=("params",))
    for i in range(4):
        np.testing.assert_allclose(sw.coeffs[i], engine.simulate(w0s[i], data, engine.Hyper(lr=0.3), spec).coeffs, rtol=1e-12, atol=1e-13)


def test_trajectory_traces_once_per_shape_not_per_call():
    X, z, _ = problem(n=13, d=7)
    spec = engine.EngineSpec(steps=9, record_every=3)
    data = engine.Data(X, z)
    engine.simulate(jnp.zeros(7), data, engine.Hyper(lr=0.1), spec)
    before = engine.recording.trace_count()
    for lr in (0.2, 0.3, 0.4):  # new values, same shapes: no retrace
        engine.simulate(jnp.zeros(7), data, engine.Hyper(lr=lr, tau=2.0), spec)
    assert engine.recording.trace_count() == before
    X2, z2, _ = problem(n=14, d=7)
    engine.simulate(jnp.zeros(7), engine.Data(X2, z2), engine.Hyper(lr=0.1), spec)  # new shape: one trace
    assert engine.recording.trace_count() == before + 1
    # sweeps compile once too
    sw_before = engine.recording.trace_count()
    for _ in range(2):
        engine.sweep(jnp.zeros(7), data, engine.Hyper(lr=jnp.asarray([0.1, 0.2])), spec)
    assert engine.recording.trace_count() == sw_before + 1


def test_minibatch_sgd_is_reproducible_from_its_key():
    X, z, _ = problem(n=30)
    spec = engine.EngineSpec(steps=40, batch_size=6, record_every=10)
    data = engine.Data(X, z, basis=jnp.eye(10))
    a = engine.simulate(jnp.zeros(10), data, engine.Hyper(lr=0.3), spec, key=jax.random.key(11))
    b = engine.simulate(jnp.zeros(10), data, engine.Hyper(lr=0.3), spec, key=jax.random.key(11))
    c = engine.simulate(jnp.zeros(10), data, engine.Hyper(lr=0.3), spec, key=jax.random.key(12))
    np.testing.assert_array_equal(a.coeffs, b.coeffs)
    assert not np.allclose(a.coeffs, c.coeffs)
    full = engine.simulate(jnp.zeros(10), data, engine.Hyper(lr=0.3), engine.EngineSpec(steps=40, record_every=10))
    assert not np.allclose(a.coeffs[-1], full.coeffs[-1])  # minibatching really happened
    with pytest.raises(ConfigError, match="key"):
        engine.simulate(jnp.zeros(10), data, engine.Hyper(lr=0.3), spec)


def test_diverging_learning_rate_raises_naming_the_first_bad_step():
    X, z, _ = problem()
    lam_max = float(spectral.eigh_desc(X).eigvals[0])
    spec = engine.EngineSpec(steps=400, record_every=1)
    data = engine.Data(X, z)
    hyper = engine.Hyper(lr=2.6 / lam_max)
    raw = engine.simulate(jnp.zeros(10), data, hyper, spec, check=False)  # check=False: runs any step
    loss = np.asarray(raw.metrics["train_loss"])
    limit = spec.blowup * (1 + abs(loss[0]))
    expected = int(np.flatnonzero(~np.isfinite(loss) | (loss > limit))[0])
    assert int(raw.bad_step) == expected
    with pytest.raises(DivergenceError, match=f"diverged at step {expected} of 400") as e:
        engine.divergence.raise_if_bad(raw.bad_step, hyper, spec)
    assert e.value.step == expected and e.value.member is None
    # check=True refuses the step before running (one line naming the field, value and range)
    X1 = X / np.sqrt(lam_max)  # λ_max = 1: the limit is exactly 2
    with pytest.raises(ConfigError, match=r"^hyper.lr = 2.6: past the stability limit; allowed: 0 < hyper.lr < 2 \(2/L") as e:
        engine.simulate(jnp.zeros(10), engine.Data(X1, z), engine.Hyper(lr=2.6), spec)
    assert "\n" not in str(e.value)
    # in a sweep (not refused up front), the error names the member
    with pytest.raises(DivergenceError, match="sweep member 1"):
        engine.sweep(jnp.zeros(10), data, engine.Hyper(lr=jnp.asarray([0.5, 2.6]) / lam_max), spec)


def test_check_lr_refuses_past_the_stability_limit():
    X, _, _ = problem()
    lam_max = float(spectral.eigh_desc(X).eigvals[0])
    engine.check_lr(1.9 / lam_max, X, "mse")
    with pytest.raises(ConfigError, match=r"train.lr = .*0 < train.lr < 2/L"):
        engine.check_lr(2.1 / lam_max, X, "mse", name="train.lr")
    engine.check_lr(7.9 / lam_max, X, "binary")  # soft CE: L = λ_max / 4
    with pytest.raises(ConfigError):
        engine.check_lr(8.1 / lam_max, X, "binary")
    assert engine.default_lr(X, "mse") * lam_max == pytest.approx(0.9)


def test_shape_mismatch_names_the_field():
    X, z, _ = problem()
    with pytest.raises(ConfigError, match="params"):
        engine.simulate(jnp.zeros(9), engine.Data(X, z), engine.Hyper(lr=0.1), engine.EngineSpec(steps=2))
    with pytest.raises(ConfigError, match="targets"):
        engine.simulate(jnp.zeros(10), engine.Data(X, z[:-1]), engine.Hyper(lr=0.1), engine.EngineSpec(steps=2))
    with pytest.raises(ConfigError, match="basis"):
        engine.simulate(jnp.zeros(10), engine.Data(X, z, basis=jnp.eye(9)), engine.Hyper(lr=0.1), engine.EngineSpec(steps=2))
    with pytest.raises(ConfigError, match="family"):
        engine.EngineSpec(family="hinge")


def test_run_that_would_not_fit_is_refused_before_it_starts(monkeypatch):
    X, z, _ = problem()
    spec = engine.EngineSpec(steps=10**6, record_every=1)
    data = engine.Data(X, z, basis=jnp.eye(10))
    need = engine.memory.record_bytes(spec, data, jnp.zeros(10))
    assert need > (10**6 + 1) * 10 * 8  # at least the coefficient record
    monkeypatch.setenv("LINKD_MEMORY_LIMIT", str(need // 2))
    with pytest.raises(MemoryBudgetError, match="GiB") as e:
        engine.simulate(jnp.zeros(10), data, engine.Hyper(lr=0.1), spec)
    assert e.value.needed_bytes == need


def test_heavy_ball_momentum_matches_numpy_reference():
    X, z, _ = problem()
    spec = engine.EngineSpec(optimizer="momentum", steps=30, record_every=30)
    tr = engine.simulate(jnp.zeros(10), engine.Data(X, z), engine.Hyper(lr=0.2, momentum=0.8), spec)
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
    tr = engine.simulate(jnp.zeros(10), engine.Data(X, z), engine.Hyper(lr=0.05, momentum=0.9),
                           engine.EngineSpec(optimizer=opt, steps=200, record_every=200))
    assert float(tr.metrics["train_loss"][-1]) < 0.1 * float(tr.metrics["train_loss"][0])


def test_float32_inputs_run_in_float32():
    X, z, _ = problem()
    tr = engine.simulate(jnp.zeros(10, jnp.float32), engine.Data(X.astype(jnp.float32), z.astype(jnp.float32), basis=jnp.eye(10, dtype=jnp.float32)),
                           engine.Hyper(lr=0.3), engine.EngineSpec(steps=5))
    assert tr.coeffs.dtype == jnp.float32 and tr.params.dtype == jnp.float32


def test_alpha_mixture_and_switch_weighting():
    X, z, lab = problem()
    w = jnp.asarray(np.random.default_rng(1).standard_normal(10))
    spec = engine.EngineSpec(family="binary", steps=1, switch_step=5)
    h = engine.Hyper(lr=0.1, tau=2.0, alpha=0.25)
    zs = X @ w
    hard = jnp.mean(losses.binary_soft_ce(zs, lab))
    kd = jnp.mean(losses.kd_binary(zs, z, 2.0))
    before = engine.objective.objective(w, X, z, lab, engine.optimizers.cast_hyper(h, X.dtype), jnp.asarray(3), spec)
    after = engine.objective.objective(w, X, z, lab, engine.optimizers.cast_hyper(h, X.dtype), jnp.asarray(5), spec)
    np.testing.assert_allclose(before, hard, rtol=1e-14)
    np.testing.assert_allclose(after, 0.25 * hard + 0.75 * kd, rtol=1e-14)


def test_simulate_until_reaches_tolerance_or_says_why():
    X, z, _ = problem(n=8, d=12)
    z = z / jnp.linalg.norm(z) * 2.0
    spec = engine.EngineSpec(family="binary", steps=50_000)
    lr = engine.default_lr(X, "binary", fraction=1.0)
    res = engine.simulate_until(jnp.zeros(12), engine.Data(X, z), engine.Hyper(lr=lr), spec, grad_tol=1e-11)
    assert float(res.grad_norm) <= 1e-11 and 0 < int(res.steps) < 50_000
    with pytest.raises(DivergenceError, match="grad_tol"):
        engine.simulate_until(jnp.zeros(12), engine.Data(X, z), engine.Hyper(lr=lr), engine.EngineSpec(family="binary", steps=3), grad_tol=1e-11)


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
    tr = engine.simulate(p0, engine.Data(X, z, basis=jnp.eye(12)), engine.Hyper(lr=0.2),
                           engine.EngineSpec(family="binary", steps=300, record_every=100))
    Q = jnp.eye(12) - spectral.projector(X)
    np.testing.assert_allclose(tr.params.layers[0] @ Q, p0.layers[0] @ Q, atol=1e-10)
    assert float(tr.metrics["train_loss"][-1]) < float(tr.metrics["train_loss"][0])
    np.testing.assert_allclose(tr.coeffs[-1], models.end_to_end(tr.params), atol=1e-13)


# ---- engine core (issue 12) ---------------------------------------------------------------------


def _core_problem(family, n=14, d=6, C=3, seed=2):
    rng = np.random.default_rng(seed)
    X = jnp.asarray(rng.standard_normal((n, d)) / np.sqrt(d))
    if family == "multiclass":
        z = X @ jnp.asarray(rng.standard_normal((d, C)))
        lab = jnp.asarray(rng.integers(0, C, n).astype(np.int32))
        w0 = jnp.asarray(0.3 * rng.standard_normal((d, C)))
    else:
        z = X @ jnp.asarray(rng.standard_normal(d))
        lab = jnp.asarray((rng.standard_normal(n) > 0).astype(float)) if family == "binary" else z + jnp.asarray(rng.standard_normal(n))
        w0 = jnp.asarray(0.3 * rng.standard_normal(d))
    return X, z, lab, w0


@pytest.mark.parametrize("family,tau,tau2,alpha,switch,targets", [
    ("mse", 1.0, True, 0.3, None, True),
    ("binary", 2.5, True, 0.4, 4, True),
    ("binary", 0.5, False, 0.0, None, True),
    ("multiclass", 0.7, True, 0.25, 5, True),
    ("multiclass", 3.0, False, 0.6, None, True),
    ("binary", 1.0, True, 1.0, None, False),  # hard labels only: Data(targets=None), alpha = 1
    ("multiclass", 2.0, True, 1.0, 3, False),
])
def test_explicit_linear_gradient_equals_autodiff(family, tau, tau2, alpha, switch, targets):
    """The engine's hand-written gradient Xᵀ(∂L/∂z) equals jax.grad of the objective in w, before
    and after the switch step."""
    X, z, lab, w0 = _core_problem(family)
    spec = engine.EngineSpec(family=family, switch_step=switch, tau2_scale=tau2)
    hyper = engine.optimizers.cast_hyper(engine.Hyper(lr=0.7, tau=tau, alpha=alpha), X.dtype)
    tg = engine.types.Targets(z if targets else None, lab)

    @jax.jit
    def both(w, t):
        loss, g = engine.objective.linear_grad(X @ w, X, tg, hyper, t, spec)
        ref_loss, ref = jax.value_and_grad(engine.objective.objective)(w, X, tg.targets, lab, hyper, t, spec)
        return loss, g, ref_loss, ref

    for t in (0, 9):
        loss, g, ref_loss, ref = both(w0, jnp.asarray(t))
        assert float(jnp.max(jnp.abs(ref))) > 1e-3
        np.testing.assert_allclose(g, ref, rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(loss, ref_loss, rtol=1e-13)


def test_linear_path_equals_autodiff_trajectory():
    """Whole trajectory (carried z, recording, test metrics): the linear path equals autodiff
    through a depth-1 DeepLinear student (the same model as a pytree)."""
    X, z, lab, w0 = _core_problem("multiclass")
    data = engine.Data(X, z, lab, basis=jnp.eye(6)[:, :3], X_test=X[:4], targets_test=z[:4], labels_test=lab[:4])
    spec = engine.EngineSpec(family="multiclass", steps=12, record_every=4, switch_step=5, tau2_scale=False)
    hyper = engine.Hyper(lr=0.7, tau=0.6, alpha=0.3)
    lin = engine.simulate(w0, data, hyper, spec)
    auto = engine.simulate(models.DeepLinear((w0.T,)), data, hyper, spec, check=False)
    assert list(lin.metrics) == list(auto.metrics) and len(lin.metrics) == 7
    for k in lin.metrics:
        np.testing.assert_allclose(lin.metrics[k], auto.metrics[k], rtol=1e-12, atol=1e-12, err_msg=k)
    np.testing.assert_allclose(lin.coeffs, auto.coeffs, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(lin.params, models.end_to_end(auto.params), rtol=1e-12, atol=1e-12)


def test_linear_step_reads_X_in_place_at_highest_precision():
    """Compiled XLA:CPU program of the linear path: every product with X is one dot at HIGHEST
    precision, Xᵀg contracts X's batch axis in place (no transpose or copy of X anywhere)."""
    X, z, _ = problem(n=30, d=7)
    spec = engine.EngineSpec(family="binary", steps=4, record_every=2)
    lowered = engine.plain.trajectory_jit.lower(jnp.zeros(7), engine.Data(X, z), engine.Hyper(lr=0.1), jax.random.key(0), spec)
    stablehlo = [ln for ln in lowered.as_text().splitlines() if "dot_general" in ln]
    assert stablehlo and all("precision = [HIGHEST, HIGHEST]" in ln for ln in stablehlo)
    hlo = lowered.compile().as_text()
    assert not re.search(r"= f64\[(30,7|7,30)\]\{[^}]*\} (copy|transpose)\(", hlo)
    dots = [ln for ln in hlo.splitlines() if " dot(" in ln]
    assert any("f64[7,1]" in ln and "lhs_contracting_dims={0}" in ln for ln in dots)  # Xᵀg, X in place
    assert all("operand_precision={highest,highest}" in ln for ln in dots)


def test_targets_shape_and_hard_label_only_training():
    X, z, lab = problem()
    spec = engine.EngineSpec(family="binary", steps=5, record_every=5)
    with pytest.raises(ConfigError, match=r"^targets = shape \(16, 1\): wrong shape; allowed: shape \(16,\)"):
        engine.simulate(jnp.zeros(10), engine.Data(X, z[:, None]), engine.Hyper(lr=0.5), spec)
    with pytest.raises(ConfigError, match=r"^labels = shape \(16, 2\)"):
        engine.simulate(jnp.zeros(10), engine.Data(X, z, jnp.stack([lab, lab], 1)), engine.Hyper(lr=0.5), spec)
    with pytest.raises(ConfigError, match=r"^targets = shape \(16, 4\).*\(16, 3\)"):
        engine.simulate(jnp.zeros((10, 3)), engine.Data(X, jnp.zeros((16, 4))), engine.Hyper(lr=0.5),
                          engine.EngineSpec(family="multiclass", steps=2))
    with pytest.raises(ConfigError, match=r"^targets = None: missing; allowed: teacher outputs"):
        engine.simulate(jnp.zeros(10), engine.Data(X, None, lab), engine.Hyper(lr=0.5, alpha=0.5), spec)
    # targets=None, alpha = 1: plain logistic regression on the labels (numpy reference)
    hard = engine.simulate(jnp.zeros(10), engine.Data(X, targets=None, labels=lab), engine.Hyper(lr=0.5, alpha=1.0), spec)
    Xn, y, w = np.asarray(X), np.asarray(lab), np.zeros(10)
    for _ in range(5):
        w = w - 0.5 * Xn.T @ (1.0 / (1.0 + np.exp(-Xn @ w)) - y) / len(y)
    np.testing.assert_allclose(hard.params, w, rtol=1e-13, atol=1e-15)
    assert set(hard.metrics) == {"train_loss", "train_error"}


def _aligned_deep(X, N, sigma0):
    """Balanced aligned rank-one deep-linear init along Σ̂'s top eigenvector (docs/theory.md §7)."""
    sp = spectral.eigh_desc(X)
    v = sp.basis[:, 0]
    s = sigma0 ** (1.0 / N)
    a = [jnp.eye(4)[:, j] for j in range(N - 1)]
    layers = [s * jnp.outer(a[0], v)] + [s * jnp.outer(a[j + 1], a[j]) for j in range(N - 2)] + [s * a[-1][None, :]]
    return models.DeepLinear(tuple(layers)), float(sp.eigvals[0])


def test_lr_refused_past_the_stability_limit_for_multiclass_and_deep():
    Xm, zm, _, w0 = _core_problem("multiclass", n=16, d=10)
    lam = float(spectral.eigh_desc(Xm).eigvals[0])
    spec = engine.EngineSpec(family="multiclass", steps=3, tau2_scale=True)
    np.testing.assert_allclose(engine.lr_limit(w0, Xm, spec, tau=2.0)[0], 4.0 / lam, rtol=1e-12)  # L = λ/2
    with pytest.raises(ConfigError, match=r"^hyper.lr = .*past the stability limit; allowed: 0 < hyper.lr < .*multiclass"):
        engine.simulate(w0, engine.Data(Xm, zm), engine.Hyper(lr=4.1 / lam, tau=2.0), spec)
    mom = engine.EngineSpec(family="multiclass", optimizer="momentum", steps=3)
    np.testing.assert_allclose(engine.lr_limit(w0, Xm, mom, momentum=0.5)[0], 1.5 * 4.0 / lam, rtol=1e-12)
    assert engine.lr_limit(w0, Xm, engine.EngineSpec(optimizer="adam")) is None
    # deep: λ_max(JᵀJ/n) at a balanced aligned init is N λ σ0^(2-2/N) (the §7.2 per-mode ε < 2/N)
    X, z, _ = problem()
    for N, sigma0 in ((3, 1.7),):
        p0, lam1 = _aligned_deep(X, N, sigma0)
        spec = engine.EngineSpec(family="mse", steps=3)
        limit, why = engine.lr_limit(p0, X, spec)
        np.testing.assert_allclose(limit, 2.0 / (N * lam1 * sigma0 ** (2 - 2 / N)), rtol=1e-6)
        assert "§7.2" in why
        with pytest.raises(ConfigError, match=r"^hyper.lr = .*past the stability limit.*JᵀJ/n\) at the init \(depth"):
            engine.simulate(p0, engine.Data(X, z), engine.Hyper(lr=1.05 * limit), spec)


def test_trajectory_keeps_static_fields_and_gives_members():
    tr = engine.Trajectory(np.array([0, 3, 6]), jnp.arange(12.0).reshape(2, 3, 2), {"train_loss": jnp.ones((2, 3))},
                             jnp.zeros((2, 5)), jnp.asarray([-1, 4]), "eigen")
    assert tr._replace(bad_step=tr.bad_step).path == "eigen"
    mapped = jax.tree_util.tree_map(lambda x: 2 * x, tr)
    assert mapped.path == "eigen" and list(mapped.steps) == [0, 3, 6]
    np.testing.assert_array_equal(mapped.coeffs, 2 * tr.coeffs)
    assert len(jax.tree_util.tree_leaves(tr)) == 4  # steps and path are static
    one = tr.member(1)
    assert one.path == "eigen" and list(one.steps) == [0, 3, 6] and int(one.bad_step) == 4
    np.testing.assert_array_equal(one.coeffs, tr.coeffs[1])
    assert engine.Trajectory(np.array([0]), None, {}, jnp.zeros(2), jnp.asarray(-1)).path == "plain"
