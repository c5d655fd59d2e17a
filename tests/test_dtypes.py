"""The dtype contract, table-driven over the public functions (x64 on, as in conftest):

- ``"default"``: builds arrays (spectra, designs, teachers, labels, inits) in
  :func:`linkd.dtypes.default_float` — float64 here, whatever the input's float dtype;
- ``"preserve"``: transforms the caller's arrays (spectral decompositions, closed forms) and keeps
  their float dtype: float64 in -> float64 out, float32 in -> float32 out.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from linkd import bounds, data, metrics, models, spectral
from linkd import closed_form as cf
from linkd.dtypes import default_float

KEY = jax.random.key(0)
_X = np.asarray(jax.random.normal(jax.random.key(1), (12, 5)), np.float64)
_LAM = np.asarray([3.0, 2.0, 1.0, 0.5, 0.25])
_W = np.linspace(1.0, -1.0, 5)

# name: (contract, f(X, eigvals, w) -> array)
CASES = {
    "data.power_law_spectrum": ("default", lambda X, lam, w: data.power_law_spectrum(5)),
    "data.explicit_spectrum": ("default", lambda X, lam, w: data.explicit_spectrum(lam)),
    "data.make_design": ("default", lambda X, lam, w: data.make_design(KEY, n=4, d=5, eigvals=lam, n_test=3).X),
    "data.gaussian_design": ("default", lambda X, lam, w: data.gaussian_design(KEY, 4, lam)),
    "data.linear_teacher": ("default", lambda X, lam, w: data.linear_teacher(KEY, lam)),
    "data.regression_labels": ("default", lambda X, lam, w: data.regression_labels(KEY, X, w, noise=0.1)),
    "data.binary_soft_labels": ("default", lambda X, lam, w: data.binary_soft_labels(X, w)),
    "data.binary_hard_labels": ("default", lambda X, lam, w: data.binary_hard_labels(X, w, flip=0.2, key=KEY)),
    "data.feature_noise": ("default", lambda X, lam, w: data.feature_noise(KEY, X, 0.1)),
    "data.margin_cone": ("default", lambda X, lam, w: data.margin_cone(KEY, 4, w)),
    "models.init_linear": ("default", lambda X, lam, w: models.init_linear(5, scale=1.0, key=KEY)),
    "models.init_deep_linear": ("default", lambda X, lam, w: models.init_deep_linear(5, [3], scale=1.0, key=KEY).layers[0]),
    "spectral.eigh_desc": ("preserve", lambda X, lam, w: spectral.eigh_desc(X).eigvals),
    "spectral.min_norm_coeffs": ("preserve", lambda X, lam, w: spectral.min_norm_coeffs(X, X @ w, spectral.eigh_desc(X).basis)),
    "spectral.progress": ("preserve", lambda X, lam, w: spectral.progress(w, w)),
    "spectral.projector": ("preserve", lambda X, lam, w: spectral.projector(X)),
    "cf.gd_mse_trajectory": ("preserve", lambda X, lam, w: cf.gd_mse_trajectory(lam, w, w * 0, 0.1, 3)),
    "cf.teacher_student_filters": ("preserve", lambda X, lam, w: cf.teacher_student_filters(lam, 0.1, 3, np.arange(3))),
    "cf.rbf_gram": ("preserve", lambda X, lam, w: cf.rbf_gram(X, X, 1.0)),
    "bounds.angle_to_boundary": ("preserve", lambda X, lam, w: bounds.angle_to_boundary(X, w)),
    "bounds.pl_bound": ("preserve", lambda X, lam, w: bounds.pl_bound(3, bounds.empirical_p(bounds.angle_to_boundary(X, w)))),
    "bounds.iso_gaussian_risk": ("preserve", lambda X, lam, w: bounds.iso_gaussian_risk(X, w)),
    "bounds.student_projection": ("preserve", lambda X, lam, w: bounds.student_projection(X[:3], w)),
    "bounds.geometry_risk_table": ("default", lambda X, lam, w: bounds.geometry_risk_table("power_law", 5, beta=1.0,
                                                                                          table=9)[1]),
    "bounds.mc_learning_curve": ("preserve", lambda X, lam, w: bounds.mc_learning_curve(
        KEY, lambda k, m: jax.random.normal(k, (m, 5), w.dtype), w, [1, 2], 3, 1, risk_fn=bounds.iso_gaussian_risk).mean),
    "metrics.top1_agreement": ("default", lambda X, lam, w: metrics.top1_agreement(X @ w, X @ w[::-1])),
    "metrics.predictive_kl_teacher_student": ("preserve", lambda X, lam, w: metrics.predictive_kl_teacher_student(jax.nn.sigmoid(X @ w),
                                                                                             jax.nn.sigmoid(X[:, 0]))),
    "metrics.logit_confidence": ("preserve", lambda X, lam, w: metrics.logit_confidence(X, X[::-1], logits=True)[1]),
    "metrics.attention_iou": ("default", lambda X, lam, w: metrics.attention_iou(metrics.attention_map(w, X), X, k=2)),
    "metrics.attention_iou_per_example": ("default", lambda X, lam, w: metrics.attention_iou_per_example(X, X[::-1])),
    "metrics.disagreement_risk": ("preserve", lambda X, lam, w: metrics.disagreement_risk(w[::-1], w, X)),
}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_dtype_contract(name, dtype):
    contract, f = CASES[name]
    out = f(_X.astype(dtype), _LAM.astype(dtype), _W.astype(dtype))
    want = default_float() if contract == "default" else np.dtype(dtype)
    assert jnp.asarray(out).dtype == want, f"{name} ({contract}): {dtype.__name__} in -> {out.dtype} out"
