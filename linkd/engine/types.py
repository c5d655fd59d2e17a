r"""The engine's types: what a run is given and what it returns (docs/theory.md §2.2).

* :class:`EngineSpec` — static (hashable) choices: family, optimizer, steps, recording, batch.
* :class:`Hyper` — numeric hyper-parameters (η, τ, α, momentum μ); :func:`linkd.engine.sweep`
  vmaps them.
* :class:`Data` — arrays: X, teacher outputs :math:`z_T`, hard labels, recording basis, test set.
* :class:`Trajectory` — recorded steps, coefficients :math:`c_k = v_k^\top w`, metrics, final
  parameters, first bad step (-1 if none) and the engine ``path``; a pytree whose static fields
  (steps, path) survive ``tree_map``; ``traj.member(i)`` takes one sweep member.
* :class:`Targets` — what the metrics compare the logits with (no design matrices).
"""
from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from linkd.errors import ConfigError

__all__ = ["Array", "FAMILIES", "OPTIMIZERS", "SAMPLINGS", "PATHS", "EngineSpec", "Hyper", "Data", "Trajectory", "Targets", "is_linear"]

Array = jnp.ndarray

FAMILIES = ("mse", "binary", "multiclass")
OPTIMIZERS = ("gd", "momentum", "nesterov", "adam")
SAMPLINGS = ("with_replacement", "without_replacement", "shuffled")
PATHS = ("closed_form", "gram", "eigen", "plain")


@dataclasses.dataclass(frozen=True)
class EngineSpec:
    """Static part of a run (changing it recompiles).

    Attributes:
      family: ``"mse"``, ``"binary"`` or ``"multiclass"``.
      optimizer: ``"gd"`` (plain full-batch GD = optax.sgd), ``"momentum"``, ``"nesterov"``, ``"adam"``.
      steps: number of optimizer updates T.
      record_every: record the state every k steps (step 0 and the last step always recorded).
      batch_size: minibatch size B (drawn with the run's key, see ``sampling``); ``None`` = full batch.
      switch_step: hard labels only before this step, the α-mixture after (``None`` = never).
      tau2_scale: multiply the KD term by τ².
      blowup: a loss above ``blowup * (1 + |L_0|)`` counts as divergence.
      sampling: how minibatches are drawn (:mod:`linkd.engine.sampling`): ``"with_replacement"``
        (B i.i.d. indices per step; moments exact, docs/theory.md §10), ``"without_replacement"``
        (B distinct indices per step; exact too), ``"shuffled"`` (epochs of a random permutation).
    """

    family: str = "mse"
    optimizer: str = "gd"
    steps: int = 100
    record_every: int = 1
    batch_size: int | None = None
    switch_step: int | None = None
    tau2_scale: bool = True
    blowup: float = 1e12
    sampling: str = "with_replacement"

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
        if self.sampling not in SAMPLINGS:
            raise ConfigError("sampling", self.sampling, f"one of {SAMPLINGS}")
        if self.switch_step is not None and self.switch_step < 0:
            raise ConfigError("switch_step", self.switch_step, "None or an integer >= 0")

    @property
    def recorded_steps(self) -> np.ndarray:
        """Steps at which the state is recorded: 0, k, 2k, ..., and T."""
        s = np.arange(0, self.steps + 1, self.record_every)
        return s if s[-1] == self.steps else np.append(s, self.steps)


class Hyper(NamedTuple):
    """Numeric hyper-parameters; any leaf may carry a leading sweep axis (see :func:`linkd.engine.sweep`).

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
    """Result of a run: ``steps`` (R,), ``coeffs`` (R, m[, C]) or None, ``metrics``
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


def is_linear(params) -> bool:
    """A linear student: one weight array (not a :class:`~linkd.models.DeepLinear`)."""
    return isinstance(params, (jax.Array, np.ndarray))
