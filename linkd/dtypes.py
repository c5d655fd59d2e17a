"""The default floating dtype: one place that decides float64 vs float32.

Library functions that create arrays from Python numbers or random draws use
:func:`default_float` (float64 when ``jax_enable_x64`` is on, else float32); functions that
transform arrays the caller passed keep the caller's floating dtype (float32 in, float32 out).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["default_float", "x64_enabled"]


def x64_enabled() -> bool:
    """Whether ``jax_enable_x64`` is on (JAX then keeps float64 arrays as float64)."""
    return bool(jax.dtypes.canonicalize_dtype(jnp.float64) == np.dtype("float64"))


def default_float() -> np.dtype:
    """``float64`` when ``jax_enable_x64`` is on, else ``float32``."""
    return np.dtype("float64") if x64_enabled() else np.dtype("float32")
