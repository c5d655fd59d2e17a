r"""The training engine: a whole gradient-descent trajectory is one jitted ``jax.lax.scan``.

Objective at step t (mean over the batch of per-example losses, :mod:`linkd.losses`):

.. math::  L_t(w) = \alpha_t\,\ell_\text{hard}(Xw, y) + (1-\alpha_t)\,\ell_\text{KD}(Xw, z_T; \tau)

with :math:`\alpha_t` = ``hyper.alpha`` (or 1 before ``spec.switch_step``: late distillation).
Loss families: ``mse`` (hard: :math:`\tfrac12(z-y)^2`, KD: :math:`\tfrac12(z-z_T)^2`), ``binary``
(hard: BCE on {0,1} labels, KD: BCE to :math:`\sigma(z_T/\tau)`), ``multiclass`` (hard: CE on
integer labels, KD: CE to :math:`\mathrm{softmax}(z_T/\tau)`); KD terms carry :math:`\tau^2` when
``spec.tau2_scale``.

* :class:`EngineSpec` — static (hashable) choices: family, optimizer, steps, recording, batch.
  One compilation per (spec, shapes, dtypes).
* :class:`Hyper` — numeric hyper-parameters (lr, τ, α, momentum) as arrays: ``jax.vmap`` sweeps
  them in one compiled call (:func:`sweep`).
* :class:`Data` — arrays: X, teacher outputs z_T, hard labels, recording basis, test set.
* :class:`Trajectory` — recorded steps, eigen-coefficients :math:`c_k = v_k^\top w`, metrics,
  final parameters and the first bad step (-1 if none).

A NaN/inf (or a loss above ``spec.blowup``·(1 + L_0)) stops nothing inside the compiled loop
(that would need a host sync per step) but is tracked in the carry; :func:`simulate` and
:func:`sweep` then raise :class:`~linkd.errors.DivergenceError` naming the first bad step.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from linkd import losses as L
from linkd.errors import ConfigError, DivergenceError, MemoryBudgetError
from linkd.models import end_to_end
from linkd.spectral import coefficients

Array = jnp.ndarray

FAMILIES = ("mse", "binary", "multiclass")
OPTIMIZERS = ("gd", "momentum", "nesterov", "adam")


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
    predictions for ``mse``, logits for ``binary``/``multiclass``). ``labels`` are hard labels
    (regression targets, {0,1}, or int classes); needed only if α > 0 or a switch is used.
    ``basis`` (d, m): directions along which coefficients are recorded (None: no coefficients).
    Test arrays are optional; present ones add test metrics to the record."""

    X: Array
    targets: Array
    labels: Array | None = None
    basis: Array | None = None
    X_test: Array | None = None
    targets_test: Array | None = None
    labels_test: Array | None = None


class Trajectory(NamedTuple):
    """Result of :func:`simulate`: ``steps`` (R,), ``coeffs`` (R, m[, C]) or None, ``metrics``
    (dict of (R,) arrays), final ``params``, ``bad_step`` (-1 if the run stayed finite)."""

    steps: np.ndarray
    coeffs: Array | None
    metrics: dict
    params: Any
    bad_step: Array


# --------------------------------------------------------------------------------------------
# objective


def _hard_loss(family: str, z: Array, labels: Array) -> Array:
    if family == "mse":
        return L.mse(z, labels)
    if family == "binary":
        return L.binary_soft_ce(z, labels.astype(z.dtype))
    return L.softmax_ce(z, L.one_hot(labels, z.shape[-1], z.dtype))


def _kd_loss(family: str, z: Array, z_t: Array, tau: Array, tau2_scale: bool) -> Array:
    if family == "mse":
        return L.mse(z, z_t)
    if family == "binary":
        return L.kd_binary(z, z_t, tau, tau2_scale)
    return L.kd_softmax(z, z_t, tau, tau2_scale)


