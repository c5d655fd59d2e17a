r"""The linear prediction of a network: its neural tangent kernel and the closed forms in K's eigenbasis
(docs/theory.md §11).

Linearised around its init :math:`\theta_0`, a network is the linear model
:math:`f_\text{lin}(x;\theta) = f(x;\theta_0) + J(x)(\theta-\theta_0)` in the features
:math:`J(x) = \partial f/\partial\theta` (p parameters). Full-batch GD on
:math:`L = \|f - y\|^2/2n` with step η is then GD of §2.2 with X → J; in function space, with the
empirical NTK Gram :math:`K = JJ^\top = \sum_k \kappa_k u_ku_k^\top` and
:math:`\lambda_k = \kappa_k/n` (the eigenvalues of :math:`J^\top J/n`),

.. math::  f_t = y + (I - \eta K/n)^t (f_0 - y),\qquad
           f_t(x) = f_0(x) + K(x, X)\,U\,\mathrm{diag}\!\Big(\frac{1-(1-\eta\lambda_k)^t}{\kappa_k}\Big)U^\top(y - f_0).

* :func:`jacobian`, :func:`gram` — the empirical Jacobian and Gram by autodiff (per-example
  gradients, vmapped), the Gram in row blocks sized to a memory budget (peak bytes reported);
  :func:`gram_two_layer` — the same Gram from the two-layer formula (no Jacobian).
* :func:`dual_kernels`, :func:`analytic_ntk`, :func:`analytic_nngp` — the infinite-width kernel
  :math:`\Theta(x,x') = E[\phi(u)\phi(u')] + (x^\top x'/d)E[\phi'(u)\phi'(u')]`, u = w·x/√d,
  w ~ N(0, I): arc-cosine kernels of degree 1 and 0 for ReLU (Cho & Saul 2009), the closed
  forms of Williams (1997) for erf.
* :func:`kernel_spectrum`, :func:`linearized` — the linearised trajectory on train and test
  points from :func:`linkd.closed_form.gd_mse_trajectory` (X → J in K's eigen-coordinates);
  :func:`eigen_progress`, :func:`predicted_progress`, :func:`distillation_progress`,
  :func:`distillation_gap` — eigen-convergence and the §2.2 distillation filters and exaggeration
  gap with :math:`\lambda_k = \kappa_k/n`.
"""
from __future__ import annotations

import functools
import math
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from linkd import closed_form
from linkd.engine.memory import available_bytes
from linkd.errors import InputError, MemoryBudgetError
from linkd.networks import ACTIVATIONS, TwoLayer, activation_derivative, apply, preactivations
from linkd.networks import activation as phi
from linkd.spectral import Spectrum

__all__ = ["Gram", "Linearized", "dual_kernels", "analytic_ntk", "analytic_nngp", "jacobian", "gram", "gram_bytes",
           "gram_two_layer", "kernel_spectrum", "linearized", "eigen_progress", "predicted_progress",
           "distillation_progress", "distillation_gap"]

HIGHEST = jax.lax.Precision.HIGHEST


# ------------------------------------------------------------------------------ infinite width


def dual_kernels(activation: str, s11, s12, s22) -> tuple[jax.Array, jax.Array]:
    r""":math:`(E[\phi(u)\phi(u')],\ E[\phi'(u)\phi'(u')])` for :math:`(u, u')` centred Gaussian
    with variances s11, s22 and covariance s12 (broadcast).

    ReLU (Cho & Saul 2009, degrees 1 and 0), with :math:`\theta = \angle`:
    :math:`\tfrac{\sqrt{s_{11}s_{22}}}{2\pi}(\sin\theta + (\pi-\theta)\cos\theta)` and
    :math:`(\pi-\theta)/(2\pi)`. erf (Williams 1997), with :math:`D = (1+2s_{11})(1+2s_{22})`:
    :math:`\tfrac2\pi\arcsin(2s_{12}/\sqrt D)` and :math:`\tfrac4\pi(D - 4s_{12}^2)^{-1/2}`."""
    if activation not in ACTIVATIONS:
        raise InputError(f"dual_kernels: activation = {activation!r}; allowed: one of {ACTIVATIONS}")
    s11, s12, s22 = (jnp.asarray(s) for s in (s11, s12, s22))
    if activation == "relu":
        prod = s11 * s22
        sin_part = jnp.sqrt(jnp.maximum(prod - s12 * s12, 0.0))  # sqrt(s11 s22) sin(theta)
        theta = jnp.arctan2(sin_part, s12)
        return (sin_part + (jnp.pi - theta) * s12) / (2 * jnp.pi), (jnp.pi - theta) / (2 * jnp.pi)
    D = (1.0 + 2.0 * s11) * (1.0 + 2.0 * s22)
    root = jnp.sqrt(D - 4.0 * s12 * s12)
    return (2.0 / jnp.pi) * jnp.arctan2(2.0 * s12, root), (4.0 / jnp.pi) / root


