r"""Memory: one footprint estimate for every engine path, and the refusal of runs that would not fit.

From shapes only (docs/theory.md §2.2 gives the recorded quantities): data bytes, the path's work
arrays (:math:`Z = XV_r`, the basis, :math:`\hat\Sigma`, ...), the recorded coefficients and
metrics (R records × (m·C + metrics); a two-layer network, docs/theory.md §11, records its n + n_test
outputs and its autodiff holds four (n + n_test) × width arrays) and the state (parameters,
optimizer state, carried predictions); sweeps share the data and multiply the rest by the sweep size S.
"""
from __future__ import annotations

import os
from typing import Any, Callable, NamedTuple

import jax
import numpy as np

from linkd.engine.types import PATHS, Data, EngineSpec
from linkd.errors import ConfigError, MemoryBudgetError
from linkd.models import end_to_end
from linkd.networks import is_network

__all__ = ["Footprint", "N_METRICS", "eigen_uses_design", "estimate_bytes", "record_bytes", "available_bytes",
           "check_memory"]

N_METRICS = 8  # upper bound on the scalar metrics recorded per step


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


def _nbytes(tree) -> int:
    return int(sum(np.dtype(x.dtype).itemsize * int(np.prod(np.shape(x))) for x in jax.tree_util.tree_leaves(tree)))


def eigen_uses_design(n: int, d: int, r: int, design_given: bool) -> bool:
    """Whether the eigen path works on Z = XV_r (n × r) or on X and V (no copy of X): Z when
    the caller passes it or when it is at most half the size of X (r ≤ d/2, e.g. n < d)."""
    return design_given or 2 * r <= d


def estimate_bytes(path: str, w0, data: Data, spec: EngineSpec, *, spectrum=None, record_top: int | None = None,
                   sweep_size: int = 1, design_given: bool = False) -> Footprint:
    """Footprint of a run on ``path`` (one of :data:`~linkd.engine.types.PATHS`), from shapes only;
    ``sweep_size`` members share the data and multiply the rest."""
    if path not in PATHS:
        raise ConfigError("path", path, f"one of {PATHS}")
    itemsize = np.dtype(data.X.dtype).itemsize
    n, d = data.X.shape[-2:]
    net = is_network(w0)
    w = None if net else end_to_end(w0)
    C = 1 if w is None or w.ndim == 1 else int(np.prod(w.shape[1:]))
    nt = 0 if data.X_test is None else data.X_test.shape[-2]
    R = len(spec.recorded_steps)
    m = data.basis.shape[-1] if data.basis is not None else (record_top or 0)
    r = d if spectrum is None else spectrum.basis.shape[1]
    p = _nbytes(w0) // itemsize
    basis = 0 if spectrum is None else _nbytes(spectrum)
    if path == "plain":
        # a network's autodiff holds U = XW^T/sqrt(d), phi(U), phi'(U) and the gradient in U (n + nt) x m each
        work = 4 * (n + nt) * w0.width * itemsize if net else 0
        state = (4 * p + (n + nt) * C) * itemsize
    elif path == "eigen":
        z_bytes = (n + nt) * r * itemsize if eigen_uses_design(n, d, r, design_given) else 0
        work = basis + z_bytes + m * r * itemsize
        state = (3 * r * C + (n + nt) * C + d * C) * itemsize
    elif path == "gram":
        work, state = (d * d + 3 * d * C) * itemsize, 3 * d * C * itemsize
    else:  # closed_form
        work, state = basis + nt * r * itemsize + R * (r + nt) * C * itemsize, 3 * r * C * itemsize
    record = R * (m * C + N_METRICS + (n + nt if net else 0)) * itemsize  # a network records its outputs
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