def objective(params, X, targets, labels, hyper: Hyper, step, spec: EngineSpec) -> Array:
    """Mean loss :math:`L_t` at ``step`` (see module docstring)."""
    z = X @ end_to_end(params)
    kd = _kd_loss(spec.family, z, targets, hyper.tau, spec.tau2_scale)
    if labels is None:
        return jnp.mean(kd)
    a = L.hard_weight(step, hyper.alpha, spec.switch_step).astype(z.dtype)
    return jnp.mean(L.mixture(_hard_loss(spec.family, z, labels), kd, a))


def _errors(family: str, z: Array, ref: Array, ref_is_logits: bool) -> Array:
    """0-1 disagreement (classification) or squared error (mse) per example."""
    if family == "mse":
        r = z - ref
        return r * r if r.ndim == 1 else jnp.sum(r * r, axis=-1)
    if family == "binary":
        return ((z > 0) != ((ref > 0) if ref_is_logits else (ref > 0.5))).astype(z.dtype)
    lab = jnp.argmax(ref, axis=-1) if ref_is_logits else ref
    return (jnp.argmax(z, axis=-1).astype(lab.dtype) != lab).astype(z.dtype)


def _record(params, data: Data, hyper: Hyper, step, spec: EngineSpec):
    w = end_to_end(params)
    rec = {"train_loss": objective(params, data.X, data.targets, data.labels, hyper, step, spec)}
    z = data.X @ w
    rec["train_fidelity_error"] = jnp.mean(_errors(spec.family, z, data.targets, True))
    if data.labels is not None:
        rec["train_error"] = jnp.mean(_errors(spec.family, z, data.labels, False))
    if data.X_test is not None:
        zt = data.X_test @ w
        if data.labels_test is not None:
            rec["test_loss"] = jnp.mean(_hard_loss(spec.family, zt, data.labels_test))
            rec["test_error"] = jnp.mean(_errors(spec.family, zt, data.labels_test, False))
        if data.targets_test is not None:
            rec["test_kd_loss"] = jnp.mean(_kd_loss(spec.family, zt, data.targets_test, hyper.tau, spec.tau2_scale))
            rec["test_fidelity_error"] = jnp.mean(_errors(spec.family, zt, data.targets_test, True))
    coeffs = None if data.basis is None else coefficients(w, data.basis)
    return coeffs, rec


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


# --------------------------------------------------------------------------------------------
# the compiled trajectory

_TRACES = {"count": 0}


def trace_count() -> int:
    """How many times the trajectory function has been traced (compilations, for tests)."""
    return _TRACES["count"]


def _cast_hyper(hyper: Hyper, dtype) -> Hyper:
    return Hyper(*(jnp.asarray(h, dtype) for h in hyper))


def _all_finite(tree) -> Array:
    leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree_util.tree_leaves(tree)]
    return jnp.all(jnp.stack(leaves))


def _trajectory(params0, data: Data, hyper: Hyper, key, spec: EngineSpec):
    """Pure function: (coeffs (R, ...), metrics dict (R,), final params, bad_step)."""
    _TRACES["count"] += 1
    dtype = data.X.dtype
    hyper = _cast_hyper(hyper, dtype)
    opt = make_optimizer(spec, hyper)
    n = data.X.shape[0]
    full = spec.batch_size is None or spec.batch_size >= n

    def batch(t):
        if full:
            return data.X, data.targets, data.labels
        idx = jax.random.choice(jax.random.fold_in(key, t), n, (spec.batch_size,), replace=False)
        lab = None if data.labels is None else data.labels[idx]
        return data.X[idx], data.targets[idx], lab

    loss0 = objective(params0, data.X, data.targets, data.labels, hyper, jnp.asarray(0), spec)
    limit = spec.blowup * (1.0 + jnp.abs(loss0))

    def step(carry, t):
        params, opt_state, bad = carry
        Xb, tb, lb = batch(t)
        loss, g = jax.value_and_grad(objective)(params, Xb, tb, lb, hyper, t, spec)
        updates, opt_state = opt.update(g, opt_state, params)
        params = optax.apply_updates(params, updates)
        ok = _all_finite(params) & jnp.isfinite(loss) & (loss <= limit)
        # loss is evaluated before the update: a bad loss means the state at step t is bad.
        first = jnp.where(jnp.isfinite(loss) & (loss <= limit), t + 1, t)
        bad = jnp.where((bad < 0) & ~ok, first, bad)
        return (params, opt_state, bad), None

    carry = (params0, opt.init(params0), jnp.asarray(-1))
    carry, coeffs, metrics = scan_recorded(carry, step, lambda c, t: _record(c[0], data, hyper, t, spec), spec)
    return coeffs, metrics, carry[0], carry[2]


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
    metrics = {name: jnp.concatenate([r0[name][None], rs[name]]) for name in r0}
    if rem:
        carry = chunk(carry, n_full * k, rem)
        cl, rl = record_fn(carry, jnp.asarray(spec.steps))
        coeffs = None if cl is None else jnp.concatenate([coeffs, cl[None]])
        metrics = {name: jnp.concatenate([metrics[name], rl[name][None]]) for name in metrics}
    return carry, coeffs, metrics