def _input_covariances(X1, X2):
    X1 = jnp.asarray(X1)
    X2 = X1 if X2 is None else jnp.asarray(X2)
    if X1.ndim != 2 or X2.ndim != 2 or X1.shape[1] != X2.shape[1]:
        raise InputError(f"analytic_ntk: X1, X2 must be (n1, d) and (n2, d); got shapes {X1.shape}, {X2.shape}")
    d = X1.shape[1]
    dot = lambda A, B: jax.lax.dot_general(A, B, (((1,), (1,)), ((), ())), precision=HIGHEST) / d  # noqa: E731
    s11 = jnp.sum(X1 * X1, axis=1) / d
    s22 = jnp.sum(X2 * X2, axis=1) / d
    return s11[:, None], dot(X1, X2), s22[None, :]


def analytic_ntk(X1, X2=None, *, activation: str = "relu") -> jax.Array:
    r"""Infinite-width NTK :math:`\Theta(X_1, X_2)` (n1, n2) of
    :math:`f = m^{-1/2}\sum_j a_j\phi(w_j^\top x/\sqrt d)` (docs/theory.md §11):
    :math:`E[\phi\phi] + (x^\top x'/d)\,E[\phi'\phi']`, the covariances
    :math:`s_{12} = x^\top x'/d`. For the mean-field scaling the Gram is :math:`\Theta/m`."""
    s11, s12, s22 = _input_covariances(X1, X2)
    nngp, dot_sigma = dual_kernels(activation, s11, s12, s22)
    return nngp + s12 * dot_sigma


def analytic_nngp(X1, X2=None, *, activation: str = "relu") -> jax.Array:
    r"""Infinite-width output covariance at init (NNGP) :math:`E[\phi(u)\phi(u')]` (n1, n2)."""
    s11, s12, s22 = _input_covariances(X1, X2)
    return dual_kernels(activation, s11, s12, s22)[0]


# ------------------------------------------------------------------------------ empirical NTK


class Gram(NamedTuple):
    """An empirical NTK Gram ``K`` (n1, n2), the row ``block`` it was computed in, and
    ``peak_bytes``: what the computation holds at once (:func:`gram_bytes`), from shapes."""

    K: jax.Array
    block: int
    peak_bytes: int


def _jac_rows(flat, unravel, X, fn):
    """(rows, p): the gradient of each example's output, vmapped over the rows of X."""
    one = lambda theta, x: fn(unravel(theta), x[None])[0]  # noqa: E731
    return jax.vmap(jax.grad(one), in_axes=(None, 0))(flat, X)


@functools.partial(jax.jit, static_argnames=("fn",))
def _jacobian_jit(params, X, fn):
    flat, unravel = ravel_pytree(params)
    return _jac_rows(flat, unravel, X, fn)


@functools.partial(jax.jit, static_argnames=("fn",))
def _block_jit(params, X1, X2, fn):
    flat, unravel = ravel_pytree(params)
    J1, J2 = _jac_rows(flat, unravel, X1, fn), _jac_rows(flat, unravel, X2, fn)
    return jax.lax.dot_general(J1, J2, (((1,), (1,)), ((), ())), precision=HIGHEST)


