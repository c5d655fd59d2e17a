r"""Phuong–Lampert data geometries (docs/theory.md §1.4), each with its exact
:math:`p(\theta) = P[\bar\theta \le \theta]`.

:math:`\bar\theta(x)\in[0,\pi/2]` is the angle between x and the teacher hyperplane
:math:`w_*^\perp`, :math:`\sin\bar\theta = |w_*^\top x|/(\|w_*\|\|x\|)`. Samplers and exact p:
:func:`margin_cone` / :func:`margin_cone_p`, :func:`power_law_angle` / :func:`power_law_angle_p`,
:func:`isotropic` / :func:`isotropic_p`; dispatchers :func:`geometry`, :func:`geometry_p`."""
from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp

from linkd.data._checks import Array, _check_params, _concrete, _float, _int, _kind, _matrix, _real
from linkd.dtypes import default_float
from linkd.errors import InputError

__all__ = ["GEOMETRY_KINDS", "margin_cone", "margin_cone_p", "power_law_angle", "power_law_angle_p", "isotropic",
           "isotropic_p", "geometry", "geometry_p"]

GEOMETRY_KINDS = ("margin_cone", "power_law", "isotropic")


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
