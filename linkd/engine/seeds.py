r"""Many seeds of one stochastic run in one compiled ``vmap``, and their Monte Carlo moments.

:func:`simulate_seeds` runs S independent minibatch-SGD trajectories (same data and
hyper-parameters, one init or a Gaussian random init; keys ``jax.random.split(key, S)``) through
:func:`linkd.engine.sweep` with the parameter and key axes batched, in chunks of at most ``chunk`` seeds (every chunk the same size, so it compiles
once). :func:`seed_moments` gives the mean and covariance of the recorded coefficients
:math:`c_k = v_k^\top w` over the seeds with their standard errors: the Monte Carlo side of the exact
moments of :mod:`linkd.closed_form.sgd` (docs/theory.md §10.1).
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from linkd.engine.limits import refuse_unstable
from linkd.engine.runs import sweep
from linkd.engine.types import Array, Data, EngineSpec, Hyper, Trajectory
from linkd.errors import ConfigError

__all__ = ["simulate_seeds", "SeedMoments", "seed_moments"]


def simulate_seeds(params0, data: Data, hyper: Hyper, spec: EngineSpec, key: Array, seeds: int, *,
                   init_cov=None, chunk: int | None = None, check: bool = True, sharding=None) -> Trajectory:
    r"""``seeds`` runs of ``spec`` with keys ``jax.random.split(key, seeds)``: a
    :class:`~linkd.engine.Trajectory` whose every leaf has a leading seed axis (S, ...).

    Every run starts at ``params0``, or, with ``init_cov`` (d, d) (linear students), at
    :math:`w_0 + L z_s`, :math:`LL^\top` = ``init_cov``, :math:`z_s \sim N(0, I)` drawn from
    ``fold_in(key, 2**31 - 1)``. The parameters always carry the seed axis, so a fixed and a random init
    share one compilation. ``chunk`` (default: all at once) bounds the seeds per compiled call
    (memory: the recorded coefficients and the gathered batches scale with it). ``check=True``
    refuses a learning rate past the stability limit first (for minibatch SGD on the squared loss
    the second-moment limit, :func:`linkd.engine.limits.sgd_limit`) and raises on divergence;
    ``sharding`` splits each chunk over devices (:func:`linkd.engine.sweep_sharding`)."""
    if not (isinstance(seeds, (int, np.integer)) and seeds >= 1):
        raise ConfigError("seeds", seeds, "an integer >= 1")
    size = int(seeds) if chunk is None else int(chunk)
    if size < 1:
        raise ConfigError("chunk", chunk, "None (all seeds at once) or an integer >= 1")
    size = min(size, int(seeds))
    if check:
        refuse_unstable(params0, data, hyper, spec)
    n_chunks = -(-int(seeds) // size)
    keys = jax.random.split(key, n_chunks * size)
    params = _initial(params0, init_cov, jax.random.fold_in(key, 2**31 - 1), n_chunks * size)
    parts = [sweep(jax.tree_util.tree_map(lambda x: x[i * size:(i + 1) * size], params), data, hyper, spec,
                   keys[i * size:(i + 1) * size], batched=("params", "key"), check=check, sharding=sharding)
             for i in range(n_chunks)]
    if len(parts) == 1 and n_chunks * size == seeds:
        return parts[0]
    return jax.tree_util.tree_map(lambda *xs: jnp.concatenate(xs)[:seeds], *parts)


def _initial(params0, init_cov, key: Array, S: int):
    """S copies of ``params0`` (a leading seed axis on every leaf), plus Gaussian noise of
    covariance ``init_cov`` for a linear student."""
    tiled = jax.tree_util.tree_map(lambda x: jnp.broadcast_to(x, (S,) + jnp.shape(x)), params0)
    if init_cov is None:
        return tiled
    w = jnp.asarray(params0)
    C = jnp.asarray(init_cov, w.dtype)
    if w.ndim != 1 or C.shape != (w.shape[0], w.shape[0]):
        raise ConfigError("init_cov", f"shape {tuple(np.shape(init_cov))}", "a (d, d) covariance for a linear student w (d,)")
    lam, U = jnp.linalg.eigh(0.5 * (C + C.T))
    L = U * jnp.sqrt(jnp.clip(lam, 0.0, None))[None, :]
    z = jax.random.normal(key, (S, w.shape[0]), w.dtype)
    return tiled + z @ L.T


class SeedMoments(NamedTuple):
    """Monte Carlo moments of coefficients over S seeds, per recorded step: ``mean`` (R, m),
    ``cov`` (R, m, m), ``var`` (R, m), standard errors ``se_mean`` (R, m), ``se_cov`` (R, m, m),
    ``se_var`` (R, m), and ``seeds`` S. With a given ``centre`` the second moments are about it
    (unbiased when it is the true mean), else about the sample mean (divisor S − 1)."""

    mean: np.ndarray
    cov: np.ndarray | None
    var: np.ndarray
    se_mean: np.ndarray
    se_cov: np.ndarray | None
    se_var: np.ndarray
    seeds: int


def seed_moments(coeffs, centre=None, *, full: bool = True) -> SeedMoments:
    """:class:`SeedMoments` of ``coeffs`` (S, R, m) (a :func:`simulate_seeds` trajectory's
    ``coeffs``), in float64. The SE of a covariance entry is the sample SD of the products
    :math:`(c_k - \\mu_k)(c_l - \\mu_l)` over :math:`\\sqrt S`. ``full=False`` computes the variances
    only (``cov``, ``se_cov`` None; memory S·R·m instead of S·R·m²)."""
    c = np.asarray(coeffs, dtype=np.float64)
    if c.ndim != 3 or c.shape[0] < 2:
        raise ConfigError("coeffs", f"shape {c.shape}", "an array (S, R, m) with S >= 2 seeds (simulate_seeds(...).coeffs)")
    S = c.shape[0]
    mean = c.mean(axis=0)
    se_mean = c.std(axis=0, ddof=1) / np.sqrt(S)
    mu = mean if centre is None else np.broadcast_to(np.asarray(centre, dtype=np.float64), mean.shape)
    dev = c - mu[None]
    div = S - 1 if centre is None else S
    sq = dev * dev
    var, se_var = sq.sum(axis=0) / div, sq.std(axis=0, ddof=1) / np.sqrt(S)
    if not full:
        return SeedMoments(mean, None, var, se_mean, None, se_var, S)
    prod = dev[..., :, None] * dev[..., None, :]  # (S, R, m, m)
    cov, se_cov = prod.sum(axis=0) / div, prod.std(axis=0, ddof=1) / np.sqrt(S)
    return SeedMoments(mean, cov, var, se_mean, se_cov, se_var, S)
