r"""The training engine: a whole gradient-descent trajectory is one jitted ``jax.lax.scan``.

Objective at step t (mean over the batch of per-example losses, :mod:`linkd.losses`):

.. math::  L_t(w) = \alpha_t\,\ell_\text{hard}(Xw, y) + (1-\alpha_t)\,\ell_\text{KD}(Xw, z_T; \tau)

with :math:`\alpha_t` = ``hyper.alpha`` (or 1 before ``spec.switch_step``: late distillation).
Loss families: ``mse`` (hard: :math:`\tfrac12(z-y)^2`, KD: :math:`\tfrac12(z-z_T)^2`), ``binary``
(hard: BCE on {0,1} labels, KD: BCE to :math:`\sigma(z_T/\tau)`), ``multiclass`` (hard: CE on
integer labels, KD: CE to :math:`\mathrm{softmax}(z_T/\tau)`); KD terms carry :math:`\tau^2` when
``spec.tau2_scale``. Hard-label training without a teacher: ``Data(X, targets=None, labels=y)``
with α = 1.

The one engine core, shared by every path (this module, :mod:`linkd.engines`, the sharded sweep):

* :func:`train_loss` — :math:`L_t` as a function of the logits z (the only definition of the loss);
  :func:`objective` = ``train_loss(X @ end_to_end(params))``.
* :func:`metrics` — the recorded metrics from the logits (train and test).
* :func:`update_bad_step` — the first-bad-step (divergence) update, :func:`divergence_limit`.
* :func:`estimate_bytes` — the memory estimate of every path (:class:`Footprint`).
* :func:`predict`, :func:`xt_dot` — :math:`Xw` and :math:`X^\top g` as single dot products at
  ``Precision.HIGHEST`` (no TF32 on a GPU; :math:`X^\top` is never materialised).

For a linear student the gradient is written out: :math:`\nabla L = X^\top g/n` with :math:`g =
n\,\partial L/\partial z` the per-example derivative in the logits (autodiff of :func:`train_loss`
in z only), and the predictions :math:`z = Xw` are carried from one step to the next: two passes
over X per step, as in a hand-written numpy loop. Deep-linear students use autodiff of
:func:`objective` (tested equal to 1e-12).

* :class:`EngineSpec` — static (hashable) choices: family, optimizer, steps, recording, batch.
* :class:`Hyper` — numeric hyper-parameters (lr, τ, α, momentum); :func:`sweep` vmaps them.
* :class:`Data` — arrays: X, teacher outputs z_T, hard labels, recording basis, test set.
* :class:`Trajectory` — recorded steps, coefficients :math:`c_k = v_k^\top w`, metrics, final
  parameters, first bad step (-1 if none) and the engine ``path``; a pytree whose static fields
  (steps, path) survive ``tree_map``; ``traj.member(i)`` takes one sweep member.

A NaN/inf (or a loss above ``spec.blowup``·(1 + L_0)) is tracked in the carry; :func:`simulate`
and :func:`sweep` then raise :class:`~linkd.errors.DivergenceError` naming the first bad step.
"""
from __future__ import annotations

import dataclasses
import os
import weakref
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from linkd import losses
from linkd.errors import ConfigError, DivergenceError, MemoryBudgetError
from linkd.models import depth, end_to_end
from linkd.sharding import padded_size, place_batched, sweep_sharding
from linkd.spectral import coefficients

Array = jnp.ndarray

FAMILIES = ("mse", "binary", "multiclass")
OPTIMIZERS = ("gd", "momentum", "nesterov", "adam")
HIGHEST = jax.lax.Precision.HIGHEST


