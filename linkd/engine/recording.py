r"""Recording: which steps are kept and how coefficients are read off the state (docs/theory.md §2.2).

The state is recorded at steps 0, k, 2k, ..., T (``spec.recorded_steps``) by nested scans
(:func:`scan_recorded`); coefficients along a basis :math:`B` (d × m) are :math:`c = B^\top w`.
The eigen and closed-form paths carry the state in the coordinates of an orthonormal basis
:math:`V_r` (:math:`w = w_\perp + V_r c`): :func:`coeff_map` picks a slice of the state (the
top-m eigen-directions) or a precomputed (m, r) map, :func:`read_coeffs` applies it.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from linkd.engine.objective import logits, xt_dot
from linkd.engine.types import Data, EngineSpec

__all__ = ["scan_recorded", "trace_count", "count_trace", "CoeffRecord", "read_coeffs", "coeff_map"]

_TRACES = {"count": 0}


def count_trace() -> None:
    """Count one trace of a trajectory function (called at trace time)."""
    _TRACES["count"] += 1


def trace_count() -> int:
    """How many times the trajectory function has been traced (compilations, for tests)."""
    return _TRACES["count"]


def scan_recorded(carry, step_fn, record_fn, spec: EngineSpec):
    """The recording schedule shared by every engine path: ``spec.steps`` applications of
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


@dataclasses.dataclass(frozen=True)
class CoeffRecord:
    """Static recording mode: ``none``; ``slice`` (the first m state coordinates, padded by the
    fixed coordinates ``fill`` when m > r); ``linear`` (M @ state + offset)."""

    mode: str = "none"
    m: int = 0


def read_coeffs(c, rec: CoeffRecord, M, offset):
    """The recorded coefficients of the state ``c`` (None when nothing is recorded)."""
    if rec.mode == "none":
        return None
    if rec.mode == "slice":
        r = c.shape[0]
        if rec.m <= r:
            return c[: rec.m]
        return jnp.concatenate([c, offset], axis=0)
    return logits(M, c) + offset


def coeff_map(V, w0_perp, c0_rest, data: Data, record_top, spectrum_full_basis):
    """Choose how the state c (coordinates along the d × r basis V; w = w0_perp + V c) maps to the
    recorded coefficients. Returns (CoeffRecord, M, offset) with host-side checks only."""
    if data.basis is None and record_top is None:
        return CoeffRecord("none"), None, None
    r = V.shape[1]
    if data.basis is not None:
        B = jnp.asarray(data.basis)
        m = B.shape[1]
        if spectrum_full_basis is not None and m <= spectrum_full_basis.shape[1]:
            top = spectrum_full_basis[:, :m]
            if B.shape == top.shape and bool(jnp.all(B == top)):
                # the top-m eigen-directions: coefficients are state coordinates
                if m <= r:
                    return CoeffRecord("slice", m), None, None
                return CoeffRecord("slice", m), None, c0_rest[: m - r]
        M = xt_dot(B, V)  # (m, r)
        return CoeffRecord("linear", m), M, xt_dot(B, w0_perp)
    m = int(record_top)
    return CoeffRecord("linear", m), V[:m], w0_perp[:m]
