"""The closed-form contract, generated from ``linkd.closed_form.__all__`` (docs/ARCHITECTURE.md,
"Closed-form conventions"):

* dtype: every public closed form, called on one small generated problem, returns what the rule
  promises — ``jax``: a jax array in the floating dtype of its array arguments (float64 and float32
  in, the same out; float32 from float64 numpy input when x64 is off); ``host``: numpy float64
  whatever the input and the x64 flag; ``float``: Python floats; ``default``: a builder without
  array arguments, in ``default_float()``; ``type``: a result type (NamedTuple), not called;
* bad arguments: every public function refuses at least one bad input with a one-line
  :class:`~linkd.errors.InputError` that names the function and the argument;
* a name added to ``__all__`` without an entry in both tables fails here.
"""
import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from linkd import closed_form as cf
from linkd import models
from linkd.dtypes import default_float
from linkd.errors import InputError


class Problem:
    """A d = 3 problem (C = 3 classes, n = 6 rows, K = 4 kernel points) with arrays in one dtype."""

    def __init__(self, dtype):
        rng = np.random.default_rng(0)
        a = lambda x: np.asarray(x, dtype)  # noqa: E731
        self.lam = a([2.0, 1.0, 0.5])
        self.V = a(np.linalg.qr(rng.standard_normal((3, 3)))[0])
        self.X = a(rng.standard_normal((6, 3)))
        self.y = a(np.sign(rng.standard_normal(6)))
        self.cs, self.c0 = a([1.0, -0.5, 0.8]), a([0.1, 0.2, -0.1])
        self.CS, self.C0 = a(rng.standard_normal((3, 3))), a(0.1 * rng.standard_normal((3, 3)))
        self.M3 = a(np.einsum("ia,ib,ic->abc", self.X, self.X, self.X) / 6)
        self.q = a([0.9, 0.6, 0.3])
        self.Q = a(np.stack([1.0 - (1.0 - 0.3 * np.asarray([2.0, 1.0, 0.5])) ** s for s in range(40)]))
        G = rng.standard_normal((4, 4))
        self.G, self.yk = a(G @ G.T / 16 + 0.05 * np.eye(4)), a([1.0, -1.0, 0.5, 0.2])
        self.deep = models.DeepLinear((a(rng.standard_normal((2, 3))), a(rng.standard_normal((1, 2)))))
        self.cov = a(np.diag([2.0, 1.0, 0.5]))


def _curve(p):
    return cf.sign_agreement_curve(p.lam, p.V, p.cs, 0.3, 5, np.array([1.0, 3.0]), cov=p.cov)


