"""linkd: exact-simulation checks of knowledge-distillation theory in linear and deep-linear models.

Thin public surface (optax style): the well-named modules are the API.

>>> from linkd import closed_form, bounds, metrics, data, dynamics, spectral, models, losses
"""
__version__ = "0.1.0"

from linkd import closed_form, dynamics, losses, models, spectral  # noqa: E402,F401

__all__ = ["closed_form", "dynamics", "losses", "models", "spectral", "__version__"]


def __getattr__(name):  # lazy: data, bounds, metrics, plotting need not load for every import
    import importlib

    if name in {"data", "bounds", "metrics", "plotting", "experiments", "config", "rundir"}:
        return importlib.import_module(f"linkd.{name}")
    raise AttributeError(f"module 'linkd' has no attribute {name!r}")
