"""Argument checks shared by the :mod:`linkd.data` samplers (docs/theory.md §2.2): every refused
argument raises :class:`linkd.errors.InputError` naming the function, the argument, its value and
the allowed range; checks on traced scalars are skipped so strengths can be ``jit``-ed."""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from linkd.dtypes import default_float
from linkd.errors import InputError

__all__: list[str] = []

Array = jnp.ndarray


def _float(a) -> Array:
    """Cast to a JAX array of the default float dtype."""
    return jnp.asarray(a, dtype=default_float())


def _int(fn: str, name: str, value, lo: int = 1) -> int:
    """A static Python int ≥ lo (numpy integers accepted, bools and non-integral floats rejected)."""
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
    if not ok or int(value) < lo:
        raise InputError(f"{fn}: {name} must be an integer >= {lo}; got {value!r}")
    return int(value)


def _concrete(value):
    """``float(value)``, or None when the value is traced (then checks are skipped)."""
    try:
        return float(value)
    except (jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError, TypeError):
        return None


def _real(fn: str, name: str, value, lo=-math.inf, hi=math.inf, lo_open=False, hi_open=False):
    """Check a finite real scalar lies in the interval; return it unchanged (traced values pass)."""
    if value is None or isinstance(value, (str, bytes, bool)):
        raise InputError(f"{fn}: {name} must be a real number; got {value!r}")
    v = _concrete(value)
    if v is None:
        if jnp.ndim(value) != 0:
            raise InputError(f"{fn}: {name} must be a scalar; got shape {jnp.shape(value)}")
        return value
    bad = (
        not math.isfinite(v)
        or (v <= lo if lo_open else v < lo)
        or (v >= hi if hi_open else v > hi)
    )
    if bad:
        rng = f"{'(' if lo_open or lo == -math.inf else '['}{lo:g}, {hi:g}{')' if hi_open or hi == math.inf else ']'}"
        raise InputError(f"{fn}: {name} must be a finite number in {rng}; got {value!r}")
    return value


def _matrix(fn: str, name: str, X, ndim=(2,)) -> Array:
    X = _float(X)
    if X.ndim not in ndim:
        raise InputError(f"{fn}: {name} must have ndim in {ndim}; got shape {X.shape}")
    return X


def _kind(fn: str, kind, allowed) -> str:
    if kind not in allowed:
        raise InputError(f"{fn}: kind must be one of {', '.join(map(repr, allowed))}; got {kind!r}")
    return kind


def _check_params(fn: str, kind: str, params: dict, allowed: tuple) -> None:
    extra = sorted(set(params) - set(allowed))
    if extra:
        raise InputError(
            f"{fn}: kind {kind!r} takes parameters {allowed or '()'}; got unexpected {', '.join(extra)}"
        )


def _eigvals(fn: str, eigvals) -> Array:
    lam = _matrix(fn, "eigvals", eigvals, ndim=(1,))
    if lam.shape[0] == 0:
        raise InputError(f"{fn}: eigvals must be non-empty; got shape {lam.shape}")
    try:
        v = np.asarray(lam)
    except jax.errors.TracerArrayConversionError:  # traced: skip the value check
        return lam
    if not np.all(np.isfinite(v) & (v >= 0)):
        raise InputError(f"{fn}: eigvals must be finite and in [0, inf); got {v.tolist()}")
    return lam


def _basis(fn: str, basis, d: int) -> Array | None:
    if basis is None:
        return None
    U = _matrix(fn, "basis", basis)
    if U.shape[1] != d or U.shape[0] < d:
        raise InputError(f"{fn}: basis must have shape (D, {d}) with D >= {d} (orthonormal columns); got {U.shape}")
    return U
