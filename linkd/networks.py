r"""Two-layer networks as pytrees (docs/theory.md §11).

.. math::  f(x;\theta) = s_m \sum_{j=1}^m a_j\,\phi(w_j^\top x/\sqrt d),\qquad
           a_j \sim N(0, 1),\ w_j \sim N(0, I_d),

with :math:`s_m = m^{-1/2}` (NTK scaling, the lazy regime at large width) or :math:`s_m = m^{-1}`
(mean-field scaling, the negative control: the features move). :math:`\phi` is ReLU or erf.

:class:`TwoLayer` holds the trainable arrays ``W`` (m, d) and ``a`` (m,) as pytree leaves and the
activation and scaling as static metadata, so ``jax.grad``, ``optax`` and the engine
(:func:`linkd.engine.simulate`) treat it like any other parameter pytree. Every init takes an
explicit ``key``.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp

from linkd.dtypes import default_float
from linkd.errors import InputError

__all__ = ["ACTIVATIONS", "SCALINGS", "TwoLayer", "init_two_layer", "apply", "preactivations", "activation",
           "activation_derivative", "is_network", "num_params"]

ACTIVATIONS = ("relu", "erf")
SCALINGS = ("ntk", "mean_field")
HIGHEST = jax.lax.Precision.HIGHEST


@dataclasses.dataclass(frozen=True)
class TwoLayer:
    """Parameters of :math:`f(x) = s_m\\,a^\\top\\phi(Wx/\\sqrt d)`: ``W`` (m, d), ``a`` (m,) are the
    leaves; ``activation`` (``"relu"``/``"erf"``) and ``scaling`` (``"ntk"``/``"mean_field"``) are
    static. Leaves may carry a leading sweep axis (``engine.sweep`` with ``batched=("params",)``)."""

    W: Any
    a: Any
    activation: str = "relu"
    scaling: str = "ntk"

    @property
    def width(self) -> int:
        """m, the number of hidden units."""
        return int(self.W.shape[-2])

    @property
    def input_dim(self) -> int:
        """d, the input dimension."""
        return int(self.W.shape[-1])

    @property
    def output_scale(self) -> float:
        """:math:`s_m`: :math:`m^{-1/2}` (ntk) or :math:`m^{-1}` (mean_field)."""
        m = self.width
        return 1.0 / math.sqrt(m) if self.scaling == "ntk" else 1.0 / m

    def replace(self, **changes) -> TwoLayer:
        """A copy with some fields replaced (like ``NamedTuple._replace``)."""
        return dataclasses.replace(self, **changes)


jax.tree_util.register_dataclass(TwoLayer, data_fields=["W", "a"], meta_fields=["activation", "scaling"])


def _check_choice(fn: str, name: str, value, allowed) -> str:
    if value not in allowed:
        raise InputError(f"{fn}: {name} = {value!r}; allowed: one of {allowed}")
    return value


def init_two_layer(key, d: int, width: int, *, activation: str = "relu", scaling: str = "ntk") -> TwoLayer:
    """A two-layer network with i.i.d. :math:`w_j \\sim N(0, I_d)` and :math:`a_j \\sim N(0, 1)` in
    the default float dtype (docs/theory.md §11); ``scaling`` sets :math:`s_m` (ntk or mean_field)."""
    fn = "init_two_layer"
    _check_choice(fn, "activation", activation, ACTIVATIONS)
    _check_choice(fn, "scaling", scaling, SCALINGS)
    for name, v in (("d", d), ("width", width)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise InputError(f"{fn}: {name} = {v!r}; allowed: an integer >= 1")
    kw, ka = jax.random.split(key)
    dt = default_float()
    return TwoLayer(jax.random.normal(kw, (width, d), dt), jax.random.normal(ka, (width,), dt), activation, scaling)


def activation(name: str, u):
    """:math:`\\phi(u)`: ReLU max(u, 0) or erf(u)."""
    return jax.nn.relu(u) if name == "relu" else jax.scipy.special.erf(u)


def activation_derivative(name: str, u):
    """:math:`\\phi'(u)`: the step 1[u > 0] (ReLU; 0 at u = 0, as jax's gradient) or
    :math:`(2/\\sqrt\\pi)e^{-u^2}` (erf)."""
    if name == "relu":
        return (u > 0).astype(u.dtype)
    return (2.0 / math.sqrt(math.pi)) * jnp.exp(-u * u)


def preactivations(params: TwoLayer, X) -> jax.Array:
    """:math:`U = XW^\\top/\\sqrt d`, shape (n, m) (one dot at ``Precision.HIGHEST``)."""
    d = params.W.shape[-1]
    U = jax.lax.dot_general(X, params.W, (((X.ndim - 1,), (params.W.ndim - 1,)), ((), ())), precision=HIGHEST)
    return U * (1.0 / math.sqrt(d))


def apply(params: TwoLayer, X) -> jax.Array:
    """Outputs :math:`f(X) = s_m\\,\\phi(U)a`, shape (n,) for X (n, d)."""
    h = activation(params.activation, preactivations(params, X))
    out = jax.lax.dot_general(h, params.a, (((h.ndim - 1,), (0,)), ((), ())), precision=HIGHEST)
    return out * params.output_scale


def is_network(params) -> bool:
    """Whether ``params`` is a :class:`TwoLayer` network."""
    return isinstance(params, TwoLayer)


def num_params(params: TwoLayer) -> int:
    """p = m(d + 1), the number of trainable parameters."""
    return params.width * (params.input_dim + 1)
