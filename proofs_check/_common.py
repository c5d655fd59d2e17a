"""Small helpers shared by the paper modules (public linkd API only)."""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from linkd import engine, spectral
from proofs_check.registry import ClaimResult, active_corrupt, apply, jsonable

__all__ = ["key", "np64", "pick", "cached", "mc_equal", "monotone", "eig", "sim", "until"]

ROUNDOFF = 1e-10  # float64 closed form vs simulation: ~1e-16 per op, amplified by ≤ 1e3-1e4 steps/conditioning
STOP = 1e-6  # runs stopped at ||grad|| <= 1e-12: distance to the limit ~ grad/mu, docs/theory.md §1.2 tolerance


def key(seed: int):
    return jax.random.key(seed)


def np64(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def pick(size: str, fast, full):
    return fast if size == "fast" else full


def cached(fn):
    """Cache a measurement (simulation) by its arguments: breaker tests re-run only the prediction."""
    return functools.lru_cache(maxsize=None)(fn)


def mc_equal(measured, predicted, se, n_se: float = 3.0, *, params=None, note="") -> ClaimResult:
    """|measured − predicted| ≤ n_se·se entrywise; error = max |m − p|/se (in standard errors)."""
    m, p, s = np64(measured), np64(predicted), np64(se)
    z = np.abs(m - p) / np.maximum(s, 1e-300)
    err = float(np.max(z))
    ok = bool(np.all(np.isfinite(m)) and np.all(np.isfinite(p)) and err <= n_se)
    return ClaimResult(jsonable(m), jsonable(p), err, ok, params or {}, note)


def monotone(values, se=None, *, increasing: bool, n_se: float = 3.0, tol: float = 0.0, params=None,
             note="", shown_pred="non-increasing") -> ClaimResult:
    """values non-increasing (or non-decreasing) along the list, within n_se·SE of each step
    difference (independent estimates: SE_diff = sqrt(se_i² + se_{i+1}²)) or within ``tol`` when
    ``se`` is None. error = worst step against the ordering (in SE units, or absolute).

    The ordering passes through the active breaker (part ``"order"``, registry.REVERSE_ORDER), so a
    claim built on this helper is breakable without threading ``corrupt`` through."""
    increasing = apply(active_corrupt(), "order", increasing)
    v = np64(values)
    step = np.diff(v) if not increasing else -np.diff(v)  # > 0 means a violation
    if se is None:
        err = float(np.max(step)) if step.size else -np.inf
        ok = err <= tol
    else:
        s = np64(se)
        sd = np.sqrt(s[1:] ** 2 + s[:-1] ** 2)
        z = np.where(step <= 0, step / np.maximum(sd, 1e-300), np.where(sd > 0, step / np.where(sd > 0, sd, 1.0), np.inf))
        err = float(np.max(z)) if z.size else -np.inf
        ok = err <= n_se
    ok = ok and bool(np.all(np.isfinite(v)))
    return ClaimResult(jsonable(v), shown_pred, err, bool(ok), params or {}, note)


def eig(X):
    """(eigvals, basis) of Σ̂ = XᵀX/n, descending, exact zeros on the null space (numpy)."""
    s = spectral.eigh_desc(X)
    return np64(s.eigvals), np64(s.basis)


def sim(params0, X, targets, lr, steps, *, family="mse", labels=None, basis=None, record_every=1, alpha=0.0,
        tau=1.0, switch_step=None, tau2_scale=False, X_test=None, targets_test=None, labels_test=None,
        batch_size=None, rng=None):
    spec = engine.EngineSpec(family=family, optimizer="gd", steps=int(steps), record_every=int(record_every),
                               batch_size=batch_size, switch_step=switch_step, tau2_scale=tau2_scale)
    d = engine.Data(jnp.asarray(X), jnp.asarray(targets), None if labels is None else jnp.asarray(labels),
                      None if basis is None else jnp.asarray(basis),
                      None if X_test is None else jnp.asarray(X_test),
                      None if targets_test is None else jnp.asarray(targets_test),
                      None if labels_test is None else jnp.asarray(labels_test))
    return engine.simulate(params0, d, engine.Hyper(lr=float(lr), tau=float(tau), alpha=float(alpha)), spec, rng)


def until(params0, X, targets, lr, *, family="binary", grad_tol=1e-12, max_steps=400_000, tau=1.0):
    spec = engine.EngineSpec(family=family, optimizer="gd", steps=int(max_steps), tau2_scale=False)
    d = engine.Data(jnp.asarray(X), jnp.asarray(targets))
    return engine.simulate_until(params0, d, engine.Hyper(lr=float(lr), tau=float(tau)), spec, grad_tol=grad_tol)
