"""Soft cross-entropy training (the engine) converges to the Phuong–Lampert closed forms (docs/theory.md §1.2–1.3)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from linkd import closed_form as cf
from linkd import engine, losses, models, spectral


def _problem(seed, n, d):
    k1, k2, k3 = jax.random.split(jax.random.key(seed), 3)
    X = jax.random.normal(k1, (n, d))
    w_star = 1.5 * jax.random.normal(k2, (d,)) / jnp.sqrt(d)
    w0 = 0.5 * jax.random.normal(k3, (d,)) / jnp.sqrt(d)
    return X, w_star, w0


def _lr(X):
    """η = 1/L_s with L_s = λ_max(Σ̂)/4, the soft-CE smoothness bound."""
    lam_max = float(spectral.eigh_desc(X).eigvals[0])
    return 1.0 / losses.smoothness("binary", lam_max)


@pytest.mark.parametrize("n", [6, 40])
def test_linear_soft_ce_student_converges_to_pl_limit(n):
    d = 20
    X, w_star, w0 = _problem(n, n, d)
    spec = engine.EngineSpec(family="binary", optimizer="gd", steps=200_000)
    out = engine.simulate_until(w0, engine.Data(X=X, targets=X @ w_star), engine.Hyper(lr=_lr(X)), spec, grad_tol=1e-12)
    w = np.asarray(out.params)
    limit = np.asarray(cf.pl_limit(X, w_star, w0))
    assert np.linalg.norm(w - limit) <= 1e-6 * np.linalg.norm(limit)
    if n >= d:  # full rank: the teacher itself, whatever w0
        assert np.linalg.norm(w - np.asarray(w_star)) <= 1e-6 * np.linalg.norm(np.asarray(w_star))
    else:  # the init outside the span is untouched
        np.testing.assert_allclose(
            np.asarray(cf.pl_orthogonal_part(X, w)), np.asarray(cf.pl_orthogonal_part(X, w0)), atol=1e-12
        )


@pytest.mark.parametrize("widths", [(8,), (8, 6)])
def test_deep_linear_first_layer_invariant(widths):
    n, d = 10, 30
    X, w_star, _ = _problem(1, n, d)
    params0 = models.init_deep_linear(d, widths, scale=0.5, key=jax.random.key(2))
    spec = engine.EngineSpec(family="binary", optimizer="gd", steps=2000, record_every=2000)
    traj = engine.simulate(params0, engine.Data(X=X, targets=X @ w_star), engine.Hyper(lr=0.05), spec)
    W1_0, W1_T = params0.layers[0], traj.params.layers[0]
    assert float(jnp.linalg.norm(W1_T - W1_0)) > 1e-2  # the layer did move ...
    frozen0 = np.asarray(cf.pl_deep_invariant(W1_0, X))
    np.testing.assert_allclose(np.asarray(cf.pl_deep_invariant(W1_T, X)), frozen0, atol=1e-10)  # ... but not off-span
    # end-to-end orthogonal part = (I-P) W1(0)^T (W_N...W_2)(t)^T exactly
    w_T = models.end_to_end(traj.params)
    head = cf.pl_deep_head(traj.params)
    np.testing.assert_allclose(
        np.asarray(cf.pl_orthogonal_part(X, w_T)), (np.asarray(head) @ frozen0)[0], atol=1e-10
    )


def test_deep_linear_converges_to_pl_deep_limit_and_orthogonal_part_scales_with_init():
    n, d = 6, 12
    X, w_star, _ = _problem(3, n, d)
    data = engine.Data(X=X, targets=X @ w_star)
    spec = engine.EngineSpec(family="binary", optimizer="gd", steps=400_000)
    orth = {}
    for scale in (0.3, 0.03):
        params0 = models.init_deep_linear(d, (8,), scale=scale, key=jax.random.key(4))
        out = engine.simulate_until(params0, data, engine.Hyper(lr=0.5 * _lr(X)), spec, grad_tol=1e-10)
        w = np.asarray(models.end_to_end(out.params))
        limit = np.asarray(cf.pl_deep_limit(X, w_star, params0.layers[0], cf.pl_deep_head(out.params)))
        assert np.linalg.norm(w - limit) <= 1e-6 * np.linalg.norm(limit)
        P = np.asarray(spectral.projector(X))
        np.testing.assert_allclose(P @ w, P @ np.asarray(w_star), atol=1e-6)  # global minimum reached
        orth[scale] = np.linalg.norm(np.asarray(cf.pl_orthogonal_part(X, w)))
    assert orth[0.03] < 0.2 * orth[0.3]  # O(init scale)
