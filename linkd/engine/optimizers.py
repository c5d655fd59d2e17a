r"""The optimizers: optax transformations for ``spec.optimizer`` (docs/theory.md §2.2).

``gd``: :math:`w_{t+1} = w_t - \eta\nabla L_t`; ``momentum`` (heavy ball, optax's form
:math:`m_{t+1} = \mu m_t + \nabla L_t`, :math:`w_{t+1} = w_t - \eta m_{t+1}`); ``nesterov``;
``adam`` (b1 = μ). Their quadratic stability limits are in :mod:`linkd.stability`.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from linkd.engine.types import EngineSpec, Hyper

__all__ = ["make_optimizer", "cast_hyper"]


def make_optimizer(spec: EngineSpec, hyper: Hyper) -> optax.GradientTransformation:
    """optax transformation for ``spec.optimizer`` with (possibly traced) ``hyper`` values.

    optax mixes int32 step counts with float arrays (Adam's bias correction), so its calls run
    under standard dtype promotion even when the caller enables strict promotion."""
    opt = _optax_optimizer(spec, hyper)

    def init(params):
        with jax.numpy_dtype_promotion("standard"):
            return opt.init(params)

    def update(g, state, params=None):
        with jax.numpy_dtype_promotion("standard"):
            return opt.update(g, state, params)

    return optax.GradientTransformation(init, update)


def _optax_optimizer(spec: EngineSpec, hyper: Hyper) -> optax.GradientTransformation:
    if spec.optimizer == "gd":
        return optax.sgd(hyper.lr)
    if spec.optimizer == "momentum":
        return optax.sgd(hyper.lr, momentum=hyper.momentum)
    if spec.optimizer == "nesterov":
        return optax.sgd(hyper.lr, momentum=hyper.momentum, nesterov=True)
    return optax.adam(hyper.lr, b1=hyper.momentum)


def cast_hyper(hyper: Hyper, dtype) -> Hyper:
    """Every hyper-parameter as an array of ``dtype`` (the run's float type)."""
    return Hyper(*(jnp.asarray(h, dtype) for h in hyper))
