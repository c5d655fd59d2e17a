r"""Synthetic data: spectra, Gaussian designs, teachers, labels, Phuong–Lampert geometries, augmentations.

Everything here is a pure function: numpy or JAX arrays in, JAX arrays out (in the default float
dtype, float64 under ``jax_enable_x64``; integer class labels are int32), randomness only through
an explicit ``key`` (``jax.random``). Bad arguments raise :class:`linkd.errors.InputError` (a ``ValueError``) naming the argument, its
value and the allowed range; checks on scalars are skipped when the scalar is traced (so strengths,
noise levels and temperatures can be ``jit``-ed or ``vmap``-ed), while sizes (n, d, C) must be
static Python integers.

* Spectra (population eigenvalues :math:`\lambda_1 \ge \dots \ge \lambda_d > 0`):
  :func:`power_law_spectrum`, :func:`exponential_spectrum`, :func:`spiked_spectrum`,
  :func:`explicit_spectrum`, dispatcher :func:`make_spectrum`.
* Designs: rows :math:`x \sim N(0, U\,\mathrm{diag}(\lambda)\,U^\top)`; :func:`random_orthogonal`,
  :func:`gaussian_design`, :func:`make_design` → :class:`Design`.
* Teachers: :math:`w_* = \sum_k c_k^* u_k` with :math:`|c_k^*| \propto k^{-\text{profile}}` along the
  population eigendirections :math:`u_k`: :func:`linear_teacher`, :func:`multiclass_teacher`.
* Labels: :func:`regression_labels`, :func:`binary_soft_labels`, :func:`binary_hard_labels`,
  :func:`softmax_labels`, :func:`multiclass_hard_labels`.
* Phuong–Lampert geometries (docs/theory.md §1.4). :math:`\bar\theta(x)\in[0,\pi/2]` is the angle
  between x and the teacher hyperplane :math:`w_*^\perp`, :math:`\sin\bar\theta =
  |w_*^\top x|/(\|w_*\|\|x\|)`, and :math:`p(\theta) = P[\bar\theta \le \theta]`. Each sampler has
  an exact p: :func:`margin_cone` / :func:`margin_cone_p`, :func:`power_law_angle` /
  :func:`power_law_angle_p`, :func:`isotropic` / :func:`isotropic_p`; dispatchers
  :func:`geometry`, :func:`geometry_p`.
* Augmentations (Guo et al., linear analogue, docs/theory.md §5.2): :func:`feature_noise`,
  :func:`feature_mask`, :func:`feature_scale`, dispatcher :func:`augment`.
"""
from __future__ import annotations

import math
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from linkd.dtypes import default_float
from linkd.errors import ConfigError, InputError

Array = jnp.ndarray

SPECTRUM_KINDS = ("power_law", "exponential", "spiked", "explicit")
GEOMETRY_KINDS = ("margin_cone", "power_law", "isotropic")
AUGMENT_KINDS = ("noise", "mask", "scale", "none")


# ------------------------------------------------------------------------------------------------
# validation helpers
# ------------------------------------------------------------------------------------------------
def _float(a) -> Array:
    """Cast to a JAX array of the default float dtype."""
    return jnp.asarray(a, dtype=default_float())


def _int(fn: str, name: str, value, lo: int = 1) -> int:
    """A static Python int ≥ lo (numpy integers accepted, bools and non-integral floats rejected)."""
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
    if not ok or int(value) < lo:
        raise InputError(f"{fn}: {name} must be an integer >= {lo}; got {value!r}")
    return int(value)


def _concrete(value):
    """``float(value)``, or None when the value is traced (then checks are skipped)."""
    try:
        return float(value)
    except (jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError, TypeError):
        return None


def _real(fn: str, name: str, value, lo=-math.inf, hi=math.inf, lo_open=False, hi_open=False):
    """Check a finite real scalar lies in the interval; return it unchanged (traced values pass)."""
    if value is None or isinstance(value, (str, bytes, bool)):
        raise InputError(f"{fn}: {name} must be a real number; got {value!r}")
    v = _concrete(value)
    if v is None:
        if jnp.ndim(value) != 0:
            raise InputError(f"{fn}: {name} must be a scalar; got shape {jnp.shape(value)}")
        return value
    bad = (
        not math.isfinite(v)
        or (v <= lo if lo_open else v < lo)
        or (v >= hi if hi_open else v > hi)
    )
    if bad:
        rng = f"{'(' if lo_open or lo == -math.inf else '['}{lo:g}, {hi:g}{')' if hi_open or hi == math.inf else ']'}"
        raise InputError(f"{fn}: {name} must be a finite number in {rng}; got {value!r}")
    return value


def _matrix(fn: str, name: str, X, ndim=(2,)) -> Array:
    X = _float(X)
    if X.ndim not in ndim:
        raise InputError(f"{fn}: {name} must have ndim in {ndim}; got shape {X.shape}")
    return X


def _kind(fn: str, kind, allowed) -> str:
    if kind not in allowed:
        raise InputError(f"{fn}: kind must be one of {', '.join(map(repr, allowed))}; got {kind!r}")
    return kind


