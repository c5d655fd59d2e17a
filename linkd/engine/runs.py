r"""Running the engine: one run, a vmapped sweep (optionally sharded), or a run to convergence.

* :func:`simulate` — ``spec.steps`` optimizer updates on the objective :math:`L_t` of
  :mod:`linkd.engine.objective` in one compiled scan (docs/theory.md §2.2).
* :func:`sweep` — many runs in one compiled, vmapped call; with ``sharding``
  (:func:`linkd.engine.sweep_sharding`) the sweep axis is split over the devices, padded to a
  multiple of the device count by repeating the last member and trimmed back.
* :func:`simulate_until` — steps until :math:`\|\nabla L\| \le` ``grad_tol`` (:class:`Converged`).

A NaN/inf (or a loss above ``spec.blowup``·(1 + L_0)) is tracked in the carry; the runs then
raise :class:`~linkd.errors.DivergenceError` naming the first bad step.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from linkd.engine.checks import check_shapes, check_targets_alpha
from linkd.engine.divergence import raise_if_bad
from linkd.engine.limits import refuse_unstable
from linkd.engine.memory import check_memory, estimate_bytes
from linkd.engine.objective import objective
from linkd.engine.optimizers import cast_hyper, make_optimizer
from linkd.engine.plain import trajectory, trajectory_jit
from linkd.engine.sharding import padded_size, place_batched
from linkd.engine.types import Array, Data, EngineSpec, Hyper, Trajectory
from linkd.errors import ConfigError, DivergenceError

__all__ = ["simulate", "sweep", "Converged", "simulate_until"]


def simulate(params0, data: Data, hyper: Hyper, spec: EngineSpec, key: Array | None = None, *, check: bool = True) -> Trajectory:
    """Run ``spec.steps`` optimizer updates from ``params0`` in one compiled scan.

    Returns a :class:`~linkd.engine.Trajectory`. Raises :class:`~linkd.errors.DivergenceError`
    naming the first bad step, :class:`~linkd.errors.MemoryBudgetError` before starting if the
    record would not fit, :class:`~linkd.errors.ConfigError` on a shape mismatch, missing targets,
    or (``check=True``) a learning rate past the stability limit (:func:`linkd.engine.lr_limit`;
    linear and deep students, every family). ``check=False`` runs any step and reports divergence
    in ``bad_step`` only. ``key`` is required for minibatches."""
    check_shapes(params0, data, spec.family)
    check_targets_alpha(data, hyper, spec)
    if spec.batch_size is not None and key is None:
        raise ConfigError("key", None, "an explicit jax.random key when batch_size is set (minibatch SGD)")
    check_memory(estimate_bytes("plain", params0, data, spec))
    if check:
        refuse_unstable(params0, data, hyper, spec)
    key = jax.random.key(0) if key is None else key  # placeholder: full-batch GD draws nothing from it
    coeffs, mets, params, bad = trajectory_jit(params0, data, hyper, key, spec)
    if check:
        raise_if_bad(bad, hyper, spec)
    return Trajectory(spec.recorded_steps, coeffs, mets, params, bad)


def _axes(tree, batched: bool):
    """in_axes for a pytree: 0 on leaves with a leading sweep axis when ``batched``."""
    if not batched:
        return None
    return jax.tree_util.tree_map(lambda x: 0, tree)


def _sweep_size(params0, data, hyper: Hyper, key, batched) -> int:
    sizes = set()
    if "hyper" in batched:
        sizes |= {np.shape(h)[0] for h in hyper if np.ndim(h) >= 1}
    for name, tree in (("params", params0), ("data", data), ("key", key)):
        if name in batched:
            sizes |= {np.shape(x)[0] for x in jax.tree_util.tree_leaves(tree)}
    if len(sizes) != 1:
        raise ConfigError("sweep", sorted(sizes), "every batched input must share one leading sweep size S")
    return sizes.pop()


def _pad(tree, S_pad: int):
    """Pad every leaf's leading axis to S_pad by repeating the last member (a valid config)."""
    def one(x):
        S = np.shape(x)[0]
        return x if S == S_pad else x[np.minimum(np.arange(S_pad), S - 1)]

    return jax.tree_util.tree_map(one, tree)


def _padded_args(args, in_axes, hyper_axes, S_pad: int):
    """Every batched input padded to S_pad members (:func:`_pad`); shared inputs as they are."""
    params0, data, hyper, key = args
    return [_pad(params0, S_pad) if in_axes[0] is not None else params0,
            _pad(data, S_pad) if in_axes[1] is not None else data,
            Hyper(*(_pad(h, S_pad) if ax == 0 else h for h, ax in zip(hyper, hyper_axes or [None] * 4))),
            _pad(key, S_pad) if in_axes[3] == 0 else key]