# name: (kind, call(problem) -> the array the rule is about)
CASES = {
    "gd_decay": ("jax", lambda p: cf.gd_decay(p.lam, 0.3, np.arange(3))),
    "gf_decay": ("jax", lambda p: cf.gf_decay(p.lam, np.arange(3))),
    "StableLR": ("type", None),
    "stable_lr": ("float", lambda p: cf.stable_lr(p.lam).convergent),
    "gd_filter": ("jax", lambda p: cf.gd_filter(p.lam, 0.3, 4)),
    "gf_filter": ("jax", lambda p: cf.gf_filter(p.lam, 1.5)),
    "gd_mse_trajectory": ("jax", lambda p: cf.gd_mse_trajectory(p.lam, p.cs, p.c0, 0.3, 3)),
    "gf_mse_trajectory": ("jax", lambda p: cf.gf_mse_trajectory(p.lam, p.cs, p.c0, np.array([0.5, 2.0]))),
    "teacher_student_filters": ("jax", lambda p: cf.teacher_student_filters(p.lam, 0.3, 5, np.arange(3))),
    "gf_teacher_student_filters": ("jax", lambda p: cf.gf_teacher_student_filters(p.lam, 2.0, np.arange(3))),
    "exaggeration_gap": ("jax", lambda p: cf.exaggeration_gap(p.lam, 0.3, 5, 4).gap),
    "gf_exaggeration_gap": ("jax", lambda p: cf.gf_exaggeration_gap(p.lam, 2.0, 3.0).gap),
    "exaggeration_gap_from_progress": ("jax", lambda p: cf.exaggeration_gap_from_progress(p.lam, 0.3, p.q).gap),
    "switch_trajectory": ("jax", lambda p: cf.switch_trajectory(p.lam, p.cs, 0.3, 5, 2, 4)),
    "gd_self_distill_factor": ("jax", lambda p: cf.gd_self_distill_factor(p.lam, 0.3, 5, 2)),
    "MatchedGap": ("type", None),
    "matched_progress_gap": ("jax", lambda p: cf.matched_progress_gap(p.Q, p.q, eigvals=p.lam).gap),
    "pl_limit": ("jax", lambda p: cf.pl_limit(p.X[:2], p.cs, p.c0)),
    "pl_deep_invariant": ("jax", lambda p: cf.pl_deep_invariant(p.deep.layers[0], p.X[:2])),
    "pl_deep_head": ("jax", lambda p: cf.pl_deep_head(p.deep)),
    "pl_deep_limit": ("jax", lambda p: cf.pl_deep_limit(p.X[:2], p.cs, p.deep.layers[0], p.deep.layers[1])),
    "pl_orthogonal_part": ("jax", lambda p: cf.pl_orthogonal_part(p.X[:2], p.cs)),
    "PLCounterexample": ("type", None),
    "pl_risk_counterexample": ("default", lambda p: cf.pl_risk_counterexample().z),
    "SelfDistillResult": ("type", None),
    "CollapseBounds": ("type", None),
    "self_distill_rounds": ("jax", lambda p: cf.self_distill_rounds(p.G, p.yk, eps=0.05, rounds=2).y),
    "ridge_self_distill": ("jax", lambda p: cf.ridge_self_distill(p.G, p.yk, 0.1, 2).y),
    "solve_round_c": ("float", lambda p: cf.solve_round_c(p.lam, p.cs, 0.05)),
    "collapse_round_bounds": ("float", lambda p: cf.collapse_round_bounds(p.yk, 4, 0.05).upper),
    "kernel_predict": ("jax", lambda p: cf.kernel_predict(p.G[:2], p.G, p.yk, 0.1)),
    "self_distill_predict": ("jax", lambda p: cf.self_distill_predict(p.G[:2], cf.ridge_self_distill(p.G, p.yk, 0.1, 2))),
    "rbf_gram": ("jax", lambda p: cf.rbf_gram(p.X, p.X[:2], 1.0)),
    "deep_g": ("host", lambda p: cf.deep_g(p.q, depth=3)),
    "deep_g_inverse": ("host", lambda p: cf.deep_g_inverse(p.cs, depth=3)),
    "deep_g_inverse_newton": ("host", lambda p: cf.deep_g_inverse_newton(p.cs, depth=3)),
    "deep_gf_trajectory": ("host", lambda p: cf.deep_gf_trajectory(p.lam, p.lam, 0.1, np.arange(3), depth=2)),
    "deep_escape_time": ("host", lambda p: cf.deep_escape_time(p.lam, p.lam, 0.1, depth=3)),
    "deep_gd_trajectory": ("host", lambda p: cf.deep_gd_trajectory(p.lam, p.lam, 0.1, 0.1, 3, depth=2)),
    "deep_modified_flow": ("host", lambda p: cf.deep_modified_flow(p.lam, p.lam, 0.1, 0.1, 3, depth=2)),
    "deep_step_sizes": ("host", lambda p: cf.deep_step_sizes(p.lam, p.lam, 2, 0.1)),
    "deep_teacher_strengths": ("host", lambda p: cf.deep_teacher_strengths(p.lam, p.lam, 2.0)),
    "deep_distilled_trajectory": ("host", lambda p: cf.deep_distilled_trajectory(p.lam, p.lam, 0.1, 1.0, depth=2)),
    "deep_time_dilation": ("host", lambda p: cf.deep_time_dilation(p.q, p.lam, 0.01, depth=2)),
    "deep_matched_progress_gap": ("host", lambda p: cf.deep_matched_progress_gap(p.lam, p.lam, 0.1, p.q, depth=2).gap),
    "TemperatureLR": ("type", None),
    "temperature_lr": ("float", lambda p: cf.temperature_lr(p.lam, 3).descent),
    "centre_classes": ("jax", lambda p: cf.centre_classes(p.CS)),
    "class_sum": ("jax", lambda p: cf.class_sum(p.CS)),
    "kd_gradient": ("jax", lambda p: cf.kd_gradient(p.X, p.C0, p.CS, tau=2.0)),
    "third_moment": ("jax", lambda p: cf.third_moment(p.X, p.V)),
    "s_kernel": ("jax", lambda p: cf.s_kernel(p.q, p.lam / 4, np.asarray(3.0, p.q.dtype))),
    "e_kernel": ("jax", lambda p: cf.e_kernel(p.q, p.lam, np.asarray(2.0, p.q.dtype), num_classes=3)),
    "tempered_decay": ("jax", lambda p: cf.tempered_decay(p.lam, 0.5, np.arange(3), num_classes=3)),
    "tempered_filter": ("jax", lambda p: cf.tempered_filter(p.lam, 0.5, 4, num_classes=3)),
    "gf_tempered_filter": ("jax", lambda p: cf.gf_tempered_filter(p.lam, 2.0, num_classes=3)),
    "tempered_trajectory": ("jax", lambda p: cf.tempered_trajectory(p.lam, p.CS, p.C0, 0.5, 3, num_classes=3)),
    "gf_tempered_trajectory": ("jax", lambda p: cf.gf_tempered_trajectory(p.lam, p.CS, p.C0, 1.0, num_classes=3)),
    "first_order_correction": ("jax", lambda p: cf.first_order_correction(p.lam, p.M3, p.CS, p.C0, 0.5, 3, num_classes=3)),
    "gf_first_order_correction": ("jax", lambda p: cf.gf_first_order_correction(p.lam, p.M3, p.CS, p.C0, 1.0,
                                                                                num_classes=3)),
    "tempered_prediction": ("jax", lambda p: cf.tempered_prediction(p.lam, p.M3, p.CS, p.C0, 0.5, 3, num_classes=3,
                                                                    tau=4.0)),
    "centred_progress": ("jax", lambda p: cf.centred_progress(p.C0, p.CS)),
    "progress_prediction": ("jax", lambda p: cf.progress_prediction(p.lam, p.M3, p.CS, 0.5, 3, num_classes=3, tau=4.0)),
    "tempered_exaggeration_gap": ("jax", lambda p: cf.tempered_exaggeration_gap(p.lam, 0.5, p.q, num_classes=3).gap),
    "binary_logit_limit": ("jax", lambda p: cf.binary_logit_limit(p.lam, p.cs, p.c0, 0.5, 3)),
    "FidelityCoeffs": ("type", None),
    "fidelity_coeffs": ("host", lambda p: cf.fidelity_coeffs(p.lam, p.cs, 0.3, 5, np.arange(3)).e),
    "train_disagreement": ("host", lambda p: cf.train_disagreement(p.lam, p.cs, 0.3, 5, np.arange(3))),
    "test_disagreement": ("host", lambda p: cf.test_disagreement(p.lam, p.V, p.cs, 0.3, 5, 2, cov=p.cov)),
    "expected_test_disagreement": ("host", lambda p: cf.expected_test_disagreement(p.lam, p.V, p.cs, 0.3, 5, 2,
                                                                                   noise_std=0.1, n=6, cov=p.cov)),
    "sheppard_agreement": ("host", lambda p: cf.sheppard_agreement(p.q)),
    "bivariate_normal_cdf": ("host", lambda p: cf.bivariate_normal_cdf(p.cs, p.c0, p.q)),
    "sigma_angle": ("host", lambda p: cf.sigma_angle(p.cs, p.c0, p.cov)),
    "sign_agreement": ("host", lambda p: cf.sign_agreement(p.cs, p.c0, p.cov, mean=p.q)),
    "sign_agreement_curve": ("host", _curve),
    "ConfidenceLogits": ("type", None),
    "confidence_logits": ("host", lambda p: cf.confidence_logits(p.X, p.y, 0.1, 5, 3).train_S),
    "SlopeParts": ("type", None),
    "ols_confidence_slope": ("host", lambda p: cf.ols_confidence_slope(p.cs, p.q, p.q[::-1], 6).slope),
    "exaggeration_criterion": ("host", lambda p: cf.exaggeration_criterion(p.cs, p.q, p.q[::-1], 6)),
    "two_level_affine": ("host", lambda p: cf.two_level_affine(p.q[0], p.q[1], p.q[2], p.q[1])[0]),
    "GaussianSlope": ("type", None),
    "gaussian_test_slope": ("host", lambda p: cf.gaussian_test_slope(p.cs, p.c0, p.cov, 100).beta),
    "SGDMoments": ("type", None),
    "NoiseFloor": ("type", None),
    "SGDDistillation": ("type", None),
    "sgd_moments": ("jax", lambda p: cf.sgd_moments(p.X, p.y, None, 0.05, 3, batch_size=2).var),
    "sgd_noise_floor": ("host", lambda p: cf.sgd_noise_floor(p.X, p.y, 0.05, batch_size=2).cov),
    "sgd_spectral_radius": ("float", lambda p: cf.sgd_spectral_radius(p.X, 0.05, batch_size=2)),
    "sgd_lr_limit": ("float", lambda p: cf.sgd_lr_limit(p.X, batch_size=2)),
    "sgd_teacher_student": ("jax", lambda p: cf.sgd_teacher_student(p.X, p.y, p.cs, None, 0.05, 3, batch_size=2).kd.var),
    "sgd_expected_loss": ("host", lambda p: cf.sgd_expected_loss(cf.sgd_moments(p.X, p.y, None, 0.05, 3, batch_size=2),
                                                                 p.X, p.y)),
    "sgd_homogenized_risk": ("host", lambda p: cf.sgd_homogenized_risk(p.X, p.y, None, 0.05, 3, batch_size=2)),
}