@dataclasses.dataclass(frozen=True)
class EngineSpec:
    """Static part of a run (changing it recompiles).

    Attributes:
      family: ``"mse"``, ``"binary"`` or ``"multiclass"``.
      optimizer: ``"gd"`` (plain full-batch GD = optax.sgd), ``"momentum"``, ``"nesterov"``, ``"adam"``.
      steps: number of optimizer updates T.
      record_every: record the state every k steps (step 0 and the last step always recorded).
      batch_size: minibatch size (sampled without replacement each step with the run's key);
        ``None`` = full batch.
      switch_step: hard labels only before this step, the α-mixture after (``None`` = never).
      tau2_scale: multiply the KD term by τ².
      blowup: a loss above ``blowup * (1 + |L_0|)`` counts as divergence.
    """

    family: str = "mse"
    optimizer: str = "gd"
    steps: int = 100
    record_every: int = 1
    batch_size: int | None = None
    switch_step: int | None = None
    tau2_scale: bool = True
    blowup: float = 1e12

    def __post_init__(self):
        if self.family not in FAMILIES:
            raise ConfigError("family", self.family, f"one of {FAMILIES}")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError("optimizer", self.optimizer, f"one of {OPTIMIZERS}")
        if not (isinstance(self.steps, (int, np.integer)) and self.steps >= 0):
            raise ConfigError("steps", self.steps, "an integer >= 0")
        if not (isinstance(self.record_every, (int, np.integer)) and self.record_every >= 1):
            raise ConfigError("record_every", self.record_every, "an integer >= 1")
        if self.batch_size is not None and self.batch_size < 1:
            raise ConfigError("batch_size", self.batch_size, "None (full batch) or an integer >= 1")
        if self.switch_step is not None and self.switch_step < 0:
            raise ConfigError("switch_step", self.switch_step, "None or an integer >= 0")

    @property
    def recorded_steps(self) -> np.ndarray:
        """Steps at which the state is recorded: 0, k, 2k, ..., and T."""
        s = np.arange(0, self.steps + 1, self.record_every)
        return s if s[-1] == self.steps else np.append(s, self.steps)


class Hyper(NamedTuple):
    """Numeric hyper-parameters; any leaf may carry a leading sweep axis (see :func:`sweep`).

    ``lr`` η, temperature ``tau`` τ, hard-label weight ``alpha`` α (0 = pure distillation),
    ``momentum`` (momentum/nesterov coefficient, Adam's b1)."""

    lr: Any
    tau: Any = 1.0
    alpha: Any = 0.0
    momentum: Any = 0.9


class Data(NamedTuple):
    """Arrays of one run. ``targets`` are the teacher outputs :math:`z_T` on X (regression
    predictions for ``mse``, logits for ``binary``/``multiclass``), shape (n,) or (n, C) like the
    student's outputs; ``None`` for hard-label training (α = 1). ``labels`` are hard labels
    (regression targets of the outputs' shape, {0,1}, or int classes (n,)); needed if α > 0 or a
    switch is used. ``basis`` (d, m): directions along which coefficients are recorded (None: no
    coefficients). Test arrays are optional; present ones add test metrics to the record."""

    X: Array
    targets: Array | None = None
    labels: Array | None = None
    basis: Array | None = None
    X_test: Array | None = None
    targets_test: Array | None = None
    labels_test: Array | None = None


class Trajectory(NamedTuple):
    """Result of :func:`simulate`: ``steps`` (R,), ``coeffs`` (R, m[, C]) or None, ``metrics``
    (dict of (R,) arrays), final ``params``, ``bad_step`` (-1 if the run stayed finite), ``path``
    (the engine path that produced it: ``plain``, ``eigen``, ``gram``, ``closed_form``).

    A pytree whose leaves are coeffs, metrics, params and bad_step; ``steps`` and ``path`` are
    static (aux data), so ``jax.tree_util.tree_map(f, traj)`` and ``traj._replace(...)`` keep them.
    Sweep outputs carry a leading member axis on every leaf: :meth:`member` takes one member."""

    steps: np.ndarray
    coeffs: Array | None
    metrics: dict
    params: Any
    bad_step: Array
    path: str = "plain"

    def member(self, i: int) -> Trajectory:
        """Sweep member ``i`` as a single-run trajectory (every leaf indexed on its leading axis)."""
        return jax.tree_util.tree_map(lambda x: x[i], self)


def _traj_flatten(t: Trajectory):
    return (t.coeffs, t.metrics, t.params, t.bad_step), (tuple(int(s) for s in np.asarray(t.steps)), t.path)


def _traj_unflatten(aux, children) -> Trajectory:
    coeffs, mets, params, bad_step = children
    return Trajectory(np.asarray(aux[0], dtype=np.int64), coeffs, mets, params, bad_step, aux[1])


jax.tree_util.register_pytree_node(Trajectory, _traj_flatten, _traj_unflatten)


# --------------------------------------------------------------------------------------------
# products with X (one dot each, full precision)


def predict(X: Array, w: Array) -> Array:
    """:math:`z = Xw` (X (n, d), w (d,) or (d, C)) as one dot at ``Precision.HIGHEST``."""
    return jax.lax.dot_general(X, w, (((X.ndim - 1,), (0,)), ((), ())), precision=HIGHEST)


