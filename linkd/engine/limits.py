r"""Step-size limits of an engine run: :math:`\lambda_\max` from the data, the formulas from
:mod:`linkd.stability` (docs/theory.md §1.2, §2.2, §7.2, §8).

* :func:`default_lr` — ``fraction`` × 1/L, L the loss's smoothness (:func:`linkd.stability.smoothness`).
* :func:`check_lr` — refuse η outside (0, 2/L).
* :func:`lr_limit` — the largest stable step of ``spec.optimizer`` for a linear student
  (:math:`\lambda_\max(\hat\Sigma)`, exact) or a deep-linear one (:math:`\lambda_\max(J^\top J/n)`
  at the init, power iteration), and the bound's name.
* :func:`sgd_limit` — minibatch SGD on the squared loss (linear student, plain ``gd`` steps,
  sampling with or without replacement): the second-moment limit :math:`1/\rho(\mathcal T)` of
  :func:`linkd.stability.sgd_second_moment` (docs/theory.md §10.3), stricter than 2/L for small B.
* :func:`refuse_unstable` — the check :func:`linkd.engine.simulate` runs before a single run.
"""
from __future__ import annotations

import weakref

import jax
import jax.numpy as jnp
import numpy as np

from linkd import stability
from linkd.engine.objective import predict
from linkd.engine.sampling import full_batch
from linkd.engine.types import Array, Data, EngineSpec, Hyper, is_linear
from linkd.errors import ConfigError
from linkd.models import depth
from linkd.networks import is_network

__all__ = ["lam_max", "default_lr", "check_lr", "jacobian_top_eig", "lr_limit", "sgd_applies", "sgd_limit",
           "refuse_unstable"]

_LAM_CACHE: dict = {}


def lam_max(X: Array) -> float:
    """Largest eigenvalue of Σ̂ = XᵀX/n (the max over a leading sweep axis, if any), from the
    smaller of the two Gram matrices; cached per jax array object (repeated runs on one data set
    pay it once; :func:`default_lr` on the same X fills the cache)."""
    key = id(X)
    hit = _LAM_CACHE.get(key)
    if hit is not None and hit[0]() is X:
        return hit[1]
    Xa = jnp.asarray(X)
    n, d = Xa.shape[-2], Xa.shape[-1]
    with jax.default_matmul_precision("highest"):
        if n < d:
            G = jnp.einsum("...ni,...mi->...nm", Xa, Xa) / n
        else:
            G = jnp.einsum("...ni,...nj->...ij", Xa, Xa) / n
        lam = float(jnp.max(jnp.linalg.eigvalsh(G)[..., -1]))
    if isinstance(X, jax.Array):  # immutable: safe to cache (a numpy array could change in place)
        def _forget(_ref, k=key) -> None:
            _LAM_CACHE.pop(k, None)

        _LAM_CACHE[key] = (weakref.ref(X, _forget), lam)
    return lam


def default_lr(X: Array, family: str = "mse", fraction: float = 0.9, tau: float = 1.0, tau2_scale: bool = True) -> float:
    r"""A step of ``fraction`` × 1/L, L the loss's smoothness bound (:func:`linkd.stability.smoothness`).

    For MSE, fraction 0.9 gives :math:`\eta\lambda_\max = 0.9` (monotone filters, docs/theory.md §2.2).
    ``X`` may carry a leading sweep axis (S, n, d): λ_max is then the largest over the members, so
    one shared step is stable for every member of the sweep."""
    return fraction / stability.smoothness(family, lam_max(X), tau, tau2_scale)


def check_lr(lr: float, X: Array, family: str, tau: float = 1.0, tau2_scale: bool = True, name: str = "lr") -> None:
    """Refuse a step past the stability limit 2/L with an error naming the field and range."""
    limit = stability.gd_limit(family, lam_max(X), tau, tau2_scale)
    if not (0.0 < float(lr) < limit):
        raise ConfigError(name, float(lr), f"0 < {name} < 2/L = {limit:.6g} (stability limit of the {family} loss on this data)")


def jacobian_top_eig(params0, X: Array) -> float:
    r"""Power-iteration estimate (a lower bound) of :math:`\lambda_\max(J^\top J/n)`, J the
    Jacobian of the outputs (:func:`~linkd.engine.objective.predict`: :math:`z = X\,w_e(\theta)`, or a
    network's f(X), where :math:`J^\top J/n` and :math:`K/n = JJ^\top/n` share λ_max) in all parameters at ``params0``;
    one compilation per parameter structure and shape."""
    return float(_jacobian_top_eig_jit(params0, X))


@jax.jit
def _jacobian_top_eig_jit(params0, X: Array, iters: int = 64) -> Array:
    f = lambda p: predict(p, X)  # noqa: E731
    z, jvp = jax.linearize(f, params0)
    vjp = jax.linear_transpose(jvp, params0)
    n = X.shape[0]

    def body(_, v):
        (u,) = vjp(jvp(v))
        nrm = jnp.sqrt(sum(jnp.sum(x * x) for x in jax.tree_util.tree_leaves(u)))
        return jax.tree_util.tree_map(lambda x: x / jnp.maximum(nrm, 1e-300), u)

    v0 = jax.tree_util.tree_map(lambda x: jnp.ones_like(x) / float(np.sqrt(x.size)), params0)
    with jax.default_matmul_precision("highest"):
        v = jax.lax.fori_loop(0, iters, body, v0)
        Jv = jvp(v)
        vv = sum(jnp.sum(x * x) for x in jax.tree_util.tree_leaves(v))
        return jnp.sum(Jv * Jv) / vv / n