def _num_params(params) -> tuple[int, int]:
    leaves = jax.tree_util.tree_leaves(params)
    return int(sum(x.size for x in leaves)), int(np.dtype(leaves[0].dtype).itemsize)


def _budget(max_bytes) -> int:
    return int(0.5 * available_bytes()) if max_bytes is None else int(max_bytes)


def jacobian(params, X, *, fn: Callable | None = None, max_bytes: int | None = None) -> jax.Array:
    """The full Jacobian :math:`J` (n, p) of the outputs ``fn(params, X)`` (default
    :func:`linkd.networks.apply`) in the flattened parameters (``jax.flatten_util.ravel_pytree``
    order), by per-example gradients. Refused with :class:`~linkd.errors.MemoryBudgetError` when
    2·n·p numbers exceed ``max_bytes`` (default half the available memory): use :func:`gram`."""
    X = jnp.asarray(X)
    p, item = _num_params(params)
    need = 2 * X.shape[0] * p * item
    have = _budget(max_bytes)
    if need > have:
        raise MemoryBudgetError(f"jacobian: the ({X.shape[0]}, {p}) Jacobian needs about {need / 2**20:.1f} MiB but the "
                                f"budget is {have / 2**20:.1f} MiB: compute the Gram in blocks with ntk.gram", need, have)
    return _jacobian_jit(params, X, fn or apply)


def gram_bytes(n1: int, n2: int, p: int, block: int, itemsize: int = 8) -> int:
    """Peak bytes of a blocked Gram, from shapes: K held three times (the padded host array, its
    trimmed copy and the returned device array: 3·n1·n2 numbers) plus, per block pair, two (block, p)
    Jacobians, the per-example gradients they are built from and the contraction's work
    (4·block·p numbers; measured peak 1015 MiB against 938 MiB estimated as n1·n2 + 3·block·p, so one
    more block of p is counted)."""
    return int((3 * n1 * n2 + 4 * block * p) * itemsize)