def xt_dot(X: Array, g: Array) -> Array:
    r""":math:`X^\top g` (X (n, d), g (n,) or (n, C)) contracting the batch axis of both: one
    BLAS call with X read in place (no transpose of X is formed), ``Precision.HIGHEST``."""
    return jax.lax.dot_general(X, g, (((0,), (0,)), ((), ())), precision=HIGHEST)


# --------------------------------------------------------------------------------------------
# the objective: one definition, in the logits


def hard_loss(family: str, z: Array, labels: Array) -> Array:
    """Per-example hard-label loss (mse: ½|z-y|², binary: BCE on {0,1}, multiclass: CE on int classes)."""
    if family == "mse":
        return losses.mse(z, labels.astype(z.dtype))
    if family == "binary":
        return losses.binary_soft_ce(z, labels.astype(z.dtype))
    return losses.softmax_ce(z, losses.one_hot(labels, z.shape[-1], z.dtype))


def kd_loss(family: str, z: Array, z_t: Array, tau: Array, tau2_scale: bool) -> Array:
    """Per-example distillation loss to the teacher outputs ``z_t`` at temperature τ."""
    if family == "mse":
        return losses.mse(z, z_t)
    if family == "binary":
        return losses.kd_binary(z, z_t, tau, tau2_scale)
    return losses.kd_softmax(z, z_t, tau, tau2_scale)


def train_loss(z: Array, targets: Array | None, labels: Array | None, hyper: Hyper, step, spec: EngineSpec) -> Array:
    r"""The training loss :math:`L_t` as a function of the logits z (mean over the batch).

    ``targets=None``: hard labels only (the caller ensures α = 1); ``labels=None``: KD only."""
    if targets is None:
        assert labels is not None, "train_loss needs targets or labels"  # Data validation guarantees one
        return jnp.mean(hard_loss(spec.family, z, labels))
    kd = kd_loss(spec.family, z, targets, hyper.tau, spec.tau2_scale)
    if labels is None:
        return jnp.mean(kd)
    a = losses.hard_weight(step, hyper.alpha, spec.switch_step).astype(z.dtype)
    return jnp.mean(losses.mixture(hard_loss(spec.family, z, labels), kd, a))


def objective(params, X, targets, labels, hyper: Hyper, step, spec: EngineSpec) -> Array:
    """Mean loss :math:`L_t` at ``step`` of the student ``params`` (linear or deep-linear)."""
    return train_loss(predict(X, end_to_end(params)), targets, labels, hyper, step, spec)


def errors(family: str, z: Array, ref: Array, ref_is_logits: bool) -> Array:
    """0-1 disagreement (classification) or squared error (mse) per example."""
    if family == "mse":
        r = z - ref.astype(z.dtype)
        return r * r if r.ndim == 1 else jnp.sum(r * r, axis=-1)
    if family == "binary":
        return ((z > 0) != ((ref > 0) if ref_is_logits else (ref > 0.5))).astype(z.dtype)
    lab = jnp.argmax(ref, axis=-1) if ref_is_logits else ref
    return (jnp.argmax(z, axis=-1).astype(lab.dtype) != lab).astype(z.dtype)


class Targets(NamedTuple):
    """What the metrics compare the logits with (train and test), no design matrices."""

    targets: Array | None
    labels: Array | None
    targets_test: Array | None = None
    labels_test: Array | None = None

    @classmethod
    def of(cls, data: Data) -> Targets:
        test = data.X_test is not None
        return cls(data.targets, data.labels, data.targets_test if test else None, data.labels_test if test else None)


def metrics(z: Array, z_test: Array | None, tg: Targets, hyper: Hyper, step, spec: EngineSpec) -> dict:
    """The recorded metrics from train logits z and test logits ``z_test`` (or None), in a fixed
    order: train_loss, train_fidelity_error, train_error, test_loss, test_error, test_kd_loss,
    test_fidelity_error (each present when its inputs are)."""
    fam = spec.family
    rec = {"train_loss": train_loss(z, tg.targets, tg.labels, hyper, step, spec)}
    if tg.targets is not None:
        rec["train_fidelity_error"] = jnp.mean(errors(fam, z, tg.targets, True))
    if tg.labels is not None:
        rec["train_error"] = jnp.mean(errors(fam, z, tg.labels, False))
    if z_test is not None:
        if tg.labels_test is not None:
            rec["test_loss"] = jnp.mean(hard_loss(fam, z_test, tg.labels_test))
            rec["test_error"] = jnp.mean(errors(fam, z_test, tg.labels_test, False))
        if tg.targets_test is not None:
            rec["test_kd_loss"] = jnp.mean(kd_loss(fam, z_test, tg.targets_test, hyper.tau, spec.tau2_scale))
            rec["test_fidelity_error"] = jnp.mean(errors(fam, z_test, tg.targets_test, True))
    return rec


