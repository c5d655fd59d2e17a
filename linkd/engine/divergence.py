r"""Divergence: the first bad step of a run, tracked in the scan's carry (docs/theory.md §2.2).

A step t is bad when the loss :math:`L_t` is non-finite or above ``spec.blowup`` ·
:math:`(1 + |L_0|)`, or the updated state is non-finite. Past the stability limit
:math:`\eta \ge 2/L` GD diverges (:mod:`linkd.stability`); :func:`raise_if_bad` turns the recorded
first bad step into a :class:`~linkd.errors.DivergenceError` naming it (and the sweep member).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from linkd.engine.types import Array, EngineSpec, Hyper, Trajectory
from linkd.errors import DivergenceError

__all__ = ["divergence_limit", "update_bad_step", "all_finite", "raise_if_bad", "finish"]


def divergence_limit(loss0: Array, spec: EngineSpec) -> Array:
    """Losses above ``spec.blowup * (1 + |L_0|)`` count as divergence."""
    return spec.blowup * (1.0 + jnp.abs(loss0))


def update_bad_step(bad: Array, t: Array, loss: Array, state_ok: Array, limit: Array) -> Array:
    """First bad step, updated after step t: ``loss`` is the loss of the state at step t (before
    the update), ``state_ok`` whether the updated state (step t+1) is finite. A bad loss marks
    step t, a bad updated state step t+1; once set, ``bad`` (initially -1) never changes."""
    fin = jnp.isfinite(loss) & (loss <= limit)
    return jnp.where((bad < 0) & ~(fin & state_ok), jnp.where(fin, t + 1, t), bad)


def all_finite(tree) -> Array:
    """True when every entry of every leaf is finite."""
    leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree_util.tree_leaves(tree)]
    return jnp.all(jnp.stack(leaves))


def raise_if_bad(bad_step, hyper: Hyper, spec: EngineSpec) -> None:
    """Raise :class:`~linkd.errors.DivergenceError` naming the first bad step (and sweep member)."""
    bad = np.asarray(bad_step)
    if np.all(bad < 0):
        return
    flat = bad.reshape(-1)
    members = np.flatnonzero(flat >= 0)
    first = int(members[np.argmin(flat[members])])
    member = None if bad.ndim == 0 else first
    lr = np.asarray(hyper.lr).reshape(-1)
    lr_s = f"{lr[first if lr.size > 1 else 0]:.6g}"
    where = "" if member is None else f" (sweep member {member})"
    raise DivergenceError(
        f"run diverged at step {int(flat[first])} of {spec.steps}{where}: the loss or weights became "
        f"non-finite or exceeded {spec.blowup:g}x the initial loss (lr = {lr_s}); lower the learning rate "
        f"below the stability limit 2/L",
        int(flat[first]),
        member,
    )


def finish(coeffs, metrics, params, bad, hyper: Hyper, spec: EngineSpec, check: bool, path: str) -> Trajectory:
    """The :class:`Trajectory` of a single run on ``path``; with ``check``, raise on divergence first."""
    if check:
        raise_if_bad(bad, hyper, spec)
    return Trajectory(spec.recorded_steps, coeffs, metrics, params, bad, path)
