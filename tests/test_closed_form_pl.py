"""Phuong–Lampert closed forms: pl_limit, the deep-linear invariant, the §1.5 counterexample."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from linkd import closed_form as cf


def _problem(seed, n, d, C=None):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    shape = (d,) if C is None else (d, C)
    return X, rng.standard_normal(shape), rng.standard_normal(shape)


def _row_space_projector(X):
    """Independent projector: orthonormal basis of the row space from an SVD."""
    U, s, Vt = np.linalg.svd(X, full_matrices=False)
    r = int(np.sum(s > s[0] * 1e-10)) if s.size else 0
    Q = Vt[:r].T
    return Q @ Q.T


SIZES = st.sampled_from([1, 4, 12])  # a few shapes: each new shape recompiles the eager ops


@given(st.integers(0, 10_000), SIZES, SIZES, st.sampled_from([None, 3]))
def test_pl_limit_is_projection_plus_frozen_init(seed, n, d, C):
    X, w_star, w0 = _problem(seed, n, d, C)
    w_hat = np.asarray(cf.pl_limit(X, w_star, w0))
    P = _row_space_projector(X)
    np.testing.assert_allclose(w_hat, P @ w_star + (np.eye(d) - P) @ w0, atol=1e-9)
    # the student reproduces the teacher's logits on every training point ...
    np.testing.assert_allclose(X @ w_hat, X @ w_star, atol=1e-9)
    # ... and keeps the init outside the data span
    np.testing.assert_allclose((np.eye(d) - P) @ w_hat, (np.eye(d) - P) @ w0, atol=1e-9)
    # idempotent: the limit of training from the limit is the limit
    np.testing.assert_allclose(np.asarray(cf.pl_limit(X, w_hat, w0)), w_hat, atol=1e-9)
    # orthogonal part helper agrees
    np.testing.assert_allclose(np.asarray(cf.pl_orthogonal_part(X, w_hat)), (np.eye(d) - P) @ w0, atol=1e-9)


@given(st.integers(0, 10_000), st.sampled_from([1, 4, 10]), st.sampled_from([0, 5]))
def test_pl_limit_full_rank_recovers_teacher(seed, d, extra):
    X, w_star, w0 = _problem(seed, d + extra, d)
    np.testing.assert_allclose(np.asarray(cf.pl_limit(X, w_star, w0)), w_star, atol=1e-9)


def test_pl_limit_zero_init_default_and_jit():
    X, w_star, w0 = _problem(0, 4, 9)
    a = cf.pl_limit(X, w_star)
    b = cf.pl_limit(X, w_star, np.zeros(9))
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-14)
    # P w* is shorter than w* when n < d
    assert float(jnp.linalg.norm(a)) < float(np.linalg.norm(w_star))
    jitted = jax.jit(cf.pl_limit)(jnp.asarray(X), jnp.asarray(w_star), jnp.asarray(w0))
    np.testing.assert_allclose(np.asarray(jitted), np.asarray(cf.pl_limit(X, w_star, w0)), atol=1e-13)


def test_pl_limit_rank_deficient_duplicate_rows():
    x = np.array([1.0, 2.0, 0.0, -1.0])
    X = np.stack([x, 2 * x, -x])  # rank 1
    w_star = np.array([0.5, -1.0, 2.0, 1.0])
    expect = (x @ w_star) / (x @ x) * x
    np.testing.assert_allclose(np.asarray(cf.pl_limit(X, w_star)), expect, atol=1e-12)


@given(st.integers(0, 10_000), st.sampled_from([1, 4, 8]), st.sampled_from([2, 6, 10]), st.sampled_from([1, 5]))
def test_deep_invariant_facts(seed, n, d, h):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    W1 = rng.standard_normal((h, d))
    inv = np.asarray(cf.pl_deep_invariant(W1, X))
    P = _row_space_projector(X)
    np.testing.assert_allclose(inv, W1 @ (np.eye(d) - P), atol=1e-9)
    np.testing.assert_allclose(inv @ X.T, 0.0, atol=1e-9)  # rows orthogonal to the data
    np.testing.assert_allclose(np.asarray(cf.pl_deep_invariant(inv, X)), inv, atol=1e-9)  # idempotent
    if n >= d:
        np.testing.assert_allclose(inv, 0.0, atol=1e-9)


def test_deep_limit_consistency():
    rng = np.random.default_rng(3)
    n, d, h = 5, 8, 4
    X = rng.standard_normal((n, d))
    w_star = rng.standard_normal(d)
    W1 = rng.standard_normal((h, d))
    head = rng.standard_normal(h)
    w = np.asarray(cf.pl_deep_limit(X, w_star, W1, head))
    P = _row_space_projector(X)
    np.testing.assert_allclose(P @ w, P @ w_star, atol=1e-10)
    np.testing.assert_allclose((np.eye(d) - P) @ w, (np.eye(d) - P) @ W1.T @ head, atol=1e-10)
    # a (1, h) head and a (h,) head agree; full rank → teacher exactly
    np.testing.assert_allclose(np.asarray(cf.pl_deep_limit(X, w_star, W1, head[None, :])), w, atol=1e-14)
    Xf = rng.standard_normal((12, d))
    np.testing.assert_allclose(np.asarray(cf.pl_deep_limit(Xf, w_star, W1, head)), w_star, atol=1e-9)
    # head of a DeepLinear
    from linkd.models import DeepLinear, end_to_end

    W2, W3 = rng.standard_normal((3, h)), rng.standard_normal((1, 3))
    net = DeepLinear((W1, W2, W3))
    np.testing.assert_allclose(np.asarray(cf.pl_deep_head(net)), W3 @ W2, atol=1e-14)
    np.testing.assert_allclose(
        np.asarray(end_to_end(net)), (np.asarray(cf.pl_deep_head(net)) @ W1)[0], atol=1e-12
    )


def test_counterexample_more_data_can_hurt_one_realisation():
    ce = cf.pl_risk_counterexample()
    w1 = np.asarray(cf.pl_limit(ce.X1, ce.w_star))
    w2 = np.asarray(cf.pl_limit(ce.X2, ce.w_star))
    np.testing.assert_allclose(w1, [0.5, 0.5, 0.0], atol=1e-12)
    np.testing.assert_allclose(w2, [2 / 3, 1 / 3, 1 / 3], atol=1e-12)
    z, ws = np.asarray(ce.z), np.asarray(ce.w_star)
    assert np.sign(w1 @ z) == np.sign(ws @ z)  # correct with one point
    assert np.sign(w2 @ z) != np.sign(ws @ z)  # wrong with two


def test_validation_errors():
    X, w_star, w0 = _problem(0, 3, 5)
    with pytest.raises(ValueError, match="X must be a 2-D"):
        cf.pl_limit(X[0], w_star, w0)
    with pytest.raises(ValueError, match="w_star"):
        cf.pl_limit(X, w_star[:4], w0)
    with pytest.raises(ValueError, match="w0"):
        cf.pl_limit(X, w_star, w0[:, None])
    with pytest.raises(ValueError, match="W1_0"):
        cf.pl_deep_invariant(np.ones((2, 4)), X)
    with pytest.raises(ValueError, match="head"):
        cf.pl_deep_limit(X, w_star, np.ones((2, 5)), np.ones(3))