def lr_limit(params0, X: Array, spec: EngineSpec, tau: float = 1.0, momentum: float = 0.9) -> tuple[float, str] | None:
    r"""The largest stable step of ``spec.optimizer`` and the bound's name, or None (Adam: no bound).

    Curvature: linear students :math:`L = ` :func:`linkd.stability.smoothness` of
    :math:`\lambda_\max(\hat\Sigma)` (exact). Deep-linear students: the same with
    :math:`\lambda_\max(J^\top J/n)` at the init (:func:`jacobian_top_eig`;
    :func:`linkd.stability.init_jacobian_limit`, the condition ε < 2/N of docs/theory.md §7.2 at
    the init). The curvature grows as modes are learnt, so passing is necessary, not sufficient:
    later divergence raises :class:`~linkd.errors.DivergenceError`. GD: 2/L; heavy ball 2(1+μ)/L;
    Nesterov 2(1+μ)/((1+2μ)L) (:func:`linkd.stability.momentum_limit`)."""
    if spec.optimizer == "adam":
        return None
    if is_linear(params0):
        limit = stability.gd_limit(spec.family, lam_max(X), float(tau), spec.tau2_scale)
        what = "2/L, L from λ_max(XᵀX/n)"
    else:
        lam = jacobian_top_eig(params0, jnp.asarray(X))
        limit = stability.init_jacobian_limit(spec.family, lam, float(tau), spec.tau2_scale)
        what = ("2/L, L from λ_max(K/n), K the empirical NTK at the init (docs/theory.md §11)" if is_network(params0)
                else f"2/L, L from λ_max(JᵀJ/n) at the init (depth {depth(params0)}, docs/theory.md §7.2)")
    value, formula = stability.momentum_limit(spec.optimizer, limit, momentum)
    return value, what.replace("2/L", formula)


def sgd_applies(params0, X: Array, spec: EngineSpec) -> bool:
    """Whether the SGD second-moment limit governs this run: a linear student, squared loss, plain
    ``gd`` steps on minibatches drawn with or without replacement (not shuffled epochs)."""
    return (spec.family == "mse" and spec.optimizer == "gd" and is_linear(params0)
            and not full_batch(spec, np.shape(X)[-2]) and spec.sampling in stability.SGD_EXACT_SAMPLINGS)


_SGD_CACHE: dict = {}


def sgd_limit(params0, X: Array, spec: EngineSpec, lr: float | None = None) -> tuple[float, float] | None:
    r"""Bracket ``(lo, hi)`` of the SGD second-moment limit :math:`\eta_\max` (docs/theory.md §10.3),
    or None where it does not apply (:func:`sgd_applies`). With ``lr`` the power iteration stops as
    soon as ``lr`` is known to lie below ``lo`` or at/above ``hi`` (cached per jax array X)."""
    if not sgd_applies(params0, X, spec):
        return None
    assert spec.batch_size is not None
    key = (id(X), spec.batch_size, spec.sampling, lr)
    hit = _SGD_CACHE.get(key)
    if hit is not None and hit[0]() is X:
        return hit[1]
    lo, hi, _ = stability.sgd_limit_bracket(np.asarray(X), spec.batch_size, spec.sampling, tol=1e-8,
                                            max_iter=5000, decide_lr=lr)
    if isinstance(X, jax.Array):
        def _forget(_ref, k=key) -> None:
            _SGD_CACHE.pop(k, None)

        _SGD_CACHE[key] = (weakref.ref(X, _forget), (lo, hi))
    return lo, hi


def _refuse_sgd(params0, X: Array, lr: float, spec: EngineSpec) -> None:
    """Refuse ``lr`` at or past the SGD second-moment limit (one line naming lr, B and the limit)."""
    got = sgd_limit(params0, X, spec, lr)
    if got is None or lr < got[0] or (lr < got[1] and lr < 0.5 * (got[0] + got[1])):
        return
    lo, hi = sgd_limit(params0, X, spec) or got
    limit = 0.5 * (lo + hi)
    gd = stability.gd_limit("mse", lam_max(X))
    raise ConfigError("hyper.lr", lr, f"0 < hyper.lr < {limit:.6g}, the SGD second-moment limit 1/ρ(T) for "
                      f"batch_size = {spec.batch_size} ({spec.sampling}; docs/theory.md §10.3; the GD limit 2/λ_max "
                      f"is {gd:.6g})", problem="past the SGD stability limit")


def refuse_unstable(params0, data: Data, hyper: Hyper, spec: EngineSpec) -> None:
    """Refuse a scalar learning rate ≤ 0 or past :func:`lr_limit` (:class:`~linkd.errors.ConfigError`)."""
    if np.ndim(hyper.lr) or np.ndim(hyper.tau) or np.ndim(hyper.momentum):
        return
    lr = float(hyper.lr)
    if not lr > 0.0:
        raise ConfigError("hyper.lr", lr, "a learning rate > 0")
    got = lr_limit(params0, data.X, spec, float(hyper.tau), float(hyper.momentum))
    if got is not None and not lr < got[0]:
        raise ConfigError("hyper.lr", lr, f"0 < hyper.lr < {got[0]:.6g} ({got[1]}, {spec.family} loss, {spec.optimizer})",
                          problem="past the stability limit")
    _refuse_sgd(params0, data.X, lr, spec)
