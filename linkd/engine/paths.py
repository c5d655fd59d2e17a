r"""Choosing the fastest exact path for a run (docs/theory.md §2.2).

Every path returns a :class:`~linkd.engine.Trajectory` with the layout of
:func:`linkd.engine.simulate` (same recorded steps, coefficient shape, metric names, final
``params`` in the original coordinates, ``bad_step``; ``path`` names the path) and the same
numbers up to rounding (tested to 1e-12 in float64, ``tests/test_engines.py``):

* ``closed_form`` (:mod:`linkd.engine.analytic`) — squared loss + plain GD, no simulation;
* ``gram`` (:mod:`linkd.engine.gram`) — squared loss, :math:`O(d^2)` per step (n > d);
* ``eigen`` (:mod:`linkd.engine.eigen`) — GD / momentum / Nesterov in eigen-coordinates;
* ``plain`` (:mod:`linkd.engine.plain`) — everything else (Adam, deep-linear, minibatches, sweeps).

:func:`thin_spectrum` gives the eigenpairs with :math:`\lambda > 0` from the thin SVD of X (never
d × d). Nothing here is CPU-specific: on a GPU machine (``JAX_PLATFORMS=cuda``) the same code runs there.
"""
from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from linkd.engine.analytic import simulate_closed_form
from linkd.engine.eigen import EQUIVARIANT, simulate_eigen
from linkd.engine.gram import simulate_gram
from linkd.engine.memory import check_memory, estimate_bytes
from linkd.engine.runs import simulate
from linkd.engine.sampling import full_batch
from linkd.engine.types import PATHS, Array, Data, EngineSpec, Hyper, Trajectory
from linkd.errors import ConfigError
from linkd.spectral import Spectrum, default_rank_tol

__all__ = ["thin_spectrum", "select_path", "simulate_auto"]


def thin_spectrum(X: Array, *, rank_tol: float | None = None) -> Spectrum:
    r"""Eigenpairs of :math:`\hat\Sigma = X^\top X/n` with :math:`\lambda > 0` only, from the thin
    SVD of X: ``eigvals`` (r,) descending, ``basis`` (d, r), r = rank X. Costs
    :math:`O(\min(n,d)^2\max(n,d))` and never forms a d × d matrix. Same rank threshold and sign
    convention as :func:`linkd.spectral.eigh_desc` (largest-magnitude entry of each column > 0);
    for distinct eigenvalues its columns are the first r columns of ``eigh_desc(X).basis``."""
    X = jnp.asarray(X)
    n = X.shape[0]
    _, s, Vt = jnp.linalg.svd(X, full_matrices=False)
    lam = s * s / n
    tol = default_rank_tol(X) if rank_tol is None else rank_tol
    r = int(np.sum(np.asarray(lam) > tol * max(float(lam[0]), 0.0))) if lam.size else 0
    V = Vt[:r].T
    idx = jnp.argmax(jnp.abs(V), axis=0)
    signs = jnp.sign(V[idx, jnp.arange(r)])
    signs = jnp.where(signs == 0, 1.0, signs).astype(V.dtype)
    return Spectrum(lam[:r], V * signs[None, :])


def select_path(w0, data: Data, hyper: Hyper, spec: EngineSpec, *, spectrum: Spectrum | None = None) -> str:
    """The fastest exact path for this run: ``closed_form`` (mse + gd, full batch, no switch),
    ``gram`` (mse, n > d), ``eigen`` (gd/momentum/nesterov, full batch, linear: when a spectrum
    is given, n < d, or coefficients are recorded), else ``plain`` (adam, deep-linear models,
    minibatches, swept hyper-parameters)."""
    n, d = data.X.shape
    if not isinstance(w0, (jax.Array, np.ndarray)):
        return "plain"
    if not full_batch(spec, n):
        return "plain"
    if any(np.ndim(h) != 0 for h in hyper):
        return "plain"
    if spec.family == "mse" and spec.optimizer == "gd" and spec.switch_step is None:
        return "closed_form"
    if spec.family == "mse" and n > d:
        return "gram"
    if spec.optimizer not in EQUIVARIANT:
        return "plain"
    if spectrum is not None or n < d or data.basis is not None:
        return "eigen"
    return "plain"


def simulate_auto(
    w0,
    data: Data,
    hyper: Hyper,
    spec: EngineSpec,
    spectrum: Spectrum | None = None,
    *,
    key: Array | None = None,
    record_top: int | None = None,
    path: str | None = None,
    check: bool = True,
    report: Callable[[str], Any] | None = None,
) -> Trajectory:
    """Run on ``path`` (default :func:`select_path`); the result's ``.path`` names it. Without a
    ``spectrum`` the eigen and closed-form paths compute :func:`thin_spectrum` (SVD of X, never
    d × d). ``record_top`` (axis basis) is honoured on every path except ``plain``."""
    path = path or select_path(w0, data, hyper, spec, spectrum=spectrum)
    if path not in PATHS:
        raise ConfigError("path", path, f"one of {PATHS}")
    if path in ("eigen", "closed_form") and spectrum is None:
        spectrum = thin_spectrum(data.X)
    if path == "closed_form":
        assert spectrum is not None
        tr = simulate_closed_form(w0, data, hyper, spec, spectrum, record_top=record_top, check=check, report=report)
    elif path == "gram":
        tr = simulate_gram(w0, data, hyper, spec, record_top=record_top, check=check, report=report)
    elif path == "eigen":
        assert spectrum is not None
        tr = simulate_eigen(w0, data, hyper, spec, spectrum, record_top=record_top, check=check, report=report)
    else:
        if record_top is not None:
            raise ConfigError("record_top", record_top, "None on the plain path (pass data.basis)")
        check_memory(estimate_bytes("plain", w0, data, spec), report)
        tr = simulate(w0, data, hyper, spec, key, check=check)
    return tr._replace(path=path)
