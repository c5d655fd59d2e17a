"""Fidelity / confidence / information / attention metrics on hand-computed cases."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linkd import metrics
from linkd.errors import InputError


def _probs(seed, n=50, C=4, scale=2.0):
    z = scale * jax.random.normal(jax.random.key(seed), (n, C))
    return z, jax.nn.softmax(z, axis=-1)


# ------------------------------------------------------------------------------ agreement
def test_top1_agreement_hand_cases():
    pT = jnp.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4], [0.5, 0.4, 0.1]])
    pS = jnp.array([[0.6, 0.3, 0.1], [0.5, 0.4, 0.1], [0.1, 0.1, 0.8], [0.2, 0.7, 0.1]])
    assert float(metrics.top1_agreement(pT, pS)) == 0.5
    assert float(metrics.top1_agreement(pT, pT)) == 1.0
    # logits and probabilities give the same classes
    z, p = _probs(0)
    zs, ps = _probs(1)
    assert float(metrics.top1_agreement(z, zs)) == float(metrics.top1_agreement(p, ps))


def test_top1_agreement_binary_rule():
    zT = jnp.array([2.0, -1.0, 0.5, -0.1])
    zS = jnp.array([0.1, -3.0, -0.5, 0.2])
    assert float(metrics.top1_agreement(zT, zS)) == 0.5  # binary="logits": class = z > 0
    pT, pS = jax.nn.sigmoid(zT), jax.nn.sigmoid(zS)
    assert float(metrics.top1_agreement(pT, pS, binary="probs")) == 0.5  # class = p > 1/2
    # the rule matters: probabilities read as logits are all "class 1"
    assert float(metrics.top1_agreement(pT, pS)) == 1.0
    # tie: logit 0 and probability 1/2 both give class 0
    np.testing.assert_array_equal(np.asarray(metrics.predicted_class(jnp.array([0.0]))), [0])
    np.testing.assert_array_equal(np.asarray(metrics.predicted_class(jnp.array([0.5]), "probs")), [0])
    with pytest.raises(InputError, match="binary"):
        metrics.top1_agreement(zT, zS, binary="logit")
    with pytest.raises(InputError, match="same shape"):
        metrics.top1_agreement(zT, zS[:3])


# ------------------------------------------------------------------------------ KL
def test_kl_directions_hand_values():
    pT = jnp.array([[0.5, 0.5], [0.9, 0.1]])
    pS = jnp.array([[0.25, 0.75], [0.9, 0.1]])
    kl_ts = 0.5 * (0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75))
    kl_st = 0.5 * (0.25 * math.log(0.25 / 0.5) + 0.75 * math.log(0.75 / 0.5))
    assert float(metrics.predictive_kl_teacher_student(pT, pS)) == pytest.approx(kl_ts, rel=1e-12)
    assert float(metrics.predictive_kl_student_teacher(pT, pS)) == pytest.approx(kl_st, rel=1e-12)
    assert float(metrics.guo_kl(pT, pS)) == pytest.approx(10 * kl_st, rel=1e-12)
    assert kl_ts != pytest.approx(kl_st)  # the direction matters
    # binary (n,) Bernoulli probabilities = the (n, 2) categorical
    assert float(metrics.predictive_kl_teacher_student(pT[:, 1], pS[:, 1])) == pytest.approx(kl_ts, rel=1e-12)


def test_kl_degenerate_cases():
    _, p = _probs(2)
    assert float(metrics.predictive_kl_teacher_student(p, p)) == 0.0
    assert float(metrics.predictive_kl_student_teacher(p, p)) == 0.0
    # 0 log 0 = 0, and +inf where the student gives 0 to a teacher class
    one_hot = jnp.array([[1.0, 0.0]])
    assert float(metrics.predictive_kl_teacher_student(one_hot, jnp.array([[0.5, 0.5]]))) == pytest.approx(math.log(2))
    assert math.isinf(float(metrics.predictive_kl_teacher_student(jnp.array([[0.5, 0.5]]), one_hot)))


@given(st.integers(0, 1000))
def test_kl_nonnegative_and_matches_losses_module(seed):
    zT, pT = _probs(seed)
    zS, pS = _probs(seed + 1)
    from linkd import losses

    kl = float(metrics.predictive_kl_teacher_student(pT, pS))
    assert kl >= 0
    assert kl == pytest.approx(float(jnp.mean(losses.kl_teacher_student(zS, zT))), rel=1e-10)
    assert float(metrics.predictive_kl_student_teacher(pT, pS)) == pytest.approx(float(jnp.mean(losses.kl_student_teacher(zS, zT))), rel=1e-10)


# ------------------------------------------------------------------------------ ensembles
def test_ensembles_prob_vs_logit_average():
    z1 = jnp.array([[2.0, 0.0], [0.0, 0.0]])
    z2 = jnp.array([[0.0, 0.0], [-4.0, 0.0]])
    pa = metrics.ensemble_probs([z1, z2])
    expect = 0.5 * (jax.nn.softmax(z1, axis=-1) + jax.nn.softmax(z2, axis=-1))
    np.testing.assert_allclose(np.asarray(pa), np.asarray(expect), atol=1e-15)
    np.testing.assert_allclose(np.asarray(metrics.ensemble_probs(jnp.stack([z1, z2]))), np.asarray(pa), atol=1e-15)
    np.testing.assert_allclose(np.asarray(metrics.ensemble_logits([z1, z2])), [[1.0, 0.0], [-2.0, 0.0]])
    # the two conventions differ (softmax of the mean ≠ mean of softmaxes)
    assert not np.allclose(np.asarray(jax.nn.softmax(metrics.ensemble_logits([z1, z2]), axis=-1)), np.asarray(pa))
    # binary members (n,): sigmoid
    b = metrics.ensemble_probs([jnp.array([0.0, 2.0]), jnp.array([0.0, -2.0])])
    np.testing.assert_allclose(np.asarray(b), [0.5, 0.5], atol=1e-15)
    # temperature
    np.testing.assert_allclose(np.asarray(metrics.ensemble_probs([z1], tau=2.0)), np.asarray(jax.nn.softmax(z1 / 2.0, axis=-1)))


# ------------------------------------------------------------------------------ confidence scatter
def test_confidence_scatter_identity_slope_one():
    _, p = _probs(3, n=200)
    cs = metrics.confidence_scatter(p, p)
    assert float(cs.slope) == 1.0
    assert float(cs.intercept) == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_array_equal(np.asarray(cs.x), np.asarray(cs.y))
    assert cs.bin_x.shape == (20,) and np.all(np.diff(np.asarray(cs.bin_x)) >= 0)
    np.testing.assert_allclose(np.asarray(cs.bin_x), np.asarray(cs.bin_y))


def test_confidence_scatter_binary_sharpened_student_slope_is_inverse_temperature():
    zT = jnp.linspace(-4.0, 4.0, 101)
    tau = 0.5  # sharpened: p_S = σ(z/τ)
    cs = metrics.confidence_scatter(jax.nn.sigmoid(zT), jax.nn.sigmoid(zT / tau))
    assert float(cs.slope) == pytest.approx(1 / tau, rel=1e-9)
    # x = φ(p_T(ŷ_T)) = |z| ≥ 0
    np.testing.assert_allclose(np.asarray(cs.x), np.abs(np.asarray(zT)), atol=1e-9)
    # logits path: exact, no clipping
    csl = metrics.confidence_scatter(zT, zT / tau, logits=True)
    assert float(csl.slope) == pytest.approx(2.0, rel=1e-12)


def test_confidence_scatter_multiclass_sharpened_slope_above_one_and_logits_path():
    z, p = _probs(4, n=300, C=5)
    cs = metrics.confidence_scatter(p, jax.nn.softmax(2.0 * z, axis=-1))
    assert float(cs.slope) > 1.0
    cs_soft = metrics.confidence_scatter(p, jax.nn.softmax(0.5 * z, axis=-1))
    assert float(cs_soft.slope) < 1.0
    csl = metrics.confidence_scatter(z, 2.0 * z, logits=True)
    np.testing.assert_allclose(np.asarray(csl.x), np.asarray(cs.x), atol=1e-9)
    np.testing.assert_allclose(np.asarray(csl.y), np.asarray(cs.y), atol=1e-8)


def test_confidence_scatter_clipping_and_bins():
    pT = jnp.array([1.0, 0.0, 0.9, 0.2])  # saturated probabilities: finite φ
    pS = jnp.array([1.0, 0.5, 0.8, 0.1])
    cs = metrics.confidence_scatter(pT, pS, bins=2)
    assert np.all(np.isfinite(np.asarray(cs.x))) and np.all(np.isfinite(np.asarray(cs.y)))
    # equal-count bins: sorted x → two bins of two
    x, y = np.asarray(cs.x), np.asarray(cs.y)
    o = np.argsort(x)
    np.testing.assert_allclose(np.asarray(cs.bin_x), [x[o[:2]].mean(), x[o[2:]].mean()])
    np.testing.assert_allclose(np.asarray(cs.bin_y), [y[o[:2]].mean(), y[o[2:]].mean()])
    assert metrics.confidence_scatter(pT, pS, bins=50).bin_x.shape == (4,)  # capped at n
    with pytest.raises(InputError, match="bins"):
        metrics.confidence_scatter(pT, pS, bins=0)


# ------------------------------------------------------------------------------ mutual information
def test_mutual_info_hand_cases():
    a = np.array([0, 0, 1, 1, 2, 2, 2, 2])
    pa = np.array([2, 2, 4]) / 8
    assert metrics.mutual_info_discrete(a, a) == pytest.approx(-np.sum(pa * np.log(pa)), rel=1e-12)
    # relabelling does not matter
    assert metrics.mutual_info_discrete(a, 10 - 3 * a) == pytest.approx(metrics.mutual_info_discrete(a, a), rel=1e-12)
    # exactly independent (product contingency table) → 0
    x = np.repeat([0, 1], 6)
    y = np.tile([0, 1, 2], 4)
    assert metrics.mutual_info_discrete(x, y) == pytest.approx(0.0, abs=1e-15)
    # constant labels → 0; one bit shared
    assert metrics.mutual_info_discrete(np.zeros(5, int), np.arange(5)) == 0.0
    u = np.array([0, 0, 1, 1])
    assert metrics.mutual_info_discrete(u, np.array([5, 5, 7, 7])) == pytest.approx(math.log(2))
    # random independent labels: ≈ 0 (plug-in bias ~ (|A|-1)(|B|-1)/(2N))
    rng = np.random.default_rng(0)
    assert metrics.mutual_info_discrete(rng.integers(0, 3, 20_000), rng.integers(0, 4, 20_000)) < 1e-3
    # hand contingency table [[2, 1], [0, 1]] / 4
    mi = 0.5 * math.log(0.5 / (0.75 * 0.5)) + 0.25 * math.log(0.25 / (0.75 * 0.5)) + 0.25 * math.log(0.25 / (0.25 * 0.5))
    assert metrics.mutual_info_discrete([0, 0, 0, 1], [0, 0, 1, 1]) == pytest.approx(mi, rel=1e-12)
    with pytest.raises(InputError):
        metrics.mutual_info_discrete([0, 1], [0])


# ------------------------------------------------------------------------------ attention
def test_attention_map_and_masks():
    X = jnp.array([[1.0, -2.0, 0.5, 0.0], [0.0, 1.0, -3.0, 2.0]])
    w = jnp.array([2.0, 1.0, -1.0, 4.0])
    A = metrics.attention_map(w, X)
    np.testing.assert_allclose(np.asarray(A), [[2.0, 2.0, 0.5, 0.0], [0.0, 1.0, 3.0, 8.0]])
    W = jnp.stack([w, -w], axis=1)  # (d, 2): class-summed |w_c ⊙ x|
    np.testing.assert_allclose(np.asarray(metrics.attention_map(W, X)), 2 * np.asarray(A))
    m = np.asarray(metrics.attention_masks(A, k=2))
    np.testing.assert_array_equal(m, [[1, 1, 0, 0], [0, 0, 1, 1]])
    # min–max: row 0 → [1, 1, .25, 0], row 1 → [0, .125, .375, 1]; > 0.4 strict
    np.testing.assert_array_equal(np.asarray(metrics.attention_masks(A)), [[1, 1, 0, 0], [0, 0, 0, 1]])
    np.testing.assert_array_equal(np.asarray(metrics.attention_masks(A, thr=0.3)), [[1, 1, 0, 0], [0, 0, 1, 1]])
    # constant row → empty mask (no 0/0)
    assert not np.any(np.asarray(metrics.attention_masks(jnp.ones((1, 4)))))


def test_attention_iou_hand_and_degenerate():
    A = jnp.array([[4.0, 3.0, 0.0, 0.0], [0.0, 0.0, 1.0, 2.0]])
    B_disjoint = jnp.array([[0.0, 0.0, 3.0, 4.0], [2.0, 1.0, 0.0, 0.0]])
    assert float(metrics.attention_iou(A, A, k=2)) == 1.0
    assert float(metrics.attention_iou(A, B_disjoint, k=2)) == 0.0
    assert float(metrics.attention_iou(A, A)) == 1.0
    assert float(metrics.attention_iou(A, B_disjoint)) == 0.0
    # partial overlap: masks (top-2) row0 {0,1} vs {0,2}, row1 {2,3} vs {2,3}: inter 1+2, union 3+2
    B2 = jnp.array([[4.0, 0.0, 3.0, 0.0], [0.0, 0.0, 1.0, 2.0]])
    assert float(metrics.attention_iou(A, B2, k=2)) == pytest.approx(3 / 5)
    np.testing.assert_allclose(np.asarray(metrics.attention_iou_per_example(A, B2, k=2)), [1 / 3, 1.0])
    # batch IoU pools counts: it is not the mean of per-example IoUs
    assert float(metrics.attention_iou(A, B2, k=2)) != pytest.approx(float(jnp.mean(metrics.attention_iou_per_example(A, B2, k=2))))
    # both masks empty → 1
    assert float(metrics.attention_iou(jnp.ones((2, 3)), jnp.ones((2, 3)))) == 1.0
    with pytest.raises(InputError, match="k must"):
        metrics.attention_iou(A, A, k=5)
    with pytest.raises(InputError, match="thr"):
        metrics.attention_iou(A, A, thr=1.5)


@given(st.integers(0, 1000), st.sampled_from([1, 3]))
def test_attention_iou_bounds_and_symmetry(seed, k):
    A1 = jnp.abs(jax.random.normal(jax.random.key(seed), (6, 5)))
    A2 = jnp.abs(jax.random.normal(jax.random.key(seed + 7), (6, 5)))
    for kk in (k, None):
        v = float(metrics.attention_iou(A1, A2, k=kk))
        assert 0.0 <= v <= 1.0
        assert v == float(metrics.attention_iou(A2, A1, k=kk))


# ------------------------------------------------------------------------------ affinity, risk
def test_affinity_and_disagreement_risk():
    assert float(metrics.affinity(0.6, 0.8)) == pytest.approx(0.75)
    np.testing.assert_allclose(np.asarray(metrics.affinity(jnp.array([0.4, 0.8]), 0.8)), [0.5, 1.0])
    with pytest.raises(InputError, match="acc_clean"):
        metrics.affinity(0.5, 0.0)
    w_star = jnp.array([1.0, 0.0])
    X = jnp.array([[1.0, 1.0], [1.0, -1.0], [-1.0, 2.0], [-1.0, -0.5]])
    assert float(metrics.disagreement_risk(w_star, w_star, X)) == 0.0
    assert float(metrics.disagreement_risk(-w_star, w_star, X)) == 1.0
    # w = (1, 1): signs (+, 0, +, -) vs (+, +, -, -): the 0 and the third disagree
    assert float(metrics.disagreement_risk(jnp.array([1.0, 1.0]), w_star, X)) == 0.5
    np.testing.assert_allclose(np.asarray(metrics.disagreement_risk(jnp.stack([w_star, -w_star]), w_star, X)), [0.0, 1.0])
    # agreement on logits = 1 - disagreement risk
    w = jnp.array([0.3, -1.0])
    assert float(metrics.top1_agreement(X @ w_star, X @ w)) == pytest.approx(1 - float(metrics.disagreement_risk(w, w_star, X)))


def test_metrics_jit():
    z, p = _probs(5)
    zs, ps = _probs(6)
    assert float(jax.jit(metrics.top1_agreement)(z, zs)) == float(metrics.top1_agreement(z, zs))
    assert float(jax.jit(metrics.predictive_kl_teacher_student)(p, ps)) == pytest.approx(float(metrics.predictive_kl_teacher_student(p, ps)))
    cs = jax.jit(metrics.confidence_scatter, static_argnames=("bins", "logits"))(p, ps, bins=10)
    assert float(cs.slope) == pytest.approx(float(metrics.confidence_scatter(p, ps, bins=10).slope))
    A = jnp.abs(z)
    assert float(jax.jit(metrics.attention_iou, static_argnames=("k", "thr"))(A, jnp.abs(zs), k=2)) == float(
        metrics.attention_iou(A, jnp.abs(zs), k=2)
    )


# ------------------------------------------------------------------------------ independent numpy routes (issue 13)
def _np_kl(p, q):
    p, q = np.asarray(p, np.float64), np.asarray(q, np.float64)
    return float(np.mean(np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0) / q), 0.0), axis=-1)))


@settings(max_examples=6)
@given(st.integers(0, 10_000), st.sampled_from([2, 5]))
def test_kl_both_directions_against_numpy(seed, C):
    rng = np.random.default_rng(seed)
    pT = rng.dirichlet(np.ones(C), size=17)
    pS = rng.dirichlet(np.ones(C), size=17)
    assert float(metrics.predictive_kl_teacher_student(jnp.asarray(pT), jnp.asarray(pS))) == pytest.approx(_np_kl(pT, pS), rel=1e-11)
    assert float(metrics.predictive_kl_student_teacher(jnp.asarray(pT), jnp.asarray(pS))) == pytest.approx(_np_kl(pS, pT), rel=1e-11)
    assert float(metrics.guo_kl(jnp.asarray(pT), jnp.asarray(pS))) == pytest.approx(10 * _np_kl(pS, pT), rel=1e-11)


def test_tie_rule_first_index_and_binary_threshold():
    """Ties resolve like numpy's argmax (the first maximal class); binary class 1 iff z > 0 / p > 1/2."""
    a = np.array([[0.4, 0.4, 0.2], [0.1, 0.45, 0.45], [1 / 3, 1 / 3, 1 / 3], [0.2, 0.3, 0.5]])
    np.testing.assert_array_equal(np.asarray(metrics.predicted_class(jnp.asarray(a))), np.argmax(a, axis=1))
    b = np.array([[0.2, 0.4, 0.4], [0.45, 0.1, 0.45], [0.5, 0.25, 0.25], [0.2, 0.5, 0.3]])
    agree = np.mean(np.argmax(a, axis=1) == np.argmax(b, axis=1))
    assert float(metrics.top1_agreement(jnp.asarray(a), jnp.asarray(b))) == agree == 0.25  # only the last-but-one row agrees (class 0 both)
    z = np.array([-1.0, 0.0, 1e-300, 2.0])
    np.testing.assert_array_equal(np.asarray(metrics.predicted_class(jnp.asarray(z))), (z > 0).astype(int))
    p = np.array([0.2, 0.5, 0.5 + 1e-16, 0.9])
    np.testing.assert_array_equal(np.asarray(metrics.predicted_class(jnp.asarray(p), "probs")), (p > 0.5).astype(int))