def _check_params(fn: str, kind: str, params: dict, allowed: tuple) -> None:
    extra = sorted(set(params) - set(allowed))
    if extra:
        raise InputError(
            f"{fn}: kind {kind!r} takes parameters {allowed or '()'}; got unexpected {', '.join(extra)}"
        )


# ------------------------------------------------------------------------------------------------
# spectra
# ------------------------------------------------------------------------------------------------
def power_law_spectrum(d: int, exponent: float = 1.0, scale: float = 1.0) -> Array:
    r""":math:`\lambda_k = \text{scale}\cdot k^{-\text{exponent}}`, k = 1..d (exponent ≥ 0, scale > 0)."""
    d = _int("power_law_spectrum", "d", d)
    exponent = float(_real("power_law_spectrum", "exponent", exponent, lo=0.0))
    scale = float(_real("power_law_spectrum", "scale", scale, lo=0.0, lo_open=True))
    k = jnp.arange(1, d + 1, dtype=default_float())
    return scale * k ** (-exponent)


def exponential_spectrum(d: int, rate: float = 0.1, scale: float = 1.0) -> Array:
    r""":math:`\lambda_k = \text{scale}\cdot e^{-\text{rate}(k-1)}`, k = 1..d (rate ≥ 0, scale > 0)."""
    d = _int("exponential_spectrum", "d", d)
    rate = float(_real("exponential_spectrum", "rate", rate, lo=0.0))
    scale = float(_real("exponential_spectrum", "scale", scale, lo=0.0, lo_open=True))
    k = jnp.arange(d, dtype=default_float())
    out = scale * jnp.exp(-rate * k)
    if not bool(jnp.all(out > 0)):
        raise InputError(
            f"exponential_spectrum: rate={rate!r} with d={d} underflows to 0 in {default_float()}; "
            "use a smaller rate (rate*(d-1) below ~700 in float64, ~85 in float32)"
        )
    return out


def spiked_spectrum(d: int, spikes, bulk: float = 1.0) -> Array:
    r"""Spiked covariance: the first ``len(spikes)`` eigenvalues are ``spikes`` (sorted descending),
    the remaining d − len(spikes) equal ``bulk``. Needs every spike ≥ bulk > 0 (so the output is
    descending) and len(spikes) ≤ d."""
    fn = "spiked_spectrum"
    d = _int(fn, "d", d)
    bulk = float(_real(fn, "bulk", bulk, lo=0.0, lo_open=True))
    s = np.atleast_1d(np.asarray(spikes, dtype=np.float64))
    if s.ndim != 1:
        raise InputError(f"{fn}: spikes must be a 1-D sequence; got shape {s.shape}")
    if s.size > d:
        raise InputError(f"{fn}: len(spikes) must be in [0, d={d}]; got {s.size}")
    if not np.all(np.isfinite(s)) or np.any(s < bulk):
        raise InputError(f"{fn}: spikes must be finite and in [bulk={bulk:g}, inf); got {s.tolist()}")
    s = np.sort(s)[::-1]
    return _float(np.concatenate([s, np.full(d - s.size, bulk)]))


