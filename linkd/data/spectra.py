r"""Population spectra :math:`\lambda_1 \ge \dots \ge \lambda_d > 0` of the Gaussian designs
(docs/theory.md §2.2): power law :math:`\lambda_k = s\,k^{-a}`, exponential :math:`\lambda_k =
s\,e^{-r(k-1)}`, spiked (a few spikes over a flat bulk) and explicit values; :func:`make_spectrum`
dispatches by name for configs."""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from linkd.data._checks import Array, _check_params, _float, _int, _kind, _real
from linkd.dtypes import default_float
from linkd.errors import InputError

__all__ = ["SPECTRUM_KINDS", "power_law_spectrum", "exponential_spectrum", "spiked_spectrum", "explicit_spectrum",
           "make_spectrum"]

SPECTRUM_KINDS = ("power_law", "exponential", "spiked", "explicit")


def power_law_spectrum(d: int, exponent: float = 1.0, scale: float = 1.0) -> Array:
    r""":math:`\lambda_k = \text{scale}\cdot k^{-\text{exponent}}`, k = 1..d (exponent ≥ 0, scale > 0)."""
    d = _int("power_law_spectrum", "d", d)
    exponent = float(_real("power_law_spectrum", "exponent", exponent, lo=0.0))
    scale = float(_real("power_law_spectrum", "scale", scale, lo=0.0, lo_open=True))
    k = jnp.arange(1, d + 1, dtype=default_float())
    return scale * k ** (-exponent)


def exponential_spectrum(d: int, rate: float = 0.1, scale: float = 1.0) -> Array:
    r""":math:`\lambda_k = \text{scale}\cdot e^{-\text{rate}(k-1)}`, k = 1..d (rate ≥ 0, scale > 0)."""
    d = _int("exponential_spectrum", "d", d)
    rate = float(_real("exponential_spectrum", "rate", rate, lo=0.0))
    scale = float(_real("exponential_spectrum", "scale", scale, lo=0.0, lo_open=True))
    k = jnp.arange(d, dtype=default_float())
    out = scale * jnp.exp(-rate * k)
    if not bool(jnp.all(out > 0)):
        raise InputError(
            f"exponential_spectrum: rate={rate!r} with d={d} underflows to 0 in {default_float()}; "
            "use a smaller rate (rate*(d-1) below ~700 in float64, ~85 in float32)"
        )
    return out


def spiked_spectrum(d: int, spikes, bulk: float = 1.0) -> Array:
    r"""Spiked covariance: the first ``len(spikes)`` eigenvalues are ``spikes`` (sorted descending),
    the remaining d − len(spikes) equal ``bulk``. Needs every spike ≥ bulk > 0 (so the output is
    descending) and len(spikes) ≤ d."""
    fn = "spiked_spectrum"
    d = _int(fn, "d", d)
    bulk = float(_real(fn, "bulk", bulk, lo=0.0, lo_open=True))
    s = np.atleast_1d(np.asarray(spikes, dtype=np.float64))
    if s.ndim != 1:
        raise InputError(f"{fn}: spikes must be a 1-D sequence; got shape {s.shape}")
    if s.size > d:
        raise InputError(f"{fn}: len(spikes) must be in [0, d={d}]; got {s.size}")
    if not np.all(np.isfinite(s)) or np.any(s < bulk):
        raise InputError(f"{fn}: spikes must be finite and in [bulk={bulk:g}, inf); got {s.tolist()}")
    s = np.sort(s)[::-1]
    return _float(np.concatenate([s, np.full(d - s.size, bulk)]))


def explicit_spectrum(values) -> Array:
    """Explicit eigenvalues: validated positive and finite, returned sorted descending."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or v.size == 0:
        raise InputError(f"explicit_spectrum: values must be a non-empty 1-D sequence; got shape {v.shape}")
    if not np.all(np.isfinite(v)) or np.any(v <= 0):
        raise InputError(f"explicit_spectrum: values must be finite and in (0, inf); got {v.tolist()}")
    return _float(np.sort(v)[::-1])


_SPECTRUM_PARAMS = {
    "power_law": ("exponent", "scale"),
    "exponential": ("rate", "scale"),
    "spiked": ("spikes", "bulk"),
    "explicit": ("values",),
}


def make_spectrum(kind: str, d: int | None = None, **params) -> Array:
    """Dispatch by name (configs): ``'power_law'`` (exponent, scale), ``'exponential'`` (rate,
    scale), ``'spiked'`` (spikes, bulk), ``'explicit'`` (values; d may be None, else must equal
    len(values))."""
    fn = "make_spectrum"
    _kind(fn, kind, SPECTRUM_KINDS)
    _check_params(fn, kind, params, _SPECTRUM_PARAMS[kind])
    if kind == "explicit":
        if "values" not in params:
            raise InputError(f"{fn}: kind 'explicit' needs values=[...]")
        out = explicit_spectrum(params["values"])
        if d is not None and _int(fn, "d", d) != out.shape[0]:
            raise InputError(f"{fn}: d must equal len(values)={out.shape[0]} for kind 'explicit'; got {d!r}")
        return out
    if d is None:
        raise InputError(f"{fn}: d must be an integer >= 1 for kind {kind!r}; got None")
    if kind == "power_law":
        return power_law_spectrum(d, **params)
    if kind == "exponential":
        return exponential_spectrum(d, **params)
    if "spikes" not in params:
        raise InputError(f"{fn}: kind 'spiked' needs spikes=[...]")
    return spiked_spectrum(d, **params)