def sweep(
    params0,
    data: Data,
    hyper: Hyper,
    spec: EngineSpec,
    key: Array | None = None,
    *,
    batched: tuple[str, ...] = ("hyper",),
    check: bool = True,
    sharding=None,
) -> Trajectory:
    """Many runs in one compiled, vmapped call.

    ``batched`` names which of ``"params"``, ``"data"``, ``"hyper"``, ``"key"`` carry a leading
    sweep axis of size S. In ``hyper``, only leaves with ndim ≥ 1 are swept (scalars are shared),
    so ``Hyper(lr=jnp.array([...]))`` sweeps learning rates alone. Every output gains the leading
    axis S. With ``sharding`` (:func:`linkd.engine.sweep_sharding`) the sweep axis is split over
    the mesh's devices: batched inputs are padded to a multiple of the device count (repeating the
    last member), placed, run with no communication, and the outputs trimmed back to S.
    Learning rates are not refused up front (a sweep may probe past the limit on purpose): a
    diverging member raises :class:`~linkd.errors.DivergenceError` naming it (``check=True``)."""
    hyper = Hyper(*(jnp.asarray(h) for h in hyper))
    S = _sweep_size(params0, data, hyper, key, batched)
    if spec.batch_size is not None and key is None:
        raise ConfigError("key", None, "an explicit jax.random key (or S keys) when batch_size is set")
    key = jax.random.key(0) if key is None else key  # placeholder: full-batch GD draws nothing from it
    one = lambda tree, name: tree if name not in batched else jax.tree_util.tree_map(lambda x: x[0], tree)  # noqa: E731
    check_shapes(one(params0, "params"), one(data, "data"), spec.family)
    check_targets_alpha(data, hyper, spec)
    check_memory(estimate_bytes("plain", one(params0, "params"), one(data, "data"), spec, sweep_size=S))
    hyper_axes = Hyper(*(0 if h.ndim >= 1 else None for h in hyper)) if "hyper" in batched else None
    in_axes = (_axes(params0, "params" in batched), _axes(data, "data" in batched), hyper_axes, 0 if "key" in batched else None)
    args = [params0, data, hyper, key]
    S_pad = S
    if sharding is not None:
        S_pad = padded_size(S, sharding)
        if S_pad != S:
            args = _padded_args(args, in_axes, hyper_axes, S_pad)
        args = place_batched(args, in_axes, sharding)
    coeffs, mets, params, bad = _sweep_fn(in_axes, spec)(*args)
    tr = Trajectory(spec.recorded_steps, coeffs, mets, params, bad)
    if S_pad != S:
        tr = Trajectory(tr.steps, *jax.tree_util.tree_map(lambda x: x[:S], (coeffs, mets, params, bad)))
    if check:
        raise_if_bad(tr.bad_step, hyper, spec)
    return tr


_SWEEP_CACHE: dict = {}


def _sweep_fn(in_axes, spec):
    """One jitted vmap per (in_axes structure, spec): repeated sweeps reuse the compilation."""
    cache_key = (jax.tree_util.tree_structure(in_axes, is_leaf=lambda x: x is None), str(in_axes), spec)
    fn = _SWEEP_CACHE.get(cache_key)
    if fn is None:
        fn = jax.jit(jax.vmap(lambda p, d, h, k: trajectory(p, d, h, k, spec), in_axes=in_axes))
        _SWEEP_CACHE[cache_key] = fn
    return fn


class Converged(NamedTuple):
    """Result of :func:`simulate_until`: final params, steps taken, final gradient norm, loss."""

    params: Any
    steps: Array
    grad_norm: Array
    loss: Array


def _until(params0, data: Data, hyper: Hyper, grad_tol, spec: EngineSpec):
    with jax.default_matmul_precision("highest"):
        hyper = cast_hyper(hyper, data.X.dtype)
        opt = make_optimizer(spec, hyper)

        def val_grad(p, t):
            return jax.value_and_grad(objective)(p, data.X, data.targets, data.labels, hyper, t, spec)

        def gnorm(g):
            return jnp.sqrt(sum(jnp.sum(x * x) for x in jax.tree_util.tree_leaves(g)))

        loss0, g0 = val_grad(params0, jnp.asarray(0))

        def cond(c):
            _, _, t, g, loss = c
            return (t < spec.steps) & (gnorm(g) > grad_tol) & jnp.isfinite(loss)

        def body(c):
            p, s, t, g, _ = c
            u, s = opt.update(g, s, p)
            p = optax.apply_updates(p, u)
            loss, g = val_grad(p, t + 1)
            return p, s, t + 1, g, loss

        p, _, t, g, loss = jax.lax.while_loop(cond, body, (params0, opt.init(params0), jnp.asarray(0), g0, loss0))
        return p, t, gnorm(g), loss


_until_jit = jax.jit(_until, static_argnames=("spec",))


def simulate_until(params0, data: Data, hyper: Hyper, spec: EngineSpec, grad_tol: float = 1e-12) -> Converged:
    r"""Full-batch optimizer steps until :math:`\|\nabla L\| \le` ``grad_tol`` (at most
    ``spec.steps`` steps, one gradient evaluation per step). Raises
    :class:`~linkd.errors.DivergenceError` if the tolerance is not met within ``spec.steps`` or
    the loss becomes non-finite."""
    check_shapes(params0, data, spec.family)
    check_targets_alpha(data, hyper, spec)
    p, t, gn, loss = _until_jit(params0, data, hyper, jnp.asarray(grad_tol, data.X.dtype), spec)
    if not np.isfinite(float(loss)):
        raise DivergenceError(f"run diverged at step {int(t)}: the loss became non-finite (lr = {float(hyper.lr):.6g})", int(t))
    if float(gn) > grad_tol:
        raise DivergenceError(
            f"gradient norm {float(gn):.3g} still above grad_tol = {grad_tol:g} after {int(t)} steps: "
            f"raise steps (now {spec.steps}) or the learning rate",
            int(t),
        )
    return Converged(p, t, gn, loss)