_trajectory_jit = jax.jit(_trajectory, static_argnames=("spec",))


# --------------------------------------------------------------------------------------------
# public API


def default_lr(X: Array, family: str = "mse", fraction: float = 0.9, tau: float = 1.0, tau2_scale: bool = True) -> float:
    r"""A step of ``fraction`` × 1/L, L the loss's smoothness bound (:func:`linkd.losses.smoothness`).

    For MSE, fraction 0.9 gives :math:`\eta\lambda_\max = 0.9` (monotone filters, theory §2.2).
    ``X`` may carry a leading sweep axis (S, n, d): λ_max is then the largest over the members, so
    one shared step is stable for every member of the sweep."""
    return fraction / L.smoothness(family, _lam_max(X), tau, tau2_scale)


def _lam_max(X: Array) -> float:
    """Largest eigenvalue of Σ̂ = XᵀX/n (the max over a leading sweep axis, if any)."""
    X = jnp.asarray(X)
    cov = jnp.einsum("...ni,...nj->...ij", X, X) / X.shape[-2]
    return float(jnp.max(jnp.linalg.eigvalsh(cov)[..., -1]))


def check_lr(lr: float, X: Array, family: str, tau: float = 1.0, tau2_scale: bool = True, name: str = "lr") -> None:
    """Refuse a step past the stability limit 2/L with an error naming the field and range."""
    limit = L.stability_limit(family, _lam_max(X), tau, tau2_scale)
    if not (0.0 < float(lr) < limit):
        raise ConfigError(name, float(lr), f"0 < {name} < 2/L = {limit:.6g} (stability limit of the {family} loss on this data)")


def record_bytes(spec: EngineSpec, data: Data, params0, sweep_size: int = 1) -> int:
    """Bytes a run holds: the data, the recorded arrays (coefficients + metrics at every recorded
    step) and the optimizer state (≤ 3 copies of the parameters), times the sweep size."""
    itemsize = np.dtype(data.X.dtype).itemsize
    R = len(spec.recorded_steps)
    out = 1 if data.targets.ndim == 1 else data.targets.shape[-1]
    m = 0 if data.basis is None else data.basis.shape[-1]
    n_metrics = 8  # upper bound on the scalar metrics recorded per step
    record = R * (m * out + n_metrics) * itemsize
    state = 4 * sum(x.size for x in jax.tree_util.tree_leaves(params0)) * itemsize
    data_bytes = sum(x.nbytes for x in jax.tree_util.tree_leaves(data))
    return int(data_bytes + sweep_size * (record + state))


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


def _check_memory(spec, data, params0, sweep_size):
    need, have = record_bytes(spec, data, params0, sweep_size), available_bytes()
    if need > 0.8 * have:
        raise MemoryBudgetError(
            f"the run would need about {need / 2**30:.2f} GiB (recorded arrays + data) but only "
            f"{have / 2**30:.2f} GiB is available: raise record.every, lower record.top_m or the sweep size",
            need,
            have,
        )