def _choose_block(n1: int, n2: int, p: int, item: int, budget: int, block: int | None) -> int:
    if block is not None:
        if isinstance(block, bool) or not isinstance(block, int) or block < 1:
            raise InputError(f"gram: block = {block!r}; allowed: None or an integer >= 1")
        return min(block, max(n1, n2))
    b_max = (budget // item - 3 * n1 * n2) // (4 * p)
    if b_max < 1:
        need = gram_bytes(n1, n2, p, 1, item)
        raise MemoryBudgetError(f"gram: a ({n1}, {n2}) Gram with p = {p} parameters needs at least {need / 2**20:.1f} MiB "
                                f"but the budget is {budget / 2**20:.1f} MiB", need, budget)
    n = max(n1, n2)
    blocks = math.ceil(n / min(b_max, n))
    return math.ceil(n / blocks)


def _pad_rows(X, b: int):
    extra = (-X.shape[0]) % b
    return X if extra == 0 else jnp.concatenate([X, jnp.zeros((extra, X.shape[1]), X.dtype)])


def gram(params, X1, X2=None, *, fn: Callable | None = None, max_bytes: int | None = None,
         block: int | None = None) -> Gram:
    r"""Empirical NTK Gram :math:`K = J(X_1)J(X_2)^\top` (n1, n2) by autodiff, in row blocks.

    Each block pair :math:`J_iJ_j^\top` is one compiled call (per-example gradients of
    ``fn(params, X)``, default :func:`linkd.networks.apply`, then one contraction at
    ``Precision.HIGHEST``); the block size is the largest that keeps :func:`gram_bytes` within
    ``max_bytes`` (default half the available memory), rows padded to whole blocks. For
    ``X2=None`` only the blocks on and above the diagonal are computed. Refused with
    :class:`~linkd.errors.MemoryBudgetError` when not even K and one row fit."""
    X1 = jnp.asarray(X1)
    sym = X2 is None
    X2 = X1 if sym else jnp.asarray(X2)
    n1, n2 = X1.shape[0], X2.shape[0]
    p, item = _num_params(params)
    b = _choose_block(n1, n2, p, item, _budget(max_bytes), block)
    fn = fn or apply
    P1, P2 = _pad_rows(X1, b), _pad_rows(X2, b)
    K = np.empty((P1.shape[0], P2.shape[0]), dtype=np.dtype(X1.dtype))
    for i in range(0, P1.shape[0], b):
        for j in range(i if sym else 0, P2.shape[0], b):
            Kij = np.asarray(_block_jit(params, P1[i:i + b], P2[j:j + b], fn))
            K[i:i + b, j:j + b] = Kij
            if sym and j != i:
                K[j:j + b, i:i + b] = Kij.T
    return Gram(jnp.asarray(K[:n1, :n2]), b, gram_bytes(n1, n2, p, b, item))


def gram_two_layer(params: TwoLayer, X1, X2=None) -> jax.Array:
    r"""Empirical NTK Gram of a :class:`~linkd.networks.TwoLayer` from its formula (no Jacobian):
    :math:`K = s_m^2[\phi(U_1)\phi(U_2)^\top + (X_1X_2^\top/d)\odot(\phi'(U_1)\,\mathrm{diag}(a^2)\,\phi'(U_2)^\top)]`,
    :math:`U = XW^\top/\sqrt d` (the ``a`` and ``W`` blocks of :math:`JJ^\top`)."""
    X1 = jnp.asarray(X1)
    return _gram_two_layer_jit(params, X1, X1 if X2 is None else jnp.asarray(X2))


@jax.jit
def _gram_two_layer_jit(params: TwoLayer, X1, X2) -> jax.Array:
    U1, U2 = preactivations(params, X1), preactivations(params, X2)
    act = params.activation
    mm = lambda A, B: jax.lax.dot_general(A, B, (((1,), (1,)), ((), ())), precision=HIGHEST)  # noqa: E731
    a2 = params.a * params.a
    K = mm(phi(act, U1), phi(act, U2)) + mm(X1, X2) / X1.shape[1] * mm(activation_derivative(act, U1) * a2[None, :],
                                                                        activation_derivative(act, U2))
    return K * params.output_scale ** 2


# ------------------------------------------------------------------------------ linearised dynamics


def kernel_spectrum(K, *, rank_tol: float | None = None) -> Spectrum:
    r"""Eigenpairs of :math:`K/n` (K a symmetric PSD n × n Gram): ``eigvals`` :math:`\lambda_k =
    \kappa_k/n` descending with those :math:`\le` ``rank_tol``·λ₁ set to exactly 0 (default: the
    LAPACK-style n·eps·10), ``basis`` U (n, n), each column's largest-magnitude entry positive."""
    K = jnp.asarray(K)
    if K.ndim != 2 or K.shape[0] != K.shape[1]:
        raise InputError(f"kernel_spectrum: K must be a square (n, n) Gram; got shape {K.shape}")
    n = K.shape[0]
    lam, U = jnp.linalg.eigh(0.5 * (K + K.T) / n)
    lam, U = lam[::-1], U[:, ::-1]
    tol = (n * float(np.finfo(np.dtype(K.dtype)).eps) * 10) if rank_tol is None else rank_tol
    lam = jnp.where(lam > tol * jnp.maximum(lam[0], 0.0), lam, 0.0)
    idx = jnp.argmax(jnp.abs(U), axis=0)
    signs = jnp.sign(U[idx, jnp.arange(n)])
    return Spectrum(lam, U * jnp.where(signs == 0, 1.0, signs)[None, :])


class Linearized(NamedTuple):
    r"""The linearised network's trajectory: ``train`` (R, n) outputs :math:`f_t(X)`, ``test``
    (R, n_test) or None, ``coeffs`` (R, n) the feature-space coordinates
    :math:`c_k(t) = v_k^\top(\theta_t - \theta_0)` along :math:`v_k = J^\top u_k/\sqrt{\kappa_k}`."""

    train: jax.Array
    test: jax.Array | None
    coeffs: jax.Array


def linearized(spectrum: Spectrum, f0, y, lr, steps, *, K_test=None, f0_test=None) -> Linearized:
    r"""GD on the linearised network from :math:`\theta_0`, by :func:`linkd.closed_form.gd_mse_trajectory`
    with X → J: in the coordinates :math:`c_k` along :math:`v_k = J^\top u_k/\sqrt{\kappa_k}`,
    :math:`c_k^* = u_k^\top(y - f_0)/\sqrt{\kappa_k}`, :math:`c_k(0) = 0`; then
    :math:`f_t = f_0 + \sum_k\sqrt{\kappa_k}c_k(t)u_k` on the training points and
    :math:`f_t(x) = f_0(x) + \sum_k (K(x,X)u_k/\sqrt{\kappa_k})c_k(t)` on test points
    (``K_test`` = K(X_test, X), (n_test, n); ``f0_test`` the network's test outputs at init).
    Directions with :math:`\kappa_k = 0` do not move. ``steps``: an int (t = 0..steps) or times."""
    lam, U = jnp.asarray(spectrum.eigvals), jnp.asarray(spectrum.basis)
    n = U.shape[0]
    f0, y = jnp.asarray(f0), jnp.asarray(y)
    if f0.shape != (n,) or y.shape != (n,):
        raise InputError(f"linearized: f0 and y must have shape ({n},); got {f0.shape} and {y.shape}")
    if (K_test is None) != (f0_test is None):
        raise InputError("linearized: K_test and f0_test go together; got only one of them")
    root = jnp.sqrt(n * lam)
    safe = jnp.where(lam > 0, root, 1.0)
    c_star = jnp.where(lam > 0, (U.T @ (y - f0)) / safe, 0.0)
    c = closed_form.gd_mse_trajectory(lam, c_star, jnp.zeros_like(c_star), lr, steps)  # (R, n)
    train = f0[None, :] + (c * root[None, :]) @ U.T
    test = None
    if K_test is not None:
        feats = jnp.where(lam[None, :] > 0, (jnp.asarray(K_test) @ U) / safe[None, :], 0.0)  # J(x) v_k
        test = jnp.asarray(f0_test)[None, :] + c @ feats.T
    return Linearized(train, test, c)


def eigen_progress(spectrum: Spectrum, outputs, f0, target) -> jax.Array:
    r"""Measured progress along K's eigenvectors: :math:`q_k = u_k^\top(f - f_0)/u_k^\top(y - f_0)`
    for outputs (..., n) (0 where the denominator is 0); :func:`predicted_progress` predicts it."""
    U = jnp.asarray(spectrum.basis)
    outputs, f0 = jnp.asarray(outputs), jnp.asarray(f0)
    num = (outputs - f0.reshape((1,) * (outputs.ndim - 1) + f0.shape)) @ U
    den = U.T @ (jnp.asarray(target) - f0)
    den = den.reshape((1,) * (num.ndim - 1) + den.shape)
    safe = jnp.where(den == 0, 1.0, den)
    return jnp.where(den == 0, 0.0, num / safe)


def predicted_progress(spectrum: Spectrum, lr, t) -> jax.Array:
    r"""Lazy-regime eigen-convergence :math:`1-(1-\eta\kappa_k/n)^t` (:func:`linkd.closed_form.gd_filter`)."""
    return closed_form.gd_filter(spectrum.eigvals, lr, t)


def distillation_progress(spectrum: Spectrum, lr, T_teacher, t_student) -> jax.Array:
    r"""A student network distilled for t steps on the train outputs of a teacher network trained T
    steps from the same init: :math:`q_k = (1-(1-\eta\lambda_k)^t)(1-(1-\eta\lambda_k)^T)`,
    :math:`\lambda_k = \kappa_k/n` (the §2.2 filters, :func:`linkd.closed_form.teacher_student_filters`),
    progress measured relative to the init (:func:`eigen_progress` with the labels as target)."""
    return closed_form.teacher_student_filters(spectrum.eigvals, lr, T_teacher, t_student)


def distillation_gap(spectrum: Spectrum, lr, T_teacher: int, t_student: int):
    """The matched-progress exaggeration gap of §2.2 in K's eigenbasis
    (:func:`linkd.closed_form.exaggeration_gap` with :math:`\\lambda_k = \\kappa_k/n`)."""
    return closed_form.exaggeration_gap(spectrum.eigvals, lr, T_teacher, t_student)
