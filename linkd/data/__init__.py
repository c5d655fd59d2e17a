r"""Synthetic data: spectra, Gaussian designs, teachers, labels, Phuong–Lampert geometries, augmentations.

Everything here is a pure function: numpy or JAX arrays in, JAX arrays out (in the default float
dtype, float64 under ``jax_enable_x64``; integer class labels are int32), randomness only through
an explicit ``key`` (``jax.random``). Bad arguments raise :class:`linkd.errors.InputError` (a
``ValueError``) naming the argument, its value and the allowed range; checks on scalars are skipped
when the scalar is traced (so strengths, noise levels and temperatures can be ``jit``-ed or
``vmap``-ed), while sizes (n, d, C) must be static Python integers.

One module per concern, every public name re-exported here (``from linkd import data;
data.power_law_spectrum(8)``):

* :mod:`~linkd.data.spectra` — population eigenvalues :math:`\lambda_1 \ge \dots \ge \lambda_d > 0`
  (docs/theory.md §2.2): :func:`power_law_spectrum`, :func:`exponential_spectrum`,
  :func:`spiked_spectrum`, :func:`explicit_spectrum`, dispatcher :func:`make_spectrum`.
* :mod:`~linkd.data.designs` — rows :math:`x \sim N(0, U\,\mathrm{diag}(\lambda)\,U^\top)`:
  :func:`random_orthogonal`, :func:`gaussian_design`, :func:`make_design` → :class:`Design`.
* :mod:`~linkd.data.teachers` — :math:`w_* = \sum_k c_k^* u_k` with :math:`|c_k^*| \propto
  k^{-\text{profile}}` along the population eigendirections: :func:`linear_teacher`,
  :func:`multiclass_teacher`.
* :mod:`~linkd.data.labels` — :func:`regression_labels`, :func:`binary_soft_labels`,
  :func:`binary_hard_labels`, :func:`softmax_labels`, :func:`multiclass_hard_labels`.
* :mod:`~linkd.data.geometries` — Phuong–Lampert geometries (docs/theory.md §1.4), each sampler
  with its exact :math:`p(\theta) = P[\bar\theta \le \theta]`: :func:`margin_cone`,
  :func:`power_law_angle`, :func:`isotropic` (and ``*_p``), dispatchers :func:`geometry`,
  :func:`geometry_p`.
* :mod:`~linkd.data.augmentations` — Guo et al.'s linear analogue (docs/theory.md §5.2):
  :func:`feature_noise`, :func:`feature_mask`, :func:`feature_scale`, dispatcher :func:`augment`.
* :mod:`~linkd.data.aligned` — designs whose :math:`\hat\Sigma` and :math:`\hat\Sigma_{yx}` share
  one frame, for deep-linear students (docs/theory.md §7): :func:`aligned_design` →
  :class:`AlignedDesign`.
"""
from linkd.data.aligned import AlignedDesign, aligned_design
from linkd.data.augmentations import AUGMENT_KINDS, augment, feature_mask, feature_noise, feature_scale
from linkd.data.designs import Design, gaussian_design, make_design, random_orthogonal
from linkd.data.geometries import (
    GEOMETRY_KINDS,
    geometry,
    geometry_p,
    isotropic,
    isotropic_p,
    margin_cone,
    margin_cone_p,
    power_law_angle,
    power_law_angle_p,
)
from linkd.data.labels import (
    binary_hard_labels,
    binary_soft_labels,
    multiclass_hard_labels,
    regression_labels,
    softmax_labels,
)
from linkd.data.spectra import (
    SPECTRUM_KINDS,
    explicit_spectrum,
    exponential_spectrum,
    make_spectrum,
    power_law_spectrum,
    spiked_spectrum,
)
from linkd.data.teachers import linear_teacher, multiclass_teacher

__all__ = [
    "SPECTRUM_KINDS", "GEOMETRY_KINDS", "AUGMENT_KINDS",
    "power_law_spectrum", "exponential_spectrum", "spiked_spectrum", "explicit_spectrum", "make_spectrum",
    "random_orthogonal", "gaussian_design", "Design", "make_design",
    "linear_teacher", "multiclass_teacher",
    "regression_labels", "binary_soft_labels", "binary_hard_labels", "softmax_labels", "multiclass_hard_labels",
    "margin_cone", "margin_cone_p", "power_law_angle", "power_law_angle_p", "isotropic", "isotropic_p",
    "geometry", "geometry_p",
    "feature_noise", "feature_mask", "feature_scale", "augment",
    "AlignedDesign", "aligned_design",
]
