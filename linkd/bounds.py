r"""Phuong–Lampert data geometry and risk bound (docs/theory.md §1.4–1.5).

* :math:`\bar\theta(x)\in[0,\pi/2]`, the angle between x and the teacher hyperplane
  :math:`w_*^\perp`: :math:`\sin\bar\theta = |w_*^\top x|/(\|w_*\|\|x\|)` (:func:`angle_to_boundary`).
* :math:`p(\theta) = P_x[\bar\theta(x)\le\theta]`, the mass near the decision boundary
  (:func:`empirical_p`, :func:`iso_gaussian_p`).
* For the distilled student :math:`\hat w_n = P_nw_*` (w_0 = 0):
  :math:`E[R(\hat w_n)] \le \min_{\beta\in[0,\pi/2]} p(\beta) + p(\pi/2-\beta)^n` (:func:`pl_bound`),
  with :math:`R(w) = P_x[\mathrm{sign}(w^\top x) \ne \mathrm{sign}(w_*^\top x)]`.
* Isotropic Gaussian x, n < d: :math:`\cos^2\angle(\hat w_n, w_*) \sim \mathrm{Beta}(n/2,(d-n)/2)`
  and :math:`E[R_n] = E[\arccos\sqrt B]/\pi` (:func:`iso_gaussian_expected_risk`), 0 for n ≥ d.
* Exact risk of one student at angle :math:`\varphi = \angle(w, w_*)` for a geometry that is
  rotation-invariant about :math:`w_*` (margin cone, power law, isotropic):
  :math:`R(\varphi) = E_{\bar\theta}[\tfrac12 I_{1-c^2}(\tfrac{d-2}2,\tfrac12)\,1\{c<1\}]`,
  :math:`c = \tan\bar\theta/\tan\varphi` (:func:`geometry_risk`, docs/theory.md §1.4).
* :func:`mc_learning_curve` — Monte Carlo :math:`E[R_n]` with standard errors, vmapped over
  training sets.
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from scipy import integrate
from scipy.special import betaln, xlogy

from linkd.dtypes import default_float
from linkd.errors import ConfigError, InputError

Array = jnp.ndarray

__all__ = [
    "HALF_PI",
    "angle_to_boundary",
    "empirical_p",
    "iso_gaussian_p",
    "pl_bound",
    "iso_gaussian_expected_risk",
    "iso_gaussian_risk",
    "student_projection",
    "geometry_risk",
    "geometry_risk_table",
    "apply_risk_table",
    "geometry_risk_fn",
    "LearningCurve",
    "mc_learning_curve",
]

HALF_PI = 0.5 * np.pi


def _host_true(cond) -> bool:
    """``bool(cond)`` on concrete values; False when traced (checks are skipped under jit)."""
    try:
        return bool(cond)
    except jax.errors.ConcretizationTypeError:
        return False


def angle_to_boundary(X: Array, w_star: Array) -> Array:
    r""":math:`\bar\theta(x) = \arcsin(|w_*^\top x|/(\|w_*\|\|x\|)) \in [0, \pi/2]` for each row of X.

    ``X`` of shape (n, d) (→ (n,)) or (d,) (→ scalar). A zero row gets angle 0 (it sits on the
    boundary: :math:`\mathrm{sign}(w^\top 0) = 0` for every w).
    """
    X = jnp.asarray(X)
    w_star = jnp.asarray(w_star)
    if w_star.ndim != 1:
        raise InputError(f"angle_to_boundary: w_star must be a 1-D array (d,); got shape {w_star.shape}")
    if X.ndim not in (1, 2) or X.shape[-1] != w_star.shape[0]:
        raise InputError(f"angle_to_boundary: X must have shape (n, d) or (d,) with d = {w_star.shape[0]}; "
                         f"got shape {X.shape}")
    wn = jnp.linalg.norm(w_star)
    if _host_true(wn == 0.0):
        raise InputError("angle_to_boundary: w_star must be nonzero (the teacher hyperplane is undefined); "
                         "got the zero vector")
    xn = jnp.linalg.norm(X, axis=-1)
    s = jnp.abs(X @ w_star) / (wn * jnp.where(xn > 0, xn, 1.0))
    return jnp.where(xn > 0, jnp.arcsin(jnp.clip(s, 0.0, 1.0)), 0.0)


def empirical_p(angles: Array) -> Callable[[Array], Array]:
    r"""Empirical CDF of boundary angles: returns :math:`p(\theta) = \#\{i: \bar\theta_i \le \theta\}/N`.

    The returned callable is vectorised (θ of any shape → same shape) and jit-friendly.
    """
    a = jnp.sort(jnp.ravel(jnp.asarray(angles)))
    if a.shape[0] == 0:
        raise InputError("empirical_p: angles must be a non-empty array of angles in [0, pi/2]; got an empty array")
    N = a.shape[0]

    def p(theta):
        theta = jnp.asarray(theta, dtype=a.dtype)
        return jnp.searchsorted(a, theta, side="right").astype(a.dtype) / N

    return p


def iso_gaussian_p(theta: Array, d: int) -> Array:
    r"""Exact :math:`p(\theta)` for isotropic x in :math:`\mathbb{R}^d`:
    :math:`P[\sin^2\bar\theta \le \sin^2\theta] = I_{\sin^2\theta}(1/2, (d-1)/2)` (d ≥ 2).
    The same function as :func:`linkd.data.isotropic_p` (one implementation)."""
    from linkd.data import isotropic_p

    return isotropic_p(theta, d)


def pl_bound(n, p_fn: Callable[[Array], Array], grid: int | Array = 2001) -> Array:
    r"""Phuong–Lampert bound :math:`\min_{\beta\in[0,\pi/2]} p(\beta) + p(\pi/2-\beta)^n`, capped at 1.

    ``n``: training-set size, scalar or array of any shape (the output has its shape).
    ``p_fn``: vectorised :math:`p(\theta)` (e.g. :func:`empirical_p`, ``linkd.data.margin_cone_p``).
    ``grid``: number of equally spaced β in [0, π/2] (endpoints included), or an explicit 1-D array
    of β values. A grid minimum is ≥ the true infimum, so the grid value is still a valid bound;
    include a known minimiser in an explicit grid for an exact value (e.g. β = π/6 for the
    ψ ~ U[0, π/3] cone, where the bound is exactly :math:`2^{-n}`).
    """
    if isinstance(grid, (int, np.integer)) and not isinstance(grid, bool):
        if grid < 2:
            raise InputError(f"pl_bound: grid must be an integer >= 2 or a 1-D array of angles; got {grid}")
        betas = jnp.linspace(0.0, HALF_PI, int(grid))
    else:
        betas = jnp.asarray(grid, dtype=default_float())
        if betas.ndim != 1 or betas.shape[0] < 1:
            raise InputError(f"pl_bound: grid must be an integer >= 2 or a non-empty 1-D array of angles; "
                             f"got shape {betas.shape}")
        if _host_true(jnp.any((betas < 0) | (betas > HALF_PI))):
            raise InputError(f"pl_bound: grid angles must lie in [0, pi/2]; got min {float(jnp.min(betas))}, "
                             f"max {float(jnp.max(betas))}")
    n_arr = jnp.asarray(n)
    if _host_true(jnp.any(n_arr < 0)):
        raise InputError(f"pl_bound: n must be >= 0 (a training-set size); got {n}")
    pb = jnp.asarray(p_fn(betas))
    pc = jnp.asarray(p_fn(HALF_PI - betas))
    if pb.shape != betas.shape or pc.shape != betas.shape:
        raise InputError(f"pl_bound: p_fn must be vectorised (p_fn(theta) of the shape of theta); got shape "
                         f"{pb.shape} for theta of shape {betas.shape}")
    nf = jnp.ravel(n_arr).astype(pc.dtype)
    vals = pb[None, :].astype(pc.dtype) + pc[None, :] ** nf[:, None]
    return jnp.minimum(jnp.min(vals, axis=1), 1.0).reshape(n_arr.shape)


def _iso_risk_scalar(n: int, d: int) -> float:
    if n >= d:
        return 0.0
    if n == 0:
        return 0.5  # ŵ = 0: angle π/2
    # φ = arccos √B has the bounded density 2 cos^{n-1}φ sin^{d-n-1}φ / B(n/2, (d-n)/2) on [0, π/2]
    # (no endpoint singularity for 1 ≤ n ≤ d-1); E[R] = E[φ]/π. Break points around the peak.
    a, b = 0.5 * n, 0.5 * (d - n)
    lnorm = np.log(2.0) - betaln(a, b)

    def f(phi):
        return phi * np.exp(xlogy(n - 1.0, np.cos(phi)) + xlogy(d - n - 1.0, np.sin(phi)) + lnorm)

    mode = np.arctan(np.sqrt(max(d - n - 1.0, 0.0) / max(n - 1.0, 1e-300)))
    width = 1.0 / np.sqrt(d)
    pts = np.clip(mode + width * np.array([-8.0, -4.0, -2.0, -1.0, 0.0, 1.0, 2.0, 4.0, 8.0]), 0.0, HALF_PI)
    pts = np.unique(pts[(pts > 0.0) & (pts < HALF_PI)])
    val, _ = integrate.quad(f, 0.0, HALF_PI, points=pts, epsabs=1e-15, epsrel=1e-13, limit=500)
    return float(val / np.pi)


def iso_gaussian_expected_risk(n, d):
    r"""Exact :math:`E[R(\hat w_n)]` for isotropic Gaussian x in :math:`\mathbb{R}^d`, :math:`\hat w_n = P_nw_*`:

    :math:`E[\arccos\sqrt B]/\pi`, :math:`B\sim\mathrm{Beta}(n/2,(d-n)/2)` for 0 < n < d; 0 for n ≥ d;
    1/2 for n = 0. Scipy quadrature on the host (float64); ``n`` and ``d`` may be arrays (broadcast),
    the result is a float or a numpy array.
    Reference (d = 20): n = 1, 5, 10, 19 → 0.44150, 0.33780, 0.25000, 0.05850 (n = d/2 gives exactly
    1/4 and R(n) + R(d−n) = 1/2 by the Beta symmetry; the 4-digit .2501/.0584 once quoted as reference values are off by 1e-4).
    """
    n_a, d_a = np.asarray(n), np.asarray(d)
    for name, v, lo in (("n", n_a, 0), ("d", d_a, 1)):
        if not np.issubdtype(v.dtype, np.integer) or np.any(v < lo):
            raise InputError(f"iso_gaussian_expected_risk: {name} must be an integer (array) >= {lo}; got {v!r}")
    out = np.vectorize(_iso_risk_scalar, otypes=[np.float64])(n_a, d_a)
    return float(out) if out.ndim == 0 else out


def iso_gaussian_risk(w: Array, w_star: Array) -> Array:
    r"""Exact risk of w for any rotation-invariant :math:`P_x` (e.g. isotropic Gaussian):
    :math:`R(w) = \angle(w, w_*)/\pi`; ``w`` of shape (d,) or (m, d). R(0) = 1/2."""
    w, w_star = jnp.asarray(w), jnp.asarray(w_star)
    num = w @ w_star
    den = jnp.linalg.norm(w, axis=-1) * jnp.linalg.norm(w_star)
    cos = jnp.where(den > 0, num / jnp.where(den > 0, den, 1.0), 0.0)
    return jnp.arccos(jnp.clip(cos, -1.0, 1.0)) / jnp.pi


def geometry_risk(kind: str, d: int, phi, quadrature: int = 96, **params) -> np.ndarray:
    r"""Exact :math:`R(\varphi) = P_x[\mathrm{sign}\,w^\top x \ne \mathrm{sign}\,w_*^\top x]` of a student
    at angle φ ∈ [0, π/2] to :math:`w_*`, for a geometry rotation-invariant about :math:`w_*`
    (:func:`linkd.data.geometry`: ``'margin_cone'`` with ``psi_max``, ``'power_law'`` with ``beta``,
    ``'isotropic'``), in :math:`\mathbb{R}^d`.

    With :math:`x = r s(\sin\bar\theta\,\hat w_* + \cos\bar\theta\,u)`, u uniform on the unit sphere of
    :math:`w_*^\perp`, the signs differ iff :math:`v^\top u > \tan\bar\theta/\tan\varphi = c` (v the unit
    direction of w's component in :math:`w_*^\perp`), and :math:`P[v^\top u > c] = \tfrac12 I_{1-c^2}(\tfrac{d-2}2,
    \tfrac12)` for c < 1 (docs/theory.md §1.4). The average over :math:`\bar\theta` is a ``quadrature``-node
    Gauss–Legendre rule on the host (float64 numpy/scipy); R = φ/π for ``'isotropic'``. ``phi`` of
    any shape (the output has its shape).
    """
    from scipy.special import betainc

    phi = np.asarray(phi, dtype=np.float64)
    if kind == "isotropic":
        return phi / np.pi
    xg, wg = np.polynomial.legendre.leggauss(int(quadrature))
    if kind == "margin_cone":
        psi_max = float(params["psi_max"])
        lo, hi = np.clip((HALF_PI - phi) / psi_max, 0.0, 1.0), np.ones_like(phi)  # θ̄ = π/2 − ψ_max u < φ

        def theta_of(u):
            return HALF_PI - psi_max * u
    elif kind == "power_law":
        beta = float(params["beta"])
        lo, hi = np.zeros_like(phi), np.clip(phi / HALF_PI, 0.0, 1.0) ** beta  # θ̄ = (π/2) u^{1/β} < φ

        def theta_of(u):
            return HALF_PI * u ** (1.0 / beta)
    else:
        raise ConfigError("kind", kind, "'margin_cone', 'power_law', 'isotropic'", "unknown geometry")
    u = lo[..., None] + (hi - lo)[..., None] * (0.5 * (xg + 1.0))
    tphi = np.tan(phi)[..., None]
    with np.errstate(divide="ignore", invalid="ignore"):
        c = np.where(tphi > 0, np.tan(theta_of(u)) / np.where(tphi > 0, tphi, 1.0), np.inf)
    tail = np.where(c < 1.0, 0.5 * betainc(0.5 * (d - 2), 0.5, np.clip(1.0 - c * c, 0.0, 1.0)), 0.0)
    return 0.5 * (hi - lo) * np.sum(wg * tail, axis=-1)


def geometry_risk_table(kind: str, d: int, quadrature: int = 96, table: int = 32769, **params):
    """(φ grid, R(φ)) of :func:`geometry_risk` on ``table`` equally spaced φ in [0, π/2], as device
    arrays (default float dtype); None for ``'isotropic'`` (R = φ/π needs no table)."""
    if kind == "isotropic":
        return None
    grid = np.linspace(0.0, HALF_PI, int(table))
    vals = geometry_risk(kind, d, grid, quadrature, **params)
    dt = default_float()
    return jnp.asarray(grid, dt), jnp.asarray(vals, dt)


def apply_risk_table(kind: str, phi, tab):
    """R(φ) from a :func:`geometry_risk_table` by linear interpolation (jit-friendly; ``tab`` may be traced)."""
    if kind == "isotropic":
        return phi / jnp.pi
    return jnp.interp(phi, tab[0], tab[1])


def geometry_risk_fn(kind: str, d: int, quadrature: int = 96, table: int = 32769, **params):
    r"""jit-friendly ``risk(phi)``: :func:`geometry_risk` tabulated on ``table`` equally spaced φ in
    [0, π/2] and linearly interpolated (error ≲ 1e-7 absolute)."""
    tab = geometry_risk_table(kind, d, quadrature, table, **params)
    return lambda phi: apply_risk_table(kind, phi, tab)


def student_projection(X: Array, w_star: Array) -> Array:
    r""":math:`\hat w_n = P_nw_* = X^+Xw_*` (the soft-CE student from w_0 = 0; vmappable)."""
    return jnp.linalg.pinv(X) @ (X @ w_star)


class LearningCurve(NamedTuple):
    """Monte Carlo learning curve: ``mean[i]`` ± ``se[i]`` estimates :math:`E[R_{n_i}]`."""

    ns: np.ndarray
    mean: Array
    se: Array


def mc_learning_curve(
    key: Array,
    sample_fn: Callable[[Array, int], Array],
    w_star: Array,
    ns: Sequence[int],
    n_sets: int,
    n_test: int,
    *,
    risk_fn: Callable[[Array, Array], Array] | None = None,
    max_floats: int = 2**24,
) -> LearningCurve:
    r"""Monte Carlo :math:`E[R(\hat w_n)]` over ``n_sets`` independent training sets for each n.

    ``sample_fn(key, m)`` draws an (m, d) array of inputs (jax-traceable, used under ``vmap``).
    For each training set :math:`X_n`: :math:`\hat w_n = P_nw_*` (:func:`student_projection`) and
    :math:`R(\hat w_n)` is the disagreement rate with :math:`w_*` on ``n_test`` fresh test points of
    its own (so the standard error across sets accounts for the test noise too); ``sample_fn``
    must draw i.i.d. rows (of ``max(ns) + n_test`` rows, the first n form the training set and the
    last ``n_test`` the test set). With ``risk_fn``
    (e.g. :func:`iso_gaussian_risk`), the exact risk ``risk_fn(w_hat, w_star)`` replaces the test
    points. ``se`` = sample std / √n_sets. One compilation for all n; sets are vmapped in chunks of
    at most ``max_floats`` input floats (``jax.lax.map`` with ``batch_size``).
    """
    w_star = jnp.asarray(w_star)
    ns_arr = _check_curve_args(w_star, ns, n_sets, n_test, exact=risk_fn is not None)
    n_max = int(ns_arr.max())
    n_draw = 0 if risk_fn is not None else int(n_test)  # fresh test rows drawn per set
    batch = int(max(1, min(n_sets, max_floats // ((max(n_draw, 1) + n_max) * w_star.shape[0]))))
    one_set = _set_risk(sample_fn, w_star, n_max, n_draw, risk_fn)

    def per_n(args):
        i, n = args
        keys = jax.random.split(jax.random.fold_in(key, i), int(n_sets))
        if batch >= n_sets:
            risks = jax.vmap(one_set, in_axes=(0, None))(keys, n)
        else:
            risks = jax.lax.map(lambda k: one_set(k, n), keys, batch_size=batch)
        return jnp.mean(risks), jnp.std(risks, ddof=1) / math.sqrt(n_sets)  # a weak float: keeps f32

    idx = jnp.arange(ns_arr.shape[0])
    means, ses = jax.jit(lambda a, b: jax.lax.map(per_n, (a, b)))(idx, jnp.asarray(ns_arr))
    return LearningCurve(ns_arr, means, ses)


def _check_curve_args(w_star: Array, ns, n_sets, n_test, *, exact: bool) -> np.ndarray:
    """Validate :func:`mc_learning_curve`'s arguments; returns ``ns`` as an integer numpy array."""
    if w_star.ndim != 1:
        raise InputError(f"mc_learning_curve: w_star must be a 1-D array (d,); got shape {w_star.shape}")
    ns_arr = np.asarray(ns)
    if ns_arr.ndim != 1 or not np.issubdtype(ns_arr.dtype, np.integer) or np.any(ns_arr < 1):
        raise InputError(f"mc_learning_curve: ns must be a 1-D sequence of integers >= 1; got {ns!r}")
    if not isinstance(n_sets, (int, np.integer)) or n_sets < 2:
        raise InputError(f"mc_learning_curve: n_sets must be an integer >= 2; got {n_sets!r}")
    if not exact and (not isinstance(n_test, (int, np.integer)) or n_test < 1):
        raise InputError(f"mc_learning_curve: n_test must be an integer >= 1 (no risk_fn given); got {n_test!r}")
    return ns_arr


def _set_risk(sample_fn, w_star: Array, n_max: int, n_draw: int, risk_fn) -> Callable[[Array, Array], Array]:
    """``one_set(key, n)``: the risk of :math:`P_nw_*` for one training set of the first n of ``n_max``
    rows drawn by ``sample_fn`` (exact via ``risk_fn``, else on the ``n_draw`` rows drawn after them)."""
    dt = w_star.dtype

    def one_set(k, n):
        # training rows and fresh test rows from one call (one trace of sample_fn); rows i >= n are
        # zeroed: zero rows do not change the span, so P_n w* is exact and one compilation serves every n.
        Z = sample_fn(k, n_max + n_draw)
        X = jnp.where((jnp.arange(n_max) < n)[:, None], Z[:n_max], 0.0)
        w_hat = student_projection(X, w_star)
        if risk_fn is not None:
            return jnp.asarray(risk_fn(w_hat, w_star), dtype=dt)
        Xt = Z[n_max:]
        return jnp.mean((jnp.sign(Xt @ w_hat) != jnp.sign(Xt @ w_star)).astype(dt))

    return one_set