# --------------------------------------------------------------------------------------------
# divergence


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


# --------------------------------------------------------------------------------------------
# optimizer


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


_cast_hyper = cast_hyper  # backward-compatible name


# --------------------------------------------------------------------------------------------
# the recording schedule


def scan_recorded(carry, step_fn, record_fn, spec: EngineSpec):
    """The recording schedule shared by every engine: ``spec.steps`` applications of
    ``step_fn(carry, t) -> (carry, None)`` as nested scans, with ``record_fn(carry, t) ->
    (coeffs or None, metrics dict)`` at steps 0, k, 2k, ..., T (``spec.recorded_steps``).
    Returns ``(carry, coeffs (R, ...) or None, metrics {name: (R,)})``."""
    k = spec.record_every
    n_full, rem = divmod(spec.steps, k)

    def chunk(carry, t0, length):
        carry, _ = jax.lax.scan(step_fn, carry, t0 + jnp.arange(length))
        return carry

    c0, r0 = record_fn(carry, jnp.asarray(0))

    def outer(carry, i):
        carry = chunk(carry, i * k, k)
        return carry, record_fn(carry, (i + 1) * k)

    carry, (cs, rs) = jax.lax.scan(outer, carry, jnp.arange(n_full))
    coeffs = None if c0 is None else jnp.concatenate([c0[None], cs])
    mets = {name: jnp.concatenate([r0[name][None], rs[name]]) for name in r0}
    if rem:
        carry = chunk(carry, n_full * k, rem)
        cl, rl = record_fn(carry, jnp.asarray(spec.steps))
        coeffs = None if cl is None or coeffs is None else jnp.concatenate([coeffs, cl[None]])
        mets = {name: jnp.concatenate([mets[name], rl[name][None]]) for name in mets}
    return carry, coeffs, mets


# --------------------------------------------------------------------------------------------
# the compiled trajectory

_TRACES = {"count": 0}


def trace_count() -> int:
    """How many times the trajectory function has been traced (compilations, for tests)."""
    return _TRACES["count"]


def is_linear(params) -> bool:
    """A linear student: one weight array (not a :class:`~linkd.models.DeepLinear`)."""
    return isinstance(params, (jax.Array, np.ndarray))


def _trajectory(params0, data: Data, hyper: Hyper, key, spec: EngineSpec):
    """Pure function: (coeffs (R, ...), metrics dict (R,), final params, bad_step)."""
    _TRACES["count"] += 1
    with jax.default_matmul_precision("highest"):
        hyper = cast_hyper(hyper, data.X.dtype)
        if is_linear(params0) and (spec.batch_size is None or spec.batch_size >= data.X.shape[0]):
            return _linear_full_batch(params0, data, hyper, spec)
        return _autodiff(params0, data, hyper, key, spec)


def _record_fn(data: Data, hyper: Hyper, spec: EngineSpec, tg: Targets):
    def record(w, z, t):
        zt = None if data.X_test is None else predict(data.X_test, w)
        coeffs = None if data.basis is None else coefficients(w, data.basis)
        return coeffs, metrics(z, zt, tg, hyper, t, spec)

    return record


def linear_grad(z: Array, X: Array, tg: Targets, hyper: Hyper, step, spec: EngineSpec) -> tuple[Array, Array]:
    r"""Loss and gradient of a linear student from its logits z = Xw: :math:`(L_t,\ X^\top g)` with
    :math:`g = \partial L_t/\partial z` (the per-example loss derivative over n; autodiff in z only,
    elementwise), one dot contracting X's batch axis (:func:`xt_dot`)."""
    loss, gz = jax.value_and_grad(train_loss)(z, tg.targets, tg.labels, hyper, step, spec)
    return loss, xt_dot(X, gz)


