r"""Teachers along the population eigendirections (docs/theory.md §2.2):
:math:`w_* = \sum_k c_k^* u_k` with :math:`|c_k^*| \propto k^{-\text{profile}}`, and multiclass
:math:`W_* = UA` with :math:`E[A_{kj}^2] \propto k^{-2\,\text{profile}}`."""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from linkd.data._checks import Array, _basis, _eigvals, _int, _real
from linkd.dtypes import default_float

__all__ = ["linear_teacher", "multiclass_teacher"]


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
