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

from linkd import closed_form as cf
from linkd import data, models, spectral
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
}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_dtype_contract(name, dtype):
    contract, f = CASES[name]
    out = f(_X.astype(dtype), _LAM.astype(dtype), _W.astype(dtype))
    want = default_float() if contract == "default" else np.dtype(dtype)
    assert jnp.asarray(out).dtype == want, f"{name} ({contract}): {dtype.__name__} in -> {out.dtype} out"