def _check(name, out, dtype):
    kind = CASES[name][0]
    if kind == "jax":
        assert isinstance(out, jax.Array) and out.dtype == dtype, f"{name}: {type(out).__name__} {out.dtype}"
    elif kind == "host":
        assert not isinstance(out, jax.Array) and np.asarray(out).dtype == np.float64, f"{name}: {type(out)}"
    elif kind == "float":
        assert type(out) is float, f"{name}: {type(out)}"
    else:
        assert isinstance(out, jax.Array) and out.dtype == default_float(), name


def test_every_public_name_has_a_dtype_case_and_a_bad_argument_case():
    names = set(cf.__all__)
    assert set(CASES) == names, f"missing: {sorted(names - set(CASES))}; stale: {sorted(set(CASES) - names)}"
    types = {n for n in names if isinstance(getattr(cf, n), type)}
    assert types == {n for n, (k, _) in CASES.items() if k == "type"}
    no_args = {n for n in names - types if not inspect.signature(getattr(cf, n)).parameters}
    assert set(BAD) == names - types - no_args, f"missing: {sorted(names - types - no_args - set(BAD))}"


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_dtype_rule_with_x64_on(dtype):
    p = Problem(dtype)
    for name, (kind, call) in CASES.items():
        if kind != "type":
            _check(name, call(p), np.dtype(dtype))