def _linear_full_batch(w0, data: Data, hyper: Hyper, spec: EngineSpec):
    r"""Linear student, full batch: gradient :math:`X^\top(\partial L/\partial z)` (one dot), the
    predictions z = Xw carried to the next step (two passes over X per step)."""
    X, tg = data.X, Targets.of(data)
    opt = make_optimizer(spec, hyper)
    record = _record_fn(data, hyper, spec, tg)
    z0 = predict(X, w0)
    limit = divergence_limit(train_loss(z0, tg.targets, tg.labels, hyper, jnp.asarray(0), spec), spec)

    def step(carry, t):
        w, s, z, bad = carry
        loss, g = linear_grad(z, X, tg, hyper, t, spec)
        upd, s = opt.update(g, s, w)
        w = optax.apply_updates(w, upd)
        # a non-finite w(t+1) makes z(t+1) and so loss(t+1) non-finite: flagged t+1 at the next
        # step (same first bad step as checking w here); the last state is checked after the loop
        return (w, s, predict(X, w), update_bad_step(bad, t, loss, jnp.asarray(True), limit)), None

    carry = (w0, opt.init(w0), z0, jnp.asarray(-1))
    (w, _, _, bad), coeffs, mets = scan_recorded(carry, step, lambda c, t: record(c[0], c[2], t), spec)
    bad = jnp.where((bad < 0) & ~jnp.all(jnp.isfinite(w)), spec.steps, bad)
    return coeffs, mets, w, bad


def _autodiff(params0, data: Data, hyper: Hyper, key, spec: EngineSpec):
    """Deep-linear students and minibatches: autodiff of :func:`objective`."""
    opt = make_optimizer(spec, hyper)
    n = data.X.shape[0]
    full = spec.batch_size is None or spec.batch_size >= n
    tg = Targets.of(data)
    record = _record_fn(data, hyper, spec, tg)

    def batch(t):
        if full:
            return data.X, data.targets, data.labels
        idx = jax.random.choice(jax.random.fold_in(key, t), n, (spec.batch_size,), replace=False)
        take = lambda a: None if a is None else a[idx]  # noqa: E731
        return data.X[idx], take(data.targets), take(data.labels)

    loss0 = objective(params0, data.X, data.targets, data.labels, hyper, jnp.asarray(0), spec)
    limit = divergence_limit(loss0, spec)

    def step(carry, t):
        params, opt_state, bad = carry
        Xb, tb, lb = batch(t)
        loss, g = jax.value_and_grad(objective)(params, Xb, tb, lb, hyper, t, spec)
        updates, opt_state = opt.update(g, opt_state, params)
        params = optax.apply_updates(params, updates)
        return (params, opt_state, update_bad_step(bad, t, loss, all_finite(params), limit)), None

    def rec(c, t):
        w = end_to_end(c[0])
        return record(w, predict(data.X, w), t)

    carry = (params0, opt.init(params0), jnp.asarray(-1))
    carry, coeffs, mets = scan_recorded(carry, step, rec, spec)
    return coeffs, mets, carry[0], carry[2]


_trajectory_jit = jax.jit(_trajectory, static_argnames=("spec",))


# --------------------------------------------------------------------------------------------
# learning-rate limits


_LAM_CACHE: dict = {}


def _lam_max(X: Array) -> float:
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
    r"""A step of ``fraction`` × 1/L, L the loss's smoothness bound (:func:`linkd.losses.smoothness`).

    For MSE, fraction 0.9 gives :math:`\eta\lambda_\max = 0.9` (monotone filters, docs/theory.md §2.2).
    ``X`` may carry a leading sweep axis (S, n, d): λ_max is then the largest over the members, so
    one shared step is stable for every member of the sweep."""
    return fraction / losses.smoothness(family, _lam_max(X), tau, tau2_scale)


def check_lr(lr: float, X: Array, family: str, tau: float = 1.0, tau2_scale: bool = True, name: str = "lr") -> None:
    """Refuse a step past the stability limit 2/L with an error naming the field and range."""
    limit = losses.stability_limit(family, _lam_max(X), tau, tau2_scale)
    if not (0.0 < float(lr) < limit):
        raise ConfigError(name, float(lr), f"0 < {name} < 2/L = {limit:.6g} (stability limit of the {family} loss on this data)")


def _jacobian_top_eig(params0, X: Array) -> float:
    """Host wrapper: one compilation per parameter structure and shape."""
    return float(_jacobian_top_eig_jit(params0, X))


