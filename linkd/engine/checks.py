r"""Input checks of the engine: shapes, targets against α, and what each path accepts.

A run needs X (n, d), parameters whose end-to-end map is (d,) or (d, C) (docs/theory.md §2.2,
§8) or a two-layer network with one output (§11), teacher outputs :math:`z_T` of the student's
output shape unless α = 1 (hard labels only), hard labels of the family's kind, and optional
basis/test arrays of matching shapes (no basis for a network: it records its outputs). Every
refusal is a :class:`~linkd.errors.ConfigError` naming the field.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from linkd.engine.sampling import full_batch
from linkd.engine.types import Array, Data, EngineSpec, Hyper
from linkd.errors import ConfigError
from linkd.models import end_to_end
from linkd.networks import is_network

__all__ = ["check_shapes", "check_targets_alpha", "linear_params", "path_checks", "hyper_scalar"]


def _shape_error(field: str, arr, want: str):
    return ConfigError(field, f"shape {tuple(np.shape(arr))}", want, problem="wrong shape")


def _check_outputs(field: str, arr, rows: int, out: tuple, family: str, labels: bool) -> None:
    if arr is None:
        return
    want = (rows,) if (labels and family != "mse") else (rows,) + out
    if tuple(np.shape(arr)) != want:
        kind = "one label per example" if labels and family != "mse" else "one output per example, like the student's"
        raise _shape_error(field, arr, f"shape {want} ({kind})")


def _output_shape(params0, n: int, d: int, family: str | None) -> tuple:
    """The student's output shape per example: () or (C,) for linear and deep-linear students (from
    the end-to-end weight), () for a two-layer network (one output, docs/theory.md §11)."""
    if is_network(params0):
        W = params0.W
        if np.ndim(W) != 2 or W.shape[1] != d or np.shape(params0.a) != (W.shape[0],):
            raise ConfigError("params", f"W {tuple(np.shape(W))}, a {tuple(np.shape(params0.a))}",
                              f"a TwoLayer with W (m, d = {d}) and a (m,) (X has shape {(n, d)})")
        if family == "multiclass":
            raise ConfigError("params", "TwoLayer", "a linear or deep-linear student for the multiclass family "
                              "(a TwoLayer network has one output)")
        return ()
    w = end_to_end(params0)
    if w.ndim not in (1, 2) or w.shape[0] != d:
        raise ConfigError("params", f"shape {tuple(w.shape)}", f"leading dimension d = {d} (X has shape {(n, d)})")
    out = tuple(w.shape[1:])
    if family == "binary" and out:
        raise ConfigError("params", f"shape {tuple(w.shape)}", f"shape ({d},) for the binary family (one logit)")
    if family == "multiclass" and not out:
        raise ConfigError("params", f"shape {tuple(w.shape)}", f"shape ({d}, C) for the multiclass family (C logits)")
    return out


def check_shapes(params0, data: Data, family: str | None = None) -> None:
    """Refuse inconsistent shapes with a :class:`~linkd.errors.ConfigError` naming the field."""
    if np.ndim(data.X) != 2:
        raise _shape_error("X", data.X, "shape (n, d)")
    n, d = data.X.shape
    out = _output_shape(params0, n, d, family)
    if data.targets is None and data.labels is None:
        raise ConfigError("targets", None, "teacher outputs z_T, or hard labels with alpha = 1 (Data(X, targets=None, labels=y))")
    fam = family or "mse"
    _check_outputs("targets", data.targets, n, out, fam, False)
    _check_outputs("labels", data.labels, n, out, fam, True)
    if data.basis is not None and is_network(params0):
        raise ConfigError("basis", f"shape {tuple(np.shape(data.basis))}", "None for a TwoLayer network (its record "
                          "holds its outputs on the train and test points)")
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


def linear_params(w0, name="params") -> Array:
    """A linear weight array (d,) or (d, C); refuses a deep-linear model (the fast paths are linear)."""
    if not isinstance(w0, (jax.Array, np.ndarray)):
        raise ConfigError(name, type(w0).__name__, "a linear weight array (d,) or (d, C); deep-linear models run on engine.simulate")
    return jnp.asarray(w0)


def path_checks(w0, data: Data, hyper: Hyper, spec: EngineSpec, record_top, what: str) -> None:
    """The checks every fast path shares: shapes, targets/α, full batch, ``record_top``."""
    check_shapes(w0, data, spec.family)
    check_targets_alpha(data, hyper, spec)
    if not full_batch(spec, data.X.shape[0]):
        raise ConfigError("batch_size", spec.batch_size, f"None (full batch) on the {what} path; minibatch SGD runs on engine.simulate")
    if record_top is not None:
        if data.basis is not None:
            raise ConfigError("record_top", record_top, "None when data.basis is given (record_top=m means the axis basis e_1..e_m)")
        if not (isinstance(record_top, (int, np.integer)) and 1 <= record_top <= data.X.shape[1]):
            raise ConfigError("record_top", record_top, f"an integer in [1, d = {data.X.shape[1]}]")


def hyper_scalar(hyper: Hyper) -> None:
    """The fast paths run one configuration: every hyper-parameter a scalar."""
    for name, h in zip(Hyper._fields, hyper):
        if np.ndim(h) != 0:
            raise ConfigError(f"hyper.{name}", f"shape {np.shape(h)}", "a scalar (sweeps run on engine.sweep)")