def test_dtype_rule_with_x64_off():
    """float64 numpy input, x64 off: jax closed forms give float32, host ones still float64."""
    p = Problem(np.float64)
    jax.config.update("jax_enable_x64", False)
    try:
        for name, (kind, call) in CASES.items():
            if kind != "type":
                _check(name, call(p), np.dtype(np.float32))
    finally:
        jax.config.update("jax_enable_x64", True)


def test_the_dtype_check_catches_a_wrong_dtype():
    out = jnp.zeros(3, jnp.float64)
    with pytest.raises(AssertionError):
        _check("gd_decay", out, np.dtype(np.float32))
    with pytest.raises(AssertionError):
        _check("deep_g", jnp.zeros(3), np.dtype(np.float64))  # a jax array where numpy float64 is promised


# ------------------------------------------------------------------------------------ bad arguments

_L, _C, _Z = np.array([2.0, 1.0, 0.5]), np.ones(3), np.zeros(3)
_W, _G = np.ones((3, 3)), np.eye(4)

# name: (call, the argument the message must name)
BAD = {
    "gd_decay": (lambda: cf.gd_decay(_L, 0.0, 3), "lr"),
    "gf_decay": (lambda: cf.gf_decay(_L, -1.0), "times"),
    "stable_lr": (lambda: cf.stable_lr(np.zeros(3)), "eigvals"),
    "gd_filter": (lambda: cf.gd_filter(-_L, 0.1, 3), "eigvals"),
    "gf_filter": (lambda: cf.gf_filter(_L, np.inf), "times"),
    "gd_mse_trajectory": (lambda: cf.gd_mse_trajectory(_L, _C, np.ones(2), 0.1, 3), "coeffs0"),
    "gf_mse_trajectory": (lambda: cf.gf_mse_trajectory(_L, np.ones(4), _Z, 1.0), "coeffs_star"),
    "teacher_student_filters": (lambda: cf.teacher_student_filters(_L, 0.1, -1, 3), "T_teacher"),
    "gf_teacher_student_filters": (lambda: cf.gf_teacher_student_filters(_L, 1.0, -2.0), "t_student"),
    "exaggeration_gap": (lambda: cf.exaggeration_gap(_L, 0.6, 5, 5), "lr"),
    "gf_exaggeration_gap": (lambda: cf.gf_exaggeration_gap(_L, -1.0, 1.0), "T"),
    "exaggeration_gap_from_progress": (lambda: cf.exaggeration_gap_from_progress(_L, 0.1, np.ones(2)), "q_student"),
    "switch_trajectory": (lambda: cf.switch_trajectory(_L, _C, 0.1, 5, -1, 3), "t_switch"),
    "gd_self_distill_factor": (lambda: cf.gd_self_distill_factor(_L, 0.1, 5, -1), "rounds"),
    "matched_progress_gap": (lambda: cf.matched_progress_gap(np.ones(3), _C), "q_reference"),
    "pl_limit": (lambda: cf.pl_limit(np.ones(3), _C), "X"),
    "pl_deep_invariant": (lambda: cf.pl_deep_invariant(np.ones((2, 4)), np.ones((2, 3))), "W1_0"),
    "pl_deep_head": (lambda: cf.pl_deep_head(np.ones(3)), "params"),
    "pl_deep_limit": (lambda: cf.pl_deep_limit(np.ones((2, 3)), _C, np.ones((2, 3)), np.ones(5)), "head"),
    "pl_orthogonal_part": (lambda: cf.pl_orthogonal_part(np.ones((2, 3)), np.ones(4)), "w"),
    "self_distill_rounds": (lambda: cf.self_distill_rounds(_G, np.ones(4), eps=-1.0), "eps"),
    "ridge_self_distill": (lambda: cf.ridge_self_distill(_G, np.ones(4), -0.1, 2), "lam"),
    "solve_round_c": (lambda: cf.solve_round_c(_L, _C, 0.0), "eps"),
    "collapse_round_bounds": (lambda: cf.collapse_round_bounds(1.0, 0, 0.1), "K"),
    "kernel_predict": (lambda: cf.kernel_predict(_G, _G, np.ones(4), -1.0), "c"),
    "self_distill_predict": (lambda: cf.self_distill_predict(_G, (1, 2)), "result"),
    "rbf_gram": (lambda: cf.rbf_gram(_C, _C, 0.0), "lengthscale"),
    "deep_g": (lambda: cf.deep_g(1.5, depth=2), "y"),
    "deep_g_inverse": (lambda: cf.deep_g_inverse(np.nan, depth=3), "values"),
    "deep_g_inverse_newton": (lambda: cf.deep_g_inverse_newton(1.0, depth=0), "depth"),
    "deep_gf_trajectory": (lambda: cf.deep_gf_trajectory(_L, _C, 1.0, 1.0, depth=2), "coeffs0"),
    "deep_escape_time": (lambda: cf.deep_escape_time(_L, -_C, 0.1, depth=2), "coeffs_star"),
    "deep_gd_trajectory": (lambda: cf.deep_gd_trajectory(_L, _C, 0.1, 5.0, 3, depth=2), "lr"),
    "deep_modified_flow": (lambda: cf.deep_modified_flow(_L, _C, 0.1, 0.1, 3, depth=True), "depth"),
    "deep_step_sizes": (lambda: cf.deep_step_sizes(_L, _C, 2, 5.0), "lr"),
    "deep_teacher_strengths": (lambda: cf.deep_teacher_strengths(_L, _C, -1.0), "T"),
    "deep_distilled_trajectory": (lambda: cf.deep_distilled_trajectory(_L, _C, 0.1, -1.0, depth=2), "times"),
    "deep_time_dilation": (lambda: cf.deep_time_dilation(1.5, 1.0, 0.01, depth=2), "Q"),
    "deep_matched_progress_gap": (lambda: cf.deep_matched_progress_gap(_L, _C, 0.1, _C, depth=2, ref=3), "ref"),
    "temperature_lr": (lambda: cf.temperature_lr(_L, 1), "num_classes"),
    "centre_classes": (lambda: cf.centre_classes(1.0), "W"),
    "class_sum": (lambda: cf.class_sum(2.0), "W"),
    "kd_gradient": (lambda: cf.kd_gradient(np.ones((4, 3)), _W, _W, tau=0.0), "tau"),
    "third_moment": (lambda: cf.third_moment(np.ones((4, 3)), np.ones((2, 2))), "basis"),
    "s_kernel": (lambda: cf.s_kernel(0.5, 0.2, -1.0), "s"),
    "e_kernel": (lambda: cf.e_kernel(0.5, 0.2, 1.0, num_classes=1), "num_classes"),
    "tempered_decay": (lambda: cf.tempered_decay(_L, 2.5, 3, num_classes=3), "lr"),
    "tempered_filter": (lambda: cf.tempered_filter(_L, 0.1, 3, num_classes=2.0), "num_classes"),
    "gf_tempered_filter": (lambda: cf.gf_tempered_filter(_L, -1.0, num_classes=3), "times"),
    "tempered_trajectory": (lambda: cf.tempered_trajectory(_L, _C, _Z, 0.1, 3, num_classes=3), "coeffs_star"),
    "gf_tempered_trajectory": (lambda: cf.gf_tempered_trajectory(_L, _W, np.ones((3, 2)), 1.0, num_classes=3),
                               "coeffs0"),
    "first_order_correction": (lambda: cf.first_order_correction(_L, np.ones((2, 2, 2)), _W, _W, 0.1, 3, num_classes=3),
                               "M3"),
    "gf_first_order_correction": (lambda: cf.gf_first_order_correction(_L, np.ones((3, 3, 3)), _W, _W, -1.0,
                                                                       num_classes=3), "times"),
    "tempered_prediction": (lambda: cf.tempered_prediction(_L, np.ones((3, 3, 3)), _W, _W, 0.1, 3, num_classes=3,
                                                           tau=1.0, order=2), "order"),
    "centred_progress": (lambda: cf.centred_progress(np.ones((2, 4, 3)), _W), "coeffs"),
    "progress_prediction": (lambda: cf.progress_prediction(_L, np.ones((3, 3, 3)), _W, 0.1, 3, num_classes=3,
                                                           tau=np.nan), "tau"),
    "tempered_exaggeration_gap": (lambda: cf.tempered_exaggeration_gap(_L, 1.9, _C * 0.5, num_classes=3), "lr"),
    "binary_logit_limit": (lambda: cf.binary_logit_limit(_L, _C, _Z, 4.5, 3), "lr"),
    "fidelity_coeffs": (lambda: cf.fidelity_coeffs(_L, _C, -0.1, None, 3), "lr"),
    "train_disagreement": (lambda: cf.train_disagreement(_L, np.ones(4), 0.1, None, 3), "coeffs_star"),
    "test_disagreement": (lambda: cf.test_disagreement(_L, np.eye(3), _C, 0.1, None, 3, cov=np.eye(2)), "cov"),
    "expected_test_disagreement": (lambda: cf.expected_test_disagreement(_L, np.eye(3), _C, 0.1, 5, 3, noise_std=0.1,
                                                                         n=0, cov=np.eye(3)), "n"),
    "sheppard_agreement": (lambda: cf.sheppard_agreement(1.5), "rho"),
    "bivariate_normal_cdf": (lambda: cf.bivariate_normal_cdf(0.0, 0.0, -2.0), "rho"),
    "sigma_angle": (lambda: cf.sigma_angle(_C, np.ones(2), np.eye(3)), "b"),
    "sign_agreement": (lambda: cf.sign_agreement(_C, _C, np.eye(3), mean=np.ones(2)), "mean"),
    "sign_agreement_curve": (lambda: cf.sign_agreement_curve(_L, np.eye(2), _C, 0.1, None, 3, cov=np.eye(2)), "basis"),
    "confidence_logits": (lambda: cf.confidence_logits(np.ones((4, 3)), np.ones(3), 0.1, 5, 3), "y"),
    "ols_confidence_slope": (lambda: cf.ols_confidence_slope(_C, _C, _C, 0), "n"),
    "exaggeration_criterion": (lambda: cf.exaggeration_criterion(_C, np.ones(2), _C, 3), "F"),
    "two_level_affine": (lambda: cf.two_level_affine(0.5, 0.5, 0.2, 0.1), "F2"),
    "gaussian_test_slope": (lambda: cf.gaussian_test_slope(_C, _C, np.eye(3), 0), "n_test"),
    "sgd_moments": (lambda: cf.sgd_moments(np.eye(3), _C, None, 0.1, 3, batch_size=0), "batch_size"),
    "sgd_noise_floor": (lambda: cf.sgd_noise_floor(np.eye(3), _C, 5.0, batch_size=1), "lr"),
    "sgd_spectral_radius": (lambda: cf.sgd_spectral_radius(np.eye(3), -1.0, batch_size=1), "lr"),
    "sgd_lr_limit": (lambda: cf.sgd_lr_limit(np.eye(3), batch_size=0), "batch_size"),
    "sgd_teacher_student": (lambda: cf.sgd_teacher_student(np.eye(3), _C, np.ones(2), None, 0.1, 3, batch_size=1),
                            "w_teacher"),
    "sgd_expected_loss": (lambda: cf.sgd_expected_loss(cf.sgd_moments(np.eye(3), _C, None, 0.1, 2, batch_size=1),
                                                       np.ones((3, 4)), _C), "X"),
    "sgd_homogenized_risk": (lambda: cf.sgd_homogenized_risk(np.eye(3), _C, None, 0.1, -1, batch_size=1), "steps"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_argument_is_refused_naming_function_and_argument(name):
    call, arg = BAD[name]
    with pytest.raises(InputError) as e:
        call()
    msg = str(e.value)
    assert f"{name}: {arg} must" in msg and "\n" not in msg, msg


def test_the_bad_argument_check_catches_a_silent_accept():
    """The check fails on a call that accepts the bad value (here a valid call standing in for one)."""
    with pytest.raises(pytest.fail.Exception):
        with pytest.raises(InputError):
            cf.gd_decay(_L, 0.1, 3)
