r"""Linear and deep-linear students as pytrees.

* Linear: the parameters are one array ``w`` of shape (d,) (binary / scalar output) or (d, C)
  (C outputs). Prediction :math:`z = X w`.
* Deep linear: :class:`DeepLinear` holds :math:`(W_1, \dots, W_N)`, :math:`W_1 \in
  \mathbb{R}^{d_1\times d}`, ..., :math:`W_N \in \mathbb{R}^{d_\text{out}\times d_{N-1}}`.
  End-to-end weight :math:`w = (W_N \cdots W_1)^\top` (shape (d,) when d_out = 1, else (d, C)).

Every init takes an explicit ``key``; nothing draws hidden randomness.
"""
from __future__ import annotations

import functools
from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp

from linkd.dtypes import default_float
from linkd.errors import ConfigError, InputError

__all__ = [
    "DeepLinear",
    "init_linear",
    "init_deep_linear",
    "end_to_end",
    "predict",
    "depth",
    "init_deep_aligned",
]

Array = jnp.ndarray


class DeepLinear(NamedTuple):
    """Deep linear network :math:`x \\mapsto W_N \\cdots W_1 x`; ``layers = (W_1, ..., W_N)``."""

    layers: tuple


def init_linear(d: int, n_out: int | None = None, *, scale: float = 0.0, key: Array | None = None) -> Array:
    """Linear weight of shape (d,) (``n_out=None``) or (d, n_out): zeros, or N(0, scale²/d) entries."""
    shape = (d,) if n_out is None else (d, n_out)
    if scale == 0.0:
        return jnp.zeros(shape, default_float())
    if key is None:
        raise InputError(f"init_linear: key must be a PRNG key when scale > 0; got key=None with scale={scale!r}")
    return scale / jnp.sqrt(d) * jax.random.normal(key, shape, default_float())


def init_deep_linear(
    d: int,
    widths: Sequence[int],
    n_out: int | None = None,
    *,
    scale: float,
    key: Array,
    balanced: bool = False,
) -> DeepLinear:
    r"""Deep linear net with hidden ``widths`` (so depth N = len(widths) + 1).

    * ``balanced=False``: i.i.d. Gaussian entries with std ``scale / sqrt(fan_in)``.
    * ``balanced=True`` (Arora et al. 2018): draw an end-to-end matrix A (d_out × d) with
      Frobenius norm ``scale``, A = U Σ Vᵀ, and set :math:`W_j = U_{j+1}\Sigma^{1/N}U_j^\top` with
      :math:`U_1 = V`, :math:`U_{N+1} = U` and random orthonormal :math:`U_j` in between, so that
      :math:`W_{j+1}^\top W_{j+1} = W_j W_j^\top` for all j and :math:`W_N\cdots W_1 = A`.
      Needs every width ≥ r = min(d, d_out).
    """
    widths = tuple(int(h) for h in widths)
    if len(widths) < 1:
        raise InputError(f"init_deep_linear: widths must name at least one hidden layer (depth N >= 2); got widths={widths!r}")
    out = 1 if n_out is None else int(n_out)
    dims = (d,) + widths + (out,)
    N = len(dims) - 1
    keys = jax.random.split(key, N + 1)
    dt = default_float()
    if not balanced:
        layers = tuple(
            scale / jnp.sqrt(dims[j]) * jax.random.normal(keys[j], (dims[j + 1], dims[j]), dt) for j in range(N)
        )
        return DeepLinear(layers)
    r = min(d, out)
    if min(widths) < r:
        raise InputError(f"init_deep_linear: balanced init needs every width >= min(d, n_out) = {r}; got {widths}")
    A = jax.random.normal(keys[0], (out, d), dt)
    A = scale * A / jnp.linalg.norm(A)
    U, s, Vt = jnp.linalg.svd(A, full_matrices=False)  # U (out, r), Vt (r, d)
    frames = [Vt.T]
    for j, h in enumerate(widths):
        Q, _ = jnp.linalg.qr(jax.random.normal(keys[j + 1], (h, r), dt))
        frames.append(Q)
    frames.append(U)
    root = s ** (1.0 / N)
    layers = tuple(frames[j + 1] @ jnp.diag(root) @ frames[j].T for j in range(N))
    return DeepLinear(layers)


def end_to_end(params) -> Array:
    r"""End-to-end weight: ``params`` itself for a linear model, :math:`(W_N\cdots W_1)^\top` for
    :class:`DeepLinear` (squeezed to (d,) when the output dimension is 1)."""
    if isinstance(params, DeepLinear):
        # associate from the output side: (W_N W_{N-1}) ... W_1 costs O(d_out·h·(h + d)) per
        # product instead of O(h²·d) — 20× fewer flops for a scalar output and d ≫ h.
        M = params.layers[-1]
        for W in reversed(params.layers[:-1]):
            M = M @ W
        return M[0] if M.shape[0] == 1 else M.T
    return params


def predict(params, X: Array) -> Array:
    """Outputs (logits or regression values) :math:`z = X w`: shape (n,) or (n, C)."""
    return X @ end_to_end(params)


def depth(params) -> int:
    """N, the number of weight matrices (1 for a linear model)."""
    return len(params.layers) if isinstance(params, DeepLinear) else 1


def init_deep_aligned(V: Array, U: Array, sigma0, depth: int, widths: Sequence[int] | None = None, *,
                      key: Array) -> DeepLinear:
    r"""Balanced aligned init (docs/theory.md §7, A-init): :math:`W_j = R_j\,\mathrm{diag}(\sigma_0^{1/N})R_{j-1}^\top`
    with :math:`R_0 = V_r` (the first r columns of ``V``, (d, ·)), :math:`R_N = U` ((m, r)) and
    random orthonormal :math:`R_j` (h_j, r) in between, so :math:`u_k^\top W_e v_k = \sigma_0` (scalar or
    (r,)) and every other entry of :math:`U^\top W_e V` is 0. ``widths`` (N − 1 hidden sizes, each ≥ r)
    defaults to r. Depth 1 gives :math:`W_1 = U\mathrm{diag}(\sigma_0)V_r^\top`."""
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise ConfigError("depth", depth, "an integer N >= 1")
    V, U = jnp.asarray(V), jnp.asarray(U)
    r = U.shape[1]
    hidden = (r,) * (depth - 1) if widths is None else tuple(int(h) for h in widths)
    if len(hidden) != depth - 1 or any(h < r for h in hidden):
        raise ConfigError("widths", list(hidden), f"{depth - 1} hidden widths, each >= r = {r}")
    s = jnp.broadcast_to(jnp.asarray(sigma0, V.dtype), (r,))
    if not bool(jnp.all(s > 0)):
        raise ConfigError("sigma0", sigma0, "sigma0 > 0 (every mode strength of the init)")
    return DeepLinear(_aligned_layers(key, V, U, s, hidden))


@functools.partial(jax.jit, static_argnums=(4,))
def _aligned_layers(key, V, U, s, hidden):
    r, depth = U.shape[1], len(hidden) + 1
    keys = jax.random.split(key, max(1, depth - 1))
    frames = [V[:, :r]]
    for j, h in enumerate(hidden):
        Q, _ = jnp.linalg.qr(jax.random.normal(keys[j], (h, r), V.dtype))
        frames.append(Q)
    frames.append(U)
    root = s ** (1.0 / depth)
    return tuple((frames[j + 1] * root[None, :]) @ frames[j].T for j in range(depth))