def _check_shapes(params0, data: Data):
    w = end_to_end(params0)
    n, d = data.X.shape
    if w.shape[0] != d:
        raise ConfigError("params", f"shape {tuple(w.shape)}", f"leading dimension d = {d} (X has shape {(n, d)})")
    if data.targets.shape[0] != n:
        raise ConfigError("targets", f"shape {tuple(data.targets.shape)}", f"leading dimension n = {n}")
    if data.labels is not None and data.labels.shape[0] != n:
        raise ConfigError("labels", f"shape {tuple(data.labels.shape)}", f"leading dimension n = {n}")
    if data.basis is not None and data.basis.shape[0] != d:
        raise ConfigError("basis", f"shape {tuple(data.basis.shape)}", f"shape (d, m) with d = {d}")
    if data.X_test is not None and data.X_test.shape[-1] != d:
        raise ConfigError("X_test", f"shape {tuple(data.X_test.shape)}", f"shape (n_test, {d})")


def _raise_if_bad(bad_step, hyper: Hyper, spec: EngineSpec):
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


def simulate(params0, data: Data, hyper: Hyper, spec: EngineSpec, key: Array | None = None, *, check: bool = True) -> Trajectory:
    """Run ``spec.steps`` optimizer updates from ``params0`` in one compiled scan.

    Returns a :class:`Trajectory`. Raises :class:`~linkd.errors.DivergenceError` naming the first
    bad step, :class:`~linkd.errors.MemoryBudgetError` before starting if the record would not fit,
    :class:`~linkd.errors.ConfigError` on a shape mismatch. ``key`` is required for minibatches.
    """
    _check_shapes(params0, data)
    if spec.batch_size is not None and key is None:
        raise ConfigError("key", None, "an explicit jax.random key when batch_size is set (minibatch SGD)")
    _check_memory(spec, data, params0, 1)
    key = jax.random.key(0) if key is None else key
    coeffs, metrics, params, bad = _trajectory_jit(params0, data, hyper, key, spec)
    if check:
        _raise_if_bad(bad, hyper, spec)
    return Trajectory(spec.recorded_steps, coeffs, metrics, params, bad)


def _axes(tree, batched: bool):
    """in_axes for a pytree: 0 on leaves with a leading sweep axis when ``batched``."""
    if not batched:
        return None
    return jax.tree_util.tree_map(lambda x: 0, tree)


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
    axis S. With ``sharding`` (a :class:`jax.sharding.Sharding` over the sweep axis, see
    :func:`linkd.sharding.sweep_sharding`) the batched inputs are placed on it and XLA runs the
    members on all devices.
    """
    hyper = Hyper(*(jnp.asarray(h) for h in hyper))
    sizes = set()
    if "hyper" in batched:
        sizes |= {h.shape[0] for h in hyper if h.ndim >= 1}
    for name, tree in (("params", params0), ("data", data), ("key", key)):
        if name in batched:
            sizes |= {x.shape[0] for x in jax.tree_util.tree_leaves(tree)}
    if len(sizes) != 1:
        raise ConfigError("sweep", sorted(sizes), "every batched input must share one leading sweep size S")
    S = sizes.pop()
    if spec.batch_size is not None and key is None:
        raise ConfigError("key", None, "an explicit jax.random key (or S keys) when batch_size is set")
    if key is None:
        key = jax.random.key(0)
    one = lambda tree, name: tree if name not in batched else jax.tree_util.tree_map(lambda x: x[0], tree)  # noqa: E731
    _check_shapes(one(params0, "params"), one(data, "data"))
    _check_memory(spec, one(data, "data"), one(params0, "params"), S)
    hyper_axes = (
        Hyper(*(0 if h.ndim >= 1 else None for h in hyper)) if "hyper" in batched else None
    )
    in_axes = (_axes(params0, "params" in batched), _axes(data, "data" in batched), hyper_axes, 0 if "key" in batched else None)
    args = [params0, data, hyper, key]
    if sharding is not None:
        from linkd.sharding import place_batched

        args = place_batched(args, in_axes, sharding)
    fn = _sweep_fn(in_axes, spec)
    coeffs, metrics, params, bad = fn(*args)
    if check:
        _raise_if_bad(bad, hyper, spec)
    return Trajectory(spec.recorded_steps, coeffs, metrics, params, bad)


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
    hyper = _cast_hyper(hyper, data.X.dtype)
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
    _check_shapes(params0, data)
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