@settings(max_examples=6)
@given(st.integers(0, 10_000))
def test_confidence_scatter_ols_matches_numpy_polyfit(seed):
    """slope/intercept = np.polyfit(x, y, 1): y (student) regressed on x (teacher), not the other way round."""
    rng = np.random.default_rng(seed)
    zT = rng.normal(size=(40, 3)) * 2.0
    zS = 0.5 * zT + rng.normal(size=(40, 3))
    cs = metrics.confidence_scatter(jnp.asarray(zT), jnp.asarray(zS), logits=True)
    x, y = np.asarray(cs.x), np.asarray(cs.y)
    top = np.argmax(zT, axis=1)
    rest = lambda z: np.log(np.sum(np.where(np.eye(3, dtype=bool)[top], 0.0, np.exp(z)), axis=1))  # noqa: E731
    np.testing.assert_allclose(x, zT[np.arange(40), top] - rest(zT), rtol=1e-12)
    np.testing.assert_allclose(y, zS[np.arange(40), top] - rest(zS), rtol=1e-12, atol=1e-12)
    slope, intercept = np.polyfit(x, y, 1)
    assert float(cs.slope) == pytest.approx(slope, rel=1e-10)
    assert float(cs.intercept) == pytest.approx(intercept, rel=1e-10, abs=1e-12)
    reverse = np.polyfit(y, x, 1)[0]
    assert abs(slope - reverse) > 1e-3  # the two regressions differ on this data