def explicit_spectrum(values) -> Array:
    """Explicit eigenvalues: validated positive and finite, returned sorted descending."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or v.size == 0:
        raise InputError(f"explicit_spectrum: values must be a non-empty 1-D sequence; got shape {v.shape}")
    if not np.all(np.isfinite(v)) or np.any(v <= 0):
        raise InputError(f"explicit_spectrum: values must be finite and in (0, inf); got {v.tolist()}")
    return _float(np.sort(v)[::-1])


_SPECTRUM_PARAMS = {
    "power_law": ("exponent", "scale"),
    "exponential": ("rate", "scale"),
    "spiked": ("spikes", "bulk"),
    "explicit": ("values",),
}


def make_spectrum(kind: str, d: int | None = None, **params) -> Array:
    """Dispatch by name (configs): ``'power_law'`` (exponent, scale), ``'exponential'`` (rate,
    scale), ``'spiked'`` (spikes, bulk), ``'explicit'`` (values; d may be None, else must equal
    len(values))."""
    fn = "make_spectrum"
    _kind(fn, kind, SPECTRUM_KINDS)
    _check_params(fn, kind, params, _SPECTRUM_PARAMS[kind])
    if kind == "explicit":
        if "values" not in params:
            raise InputError(f"{fn}: kind 'explicit' needs values=[...]")
        out = explicit_spectrum(params["values"])
        if d is not None and _int(fn, "d", d) != out.shape[0]:
            raise InputError(f"{fn}: d must equal len(values)={out.shape[0]} for kind 'explicit'; got {d!r}")
        return out
    if d is None:
        raise InputError(f"{fn}: d must be an integer >= 1 for kind {kind!r}; got None")
    if kind == "power_law":
        return power_law_spectrum(d, **params)
    if kind == "exponential":
        return exponential_spectrum(d, **params)
    if "spikes" not in params:
        raise InputError(f"{fn}: kind 'spiked' needs spikes=[...]")
    return spiked_spectrum(d, **params)


# ------------------------------------------------------------------------------------------------
# bases and designs
# ------------------------------------------------------------------------------------------------
def random_orthogonal(key: Array, d: int) -> Array:
    r"""Haar-distributed orthogonal (d, d) matrix: Q from the QR of a Gaussian matrix, with
    column signs fixed by :math:`\mathrm{sign}(\mathrm{diag}\,R)` (Mezzadri 2007)."""
    return _random_orthogonal(key, _int("random_orthogonal", "d", d))


@partial(jax.jit, static_argnums=1)
def _random_orthogonal(key, d):
    Q, R = jnp.linalg.qr(jax.random.normal(key, (d, d), default_float()))
    s = jnp.sign(jnp.diagonal(R))
    return Q * jnp.where(s == 0, 1.0, s)[None, :]


def _eigvals(fn: str, eigvals) -> Array:
    lam = _matrix(fn, "eigvals", eigvals, ndim=(1,))
    if lam.shape[0] == 0:
        raise InputError(f"{fn}: eigvals must be non-empty; got shape {lam.shape}")
    try:
        v = np.asarray(lam)
    except jax.errors.TracerArrayConversionError:  # traced: skip the value check
        return lam
    if not np.all(np.isfinite(v) & (v >= 0)):
        raise InputError(f"{fn}: eigvals must be finite and in [0, inf); got {v.tolist()}")
    return lam


def _basis(fn: str, basis, d: int) -> Array | None:
    if basis is None:
        return None
    U = _matrix(fn, "basis", basis)
    if U.shape[1] != d or U.shape[0] < d:
        raise InputError(f"{fn}: basis must have shape (D, {d}) with D >= {d} (orthonormal columns); got {U.shape}")
    return U


def gaussian_design(key: Array, n: int, eigvals, basis=None) -> Array:
    r"""X (n, D) with i.i.d. rows :math:`x \sim N(0, U\,\mathrm{diag}(\lambda)\,U^\top)`.

    ``basis=None`` is axis-aligned (U = I, D = d): :math:`X = G\,\mathrm{diag}(\sqrt\lambda)` computed
    as ``G * sqrt(λ)[None, :]``, no identity is materialised. Otherwise ``basis`` (D, d) has
    orthonormal columns :math:`u_k` (usually D = d) and :math:`X = G\,\mathrm{diag}(\sqrt\lambda)\,U^\top`.
    For a given key the Gaussian G is the same in both paths, so ``basis=jnp.eye(d)`` reproduces
    ``basis=None``.
    """
    fn = "gaussian_design"
    n = _int(fn, "n", n)
    lam = _eigvals(fn, eigvals)
    d = lam.shape[0]
    return _gaussian_design(key, n, lam, _basis(fn, basis, d))


@partial(jax.jit, static_argnums=1)
def _gaussian_design(key, n, lam, U):
    Z = jax.random.normal(key, (n, lam.shape[0]), lam.dtype) * jnp.sqrt(lam)[None, :]
    return Z if U is None else Z @ U.T


class Design(NamedTuple):
    """A train/test pair from one population :math:`N(0, U\\,\\mathrm{diag}(\\lambda)\\,U^\\top)`:
    ``X`` (n, d), ``X_test`` (n_test, d), population ``eigvals`` (d,) and ``basis`` (d, d) whose
    column k is :math:`u_k` (None = axis-aligned, :math:`u_k = e_k`)."""

    X: Array
    X_test: Array
    eigvals: Array
    basis: Array | None


def make_design(key: Array, n: int, d: int, eigvals, n_test: int = 1000, basis="random") -> Design:
    """Train (n, d) and test (n_test, d) sets from the same Gaussian population.

    ``basis``: ``'random'`` (Haar orthogonal, drawn from ``key``), ``'axis'`` (stored as None), or an
    explicit (d, d) orthogonal array. ``eigvals`` must have length d (see :func:`make_spectrum`).
    Keys: the basis, train and test draws use independent subkeys of ``key``.
    """
    fn = "make_design"
    n = _int(fn, "n", n)
    d = _int(fn, "d", d)
    n_test = _int(fn, "n_test", n_test, lo=0)
    lam = _eigvals(fn, eigvals)
    if lam.shape[0] != d:
        raise InputError(f"{fn}: eigvals must have length d={d}; got {lam.shape[0]}")
    k_basis, k_train, k_test = jax.random.split(key, 3)
    U: Array | None
    if isinstance(basis, str):
        if basis == "random":
            U = random_orthogonal(k_basis, d)
        elif basis == "axis":
            U = None
        else:
            raise InputError(f"{fn}: basis must be 'random', 'axis' or a (d, d) array; got {basis!r}")
    else:
        if basis is None:
            raise InputError(f"{fn}: basis must be 'random', 'axis' or a (d, d) array; got None")
        explicit = _matrix(fn, "basis", basis)
        if explicit.shape != (d, d):
            raise InputError(f"{fn}: an explicit basis must have shape ({d}, {d}); got {explicit.shape}")
        U = explicit
    X = gaussian_design(k_train, n, lam, U)
    X_test = gaussian_design(k_test, n_test, lam, U) if n_test > 0 else jnp.zeros((0, d), default_float())
    return Design(X, X_test, lam, U)


# ------------------------------------------------------------------------------------------------
# teachers
# ------------------------------------------------------------------------------------------------
def _dim(fn: str, eigvals_or_d) -> int:
    if isinstance(eigvals_or_d, (int, np.integer)) and not isinstance(eigvals_or_d, bool):
        return _int(fn, "eigvals_or_d", eigvals_or_d)
    return _eigvals(fn, eigvals_or_d).shape[0]


def _profile_weights(d: int, profile) -> Array:
    k = jnp.arange(1, d + 1, dtype=default_float())
    return k ** (-profile)


def linear_teacher(key: Array, eigvals_or_d, basis=None, profile: float = 0.0, norm: float = 1.0) -> Array:
    r"""Teacher :math:`w_* = \sum_k c_k^* u_k`, :math:`c_k^* = \text{norm}\cdot s_k k^{-\text{profile}}
    / \sqrt{\sum_j j^{-2\,\text{profile}}}` with i.i.d. fair signs :math:`s_k` drawn from ``key``.

    :math:`u_k` are the population eigendirections: the columns of ``basis`` (orthonormal, shape
    (D, d)), or :math:`e_k` when ``basis=None``. ``eigvals_or_d`` is d or the (d,) eigenvalue array
    (only its length is used). profile > 0 puts the teacher's mass on the top directions, < 0 on the
    tail. Then :math:`\|w_*\| = \text{norm}` exactly (for orthonormal columns). Returns (D,).
    """
    fn = "linear_teacher"
    d = _dim(fn, eigvals_or_d)
    profile = _real(fn, "profile", profile)
    norm = _real(fn, "norm", norm, lo=0.0, lo_open=True)
    return _linear_teacher(key, d, _basis(fn, basis, d), profile, norm)


@partial(jax.jit, static_argnums=1)
def _linear_teacher(key, d, U, profile, norm):
    mag = _profile_weights(d, profile)
    c = norm * jax.random.rademacher(key, (d,), default_float()) * mag / jnp.linalg.norm(mag)
    return c if U is None else U @ c


def multiclass_teacher(
    key: Array, d: int, n_classes: int, scale: float = 1.0, basis=None, profile: float = 0.0
) -> Array:
    r"""Multiclass teacher :math:`W_*` (D, C): coefficients :math:`A_{kj} = k^{-\text{profile}} g_{kj}`,
    :math:`g_{kj}\sim N(0,1)` i.i.d. from ``key``, mapped to :math:`W_* = U A` (``basis`` U (D, d) or
    the identity), each class column rescaled to :math:`\|W_{*,:j}\| = \text{scale}`.

    The profile holds in expectation: :math:`E[A_{kj}^2] \propto k^{-2\,\text{profile}}`."""
    fn = "multiclass_teacher"
    d = _int(fn, "d", d)
    C = _int(fn, "n_classes", n_classes, lo=2)
    scale = _real(fn, "scale", scale, lo=0.0, lo_open=True)
    profile = _real(fn, "profile", profile)
    return _multiclass_teacher(key, d, C, _basis(fn, basis, d), scale, profile)


@partial(jax.jit, static_argnums=(1, 2))
def _multiclass_teacher(key, d, C, U, scale, profile):
    A = jax.random.normal(key, (d, C), default_float()) * _profile_weights(d, profile)[:, None]
    W = A if U is None else U @ A
    return scale * W / jnp.linalg.norm(W, axis=0, keepdims=True)


# ------------------------------------------------------------------------------------------------
# labels
# ------------------------------------------------------------------------------------------------
def _logits(fn: str, X, w, ndim) -> Array:
    X = _matrix(fn, "X", X)
    w = _matrix(fn, "w_star" if ndim == (1,) else "W_star", w, ndim=ndim)
    if w.shape[0] != X.shape[1]:
        raise InputError(f"{fn}: teacher weights have {w.shape[0]} rows but X has d={X.shape[1]} columns")
    return X @ w


def regression_labels(key: Array, X, w_star, noise: float = 0.0) -> Array:
    r""":math:`y = X w_* + \text{noise}\cdot\varepsilon`, :math:`\varepsilon\sim N(0, I)`; w_star (d,) or
    (d, C) → y (n,) or (n, C). noise ≥ 0."""
    fn = "regression_labels"
    noise = _real(fn, "noise", noise, lo=0.0)
    return _regression_labels(key, _logits(fn, X, w_star, (1, 2)), noise)


@jax.jit
def _regression_labels(key, z, noise):
    return z + noise * jax.random.normal(key, z.shape, z.dtype)


def binary_soft_labels(X, w_star, tau: float = 1.0) -> Array:
    r"""Teacher probabilities :math:`\sigma(X w_* / \tau)`, shape (n,); tau > 0."""
    tau = _real("binary_soft_labels", "tau", tau, lo=0.0, lo_open=True)
    return jax.nn.sigmoid(_logits("binary_soft_labels", X, w_star, (1,)) / tau)


def _legacy_key_first(fn: str, X, w, legacy: tuple, key):
    """Accept the older key-first call ``f(key, X, w, ...)`` (key possibly None) next to
    ``f(X, w, ..., key=key)``: returns ``(key, X, w)``."""
    if not legacy:
        return key, X, w
    if len(legacy) != 1 or key is not None:
        raise InputError(f"{fn}: arguments must be (X, w_star, *, flip, key) or the older (key, X, w_star, *, flip); "
                         f"got {2 + len(legacy)} positional arguments" + (" and key=" if key is not None else ""))
    return X, w, legacy[0]


def binary_hard_labels(X, w_star, *legacy, flip: float = 0.0, key: Array | None = None) -> Array:
    r"""Hard labels :math:`1\{X w_* > 0\}` as floats in {0, 1}, each flipped independently with
    probability ``flip`` ∈ [0, 1]; ``key`` (keyword-only) is needed only when flip > 0.

    The older key-first form ``binary_hard_labels(key, X, w_star, flip=...)`` is accepted too."""
    fn = "binary_hard_labels"
    key, X, w_star = _legacy_key_first(fn, X, w_star, legacy, key)
    flip = _real(fn, "flip", flip, lo=0.0, hi=1.0)
    z = _logits(fn, X, w_star, (1,))
    y = (z > 0).astype(z.dtype)
    if key is None:
        if _concrete(flip) == 0.0:
            return y
        raise InputError(f"{fn}: key must be a PRNG key when flip > 0; got None")
    return _flip_binary(key, y, flip)


@jax.jit
def _flip_binary(key, y, flip):
    return jnp.where(jax.random.bernoulli(key, flip, y.shape), 1.0 - y, y)


def softmax_labels(X, W_star, tau: float = 1.0) -> Array:
    r"""Teacher class probabilities :math:`\mathrm{softmax}(X W_*/\tau)`, shape (n, C); tau > 0."""
    tau = _real("softmax_labels", "tau", tau, lo=0.0, lo_open=True)
    return jax.nn.softmax(_logits("softmax_labels", X, W_star, (2,)) / tau, axis=-1)


def multiclass_hard_labels(
    X, W_star, *legacy, flip: float = 0.0, sample: bool = False, tau: float = 1.0, key: Array | None = None
) -> Array:
    r"""Integer labels (n,) int32: :math:`\arg\max_j (XW_*)_j`, or (``sample=True``) a draw from
    :math:`\mathrm{softmax}(XW_*/\tau)`; then each label is, with probability ``flip`` ∈ [0, 1],
    replaced by a uniformly random *different* class ((y + U{1..C−1}) mod C).

    The sampling and flipping use fixed, separate subkeys of ``key``, so the clean labels for a
    given key do not depend on ``flip``. ``key`` (keyword-only) is needed only when flip > 0 or
    sample=True. The older key-first form ``multiclass_hard_labels(key, X, W_star, ...)`` is
    accepted too."""
    fn = "multiclass_hard_labels"
    key, X, W_star = _legacy_key_first(fn, X, W_star, legacy, key)
    flip = _real(fn, "flip", flip, lo=0.0, hi=1.0)
    tau = _real(fn, "tau", tau, lo=0.0, lo_open=True)
    z = _logits(fn, X, W_star, (2,))
    n, C = z.shape
    if key is None:
        if sample or _concrete(flip) != 0.0:
            raise InputError(f"{fn}: key must be a PRNG key when sample=True or flip > 0; got None")
        return jnp.argmax(z, axis=-1).astype(jnp.int32)
    return _multiclass_hard_labels(key, z, flip, tau, bool(sample))


@partial(jax.jit, static_argnums=4)
def _multiclass_hard_labels(key, z, flip, tau, sample):
    n, C = z.shape
    k_sample, k_flip, k_shift = jax.random.split(key, 3)
    if sample:
        y = jax.random.categorical(k_sample, z / tau, axis=-1).astype(jnp.int32)
    else:
        y = jnp.argmax(z, axis=-1).astype(jnp.int32)
    if C < 2:
        return y
    flipped = jax.random.bernoulli(k_flip, flip, (n,))
    shift = jax.random.randint(k_shift, (n,), 1, C, dtype=jnp.int32)
    return jnp.where(flipped, (y + shift) % C, y)


# ------------------------------------------------------------------------------------------------
# Phuong–Lampert geometries (docs/theory.md §1.4)
# ------------------------------------------------------------------------------------------------
def _unit_teacher(fn: str, w_star) -> Array:
    w = _matrix(fn, "w_star", w_star, ndim=(1,))
    if w.shape[0] < 2:
        raise InputError(f"{fn}: w_star must have dimension d >= 2; got shape {w.shape}")
    nrm = jnp.linalg.norm(w)
    if _concrete(nrm) is not None and not (0.0 < float(nrm) < math.inf):
        raise InputError(f"{fn}: w_star must be finite with norm in (0, inf); got norm {float(nrm)!r}")
    return w / nrm


def _radius_arg(fn: str, radius):
    """Validate ``radius`` (a number in (0, inf) or ``'chi'``) → (chi: bool, value)."""
    if isinstance(radius, str):
        if radius != "chi":
            raise InputError(f"{fn}: radius must be a number in (0, inf) or 'chi'; got {radius!r}")
        return True, 1.0
    return False, _real(fn, "radius", radius, lo=0.0, lo_open=True)


def _radius(key: Array, n: int, d: int, chi: bool, radius) -> Array:
    """Per-row radius (n,): the constant ``radius``, or (chi) the norm of a standard Gaussian in R^d."""
    if chi:  # chi_d = norm of N(0, I_d) (cheaper to compile than jax.random.gamma)
        return jnp.linalg.norm(jax.random.normal(key, (n, d), default_float()), axis=1)
    return jnp.full((n,), radius, default_float())


@partial(jax.jit, static_argnums=(2, 3, 4))
def _by_angle(key, w_hat, n, kind, chi, param, radius):
    r"""Rows :math:`r_i s_i(a_i\,\hat w + b_i\,u_i)`: s = ±1 fair, u uniform on the unit sphere of
    :math:`\hat w^\perp`; (a, b) = (cos ψ, sin ψ), ψ ~ U[0, param] for ``kind='cone'``, or
    (sin θ̄, cos θ̄), θ̄ = (π/2) U^{1/param} for ``kind='power'``."""
    k_a, k_sign, k_u, k_r = jax.random.split(key, 4)
    t = jax.random.uniform(k_a, (n,), default_float())
    if kind == "cone":
        psi = param * t
        a, b = jnp.cos(psi), jnp.sin(psi)
    else:
        theta = (math.pi / 2) * t ** (1.0 / param)
        a, b = jnp.sin(theta), jnp.cos(theta)
    s = jax.random.rademacher(k_sign, (n,), default_float())
    g = jax.random.normal(k_u, (n, w_hat.shape[0]), default_float())
    g = g - (g @ w_hat)[:, None] * w_hat[None, :]
    u = g / jnp.linalg.norm(g, axis=1, keepdims=True)
    r = _radius(k_r, n, w_hat.shape[0], chi, radius)
    return (r * s)[:, None] * (a[:, None] * w_hat[None, :] + b[:, None] * u)


def margin_cone(key: Array, n: int, w_star, psi_max: float = math.pi / 3, radius=1.0) -> Array:
    r"""Margin-cone geometry: :math:`x = r\,s(\cos\psi\,\hat w + \sin\psi\,u)`, s = ±1 fair, u uniform on
    the unit sphere of :math:`w_*^\perp`, :math:`\psi\sim U[0, \psi_{max}]`, ψ_max ∈ (0, π/2].

    :math:`\bar\theta = \pi/2 - \psi`, so no mass lies within angle :math:`\gamma = \pi/2 - \psi_{max}`
    of the boundary (ψ_max = π/3 ⇒ γ = π/6); exact p in :func:`margin_cone_p`. ``radius``: a
    constant (default 1) or ``'chi'`` (Gaussian-like norms); θ̄ does not depend on it. Shape (n, d).
    """
    fn = "margin_cone"
    n = _int(fn, "n", n, lo=0)
    psi_max = _real(fn, "psi_max", psi_max, lo=0.0, hi=math.pi / 2, lo_open=True)
    chi, r = _radius_arg(fn, radius)
    return _by_angle(key, _unit_teacher(fn, w_star), n, "cone", chi, psi_max, r)


def _theta(theta) -> Array:
    return jnp.clip(_float(theta), 0.0, math.pi / 2)


def margin_cone_p(theta, psi_max: float = math.pi / 3) -> Array:
    r""":math:`p(\theta) = P[\pi/2 - \psi \le \theta] = \mathrm{clip}((\theta - (\pi/2 - \psi_{max}))/\psi_{max}, 0, 1)`."""
    psi_max = _real("margin_cone_p", "psi_max", psi_max, lo=0.0, hi=math.pi / 2, lo_open=True)
    return jnp.clip((_float(theta) - (math.pi / 2 - psi_max)) / psi_max, 0.0, 1.0)


def power_law_angle(key: Array, n: int, w_star, beta: float = 1.0, radius=1.0) -> Array:
    r"""Power-law geometry: :math:`\bar\theta = (\pi/2)U^{1/\beta}`, U ~ U[0,1], β > 0,
    :math:`x = r\,s(\sin\bar\theta\,\hat w + \cos\bar\theta\,u)` (s, u, r as in :func:`margin_cone`),
    so :math:`p(\theta) = (2\theta/\pi)^\beta` (:func:`power_law_angle_p`). Shape (n, d)."""
    fn = "power_law_angle"
    n = _int(fn, "n", n, lo=0)
    beta = _real(fn, "beta", beta, lo=0.0, lo_open=True)
    chi, r = _radius_arg(fn, radius)
    return _by_angle(key, _unit_teacher(fn, w_star), n, "power", chi, beta, r)


def power_law_angle_p(theta, beta: float = 1.0) -> Array:
    r""":math:`p(\theta) = (2\theta/\pi)^\beta` on [0, π/2] (0 below, 1 above)."""
    beta = _real("power_law_angle_p", "beta", beta, lo=0.0, lo_open=True)
    return (_theta(theta) * (2.0 / math.pi)) ** beta


def isotropic(key: Array, n: int, d: int, radius="chi") -> Array:
    r"""Isotropic geometry: rows uniform in direction. ``radius='chi'`` (default) gives standard
    Gaussian rows :math:`N(0, I_d)`; a number r gives points uniform on the sphere of radius r.
    Exact p in :func:`isotropic_p`. Shape (n, d)."""
    fn = "isotropic"
    n = _int(fn, "n", n, lo=0)
    d = _int(fn, "d", d)
    chi, r = _radius_arg(fn, radius)
    return _isotropic(key, n, d, chi, r)


@partial(jax.jit, static_argnums=(1, 2, 3))
def _isotropic(key, n, d, chi, radius):
    g = jax.random.normal(key, (n, d), default_float())
    return g if chi else radius * g / jnp.linalg.norm(g, axis=1, keepdims=True)


def isotropic_p(theta, d: int) -> Array:
    r""":math:`p(\theta) = I_{\sin^2\theta}(1/2, (d-1)/2)` (regularized incomplete beta), d ≥ 2:
    for x uniform in direction, :math:`\sin^2\bar\theta = (\hat w^\top \hat x)^2 \sim \mathrm{Beta}(1/2, (d-1)/2)`."""
    return _isotropic_p(_float(theta), _int("isotropic_p", "d", d, lo=2))


@partial(jax.jit, static_argnums=1)
def _isotropic_p(theta, d):
    s2 = jnp.sin(jnp.clip(theta, 0.0, math.pi / 2)) ** 2
    return jnp.clip(jax.scipy.special.betainc(0.5, (d - 1) / 2.0, s2), 0.0, 1.0)


_GEOMETRY_PARAMS = {"margin_cone": ("psi_max", "radius"), "power_law": ("beta", "radius"), "isotropic": ("radius",)}
_GEOMETRY_P_PARAMS = {"margin_cone": ("psi_max",), "power_law": ("beta",), "isotropic": ()}


def geometry(kind: str, key: Array, n: int, w_star, **params) -> Array:
    """Dispatch a Phuong–Lampert geometry by name: ``'margin_cone'`` (psi_max, radius),
    ``'power_law'`` (beta, radius), ``'isotropic'`` (radius; d = len(w_star)). Shape (n, d)."""
    fn = "geometry"
    _kind(fn, kind, GEOMETRY_KINDS)
    _check_params(fn, kind, params, _GEOMETRY_PARAMS[kind])
    if kind == "margin_cone":
        return margin_cone(key, n, w_star, **params)
    if kind == "power_law":
        return power_law_angle(key, n, w_star, **params)
    return isotropic(key, n, _matrix(fn, "w_star", w_star, ndim=(1,)).shape[0], **params)


def geometry_p(kind: str, theta, d: int, **params) -> Array:
    """Exact :math:`p(\\theta) = P[\\bar\\theta \\le \\theta]` for the geometry :func:`geometry` draws
    (d is used by ``'isotropic'`` only; extra sampler-only params like ``radius`` are accepted and ignored)."""
    fn = "geometry_p"
    _kind(fn, kind, GEOMETRY_KINDS)
    _check_params(fn, kind, params, _GEOMETRY_PARAMS[kind])
    params = {k: v for k, v in params.items() if k in _GEOMETRY_P_PARAMS[kind]}
    if kind == "margin_cone":
        return margin_cone_p(theta, **params)
    if kind == "power_law":
        return power_law_angle_p(theta, **params)
    return isotropic_p(theta, d)


# ------------------------------------------------------------------------------------------------
# augmentations (docs/theory.md §5.2)
# ------------------------------------------------------------------------------------------------
def feature_noise(key: Array, X, sigma: float) -> Array:
    r"""Gaussian feature noise :math:`X + \sigma\,\varepsilon`, :math:`\varepsilon_{ij}\sim N(0,1)`; sigma ≥ 0."""
    sigma = _real("feature_noise", "sigma", sigma, lo=0.0)
    return _feature_noise(key, _matrix("feature_noise", "X", X, ndim=(1, 2)), sigma)


@jax.jit
def _feature_noise(key, X, sigma):
    return X + sigma * jax.random.normal(key, X.shape, X.dtype)


def feature_mask(key: Array, X, rate: float, rescale: bool = False) -> Array:
    r"""Random feature masking: each entry zeroed independently with probability ``rate`` ∈ [0, 1);
    with ``rescale=True`` the kept entries are divided by 1 − rate (inverted dropout, unbiased)."""
    rate = _real("feature_mask", "rate", rate, lo=0.0, hi=1.0, hi_open=True)
    return _feature_mask(key, _matrix("feature_mask", "X", X, ndim=(1, 2)), rate, bool(rescale))


@partial(jax.jit, static_argnums=3)
def _feature_mask(key, X, rate, rescale):
    out = jnp.where(jax.random.bernoulli(key, 1.0 - rate, X.shape), X, 0.0)
    return out / (1.0 - rate) if rescale else out


def feature_scale(key: Array, X, spread: float) -> Array:
    r"""Per-example scaling :math:`x_i \mapsto e^{\text{spread}\,g_i} x_i`, :math:`g_i\sim N(0,1)`; spread ≥ 0."""
    spread = _real("feature_scale", "spread", spread, lo=0.0)
    return _feature_scale(key, _matrix("feature_scale", "X", X), spread)


@jax.jit
def _feature_scale(key, X, spread):
    g = jax.random.normal(key, (X.shape[0],), X.dtype)
    return jnp.exp(spread * g)[:, None] * X


def augment(kind: str, key: Array, X, strength: float) -> Array:
    """Dispatch an augmentation by name with one ``strength``: ``'noise'`` (sigma), ``'mask'``
    (rate, no rescale), ``'scale'`` (spread), ``'none'`` (returns X, strength ignored)."""
    _kind("augment", kind, AUGMENT_KINDS)
    if kind == "noise":
        return feature_noise(key, X, strength)
    if kind == "mask":
        return feature_mask(key, X, strength)
    if kind == "scale":
        return feature_scale(key, X, strength)
    return _matrix("augment", "X", X, ndim=(1, 2))


__all__ = [
    "SPECTRUM_KINDS", "GEOMETRY_KINDS", "AUGMENT_KINDS",
    "power_law_spectrum", "exponential_spectrum", "spiked_spectrum", "explicit_spectrum", "make_spectrum",
    "random_orthogonal", "gaussian_design", "Design", "make_design",
    "linear_teacher", "multiclass_teacher",
    "regression_labels", "binary_soft_labels", "binary_hard_labels", "softmax_labels", "multiclass_hard_labels",
    "margin_cone", "margin_cone_p", "power_law_angle", "power_law_angle_p", "isotropic", "isotropic_p",
    "geometry", "geometry_p",
    "feature_noise", "feature_mask", "feature_scale", "augment",
]


# ------------------------------------------------------------------------------------------------
# aligned multi-output designs for deep-linear students (docs/theory.md §7, A-al)
# ------------------------------------------------------------------------------------------------
class AlignedDesign(NamedTuple):
    r"""X (n, d), Y (n, m) with :math:`\hat\Sigma = X^\top X/n = V\mathrm{diag}(\lambda)V^\top` and
    :math:`\hat\Sigma_{yx} = Y^\top X/n = \sum_{k\le r}\lambda_k c_k u_k v_k^\top` exactly; ``V`` (d, d)
    orthogonal, ``U`` (m, r) orthonormal columns, ``eigvals`` (d,), ``strengths`` c (r,)."""

    X: Array
    Y: Array
    V: Array
    U: Array
    eigvals: Array
    strengths: Array


def aligned_design(key: Array, n: int, eigvals, strengths, n_out: int | None = None, *,
                   whitened: bool = False, noise: float = 0.0) -> AlignedDesign:
    r"""A design whose input and input–output covariances share the frame (§7, A-al).

    :math:`X = \sqrt n\,Q\,\mathrm{diag}(\sqrt\lambda)V^\top` (Q (n, d) orthonormal columns, V Haar),
    :math:`Y = X\,V_r\mathrm{diag}(c)U^\top + \text{noise}\cdot(I - QQ^\top)G`: the noise is orthogonal
    to the columns of X, so it changes Y but not :math:`\hat\Sigma_{yx}`. ``whitened=True`` sets
    :math:`\lambda \equiv 1`. Needs n ≥ d, r = len(strengths) ≤ min(d, m), c_k > 0, λ_k > 0.
    """
    n = _int("aligned_design", "n", n)
    lam = np.asarray(eigvals, dtype=np.float64)
    c = np.asarray(strengths, dtype=np.float64)
    d, r = lam.size, c.size
    m = r if n_out is None else _int("aligned_design", "n_out", n_out)
    if lam.ndim != 1 or d == 0 or not np.all(np.isfinite(lam) & (lam > 0)):
        raise ConfigError("eigvals", lam.tolist(), "a non-empty 1-d array of finite values > 0")
    if c.ndim != 1 or not np.all(np.isfinite(c) & (c > 0)) or not 1 <= r <= min(d, m):
        raise ConfigError("strengths", c.tolist(), f"1 to min(d, n_out) = {min(d, m)} finite values > 0")
    if n < d:
        raise ConfigError("n", n, f"n >= d = {d} (Σ̂ must have full rank d)")
    if not (math.isfinite(noise) and noise >= 0):
        raise ConfigError("noise", noise, "a finite value >= 0")
    if whitened:
        lam = np.ones_like(lam)
    dt = default_float()
    lam_j, c_j = jnp.asarray(lam, dt), jnp.asarray(c, dt)
    X, Y, V, U = _aligned_design(key, n, m, lam_j, c_j, jnp.asarray(float(noise), dt))
    return AlignedDesign(X, Y, V, U, lam_j, c_j)


@partial(jax.jit, static_argnums=(1, 2))
def _aligned_design(key, n, m, lam, c, noise):
    d, r = lam.shape[0], c.shape[0]
    kq, kv, ku, ke = jax.random.split(key, 4)
    Q, _ = jnp.linalg.qr(jax.random.normal(kq, (n, d), lam.dtype))
    V = _random_orthogonal(kv, d)
    U, _ = jnp.linalg.qr(jax.random.normal(ku, (m, r), lam.dtype))
    X = math.sqrt(n) * (Q * jnp.sqrt(lam)[None, :]) @ V.T
    G = jax.random.normal(ke, (n, m), lam.dtype)
    Y = X @ ((V[:, :r] * c[None, :]) @ U.T) + noise * (G - Q @ (Q.T @ G))
    return X, Y, V, U


__all__ += ["AlignedDesign", "aligned_design"]
