r"""The plain solver: a whole optimizer trajectory as one jitted ``jax.lax.scan`` (docs/theory.md §2.2).

For a linear student the gradient is written out: :math:`\nabla L = X^\top g/n` with :math:`g =
n\,\partial L/\partial z` the per-example derivative in the logits (autodiff of
:func:`~linkd.engine.objective.train_loss` in z only), and the predictions :math:`z = Xw` are
carried from one step to the next: two passes over X per step, as in a hand-written numpy loop.
A linear student on minibatches (:mod:`linkd.engine.sampling`) gathers the B rows of step t and
takes the same written-out gradient on them (two passes over B rows; docs/theory.md §10.1).
Deep-linear students and two-layer networks (docs/theory.md §11; a network's record adds its
outputs on the train and test points) use autodiff of :func:`~linkd.engine.objective.objective`
(tested equal to 1e-12). Every product runs at ``Precision.HIGHEST``.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from linkd.engine.divergence import all_finite, divergence_limit, update_bad_step
from linkd.engine.objective import linear_grad, logits, objective, predict, step_metrics, train_loss
from linkd.engine.optimizers import cast_hyper, make_optimizer
from linkd.engine.recording import count_trace, scan_recorded
from linkd.engine.sampling import draw, full_batch, sampler_init
from linkd.engine.types import Data, EngineSpec, Hyper, Targets, is_linear
from linkd.models import end_to_end
from linkd.networks import is_network
from linkd.spectral import coefficients

__all__ = ["trajectory", "trajectory_jit"]


def trajectory(params0, data: Data, hyper: Hyper, key, spec: EngineSpec):
    """Pure function: (coeffs (R, ...), metrics dict (R,), final params, bad_step)."""
    count_trace()
    with jax.default_matmul_precision("highest"):
        hyper = cast_hyper(hyper, data.X.dtype)
        full = full_batch(spec, data.X.shape[0])
        if is_linear(params0) and full:
            return _linear_full_batch(params0, data, hyper, spec)
        if is_linear(params0):
            return _linear_minibatch(params0, data, hyper, key, spec)
        return _autodiff(params0, data, hyper, key, spec)


def _record_fn(data: Data, hyper: Hyper, spec: EngineSpec, tg: Targets):
    def record(w, z, t):
        zt = None if data.X_test is None else logits(data.X_test, w)
        coeffs = None if data.basis is None else coefficients(w, data.basis)
        return coeffs, step_metrics(z, zt, tg, hyper, t, spec)

    return record


def _network_record(params, data: Data, hyper: Hyper, t, spec: EngineSpec, tg: Targets) -> dict:
    """A network's record (docs/theory.md §11): the metrics, plus its outputs on the training points
    (``outputs``, (n,)) and on the test points (``test_outputs``) when there are any."""
    z = predict(params, data.X)
    zt = None if data.X_test is None else predict(params, data.X_test)
    mets = step_metrics(z, zt, tg, hyper, t, spec)
    mets["outputs"] = z
    if zt is not None:
        mets["test_outputs"] = zt
    return mets


def _linear_full_batch(w0, data: Data, hyper: Hyper, spec: EngineSpec):
    r"""Linear student, full batch: gradient :math:`X^\top(\partial L/\partial z)` (one dot), the
    predictions z = Xw carried to the next step (two passes over X per step)."""
    X, tg = data.X, Targets.of(data)
    opt = make_optimizer(spec, hyper)
    record = _record_fn(data, hyper, spec, tg)
    z0 = logits(X, w0)
    limit = divergence_limit(train_loss(z0, tg.targets, tg.labels, hyper, jnp.asarray(0), spec), spec)

    def step(carry, t):
        w, s, z, bad = carry
        loss, g = linear_grad(z, X, tg, hyper, t, spec)
        upd, s = opt.update(g, s, w)
        w = optax.apply_updates(w, upd)
        # a non-finite w(t+1) makes z(t+1) and so loss(t+1) non-finite: flagged t+1 at the next
        # step (same first bad step as checking w here); the last state is checked after the loop
        return (w, s, logits(X, w), update_bad_step(bad, t, loss, jnp.asarray(True), limit)), None

    carry = (w0, opt.init(w0), z0, jnp.asarray(-1))
    (w, _, _, bad), coeffs, mets = scan_recorded(carry, step, lambda c, t: record(c[0], c[2], t), spec)
    bad = jnp.where((bad < 0) & ~jnp.all(jnp.isfinite(w)), spec.steps, bad)
    return coeffs, mets, w, bad


def _take_rows(a, idx):
    """Rows ``idx`` of ``a`` (None stays None)."""
    return None if a is None else a[idx]


def _linear_minibatch(w0, data: Data, hyper: Hyper, key, spec: EngineSpec):
    r"""Linear student, minibatch SGD: the B rows of step t (:func:`~linkd.engine.sampling.draw`),
    gradient :math:`X_B^\top(\partial L_B/\partial z_B)` written out (:func:`linear_grad`). A bad step
    is flagged from the minibatch loss and the updated weights (as on the autodiff path)."""
    X, tg = data.X, Targets.of(data)
    n = X.shape[0]
    opt = make_optimizer(spec, hyper)
    record = _record_fn(data, hyper, spec, tg)
    limit = divergence_limit(train_loss(logits(X, w0), tg.targets, tg.labels, hyper, jnp.asarray(0), spec), spec)

    def step(carry, t):
        w, s, samp, bad = carry
        idx, samp = draw(samp, key, t, n, spec)
        Xb = X[idx]
        loss, g = linear_grad(logits(Xb, w), Xb, Targets(_take_rows(tg.targets, idx), _take_rows(tg.labels, idx)),
                              hyper, t, spec)
        upd, s = opt.update(g, s, w)
        w = optax.apply_updates(w, upd)
        return (w, s, samp, update_bad_step(bad, t, loss, all_finite(w), limit)), None

    carry = (w0, opt.init(w0), sampler_init(key, n, spec), jnp.asarray(-1))
    (w, _, _, bad), coeffs, mets = scan_recorded(carry, step, lambda c, t: record(c[0], logits(X, c[0]), t), spec)
    return coeffs, mets, w, bad


def _autodiff(params0, data: Data, hyper: Hyper, key, spec: EngineSpec):
    """Deep-linear students and two-layer networks (full batch or minibatches): autodiff of
    :func:`~linkd.engine.objective.objective`."""
    opt = make_optimizer(spec, hyper)
    n = data.X.shape[0]
    full = full_batch(spec, n)
    tg = Targets.of(data)
    record = _record_fn(data, hyper, spec, tg)

    def batch(samp, t):
        if full:
            return (data.X, data.targets, data.labels), samp
        idx, samp = draw(samp, key, t, n, spec)
        return (data.X[idx], _take_rows(data.targets, idx), _take_rows(data.labels, idx)), samp

    loss0 = objective(params0, data.X, data.targets, data.labels, hyper, jnp.asarray(0), spec)
    limit = divergence_limit(loss0, spec)

    def step(carry, t):
        params, opt_state, samp, bad = carry
        (Xb, tb, lb), samp = batch(samp, t)
        loss, g = jax.value_and_grad(objective)(params, Xb, tb, lb, hyper, t, spec)
        updates, opt_state = opt.update(g, opt_state, params)
        params = optax.apply_updates(params, updates)
        return (params, opt_state, samp, update_bad_step(bad, t, loss, all_finite(params), limit)), None

    def rec(c, t):
        if is_network(c[0]):
            return None, _network_record(c[0], data, hyper, t, spec, tg)
        w = end_to_end(c[0])
        return record(w, logits(data.X, w), t)

    carry = (params0, opt.init(params0), sampler_init(key, n, spec), jnp.asarray(-1))
    carry, coeffs, mets = scan_recorded(carry, step, rec, spec)
    return coeffs, mets, carry[0], carry[3]


trajectory_jit = jax.jit(trajectory, static_argnames=("spec",))
