r"""Argument checks shared by the closed forms of docs/theory.md §6–§9.

Every refusal is one :class:`linkd.errors.InputError` line
``"<function>: <argument> must be <allowed>; got <value>"``. Values traced by ``jax.jit`` or
``jax.vmap`` are not inspected (a check needs concrete numbers); shapes are always checked.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from linkd.dtypes import default_float
from linkd.errors import InputError

__all__ = ["traced", "show", "refuse", "eigvals", "floats", "lr", "times", "steps", "integer", "scalar", "coeffs",
           "host"]


def traced(x) -> bool:
    """Whether ``x`` is (or holds) a jax tracer: its values cannot be read on the host."""
    return isinstance(x, jax.core.Tracer)


def show(x) -> str:
    """A short rendering of a refused value: the number, a short list, or the shape."""
    if isinstance(x, str):
        return x
    if isinstance(x, (bool, int, float, type(None))):
        return repr(x)
    try:
        a = np.asarray(x)
    except Exception:  # not array-like
        return type(x).__name__
    if a.dtype == object:
        return type(x).__name__
    if a.ndim == 0:
        return repr(a.item())
    return repr(a.tolist()) if a.size <= 6 else f"an array of shape {a.shape}"


def refuse(fn: str, arg: str, value, allowed: str) -> InputError:
    """The InputError for ``fn``'s argument ``arg`` (raise it)."""
    return InputError(f"{fn}: {arg} must be {allowed}; got {show(value)}")


def floats(x) -> jnp.ndarray:
    """``jnp.asarray`` keeping a floating dtype; integer and boolean input becomes ``default_float()``."""
    a = jnp.asarray(x)
    return a if jnp.issubdtype(a.dtype, jnp.floating) else a.astype(default_float())


def host(x) -> np.ndarray:
    """A float64 numpy copy (host closed forms compute in float64 whatever jax's x64 flag says)."""
    return np.asarray(x, dtype=np.float64)


def eigvals(fn: str, x, *, positive: bool = False, xp=jnp):
    """A 1-d, non-empty array of finite eigenvalues ``>= 0`` (``> 0`` with ``positive``)."""
    a = floats(x) if xp is jnp else host(x)
    allowed = "a 1-d array of finite values " + ("> 0" if positive else ">= 0")
    if a.ndim != 1 or a.shape[0] == 0:
        raise refuse(fn, "eigvals", f"shape {tuple(a.shape)}", allowed)
    if not traced(a):
        v = np.asarray(a)
        if not np.all(np.isfinite(v)) or not np.all(v > 0 if positive else v >= 0):
            raise refuse(fn, "eigvals", v, allowed)
    return a


def lr(fn: str, value, *, below: float | None = None, why: str = "", name: str = "lr"):
    """A finite step ``> 0`` (and ``< below`` when given); returns a Python float, or the tracer."""
    if traced(value):
        return value
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise refuse(fn, name, value, "a finite number > 0") from None
    if not (math.isfinite(v) and v > 0 and (below is None or v < below)):
        allowed = "a finite number > 0" if below is None else f"a number in (0, {below:.6g}){why}"
        raise refuse(fn, name, value, allowed)
    return v


def times(fn: str, name: str, value, xp=jnp):
    """Times of any shape, finite and ``>= 0`` (an array; traced values pass)."""
    if traced(value):
        return value
    a = np.asarray(value)
    if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
        raise refuse(fn, name, value, "finite times >= 0 (a number or an array)")
    if not np.all(np.isfinite(a)) or np.any(a < 0):
        raise refuse(fn, name, value, "finite times >= 0")
    return xp.asarray(value)


def steps(fn: str, name: str, value):
    """An int ``steps`` (then t = 0..steps) or an array of times ``>= 0``; returns the times (jnp)."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        if value < 0:
            raise refuse(fn, name, value, "an integer >= 0 (t = 0..steps) or an array of times >= 0")
        return jnp.arange(int(value) + 1)
    if isinstance(value, bool):
        raise refuse(fn, name, value, "an integer >= 0 (t = 0..steps) or an array of times >= 0")
    return times(fn, name, value)


def integer(fn: str, name: str, value, low: int) -> int:
    """An integer ``>= low`` (bools refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or int(value) < low:
        raise refuse(fn, name, value, f"an integer >= {low}")
    return int(value)


def scalar(fn: str, name: str, value, *, low: float = 0.0, strict: bool = True) -> float:
    """A finite real number ``> low`` (``>= low`` when not ``strict``); returns a Python float."""
    if traced(value):
        return value
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = math.nan
    if not (math.isfinite(v) and (v > low if strict else v >= low)):
        raise refuse(fn, name, value, f"a finite number {'>' if strict else '>='} {low:g}")
    return v


def coeffs(fn: str, name: str, value, d: int, *, xp=jnp, ndim: tuple = (1, 2)):
    """Coordinates of shape (d,) or (d, C) (``ndim`` lists the ranks allowed), finite."""
    a = floats(value) if xp is jnp else host(value)
    if a.ndim not in ndim or a.shape[0] != d:
        shapes = " or ".join({1: f"({d},)", 2: f"({d}, C)", 3: f"({d}, {d}, {d})"}[k] for k in ndim)
        raise refuse(fn, name, f"shape {tuple(a.shape)}", f"an array of shape {shapes}")
    if not traced(a) and not np.all(np.isfinite(np.asarray(a))):
        raise refuse(fn, name, a, "finite values")
    return a