@jax.jit
def _jacobian_top_eig_jit(params0, X: Array, iters: int = 64) -> Array:
    r"""Power-iteration estimate (a lower bound) of :math:`\lambda_\max(J^\top J/n)`, J the
    Jacobian of the logits :math:`z = X\,w_e(\theta)` in all layer parameters at ``params0``."""
    f = lambda p: predict(X, end_to_end(p))  # noqa: E731
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

    Curvature h: linear students :math:`L = ` :func:`linkd.losses.smoothness` of
    :math:`\lambda_\max(\hat\Sigma)` (exact). Deep-linear students: the same with
    :math:`\lambda_\max(J^\top J/n)` at the init (J the Jacobian of the logits in all layers, power
    iteration): for a balanced aligned init this is :math:`N\lambda_k\sigma_0^{2-2/N}`, i.e. the
    per-mode condition ε < 2/N of docs/theory.md §7.2 at the init. The curvature grows as modes
    are learnt (to :math:`N\lambda_k c_k^{2-2/N}`), so passing is necessary, not sufficient:
    later divergence raises :class:`~linkd.errors.DivergenceError`. GD: 2/L; heavy ball 2(1+μ)/L;
    Nesterov 2(1+μ)/((1+2μ)L) (quadratic stability of optax's forms)."""
    if spec.optimizer == "adam":
        return None
    if is_linear(params0):
        lam, what = _lam_max(X), "2/L, L from λ_max(XᵀX/n)"
    else:
        lam, what = _jacobian_top_eig(params0, jnp.asarray(X)), f"2/L, L from λ_max(JᵀJ/n) at the init (depth {depth(params0)}, docs/theory.md §7.2)"
    limit = losses.stability_limit(spec.family, lam, float(tau), spec.tau2_scale)
    mu = float(momentum)
    if spec.optimizer == "momentum":
        return limit * (1.0 + mu), what.replace("2/L", "2(1+μ)/L")
    if spec.optimizer == "nesterov":
        return limit * (1.0 + mu) / (1.0 + 2.0 * mu), what.replace("2/L", "2(1+μ)/((1+2μ)L)")
    return limit, what


def _refuse_unstable(params0, data: Data, hyper: Hyper, spec: EngineSpec) -> None:
    if np.ndim(hyper.lr) or np.ndim(hyper.tau) or np.ndim(hyper.momentum):
        return
    lr = float(hyper.lr)
    if not lr > 0.0:
        raise ConfigError("hyper.lr", lr, "a learning rate > 0")
    got = lr_limit(params0, data.X, spec, float(hyper.tau), float(hyper.momentum))
    if got is not None and not lr < got[0]:
        raise ConfigError("hyper.lr", lr, f"0 < hyper.lr < {got[0]:.6g} ({got[1]}, {spec.family} loss, {spec.optimizer})",
                          problem="past the stability limit")


# --------------------------------------------------------------------------------------------
# memory: one estimate for every path


class Footprint(NamedTuple):
    """Bytes a run will hold: ``data`` (the Data arrays), ``work`` (what the path adds: Z = XV,
    the basis, Σ̂, ...), ``record`` (recorded coefficients + metrics), ``state`` (parameters,
    optimizer state, carried predictions), ``total``; ``path`` names the engine path."""

    path: str
    data: int
    work: int
    record: int
    state: int
    total: int

    def describe(self) -> str:
        g = lambda b: f"{b / 2**20:.1f} MiB"  # noqa: E731
        return (
            f"linkd {self.path} run: about {g(self.total)} (data {g(self.data)}, work arrays {g(self.work)}, "
            f"recorded {g(self.record)}, state {g(self.state)})"
        )


PATHS = ("closed_form", "gram", "eigen", "plain")
N_METRICS = 8  # upper bound on the scalar metrics recorded per step


def _nbytes(tree) -> int:
    return int(sum(np.dtype(x.dtype).itemsize * int(np.prod(np.shape(x))) for x in jax.tree_util.tree_leaves(tree)))


def eigen_uses_design(n: int, d: int, r: int, design_given: bool) -> bool:
    """Whether the eigen path works on Z = XV_r (n × r) or on X and V (no copy of X): Z when
    the caller passes it or when it is at most half the size of X (r ≤ d/2, e.g. n < d)."""
    return design_given or 2 * r <= d


def estimate_bytes(path: str, w0, data: Data, spec: EngineSpec, *, spectrum=None, record_top: int | None = None,
                   sweep_size: int = 1, design_given: bool = False) -> Footprint:
    """Footprint of a run on ``path`` (one of :data:`PATHS`), from shapes only; ``sweep_size``
    members share the data and multiply the rest."""
    if path not in PATHS:
        raise ConfigError("path", path, f"one of {PATHS}")
    itemsize = np.dtype(data.X.dtype).itemsize
    n, d = data.X.shape[-2:]
    w = end_to_end(w0)
    C = int(np.prod(w.shape[1:])) if w.ndim > 1 else 1
    nt = 0 if data.X_test is None else data.X_test.shape[-2]
    R = len(spec.recorded_steps)
    m = data.basis.shape[-1] if data.basis is not None else (record_top or 0)
    r = d if spectrum is None else spectrum.basis.shape[1]
    p = _nbytes(w0) // itemsize
    basis = 0 if spectrum is None else _nbytes(spectrum)
    if path == "plain":
        work, state = 0, (4 * p + (n + nt) * C) * itemsize
    elif path == "eigen":
        z_bytes = (n + nt) * r * itemsize if eigen_uses_design(n, d, r, design_given) else 0
        work = basis + z_bytes + m * r * itemsize
        state = (3 * r * C + (n + nt) * C + d * C) * itemsize
    elif path == "gram":
        work, state = (d * d + 3 * d * C) * itemsize, 3 * d * C * itemsize
    else:  # closed_form
        work, state = basis + nt * r * itemsize + R * (r + nt) * C * itemsize, 3 * r * C * itemsize
    record = R * (m * C + N_METRICS) * itemsize
    data_b = _nbytes(data)
    S = int(sweep_size)
    return Footprint(path, data_b, work, S * record, S * state, int(data_b + work + S * (record + state)))


def record_bytes(spec: EngineSpec, data: Data, params0, sweep_size: int = 1) -> int:
    """Bytes a plain run holds (:func:`estimate_bytes` on ``plain``): data, recorded arrays and
    optimizer state, the latter two times the sweep size."""
    return estimate_bytes("plain", params0, data, spec, sweep_size=sweep_size).total


def available_bytes() -> int:
    """Memory available to this process (MemAvailable on Linux; env LINKD_MEMORY_LIMIT overrides)."""
    if "LINKD_MEMORY_LIMIT" in os.environ:
        return int(float(os.environ["LINKD_MEMORY_LIMIT"]))
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def check_memory(fp: Footprint, report: Callable[[str], Any] | None = None) -> None:
    """Pass the footprint's one-line description to ``report``; refuse a run needing > 80 % of
    :func:`available_bytes` with :class:`~linkd.errors.MemoryBudgetError`."""
    if report is not None:
        report(fp.describe())
    have = available_bytes()
    if fp.total > 0.8 * have:
        raise MemoryBudgetError(
            f"the {fp.path} run would need about {fp.total / 2**30:.2f} GiB (recorded arrays + data) but only "
            f"{have / 2**30:.2f} GiB is available: raise record.every, lower record.top_m or the sweep size, "
            f"or use a thin basis",
            fp.total,
            have,
        )


# --------------------------------------------------------------------------------------------
# input checks


def _shape_error(field: str, arr, want: str):
    return ConfigError(field, f"shape {tuple(np.shape(arr))}", want, problem="wrong shape")


def _check_outputs(field: str, arr, rows: int, out: tuple, family: str, labels: bool) -> None:
    if arr is None:
        return
    want = (rows,) if (labels and family != "mse") else (rows,) + out
    if tuple(np.shape(arr)) != want:
        kind = "one label per example" if labels and family != "mse" else "one output per example, like the student's"
        raise _shape_error(field, arr, f"shape {want} ({kind})")


def check_shapes(params0, data: Data, family: str | None = None) -> None:
    """Refuse inconsistent shapes with a :class:`~linkd.errors.ConfigError` naming the field."""
    if np.ndim(data.X) != 2:
        raise _shape_error("X", data.X, "shape (n, d)")
    n, d = data.X.shape
    w = end_to_end(params0)
    if w.ndim not in (1, 2) or w.shape[0] != d:
        raise ConfigError("params", f"shape {tuple(w.shape)}", f"leading dimension d = {d} (X has shape {(n, d)})")
    out = tuple(w.shape[1:])
    if family == "binary" and out:
        raise ConfigError("params", f"shape {tuple(w.shape)}", f"shape ({d},) for the binary family (one logit)")
    if family == "multiclass" and not out:
        raise ConfigError("params", f"shape {tuple(w.shape)}", f"shape ({d}, C) for the multiclass family (C logits)")
    if data.targets is None and data.labels is None:
        raise ConfigError("targets", None, "teacher outputs z_T, or hard labels with alpha = 1 (Data(X, targets=None, labels=y))")
    fam = family or "mse"
    _check_outputs("targets", data.targets, n, out, fam, False)
    _check_outputs("labels", data.labels, n, out, fam, True)
    if data.basis is not None and (np.ndim(data.basis) != 2 or data.basis.shape[0] != d):
        raise _shape_error("basis", data.basis, f"shape (d, m) with d = {d}")
    if data.X_test is not None:
        if np.ndim(data.X_test) != 2 or data.X_test.shape[-1] != d:
            raise _shape_error("X_test", data.X_test, f"shape (n_test, {d})")
        nt = data.X_test.shape[0]
        _check_outputs("targets_test", data.targets_test, nt, out, fam, False)
        _check_outputs("labels_test", data.labels_test, nt, out, fam, True)


def check_targets_alpha(data: Data, hyper: Hyper, spec: EngineSpec) -> None:
    """Without teacher outputs the KD weight 1 - α_t must be 0 at every step (α = 1)."""
    if data.targets is None and not np.all(np.asarray(hyper.alpha) == 1.0):
        raise ConfigError("targets", None, f"teacher outputs z_T of shape ({data.X.shape[0]}, ...) when alpha < 1 "
                          f"(alpha = {np.asarray(hyper.alpha).tolist()}), or alpha = 1 for hard-label training",
                          problem="missing")


# --------------------------------------------------------------------------------------------
# public API


def simulate(params0, data: Data, hyper: Hyper, spec: EngineSpec, key: Array | None = None, *, check: bool = True) -> Trajectory:
    """Run ``spec.steps`` optimizer updates from ``params0`` in one compiled scan.

    Returns a :class:`Trajectory`. Raises :class:`~linkd.errors.DivergenceError` naming the first
    bad step, :class:`~linkd.errors.MemoryBudgetError` before starting if the record would not fit,
    :class:`~linkd.errors.ConfigError` on a shape mismatch, missing targets, or (``check=True``) a
    learning rate past the stability limit (:func:`lr_limit`; linear and deep students, every
    family). ``check=False`` runs any step and reports divergence in ``bad_step`` only.
    ``key`` is required for minibatches."""
    check_shapes(params0, data, spec.family)
    check_targets_alpha(data, hyper, spec)
    if spec.batch_size is not None and key is None:
        raise ConfigError("key", None, "an explicit jax.random key when batch_size is set (minibatch SGD)")
    check_memory(estimate_bytes("plain", params0, data, spec))
    if check:
        _refuse_unstable(params0, data, hyper, spec)
    key = jax.random.key(0) if key is None else key  # placeholder: full-batch GD draws nothing from it
    coeffs, mets, params, bad = _trajectory_jit(params0, data, hyper, key, spec)
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
    axis S. With ``sharding`` (:func:`linkd.sharding.sweep_sharding`) the sweep axis is split over
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
            args = [_pad(a, S_pad) if ax is not None else a for a, ax in zip(args[:2], in_axes[:2])] + [
                Hyper(*(_pad(h, S_pad) if ax == 0 else h for h, ax in zip(hyper, hyper_axes or [None] * 4))),
                _pad(key, S_pad) if in_axes[3] == 0 else key]
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
        fn = jax.jit(jax.vmap(lambda p, d, h, k: _trajectory(p, d, h, k, spec), in_axes=in_axes))
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


def sweep_sharded(params0, data: Data, hyper: Hyper, spec: EngineSpec, key: Array | None = None, *,
                  batched: tuple[str, ...] = ("hyper",), check: bool = True, sharding=None) -> Trajectory:
    """:func:`sweep` across all devices (``sharding`` default :func:`linkd.sharding.sweep_sharding`);
    also reachable as ``linkd.sharding.sweep_sharded`` (the older name)."""
    return sweep(params0, data, hyper, spec, key, batched=batched, check=check,
                 sharding=sweep_sharding() if sharding is None else sharding)
