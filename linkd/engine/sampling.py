r"""Minibatch sampling: which rows of X step t uses (docs/theory.md §10.1, §10.5).

``spec.sampling`` (with ``spec.batch_size`` = B):

* ``"with_replacement"`` — B indices i.i.d. uniform on {0, …, n−1} each step (the scheme whose
  moments :mod:`linkd.closed_form.sgd` predicts exactly; B ≥ n is still stochastic);
* ``"without_replacement"`` — B distinct indices drawn afresh each step (also exact: the gradient
  covariance carries the finite-population factor :math:`(n-B)/(n-1)`);
* ``"shuffled"`` — epochs: one random permutation per epoch, cut into :math:`\lfloor n/B\rfloor`
  consecutive batches (the last n mod B points of each permutation are dropped). Not covered by
  the closed forms: its deviation from them is measured (docs/theory.md §10.5).

Step t draws from ``fold_in(key, t)`` (``fold_in(key, epoch)`` for shuffled epochs), so a run is a
pure function of its key. The shuffled permutation is carried in the scan state and redrawn under a
``lax.cond`` whose predicate depends on t only, so it stays a branch (not a select) under ``vmap``.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from linkd.engine.types import Array, EngineSpec

__all__ = ["full_batch", "sampler_init", "draw"]


def full_batch(spec: EngineSpec, n: int) -> bool:
    """Whether every step uses all n rows: no ``batch_size``, or B ≥ n without replacement."""
    return spec.batch_size is None or (spec.sampling != "with_replacement" and spec.batch_size >= n)


def _epoch_batches(spec: EngineSpec, n: int) -> int:
    assert spec.batch_size is not None
    return max(n // spec.batch_size, 1)


def sampler_init(key: Array, n: int, spec: EngineSpec) -> Array:
    """The sampler's carried state: the epoch-0 permutation (shuffled) or a placeholder."""
    if spec.sampling == "shuffled" and not full_batch(spec, n):
        return jax.random.permutation(jax.random.fold_in(key, 0), n)
    return jnp.zeros((), jnp.int32)


def draw(state: Array, key: Array, t: Array, n: int, spec: EngineSpec) -> tuple[Array, Array]:
    """``(indices (B,), new state)`` of step t."""
    B = spec.batch_size
    assert B is not None
    if spec.sampling == "with_replacement":
        return jax.random.randint(jax.random.fold_in(key, t), (B,), 0, n), state
    if spec.sampling == "without_replacement":
        return jax.random.choice(jax.random.fold_in(key, t), n, (B,), replace=False), state
    per = _epoch_batches(spec, n)
    j = t % per
    state = jax.lax.cond((j == 0) & (t > 0), lambda: jax.random.permutation(jax.random.fold_in(key, t // per), n),
                         lambda: state)
    return jax.lax.dynamic_slice(state, (j * B,), (B,)), state

